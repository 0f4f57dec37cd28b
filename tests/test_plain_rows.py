"""Table rows written without a look at each cell (issue 14: a 1M-row import spent a third of its Python time in
``serialization.encode``): the fast path must write exactly what ``serialization.dumps`` writes, and must not be taken
for a table whose cells need tags."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from superintendent import serialization
from superintendent.ingest.tables import TableRows

PLAIN = {
    "text": pd.Series(["a", None, "é \"quoted\"\n", "", "x"], dtype="object"),
    "string dtype": pd.Series(["a", None, "b", "c", "d"], dtype="string"),
    "floats with NaN": pd.Series([1.5, np.nan, -0.0, 1e300, 3.0]),
    "ints": pd.Series([1, -2, 2**62, 0, 5], dtype="int64"),
    "small uints": pd.Series([1, 2, 3, 4, 5], dtype="uint64"),
    "bools": pd.Series([True, False, True, True, False]),
    "all missing": pd.Series([None] * 5, dtype="object"),
}
NOT_PLAIN = {
    "infinity": pd.Series([1.0, np.inf, 2.0, 3.0, 4.0]),
    "huge uint": pd.Series([1, 2**64 - 1, 3, 4, 5], dtype="uint64"),
    "timestamps": pd.Series(pd.date_range("2026-01-01", periods=5)),
    "mixed objects": pd.Series(["a", 1, "b", 2.5, None], dtype="object"),
    "categories": pd.Series(["a", "b", "a", "b", "a"], dtype="category"),
}


@pytest.mark.parametrize("name", list(PLAIN))
def test_plain_columns_are_written_as_dumps_writes_them(name):
    frame = pd.DataFrame({"id": range(5), name: PLAIN[name]})
    rows = TableRows(frame, ["id", name])
    chunk = rows[0:5]
    fast = rows.dumps(chunk)
    assert fast is not None, f"{name}: a plain column took the slow path"
    assert fast == [serialization.dumps(r) for r in chunk]
    assert [serialization.loads(t) for t in fast] == chunk


@pytest.mark.parametrize("name", list(NOT_PLAIN))
def test_columns_that_need_tags_are_encoded_cell_by_cell(name):
    frame = pd.DataFrame({"id": range(5), name: NOT_PLAIN[name]})
    rows = TableRows(frame, ["id", name])
    assert rows.dumps(rows[0:5]) is None


def test_a_column_named_like_a_tag_is_not_plain():
    frame = pd.DataFrame({"__ndarray__": ["a", "b"]})
    assert not serialization.plain_columns(frame)
    rows = TableRows(frame, ["__ndarray__"])
    assert rows.dumps(rows[0:2]) is None
    assert serialization.loads(serialization.dumps(rows[0])) == {"__ndarray__": "a"}


def test_an_import_of_plain_rows_stores_what_dumps_writes(engine):
    from superintendent import importing, ingest, queue
    from superintendent.store import session_scope

    csv = "id,text,x,flag\n" + "".join(f"r{i},word {i} \"q\",{i / 3 if i % 4 else ''},{i % 2 == 0}\n" for i in range(50))
    plan = ingest.TablePlan(display_columns=["text"], model_columns=["text", "x", "flag"], id_column="id")
    prepared = ingest.prepare_upload("rows.csv", csv.encode(), plan=plan, options=["a", "b"])
    assert isinstance(prepared.items, TableRows) and prepared.items.dumps(prepared.items[0:1]) is not None
    with session_scope(engine) as s:
        queue.create_project(s, "plain rows", options=["a", "b"])
    importing.import_prepared(engine, "plain rows", prepared)
    with session_scope(engine, write=False) as s:
        project = queue.get_project(s, "plain rows")
        stored = s.execute(sa.text("SELECT data FROM sp_item WHERE project_id = :p"), {"p": project.id}).scalars().all()
    assert sorted(stored) == sorted(serialization.dumps(r) for r in prepared.items)  # the very text, not only equal values


@pytest.fixture
def pg_engine():
    from conftest import _postgres_schema_url

    from superintendent.store import init_db, make_engine

    for url in _postgres_schema_url():
        eng = make_engine(url)
        init_db(eng)
        yield eng
        eng.dispose()


@pytest.mark.postgres
def test_a_big_import_refreshes_postgresql_statistics(pg_engine, monkeypatch):
    """Until autovacuum gets to it (over ten minutes after a 1M-row load on a loaded server), PostgreSQL planned a
    freshly loaded project as a few hundred rows, and a retrain's batch reads sorted every open item per batch.
    (PostgreSQL only: SQLite reads the batches by rowid.)"""
    engine = pg_engine
    from superintendent import importing, ingest, queue
    from superintendent.queue import items
    from superintendent.store import session_scope

    monkeypatch.setattr(items, "ANALYZE_AFTER_ROWS", 200)
    csv = "id,text\n" + "".join(f"r{i},word {i}\n" for i in range(300))
    prepared = ingest.prepare_upload("rows.csv", csv.encode(), plan=ingest.TablePlan(display_columns=["text"], model_columns=["text"], id_column="id"),
                                     options=["a", "b"])
    with session_scope(engine) as s:
        queue.create_project(s, "statistics", options=["a", "b"])
    importing.import_prepared(engine, "statistics", prepared)
    with session_scope(engine, write=False) as s:
        planned = s.execute(sa.text("SELECT reltuples FROM pg_class WHERE oid = 'sp_item'::regclass")).scalar_one()
        rows = s.execute(sa.text("SELECT count(*) FROM sp_item")).scalar_one()
    assert planned == rows  # ANALYZE of a small table reads every row
