"""Retraining: fit, evaluate, rank, write priorities, record the run; on SQLite and PostgreSQL."""

from __future__ import annotations

import time

import numpy as np
import pytest
import sqlalchemy as sa
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression

from superintendent import queue
from superintendent.acquisition_functions import margin
from superintendent.auth import ensure_user
from superintendent.learning import RetrainOptions, stack_features, top_guesses
from superintendent.orchestration import orchestrate, project_schedule, retrain_due_projects, retrain_if_due, retrain_lock, retrain_project
from superintendent.store import ModelRun, Role, RunStatus, session_scope

DIGITS = load_digits()


def flatten(x, y):
    return np.asarray(x).reshape(len(x), -1), y


def digits_project(engine, n_items=300, n_labelled=100, name="digits", **settings):
    labels = [int(v) for v in DIGITS.target[:n_labelled]] + [None] * (n_items - n_labelled)
    with session_scope(engine) as s:
        project = queue.create_project(s, name, options=list(range(10)), **settings)
        queue.add_items(s, project, list(DIGITS.images[:n_items]), labels=labels)
    return project


def claim_order(engine, project, n):
    with session_scope(engine) as s:
        user = ensure_user(s, "reader", role=Role.labeller)
    order = []
    for _ in range(n):
        with session_scope(engine) as s:
            task = queue.claim_next(s, project, user, resume=False)
        order.append(task.item_id)
    with session_scope(engine) as s:
        queue.release(s, project, user)
    return order


def test_retrain_scores_and_puts_the_least_certain_items_first(engine):
    project = digits_project(engine)
    run = retrain_project(engine, project, RetrainOptions(model=LogisticRegression(max_iter=2000), model_preprocess=flatten,
                                                          acquisition_function="margin", shuffle_prop=0.0))
    assert run.status == RunStatus.succeeded.value, run.message
    assert run.n_labels == 100 and run.n_ranked == 200
    assert 0.7 < run.score_mean <= 1.0 and len(run.scores) == 3 and run.score_std >= 0
    assert set(run.per_class) == {str(d) for d in range(10)}
    assert np.asarray(run.confusion["matrix"]).sum() == 100
    assert set(run.phase_seconds) >= {"read_labelled", "evaluate", "fit", "predict", "rank", "write"}

    # the queue now follows the margin order of the same model's predictions
    model = LogisticRegression(max_iter=2000).fit(DIGITS.data[:100], DIGITS.target[:100])
    proba = model.predict_proba(DIGITS.data[100:300])
    with session_scope(engine, write=False) as s:
        ids = s.execute(sa.select(queue.Item.id).where(queue.Item.project_id == project.id).order_by(queue.Item.id)).scalars().all()
    expected = [ids[100 + i] for i in margin(proba)[:10]]
    assert claim_order(engine, project, 10) == expected


def test_batched_prediction_gives_the_same_order(engine):
    a = digits_project(engine, name="a")
    b = digits_project(engine, name="b")
    for project, batch in ((a, 10_000), (b, 7)):
        retrain_project(engine, project, RetrainOptions(model=LogisticRegression(max_iter=2000), model_preprocess=flatten,
                                                        shuffle_prop=0.0, batch_size=batch))
    first_a, first_b = claim_order(engine, a, 20), claim_order(engine, b, 20)  # item ids differ: compare positions
    with session_scope(engine, write=False) as s:
        ids_a = s.execute(sa.select(queue.Item.id).where(queue.Item.project_id == a.id).order_by(queue.Item.id)).scalars().all()
        ids_b = s.execute(sa.select(queue.Item.id).where(queue.Item.project_id == b.id).order_by(queue.Item.id)).scalars().all()
    assert [ids_a.index(i) for i in first_a] == [ids_b.index(i) for i in first_b]


class Exploding(BaseEstimator, ClassifierMixin):
    def fit(self, x, y):
        raise RuntimeError("the GPU caught fire")

    def predict_proba(self, x):
        raise RuntimeError("unreachable")


