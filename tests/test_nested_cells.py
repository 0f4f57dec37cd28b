"""A table cell nested too deep is refused naming its column and data row (JSON Lines tables, Parquet, a DataFrame
given to ``plan_items``); no database is involved: the file is refused before anything is imported.

Before: JSON Lines said only "a value of the file is nested more than 100 levels deep", not where.
"""

from __future__ import annotations

import io
import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from superintendent import ingest
from superintendent.ingest.checks import MAX_JSON_DEPTH
from superintendent.validation import ValidationError


def nest(depth: int, leaf=1):
    value = leaf
    for _ in range(depth):
        value = [value]
    return value


PLAN = ingest.TablePlan(display_columns=["text", "meta"], model_columns=["text"], id_column="id")


def jsonl(rows) -> bytes:
    return "\n".join(json.dumps(r) for r in rows).encode()


def deep_text(depth: int) -> str:
    """A list nested ``depth`` levels as JSON text (json.dumps itself stops near 1,000 levels)."""
    return "[" * depth + "1" + "]" * depth


def rows_with(deep_row: int, value) -> list[dict]:
    rows = [{"id": f"r{i}", "text": f"text {i}", "meta": {"a": i}} for i in range(1, 6)]
    rows[deep_row - 1]["meta"] = value
    return rows


@pytest.mark.parametrize("depth", [MAX_JSON_DEPTH + 1, 150, 600])
def test_a_deep_cell_of_a_json_lines_table_names_its_column_and_row(depth):
    data = jsonl(rows_with(4, nest(depth)))
    with pytest.raises(ValidationError, match=r"'t\.jsonl': the value in column 'meta', data row 4 is nested more than 100 levels"):
        ingest.prepare_upload("t.jsonl", data, plan=PLAN, fmt="jsonl")


def test_a_deep_object_in_a_cell_is_refused_too():
    deep = {"k": nest(MAX_JSON_DEPTH)}  # an object holding 100 levels of lists: 101 in the cell
    with pytest.raises(ValidationError, match=r"column 'meta', data row 2 is nested more than 100 levels"):
        ingest.prepare_upload("t.jsonl", jsonl(rows_with(2, deep)), plan=PLAN, fmt="jsonl")


def test_a_cell_at_the_limit_is_read_exactly():
    value = nest(MAX_JSON_DEPTH)
    prepared = ingest.prepare_upload("t.jsonl", jsonl(rows_with(4, value)), plan=PLAN, fmt="jsonl")
    assert prepared.items[3]["meta"] == value and prepared.n_rows == 5


def test_a_deep_cell_of_a_column_not_chosen_is_refused_too():
    """Every column of the file is read (its longest value measured), like a value too long in any column."""
    plan = ingest.TablePlan(display_columns=["text"], model_columns=["text"], id_column="id")
    with pytest.raises(ValidationError, match=r"column 'meta', data row 5 is nested more than 100 levels"):
        ingest.prepare_upload("t.jsonl", jsonl(rows_with(5, nest(150))), plan=plan, fmt="jsonl")


@pytest.mark.parametrize("depth", [900, 960, 990])
def test_a_cell_nested_almost_as_deep_as_python_parses_is_a_message(depth):
    """Near the parser's own limit: refused with the row, or by the parser naming the line; never a RecursionError."""
    rows = jsonl(rows_with(4, "DEEP")).decode().replace('"DEEP"', deep_text(depth)).encode()
    with pytest.raises(ValidationError, match=r"column 'meta', data row 4 is nested|cannot read line 4"):
        ingest.prepare_upload("t.jsonl", rows, plan=PLAN, fmt="jsonl")


def object_array(value) -> np.ndarray:
    out = np.empty(1, dtype=object)
    out[0] = value
    return out


@pytest.mark.parametrize("cell", [nest(150), tuple(nest(150)), object_array(nest(150))], ids=["list", "tuple", "array"])
def test_a_data_frame_given_to_plan_items_names_the_column_and_row(cell):
    frame = pd.DataFrame({"id": ["a", "b", "c"], "text": ["x", "y", "z"], "meta": pd.Series([[1], [2], None], dtype=object)})
    frame.at[2, "meta"] = cell
    with pytest.raises(ValidationError, match=r"the value in column 'meta', data row 3 is nested more than 100 levels"):
        ingest.plan_items(frame, PLAN)


def test_nested_parquet_lists_within_the_limit_are_read():
    """Parquet's own schema limit (100 levels of schema, about 49 levels of lists) comes first; below it, the values
    arrive as nested arrays and are taken as they are."""
    table = pa.table({"id": ["a", "b"], "text": ["x", "y"], "meta": pa.array([nest(40), nest(40, leaf=2)])})
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    prepared = ingest.prepare_upload("t.parquet", buffer.getvalue(), plan=PLAN, fmt="parquet")
    assert prepared.n_rows == 2 and np.array_equal(np.asarray(prepared.items[1]["meta"]).ravel(), [2])
