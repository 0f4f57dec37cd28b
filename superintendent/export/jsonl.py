"""Labels out as JSON Lines of items: one object per item with its data, label, tie flag, review and every annotation.

What :mod:`superintendent.ingest.jsonl` reads back: importing the file into
another project restores the same items and annotations.
"""

from __future__ import annotations

import io
import json

from sqlalchemy.engine import Engine

from superintendent import serialization
from superintendent.export.common import iso, snapshot
from superintendent.store.models import Project

__all__ = ["export_jsonl"]


def export_jsonl(engine: Engine, project: Project) -> bytes:
    """One JSON object per line and item: ids, data, file path, label, tie flag, review and every annotation.

    Values are JSON as :mod:`superintendent.serialization` encodes them
    (plain text and numbers stay as they are), so importing the file into
    another project restores the same items and annotations.
    """
    out = io.StringIO()
    for rec in snapshot(engine, project):
        line = {
            "id": rec.item_id,
            "external_id": rec.external_id,
            "data": serialization.encode(rec.data),
            "file_path": rec.file_path,
            "label": serialization.encode(rec.label) if rec.done else None,
            "tie": rec.tie,
            "review": None if rec.reviewed_by is None else {"value": serialization.encode(rec.label), "by": rec.reviewed_by,
                                                            "at": iso(rec.reviewed_at)},
            "annotations": [{"user": a.username, "value": serialization.encode(a.label), "created_at": iso(a.created_at),
                             "time_taken": a.time_taken} for a in rec.annotations],
        }
        out.write(json.dumps(line, ensure_ascii=False) + "\n")
    return out.getvalue().encode("utf-8")