def test_a_failing_model_records_its_error_and_labelling_goes_on(engine):
    project = digits_project(engine, n_items=20, n_labelled=10)
    with session_scope(engine, write=False) as s:
        before = s.execute(sa.select(queue.Item.id, queue.Item.priority).order_by(queue.Item.id)).all()
    run = retrain_project(engine, project, RetrainOptions(model=Exploding(), eval_method=lambda m, x, y: [1.0], model_preprocess=flatten))
    assert run.status == RunStatus.failed.value
    assert "RuntimeError: the GPU caught fire" in run.message
    with session_scope(engine, write=False) as s:
        assert s.execute(sa.select(queue.Item.id, queue.Item.priority).order_by(queue.Item.id)).all() == before
    with session_scope(engine) as s:
        user = ensure_user(s, "alice", role=Role.labeller)
        task = queue.claim_next(s, project, user)
        queue.submit(s, project, user, task.item_id, 3)
        assert queue.progress(s, project).labelled == 11


def test_too_few_classes_skips_and_too_few_per_class_skips_cv(engine):
    one_class = digits_project(engine, n_items=10, n_labelled=0, name="one")
    with session_scope(engine) as s:
        queue.add_items(s, one_class, [np.zeros((8, 8))], labels=[1])
    run = retrain_project(engine, one_class, RetrainOptions(model=LogisticRegression(), model_preprocess=flatten))
    assert run.status == RunStatus.skipped.value
    assert run.message.startswith("need labels of at least two classes to train; the only label is '1'"), run.message

    sparse = digits_project(engine, n_items=30, n_labelled=12, name="sparse")  # digits 0..9, then 0, 1: most classes once
    run = retrain_project(engine, sparse, RetrainOptions(model=LogisticRegression(max_iter=2000), model_preprocess=flatten))
    assert run.status == RunStatus.succeeded.value
    assert run.score_mean is None and "needs at least 2 labels of every class" in run.message
    assert run.n_ranked == 18


def test_nothing_left_to_rank(engine):
    project = digits_project(engine, n_items=60, n_labelled=60)
    run = retrain_project(engine, project, RetrainOptions(model=LogisticRegression(max_iter=2000), model_preprocess=flatten))
    assert run.status == RunStatus.succeeded.value and run.n_ranked == 0
    with session_scope(engine, write=False) as s:
        assert queue.all_labels(s, project) == [int(v) for v in DIGITS.target[:60]]  # no label wiped


def test_multi_label_wraps_the_model(engine):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(80, 4))
    labels = [[opt for opt, on in zip(("a", "b"), (row[0] > 0, row[1] > 0)) if on] for row in x]
    with session_scope(engine) as s:
        project = queue.create_project(s, "multi", options=["a", "b"], label_mode="multi")
        queue.add_items(s, project, list(x), labels=labels[:60] + [None] * 20)
    run = retrain_project(engine, project, RetrainOptions(model=LogisticRegression(), acquisition_function="entropy"))
    assert run.status == RunStatus.succeeded.value, run.message
    assert run.n_ranked == 20 and run.score_mean > 0.6


def test_custom_acquisition_and_eval(engine):
    project = digits_project(engine, n_items=50, n_labelled=30)

    def last_first(proba):
        return np.arange(len(proba))[::-1]

    run = retrain_project(engine, project, RetrainOptions(model=LogisticRegression(max_iter=2000), model_preprocess=flatten,
                                                          acquisition_function=last_first, shuffle_prop=0.0,
                                                          eval_method=lambda model, x, y: [0.5, 0.7]))
    assert run.status == RunStatus.succeeded.value and run.acquisition_function == "last_first"
    assert run.score_mean == pytest.approx(0.6)
    with session_scope(engine, write=False) as s:
        ids = s.execute(sa.select(queue.Item.id).where(queue.Item.project_id == project.id).order_by(queue.Item.id)).scalars().all()
    assert claim_order(engine, project, 3) == ids[::-1][:3]

    bad = retrain_project(engine, project, RetrainOptions(model=LogisticRegression(max_iter=2000), model_preprocess=flatten,
                                                          acquisition_function=lambda p: np.zeros(len(p), dtype=int)))
    assert bad.status == RunStatus.failed.value and "must return a visiting order" in bad.message


