"""What the exports share: the project read in one snapshot, and times written as ISO 8601 in UTC."""

from __future__ import annotations

import datetime as dt

from sqlalchemy.engine import Engine

from superintendent.queue.transfer import ItemRecord, project_snapshot
from superintendent.store.db import session_scope
from superintendent.store.models import Project


def snapshot(engine: Engine, project: Project) -> list[ItemRecord]:
    """Every item of the project with its annotations and final label, read in one read-only transaction."""
    with session_scope(engine, write=False) as s:
        return project_snapshot(s, project)


def iso(stamp: dt.datetime | None) -> str | None:
    """``2024-05-01T10:00:00.123456Z``, or None."""
    if stamp is None:
        return None
    return stamp.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
