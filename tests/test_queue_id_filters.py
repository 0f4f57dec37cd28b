"""Ids at the queue's edge, the last places: ``reprioritise`` and the optional user filters of ``annotation_log`` and
``review_items`` check their ids with the one check (``queue.common._check_id``), on SQLite and PostgreSQL alike.

Before: ``True`` was user 1 / item 1 and ``"3"`` was 3 (SQLite) or a driver error (PostgreSQL), ``2**70`` an
OverflowError from numpy or the driver.
"""

from __future__ import annotations

import numpy as np
import pytest
import sqlalchemy as sa

from superintendent import queue
from superintendent.auth import ensure_user
from superintendent.store import Item, Role, session_scope
from superintendent.validation import ValidationError

BAD_IDS = [True, np.bool_(True), "3", 3.0, 2**70, 2**63, 0, -1]


def _id(value: object) -> str:
    return f"{type(value).__name__}-{value}"


@pytest.fixture
def labelled(engine):
    """A project of three items, the first two labelled by user 1 (so True and "3" would have found something)."""
    with session_scope(engine) as s:
        project = queue.create_project(s, "p", options=["a", "b"])
        queue.add_items(s, project, ["x", "y", "z"])
        uid = ensure_user(s, "alice", role=Role.labeller)
        ids = s.execute(sa.select(Item.id).where(Item.project_id == project.id).order_by(Item.id)).scalars().all()
        for i in ids[:2]:
            queue.submit(s, project, uid, i, "a")
    return project, uid, ids


def priorities(engine, project):
    with session_scope(engine, write=False) as s:
        return s.execute(sa.select(Item.id, Item.priority).where(Item.project_id == project.id).order_by(Item.id)).all()


@pytest.mark.parametrize("bad", BAD_IDS, ids=_id)
def test_reprioritise_refuses_an_id_that_is_not_a_whole_number_in_range(engine, labelled, bad):
    project, _, ids = labelled
    before = priorities(engine, project)
    with pytest.raises(ValidationError, match="the item id must be a whole number"):
        queue.reprioritise(engine, project, [ids[2], bad], [0.5, 0.25])
    assert priorities(engine, project) == before  # nothing written, not even the good id's row


def test_reprioritise_refuses_bad_ids_in_a_numpy_array_too(engine, labelled):
    project, _, ids = labelled
    before = priorities(engine, project)
    for bad in (np.array([ids[2], 0]), np.array([ids[2], 2**64 - 1], dtype=np.uint64), np.array([True, True]),
                np.array([1.0, 2.0]), np.array(["1", "2"])):
        with pytest.raises(ValidationError, match="the item id must be a whole number"):
            queue.reprioritise(engine, project, bad, [0.5, 0.25])
    assert priorities(engine, project) == before


def test_reprioritise_takes_numpy_and_python_whole_numbers(engine, labelled):
    project, _, ids = labelled
    assert queue.reprioritise(engine, project, np.array(ids, dtype=np.int64), [3.0, 2.0, 1.0]) == 3
    assert queue.reprioritise(engine, project, np.array(ids, dtype=np.uint32), [2.0, 3.0, 4.0]) == 3
    assert queue.reprioritise(engine, project, [np.int32(i) for i in ids], [5.0, 6.0, 7.0]) == 3
    assert [p for _, p in priorities(engine, project)] == [5.0, 6.0, 7.0]


@pytest.mark.parametrize("bad", BAD_IDS, ids=_id)
def test_the_user_filters_of_the_log_and_the_review_list_refuse_bad_ids(engine, labelled, bad):
    project, uid, _ = labelled
    with session_scope(engine, write=False) as s:
        with pytest.raises(ValidationError, match="the user id must be a whole number"):
            queue.annotation_log(s, project, user_id=bad)
        with pytest.raises(ValidationError, match="the user id must be a whole number"):
            queue.review_items(s, project, labeller_id=bad)
        # the session is still usable (no statement failed) and the good filters still work
        assert len(queue.annotation_log(s, project, user_id=np.int64(uid))) == 2
        assert len(queue.annotation_log(s, project, user_id=None)) == 2


def test_the_review_list_filters_by_a_numpy_user_id(engine, labelled):
    """Before, np.int64 found nothing on SQLite and was a driver error on PostgreSQL."""
    project, uid, _ = labelled
    with session_scope(engine, write=False) as s:
        assert len(queue.review_items(s, project, labeller_id=np.int64(uid)).rows) == 2
