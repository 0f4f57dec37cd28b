"""Text that pandas would call "missing" is kept as written: only an empty cell is no value (issue 13, item 5).

A project whose options include NA, None, null and NULL imports those labels from every table format, text items
"NA" and "null" are items like any other, and numeric columns for the model are still numbers. End to end: the file
is read, prepared and written through ``importing.import_prepared`` on SQLite and PostgreSQL.
"""

from __future__ import annotations

import io
import json

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa

from superintendent import importing, ingest, queue, serialization
from superintendent.store import Item, session_scope

OPTIONS = ["NA", "None", "null", "NULL", "cat"]
TEXTS = ["first", "second", "third", "fourth", "fifth", "sixth"]
LABELS = ["NA", "None", "null", "NULL", "cat", ""]  # the empty cell: the one item without a label


def table_file(fmt: str, columns: dict[str, list[str]]) -> bytes:
    """The columns as a file of ``fmt``; an empty string is an empty cell (CSV), a JSON null, or a Parquet null."""
    rows = [dict(zip(columns, values)) for values in zip(*columns.values())]
    if fmt == "csv":
        return pd.DataFrame(columns).to_csv(index=False).encode()
    if fmt == "json":
        return json.dumps([{k: (v if v != "" else None) for k, v in r.items()} for r in rows]).encode()
    if fmt == "jsonl":
        return "".join(json.dumps({k: (v if v != "" else None) for k, v in r.items()}) + "\n" for r in rows).encode()
    buf = io.BytesIO()  # Parquet: strings are strings, an empty cell is a null
    pq.write_table(pa.table({k: pa.array([v if v != "" else None for v in vs], pa.string()) for k, vs in columns.items()}), buf)
    return buf.getvalue()


def stored(engine, project):
    with session_scope(engine, write=False) as s:
        items = [serialization.loads(d) for d in s.execute(sa.select(Item.data).where(Item.project_id == project.id).order_by(Item.id)).scalars()]
        labels = queue.all_labels(s, project)
    return items, labels


def new_project(engine, name, **settings):
    with session_scope(engine) as s:
        return queue.create_project(s, name, **settings)


@pytest.mark.parametrize("fmt", ["csv", "json", "jsonl", "parquet"])
def test_labels_spelled_like_missing_values_are_imported_as_written(engine, fmt):
    project = new_project(engine, f"na-{fmt}", options=OPTIONS, data_type="text")
    data = table_file(fmt, {"text": TEXTS, "label": LABELS})
    prepared = ingest.prepare_upload(f"labels.{fmt}", data, options=OPTIONS,
                                     plan=ingest.TablePlan(display_columns=["text"], model_columns=["text"], label_column="label"))
    assert prepared.labels == ["NA", "None", "null", "NULL", "cat", None]
    result = importing.import_prepared(engine, project, prepared)
    assert (result.added, result.labelled) == (6, 5)
    items, labels = stored(engine, project)
    assert items == TEXTS
    assert labels == ["NA", "None", "null", "NULL", "cat", None]


@pytest.mark.parametrize("fmt", ["csv", "json", "jsonl", "parquet"])
def test_text_items_spelled_like_missing_values_are_items(engine, fmt):
    project = new_project(engine, f"text-{fmt}", data_type="text")
    words = ["NA", "null", "None", "N/A", "nan", "NULL", "hello"]
    prepared = ingest.prepare_upload(f"items.{fmt}", table_file(fmt, {"text": words}))
    assert prepared.items == words
    importing.import_prepared(engine, project, prepared)
    assert stored(engine, project)[0] == words


def test_an_empty_text_cell_is_still_refused(engine):
    with pytest.raises(ingest.ValidationError, match=r"column 'text' is empty in data row\(s\) 2;"):
        ingest.prepare_upload("items.csv", b"text\nNA\n\"\"\nnull\n")


def test_numeric_columns_for_the_model_stay_numbers(engine):
    """A column of numbers is numbers; a column given to the model whose other cells say NA / null (as R and pandas
    write a missing number) is numbers with those cells missing; the label column keeps its NA as a label."""
    project = new_project(engine, "numbers", options=OPTIONS, data_type="tabular")
    data = (b"id,x,y,z,note,label\n"
            b"a,1,2.5,7,NA,NA\n"
            b"b,2,,NA,null,cat\n"
            b"c,3,0.5,null,ok,\n")
    plan = ingest.TablePlan(display_columns=["note"], model_columns=["x", "y", "z"], label_column="label", id_column="id")
    prepared = ingest.prepare_upload("rows.csv", data, options=OPTIONS, plan=plan)
    importing.import_prepared(engine, project, prepared)
    items, labels = stored(engine, project)
    assert items == [{"note": "NA", "x": 1, "y": 2.5, "z": 7.0},
                     {"note": "null", "x": 2, "y": None, "z": None},
                     {"note": "ok", "x": 3, "y": 0.5, "z": None}]
    assert all(isinstance(i["x"], int) for i in items)
    assert labels == ["NA", "cat", None]


def test_a_column_of_words_for_the_model_is_not_turned_into_numbers():
    plan = ingest.TablePlan(display_columns=[], model_columns=["colour", "size"])
    prepared = ingest.prepare_upload("rows.csv", b"colour,size\nNA,1\nred,NA\nnull,3\n", plan=plan)
    assert prepared.items == [{"colour": "NA", "size": 1.0}, {"colour": "red", "size": None}, {"colour": "null", "size": 3.0}]