def test_one_retrain_per_project_at_a_time(engine):
    project = digits_project(engine, n_items=30, n_labelled=20)
    with retrain_lock(engine, project.id) as got:
        assert got
        with retrain_lock(engine, project.id) as again:
            assert not again
        assert retrain_project(engine, project, RetrainOptions(model=LogisticRegression())) is None
    with retrain_lock(engine, project.id) as got:
        assert got


def test_a_run_left_running_by_a_dead_process_is_closed(engine):
    project = digits_project(engine, n_items=30, n_labelled=20)
    with session_scope(engine) as s:
        s.add(ModelRun(project_id=project.id, status=RunStatus.running.value))
    retrain_project(engine, project, RetrainOptions(model=LogisticRegression(max_iter=2000), model_preprocess=flatten))
    with session_scope(engine, write=False) as s:
        statuses = s.execute(sa.select(ModelRun.status, ModelRun.message).order_by(ModelRun.id)).all()
    assert statuses[0] == ("failed", "abandoned: the process running it stopped")
    assert statuses[1][0] == "succeeded"


def test_retrain_if_due_waits_for_new_labels(engine):
    project = digits_project(engine, n_items=60, n_labelled=30)
    options = RetrainOptions(model=LogisticRegression(max_iter=2000), model_preprocess=flatten)
    assert retrain_if_due(engine, project.id, 5, options) is not None  # never trained: due
    assert retrain_if_due(engine, project.id, 5, options) is None
    with session_scope(engine) as s:
        user = ensure_user(s, "alice", role=Role.labeller)
        for _ in range(5):
            task = queue.claim_next(s, project, user)
            queue.submit(s, project, user, task.item_id, 1)
    assert retrain_if_due(engine, project.id, 5, options).n_labels == 35


def test_orchestrate_runs_on_a_schedule_and_stops(engine):
    project = digits_project(engine, n_items=60, n_labelled=30)
    options = RetrainOptions(model=LogisticRegression(max_iter=2000), model_preprocess=flatten)
    t0 = time.monotonic()
    runs = orchestrate(engine, project, options, interval_seconds=0.3, max_runs=2)
    assert [r.status for r in runs] == ["succeeded", "succeeded"]
    assert time.monotonic() - t0 >= 0.3
    assert orchestrate(engine, project, options, interval_seconds=None)[0].status == "succeeded"


def test_stack_features():
    assert stack_features([np.zeros((2, 2)), np.ones((2, 2))]).shape == (2, 2, 2)
    assert stack_features(["a", "b"]) == ["a", "b"]
    assert stack_features([1, 2.5]).dtype == float
    frame = stack_features([{"a": 1, "b": "x"}, {"a": 2, "b": "y"}])
    assert list(frame.columns) == ["a", "b"]


def test_retrain_stores_the_models_guess_as_a_hint(engine):
    project = digits_project(engine, n_items=150, n_labelled=100)
    retrain_project(engine, project, RetrainOptions(model=LogisticRegression(max_iter=2000), model_preprocess=flatten, shuffle_prop=0.0))
    with session_scope(engine) as s:
        user = ensure_user(s, "alice", role=Role.labeller)
        tasks = []
        for _ in range(50):
            task = queue.claim_next(s, project, user, resume=False)
            tasks.append(task)
    assert all(t.hint in range(10) and 0.0 < t.hint_confidence <= 1.0 for t in tasks)
    truth = {i: int(DIGITS.target[i]) for i in range(100, 150)}
    with session_scope(engine, write=False) as s:
        ids = s.execute(sa.select(queue.Item.id).where(queue.Item.project_id == project.id).order_by(queue.Item.id)).scalars().all()
    right = sum(t.hint == truth[ids.index(t.item_id)] for t in tasks)
    assert right >= 35  # logistic regression on 100 digits guesses most of the rest
    # the queue's least certain items come first: confidences rise along the visiting order (margin, not max-prob, so roughly)
    assert np.mean([t.hint_confidence for t in tasks[:10]]) < np.mean([t.hint_confidence for t in tasks[-10:]])
    # the top three guesses, best first, with probabilities: the first is the hint and its confidence
    for t in tasks:
        labels, probs = zip(*t.hint_top)
        assert len(t.hint_top) == 3 and labels[0] == t.hint and len(set(labels)) == 3 and set(labels) <= set(range(10))
        assert list(probs) == sorted(probs, reverse=True) and abs(probs[0] - t.hint_confidence) < 1e-3 and sum(probs) <= 1.0 + 1e-6


