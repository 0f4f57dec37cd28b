"""The cold start (issue 14, item 6): before the first model the queue is ordered for coverage, not insertion order.

* the pure order (superintendent.al.coverage): a permutation, the same for a seed, the first rows spread over the groups;
* the numeric view without labels (arrays, table rows, text, image files);
* in a project, on SQLite and PostgreSQL: a fresh project of digits imported sorted by class gets a coverage head (the
  first 10 items claimed span more classes than the first 10 inserted); a second run with no new items does not rewrite;
  new items trigger it again; every item stays claimable and none is handed out twice; spans projects are left alone; a
  failing cold start is a message, labelling goes on; the scheduler runs it for a project with items and no labels.
"""

from __future__ import annotations

import time

import numpy as np
import pytest
import sqlalchemy as sa
from scipy import sparse
from sklearn.datasets import load_digits, load_wine
from sklearn.linear_model import LogisticRegression

from superintendent import queue
from superintendent.al.coverage import coverage_order, default_centres
from superintendent.auth import ensure_user
from superintendent.learning import cold_start
from superintendent.learning.retrain import RetrainOptions, run_retrain
from superintendent.orchestration import project_schedule, retrain_due_projects
from superintendent.store import Item, Project, Role, RunStatus, session_scope

DIGITS = load_digits()
# 30 digits of each class, then 5 more of each, sorted by class: insertion order is as poor as it gets
BY_CLASS = np.concatenate([np.flatnonzero(DIGITS.target == c)[:30] for c in range(10)])
MORE = np.concatenate([np.flatnonzero(DIGITS.target == c)[30:35] for c in range(10)])


