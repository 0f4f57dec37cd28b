"""Queue scenarios, each run on SQLite and on the real PostgreSQL server."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
import sqlalchemy as sa

from superintendent import queue
from superintendent.auth import ensure_user
from superintendent.store import Annotation, Item, Role, session_scope, utcnow
from superintendent.validation import ConflictError, NotFoundError, ValidationError


def make_project(engine, name="pets", n_items=5, **settings):
    settings.setdefault("options", ["cat", "dog", "bird"])
    with session_scope(engine) as s:
        project = queue.create_project(s, name, **settings)
        queue.add_items(s, project, [f"item {i}" for i in range(n_items)])
    return project


def users(engine, *names):
    with session_scope(engine) as s:
        return [ensure_user(s, n, role=Role.labeller) for n in names]


def claim(engine, project, user, **kw):
    with session_scope(engine) as s:
        return queue.claim_next(s, project, user, **kw)


def annotation_rows(engine):
    with session_scope(engine, write=False) as s:
        return s.execute(sa.select(Annotation.item_id, Annotation.user_id, Annotation.value).order_by(Annotation.id)).all()


def test_claims_follow_priority_then_insertion_order(engine):
    project = make_project(engine, n_items=3)
    (alice,) = users(engine, "alice")
    got = []
    for _ in range(4):
        with session_scope(engine) as s:
            task = queue.claim_next(s, project, alice, resume=False)
            if task is not None:
                queue.submit(s, project, alice, task.item_id, "cat")
            got.append(None if task is None else task.data)
    assert got == ["item 0", "item 1", "item 2", None]


def test_two_labellers_never_share_an_item(engine):
    project = make_project(engine, n_items=2)
    alice, bob, carol = users(engine, "alice", "bob", "carol")
    a, b = claim(engine, project, alice), claim(engine, project, bob)
    assert {a.data, b.data} == {"item 0", "item 1"}
    assert claim(engine, project, carol) is None  # both items are held


def test_reclaim_resumes_the_held_item(engine):
    project = make_project(engine)
    (alice,) = users(engine, "alice")
    first = claim(engine, project, alice)
    again = claim(engine, project, alice)
    assert again.item_id == first.item_id
    assert again.lease_expires_at >= first.lease_expires_at


def test_expired_lease_returns_the_item_and_late_submit_is_kept(engine):
    project = make_project(engine, n_items=1, lease_seconds=60)
    alice, bob = users(engine, "alice", "bob")
    task = claim(engine, project, alice)
    assert claim(engine, project, bob) is None
    later = utcnow() + dt.timedelta(seconds=61)
    stolen = claim(engine, project, bob, now=later)
    assert stolen is not None and stolen.item_id == task.item_id
    with session_scope(engine) as s:  # alice comes back after her lease ran out
        queue.submit(s, project, alice, task.item_id, "dog", now=later)
    assert [(r.user_id, r.value) for r in annotation_rows(engine)] == [(alice, '"dog"')]
    with session_scope(engine) as s:  # bob's lease is untouched, and his label is kept too
        assert s.get(Item, task.item_id).leased_by == bob
        queue.submit(s, project, bob, task.item_id, "cat", now=later)
        assert queue.progress(s, project).labelled == 1
    assert len(annotation_rows(engine)) == 2


def test_release_expired_leases(engine):
    project = make_project(engine, n_items=2, lease_seconds=10)
    (alice,) = users(engine, "alice")
    claim(engine, project, alice)
    with session_scope(engine) as s:
        assert queue.release_expired_leases(s, project.id) == 0
        assert queue.release_expired_leases(s, project.id, now=utcnow() + dt.timedelta(seconds=11)) == 1


def test_overlap_serves_each_item_to_k_different_users(engine):
    project = make_project(engine, n_items=2, annotations_per_item=2)
    alice, bob, carol = users(engine, "alice", "bob", "carol")
    seen = {alice: [], bob: [], carol: []}
    for user in (alice, bob, alice, bob, carol):
        with session_scope(engine) as s:
            task = queue.claim_next(s, project, user)
            if task is not None:
                seen[user].append(task.item_id)
                queue.submit(s, project, user, task.item_id, "cat")
    assert sorted(seen[alice]) == sorted(seen[bob]) and len(seen[alice]) == 2
    assert seen[carol] == []  # every item has its two annotations
    with session_scope(engine) as s:
        p = queue.progress(s, project)
    assert (p.total, p.labelled, p.n_annotations) == (2, 2, 4)


def test_skip_hides_the_item_from_that_user_only(engine):
    project = make_project(engine, n_items=2)
    alice, bob = users(engine, "alice", "bob")
    task = claim(engine, project, alice)
    with session_scope(engine) as s:
        queue.skip(s, project, alice, task.item_id)
        nxt = queue.claim_next(s, project, alice)
    assert nxt.item_id != task.item_id
    assert claim(engine, project, bob).item_id == task.item_id  # released at once, not held for minutes


def test_undo_removes_the_last_label_and_serves_the_item_again(engine):
    project = make_project(engine, n_items=3)
    (alice,) = users(engine, "alice")
    with session_scope(engine) as s:
        first = queue.claim_next(s, project, alice)
        second = queue.submit_and_claim_next(s, project, alice, first.item_id, "cat")
        queue.submit_and_claim_next(s, project, alice, second.item_id, "dog")
    with session_scope(engine) as s:
        back = queue.undo(s, project, alice)
        assert back.item_id == second.item_id
        assert queue.progress(s, project).labelled == 1
        # the item alice was looking at is released, the undone one is hers
        assert queue.claim_next(s, project, alice).item_id == second.item_id
        queue.submit(s, project, alice, second.item_id, "bird")
    assert [r.value for r in annotation_rows(engine)] == ['"cat"', '"bird"']


def test_undo_with_nothing_to_undo(engine):
    project = make_project(engine)
    (alice,) = users(engine, "alice")
    with session_scope(engine) as s:
        assert queue.undo(s, project, alice) is None


def test_undo_refuses_an_item_someone_else_holds(engine):
    project = make_project(engine, n_items=1, annotations_per_item=2)
    alice, bob = users(engine, "alice", "bob")
    with session_scope(engine) as s:
        task = queue.claim_next(s, project, alice)
        queue.submit(s, project, alice, task.item_id, "cat")
    assert claim(engine, project, bob).item_id == task.item_id
    with pytest.raises(ConflictError, match="someone else"):
        with session_scope(engine) as s:
            queue.undo(s, project, alice)
    assert len(annotation_rows(engine)) == 1


def test_resubmitting_changes_the_label(engine):
    project = make_project(engine, n_items=1)
    (alice,) = users(engine, "alice")
    task = claim(engine, project, alice)
    for label in ("cat", "dog"):
        with session_scope(engine) as s:
            queue.submit(s, project, alice, task.item_id, label)
    assert [r.value for r in annotation_rows(engine)] == ['"dog"']


@pytest.mark.parametrize(
    ("settings", "label", "message"),
    [
        ({}, "horse", "label 'horse' is not an option of project 'pets' \\(options: cat, dog, bird\\)"),
        ({}, None, "must not be None"),
        ({"label_mode": "multi"}, "cat", "takes a list of labels"),
        ({"label_mode": "multi"}, ["cat", "horse"], "'horse' is not an option"),
    ],
    ids=["not-an-option", "none", "multi-needs-list", "multi-bad-member"],
)
def test_bad_label_is_refused_and_nothing_changes(engine, settings, label, message):
    project = make_project(engine, n_items=1, **settings)
    (alice,) = users(engine, "alice")
    task = claim(engine, project, alice)
    with pytest.raises(ValidationError, match=message):
        with session_scope(engine) as s:
            queue.submit(s, project, alice, task.item_id, label)
    assert annotation_rows(engine) == []
    with session_scope(engine, write=False) as s:
        assert s.get(Item, task.item_id).leased_by == alice


def test_free_text_and_multi_label(engine):
    project = make_project(engine, n_items=2, label_mode="multi", allow_free_text=True)
    (alice,) = users(engine, "alice")
    with session_scope(engine) as s:
        t = queue.claim_next(s, project, alice)
        t = queue.submit_and_claim_next(s, project, alice, t.item_id, ["bird", "cat", "cat", "zebra"])
        queue.submit(s, project, alice, t.item_id, np.array(["dog"]))
        data = queue.labelled_data(s, project)
    assert data.labels == [["cat", "bird", "zebra"], ["dog"]]


def test_item_of_another_project(engine):
    pets = make_project(engine, "pets")
    cars = make_project(engine, "cars", options=["red"])
    (alice,) = users(engine, "alice")
    task = claim(engine, pets, alice)
    with pytest.raises(NotFoundError, match=f"item {task.item_id} is not in project 'cars'"):
        with session_scope(engine) as s:
            queue.submit(s, cars, alice, task.item_id, "red")


def test_projects_share_a_database_without_mixing(engine):
    pets = make_project(engine, "pets", n_items=2)
    cars = make_project(engine, "cars", n_items=3, options=["red"])
    (alice,) = users(engine, "alice")
    with session_scope(engine) as s:
        assert queue.progress(s, pets).total == 2 and queue.progress(s, cars).total == 3
        assert queue.claim_next(s, cars, alice).project_id == cars.id


def test_add_is_idempotent_and_keeps_given_labels(engine):
    with session_scope(engine) as s:
        project = queue.create_project(s, "digits", options=[0, 1])
        first = queue.add_items(s, project, [np.zeros(3), np.ones(3), np.zeros(3)], labels=[0, None, 0])
        again = queue.add_items(s, project, [np.zeros(3), np.ones(3), np.zeros(3)])
        p = queue.progress(s, project)
        labels = queue.all_labels(s, project)
    assert (first.added, first.labelled, again.added, again.already_present) == (3, 2, 0, 3)
    assert (p.total, p.labelled, p.per_user) == (3, 2, {"_import": 2})
    assert labels == [0, None, 0]


def test_add_counts_labels_as_new_changed_or_already_there(engine):
    words = ["lovely", "dreadful", "sunny", "grey"]
    with session_scope(engine) as s:
        project = queue.create_project(s, "words", options=["positive", "negative"])
        first = queue.add_items(s, project, words[:3], external_ids=["w1", "w2", "w3"], labels=["positive", "negative", None])
        again = queue.add_items(s, project, words[:3], external_ids=["w1", "w2", "w3"], labels=["positive", "negative", None])
        third = queue.add_items(s, project, words, external_ids=["w1", "w2", "w3", "w4"], labels=["negative", "negative", "positive", None])
        labels = queue.all_labels(s, project)
        w1 = s.execute(sa.select(Item.id).where(Item.external_id == "w1")).scalar_one()
        history = queue.item_history(s, project, w1).revisions
    assert (first.labels_new, first.labels_changed, first.labels_same, first.labelled) == (2, 0, 0, 2)
    assert first.describe() == "3 new items, 0 already there; labels: 2 new, 0 changed, 0 already there"
    assert again.describe() == "0 new items, 3 already there; labels: 0 new, 0 changed, 2 already there"
    assert third.describe() == "1 new item, 3 already there; labels: 1 new, 1 changed, 1 already there"
    assert labels == ["negative", "negative", "positive", None]
    assert [(r.kind, r.old, r.new) for r in history] == [("edit", "positive", "negative")]


def test_add_result_built_the_old_way_still_works():
    old = queue.AddResult(3, 1, 2)
    assert (old.added, old.already_present, old.labelled, old.labels_new) == (3, 1, 2, 0)
    assert queue.AddResult(0, 5, 0).describe() == "0 new items, 5 already there; no labels"


def test_bad_labels_on_add_write_nothing(engine):
    with session_scope(engine) as s:
        project = queue.create_project(s, "digits", options=[0, 1])
    with pytest.raises(ValidationError, match="label 7 is not an option"):
        with session_scope(engine) as s:
            queue.add_items(s, project, [1, 2], labels=[0, 7])
    with pytest.raises(ValidationError, match="one entry per item"):
        with session_scope(engine) as s:
            queue.add_items(s, project, [1, 2], labels=[0])
    with session_scope(engine, write=False) as s:
        assert queue.progress(s, project).total == 0


def test_new_items_come_after_ranked_ones_and_reprioritise_reorders(engine):
    project = make_project(engine, n_items=4)
    (alice,) = users(engine, "alice")
    with session_scope(engine, write=False) as s:
        ids = s.execute(sa.select(Item.id).order_by(Item.id)).scalars().all()
    assert queue.reprioritise(engine, project, ids, [3, 2, 1, 0]) == 4
    with session_scope(engine) as s:
        queue.add_items(s, project, ["late"])
    order = []
    while (task := claim(engine, project, alice)) is not None:
        order.append(task.data)
        with session_scope(engine) as s:
            queue.submit(s, project, alice, task.item_id, "cat")
    assert order == ["item 3", "item 2", "item 1", "item 0", "late"]


def test_reprioritise_rejects_bad_input(engine):
    project = make_project(engine, n_items=2)
    with pytest.raises(ValidationError, match="equal length"):
        queue.reprioritise(engine, project, [1, 2], [1.0])
    with pytest.raises(ValidationError, match="finite"):
        queue.reprioritise(engine, project, [1, 2], [1.0, float("nan")])


def test_progress_and_consensus(engine):
    project = make_project(engine, n_items=3, annotations_per_item=3)
    a, b, c = users(engine, "a", "b", "c")
    votes = {a: ["cat", "dog", "cat"], b: ["cat", "bird", "dog"], c: ["dog", "dog", "bird"]}
    for user, labels in votes.items():
        for label in labels:
            with session_scope(engine) as s:
                task = queue.claim_next(s, project, user)
                queue.submit(s, project, user, task.item_id, label)
    with session_scope(engine, write=False) as s:
        p = queue.progress(s, project)
        data = queue.labelled_data(s, project)
    assert (p.total, p.labelled, p.n_annotations) == (3, 3, 9)
    assert p.per_class == {"bird": 2, "cat": 3, "dog": 4}
    assert p.per_user == {"a": 3, "b": 3, "c": 3}
    assert data.labels == ["cat", "dog", "cat"]
    assert data.ties == [data.item_ids[2]]  # cat, dog, bird: one vote each, first given wins


def test_unlabelled_batches_cover_every_unfinished_item(engine):
    project = make_project(engine, n_items=25)
    (alice,) = users(engine, "alice")
    with session_scope(engine) as s:
        task = queue.claim_next(s, project, alice)
        queue.submit(s, project, alice, task.item_id, "cat")
    batches = list(queue.unlabelled_batches(engine, project, batch_size=10))
    assert [len(ids) for ids, _ in batches] == [10, 10, 4]
    assert sorted(x for _, data in batches for x in data) == sorted(f"item {i}" for i in range(1, 25))


def test_bad_project_settings(engine):
    with session_scope(engine) as s:
        queue.create_project(s, "pets", options=["cat"])
    cases = [
        (dict(name="pets", options=["cat"]), "exists already"),
        (dict(name="x", options=["cat", "cat"]), "given twice"),
        (dict(name="x", acquisition_function="foo"), "unknown acquisition function 'foo'"),
        (dict(name="x", shuffle_prop=2), "between 0 and 1"),
        (dict(name="x", annotations_per_item=0), "annotations_per_item"),
        (dict(name="x", colour="red"), "unknown project setting: 'colour'"),
        (dict(name="x", settings={"diversity_window": 2}), "'settings' is no longer a bag of extras"),
        (dict(name="x", created_at=utcnow()), "unknown project setting: 'created_at'"),
        (dict(name="x", diversity_window="eight"), "diversity_window must be a whole number of at least 1"),
    ]
    for kwargs, message in cases:
        with pytest.raises(ValidationError, match=message):
            with session_scope(engine) as s:
                queue.create_project(s, **kwargs)
    with session_scope(engine, write=False) as s:
        assert [p.name for p in queue.list_projects(s)] == ["pets"]
        with pytest.raises(NotFoundError, match="no project 'nope'; projects: pets"):
            queue.get_project(s, "nope")


def test_every_project_setting_is_stored(engine):
    settings = dict(data_type="tabular", label_mode="multi", options=["cat", "dog"], allow_free_text=True, model_preset="logistic_regression",
                    model_factory="mymodels:make", acquisition_function="entropy_diverse", shuffle_prop=0.25, retrain_interval_seconds=60.0,
                    retrain_interval_n_labels=10, annotations_per_item=2, lease_seconds=120, show_hints=True,
                    display_columns=["title"], model_columns=["title", "n"], diversity_window=4)
    with session_scope(engine) as s:
        queue.create_project(s, " rows ", **settings)
    with session_scope(engine, write=False) as s:
        stored = queue.get_project(s, "rows")
        assert {k: getattr(stored, k) for k in settings} == settings


def test_update_merges_the_changes_checks_the_whole_and_a_new_overlap_remarks_items(engine):
    project = make_project(engine, n_items=2, annotations_per_item=2, lease_seconds=60)
    (alice,) = users(engine, "alice")
    with session_scope(engine) as s:
        task = queue.claim_next(s, project, alice)
        queue.submit(s, project, alice, task.item_id, "cat")
    with session_scope(engine) as s:
        queue.update_project(s, queue.get_project(s, "pets"), annotations_per_item=1, display_columns=["title"], diversity_window=3)
    with session_scope(engine, write=False) as s:
        stored = queue.get_project(s, "pets")
        assert (stored.annotations_per_item, stored.lease_seconds, stored.options) == (1, 60, ["cat", "dog", "bird"])
        assert (stored.display_columns, stored.model_columns, stored.diversity_window) == (["title"], None, 3)
        assert s.execute(sa.select(Item.done).order_by(Item.id)).scalars().all() == [True, False]
    for changes, message in [(dict(shuffle_prop=2, show_hints=True), "shuffle_prop must be a number between 0 and 1"),
                             (dict(show_hints=True, colour="red"), "unknown project setting: 'colour'")]:
        with pytest.raises(ValidationError, match=message):
            with session_scope(engine) as s:
                queue.update_project(s, queue.get_project(s, "pets"), **changes)
    make_project(engine, "cars", n_items=0)
    with pytest.raises(ValidationError, match="a project named 'cars' exists already"):
        with session_scope(engine) as s:
            queue.update_project(s, queue.get_project(s, "pets"), name=" cars ")
    with session_scope(engine) as s:
        queue.update_project(s, queue.get_project(s, "pets"), name=" pets ", diversity_window=None)
    with session_scope(engine, write=False) as s:
        stored = queue.get_project(s, "pets")
        assert (stored.show_hints, stored.shuffle_prop, stored.diversity_window, stored.display_columns) == (False, 0.1, None, ["title"])
