"""Labels out: CSV, JSON and Parquet tables, JSON Lines of items, and Label Studio tasks.

Tables hold one row per finished item with its consensus label (the
default), or with ``individual=True`` one row per annotation (who gave
which label when) beside the item's consensus. ``jsonl`` and
``label-studio`` always carry every item and every annotation (see
:mod:`superintendent.interop`), so they can be imported again.
"""

from __future__ import annotations

import io
import json
from typing import Any

import pandas as pd
from sqlalchemy.engine import Engine

from superintendent import interop
from superintendent.store import Project
from superintendent.validation import ValidationError

TABLE_FORMATS = ("csv", "json", "parquet")
FORMATS = {"csv": "text/csv", "json": "application/json", "parquet": "application/vnd.apache.parquet",
           "jsonl": "application/x-ndjson", "label-studio": "application/json"}
EXTENSIONS = {"csv": "csv", "json": "json", "parquet": "parquet", "jsonl": "jsonl", "label-studio": "json"}


def labels_frame(engine: Engine, project: Project, *, individual: bool = False) -> pd.DataFrame:
    """The project's labels as a table.

    Default: one row per finished item: item_id, external_id, label (the
    consensus, or a reviewer's correction), tie (the annotators were split),
    n_annotations, reviewed_by (who corrected the label; empty when nobody did). ``individual=True``: one row per annotation, oldest first:
    item_id, external_id, user, label (that person's), created_at (UTC),
    time_taken_s, consensus (the item's label, empty while unfinished), tie.
    """
    records = interop.project_snapshot(engine, project)
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
    return pd.DataFrame({
        "item_id": pd.Series([a.item_id for a, _ in rows], dtype="int64"),
        "external_id": pd.Series([a.external_id for a, _ in rows], dtype="object"),
        "user": pd.Series([a.username for a, _ in rows], dtype="object"),
        "label": pd.Series([a.label for a, _ in rows], dtype="object"),
        "created_at": pd.to_datetime(pd.Series([a.created_at for a, _ in rows], dtype="object"), utc=True),
        "time_taken_s": pd.Series([a.time_taken for a, _ in rows], dtype="float64"),
        "consensus": pd.Series([r.label if r.done else None for _, r in rows], dtype="object"),
        "tie": pd.Series([r.tie for _, r in rows], dtype="bool"),
    })


def _text_labels(values: Any, multi: bool) -> list[Any]:
    if multi:
        return [None if v is None else list(map(str, v)) for v in values]
    return [None if v is None else str(v) for v in values]


def export_labels(engine: Engine, project: Project, fmt: str, *, individual: bool = False,
                  from_name: str = interop.DEFAULT_FROM_NAME, to_name: str | None = None, image_value: str = "path") -> bytes:
    """The project's labels as a file's bytes.

    ``csv`` / ``json`` / ``parquet``: the table of :func:`labels_frame`
    (multi-label values are ``a;b`` in CSV, lists in JSON and Parquet).
    ``jsonl``: one object per item (:func:`interop.export_jsonl`).
    ``label-studio``: Label Studio tasks (:func:`interop.export_label_studio`;
    ``from_name``, ``to_name`` and ``image_value`` are passed on).
    """
    if fmt not in FORMATS:
        raise ValidationError(f"export format must be one of {', '.join(FORMATS)}; got {fmt!r}")
    if individual and fmt not in TABLE_FORMATS:
        raise ValidationError(f"individual annotations are an option of the table formats ({', '.join(TABLE_FORMATS)}); "
                              f"{fmt} always holds every annotation")
    if fmt == "jsonl":
        return interop.export_jsonl(engine, project)
    if fmt == "label-studio":
        return interop.export_label_studio(engine, project, from_name=from_name, to_name=to_name, image_value=image_value)
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