def test_top_guesses_single_and_multi_label():
    proba = np.array([[0.1, 0.7, 0.2], [0.5, 0.25, 0.25]])
    assert top_guesses(proba, np.array(["a", "b", "c"]), multi=False, k=2) == [[("b", 0.7), ("c", 0.2)], [("a", 0.5), ("b", 0.25)]]
    multi = np.array([[[0.9, 0.2, 0.6], [0.1, 0.8, 0.4]]])  # (rows, [no, yes], labels): yes-probabilities 0.1, 0.8, 0.4
    assert top_guesses(multi, ["x", "y", "z"], multi=True, k=5) == [[("y", 0.8), ("z", 0.4), ("x", 0.1)]]


def test_projects_retrain_on_their_own_schedule(engine):
    with session_scope(engine) as s:
        manual = queue.create_project(s, "manual", options=["a", "b"])
        auto = queue.create_project(s, "auto", options=["a", "b"], model_preset="logistic_regression",
                                    retrain_interval_seconds=3600, retrain_interval_n_labels=4)
        for p in (manual, auto):
            queue.add_items(s, p, list(np.random.default_rng(0).normal(size=(12, 3))), labels=["a", "b"] * 2 + [None] * 8)
    assert not project_schedule(engine, manual).enabled
    assert project_schedule(engine, manual).description == ("no automatic retraining: the project has no model "
                                                           "(choose one on the Admin page)")
    with session_scope(engine) as s:
        by_hand = queue.create_project(s, "by hand", options=["a", "b"], model_preset="logistic_regression")
        misfit = queue.create_project(s, "misfit", options=["a", "b"], label_mode="multi", model_preset="token_crf",
                                      retrain_interval_n_labels=4)
    assert project_schedule(engine, by_hand).description == ("only when an admin presses Retrain now "
                                                             "(no retrain interval is set on the Admin page)")
    assert project_schedule(engine, misfit).description.startswith("no automatic retraining: model preset 'token_crf' marks spans")
    assert not project_schedule(engine, by_hand).enabled and not project_schedule(engine, misfit).enabled
    first = project_schedule(engine, auto)
    assert first.due and first.description == "due now"  # never trained, 4 labels in
    assert [r.project_id for r in retrain_due_projects(engine)] == [auto.id]
    after = project_schedule(engine, auto)
    assert not after.due and after.labels_needed == 4 and "after 4 more labels" in after.description and "UTC" in after.description
    assert retrain_due_projects(engine) == []


def test_the_image_preset_trains_on_image_files(engine, tmp_path):
    from PIL import Image

    items, labels = [], []
    for i, image in enumerate(DIGITS.images[:40]):
        path = tmp_path / f"{i}.png"
        Image.fromarray((image * 15).astype(np.uint8)).save(path)
        items.append({"image_path": str(path), "name": path.name})
        labels.append(int(DIGITS.target[i]) if i < 30 else None)
    with session_scope(engine) as s:
        project = queue.create_project(s, "files", options=list(range(10)), model_preset="logistic_regression")
        queue.add_items(s, project, items, labels=labels)
    run = retrain_project(engine, project)
    assert run.status == RunStatus.succeeded.value, run.message
    assert run.n_ranked == 10
