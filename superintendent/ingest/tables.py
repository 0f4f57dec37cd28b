"""Tables in: CSV, Parquet, JSON and JSON Lines read into a checked DataFrame, then made items by a :class:`TablePlan`.

:func:`read_table` parses and checks (sizes, duplicate names, ragged rows,
long fields); :func:`plan_items` turns the chosen columns into items,
external ids and labels. Nothing here touches the database.
"""

from __future__ import annotations

import io
import json
import re
from collections import Counter
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import pandas as pd

from superintendent import serialization
from superintendent.ingest import sizes
from superintendent.ingest.common import (
    MAX_ID_CHARS,
    as_bytes,
    check_text_bytes,
    decode_text,
    file_name,
    is_missing,
    load_json,
    no_duplicate_keys,
    plain,
    reading,
    reason,
    row_list,
    too_many_rows,
)
from superintendent.ingest.checks import cell_depth_problem
from superintendent.ingest.formats import TABLE_FORMATS
from superintendent.ingest.label_values import labels_from_values
from superintendent.ingest.prepared import PREVIEW_ROWS, ImportLimits, PreparedImport, TablePlan
from superintendent.validation import LABEL_MODES, ValidationError, check_options

__all__ = ["ImportLimits", "PreparedImport", "TablePlan", "plan_items", "read_table"]


def read_table(data: bytes, fmt: str, limits: ImportLimits = ImportLimits(), *, text_columns: Sequence[str] = (),
               name: str | None = None) -> pd.DataFrame:
    """Read a CSV, Parquet, JSON or JSON Lines file into a DataFrame with a fresh 0..n-1 index.

    ``text_columns`` (CSV only) are read as text, so an id such as ``007``
    keeps its leading zeros. JSON may be an array of objects (one per row),
    an array of strings or numbers (one column ``value``), or any layout
    ``pandas.read_json`` reads; JSON Lines holds one object (or value) per line.
    """
    what = file_name(name)
    data = as_bytes(data, what)
    if fmt not in TABLE_FORMATS:
        raise ValidationError(f"{what}: read_table reads {', '.join(TABLE_FORMATS)}; got format {fmt!r}")
    if not data:
        raise ValidationError(f"{what} is empty (0 bytes); upload a file with a header row and at least one data row")
    if fmt == "csv":
        df = _read_csv(data, limits, text_columns, what)
    elif fmt == "parquet":
        df = _read_parquet(data, limits, what)
    elif fmt == "json":
        df = _read_json(data, limits, what)
    else:
        df = _read_jsonl(data, limits, what)
    return _check_table(df, limits, what)


_FIELDS = re.compile(r"Expected (\d+) fields in line (\d+), saw (\d+)")


def _unclosed_quote_line(text: str) -> int | None:
    """The line where a quoted field opens that never closes, or None (a doubled quote inside a field toggles twice)."""
    opened_at = None
    line = 1
    for ch in text:
        if ch == '"':
            opened_at = line if opened_at is None else None
        elif ch == "\n":
            line += 1
    return opened_at


def _csv_problem(exc: Exception, data: bytes, what: str, hint: str) -> ValidationError:
    """A pandas parser error said in plain words: the line and what is wrong on it."""
    message = str(exc)
    if "EOF inside string" in message or "EOF in quoted" in message or "quote" in message.lower():
        line = _unclosed_quote_line(data.decode("utf-8-sig"))
        if line is not None:
            return ValidationError(f"{what}, line {line}: a quoted field is not closed (a \" opens it and no \" ends it); "
                                   "close the quote, or double each \" inside a quoted field (\"\")")
    m = _FIELDS.search(message)
    if m:
        expected, line, saw = m.groups()
        return ValidationError(f"{what}, line {line}: {saw} fields where the header has {expected}. {hint}")
    return ValidationError(f"{what} is not a regular CSV table: {reason(exc)}. {hint}")