def blobs(n_per: int = 40, centres: int = 6, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    where = rng.normal(0, 20, (centres, 2))
    group = np.repeat(np.arange(centres), n_per)
    return where[group] + rng.normal(0, 1, (len(group), 2)), group


# --------------------------------------------------------------------------- the pure order


@pytest.mark.parametrize("n", [0, 1, 5, 20, 21, 240], ids=lambda n: f"{n} rows")
def test_the_order_is_a_permutation_of_every_row(n):
    x, _ = blobs()
    order = coverage_order(x[:n], rng=0)
    assert order.dtype == np.intp and sorted(order.tolist()) == list(range(n))


def test_the_same_seed_gives_the_same_order_and_another_seed_another():
    x, _ = blobs()
    assert np.array_equal(coverage_order(x, rng=3), coverage_order(x, rng=np.random.default_rng(3)))
    assert not np.array_equal(coverage_order(x, rng=3), coverage_order(x, rng=4))


def test_the_first_rows_are_one_per_group_largest_group_first():
    x, group = blobs(n_per=30, centres=6)
    x, group = np.concatenate([x, x[group == 2] + 0.01]), np.concatenate([group, group[group == 2]])  # group 2 twice as big
    order = coverage_order(x, rng=0, n_centres=6, random_prop=0.0)
    assert sorted(group[order[:6]].tolist()) == list(range(6))  # one per group before any group twice
    assert group[order[0]] == 2
    assert sorted(group[order[6:12]].tolist()) == list(range(6))  # then the next nearest of each


def test_the_nearest_row_to_each_centre_comes_first():
    x = np.array([[0.0], [1.0], [2.0], [100.0], [101.0], [102.0], [103.0], [104.0]])
    order = coverage_order(x, rng=0, n_centres=2, random_prop=0.0)
    assert order[:2].tolist() == [5, 1]  # the middle of the larger group, then of the smaller
    assert order[2] in (4, 6) and order[3] in (0, 2)  # then the next nearest of each, in the same group order


def test_random_picks_take_the_stated_share_of_positions():
    x, _ = blobs(n_per=100, centres=5)
    plain = coverage_order(x, rng=0, random_prop=0.0)
    mixed = coverage_order(x, rng=0, random_prop=0.3)
    moved = np.mean(plain != mixed)
    assert 0.15 < moved <= 0.3  # positions drawn for random picks (a pick may land where it was)
    assert np.array_equal(coverage_order(x, rng=0, random_prop=1.0).size, x.shape[0])


def test_sparse_features_and_more_groups_than_rows_are_fine():
    x = sparse.random(50, 300, density=0.05, random_state=0, format="csr")
    assert sorted(coverage_order(x, rng=0).tolist()) == list(range(50))
    assert sorted(coverage_order(np.ones((7, 3)), rng=0, n_centres=3).tolist()) == list(range(7))  # all rows alike


def test_default_centres_follow_the_pool():
    assert [default_centres(n) for n in (5, 20, 178, 1_257, 2_000, 20_000)] == [5, 20, 20, 25, 40, 50]


@pytest.mark.parametrize("bad, message", [
    (np.array([[1.0], [np.nan]]), "NaN or infinity in row 1"),
    ([["a"], ["b"]], "must be numeric"),
    (np.float64(3.0), "one row per item"),
])
def test_bad_features_say_what_is_wrong(bad, message):
    with pytest.raises(ValueError, match=message):
        coverage_order(bad, rng=0)


def test_bad_settings_say_what_is_wrong():
    x, _ = blobs()
    with pytest.raises(ValueError, match="n_centres must be a whole number"):
        coverage_order(x, rng=0, n_centres=0)
    with pytest.raises(ValueError, match="shuffle_prop must be between 0 and 1"):
        coverage_order(x, rng=0, random_prop=1.5)


def test_coverage_spans_more_digit_classes_than_random_first_picks():
    x = DIGITS.data / 16.0
    covered = [len(set(DIGITS.target[coverage_order(x, rng=seed)[:10]])) for seed in range(5)]
    random = [len(set(DIGITS.target[np.random.default_rng(seed).permutation(len(x))[:10]])) for seed in range(5)]
    assert np.mean(covered) >= np.mean(random) and min(covered) >= 6, (covered, random)


# --------------------------------------------------------------------------- the numeric view, no labels


def _view(features, data_type="any", model_columns=None):
    project = Project(name="view", data_type=data_type, model_columns=model_columns)
    return cold_start.coverage_features(features, project)


def test_views_of_arrays_tables_and_text_are_finite_numbers():
    images = _view(list(DIGITS.images[:100]))
    assert images.shape == (100, 64) and np.isfinite(images).all()
    wide = _view([np.arange(300.0) * i for i in range(30)])
    assert wide.shape == (30, 64)  # wider than 64: randomly projected
    wine = load_wine(as_frame=True).data
    rows = wine.to_dict("records")
    rows[3]["alcohol"] = None
    rows[4]["colour"] = ["nested", "value"]  # a list in a cell: its text is a category
    table = _view([dict(r, kind="red" if i % 2 else "white") for i, r in enumerate(rows)])
    assert table.shape[0] == len(wine) and np.isfinite(table).all()
    texts = _view([f"a text about {w} and {w}s" for w in ("cats", "dogs", "cars", "boats") * 10], data_type="text")
    assert texts.shape[0] == 40 and np.allclose(np.linalg.norm(texts, axis=1), 1.0)
    assert np.array_equal(_view(["a", "", "?"], data_type="text"), np.zeros((3, 1)))  # no words at all: all alike


def test_a_table_view_keeps_the_model_columns_only():
    rows = [{"id": i, "x": float(i % 3)} for i in range(30)]
    assert _view(rows, model_columns=["x"]).shape == (30, 1)


def test_items_without_a_numeric_view_are_refused():
    with pytest.raises(cold_start.NoNumericView, match="neither arrays"):
        _view([{"a": 1}, [1, 2], "x"])


# --------------------------------------------------------------------------- in a project, both databases


def digits_project(engine, order=BY_CLASS, name="digits", **settings):
    """Digits items sorted by class (insertion order: all 0s first), no labels; ids are item positions."""
    with session_scope(engine) as s:
        project = queue.create_project(s, name, options=list(range(10)), data_type="image", model_preset="logistic_regression", **settings)
        queue.add_items(s, project, [DIGITS.images[i] for i in order], external_ids=[str(i) for i in order])
    return project


def item_class(engine, project) -> dict[int, int]:
    with session_scope(engine, write=False) as s:
        rows = s.execute(sa.select(Item.id, Item.external_id).where(Item.project_id == project.id)).all()
    return {item_id: int(DIGITS.target[int(ext)]) for item_id, ext in rows}


def priorities(engine, project) -> dict[int, float]:
    with session_scope(engine, write=False) as s:
        return dict(s.execute(sa.select(Item.id, Item.priority).where(Item.project_id == project.id)).all())


def claim_all(engine, project, user_name="reader", limit=None, classes=None) -> list[int]:
    """Claim and label (with the true class) until the queue is empty or ``limit`` items were handed out."""
    classes = classes or item_class(engine, project)
    with session_scope(engine) as s:
        user = ensure_user(s, user_name, role=Role.labeller)
    handed = []
    while limit is None or len(handed) < limit:
        with session_scope(engine) as s:
            task = queue.claim_next(s, project, user, resume=False)
            if task is None:
                break
            handed.append(task.item_id)
            queue.submit(s, project, user, task.item_id, classes[task.item_id])
    return handed


def test_a_fresh_project_gets_a_coverage_head_instead_of_insertion_order(engine):
    project = digits_project(engine)
    classes = item_class(engine, project)
    inserted = sorted(classes)[:10]
    run = run_retrain(engine, project)
    assert run.status == RunStatus.skipped.value and "at least two classes" in run.message
    assert "ordered for coverage" in run.message and run.n_ranked == 300
    signal = run.signals["cold_start"]
    assert signal["items"] == signal["pool"] == signal["sampled"] == signal["written"] == 300 and signal["centres"] == 20
    assert "20 k-means groups of the 300 unlabelled items" in run.message
    first = claim_all(engine, project, limit=10)
    spanned, insertion = len({classes[i] for i in first}), len({classes[i] for i in inserted})
    assert insertion == 1 and spanned >= 5, (spanned, [classes[i] for i in first])


def test_a_second_run_with_no_new_items_does_not_rewrite_and_new_items_do(engine):
    project = digits_project(engine)
    first = run_retrain(engine, project)  # rng None: a rewrite would draw another order
    assert first.signals["cold_start"]["written"] == 300
    before = priorities(engine, project)
    claim_all(engine, project, limit=1)  # a label of one class: still no model, and one item fewer open
    again = run_retrain(engine, project)
    assert again.status == RunStatus.skipped.value and again.n_ranked == 0
    assert again.signals["cold_start"] == {"items": 300, "written": 0, "unchanged": True}
    assert "keeps the coverage order written earlier" in again.message
    assert priorities(engine, project) == before

    with session_scope(engine) as s:
        queue.add_items(s, project, [DIGITS.images[i] for i in MORE], external_ids=[str(i) for i in MORE])
    third = run_retrain(engine, project)
    assert third.signals["cold_start"]["items"] == 350 and third.signals["cold_start"]["written"] == 349 and third.n_ranked == 349
    after = priorities(engine, project)
    assert min(p for k, p in after.items() if k not in before) < 299  # the new items (added behind, from 300 on) placed among the rest


def test_every_item_stays_claimable_and_none_is_handed_out_twice(engine, monkeypatch):
    monkeypatch.setenv("SUPERINTENDENT_RANK_WRITE_LIMIT", "40")  # a head of 40 (below every open item), the rest as they were
    project = digits_project(engine, order=BY_CLASS[:200])
    run = run_retrain(engine, project)
    assert run.signals["cold_start"]["written"] == 40
    head = sorted(priorities(engine, project).items(), key=lambda kv: (kv[1], kv[0]))[:40]
    assert all(p < 0 for _, p in head)  # placed before the items that kept their insertion priorities (0, 1, ...)
    handed = claim_all(engine, project, user_name="a", limit=40)
    assert set(handed) == {item_id for item_id, _ in head}
    handed += claim_all(engine, project, user_name="b")
    assert len(handed) == len(set(handed)) == 200


def test_a_big_pool_is_sampled_and_its_head_goes_before_every_item(engine, monkeypatch):
    monkeypatch.setattr(cold_start, "SAMPLE_SIZE", 20)
    monkeypatch.setenv("SUPERINTENDENT_RANK_WRITE_LIMIT", "30")
    project = digits_project(engine, order=BY_CLASS[:200])
    run = run_retrain(engine, project, RetrainOptions(batch_size=50))  # the sample kept as the batches go by
    signal = run.signals["cold_start"]
    assert signal["pool"] == 200 and signal["sampled"] == 31 and signal["written"] == 30  # the sample is always longer than the head
    assert "a random sample of 31 of the 200 unlabelled items" in run.message
    head = sorted(priorities(engine, project).items(), key=lambda kv: (kv[1], kv[0]))[:30]
    assert all(p < 0 for _, p in head)  # a sample's head goes before every item, sampled or not
    first = claim_all(engine, project, limit=10)
    classes = item_class(engine, project)
    assert set(first) <= {item_id for item_id, _ in head} and len({classes[i] for i in first}) >= 4


def test_spans_and_boxes_projects_are_left_alone(engine):
    with session_scope(engine) as s:
        spans = queue.create_project(s, "spans", options=["PER"], label_mode="spans", data_type="text", model_preset="token_crf")
        queue.add_items(s, spans, [f"text number {i} about Ada" for i in range(30)])
        boxes = queue.create_project(s, "boxes", options=["cat"], label_mode="boxes", data_type="image")
        queue.add_items(s, boxes, [np.full((20, 30), b, dtype=np.uint8) for b in range(0, 250, 10)])
    for project in (spans, boxes):
        before = priorities(engine, project)
        run = run_retrain(engine, project)
        assert run.status == RunStatus.skipped.value and "cold_start" not in (run.signals or {}) and "coverage" not in run.message
        assert priorities(engine, project) == before
        with session_scope(engine, write=False) as s:
            assert not cold_start.pending(s, project, None)


def test_a_failing_cold_start_is_a_message_and_labelling_goes_on(engine, monkeypatch):
    project = digits_project(engine, order=BY_CLASS[:50])

    def broken(views):
        raise RuntimeError("k-means ran out of luck")

    monkeypatch.setattr(cold_start, "_numeric", broken)
    before = priorities(engine, project)
    run = run_retrain(engine, project)
    assert run.status == RunStatus.skipped.value and "at least two classes" in run.message
    assert "coverage order failed" in run.message and "k-means ran out of luck" in run.message
    assert run.signals["cold_start"]["items"] == 50 and "error" in run.signals["cold_start"]
    assert priorities(engine, project) == before
    assert len(claim_all(engine, project)) == 50
    with session_scope(engine, write=False) as s:  # not tried again on every tick: only when the items change
        assert not cold_start.pending(s, project, run)


def test_items_of_no_numeric_kind_keep_their_order(engine):
    with session_scope(engine) as s:
        project = queue.create_project(s, "odd", options=["a", "b"])
        queue.add_items(s, project, [[1, "x"], {"a": [1]}, None] * 4)
    before = priorities(engine, project)
    run = run_retrain(engine, project, RetrainOptions(model=LogisticRegression()))
    assert run.status == RunStatus.skipped.value and "keeps its order" in run.message
    assert priorities(engine, project) == before


def test_text_and_table_projects_get_a_coverage_order(engine):
    wine = load_wine(as_frame=True)
    order = np.argsort(wine.target.to_numpy(), kind="stable")
    with session_scope(engine) as s:
        table = queue.create_project(s, "wine", options=["0", "1", "2"], data_type="tabular", model_preset="gradient_boosting")
        queue.add_items(s, table, [wine.data.iloc[i].to_dict() for i in order], external_ids=[str(i) for i in order])
        text = queue.create_project(s, "text", options=["pet", "vehicle"], data_type="text", model_preset="tfidf_logistic_regression")
        queue.add_items(s, text, [f"my {w} is {a}" for w in ("cat", "dog", "car", "bus") for a in ("old", "new", "red", "fast", "big")])
    for project, n in ((table, len(order)), (text, 20)):
        run = run_retrain(engine, project)
        assert run.status == RunStatus.skipped.value and run.signals["cold_start"]["written"] == n, run.message
    with session_scope(engine, write=False) as s:
        ext = dict(s.execute(sa.select(Item.id, Item.external_id).where(Item.project_id == table.id)).all())
    classes = {i: str(wine.target.iloc[int(e)]) for i, e in ext.items()}
    first = claim_all(engine, table, limit=6, classes=classes)
    assert len({classes[i] for i in first}) >= 2  # insertion order: 6 of class 0


def test_the_scheduler_orders_a_freshly_imported_project_before_any_label(engine):
    project = digits_project(engine, retrain_interval_seconds=60, retrain_interval_n_labels=5)
    schedule = project_schedule(engine, project)
    assert schedule.due and schedule.description == "due now"  # no label yet, but items to order
    made = []
    for _ in range(60):  # PostgreSQL's retrain lock is per project id across schemas: another test run may hold id 1 a moment
        if made := retrain_due_projects(engine):
            break
        time.sleep(0.5)
    (run,) = made
    assert run.project_id == project.id and run.signals["cold_start"]["written"] == 300
    assert not project_schedule(engine, project).due and retrain_due_projects(engine) == []  # nothing new: no run each tick
    with session_scope(engine) as s:
        empty = queue.create_project(s, "empty", options=["a"], model_preset="logistic_regression", retrain_interval_seconds=1)
    assert not project_schedule(engine, empty).due  # no items, no labels: nothing to do
