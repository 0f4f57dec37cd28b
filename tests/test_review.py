"""Review and history in the queue: corrections, own-label changes, undo, on SQLite and on the real PostgreSQL server."""

from __future__ import annotations

import itertools
import threading

import pytest
import sqlalchemy as sa

from superintendent import queue, serialization
from superintendent.auth import ensure_user, set_active
from superintendent.store import (
    AnnotationRevision,
    Item,
    Role,
    init_db,
    make_engine,
    session_scope,
)
from superintendent.validation import (
    NotFoundError,
    SuperintendentError,
    ValidationError,
)


def make_project(engine, name="pets", n_items=4, **settings):
    settings.setdefault("options", ["cat", "dog", "bird"])
    with session_scope(engine) as s:
        project = queue.create_project(s, name, **settings)
        queue.add_items(s, project, [f"item {i}" for i in range(n_items)])
    return project


def users(engine, *names, role=Role.labeller):
    with session_scope(engine) as s:
        return [ensure_user(s, n, role=role) for n in names]


def item_ids(engine, project):
    with session_scope(engine, write=False) as s:
        return s.execute(sa.select(Item.id).where(Item.project_id == project.id).order_by(Item.id)).scalars().all()


def label(engine, project, user, item_id, value):
    with session_scope(engine) as s:
        queue.submit(s, project, user, item_id, value)


def revisions(engine, item_id=None):
    with session_scope(engine, write=False) as s:
        stmt = sa.select(AnnotationRevision).order_by(AnnotationRevision.id)
        if item_id is not None:
            stmt = stmt.where(AnnotationRevision.item_id == item_id)
        return [(r.item_id, r.user_id, r.kind, r.old_value, r.new_value, r.changed_by) for r in s.execute(stmt).scalars()]


def test_a_changed_label_keeps_the_old_one_in_the_history(engine):
    project = make_project(engine)
    (alice,) = users(engine, "alice")
    first, second, third, _ = item_ids(engine, project)
    label(engine, project, alice, first, "cat")
    label(engine, project, alice, second, "dog")
    assert revisions(engine) == []  # first labels are not changes
    label(engine, project, alice, first, "cat")  # the same label again (e.g. a retried submit) is no change either
    assert revisions(engine) == []
    label(engine, project, alice, first, "bird")  # submitting again over a different label
    assert revisions(engine) == [(first, alice, "edit", '"cat"', '"bird"', alice)]

    with session_scope(engine) as s:
        assert queue.change_own_label(s, project, alice, second, "cat") is True
        assert queue.change_own_label(s, project, alice, second, "cat") is False
    assert revisions(engine)[1:] == [(second, alice, "edit", '"dog"', '"cat"', alice)]
    with session_scope(engine, write=False) as s:
        recent = queue.recent_labels(s, project, alice, limit=5)
        assert [(r.item_id, r.label) for r in recent] == [(first, "bird"), (second, "cat")]  # most recent labelling first
        assert [r.item_id for r in queue.recent_labels(s, project, alice, limit=1)] == [first]

    with session_scope(engine) as s:
        with pytest.raises(ValidationError, match="not an option"):
            queue.change_own_label(s, project, alice, second, "fish")
        with pytest.raises(NotFoundError, match="no label on item"):
            queue.change_own_label(s, project, alice, third, "cat")
    assert len(revisions(engine)) == 2  # refused changes wrote nothing

    with session_scope(engine) as s:
        task = queue.undo(s, project, alice)  # the most recent labelling: item `first`
    assert task.item_id == first
    assert revisions(engine)[-1] == (first, alice, "undo", '"bird"', None, alice)


def test_a_reviewed_label_wins_over_the_consensus(engine):
    project = make_project(engine, n_items=3, annotations_per_item=2)
    alice, bob = users(engine, "alice", "bob")
    (boss,) = users(engine, "boss", role=Role.admin)
    tied, agreed, open_ = item_ids(engine, project)
    for user, value in ((alice, "cat"), (bob, "dog")):
        label(engine, project, user, tied, value)
    for user in (alice, bob):
        label(engine, project, user, agreed, "bird")
    label(engine, project, alice, open_, "cat")
    with session_scope(engine, write=False) as s:
        data = queue.labelled_data(s, project)
        assert (data.item_ids, data.labels, data.ties) == ([tied, agreed], ["cat", "bird"], [tied])
        assert queue.all_labels(s, project) == ["cat", "bird", None]

    with session_scope(engine) as s:
        assert queue.set_review(s, project, boss, tied, "dog") is True
        assert queue.set_review(s, project, boss, tied, "dog") is False  # unchanged: nothing written
    with session_scope(engine, write=False) as s:
        data = queue.labelled_data(s, project)
        assert (data.item_ids, data.labels, data.ties) == ([tied, agreed], ["dog", "bird"], [])
        assert queue.all_labels(s, project) == ["dog", "bird", None]
        final = queue.final_labels(s, project)
        assert [(f.item_id, f.label, f.source, f.tie, f.reviewed_by) for f in final] == [
            (tied, "dog", "review", False, "boss"), (agreed, "bird", "consensus", False, None)]
        item = s.get(Item, tied)
        assert (item.review_value, item.reviewed_by, item.reviewed_at is not None) == ('"dog"', boss, True)
    assert revisions(engine) == [(tied, None, "review", None, '"dog"', boss)]

    with session_scope(engine) as s:
        assert queue.clear_review(s, project, boss, tied) is True
        assert queue.clear_review(s, project, boss, tied) is False
    with session_scope(engine, write=False) as s:
        data = queue.labelled_data(s, project)
        assert (data.labels, data.ties) == (["cat", "bird"], [tied])
        item = s.get(Item, tied)
        assert (item.review_value, item.reviewed_by, item.reviewed_at) == (None, None, None)
    assert revisions(engine)[-1] == (tied, None, "review", '"dog"', None, boss)


