"""Labels out as JSON Lines of items: one object per item with its data, label, tie flag, review and every annotation.

What :mod:`superintendent.ingest.jsonl` reads back: importing the file into
another project restores the same items and annotations.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from typing import IO, Any

from sqlalchemy.engine import Engine

from superintendent import queue, serialization
from superintendent.export.common import iso
from superintendent.store.db import session_scope
from superintendent.store.models import Project

__all__ = ["export_jsonl", "write_jsonl"]


def write_jsonl(engine: Engine, project: Project, out: IO[bytes], *, progress: Callable[[float], Any] | None = None) -> None:
    """Write :func:`export_jsonl`'s lines to ``out``, a batch of items at a time (memory stays flat however large the
    project); ``progress(fraction)`` after each batch."""
    with session_scope(engine, write=False) as s:
        total = max(1, queue.count_items(s, project))
        seen = 0
        for batch in queue.iter_snapshot(s, project):
            chunk = io.StringIO()
            for rec in batch:
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
                chunk.write(json.dumps(line, ensure_ascii=False) + "\n")
            out.write(chunk.getvalue().encode("utf-8"))
            seen += len(batch)
            if progress is not None:
                progress(min(1.0, seen / total))


def export_jsonl(engine: Engine, project: Project) -> bytes:
    """One JSON object per line and item: ids, data, file path, label, tie flag, review and every annotation.

    Values are JSON as :mod:`superintendent.serialization` encodes them
    (plain text and numbers stay as they are), so importing the file into
    another project restores the same items and annotations.
    """
    buffer = io.BytesIO()
    write_jsonl(engine, project, buffer)
    return buffer.getvalue()