def _check_csv_bytes(data: bytes, limits: ImportLimits, what: str) -> None:
    """Before pandas sees the file: UTF-8 text, at most ``max_columns`` header fields, no field over ``max_field_chars``
    characters; each found from the bytes without copying them."""
    check_text_bytes(data, what, "a CSV")
    n = sizes.csv_columns(data, limits.max_columns)
    if n is not None and (not isinstance(n, int) or n > limits.max_columns):
        raise sizes.too_many_columns(what, n, limits.max_columns)
    long = sizes.csv_long_field(data, limits.max_field_chars)
    if long is None:
        return
    if long.line == 1:
        raise _long_name(what, long.chars, limits)
    if long.column is not None and long.row is not None:
        raise sizes.long_value(what, f"in column {long.column!r}, data row {long.row:,}", long.chars, limits)
    raise sizes.long_value(what, f"on line {long.line:,}", long.chars, limits)


def _long_name(what: str, chars: int, limits: ImportLimits) -> ValidationError:
    return ValidationError(f"{what} has a column name of {chars:,} characters; the limit is {limits.max_field_chars:,}")


def _read_csv(data: bytes, limits: ImportLimits, text_columns: Sequence[str], what: str) -> pd.DataFrame:
    """Every cell as written (pandas' "NA", "null", "None" ... stay text); only an empty cell is missing, and a column
    whose other cells are all numbers (or all true/false) becomes numbers (booleans)."""
    _check_csv_bytes(data, limits, what)
    hint = ("Expected comma-separated values with one header row; every row needs as many fields as the header, "
            "and fields containing commas, quotes or line breaks must be quoted")
    try:
        # The header and the first data row as raw text: pandas would silently treat extra fields in
        # the first data row as an index (or drop them), so a ragged start is caught here.
        head = pd.read_csv(io.BytesIO(data), encoding="utf-8-sig", header=None, nrows=2, dtype=str, keep_default_na=False,
                           index_col=False)
    except pd.errors.EmptyDataError:
        raise ValidationError(f"{what} has no columns: expected a header row such as 'text,label'") from None
    except pd.errors.ParserError as exc:
        raise _csv_problem(exc, data, what, hint) from None
    except Exception as exc:  # noqa: BLE001
        raise ValidationError(f"cannot read {what} as CSV: {reason(exc)}. {hint}") from None
    header = [str(h) for h in head.iloc[0].tolist()] if len(head) else []
    dupes = [h for h, c in Counter(h for h in header if h != "").items() if c > 1]
    if dupes:
        raise ValidationError(f"{what} has duplicate column names: {', '.join(map(repr, dupes[:5]))}; "
                              "give every column a distinct name in the header row")
    dtype = {c: str for c in text_columns if c in header} or None
    max_rows = min(limits.max_rows, limits.max_cells // max(len(header), 1))  # rows x columns stays within max_cells
    try:
        df = pd.read_csv(io.BytesIO(data), encoding="utf-8-sig", nrows=max_rows + 1, dtype=dtype, keep_default_na=False,
                         na_values=[""], low_memory=False)
    except pd.errors.EmptyDataError:
        raise ValidationError(f"{what} has no columns: expected a header row such as 'text,label'") from None
    except pd.errors.ParserError as exc:
        raise _csv_problem(exc, data, what, hint) from None
    except MemoryError:
        raise ValidationError(f"cannot read {what}: it needs more memory than is available; split it into smaller files") from None
    except Exception as exc:  # noqa: BLE001
        raise ValidationError(f"cannot read {what} as CSV: {reason(exc)}. {hint}") from None
    if not (isinstance(df.index, pd.RangeIndex) and df.index.start == 0 and df.index.step == 1):
        raise ValidationError(f"{what} is not a regular CSV table: its first data row has more fields than the header "
                              f"({len(header)}). {hint}")
    if len(df) > max_rows and max_rows < limits.max_rows:
        raise sizes.too_many_cells(what, f"more than {limits.max_cells:,} cells (rows x columns)", limits.max_cells)
    return df


def _read_parquet(data: bytes, limits: ImportLimits, what: str) -> pd.DataFrame:
    import pyarrow.parquet as pq

    with reading(f"{what} as Parquet", "Check that it is a complete Parquet file (an upload cut short is not), "
                                        "e.g. written with DataFrame.to_parquet"):
        parquet = pq.ParquetFile(io.BytesIO(data))
        names = [str(n) for n in parquet.schema_arrow.names]
        dupes = [n for n, c in Counter(names).items() if c > 1]
        if dupes:
            raise ValidationError(f"{what} has duplicate column names: {', '.join(map(repr, dupes[:5]))}; "
                                  "give every column a distinct name")
        sizes.check_parquet(data, limits, what)  # rows, columns, cells, unpacked and decoded size, longest string
        table = pq.read_table(io.BytesIO(data))
        table.validate(full=True)  # e.g. invalid UTF-8 in a string column, which pandas would only meet later
        df = table.to_pandas()
        if any(n is not None for n in df.index.names):
            df = df.reset_index()  # a named index (e.g. from set_index("id")) is a column the user knows
        return df


def _records_frame(records: list[Any], what: str, unit: str, limits: ImportLimits) -> pd.DataFrame:
    """Rows from JSON values: all objects (one column per key) or all scalars (one column 'value'); the keys are counted
    before a frame is made (a frame of a million columns takes minutes)."""
    if not records:
        raise ValidationError(f"{what} has no rows: expected {unit}s such as {{\"text\": \"...\", \"label\": \"...\"}}")
    if isinstance(records[0], dict):
        odd = next((i for i, r in enumerate(records) if not isinstance(r, dict)), None)
    else:
        odd = next((i for i, r in enumerate(records) if isinstance(r, (dict, list))), None)
    if odd == 0:  # the first one is a list: nothing to compare it with
        raise ValidationError(f"{what}: {unit} 1 is a list; give every {unit} an object such as {{\"text\": \"...\"}} "
                              "(or a plain value)")
    if odd is not None:
        raise ValidationError(f"{what}: {unit} {odd + 1} is a {type(records[odd]).__name__} but {unit} 1 is a "
                              f"{type(records[0]).__name__}; give every {unit} the same kind, preferably an object "
                              "such as {\"text\": \"...\"}")
    if isinstance(records[0], dict):
        keys: set[str] = set()
        for r in records:
            keys.update(r)
        if len(keys) > limits.max_columns:
            raise sizes.too_many_columns(what, len(keys), limits.max_columns)
        if len(records) * len(keys) > limits.max_cells:
            raise sizes.too_many_cells(what, f"{len(records) * len(keys):,} cells ({len(records):,} rows x {len(keys):,} columns)",
                                       limits.max_cells)
        return pd.DataFrame(records)
    return pd.DataFrame({"value": records})


def _read_json(data: bytes, limits: ImportLimits, what: str) -> pd.DataFrame:
    text = decode_text(data, what, "JSON")
    hint = "Expected a JSON array of objects such as [{\"text\": \"...\", \"label\": \"...\"}, ...]"
    obj = load_json(text, what, hint)
    if isinstance(obj, list):
        if len(obj) > limits.max_rows:
            raise too_many_rows(what, len(obj), limits.max_rows)
        with reading(f"{what} as JSON", hint):
            return _records_frame(obj, what, "element", limits)
    if isinstance(obj, dict):
        with reading(f"{what} as JSON", hint + ", or a layout pandas.read_json understands (e.g. {\"column\": [values]})"):
            return pd.read_json(io.StringIO(text), dtype=False)
    raise ValidationError(f"{what} holds a single JSON {type(obj).__name__}, not a table. {hint}")


def _read_jsonl(data: bytes, limits: ImportLimits, what: str) -> pd.DataFrame:
    text = decode_text(data, what, "JSON Lines")
    hook = no_duplicate_keys(what)
    records: list[Any] = []
    for lineno, line in enumerate(text.split("\n"), 1):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line, object_pairs_hook=hook))
        except json.JSONDecodeError as exc:
            raise ValidationError(f"{what}: line {lineno} is not valid JSON ({exc.msg} at column {exc.colno}); each line of a "
                                  "JSON Lines file must be one JSON object such as {\"text\": \"...\"}") from None
        except ValidationError:
            raise
        except Exception as exc:  # noqa: BLE001
            raise ValidationError(f"cannot read line {lineno} of {what} as JSON: {reason(exc)}") from None
        if len(records) > limits.max_rows:
            raise too_many_rows(what, f"more than {limits.max_rows:,}", limits.max_rows)
    with reading(f"{what} as JSON Lines", "Each line must be one JSON object such as {\"text\": \"...\"}"):
        return _records_frame(records, what, "line", limits)


