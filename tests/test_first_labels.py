"""Models that learn from the first labels (issue 14): a multi-label project with unused options retrains, the presets
beat the majority class at 15-25 labels, and runs on the same labels count once in the stopping signal."""

from __future__ import annotations

import numpy as np
import plotly.express as px
import pytest
import sqlalchemy as sa
from pyjokes.jokes_en import jokes_en
from sklearn.datasets import load_digits, load_wine
from sklearn.linear_model import LogisticRegression

from superintendent import queue
from superintendent.al.stopping import LEVELLING_OFF, MORE_HELP, NOT_ENOUGH, ChangedPredictions, score_slope, stopping_signals
from superintendent.auth import ensure_user
from superintendent.learning import RetrainOptions, make_preset, run_retrain
from superintendent.store import Item, Role, RunStatus, session_scope

SEEDS = range(10)


# --------------------------------------------------------------------------- multi-label: options not used yet

def _multi_project(engine, preset, features):
    """Options a, b, c, d; the 30 labelled items all have a, some have b (feature 0 > 0), none has c or d."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(50, 3))
    labels = [["a", "b"] if row[0] > 0 else ["a"] for row in x[:30]] + [None] * 20
    items = [dict(zip(("u", "v", "w"), map(float, row))) for row in x] if features == "rows" else list(x)
    with session_scope(engine) as s:
        project = queue.create_project(s, f"multi-{preset}", options=["a", "b", "c", "d"], label_mode="multi", model_preset=preset,
                                       shuffle_prop=0.0, acquisition_function="margin")
        queue.add_items(s, project, items, labels=labels)
    return project


@pytest.mark.parametrize("preset, features", [("logistic_regression", "arrays"), ("gradient_boosting", "rows")])
def test_multi_label_retrains_before_every_option_was_used(engine, preset, features):
    project = _multi_project(engine, preset, features)
    run = run_retrain(engine, project)
    assert run.status == RunStatus.succeeded.value, run.message
    assert run.n_labels == 30 and run.n_ranked == 20
    assert run.score_mean is not None and run.score_mean > 0.6  # cross-validation works too (folds with constant options)
    with session_scope(engine) as s:
        user = ensure_user(s, "alice", role=Role.labeller)
        tasks = []
        for _ in range(20):
            tasks.append(queue.claim_next(s, project, user, resume=False))
    for task in tasks:
        assert "a" in task.hint and not {"c", "d"} & set(task.hint)  # every item has a; nobody used c or d
        top = dict(task.hint_top)
        assert top["a"] == pytest.approx(1.0) and all(top.get(o, 0.0) == 0.0 for o in ("c", "d"))
        # the confidence is the model's certainty about b, the one option it could learn; not inflated by a, c and d
        assert task.hint_confidence == pytest.approx(max(top["b"], 1 - top["b"]), abs=1e-3)
    confidences = [t.hint_confidence for t in tasks]
    assert min(confidences) < 0.9 and confidences[0] == pytest.approx(min(confidences), abs=1e-3)  # least certain first (margin)


def test_multi_label_with_nothing_to_learn_yet_is_skipped(engine):
    with session_scope(engine) as s:
        project = queue.create_project(s, "same", options=["a", "b"], label_mode="multi", model_preset="logistic_regression")
        queue.add_items(s, project, list(np.random.default_rng(0).normal(size=(6, 2))), labels=[["a"]] * 3 + [None] * 3)
    run = run_retrain(engine, project)
    assert run.status == RunStatus.skipped.value and "some labelled items have and others lack" in run.message


# --------------------------------------------------------------------------- presets at the first labels

def _wine():
    data = load_wine(as_frame=True)
    return data.data, data.target.astype(str).to_numpy()


def _tips():
    """plotly's tips: lunch or dinner, from the bill, tip, sex, smoker, day and party size (the day carries it)."""
    tips = px.data.tips()
    return tips.drop(columns="time"), tips["time"].to_numpy()


def _jokes():
    texts = jokes_en["neutral"] + jokes_en["chuck"]
    return texts, np.array(["neutral"] * len(jokes_en["neutral"]) + ["chuck"] * len(jokes_en["chuck"]))


