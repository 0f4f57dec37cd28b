""""Retrain now" in headless Chromium: it returns at once, the page stays usable while the retrain runs, a second
press (same browser or another one) says a retrain is running and starts nothing, and the result appears at the end.

The project is sklearn's digits repeated to 100,000 items (new ids), so a retrain takes several seconds; the app
runs its in-app scheduler, whose executor runs the retrain.
"""

from __future__ import annotations

import time

import pytest
import sqlalchemy as sa
from browser_helpers import PASSWORD, AppDidNotStart, choose, running_app, screenshots_into, settle, sign_in
from sklearn.datasets import load_digits

from superintendent import auth, queue
from superintendent.store import ModelRun, RunStatus, init_db, make_engine, session_scope
from tests.test_browser import _need_chromium, browser  # noqa: F401 - the Chromium fixture (skips locally without Chromium, fails in CI)

N_ITEMS, N_LABELLED = 100_000, 300
RUNNING = "Retraining, step "
ALREADY = "A retrain of this project is already running (started "


def seed(db_url: str) -> None:
    """Admins boss and ann; "digits" (100,000 items, 300 labelled, logistic regression) and a small "other" project."""
    digits = load_digits()
    engine = make_engine(db_url)
    init_db(engine)
    with session_scope(engine) as s:
        auth.create_user(s, "boss", PASSWORD, "admin")
        auth.create_user(s, "ann", PASSWORD, "admin")
        big = queue.create_project(s, "digits", options=list(range(10)), model_preset="logistic_regression")
        n = len(digits.data)
        queue.add_items(s, big, [digits.data[i % n] for i in range(N_ITEMS)], external_ids=[f"copy{i // n}-{i % n}" for i in range(N_ITEMS)],
                        labels=[int(digits.target[i]) for i in range(N_LABELLED)] + [None] * (N_ITEMS - N_LABELLED))
        other = queue.create_project(s, "other", options=["a", "b"])
        queue.add_items(s, other, ["first", "second"])
    engine.dispose()


@pytest.fixture
def app(tmp_path):
    _need_chromium()
    db_url = f"sqlite:///{tmp_path / 'app.db'}"
    seed(db_url)
    try:
        # Batches of 100 make the retrain of 100,000 items take long enough to try the page meanwhile (with batches of
        # 10,000 it takes about 3 s since a retrain writes only the head of its order; with 100, about 20 s).
        with running_app(tmp_path, db_url=db_url, extra_env={"SUPERINTENDENT_RUN_SCHEDULER": "true",
                                                             "SUPERINTENDENT_PREDICT_BATCH_SIZE": "100"}) as (base, _):
            yield base, db_url
    except AppDidNotStart as exc:
        pytest.fail(str(exc))


def runs(db_url: str) -> list[ModelRun]:
    engine = make_engine(db_url)
    try:
        with session_scope(engine, write=False) as s:
            return list(s.execute(sa.select(ModelRun).order_by(ModelRun.id)).scalars())
    finally:
        engine.dispose()


def open_model_page(page, base: str, name: str) -> None:
    sign_in(page, base, name)
    page.get_by_role("link", name="Model").click()
    settle(page)
    choose(page, "Project", "digits")


def test_retrain_now_runs_in_the_background(app, browser, tmp_path):  # noqa: F811
    base, db_url = app
    shoot = screenshots_into(tmp_path / "shots")
    boss, ann = (browser.new_context(viewport={"width": 1280, "height": 900}).new_page() for _ in range(2))
    for page, name in ((boss, "boss"), (ann, "ann")):
        open_model_page(page, base, name)
        page.get_by_text("No model runs yet.").wait_for(timeout=30_000)

    # The press returns at once: the progress shows while the retrain runs.
    pressed = time.monotonic()
    boss.get_by_role("button", name="Retrain now").click()
    boss.get_by_text(RUNNING).first.wait_for(timeout=30_000)
    shown_after = time.monotonic() - pressed

    # A second press, in another browser (ann's, drawn before boss pressed) and in the same one, starts nothing and
    # says who runs it; ann's page then shows the progress of boss's retrain.
    ann.get_by_role("button", name="Retrain now").click()
    ann.get_by_text(ALREADY).first.wait_for(timeout=30_000)
    assert " by boss)" in ann.get_by_text(ALREADY).first.inner_text()
    ann.get_by_text(RUNNING).first.wait_for(timeout=30_000)
    shoot(ann, "second-press")
    boss.get_by_role("button", name="Retrain now").click()
    boss.get_by_text(ALREADY).first.wait_for(timeout=30_000)
    [run] = runs(db_url)
    assert run.status == RunStatus.running.value and run.worker == "boss"
    boss.get_by_text("Retraining, step 5 of 8: scoring the unlabelled items (").first.wait_for(timeout=60_000)  # "(10,000 of 99,700)"
    shoot(boss, "running")

    # The page stays usable: another project, and back, while the retrain goes on.
    switched = time.monotonic()
    choose(boss, "Project", "other")
    boss.get_by_text("No model runs yet.").wait_for(timeout=30_000)
    switch_took = time.monotonic() - switched
    assert boss.get_by_text(RUNNING).count() == 0  # the other project is not retraining
    assert runs(db_url)[0].status == RunStatus.running.value, "the retrain ended before the page was tried: make the project bigger"
    choose(boss, "Project", "digits")

    # The result, as before; the runs table and charts are drawn again, on both pages.
    boss.get_by_text("Retrain succeeded: score ").first.wait_for(timeout=180_000)
    took = time.monotonic() - pressed
    settle(boss)
    assert boss.get_by_text(RUNNING).count() == 0
    boss.get_by_role("heading", name="Runs").wait_for(timeout=30_000)
    shoot(boss, "done")
    [run] = runs(db_url)
    assert run.status == RunStatus.succeeded.value and run.n_labels == N_LABELLED
    ann.get_by_role("heading", name="Runs").wait_for(timeout=30_000)  # her page redrew too when it ended
    assert ann.get_by_text(RUNNING).count() == 0 and ann.get_by_text(ALREADY).count() == 0
    switched = time.monotonic()
    choose(boss, "Project", "other")
    boss.get_by_text("No model runs yet.").wait_for(timeout=30_000)
    idle_switch_took = time.monotonic() - switched
    print(f"\nprogress shown {shown_after:.1f} s after the press; project switched in {switch_took:.1f} s while retraining, "
          f"{idle_switch_took:.1f} s after; "
          f"the result shown {took:.1f} s after the press (run: {(run.finished_at - run.started_at).total_seconds():.1f} s)")