def _longest(values: np.ndarray) -> tuple[int, int]:
    """(length, position) of the longest text value; containers count by their JSON text."""
    best, where = 0, -1
    for i, v in enumerate(values):
        if isinstance(v, (str, bytes)):
            n = len(v)
        elif isinstance(v, (list, dict, tuple)):
            n = len(json.dumps(v, default=str))
        else:
            continue
        if n > best:
            best, where = n, i
    return best, where


def _check_table(df: pd.DataFrame, limits: ImportLimits, what: str) -> pd.DataFrame:
    if not isinstance(df, pd.DataFrame):
        raise ValidationError(f"{what} does not hold a table")
    if isinstance(df.columns, pd.MultiIndex):
        raise ValidationError(f"{what} has multi-level column names; flatten them first (e.g. 'group_value')")
    df = df.reset_index(drop=True)
    df.columns = [str(c) for c in df.columns]
    dupes = [c for c, n in Counter(df.columns).items() if n > 1]
    if dupes:
        raise ValidationError(f"{what} has duplicate column names: {', '.join(map(repr, dupes[:5]))}; give every column a distinct name")
    if len(df.columns) == 0:
        raise ValidationError(f"{what} has no columns: expected at least one column, e.g. 'text'")
    if len(df) == 0:
        raise ValidationError(f"{what} has no rows: it has the columns {', '.join(map(repr, list(df.columns)[:10]))} but no data below them")
    if len(df) > limits.max_rows:
        raise too_many_rows(what, f"more than {limits.max_rows:,}" if len(df) == limits.max_rows + 1 else len(df), limits.max_rows)
    if len(df.columns) > limits.max_columns:
        raise sizes.too_many_columns(what, len(df.columns), limits.max_columns)
    if df.size > limits.max_cells:
        raise sizes.too_many_cells(what, f"{df.size:,} cells ({len(df):,} rows x {len(df.columns):,} columns)", limits.max_cells)
    for col in df.columns:
        if len(col) > limits.max_field_chars:
            raise _long_name(what, len(col), limits)
        s = df[col]
        if pd.api.types.is_string_dtype(s.dtype) and not s.dtype == object:
            lengths = s.str.len()
            n = lengths.max()
            where = int(lengths.idxmax()) if pd.notna(n) else -1
            n = 0 if pd.isna(n) else int(n)
        elif s.dtype == object:
            _check_nesting(s, what)  # before anything recursive (the JSON text _longest measures) meets a cell
            n, where = _longest(s.to_numpy())
        else:
            continue
        if n > limits.max_field_chars:
            raise sizes.long_value(what, f"in column {col!r}, data row {where + 1:,}", n, limits)
    return df


