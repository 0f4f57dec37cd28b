"""Turn uploaded files into items: tables, numpy arrays and ZIPs of images.

Used by the Admin page and the CLI; nothing here imports streamlit. Reading
is pure: :func:`prepare_upload` parses and checks a file and returns a
:class:`PreparedImport` (items, ids, labels and a preview) without touching
the database; :func:`import_prepared` then adds it in one transaction, so a
failure imports nothing.

Every problem with the input raises :class:`ValidationError` whose message
names the file, what was expected, what came and how to fix it; no pandas,
pyarrow, numpy or Pillow traceback reaches the user. Nothing is ever
unpickled (``.npy`` / ``.npz`` are read with ``allow_pickle=False`` after
their header was checked), and a ZIP is checked entry by entry (count,
sizes, compression ratio, paths, image headers) before a single byte is
written.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
import re
import shutil
import tempfile
import zipfile
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from superintendent import queue, serialization
from superintendent.store.db import session_scope
from superintendent.store.models import Project
from superintendent.validation import LABEL_MODES, ValidationError, check_label, check_options

__all__ = [
    "ACCEPTED_EXTENSIONS", "ARRAY_FORMATS", "IMAGE_EXTENSIONS", "ImageFile", "ImportLimits", "PreparedImport", "TABLE_FORMATS",
    "TablePlan", "detect_format", "import_prepared", "plan_items", "prepare_upload", "read_arrays", "read_image_zip", "read_table",
]

MB = 1024 * 1024
TABLE_FORMATS = ("csv", "parquet", "json", "jsonl")
ARRAY_FORMATS = ("npy", "npz")
INTEROP_FORMATS = ("label-studio", "items-jsonl")  # read by superintendent.interop
ACCEPTED_EXTENSIONS: dict[str, str] = {
    ".csv": "csv", ".parquet": "parquet", ".pq": "parquet", ".json": "json", ".jsonl": "jsonl", ".ndjson": "jsonl",
    ".npy": "npy", ".npz": "npz", ".zip": "zip",
}
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg")
_IMAGE_FORMATS = {"PNG": ".png", "JPEG": ".jpg"}
MAX_ZIP_RATIO = 100
PREVIEW_ROWS = 20
_MAX_ID_CHARS = 300  # queue.add_items' limit on external ids
_NUMERIC_KINDS = "biufc"


@dataclass(frozen=True)
class ImportLimits:
    """Upper bounds on what one upload may contain.

    ``max_zip_total_uncompressed`` also bounds the decompressed size of the
    other compressed containers (the column chunks of a Parquet file, the
    members of a ``.npz``).
    """

    max_bytes: int = 200 * MB
    max_rows: int = 2_000_000
    max_field_chars: int = 100_000
    max_zip_entries: int = 10_000
    max_zip_total_uncompressed: int = 1024 * MB
    max_image_pixels: int = 50_000_000


@dataclass(frozen=True)
class TablePlan:
    """How the columns of a table become items.

    The item holds the union of ``display_columns`` (shown to labellers) and
    ``model_columns`` (given to the model); ``label_column`` holds existing
    labels (empty cells = unlabelled); ``id_column`` holds external ids.
    """

    display_columns: list[str]
    model_columns: list[str]
    label_column: str | None = None
    id_column: str | None = None


@dataclass(frozen=True)
class ImageFile:
    original_name: str
    path: Path
    width: int
    height: int


@dataclass
class PreparedImport:
    """A checked upload, ready for :func:`import_prepared`."""

    items: list[Any]
    external_ids: list[str] | None
    labels: list[Any] | None
    preview: pd.DataFrame
    n_rows: int
    file_paths: list[str] | None = None
    display_columns: list[str] | None = None  # table rows: which fields labellers see ...
    model_columns: list[str] | None = None  # ... and which the model gets (stored in the project's settings)
    annotations: list[Any] | None = None  # per item, interop.ImportedAnnotation of named annotators (Label Studio, items JSONL)


# --------------------------------------------------------------------------- helpers


def _mb(n: int) -> str:
    return f"{n / MB:,.1f} MB ({n:,} bytes)"


def _reason(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    text = lines[0] if lines else type(exc).__name__
    return text if len(text) <= 300 else text[:297] + "..."


@contextmanager
def _reading(what: str, hint: str) -> Iterator[None]:
    """Turn any error of a parser into a ValidationError naming ``what`` and the fix."""
    try:
        yield
    except ValidationError:
        raise
    except MemoryError:
        raise ValidationError(f"cannot read {what}: it needs more memory than is available; split it into smaller files") from None
    except Exception as exc:  # noqa: BLE001 - parsers raise anything on bad input; the user gets one clear message
        raise ValidationError(f"cannot read {what}: {_reason(exc)}. {hint}") from None


def _as_bytes(data: Any, what: str) -> bytes:
    if isinstance(data, bytes):
        return data
    if isinstance(data, (bytearray, memoryview)):
        return bytes(data)
    raise ValidationError(f"{what}: expected the file's content as bytes; got {type(data).__name__}")


def _name(name: str | None) -> str:
    return repr(name) if name else "the file"


def detect_format(filename: str | os.PathLike[str], data: bytes | None = None) -> str:
    """The format of an upload from its file name's extension (case-insensitive).

    Given the content too, Label Studio tasks (``.json``, or a ``.zip`` with a
    ``.json`` in it) are told as ``"label-studio"`` and exported items JSON
    Lines as ``"items-jsonl"`` (see :func:`superintendent.interop.sniff_format`).
    """
    if not isinstance(filename, (str, os.PathLike)):
        raise ValidationError(f"expected a file name such as 'data.csv'; got {type(filename).__name__}")
    name = os.fspath(filename)
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    suffix = ("." + base.rsplit(".", 1)[-1].lower()) if "." in base else ""
    fmt = ACCEPTED_EXTENSIONS.get(suffix)
    if fmt is None:
        got = f"extension {suffix!r}" if suffix else "no extension"
        raise ValidationError(f"cannot tell the format of {name!r} from its name ({got}); accepted extensions: "
                              f"{', '.join(ACCEPTED_EXTENSIONS)}. Rename the file or convert it to one of these formats")
    if data is not None:
        from superintendent import interop

        fmt = interop.sniff_format(fmt, data)
    return fmt


def _plain(v: Any) -> Any:
    """A value as plain Python (numpy scalars unwrapped, NaN / NA / NaT as None) that serialises cleanly."""
    if v is None or v is pd.NA or v is pd.NaT:
        return None
    if isinstance(v, (np.datetime64, np.timedelta64)):
        if np.isnat(v):
            return None
        return pd.Timestamp(v) if isinstance(v, np.datetime64) else pd.Timedelta(v)
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and math.isnan(v):
        return None
    if isinstance(v, np.ndarray):
        return v if v.dtype.kind in _NUMERIC_KINDS else [_plain(x) for x in v.tolist()]
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    if isinstance(v, dict):
        return {k: _plain(x) for k, x in v.items()}
    return v


def _is_missing(v: Any) -> bool:
    return v is None or (isinstance(v, str) and not v.strip())


def _rows(rows: Sequence[int]) -> str:
    shown = ", ".join(str(r) for r in rows[:5])
    return shown + (f" and {len(rows) - 5} more" if len(rows) > 5 else "")


def _decode_text(data: bytes, what: str) -> str:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise ValidationError(
            f"{what} is not UTF-8 text: byte 0x{data[exc.start:exc.start + 1].hex()} at position {exc.start} (line {line}) "
            "cannot be decoded. Save the file as UTF-8 (in Excel: 'CSV UTF-8'), or convert it, e.g. "
            "`iconv -f latin1 -t utf-8 in.csv > out.csv`"
        ) from None
    if "\x00" in text:
        raise ValidationError(f"{what} contains NUL characters, so it is a binary file, not text; upload a text file, "
                              "or give the file the extension of its real format")
    if not text.strip():
        raise ValidationError(f"{what} contains only whitespace; expected a header row and at least one data row")
    return text


# --------------------------------------------------------------------------- tables


def read_table(data: bytes, fmt: str, limits: ImportLimits = ImportLimits(), *, text_columns: Sequence[str] = (),
               name: str | None = None) -> pd.DataFrame:
    """Read a CSV, Parquet, JSON or JSON Lines file into a DataFrame with a fresh 0..n-1 index.

    ``text_columns`` (CSV only) are read as text, so an id such as ``007``
    keeps its leading zeros. JSON may be an array of objects (one per row),
    an array of strings or numbers (one column ``value``), or any layout
    ``pandas.read_json`` reads; JSON Lines holds one object (or value) per line.
    """
    what = _name(name)
    data = _as_bytes(data, what)
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


def _read_csv(data: bytes, limits: ImportLimits, text_columns: Sequence[str], what: str) -> pd.DataFrame:
    text = _decode_text(data, what)
    hint = ("Expected comma-separated values with one header row; every row needs as many fields as the header, "
            "and fields containing commas, quotes or line breaks must be quoted")
    try:
        # The header and the first data row as raw text: pandas would silently treat extra fields in
        # the first data row as an index (or drop them), so a ragged start is caught here.
        head = pd.read_csv(io.StringIO(text), header=None, nrows=2, dtype=str, keep_default_na=False, index_col=False)
    except pd.errors.EmptyDataError:
        raise ValidationError(f"{what} has no columns: expected a header row such as 'text,label'") from None
    except pd.errors.ParserError as exc:
        raise ValidationError(f"{what} is not a regular CSV table: {_reason(exc)}. {hint}") from None
    except Exception as exc:  # noqa: BLE001
        raise ValidationError(f"cannot read {what} as CSV: {_reason(exc)}. {hint}") from None
    header = [str(h) for h in head.iloc[0].tolist()] if len(head) else []
    dupes = [h for h, c in Counter(h for h in header if h != "").items() if c > 1]
    if dupes:
        raise ValidationError(f"{what} has duplicate column names: {', '.join(map(repr, dupes[:5]))}; "
                              "give every column a distinct name in the header row")
    dtype = {c: str for c in text_columns if c in header} or None
    try:
        df = pd.read_csv(io.StringIO(text), nrows=limits.max_rows + 1, dtype=dtype, low_memory=False)
    except pd.errors.EmptyDataError:
        raise ValidationError(f"{what} has no columns: expected a header row such as 'text,label'") from None
    except pd.errors.ParserError as exc:
        raise ValidationError(f"{what} is not a regular CSV table: {_reason(exc)}. {hint}") from None
    except MemoryError:
        raise ValidationError(f"cannot read {what}: it needs more memory than is available; split it into smaller files") from None
    except Exception as exc:  # noqa: BLE001
        raise ValidationError(f"cannot read {what} as CSV: {_reason(exc)}. {hint}") from None
    if not (isinstance(df.index, pd.RangeIndex) and df.index.start == 0 and df.index.step == 1):
        raise ValidationError(f"{what} is not a regular CSV table: its first data row has more fields than the header "
                              f"({len(header)}). {hint}")
    return df


def _read_parquet(data: bytes, limits: ImportLimits, what: str) -> pd.DataFrame:
    import pyarrow.parquet as pq

    with _reading(f"{what} as Parquet", "Check that it is a complete Parquet file (an upload cut short is not), "
                                        "e.g. written with DataFrame.to_parquet"):
        parquet = pq.ParquetFile(io.BytesIO(data))
        meta = parquet.metadata
        names = [str(n) for n in parquet.schema_arrow.names]
        dupes = [n for n, c in Counter(names).items() if c > 1]
        if dupes:
            raise ValidationError(f"{what} has duplicate column names: {', '.join(map(repr, dupes[:5]))}; "
                                  "give every column a distinct name")
        if meta.num_rows > limits.max_rows:
            raise _too_many_rows(what, meta.num_rows, limits)
        unpacked = sum(meta.row_group(i).total_byte_size for i in range(meta.num_row_groups))
        if unpacked > limits.max_zip_total_uncompressed:
            raise ValidationError(f"{what} unpacks to {_mb(unpacked)}; the limit is {_mb(limits.max_zip_total_uncompressed)}. "
                                  "Split it into smaller files")
        table = pq.read_table(io.BytesIO(data))
        table.validate(full=True)  # e.g. invalid UTF-8 in a string column, which pandas would only meet later
        df = table.to_pandas()
        if any(n is not None for n in df.index.names):
            df = df.reset_index()  # a named index (e.g. from set_index("id")) is a column the user knows
        return df


def _no_duplicate_keys(what: str) -> Callable[[list[tuple[str, Any]]], dict[str, Any]]:
    def hook(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        out = dict(pairs)
        if len(out) != len(pairs):
            dupes = [k for k, c in Counter(k for k, _ in pairs).items() if c > 1]
            raise ValidationError(f"{what} has an object with the key {dupes[0]!r} twice; every key of an object must be distinct")
        return out
    return hook


def _records_frame(records: list[Any], what: str, unit: str) -> pd.DataFrame:
    """Rows from JSON values: all objects (one column per key) or all scalars (one column 'value')."""
    if not records:
        raise ValidationError(f"{what} has no rows: expected {unit}s such as {{\"text\": \"...\", \"label\": \"...\"}}")
    if isinstance(records[0], dict):
        odd = next((i for i, r in enumerate(records) if not isinstance(r, dict)), None)
    else:
        odd = next((i for i, r in enumerate(records) if isinstance(r, (dict, list))), None)
    if odd is not None:
        raise ValidationError(f"{what}: {unit} {odd + 1} is a {type(records[odd]).__name__} but {unit} 1 is a "
                              f"{type(records[0]).__name__}; give every {unit} the same kind, preferably an object "
                              "such as {\"text\": \"...\"}")
    if isinstance(records[0], dict):
        return pd.DataFrame(records)
    return pd.DataFrame({"value": records})


def _read_json(data: bytes, limits: ImportLimits, what: str) -> pd.DataFrame:
    text = _decode_text(data, what)
    hint = "Expected a JSON array of objects such as [{\"text\": \"...\", \"label\": \"...\"}, ...]"
    try:
        obj = json.loads(text, object_pairs_hook=_no_duplicate_keys(what))
    except json.JSONDecodeError as exc:
        raise ValidationError(f"{what} is not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}. {hint}") from None
    except ValidationError:
        raise
    except Exception as exc:  # noqa: BLE001 - e.g. RecursionError on deep nesting, too many digits
        raise ValidationError(f"cannot read {what} as JSON: {_reason(exc)}. {hint}") from None
    if isinstance(obj, list):
        if len(obj) > limits.max_rows:
            raise _too_many_rows(what, len(obj), limits)
        with _reading(f"{what} as JSON", hint):
            return _records_frame(obj, what, "element")
    if isinstance(obj, dict):
        with _reading(f"{what} as JSON", hint + ", or a layout pandas.read_json understands (e.g. {\"column\": [values]})"):
            return pd.read_json(io.StringIO(text), dtype=False)
    raise ValidationError(f"{what} holds a single JSON {type(obj).__name__}, not a table. {hint}")


def _read_jsonl(data: bytes, limits: ImportLimits, what: str) -> pd.DataFrame:
    text = _decode_text(data, what)
    hook = _no_duplicate_keys(what)
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
            raise ValidationError(f"cannot read line {lineno} of {what} as JSON: {_reason(exc)}") from None
        if len(records) > limits.max_rows:
            raise _too_many_rows(what, f"more than {limits.max_rows:,}", limits)
    with _reading(f"{what} as JSON Lines", "Each line must be one JSON object such as {\"text\": \"...\"}"):
        return _records_frame(records, what, "line")


def _too_many_rows(what: str, n: int | str, limits: ImportLimits) -> ValidationError:
    shown = f"{n:,}" if isinstance(n, int) else n
    return ValidationError(f"{what} has {shown} rows; the limit is {limits.max_rows:,}. Split it into several files")


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
        raise _too_many_rows(what, f"more than {limits.max_rows:,}" if len(df) == limits.max_rows + 1 else len(df), limits)
    for col in df.columns:
        if len(col) > limits.max_field_chars:
            raise ValidationError(f"{what} has a column name of {len(col):,} characters; the limit is {limits.max_field_chars:,}")
        s = df[col]
        if pd.api.types.is_string_dtype(s.dtype) and not s.dtype == object:
            lengths = s.str.len()
            n = lengths.max()
            where = int(lengths.idxmax()) if pd.notna(n) else -1
            n = 0 if pd.isna(n) else int(n)
        elif s.dtype == object:
            n, where = _longest(s.to_numpy())
        else:
            continue
        if n > limits.max_field_chars:
            raise ValidationError(f"{what}: the value in column {col!r}, data row {where + 1} is {n:,} characters long; the limit "
                                  f"is {limits.max_field_chars:,}. Shorten it (or store long documents as files)")
    return df


# --------------------------------------------------------------------------- arrays


def _load_npy(raw: bytes, what: str, limits: ImportLimits, *, allow_text: bool = False) -> np.ndarray:
    """A .npy array, its header checked before numpy reads it; never unpickles."""
    from numpy.lib import format as npformat

    hint = "Save it with numpy.save(path, array) from a numeric array"
    f = io.BytesIO(raw)
    with _reading(f"{what} as a .npy array", hint):
        version = npformat.read_magic(f)
        if version == (1, 0):
            shape, fortran, dtype = npformat.read_array_header_1_0(f)
        elif version == (2, 0):
            shape, fortran, dtype = npformat.read_array_header_2_0(f)
        else:
            raise ValidationError(f"{what} is a .npy file of version {version[0]}.{version[1]}, which is only used for "
                                  f"structured arrays; {hint}")
        if dtype.hasobject:
            raise ValidationError(f"{what} holds Python objects (dtype {dtype}); reading it would need pickle, which uploads "
                                  "never use. Save a numeric array instead, e.g. numpy.save(path, x.astype(numpy.float32))")
        allowed = _NUMERIC_KINDS + ("U" if allow_text else "")
        if dtype.kind not in allowed or dtype.names is not None or dtype.subdtype is not None:
            kinds = "numbers, booleans" + (" or text" if allow_text else "")
            raise ValidationError(f"{what} has dtype {dtype}; expected {kinds}. Convert it first, e.g. x.astype(numpy.float32)")
        size = math.prod(shape) * dtype.itemsize
        if size > limits.max_zip_total_uncompressed:
            raise ValidationError(f"{what} declares an array of {_mb(size)}; the limit is {_mb(limits.max_zip_total_uncompressed)}")
        if len(raw) - f.tell() != size:
            raise ValidationError(f"{what} is damaged: its header declares shape {shape} of {dtype} ({size:,} bytes) but it holds "
                                  f"{len(raw) - f.tell():,} bytes of data (an upload cut short?). {hint}")
        return np.load(io.BytesIO(raw), allow_pickle=False)


def _check_finite(arr: np.ndarray, what: str) -> None:
    if arr.dtype.kind not in "fc" or arr.size == 0:
        return
    finite = np.isfinite(arr)
    if finite.all():
        return
    n_nan = int(np.isnan(arr).sum())
    n_inf = int(finite.size - finite.sum()) - n_nan
    first = int(np.argmax(~finite.reshape(len(arr), -1).all(axis=1))) if arr.ndim else 0
    parts = [f"{n_nan:,} NaN" if n_nan else "", f"{n_inf:,} infinite" if n_inf else ""]
    raise ValidationError(f"{what} contains {' and '.join(p for p in parts if p)} value(s) (first in row {first + 1}); models "
                          "cannot use them. Replace them first, e.g. numpy.nan_to_num(x), or drop those rows")


def _rows_of(arr: np.ndarray, what: str, limits: ImportLimits) -> list[Any]:
    if arr.ndim == 0:
        raise ValidationError(f"{what} is a single number; expected an array of shape (n_items, ...) with one row per item")
    if arr.shape[0] == 0:
        raise ValidationError(f"{what} has no rows (shape {arr.shape}); expected one row per item")
    if arr.shape[0] > limits.max_rows:
        raise _too_many_rows(what, int(arr.shape[0]), limits)
    if arr.ndim == 1:
        return arr.tolist()
    return [arr[i] for i in range(arr.shape[0])]


def read_arrays(data: bytes, fmt: str, limits: ImportLimits = ImportLimits(), *, name: str | None = None
                ) -> tuple[list[Any], list[Any] | None]:
    """Items (rows of the array; plain numbers for a 1-D array) and labels (or None) from a .npy or .npz file.

    A .npz holds the items under ``x`` or ``features`` (or as its only
    array) and optionally labels under ``y`` or ``labels``; NaN labels mean
    unlabelled. Items must be numbers or booleans, all finite.
    """
    what = _name(name)
    data = _as_bytes(data, what)
    if fmt not in ARRAY_FORMATS:
        raise ValidationError(f"{what}: read_arrays reads {', '.join(ARRAY_FORMATS)}; got format {fmt!r}")
    if not data:
        raise ValidationError(f"{what} is empty (0 bytes); save an array with numpy.save")
    if fmt == "npy":
        arr = _load_npy(data, what, limits)
        items = _rows_of(arr, what, limits)
        _check_finite(arr, what)
        return items, None
    with _reading(f"{what} as a .npz archive", "Save it with numpy.savez(path, x=features, y=labels)"):
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            members = _npz_members(zf, what, limits)
            item_keys = [k for k in ("x", "features") if k in members]
            label_keys = [k for k in ("y", "labels") if k in members]
            if len(item_keys) > 1 or len(label_keys) > 1:
                both = item_keys if len(item_keys) > 1 else label_keys
                raise ValidationError(f"{what} has both {both[0]!r} and {both[1]!r}; keep one of them")
            if not item_keys:
                rest = [k for k in members if k not in label_keys]
                if len(rest) != 1:
                    raise ValidationError(f"{what} holds the arrays {', '.join(map(repr, members)) or 'none'}; expected the items "
                                          "under 'x' (or 'features') and optional labels under 'y' (or 'labels'): "
                                          "numpy.savez(path, x=..., y=...)")
                item_keys = rest
            x_raw = zf.read(members[item_keys[0]])  # zipfile stops at the declared size and checks the CRC
            y_raw = zf.read(members[label_keys[0]]) if label_keys else None
    where = f"array {item_keys[0]!r} of {what}"
    arr = _load_npy(x_raw, where, limits)
    del x_raw
    items = _rows_of(arr, where, limits)
    _check_finite(arr, where)
    labels = None
    if y_raw is not None:
        key = label_keys[0]
        y = _load_npy(y_raw, f"array {key!r} of {what}", limits, allow_text=True)
        if y.ndim != 1 or len(y) != len(items):
            raise ValidationError(f"labels {key!r} of {what} have shape {y.shape}; expected one label per item, shape ({len(items)},). "
                                  "For several labels per item give strings such as 'cat;dog'")
        if y.dtype.kind in "fc" and np.isinf(y).any():
            raise ValidationError(f"labels {key!r} of {what} contain infinite values; use NaN for unlabelled items")
        labels = [_plain(v) for v in y.tolist()]
    return items, labels


def _npz_members(zf: zipfile.ZipFile, what: str, limits: ImportLimits) -> dict[str, zipfile.ZipInfo]:
    infos = [i for i in zf.infolist() if not i.filename.endswith("/")]
    if len(infos) > limits.max_zip_entries:
        raise ValidationError(f"{what} holds {len(infos):,} arrays; the limit is {limits.max_zip_entries:,}")
    total = sum(i.file_size for i in infos)
    if total > limits.max_zip_total_uncompressed:
        raise ValidationError(f"{what} unpacks to {_mb(total)}; the limit is {_mb(limits.max_zip_total_uncompressed)}")
    members: dict[str, zipfile.ZipInfo] = {}
    for info in infos:
        if not info.filename.endswith(".npy"):
            raise ValidationError(f"{what} holds {info.filename!r}, which is not an array; a .npz written by numpy.savez "
                                  "holds only .npy arrays")
        members[info.filename[:-4]] = info
    return members


# --------------------------------------------------------------------------- ZIP of images


@dataclass(frozen=True)
class _CheckedImage:
    info: zipfile.ZipInfo
    name: str
    digest: str
    ext: str
    width: int
    height: int


def _entry_problem(name: str) -> str | None:
    """Why an entry name is unsafe (absolute path, drive letter, '..'), or None."""
    norm = name.replace("\\", "/")
    if not name:
        return "an empty name"
    if norm.startswith("/") or re.match(r"^[A-Za-z]:", norm):
        return "an absolute path"
    if ".." in norm.split("/"):
        return "a '..' path component"
    return None


def _skipped(name: str) -> bool:
    parts = [p for p in name.replace("\\", "/").split("/") if p not in ("", ".")]
    return not parts or parts[0] == "__MACOSX" or any(p.startswith(".") for p in parts)


def _check_image(raw: bytes, name: str, limits: ImportLimits, what: str) -> tuple[str, int, int]:
    from PIL import Image

    try:
        with Image.open(io.BytesIO(raw), formats=tuple(_IMAGE_FORMATS)) as im:
            width, height = im.size
            if width * height > limits.max_image_pixels:
                raise ValidationError(f"{name!r} in {what} is {width:,} x {height:,} = {width * height:,} pixels; the limit is "
                                      f"{limits.max_image_pixels:,}. Scale it down first")
            im.verify()
        with Image.open(io.BytesIO(raw), formats=tuple(_IMAGE_FORMATS)) as im:
            fmt, (width, height) = im.format, im.size
    except ValidationError:
        raise
    except Image.DecompressionBombError as exc:
        raise ValidationError(f"{name!r} in {what} is too large an image ({_reason(exc)}); scale it down first") from None
    except Exception as exc:  # noqa: BLE001 - Pillow raises many kinds on broken files
        raise ValidationError(f"{name!r} in {what} is not a readable PNG or JPEG image ({_reason(exc)}); remove it or "
                              "re-save it as PNG or JPEG") from None
    if fmt not in _IMAGE_FORMATS:
        raise ValidationError(f"{name!r} in {what} is a {fmt} image; only PNG and JPEG are accepted")
    return _IMAGE_FORMATS[fmt], width, height


def read_image_zip(data: bytes, limits: ImportLimits = ImportLimits(), upload_dir: Path | str | None = None, *,
                   name: str | None = None) -> list[ImageFile]:
    """Check a ZIP of PNG / JPEG images, then save them under ``upload_dir``.

    Every entry is checked first (count, sizes, compression ratio, path,
    extension, image header and pixel count); only then are the images
    written, as ``<sha256[:16]>.png|.jpg``, into a temporary folder inside
    ``upload_dir`` that is renamed to ``upload_dir/zip-<sha256 of the ZIP>``.
    A failure leaves nothing behind; uploading the same ZIP again reuses the
    folder. Directories, ``__MACOSX/`` and dotfiles are skipped.
    """
    what = _name(name)
    data = _as_bytes(data, what)
    if upload_dir is None:
        raise ValidationError("a ZIP of images needs an upload folder to save the images in (upload_dir)")
    if not data:
        raise ValidationError(f"{what} is empty (0 bytes); upload a ZIP of PNG or JPEG images")
    hint = "Expected a ZIP archive of PNG or JPEG images"
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
    except Exception as exc:  # noqa: BLE001
        raise ValidationError(f"{what} is not a readable ZIP archive ({_reason(exc)}). {hint}") from None
    with zf:
        infos = zf.infolist()
        if len(infos) > limits.max_zip_entries:
            raise ValidationError(f"{what} has {len(infos):,} entries; the limit is {limits.max_zip_entries:,}. Split it into several ZIPs")
        unsafe = [(i.filename, p) for i in infos if (p := _entry_problem(i.filename))]
        if unsafe:
            shown = "; ".join(f"{n!r} ({p})" for n, p in unsafe[:5])
            raise ValidationError(f"{what} has entries that would be written outside the upload folder: {shown}. "
                                  "Re-create the ZIP from inside the folder of images (relative paths only)")
        entries = [i for i in infos if not i.filename.endswith(("/", "\\")) and not _skipped(i.filename)]
        wrong = [i.filename for i in entries if not i.filename.lower().endswith(IMAGE_EXTENSIONS)]
        if wrong:
            raise ValidationError(f"{what} holds files that are not .png, .jpg or .jpeg: {', '.join(map(repr, wrong[:5]))}"
                                  f"{' and more' if len(wrong) > 5 else ''}; remove them from the ZIP")
        if not entries:
            raise ValidationError(f"{what} holds no images; {hint}")
        encrypted = [i.filename for i in entries if i.flag_bits & 0x1]
        if encrypted:
            raise ValidationError(f"{what} is password-protected ({encrypted[0]!r}); upload a ZIP without a password")
        total = sum(i.file_size for i in entries)
        if total > limits.max_zip_total_uncompressed:
            raise ValidationError(f"{what} unpacks to {_mb(total)}; the limit is {_mb(limits.max_zip_total_uncompressed)}. "
                                  "Split it into several ZIPs")
        for i in entries:
            if i.file_size > MAX_ZIP_RATIO * max(i.compress_size, 1) or (i.file_size and not i.compress_size):
                raise ValidationError(f"{what}: entry {i.filename!r} unpacks from {i.compress_size:,} to {i.file_size:,} bytes, "
                                      f"more than {MAX_ZIP_RATIO}x; real images do not compress like that (a ZIP bomb?)")
        checked: list[_CheckedImage] = []
        for i in entries:
            raw = _read_entry(zf, i, what)
            ext, width, height = _check_image(raw, i.filename, limits, what)
            checked.append(_CheckedImage(i, i.filename, hashlib.sha256(raw).hexdigest(), ext, width, height))
        folder = _save_images(zf, checked, Path(upload_dir), hashlib.sha256(data).hexdigest()[:16], what)
    return [ImageFile(c.name, folder / f"{c.digest[:16]}{c.ext}", c.width, c.height) for c in checked]


def _read_entry(zf: zipfile.ZipFile, info: zipfile.ZipInfo, what: str) -> bytes:
    try:
        with zf.open(info) as f:
            raw = f.read(info.file_size + 1)
    except Exception as exc:  # noqa: BLE001 - bad CRC, unsupported compression, truncated data
        raise ValidationError(f"cannot unpack {info.filename!r} from {what} ({_reason(exc)}); the ZIP is damaged, re-create it") from None
    if len(raw) != info.file_size:
        raise ValidationError(f"cannot unpack {info.filename!r} from {what}: it holds {len(raw):,} bytes, not the "
                              f"{info.file_size:,} its header declares; the ZIP is damaged, re-create it")
    return raw


def _save_images(zf: zipfile.ZipFile, checked: list[_CheckedImage], upload_dir: Path, zip_digest: str, what: str) -> Path:
    try:
        upload_dir.mkdir(parents=True, exist_ok=True)
        root = upload_dir.resolve()
    except OSError as exc:
        raise ValidationError(f"cannot create the upload folder {str(upload_dir)!r}: {_reason(exc)}") from None
    final = root / f"zip-{zip_digest}"
    files = {f"{c.digest[:16]}{c.ext}": c for c in checked}
    if final.is_dir() and all((final / n).is_file() and (final / n).stat().st_size == c.info.file_size for n, c in files.items()):
        return final  # the same ZIP was saved before
    tmp = Path(tempfile.mkdtemp(prefix=".incoming-", dir=root))
    try:
        for file_name, c in files.items():
            raw = _read_entry(zf, c.info, what)
            if hashlib.sha256(raw).hexdigest() != c.digest:
                raise ValidationError(f"{c.name!r} in {what} changed while it was read; upload the ZIP again")
            (tmp / file_name).write_bytes(raw)
        try:
            os.rename(tmp, final)
        except OSError:
            if not final.is_dir():
                raise
            for file_name in files:  # another upload of this ZIP got there first, or left it incomplete
                if not (final / file_name).is_file():
                    os.replace(tmp / file_name, final / file_name)
            shutil.rmtree(tmp, ignore_errors=True)
    except ValidationError:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise ValidationError(f"cannot save the images of {what} in {str(root)!r}: {_reason(exc)}") from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


# --------------------------------------------------------------------------- plans and labels


_NO_MATCH = object()


def _match(value: Any, options: Sequence[Any]) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return _NO_MATCH
    if not options:
        return value
    for option in options:
        if value == option and type(value) is not bool:
            return option
    text = str(value).strip()
    for option in options:
        if str(option) == text:
            return option
    return _NO_MATCH


def _labels(values: Sequence[Any], options: Sequence[Any], label_mode: str, where: str) -> list[Any]:
    """Labels of an upload in canonical form: None for unlabelled, an option (single) or a list of options (multi)."""
    raw = [v.strip() if isinstance(v, str) else v for v in map(_plain, values)]
    present = [v for v in raw if not _is_missing(v)]
    if present and all(isinstance(v, float) for v in present) and all(v.is_integer() for v in present):
        raw = [int(v) if isinstance(v, float) else v for v in raw]  # an int column with gaps is read as float
    out: list[Any] = []
    bad: list[tuple[int, Any]] = []
    for row, v in enumerate(raw, 1):
        if _is_missing(v):
            out.append(None)
            continue
        if label_mode == "multi":
            parts = [p.strip() for p in v.split(";")] if isinstance(v, str) else (list(v) if isinstance(v, (list, tuple, np.ndarray)) else [v])
            chosen: list[Any] = []
            for part in parts:
                if _is_missing(part):
                    continue
                m = _match(_plain(part), options)
                if m is _NO_MATCH:
                    bad.append((row, part))
                elif m not in chosen:
                    chosen.append(m)
            out.append(chosen)
        else:
            if isinstance(v, (list, dict)):
                bad.append((row, v))
                continue
            m = _match(v, options)
            if m is _NO_MATCH:
                bad.append((row, v))
            out.append(m)
    if bad:
        shown = "; ".join(f"{v!r} (data row {r})" for r, v in bad[:5]) + (f"; and {len(bad) - 5} more" if len(bad) > 5 else "")
        if options:
            expected = f"one of the project's options ({', '.join(map(str, list(options)[:20]))})"
        else:
            expected = "a finite number or a non-empty string"
        multi = " (several labels per item are separated by ';')" if label_mode == "multi" else ""
        raise ValidationError(f"{len(bad):,} label value(s) in {where} are not {expected}{multi}: {shown}. "
                              "Fix those values, add them as options, or leave the cells empty to import the items unlabelled")
    return out


def _external_ids(series: pd.Series, column: str) -> list[str]:
    ids: list[str] = []
    empty: list[int] = []
    long: list[int] = []
    for row, v in enumerate(series.to_numpy(dtype=object), 1):
        v = _plain(v)
        if _is_missing(v):
            empty.append(row)
            ids.append("")
            continue
        if isinstance(v, float) and v.is_integer():
            v = int(v)
        text = str(v)
        if len(text) > _MAX_ID_CHARS:
            long.append(row)
        ids.append(text)
    if empty:
        raise ValidationError(f"the id column {column!r} is empty in data row(s) {_rows(empty)}; give every row an id, "
                              "or choose no id column (ids are then made from the content)")
    if long:
        raise ValidationError(f"the id column {column!r} has ids longer than {_MAX_ID_CHARS} characters in data row(s) {_rows(long)}")
    positions: dict[str, list[int]] = {}
    for row, e in enumerate(ids, 1):
        positions.setdefault(e, []).append(row)
    dupes = [(e, rows) for e, rows in positions.items() if len(rows) > 1]
    if dupes:
        shown = "; ".join(f"{e!r} (data rows {_rows(rows)})" for e, rows in dupes[:5])
        raise ValidationError(f"the id column {column!r} must hold a different id in every row; {len(dupes):,} id(s) repeat: {shown}")
    return ids


def _is_text(series: pd.Series) -> bool:
    values = [v for v in series.to_numpy(dtype=object) if _plain(v) is not None]
    return bool(values) and all(isinstance(v, str) for v in values)


def _preview(df: pd.DataFrame) -> pd.DataFrame:
    """The first rows, with mixed / nested columns as text so any table widget can show them."""
    head = df.head(PREVIEW_ROWS).copy()
    for col in head.columns:
        if head[col].dtype == object and not _is_text(head[col]):
            head[col] = [None if _plain(v) is None else str(_plain(v)) for v in head[col].to_numpy(dtype=object)]
    return head.reset_index(drop=True)


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
    if plan.label_column is not None and plan.label_column in plan.model_columns:
        raise ValidationError(f"the label column {plan.label_column!r} cannot also be a model column: the model would be "
                              "given the answer. Remove it from the model columns")
    df = df.reset_index(drop=True)
    n = len(df)
    if n == 0:
        raise ValidationError("the table has no rows")
    external_ids = _external_ids(df[plan.id_column], plan.id_column) if plan.id_column is not None else None
    labels = None
    if plan.label_column is not None:
        labels = _labels(df[plan.label_column].to_numpy(dtype=object), options, label_mode, f"column {plan.label_column!r}")
    if len(columns) == 1 and _is_text(df[columns[0]]):
        values = [_plain(v) for v in df[columns[0]].to_numpy(dtype=object)]
        empty = [row for row, v in enumerate(values, 1) if v is None]
        if empty:
            raise ValidationError(f"column {columns[0]!r} is empty in data row(s) {_rows(empty)}; fill in those rows or remove them")
        items: list[Any] = values
    else:
        cells = [[_plain(v) for v in df[c].to_numpy(dtype=object)] for c in columns]
        items = [dict(zip(columns, row)) for row in zip(*cells)]
    shown = list(dict.fromkeys(wanted))
    as_rows = bool(items) and isinstance(items[0], dict)
    return PreparedImport(items=items, external_ids=external_ids, labels=labels, preview=_preview(df[shown]), n_rows=n,
                          display_columns=list(plan.display_columns) if as_rows else None,
                          model_columns=list(plan.model_columns) if as_rows else None)


# --------------------------------------------------------------------------- the two entry points


def prepare_upload(filename: str, data: bytes, *, plan: TablePlan | None = None, options: Sequence[Any] = (),
                   label_mode: str = "single", limits: ImportLimits = ImportLimits(),
                   upload_dir: Path | str | None = None, fmt: str | None = None, allow_free_text: bool = False,
                   data_key: str | None = None, from_name: str | None = None) -> PreparedImport:
    """Read and check an uploaded file; nothing touches the database.

    Tables become items through ``plan`` (default: every column shown and
    modelled, no labels, ids from the content); arrays give one item per row
    (labels from ``y`` of a .npz); a ZIP of images is saved under
    ``upload_dir`` and gives items ``{"image_path": ..., "name": ...}``.
    Label Studio tasks and items JSON Lines (told from the content, or by
    ``fmt="label-studio"``) are read by :mod:`superintendent.interop`
    (``data_key`` / ``from_name`` pick the data key and the Choices control).
    """
    what = _name(filename)
    data = _as_bytes(data, what)
    if len(data) > limits.max_bytes:
        raise ValidationError(f"{what} is {_mb(len(data))}; the limit is {_mb(limits.max_bytes)}. Split it into smaller files")
    fmt = detect_format(filename, data) if fmt is None else _explicit_format(fmt, filename)
    if label_mode not in LABEL_MODES:
        raise ValidationError(f"label_mode must be one of {', '.join(LABEL_MODES)}; got {label_mode!r}")
    options = check_options(list(options) if options is not None else None)
    if not data:
        raise ValidationError(f"{what} is empty (0 bytes)")
    if fmt in INTEROP_FORMATS:
        from superintendent import interop

        if plan is not None:
            raise ValidationError(f"{what} holds {fmt} items; a column plan only applies to tables (CSV, Parquet, JSON, JSON Lines)")
        kwargs = {"name": filename, "options": options, "label_mode": label_mode, "allow_free_text": allow_free_text,
                  "limits": limits, "upload_dir": upload_dir}
        if fmt == interop.ITEMS_JSONL:
            return interop.prepare_items_jsonl(data, **kwargs)
        return interop.prepare_label_studio(data, **kwargs, data_key=data_key, from_name=from_name)
    if fmt in TABLE_FORMATS:
        text_columns = [plan.id_column] if plan is not None and plan.id_column else []
        df = read_table(data, fmt, limits, text_columns=text_columns, name=filename)
        if plan is None:
            plan = TablePlan(display_columns=list(df.columns), model_columns=list(df.columns))
        return plan_items(df, plan, options, label_mode)
    if plan is not None:
        raise ValidationError(f"{what} is a {fmt} file; a column plan only applies to tables (CSV, Parquet, JSON, JSON Lines)")
    if fmt in ARRAY_FORMATS:
        items, raw_labels = read_arrays(data, fmt, limits, name=filename)
        labels = None if raw_labels is None else _labels(raw_labels, options, label_mode, f"the labels of {what}")
        preview = pd.DataFrame({
            "row": range(1, min(len(items), PREVIEW_ROWS) + 1),
            "value": [_short(x) for x in items[:PREVIEW_ROWS]],
        })
        if labels is not None:
            preview["label"] = [None if v is None else str(v) for v in labels[:PREVIEW_ROWS]]
        return PreparedImport(items=items, external_ids=None, labels=labels, preview=preview, n_rows=len(items))
    images = read_image_zip(data, limits, upload_dir, name=filename)
    items = [{"image_path": str(img.path), "name": img.original_name} for img in images]
    preview = pd.DataFrame({"name": [i.original_name for i in images[:PREVIEW_ROWS]],
                            "width": [i.width for i in images[:PREVIEW_ROWS]],
                            "height": [i.height for i in images[:PREVIEW_ROWS]]})
    return PreparedImport(items=items, external_ids=None, labels=None, preview=preview, n_rows=len(items),
                          file_paths=[str(img.path) for img in images])


def _explicit_format(fmt: str, filename: str) -> str:
    known = sorted(set(ACCEPTED_EXTENSIONS.values()) | set(INTEROP_FORMATS))
    if fmt not in known:
        raise ValidationError(f"unknown import format {fmt!r} for {_name(filename)}; formats: {', '.join(known)}")
    return fmt


def _short(x: Any) -> str:
    if isinstance(x, np.ndarray):
        flat = x.ravel()[:6]
        body = ", ".join(f"{v:.4g}" if isinstance(v, float) else str(v) for v in flat.tolist())
        return f"{x.dtype}{list(x.shape)}: [{body}{', ...' if x.size > 6 else ''}]"
    return str(x)


def import_prepared(engine: Any, project: Project | str | int, prepared: PreparedImport,
                    progress: Callable[[float], Any] | None = None, *, n_chunks: int = 20) -> queue.AddResult:
    """Add a prepared upload to ``project`` in ONE transaction: on any error nothing is imported.

    The add is split into about ``n_chunks`` calls of :func:`queue.add_items`
    so ``progress(fraction)`` can report how far it is. Items already in the
    project (same external id) are left as they are. The project's settings
    are read afresh inside the transaction, and every label is checked
    against them before the first row is written.
    """
    items = list(prepared.items)
    n = len(items)
    if prepared.external_ids is not None:
        ids = [str(e) for e in prepared.external_ids]
        if len(ids) != n:
            raise ValidationError(f"external ids must have one entry per item: got {len(ids)} for {n} items")
        dupes = [e for e, c in Counter(ids).items() if c > 1]
        if dupes:
            raise ValidationError(f"external ids must be unique; repeated: {', '.join(map(repr, dupes[:5]))}")
    else:  # the ids add_items would make for the whole upload at once (content hash, '#n' for the n-th repeat)
        seen: Counter[str] = Counter()
        ids = []
        for item in items:
            h = queue.content_id(serialization.dumps(item))
            seen[h] += 1
            ids.append(h if seen[h] == 1 else f"{h}#{seen[h]}")
    labels = prepared.labels
    paths = prepared.file_paths
    for what, seq in (("labels", labels), ("file_paths", paths)):
        if seq is not None and len(seq) != n:
            raise ValidationError(f"{what} must have one entry per item: got {len(seq)} for {n} items")
    size = max(1, math.ceil(n / max(1, n_chunks)))
    added = present = labelled = 0
    with session_scope(engine) as s:
        proj = queue.get_project(s, project.id if isinstance(project, Project) else project)
        if prepared.display_columns is not None:  # how table rows are shown and modelled, for the Label page and retrains
            proj.settings = {**proj.settings, "display_columns": prepared.display_columns, "model_columns": prepared.model_columns}
            s.add(proj)
        if labels is not None:
            for row, value in enumerate(labels, 1):
                if value is None:
                    continue
                try:
                    check_label(value, options=proj.options, label_mode=proj.label_mode, allow_free_text=proj.allow_free_text,
                                project=proj.name)
                except ValidationError as exc:
                    raise ValidationError(f"item {row}: {exc}; nothing was imported") from None
        if progress is not None:
            progress(0.0)
        for start in range(0, n, size):
            end = min(n, start + size)
            result = queue.add_items(s, proj, items[start:end], external_ids=ids[start:end],
                                     labels=None if labels is None else labels[start:end],
                                     file_paths=None if paths is None else paths[start:end])
            added += result.added
            present += result.already_present
            labelled += result.labelled
            if progress is not None:
                progress(end / n)
        if prepared.annotations is not None:  # named annotators (Label Studio, items JSONL): same transaction
            from superintendent import interop

            labelled += interop.write_annotations(s, proj, ids, prepared.annotations)
        if progress is not None and n == 0:
            progress(1.0)
    return queue.AddResult(added=added, already_present=present, labelled=labelled)
