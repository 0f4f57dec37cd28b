"""Adding items: the ids already there are skipped, also when another transaction adds the same ids at the same moment.

On PostgreSQL new rows go in with one ``COPY`` straight into the item table (issue 14: import speed); an id that
another transaction inserts meanwhile makes that ``COPY`` fail, and the chunk then goes through the staging table,
which skips it. On SQLite writers take turns, so the same test shows the same counts.
"""

from __future__ import annotations

import threading
import time

import sqlalchemy as sa

from superintendent import queue
from superintendent.store import session_scope


def _items(engine, project) -> list[str]:
    with session_scope(engine, write=False) as s:
        return sorted(s.execute(sa.select(queue.Item.external_id).where(queue.Item.project_id == project.id)).scalars())


def test_ids_already_there_are_skipped_and_counted(engine):
    with session_scope(engine) as s:
        project = queue.create_project(s, "p", options=["a", "b"])
        first = queue.add_items(s, project, ["one", "two", "three"], external_ids=["1", "2", "3"], labels=["a", None, None])
    with session_scope(engine) as s:
        second = queue.add_items(s, project, ["two again", "four", "five"], external_ids=["2", "4", "5"], labels=["b", None, "a"])
    assert (first.added, first.already_present, second.added, second.already_present) == (3, 0, 2, 1)
    assert _items(engine, project) == ["1", "2", "3", "4", "5"]
    with session_scope(engine, write=False) as s:
        assert queue.item_data(s, project, _id(engine, project, "2")) == "two"  # the item there is left as it was
        assert queue.all_labels(s, project) == ["a", "b", None, None, "a"]


def _id(engine, project, external_id: str) -> int:
    with session_scope(engine, write=False) as s:
        return s.execute(sa.select(queue.Item.id).where(queue.Item.project_id == project.id,
                                                        queue.Item.external_id == external_id)).scalar_one()


def test_two_imports_of_overlapping_ids_at_once_add_each_id_once(engine):
    with session_scope(engine) as s:
        project = queue.create_project(s, "race", options=["a", "b"])
    first_in = threading.Event()
    result: dict[str, object] = {}

    def second() -> None:
        first_in.wait(10)
        try:
            with session_scope(engine) as s:  # blocks on the first one's uncommitted "b" (PostgreSQL) or its write lock (SQLite)
                result["second"] = queue.add_items(s, project, ["B", "C"], external_ids=["b", "c"])
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            result["error"] = exc

    thread = threading.Thread(target=second)
    thread.start()
    if engine.dialect.name == "sqlite":  # one writer at a time: the second import waits for the first one's commit
        with session_scope(engine) as s:
            r1 = queue.add_items(s, project, ["A", "B"], external_ids=["a", "b"])
            first_in.set()
            time.sleep(0.5)
    else:
        with session_scope(engine) as s:
            r1 = queue.add_items(s, project, ["A", "B"], external_ids=["a", "b"])
            first_in.set()
            time.sleep(1.0)  # the second import's COPY now waits on our "b"
    thread.join(30)
    assert "error" not in result, result.get("error")
    r2 = result["second"]
    assert (r1.added, r2.added, r2.already_present) == (2, 1, 1)
    assert _items(engine, project) == ["a", "b", "c"]
    with session_scope(engine, write=False) as s:
        assert queue.item_data(s, project, _id(engine, project, "b")) == "B"