def _check_nesting(column: pd.Series, what: str | None = None) -> None:
    """Refuse a cell nested more than MAX_JSON_DEPTH levels, naming its column and data row (the rule is
    :func:`~superintendent.ingest.checks.cell_depth_problem`'s)."""
    found = cell_depth_problem(column)
    if found is not None:
        row, problem = found
        head = f"{what}: the value" if what else "the value"
        raise ValidationError(f"{head} in column {str(column.name)!r}, data row {row + 1:,} {problem}; flatten it, or leave "
                              "the column out of the file, and upload the file again")


def _external_ids(series: pd.Series, column: str) -> list[str]:
    ids: list[str] = []
    empty: list[int] = []
    long: list[int] = []
    for row, v in enumerate(series.to_numpy(dtype=object), 1):
        v = plain(v)
        if is_missing(v):
            empty.append(row)
            ids.append("")
            continue
        if isinstance(v, float) and v.is_integer():
            v = int(v)
        text = str(v)
        if len(text) > MAX_ID_CHARS:
            long.append(row)
        ids.append(text)
    if empty:
        raise ValidationError(f"the id column {column!r} is empty in data row(s) {row_list(empty)}; give every row an id, "
                              "or choose no id column (the ids are then the row numbers)")
    if long:
        raise ValidationError(f"the id column {column!r} has ids longer than {MAX_ID_CHARS} characters in data row(s) {row_list(long)}")
    repeated = pd.Series(ids, dtype=object).duplicated(keep=False).to_numpy()  # one hash table in C: a dict of a list per
    positions: dict[str, list[int]] = {}                                        # id took 200 MB for 1M ids
    for row in np.flatnonzero(repeated) + 1:
        positions.setdefault(ids[row - 1], []).append(int(row))
    dupes = list(positions.items())
    if dupes:
        shown = "; ".join(f"{e!r} (data rows {row_list(rows)})" for e, rows in dupes[:5])
        raise ValidationError(f"the id column {column!r} must hold a different id in every row; {len(dupes):,} id(s) repeat: {shown}")
    return ids