def test_only_admins_and_reviewers_may_review(engine):
    project = make_project(engine, n_items=2)
    (alice,) = users(engine, "alice")
    (rita,) = users(engine, "rita", role=Role.reviewer)
    (api,) = users(engine, "api-worker", role=Role.system)
    done, open_ = item_ids(engine, project)
    label(engine, project, alice, done, "cat")
    for who in (alice, api):
        with session_scope(engine) as s, pytest.raises(queue.NotAllowedError, match="admin or a reviewer"):
            queue.set_review(s, project, who, done, "dog")
    with session_scope(engine) as s:
        with pytest.raises(ValidationError, match="not an option"):
            queue.set_review(s, project, rita, done, "fish")
        with pytest.raises(ValidationError, match="not finished"):
            queue.set_review(s, project, rita, open_, "dog")
        with pytest.raises(NotFoundError):
            queue.set_review(s, project, rita, 10_000, "dog")
    assert revisions(engine) == []
    with session_scope(engine) as s:
        assert queue.set_review(s, project, rita, done, "dog")
    with session_scope(engine) as s:
        set_active(s, "rita", False)
    with session_scope(engine) as s, pytest.raises(queue.NotAllowedError):
        queue.clear_review(s, project, rita, done)  # a deactivated reviewer counts at once
    with session_scope(engine, write=False) as s:
        assert s.get(Item, done).review_value == '"dog"'


def _expected(values_by_item, mode="single"):
    out = {}
    for item_id, values in values_by_item.items():
        consensus, tie = queue.consensus(values, mode)
        out[item_id] = dict(consensus=consensus, tie=tie, disagreement=len({serialization.dumps(v) for v in values}) > 1)
    return out


