"""Labels out as tables (CSV, JSON, Parquet): one row per finished item, or one row per annotation.

:func:`annotations_table` is the one place annotations become a DataFrame;
the exports, the Progress page's figures (:mod:`superintendent.reports`) and
the agreement statistics all start from it.

CSV is opened in spreadsheets, which run a cell that begins with ``=``, ``+``,
``-`` or ``@`` (or a tab or carriage return) as a formula. Every text cell
and header of a CSV export that begins so is written with a single quote in
front (:func:`neutralise_formula`, OWASP's advice on CSV injection), unless
``raw_csv=True``; numbers, and text that is a plain number such as ``-3.5``,
stay as they are. Lines end with CRLF, so a cell holding a line break is
quoted and stays one cell. JSON and Parquet are written as the values are.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import IO, Any

import pandas as pd
from sqlalchemy.engine import Engine

from superintendent import queue, serialization
from superintendent.export.common import iso, snapshot
from superintendent.marks import is_marks
from superintendent.queue.transfer import ItemRecord
from superintendent.store.db import session_scope
from superintendent.store.models import Project
from superintendent.validation import ValidationError

__all__ = ["FORMULA_STARTS", "TABLE_FORMATS", "annotations_frame", "annotations_table", "check_raw_csv", "export_table", "finished_batches",
           "labels_frame", "neutralise_formula", "shown_fields", "write_table"]

TABLE_FORMATS = ("csv", "json", "parquet")


def annotations_table(rows: Sequence[queue.AnnotationRow]) -> pd.DataFrame:
    """Annotations as a frame, in the order given: item_id, external_id, user, label (the value given), created_at (UTC),
    time_taken_s."""
    return pd.DataFrame({
        "item_id": pd.Series([a.item_id for a in rows], dtype="int64"),
        "external_id": pd.Series([a.external_id for a in rows], dtype="object"),
        "user": pd.Series([a.username for a in rows], dtype="object"),
        "label": pd.Series([a.label for a in rows], dtype="object"),
        "created_at": pd.to_datetime(pd.Series([a.created_at for a in rows], dtype="object"), utc=True),
        "time_taken_s": pd.Series([a.time_taken for a in rows], dtype="float64"),
    })


def annotations_frame(engine: Engine, project: Project, *, user_id: int | None = None, include_import: bool = True) -> pd.DataFrame:
    """The project's annotations (only ``user_id``'s if given; without the importer's with ``include_import=False``),
    oldest first, as :func:`annotations_table` lays them out."""
    with session_scope(engine, write=False) as s:
        rows = queue.annotation_log(s, project, user_id=user_id, include_import=include_import)
    return annotations_table(rows)


ITEM_COLUMNS = ("item_id", "external_id")
LABEL_COLUMNS = ("label", "tie", "n_annotations", "labelled_by", "labelled_at", "reviewed_by")
BATCH = 2000  # items read and written at a time by the streaming exports


def shown_fields(rec: ItemRecord) -> dict[str, Any]:
    """What the item showed: ``{"text": ...}`` for text, ``{"file_name": ...}`` for an image, a table row's columns."""
    data = rec.data
    if isinstance(data, str):
        return {"text": data}
    if isinstance(data, dict) and "image_path" in data:
        return {"file_name": data.get("name") or Path(rec.file_path or str(data["image_path"])).name}
    if isinstance(data, dict) and all(isinstance(k, str) for k in data):
        return {k: v if v is None or isinstance(v, (str, int, float, bool)) else json.dumps(serialization.encode(v)) for k, v in data.items()}
    return {}


def _field_names(first: ItemRecord | None) -> list[str]:
    return list(shown_fields(first)) if first is not None else []  # a name like one of ours is renamed by _column


def _column(name: str) -> str:
    return f"data_{name}" if name in ITEM_COLUMNS or name in LABEL_COLUMNS else name


def _row(rec: ItemRecord, fields: Sequence[str]) -> dict[str, Any]:
    shown = shown_fields(rec)
    people = list(dict.fromkeys(a.username for a in rec.annotations))
    last = max((a.created_at for a in rec.annotations), default=None)
    return {"item_id": rec.item_id, "external_id": rec.external_id, **{_column(f): shown.get(f) for f in fields},
            "label": rec.label, "tie": rec.tie, "n_annotations": len(rec.annotations), "labelled_by": ";".join(people),
            "labelled_at": iso(last), "reviewed_by": rec.reviewed_by}