# How R, pandas, spreadsheets and databases write a missing number. Read as missing only in a model column whose other
# cells are all numbers; everywhere else (labels, ids, text, columns only shown) a cell is kept as written.
MISSING_NUMBER = frozenset({"NA", "N/A", "n/a", "#N/A", "NaN", "nan", "-nan", "null", "NULL", "Null", "None", "<NA>"})


def _model_numbers(series: pd.Series) -> pd.Series | None:
    """A column of numbers in which some cells spell a missing number ("NA", "null", ...; :data:`MISSING_NUMBER`), as
    numbers with those cells missing; None for any other column (kept as it is)."""
    if not (series.dtype == object or pd.api.types.is_string_dtype(series.dtype)):
        return None
    spelled = series.isin(MISSING_NUMBER)
    if not spelled.any():
        return None
    present = series.notna() & ~spelled
    numbers = pd.to_numeric(series.where(present), errors="coerce")
    if not present.any() or numbers[present].isna().any():
        return None
    return numbers


def _is_text(series: pd.Series) -> bool:
    values = [v for v in series.to_numpy(dtype=object) if plain(v) is not None]
    return bool(values) and all(isinstance(v, str) for v in values)


def _preview(df: pd.DataFrame) -> pd.DataFrame:
    """The first rows, with mixed / nested columns as text so any table widget can show them."""
    head = df.head(PREVIEW_ROWS).copy()
    for col in head.columns:
        if head[col].dtype == object and not _is_text(head[col]):
            head[col] = [None if plain(v) is None else str(plain(v)) for v in head[col].to_numpy(dtype=object)]
    return head.reset_index(drop=True)


def _plain_cells(series: pd.Series) -> list[Any]:
    """A column's cells as :func:`plain` makes them; a numpy column of numbers or booleans at once (a table of 200,000
    rows and 13 number columns took 15 s cell by cell, under 1 s so)."""
    if isinstance(series.dtype, np.dtype) and series.dtype.kind in "biuf":
        values = series.to_numpy().tolist()  # Python ints, floats, bools, as plain() makes them
        if series.dtype.kind == "f" and series.isna().any():
            values = [None if v != v else v for v in values]  # NaN is missing
        return values
    return [plain(v) for v in series.to_numpy(dtype=object)]