def _rows(x, rows):
    return x.iloc[rows] if hasattr(x, "iloc") else [x[i] for i in rows]


def _first_labels(y, n, seed):
    """``n`` random labelled rows (drawn again until two classes: a retrain skips one class) and the unlabelled rest."""
    rng = np.random.default_rng(seed)
    while True:
        labelled = rng.choice(len(y), size=n, replace=False)
        if len(set(y[labelled])) > 1:
            return labelled, np.setdiff1d(np.arange(len(y)), labelled)


@pytest.mark.parametrize("data, preset, n", [(_wine, "gradient_boosting", 25), (_tips, "gradient_boosting", 15),
                                             (_jokes, "tfidf_logistic_regression", 20)], ids=["wine-25", "tips-time-15", "jokes-20"])
def test_presets_beat_the_majority_class_at_the_first_labels(data, preset, n):
    x, y = data()
    passed = []
    for seed in SEEDS:
        labelled, rest = _first_labels(y, n, seed)
        predicted = make_preset(preset).fit(_rows(x, labelled), y[labelled]).predict(_rows(x, rest))
        values, counts = np.unique(y[labelled], return_counts=True)
        majority = float(np.mean(y[rest] == values[counts.argmax()]))
        passed.append(len(set(predicted)) > 1 and float(np.mean(predicted == y[rest])) > majority)
    assert all(passed), f"seeds passing: {sum(passed)} of {len(passed)}"


def test_the_table_preset_adds_boosting_at_enough_labels():
    """Below SMALL_DATA_LABELS logistic regression alone; from there on its probabilities averaged with boosted trees'."""
    from sklearn.ensemble import HistGradientBoostingClassifier, VotingClassifier

    from superintendent.learning.presets import SMALL_DATA_LABELS

    x, y = _tips()
    labelled, rest = _first_labels(y, SMALL_DATA_LABELS - 1, 0)
    fitted = make_preset("gradient_boosting").fit(x.iloc[labelled], y[labelled])[-1].estimator_
    assert isinstance(fitted[-1], LogisticRegression)
    labelled, rest = _first_labels(y, SMALL_DATA_LABELS, 0)
    model = make_preset("gradient_boosting").fit(x.iloc[labelled], y[labelled])
    fitted = model[-1].estimator_
    assert isinstance(fitted, VotingClassifier) and fitted.voting == "soft"
    linear, trees = fitted.estimators_
    assert isinstance(linear[-1], LogisticRegression) and isinstance(trees, HistGradientBoostingClassifier)
    proba = model.predict_proba(x.iloc[rest])
    both = (linear.predict_proba(x.iloc[rest]) + trees.predict_proba(x.iloc[rest])) / 2
    assert np.allclose(proba, both)  # the mean of the two models' probabilities


def test_the_table_preset_in_a_retrain_guesses_both_classes_from_15_labels(engine):
    """Through the real retrain: tips rows stored as items, 15 labelled, the hints on the rest name lunch and dinner."""
    x, y = _tips()
    labelled, _ = _first_labels(y, 15, 0)
    labels = [y[i] if i in set(labelled) else None for i in range(len(y))]
    with session_scope(engine) as s:
        project = queue.create_project(s, "tips", options=["Lunch", "Dinner"], model_preset="gradient_boosting")
        queue.add_items(s, project, x.to_dict("records"), labels=labels)
    run = run_retrain(engine, project)
    assert run.status == RunStatus.succeeded.value, run.message
    with session_scope(engine, write=False) as s:
        hints = s.execute(sa.select(Item.hint).where(Item.project_id == project.id, sa.not_(Item.done))).scalars().all()
    assert len(hints) == len(y) - 15 and {"Lunch", "Dinner"} <= {str(h).strip('"') for h in hints}


# --------------------------------------------------------------------------- the stopping signal: runs on the same labels

def _signals(runs):
    """stopping_signals over a run sequence [(n_labels, score, changed fraction or None)], as retrains store them."""
    history, out = [], []
    for n, score, fraction in runs:
        changed = None if fraction is None else ChangedPredictions(1000, round(fraction * 1000))
        sig = stopping_signals(history, changed, n, score)
        out.append(sig)
        history.append({"n_labels": n, "score": score, "changed_fraction": sig["changed_fraction"]})
    return out


