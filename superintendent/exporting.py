"""Labels out: CSV, JSON and Parquet, one row per annotation (item, label or labels, who, when)."""

from __future__ import annotations

import io
import json

import pandas as pd
from sqlalchemy.engine import Engine

from superintendent import queue
from superintendent.store import Project, session_scope
from superintendent.validation import ValidationError

FORMATS = {"csv": "text/csv", "json": "application/json", "parquet": "application/vnd.apache.parquet"}


def labels_frame(engine: Engine, project: Project) -> pd.DataFrame:
    """Every annotation of the project: item_id, external_id, label, user, created_at (UTC), time_taken_s."""
    with session_scope(engine, write=False) as s:
        rows = queue.annotation_log(s, project)
    return pd.DataFrame({
        "item_id": pd.Series([r.item_id for r in rows], dtype="int64"),
        "external_id": pd.Series([r.external_id for r in rows], dtype="object"),
        "label": pd.Series([r.label for r in rows], dtype="object"),
        "user": pd.Series([r.username for r in rows], dtype="object"),
        "created_at": pd.to_datetime(pd.Series([r.created_at for r in rows], dtype="object"), utc=True),
        "time_taken_s": pd.Series([r.time_taken for r in rows], dtype="float64"),
    })


def export_labels(engine: Engine, project: Project, fmt: str) -> bytes:
    """The project's labels as a file's bytes. Multi-label values are ``a;b`` in CSV and lists in JSON / Parquet."""
    if fmt not in FORMATS:
        raise ValidationError(f"export format must be one of {', '.join(FORMATS)}; got {fmt!r}")
    frame = labels_frame(engine, project)
    if fmt == "csv":
        out = frame.copy()
        out["label"] = [";".join(map(str, v)) if isinstance(v, list) else v for v in out["label"]]
        return out.to_csv(index=False).encode("utf-8")
    if fmt == "json":
        records = [{**row, "created_at": row["created_at"].isoformat()} for row in frame.to_dict(orient="records")]
        return json.dumps(records, ensure_ascii=False, indent=1, default=str).encode("utf-8")
    buffer = io.BytesIO()
    out = frame.copy()
    multi = project.label_mode == "multi"
    out["label"] = [list(map(str, v)) for v in out["label"]] if multi else [None if v is None else str(v) for v in out["label"]]
    out.to_parquet(buffer, index=False)
    return buffer.getvalue()
