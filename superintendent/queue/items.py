"""Adding items and reading them back: bulk add, payloads, batches of unfinished items, counts."""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session

from superintendent import serialization
from superintendent.auth import ensure_user
from superintendent.labels import IMPORT_USER, content_ids
from superintendent.queue.common import _A, _I, _NOT_DONE, _count_items, _insert, _recount, _validate
from superintendent.store.db import session_scope
from superintendent.store.models import Project, Role, utcnow
from superintendent.validation import NotFoundError, ValidationError, split_labels


@dataclass(frozen=True)
class AddResult:
    added: int
    already_present: int
    labelled: int


def add_items(
    session: Session,
    project: Project,
    items: Sequence[Any],
    *,
    external_ids: Sequence[str] | None = None,
    labels: Sequence[Any] | None = None,
    file_paths: Sequence[str | None] | None = None,
    chunk_size: int = 5000,
) -> AddResult:
    """Add items in bulk (one multi-row insert per chunk).

    Adding is idempotent: an item whose external id is in the project already
    is left as it is. Without ``external_ids`` the id is a hash of the item's
    content (the n-th repeat of the same content in one call gets ``#n``), so
    adding the same data twice adds it once. ``labels`` (None for unlabelled)
    are stored as annotations of the ``_import`` user. Everything is checked
    before anything is written.
    """
    n = len(items)
    payloads = [serialization.dumps(x) for x in items]
    if external_ids is None:
        ids = content_ids(payloads)
    else:
        ids = [str(e) for e in external_ids]
        if len(ids) != n:
            raise ValidationError(f"external_ids must have one entry per item: got {len(ids)} for {n} items")
        dupes = [e for e, c in Counter(ids).items() if c > 1]
        if dupes:
            raise ValidationError(f"external ids must be unique; repeated: {', '.join(dupes[:5])}")
        if any(not e or len(e) > 300 for e in ids):
            raise ValidationError("external ids must be non-empty strings of at most 300 characters")
    label_list = split_labels(labels, n)
    label_values = None
    if label_list is not None:
        label_values = [None if v is None else serialization.dumps(_validate(project, v)) for v in label_list]
    if file_paths is not None and len(file_paths) != n:
        raise ValidationError(f"file_paths must have one entry per item: got {len(file_paths)} for {n} items")
    if n == 0:
        return AddResult(0, 0, 0)

    before = _count_items(session, project.id)
    base = session.execute(sa.select(sa.func.max(_I.c.priority)).where(_I.c.project_id == project.id)).scalar()
    base = 0.0 if base is None else float(base) + 1.0
    now = utcnow()
    insert = _insert(session)
    for start in range(0, n, chunk_size):
        rows = [
            (project.id, ids[i], payloads[i], base + i, None if file_paths is None else file_paths[i], now)
            for i in range(start, min(n, start + chunk_size))
        ]
        _insert_items(session, rows)
    added = _count_items(session, project.id) - before

    n_labelled = 0
    if label_values is not None and any(v is not None for v in label_values):
        importer = ensure_user(session, IMPORT_USER, role=Role.system)
        wanted = {ids[i]: label_values[i] for i in range(n) if label_values[i] is not None}
        keys = list(wanted)
        for start in range(0, len(keys), chunk_size):
            chunk = keys[start:start + chunk_size]
            found = session.execute(sa.select(_I.c.id, _I.c.external_id).where(_I.c.project_id == project.id, _I.c.external_id.in_(chunk))).all()
            rows = [{"project_id": project.id, "item_id": item_id, "user_id": importer, "value": wanted[ext], "created_at": now}
                    for item_id, ext in found]
            stmt = insert(_A)
            session.execute(stmt.on_conflict_do_update(index_elements=["item_id", "user_id"], set_={"value": stmt.excluded.value}), rows)
            _recount(session, project, [item_id for item_id, _ in found])
            n_labelled += len(rows)
    session.flush()
    return AddResult(added=added, already_present=n - added, labelled=n_labelled)


_ITEM_COLUMNS = ("project_id", "external_id", "data", "priority", "file_path", "created_at")