def test_a_repeated_run_on_the_same_labels_is_no_slope():
    """Issue 14: runs at 10/25/25 labels gave '+145.7 points per 100 labels, more labels still help'."""
    *_, third = _signals([(10, 0.40, None), (25, 0.70, 0.35), (25, 0.70, 0.0)])
    assert third["slope_per_100_labels"] is None and third["verdict"] == NOT_ENOUGH
    assert third["labels_since_previous"] == 0 and "count once" in third["verdict_reason"]
    assert third["changed_fraction"] is None and (third["n_compared"], third["n_changed"]) == (1000, 0)  # compared with itself


def test_a_repeated_run_gives_no_verdict_from_its_own_unchanged_predictions():
    """Issue 14: runs at 20/35/35 gave a verdict from 0.0 % changed predictions (the run compared with itself)."""
    *_, third = _signals([(20, 0.80, None), (35, 0.81, 0.005), (35, 0.81, 0.0)])
    assert third["verdict"] == NOT_ENOUGH
    # with a third label count the verdict uses one figure per label count: 35's first run (0.5 %), then 50's
    *_, fourth = _signals([(20, 0.80, None), (35, 0.81, 0.20), (35, 0.81, 0.0), (50, 0.812, 0.004)])
    assert fourth["slope_per_100_labels"] == pytest.approx(score_slope([20, 35, 50], [0.80, 0.81, 0.812]))
    assert fourth["verdict"] == MORE_HELP and "20.0%, 0.4%" in fourth["verdict_reason"]


def test_the_latest_score_on_the_same_labels_counts():
    """A preset changed between two runs on the same labels: the new model's score is the one on the line."""
    *_, last = _signals([(20, 0.5, None), (40, 0.6, 0.1), (40, 0.9, 0.0), (60, 0.9, 0.005), (80, 0.9, 0.004)])
    assert last["slope_per_100_labels"] == pytest.approx(score_slope([20, 40, 60, 80], [0.5, 0.9, 0.9, 0.9]))
    assert last["slope_runs"] == 4


def _label_next(engine, project, n, truth):
    with session_scope(engine) as s:
        user = ensure_user(s, "labeller", role=Role.labeller)
    for _ in range(n):
        with session_scope(engine) as s:
            task = queue.claim_next(s, project, user, resume=False)
            queue.submit(s, project, user, task.item_id, int(truth[int(task.external_id)]))


def test_retrains_on_the_same_labels_count_once(engine):
    """Through real retrains: 20 labels, 35, 35 again (no new labels), then 50."""
    digits = load_digits()
    n_items = 300
    with session_scope(engine) as s:
        project = queue.create_project(s, "digits", options=list(range(10)), shuffle_prop=0.0)
        queue.add_items(s, project, [digits.data[i] for i in range(n_items)],
                        labels=[int(v) for v in digits.target[:20]] + [None] * (n_items - 20),
                        external_ids=[str(i) for i in range(n_items)])
    options = RetrainOptions(model=LogisticRegression(max_iter=2000))
    runs = [run_retrain(engine, project, options)]
    _label_next(engine, project, 15, digits.target)
    runs += [run_retrain(engine, project, options), run_retrain(engine, project, options)]
    assert all(r.status == RunStatus.succeeded.value for r in runs), [r.message for r in runs]
    again = runs[-1]
    assert again.n_labels == runs[-2].n_labels == 35 and again.signals["labels_since_previous"] == 0
    assert again.signals["slope_per_100_labels"] is None and again.signals["verdict"] == NOT_ENOUGH
    assert again.signals["changed_fraction"] is None and again.signals["n_compared"] == n_items - 35
    _label_next(engine, project, 15, digits.target)
    runs.append(run_retrain(engine, project, options))
    last = runs[-1].signals
    assert last["slope_per_100_labels"] == pytest.approx(score_slope([20, 35, 50], [runs[0].score_mean, runs[2].score_mean,
                                                                                    runs[3].score_mean]))
    assert last["verdict"] in (MORE_HELP, LEVELLING_OFF)
    assert f"{runs[1].signals['changed_fraction']:.1%}, {last['changed_fraction']:.1%}" in last["verdict_reason"]