def test_the_review_list_filters_and_pages_through_finished_items(engine):
    options = ["cat", "dog", "bird"]
    project = make_project(engine, n_items=40, annotations_per_item=2, options=options)
    alice, bob, carol = users(engine, "alice", "bob", "carol")
    (boss,) = users(engine, "boss", role=Role.admin)
    ids = item_ids(engine, project)
    given = {}
    for n, item_id in enumerate(ids[:36]):  # four items stay unfinished
        pair = (alice, bob) if n % 3 else (bob, carol)
        values = [options[n % 3], options[(n // 2) % 3]]
        for user, value in zip(pair, values):
            label(engine, project, user, item_id, value)
        given[item_id] = (pair, values)
    label(engine, project, alice, ids[37], "cat")  # one label of two: not finished
    with session_scope(engine) as s:
        for item_id in ids[:6]:
            queue.set_review(s, project, boss, item_id, "bird")
    expected = _expected({i: v for i, (_, v) in given.items()})

    def listed(**filters):
        seen, after = [], None
        with session_scope(engine, write=False) as s:
            while True:
                page = queue.review_items(s, project, after=after, limit=7, **filters)
                assert len(page.rows) <= 7
                seen += [r.item_id for r in page.rows]
                if page.next_after is None:
                    return seen
                after = page.next_after

    finished = sorted(given)
    assert listed() == finished[::-1]
    assert listed(newest_first=False) == finished
    assert listed(disagreement=True) == [i for i in finished[::-1] if expected[i]["disagreement"]]
    assert listed(ties=True) == [i for i in finished[::-1] if expected[i]["tie"]]
    assert listed(unreviewed=True) == [i for i in finished[::-1] if i not in ids[:6]]
    assert listed(labeller_id=carol) == [i for i in finished[::-1] if carol in given[i][0]]
    assert listed(label="cat") == [i for i in finished[::-1] if "cat" in given[i][1]]
    assert listed(label="bird", newest_first=False) == [i for i in finished if "bird" in given[i][1] or i in ids[:6]]
    assert listed(label="dog", labeller_id=carol, unreviewed=True) == [
        i for i in finished[::-1] if "dog" in given[i][1] and carol in given[i][0] and i not in ids[:6]]
    assert sum(expected[i]["disagreement"] for i in finished) not in (0, len(finished))  # the filters had something to tell apart
    with session_scope(engine, write=False) as s:
        with pytest.raises(ValidationError, match="not an option"):
            queue.review_items(s, project, label="fish")
        row = next(r for r in queue.review_items(s, project, limit=100).rows if r.item_id == ids[0])
        assert [g.username for g in row.annotations] == ["bob", "carol"]
        assert (row.consensus, row.tie, row.reviewed, row.reviewed_by, row.final) == (
            expected[ids[0]]["consensus"], expected[ids[0]]["tie"], "bird", "boss", "bird")
        assert {u for _, u in queue.labellers(s, project)} == {"alice", "bob", "carol"}


def test_the_review_list_finds_a_label_inside_multi_labels(engine):
    project = make_project(engine, n_items=3, options=["red", "green", "blue"], label_mode="multi")
    (alice,) = users(engine, "alice")
    a, b, c = item_ids(engine, project)
    label(engine, project, alice, a, ["red", "green"])
    label(engine, project, alice, b, ["blue"])
    label(engine, project, alice, c, ["green"])
    with session_scope(engine, write=False) as s:
        assert [r.item_id for r in queue.review_items(s, project, label="green").rows] == [c, a]
        assert [r.item_id for r in queue.review_items(s, project, label="blue").rows] == [b]


def test_an_items_history_has_every_label_and_change_in_order(engine):
    project = make_project(engine, n_items=1, annotations_per_item=2)
    alice, bob = users(engine, "alice", "bob")
    (rita,) = users(engine, "rita", role=Role.reviewer)
    (item_id,) = item_ids(engine, project)
    label(engine, project, alice, item_id, "cat")
    label(engine, project, bob, item_id, "dog")
    with session_scope(engine) as s:
        queue.change_own_label(s, project, bob, item_id, "bird")
        queue.set_review(s, project, rita, item_id, "cat")
        queue.set_review(s, project, rita, item_id, "dog")
    with session_scope(engine, write=False) as s:
        history = queue.item_history(s, project, item_id)
        with pytest.raises(NotFoundError):
            queue.item_history(s, project, item_id + 1)
    assert (history.item_id, history.data, history.done) == (item_id, "item 0", True)
    assert [(g.username, g.label) for g in history.annotations] == [("alice", "cat"), ("bob", "bird")]
    assert all(g.created_at is not None for g in history.annotations)
    assert (history.consensus, history.tie, history.reviewed, history.reviewed_by) == ("cat", True, "dog", "rita")
    assert [(r.kind, r.labeller, r.old, r.new, r.changed_by) for r in history.revisions] == [
        ("edit", "bob", "dog", "bird", "bob"), ("review", None, None, "cat", "rita"), ("review", None, "cat", "dog", "rita")]
    times = [r.changed_at for r in history.revisions]
    assert times == sorted(times)


def test_concurrent_reviews_and_edits_lose_no_record(db_url):
    """A reviewer and the labeller change one item at the same moment, many times: every change is in the history."""
    engines = [make_engine(db_url) for _ in range(3)]
    init_db(engines[0])
    project = make_project(engines[0], n_items=1)
    (alice,) = users(engines[0], "alice")
    rita, boss = users(engines[0], "rita", "boss", role=Role.reviewer)
    (item_id,) = item_ids(engines[0], project)
    label(engines[0], project, alice, item_id, "cat")
    rounds = 15
    barrier = threading.Barrier(3)
    changed = {"edit": 0, "review": 0}
    lock = threading.Lock()
    failures = []

    def work(engine, do, kind):
        try:
            for n in range(rounds):
                barrier.wait(timeout=30)
                with session_scope(engine) as s:
                    done = do(s, n)
                with lock:
                    changed[kind] += done
        except (SuperintendentError, sa.exc.SQLAlchemyError, threading.BrokenBarrierError) as exc:  # reported below
            failures.append(exc)
            barrier.abort()

    options = ["cat", "dog", "bird"]
    workers = [
        threading.Thread(target=work, args=(engines[0], lambda s, n: queue.change_own_label(s, project, alice, item_id, options[(n + 1) % 3]), "edit")),
        threading.Thread(target=work, args=(engines[1], lambda s, n: queue.set_review(s, project, rita, item_id, options[n % 3]), "review")),
        threading.Thread(target=work, args=(engines[2], lambda s, n: queue.set_review(s, project, boss, item_id, options[(n + 2) % 3]), "review")),
    ]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=120)
    assert not failures, failures
    history = revisions(engines[0], item_id)
    edits = [h for h in history if h[2] == "edit"]
    reviews = [h for h in history if h[2] == "review"]
    assert (len(edits), len(reviews)) == (changed["edit"], changed["review"])
    assert changed["edit"] == rounds  # every round changes alice's label
    # each change starts from the one before it: none was overwritten unseen
    for chain in (edits, reviews):
        for before, after in itertools.pairwise(chain):
            assert after[3] == before[4]
    with session_scope(engines[0], write=False) as s:
        item = s.get(Item, item_id)
        assert reviews[-1][4] == item.review_value
        assert edits[-1][4] == serialization.dumps(queue.item_history(s, project, item_id).annotations[0].label)
    assert edits[0][3] == '"cat"'
    for engine in engines:
        engine.dispose()