class TableRows(Sequence):
    """A table's rows as items ``{column: value}``, made a slice at a time from its columns (a read-only sequence).

    An import reads them in chunks (:func:`superintendent.importing.import_prepared`), so only one chunk's dicts exist
    at a time: a 1M-row table kept as a list of dicts held about 400 MB more than its columns. Values are as
    :func:`plain` makes them, exactly as a list built up front would hold; equal to a list of the same dicts.
    """

    _CHUNK = 5000

    def __init__(self, frame: pd.DataFrame, columns: list[str]) -> None:
        self._frame = frame[columns].reset_index(drop=True)
        self._columns = list(columns)
        self._plain = serialization.plain_columns(self._frame)

    def dumps(self, rows: list[dict[str, Any]]) -> list[str] | None:
        """Rows taken from this table as :func:`serialization.dumps` writes them, made without a look at each cell when
        every column is plain (:func:`serialization.plain_columns`); None when they are not (then each is encoded)."""
        return serialization.dumps_plain_rows(rows) if self._plain else None

    def __len__(self) -> int:
        return len(self._frame)

    def __getitem__(self, index: int | slice) -> Any:
        if isinstance(index, slice):
            part = self._frame.iloc[index]
            cells = [_plain_cells(part[c]) for c in self._columns]
            return [dict(zip(self._columns, row)) for row in zip(*cells)]
        position = range(len(self))[index]  # an int; negative counts from the end; IndexError past it
        return self[position:position + 1][0]

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for start in range(0, len(self), self._CHUNK):
            yield from self[start:start + self._CHUNK]

    def __eq__(self, other: object) -> bool:
        if isinstance(other, (TableRows, list, tuple)):
            return len(self) == len(other) and list(self) == list(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment] # a sequence of dicts, compared by value

    def __repr__(self) -> str:
        return f"TableRows({len(self):,} rows of {', '.join(self._columns)})"


def plan_items(df: pd.DataFrame, plan: TablePlan, options: Sequence[Any] = (), label_mode: str = "single") -> PreparedImport:
    """Check ``plan`` against ``df`` and build the items, ids and labels it describes."""
    if not isinstance(plan, TablePlan):
        raise ValidationError(f"plan must be a TablePlan; got {type(plan).__name__}")
    if label_mode not in LABEL_MODES:
        raise ValidationError(f"label_mode must be one of {', '.join(LABEL_MODES)}; got {label_mode!r}")
    options = check_options(list(options) if options is not None else None)
    columns = list(dict.fromkeys([*plan.display_columns, *plan.model_columns]))
    if not columns:
        raise ValidationError("choose at least one column to show to labellers or to give to the model")
    wanted = columns + [c for c in (plan.label_column, plan.id_column) if c is not None]
    missing = [c for c in wanted if c not in df.columns]
    if missing:
        raise ValidationError(f"the table has no column {', '.join(map(repr, missing))}; its columns are "
                              f"{', '.join(map(repr, list(df.columns)[:30]))}")
    for column in dict.fromkeys(wanted):  # a frame not read by read_table (the Python API) is checked here
        _check_nesting(df[column])
    if plan.label_column is not None and plan.label_column in plan.model_columns:
        raise ValidationError(f"the label column {plan.label_column!r} cannot also be a model column: the model would be "
                              "given the answer. Remove it from the model columns")
    df = df.reset_index(drop=True)
    n = len(df)
    if n == 0:
        raise ValidationError("the table has no rows")
    converted = {c: x for c in plan.model_columns if c != plan.id_column and (x := _model_numbers(df[c])) is not None}
    if converted:
        df = df.assign(**converted)
    # without an id column an item's id is its data row number (1 = the first row under the header), so an export joins
    # back to the uploaded file and importing the same file again adds nothing
    external_ids = _external_ids(df[plan.id_column], plan.id_column) if plan.id_column is not None else [str(i) for i in range(1, n + 1)]
    labels = None
    if plan.label_column is not None:
        labels = labels_from_values(df[plan.label_column].to_numpy(dtype=object), options, label_mode, f"column {plan.label_column!r}")
    if len(columns) == 1 and _is_text(df[columns[0]]):
        values = [plain(v) for v in df[columns[0]].to_numpy(dtype=object)]
        empty = [row for row, v in enumerate(values, 1) if v is None]
        if empty:
            raise ValidationError(f"column {columns[0]!r} is empty in data row(s) {row_list(empty)}; fill in those rows or remove them")
        items: list[Any] = values
    else:
        items = TableRows(df, columns)
    shown = list(dict.fromkeys(wanted))
    as_rows = isinstance(items, TableRows)
    return PreparedImport(items=items, external_ids=external_ids, labels=labels, preview=_preview(df[shown]), n_rows=n,
                          display_columns=list(plan.display_columns) if as_rows else None,
                          model_columns=list(plan.model_columns) if as_rows else None)


