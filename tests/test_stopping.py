"""The stopping signal: pure figures on synthetic sequences, then stored by real retrains on SQLite and PostgreSQL,
and shown on the Model page."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression

from superintendent import queue, serialization
from superintendent.learning import RetrainOptions, latest_runs
from superintendent.orchestration import retrain_project
from superintendent.al.stopping import (
    FLAT_SLOPE,
    LEVELLING_OFF,
    MORE_HELP,
    NOT_ENOUGH,
    STABLE_CHANGED,
    changed_predictions,
    score_slope,
    stopping_signals,
    verdict,
)
from superintendent.store import Item, ModelRun, RunStatus, session_scope

from labelling_logs import people_label
from tests.test_browser import browser, server  # noqa: F401 - the Chromium fixtures (skip locally without Chromium, fail in CI)

DIGITS = load_digits()


# --------------------------------------------------------------------------- pure functions


def test_changed_predictions_counts_only_items_with_an_earlier_guess():
    changed = changed_predictions(["1", "2", None, "3", '["a"]'], ["1", "7", "4", "3", '["a", "b"]'])
    assert (changed.n_compared, changed.n_changed) == (4, 2)
    assert changed.fraction == 0.5
    assert changed_predictions([None, None], ["1", "2"]).fraction is None
    with pytest.raises(ValueError):
        changed_predictions(["1"], ["1", "2"])


def test_score_slope_is_points_per_100_labels_over_the_latest_runs():
    # the last four runs lie on a line of 0.1 per 100 labels (10 points); the oldest run is beyond the window
    assert score_slope([10, 100, 200, 300, 400], [0.99, 0.5, 0.6, 0.7, 0.8]) == pytest.approx(10.0)
    flat = score_slope([100, 200, 300, 400], [0.9, 0.9, 0.9, 0.9])
    assert flat == pytest.approx(0.0, abs=1e-9)
    exact = score_slope([100, 200, 300], [0.80, 0.82, 0.84])
    assert exact == pytest.approx(2.0)  # 0.02 per 100 labels = 2 points
    assert score_slope([100, 200], [0.8, 0.9]) is None  # fewer than three scored runs
    assert score_slope([100, 200, 300], [0.8, None, 0.9]) is None  # unscored runs are left out
    assert score_slope([100, 100, 100], [0.8, 0.85, 0.9]) is None  # no spread of labels


def test_verdict_needs_both_figures_to_agree_before_levelling_off():
    assert verdict([None, 0.3], 5.0).verdict == NOT_ENOUGH  # the first run could compare with nothing
    assert verdict([0.005, 0.004], None).verdict == NOT_ENOUGH  # no slope yet
    assert verdict([0.005, 0.004], 0.2).verdict == LEVELLING_OFF
    more = verdict([0.005, 0.004], FLAT_SLOPE + 1)  # the score still climbs
    assert more.verdict == MORE_HELP and "points per 100 labels" in more.reason
    more = verdict([0.2, 0.004], 0.1)  # predictions changed a lot one run ago
    assert more.verdict == MORE_HELP and "still change" in more.reason
    assert verdict([STABLE_CHANGED, STABLE_CHANGED], FLAT_SLOPE - 0.01).verdict == LEVELLING_OFF  # thresholds are inclusive / exclusive as documented


def test_a_learning_curve_that_flattens_turns_the_verdict():
    """A synthetic run history: a climbing curve with many changed predictions, then a plateau with few."""
    labels = [50, 100, 150, 200, 250, 300, 350, 400]
    scores = [0.60, 0.72, 0.80, 0.85, 0.86, 0.862, 0.863, 0.863]
    changed = [None, 0.30, 0.15, 0.06, 0.02, 0.008, 0.005, 0.004]
    history: list[dict] = []
    verdicts = []
    for n, score, fraction in zip(labels, scores, changed):
        compared = None if fraction is None else type("C", (), {"fraction": fraction, "n_compared": 1000, "n_changed": int(fraction * 1000)})()
        sig = stopping_signals(history, compared, n, score)
        verdicts.append(sig["verdict"])
        history.append({"n_labels": n, "score": score, "changed_fraction": sig["changed_fraction"]})
    assert verdicts[:2] == [NOT_ENOUGH, NOT_ENOUGH]
    assert verdicts[2:5] == [MORE_HELP] * 3
    assert verdicts[-1] == LEVELLING_OFF
    assert sig["slope_per_100_labels"] == pytest.approx(score_slope(labels, scores))
    assert sig["labels_since_previous"] == 50 and sig["thresholds"]["stable_changed"] == STABLE_CHANGED


# --------------------------------------------------------------------------- stored by real retrains


def _label_next(engine, project, n):
    people_label(engine, project, n, lambda task, k: int(DIGITS.target[int(task.external_id)]))


def _hints(engine, project):
    with session_scope(engine, write=False) as s:
        rows = s.execute(sa.select(Item.id, Item.hint).where(Item.project_id == project.id, sa.not_(Item.done))).all()
    return {i: h for i, h in rows}


def test_retrains_store_the_stopping_signal(engine):
    n_items, n_labelled = 300, 60
    labels = [int(v) for v in DIGITS.target[:n_labelled]] + [None] * (n_items - n_labelled)
    with session_scope(engine) as s:
        project = queue.create_project(s, "digits", options=list(range(10)), shuffle_prop=0.0)
        queue.add_items(s, project, [DIGITS.data[i] for i in range(n_items)], labels=labels,
                        external_ids=[str(i) for i in range(n_items)])
    options = RetrainOptions(model=LogisticRegression(max_iter=2000))

    first = retrain_project(engine, project, options)
    assert first.status == RunStatus.succeeded.value, first.message
    assert first.signals["changed_fraction"] is None and first.signals["n_compared"] == 0  # nothing to compare with yet
    assert first.signals["verdict"] == NOT_ENOUGH

    _label_next(engine, project, 30)
    before = _hints(engine, project)
    second = retrain_project(engine, project, options)
    after = _hints(engine, project)
    assert second.status == RunStatus.succeeded.value, second.message
    expected_changed = sum(before[i] != after[i] for i in after)
    assert second.signals["n_compared"] == len(after) == n_items - n_labelled - 30
    assert second.signals["n_changed"] == expected_changed
    assert second.signals["changed_fraction"] == pytest.approx(expected_changed / len(after))
    assert second.signals["labels_since_previous"] == 30
    assert second.signals["verdict"] == NOT_ENOUGH  # two scored runs: no slope yet

    _label_next(engine, project, 30)
    third = retrain_project(engine, project, options)
    assert third.signals["slope_per_100_labels"] == pytest.approx(
        score_slope([first.n_labels, second.n_labels, third.n_labels], [first.score_mean, second.score_mean, third.score_mean]))
    assert third.signals["verdict"] in (MORE_HELP, LEVELLING_OFF)
    with session_scope(engine, write=False) as s:  # read back from the database, JSON intact
        stored = s.execute(sa.select(ModelRun.signals).where(ModelRun.id == third.id)).scalar_one()
    assert stored["verdict"] == third.signals["verdict"] and stored["n_compared"] == third.signals["n_compared"]
    assert [r.id for r in latest_runs(engine, project)] == [third.id, second.id, first.id]
    assert serialization.loads(after[next(iter(after))]) in range(10)


# --------------------------------------------------------------------------- the Model page


def test_model_page_shows_the_verdict_and_the_figures_behind_it(app_env):
    from tests.test_app import add_user, errors, logged_in, retrain_now

    add_user(app_env, "boss", role="admin")
    with session_scope(app_env) as s:
        project = queue.create_project(s, "digits", options=list(range(10)), model_preset="logistic_regression", shuffle_prop=0.0)
        queue.add_items(s, project, [DIGITS.data[i] for i in range(200)], labels=[int(v) for v in DIGITS.target[:60]] + [None] * 140,
                        external_ids=[str(i) for i in range(200)])
    at = logged_in("boss")
    at.switch_page("pages/model.py").run()
    retrain_now(at)
    assert errors(at) == []
    assert any(NOT_ENOUGH.capitalize() in i.value for i in at.warning)
    for _ in range(2):
        _label_next(app_env, project, 25)
        retrain_now(at)
        assert errors(at) == []
    with session_scope(app_env, write=False) as s:
        latest = s.execute(sa.select(ModelRun).order_by(ModelRun.id.desc()).limit(1)).scalar_one()
    shown = [m.value for m in at.success] + [m.value for m in at.info] + [m.value for m in at.warning]
    assert any(latest.signals["verdict"].capitalize() in v and f"{latest.n_labels} labels" in v for v in shown), shown
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Predictions changed since previous run"] == f"{latest.signals['changed_fraction']:.1%}"
    assert metrics["Score gain per 100 labels"] == f"{latest.signals['slope_per_100_labels']:+.1f} points"
    assert any(c.value == latest.signals["verdict_reason"] for c in at.caption)
    assert any("Do more labels still help?" in chart.proto.spec for chart in at.get("plotly_chart"))


def test_model_page_in_chromium_shows_the_stopping_signal(tmp_path, server, browser):  # noqa: F811
    """In a real browser: the verdict, its figures and the chart of both figures against labels."""
    from superintendent.auth import create_user
    from superintendent.store import init_db, make_engine
    from browser_helpers import PASSWORD, log_in, settle

    base, db_url = server
    engine = make_engine(db_url)
    init_db(engine)
    with session_scope(engine) as s:
        create_user(s, "boss", PASSWORD, "admin")
        project = queue.create_project(s, "digits", options=list(range(10)), model_preset="logistic_regression", shuffle_prop=0.0)
        queue.add_items(s, project, [DIGITS.data[i] for i in range(200)], labels=[int(v) for v in DIGITS.target[:60]] + [None] * 140,
                        external_ids=[str(i) for i in range(200)])
    runs = [retrain_project(engine, project)]
    for _ in range(2):
        _label_next(engine, project, 25)
        runs.append(retrain_project(engine, project))
    latest = runs[-1]
    engine.dispose()
    assert latest.status == RunStatus.succeeded.value, latest.message

    page = browser.new_page(viewport={"width": 1300, "height": 1000})
    log_in(page, base, "boss")
    page.get_by_role("link", name="Model").click()
    settle(page, timeout=60_000)
    page.get_by_text("Do more labels still help?").first.wait_for(timeout=60_000)
    page.get_by_text(f"{latest.signals['verdict'].capitalize()} (run {latest.id}, {latest.n_labels} labels)").wait_for(timeout=60_000)
    page.get_by_text(f"{latest.signals['changed_fraction']:.1%}", exact=True).first.wait_for(timeout=60_000)
    charts = page.locator('[data-testid="stPlotlyChart"]')
    charts.first.wait_for(timeout=60_000)
    assert page.locator('[data-testid="stPlotlyChart"] .gtitle', has_text="Do more labels still help?").count() == 1
    page.locator('[data-testid="stPlotlyChart"]', has=page.locator(".gtitle", has_text="Do more labels still help?")).scroll_into_view_if_needed()
    page.wait_for_timeout(300)
    page.screenshot(path=str(tmp_path / "model-stopping.png"))
    page.close()
