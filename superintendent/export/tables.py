"""Labels out as tables (CSV, JSON, Parquet): one row per finished item, or one row per annotation.

:func:`annotations_table` is the one place annotations become a DataFrame;
the exports, the Progress page's figures (:mod:`superintendent.reports`) and
the agreement statistics all start from it.
"""

from __future__ import annotations

import io
import json
from collections.abc import Sequence
from typing import Any

import pandas as pd
from sqlalchemy.engine import Engine

from superintendent import queue
from superintendent.export.common import snapshot
from superintendent.store.db import session_scope
from superintendent.store.models import Project
from superintendent.validation import ValidationError

__all__ = ["TABLE_FORMATS", "annotations_frame", "annotations_table", "export_table", "labels_frame"]

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


def labels_frame(engine: Engine, project: Project, *, individual: bool = False) -> pd.DataFrame:
    """The project's labels as a table.

    Default: one row per finished item: item_id, external_id, label (the
    consensus, or a reviewer's correction), tie (the annotators were split),
    n_annotations, reviewed_by (who corrected the label; empty when nobody
    did). ``individual=True``: one row per annotation, oldest first:
    item_id, external_id, user, label (that person's), created_at (UTC),
    time_taken_s, consensus (the item's label, empty while unfinished), tie.
    """
    records = snapshot(engine, project)
    if not individual:
        done = [r for r in records if r.done]
        return pd.DataFrame({
            "item_id": pd.Series([r.item_id for r in done], dtype="int64"),
            "external_id": pd.Series([r.external_id for r in done], dtype="object"),
            "label": pd.Series([r.label for r in done], dtype="object"),
            "tie": pd.Series([r.tie for r in done], dtype="bool"),
            "n_annotations": pd.Series([len(r.annotations) for r in done], dtype="int64"),
            "reviewed_by": pd.Series([r.reviewed_by for r in done], dtype="object"),
        })
    rows = sorted(((a, r) for r in records for a in r.annotations), key=lambda ar: ar[0].created_at)
    frame = annotations_table([a for a, _ in rows])
    frame["consensus"] = pd.Series([r.label if r.done else None for _, r in rows], dtype="object")
    frame["tie"] = pd.Series([r.tie for _, r in rows], dtype="bool")
    return frame


def _text_labels(values: Any, multi: bool) -> list[Any]:
    if multi:
        return [None if v is None else list(map(str, v)) for v in values]
    return [None if v is None else str(v) for v in values]


def export_table(engine: Engine, project: Project, fmt: str, *, individual: bool = False) -> bytes:
    """The table of :func:`labels_frame` as a file's bytes (multi-label values are ``a;b`` in CSV, lists in JSON and Parquet)."""
    if fmt not in TABLE_FORMATS:
        raise ValidationError(f"a table is written as {', '.join(TABLE_FORMATS)}; got {fmt!r}")
    frame = labels_frame(engine, project, individual=individual)
    label_columns = ["label", "consensus"] if individual else ["label"]
    if fmt == "csv":
        out = frame.copy()
        for col in label_columns:
            out[col] = [";".join(map(str, v)) if isinstance(v, list) else v for v in out[col]]
        return out.to_csv(index=False).encode("utf-8")
    if fmt == "json":
        records = frame.to_dict(orient="records")
        for row in records:
            if "created_at" in row:
                row["created_at"] = row["created_at"].isoformat()
            if "time_taken_s" in row and pd.isna(row["time_taken_s"]):
                row["time_taken_s"] = None
        return json.dumps(records, ensure_ascii=False, indent=1, default=str).encode("utf-8")
    buffer = io.BytesIO()
    out = frame.copy()
    for col in label_columns:
        out[col] = _text_labels(out[col], project.label_mode == "multi")
    out.to_parquet(buffer, index=False)
    return buffer.getvalue()
