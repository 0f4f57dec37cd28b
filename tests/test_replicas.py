"""Two app replicas on one PostgreSQL database, as a team behind a load balancer runs them (docs/deployment.md).

Two ``streamlit run streamlit_app.py`` processes on two free ports share the
database (where sign-ins are sessions), each with its own retrain scheduler. In headless Chromium:

* a user signed in on replica A is signed in on replica B with the same cookie
  (browsers send a host's cookies to every port of it);
* an admin on A deactivates a labeller who labels on B: the labeller's next click
  on B stores nothing and shows the sign-in form;
* each project's retrain runs once at a time: the two schedulers never overlap
  runs of one project (the cross-process retrain lock).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import pytest
import sqlalchemy as sa
from browser_helpers import (
    PASSWORD,
    VIEWPORT,
    AppDidNotStart,
    choose,
    item_text,
    running_app,
    screenshots_into,
    settle,
    sign_in,
    wait_for_new_item,
)

from conftest import _postgres_schema_url
from superintendent import auth, queue
from superintendent.store import Annotation, ModelRun, User, init_db, make_engine, session_scope
from tests.test_browser import _need_chromium, browser

__all__ = ["browser"]

pytestmark = pytest.mark.postgres
EXCEPTION = '[data-testid="stException"]'


@pytest.fixture
def pg_url() -> Iterator[str]:
    yield from _postgres_schema_url()


@contextmanager
def replica(folder: Path, db_url: str) -> Iterator[str]:
    """One ``streamlit run`` on ``db_url`` with its own retrain scheduler (a 1 s tick); yields its URL."""
    folder.mkdir(parents=True, exist_ok=True)
    try:
        with running_app(folder, db_url=db_url, extra_env={"SUPERINTENDENT_RUN_SCHEDULER": "true",
                                                           "SUPERINTENDENT_SCHEDULER_TICK_SECONDS": "1"}) as (base, _):
            yield base
    except AppDidNotStart as exc:
        pytest.fail(str(exc))


def _seed(db_url: str) -> sa.Engine:
    engine = make_engine(db_url)
    init_db(engine)
    with session_scope(engine) as s:
        auth.create_user(s, "boss", PASSWORD, "admin")
        auth.create_user(s, "bob", PASSWORD, "labeller")
        project = queue.create_project(s, "films", options=["good", "bad"], data_type="text",
                                       model_preset="tfidf_logistic_regression", retrain_interval_seconds=2)
        texts = [f"{'a fine' if i % 2 else 'a dull'} film number {i}" for i in range(60)]
        queue.add_items(s, project, texts, external_ids=[f"f{i}" for i in range(60)])
        boss = auth.get_user(s, "boss").id
        for _ in range(12):  # enough labels of both kinds for a model
            task = queue.claim_next(s, project, boss)
            queue.submit(s, project, boss, task.item_id, "good" if "fine" in task.data else "bad")
    return engine


def _count(engine: sa.Engine, table) -> int:  # noqa: ANN001 - a table model
    with session_scope(engine, write=False) as s:
        return s.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()


def test_two_replicas_share_sign_in_deactivation_and_retrains(browser, pg_url, tmp_path):
    _need_chromium()
    engine = _seed(pg_url)
    shoot = screenshots_into(tmp_path / "shots")
    with ExitStack() as stack:
        base_a = stack.enter_context(replica(tmp_path / "a", pg_url))
        base_b = stack.enter_context(replica(tmp_path / "b", pg_url))
        # Signed in on A, signed in on B with the same cookie
        bob = browser.new_context(viewport=VIEWPORT).new_page()
        sign_in(bob, base_a, "bob")
        bob.goto(base_b)
        settle(bob)
        bob.get_by_text("Signed in as").first.wait_for(timeout=30_000)
        assert bob.get_by_role("button", name="Log in").count() == 0
        shoot(bob, "replica-b-signed-in")
        before = item_text(bob)
        bob.get_by_role("button", name="good").click()
        wait_for_new_item(bob, before)
        stored = _count(engine, Annotation)
        # The admin on A deactivates bob; bob's next click on B stores nothing and shows the sign-in form
        admin = browser.new_context(viewport=VIEWPORT).new_page()
        sign_in(admin, base_a, "boss")
        admin.get_by_role("link", name="Admin").click()
        settle(admin)
        admin.get_by_role("tab", name="Users").click()
        settle(admin)
        choose(admin, "User", "bob")
        settle(admin)
        admin.get_by_text("Active (may log in)", exact=True).click()
        admin.wait_for_function("() => !document.querySelector('input[aria-label=\"Active (may log in)\"]').checked")
        admin.get_by_role("button", name="Apply").click()
        settle(admin)
        with session_scope(engine, write=False) as s:
            assert s.execute(sa.select(User.active).where(User.username == "bob")).scalar_one() is False
        bob.get_by_role("button", name="good").click()
        bob.get_by_role("button", name="Log in").wait_for(timeout=15_000)
        settle(bob)
        shoot(bob, "replica-b-deactivated")
        assert _count(engine, Annotation) == stored
        assert bob.locator(EXCEPTION).count() == 0 and admin.locator(EXCEPTION).count() == 0
        # Both schedulers have been checking "films" every second: its retrains never overlapped
        deadline = time.monotonic() + 60
        while _count(engine, ModelRun) < 2 and time.monotonic() < deadline:
            time.sleep(1)
    with session_scope(engine, write=False) as s:
        runs = s.execute(sa.select(ModelRun.started_at, ModelRun.finished_at).order_by(ModelRun.started_at)).all()
    engine.dispose()
    assert len(runs) >= 2, "the schedulers ran fewer than two retrains in a minute"
    for (_, first_end), (second_start, _) in zip(runs, runs[1:]):
        assert first_end is not None and first_end <= second_start, f"two retrains of one project overlapped: {runs}"