def finished_batches(engine: Engine, project: Project, *, batch_size: int = BATCH,
                     progress: Callable[[float], Any] | None = None) -> Iterator[tuple[list[str], list[dict[str, Any]]]]:
    """The finished items of the project as rows of :func:`labels_frame`, ``batch_size`` items at a time, with the shown
    field names (those of the first item); ``progress(fraction)`` after each batch."""
    with session_scope(engine, write=False) as s:
        total = max(1, queue.count_items(s, project))
        fields: list[str] | None = None
        seen = 0
        for batch in queue.iter_snapshot(s, project, batch_size):
            if fields is None:
                fields = _field_names(batch[0] if batch else None)
            seen += len(batch)
            yield fields, [_row(r, fields) for r in batch if r.done]
            if progress is not None:
                progress(min(1.0, seen / total))
        if fields is None:
            yield [], []


def _frame(fields: Sequence[str], rows: list[dict[str, Any]]) -> pd.DataFrame:
    cols = [*ITEM_COLUMNS, *(_column(f) for f in fields), *LABEL_COLUMNS]
    frame = pd.DataFrame(rows, columns=cols)
    for col, dtype in (("item_id", "int64"), ("tie", "bool"), ("n_annotations", "int64")):
        frame[col] = frame[col].astype(dtype)
    for col in ("external_id", "label", "labelled_by", "labelled_at", "reviewed_by"):
        frame[col] = pd.Series(list(frame[col]), dtype="object")
    return frame


def labels_frame(engine: Engine, project: Project, *, individual: bool = False) -> pd.DataFrame:
    """The project's labels as a table.

    Default: one row per finished item: item_id, external_id (as uploaded:
    the id column, the row number, the file name in the ZIP), the shown
    fields (``text``; a table row's columns; ``file_name`` for an image; a
    column named like one of ours gets ``data_`` in front), label (the
    consensus, or a reviewer's correction), tie (the annotators were split),
    n_annotations, labelled_by (the annotators, ``;`` between them),
    labelled_at (the last annotation, ISO 8601 UTC), reviewed_by (who
    corrected the label; empty when nobody did). ``individual=True``: one
    row per annotation, oldest first: item_id, external_id, user, label
    (that person's), created_at (UTC), time_taken_s, consensus (the item's
    label, empty while unfinished), tie.
    """
    if not individual:
        fields: list[str] = []
        rows: list[dict[str, Any]] = []
        for fields, batch in finished_batches(engine, project):
            rows.extend(batch)
        return _frame(fields, rows)
    records = snapshot(engine, project)
    rows_ = sorted(((a, r) for r in records for a in r.annotations), key=lambda ar: ar[0].created_at)
    frame = annotations_table([a for a, _ in rows_])
    frame["consensus"] = pd.Series([r.label if r.done else None for _, r in rows_], dtype="object")
    frame["tie"] = pd.Series([r.tie for _, r in rows_], dtype="bool")
    return frame


def _text_labels(values: Any, label_mode: str) -> list[Any]:
    """Labels as Parquet holds them: text, a list of texts (multi-label), the JSON text of spans or boxes."""
    if label_mode == "multi":
        return [None if v is None else list(map(str, v)) for v in values]
    if is_marks(label_mode):
        return [None if v is None else json.dumps(v, ensure_ascii=False) for v in values]
    return [None if v is None else str(v) for v in values]


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")  # what a spreadsheet runs as a formula at the start of a cell (OWASP)
# Lines end with CRLF (RFC 4180), so the CSV writer quotes every cell holding a carriage return or a line feed: a bare
# carriage return inside a cell would start a new row in a spreadsheet, and what follows it a new cell (a formula).
CSV_LINE_END = "\r\n"
_PLAIN_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")