def _insert_items(session: Session, rows: list[tuple[Any, ...]]) -> None:
    """Insert item rows (in ``_ITEM_COLUMNS`` order), skipping external ids the project has.

    PostgreSQL: ``COPY`` into a temporary table, then one ``INSERT ... SELECT
    ... ON CONFLICT DO NOTHING`` (one round trip per chunk, not per row).
    SQLite: ``executemany`` of an ``INSERT OR IGNORE``-style statement.
    """
    columns = ", ".join(_ITEM_COLUMNS)
    if session.get_bind().dialect.name == "postgresql":
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        for row in rows:
            writer.writerow(v.isoformat() if isinstance(v, dt.datetime) else v for v in row)  # None -> empty -> NULL
        buffer.seek(0)
        cursor = session.connection().connection.dbapi_connection.cursor()
        try:
            cursor.execute("CREATE TEMP TABLE IF NOT EXISTS sp_item_staging (LIKE sp_item INCLUDING DEFAULTS) ON COMMIT DROP")
            cursor.copy_expert(f"COPY sp_item_staging ({columns}) FROM STDIN WITH (FORMAT csv)", buffer)
            cursor.execute(f"INSERT INTO sp_item ({columns}) SELECT {columns} FROM sp_item_staging "
                           "ON CONFLICT (project_id, external_id) DO NOTHING")
            cursor.execute("TRUNCATE sp_item_staging")
        finally:
            cursor.close()
        return
    session.execute(_insert(session)(_I).on_conflict_do_nothing(index_elements=["project_id", "external_id"]),
                    [dict(zip(_ITEM_COLUMNS, row)) for row in rows])


def unlabelled_batches(engine: Engine, project: Project, batch_size: int = 10_000) -> Iterator[tuple[np.ndarray, list[Any]]]:
    """Ids and features of unfinished items, ``batch_size`` at a time (each batch its own short read)."""
    last = -1
    while True:
        with session_scope(engine, write=False) as session:
            rows = session.execute(
                sa.select(_I.c.id, _I.c.data).where(_I.c.project_id == project.id, _NOT_DONE, _I.c.id > last)
                .order_by(_I.c.id).limit(batch_size)
            ).all()
        if not rows:
            return
        last = rows[-1][0]
        yield np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows)), [serialization.loads(r[1]) for r in rows]


def count_labelled(session: Session, project: Project) -> int:
    """How many items have all the annotations they need (what a retrain learns from)."""
    return session.execute(sa.select(sa.func.count()).select_from(_I).where(_I.c.project_id == project.id, _I.c.done)).scalar_one()


def progress_counts(session: Session, project: Project | int) -> tuple[int, int]:
    """(items, finished items) of a project (or project id): the figures the Label page shows.

    Two index-only counts (all items; unfinished items on the partial queue
    index), never a scan of the item rows and their payloads.
    """
    project_id = project if isinstance(project, int) else project.id
    total = _count_items(session, project_id)
    remaining = session.execute(sa.select(sa.func.count()).select_from(_I).where(_I.c.project_id == project_id, _NOT_DONE)).scalar_one()
    return int(total), int(total - remaining)


def items_data(session: Session, project: Project, item_ids: Sequence[int]) -> dict[int, Any]:
    """Some items' payloads by id (those of other projects are left out)."""
    ids = [int(i) for i in item_ids]
    if not ids:
        return {}
    rows = session.execute(sa.select(_I.c.id, _I.c.data).where(_I.c.project_id == project.id, _I.c.id.in_(ids)))
    return {int(i): serialization.loads(data) for i, data in rows}


def item_data(session: Session, project: Project, item_id: int) -> Any:
    """One item's payload (to show it again); :class:`NotFoundError` if it is not in the project."""
    row = session.execute(sa.select(_I.c.project_id, _I.c.data).where(_I.c.id == item_id)).first()
    if row is None or row.project_id != project.id:
        raise NotFoundError(f"item {item_id} is not in project {project.name!r}")
    return serialization.loads(row.data)