def neutralise_formula(value: Any) -> Any:
    """A text cell that a spreadsheet would run as a formula (it begins with one of ``FORMULA_STARTS``) with a single
    quote in front: ``=HYPERLINK(...)`` is written ``'=HYPERLINK(...)``. Anything else as it is: numbers, and text
    that is a plain number (``-3.5``, ``+1``, ``-2e3``), which a spreadsheet reads as that number."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS) and not _PLAIN_NUMBER.fullmatch(value):
        return "'" + value
    return value


def _csv_label(value: Any, marks: bool) -> Any:
    """A label as a CSV cell: a multi-label list as ``a;b``; the spans or boxes of a marks project as their JSON."""
    if isinstance(value, list):
        return json.dumps(value, ensure_ascii=False) if marks else ";".join(map(str, value))
    return value


def _csv_frame(frame: pd.DataFrame, label_columns: Sequence[str], raw: bool, marks: bool = False) -> pd.DataFrame:
    """The frame as CSV writes it: multi-label values as ``a;b``; unless ``raw``, every text cell and header through
    :func:`neutralise_formula` (numeric and boolean columns are left alone)."""
    out = frame.copy()
    for col in label_columns:
        out[col] = [_csv_label(v, marks) for v in out[col]]
    if raw:
        return out
    for col in out.columns:
        if out[col].dtype == object or pd.api.types.is_string_dtype(out[col]):
            out[col] = pd.Series([neutralise_formula(v) for v in out[col]], index=out.index, dtype="object")
    out.columns = [neutralise_formula(c) for c in out.columns]
    return out


def _json_records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    records = frame.to_dict(orient="records")
    for row in records:
        if "created_at" in row:
            row["created_at"] = row["created_at"].isoformat()
        for key, value in row.items():
            if isinstance(value, float) and pd.isna(value):
                row[key] = None
    return records


def write_table(engine: Engine, project: Project, fmt: str, out: IO[bytes], *, individual: bool = False,
                progress: Callable[[float], Any] | None = None, raw_csv: bool = False) -> None:
    """Write the table of :func:`labels_frame` to ``out``. CSV and JSON of the finished items are written batch by
    batch (a million items never sit in memory at once); Parquet and ``individual`` build the table first.
    CSV cells that a spreadsheet would run as formulas get a single quote in front (:func:`neutralise_formula`)
    unless ``raw_csv=True``."""
    if fmt not in TABLE_FORMATS:
        raise ValidationError(f"a table is written as {', '.join(TABLE_FORMATS)}; got {fmt!r}")
    check_raw_csv(fmt, raw_csv)
    label_columns = ["label", "consensus"] if individual else ["label"]
    if individual or fmt == "parquet":
        frame = labels_frame(engine, project, individual=individual)
        if fmt == "csv":
            csv = _csv_frame(frame, label_columns, raw_csv, is_marks(project.label_mode))
            out.write(csv.to_csv(index=False, lineterminator=CSV_LINE_END).encode("utf-8"))
        elif fmt == "json":
            out.write(json.dumps(_json_records(frame), ensure_ascii=False, indent=1, default=str).encode("utf-8"))
        else:
            frame = frame.copy()
            for col in label_columns:
                frame[col] = _text_labels(frame[col], project.label_mode)
            frame.to_parquet(out, index=False)
        if progress is not None:
            progress(1.0)
        return
    first = True
    if fmt == "json":
        out.write(b"[")
    for fields, rows in finished_batches(engine, project, progress=progress):
        frame = _frame(fields, rows)
        if fmt == "csv":
            if first or len(frame):
                csv = _csv_frame(frame, label_columns, raw_csv, is_marks(project.label_mode))
                out.write(csv.to_csv(index=False, header=first, lineterminator=CSV_LINE_END)
                          .encode("utf-8"))
                first = False
            continue
        for record in _json_records(frame):
            out.write((("\n" if first else ",\n") + json.dumps(record, ensure_ascii=False, default=str)).encode("utf-8"))
            first = False
    if fmt == "json":
        out.write(b"\n]" if not first else b"]")


def check_raw_csv(fmt: str, raw_csv: bool) -> None:
    """``raw_csv`` is an option of CSV only: asked for with another format, a message saying so."""
    if raw_csv and fmt != "csv":
        raise ValidationError(f"raw_csv (--raw-csv) applies to the csv format; {fmt} is always written with the values as they are")


def export_table(engine: Engine, project: Project, fmt: str, *, individual: bool = False, raw_csv: bool = False) -> bytes:
    """The table of :func:`labels_frame` as a file's bytes (multi-label values are ``a;b`` in CSV, lists in JSON and Parquet;
    CSV formulas neutralised unless ``raw_csv=True``, see :func:`write_table`)."""
    buffer = io.BytesIO()
    write_table(engine, project, fmt, buffer, individual=individual, raw_csv=raw_csv)
    return buffer.getvalue()
