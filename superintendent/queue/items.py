"""Adding items and reading them back: bulk add, payloads, batches of unfinished items, counts."""

from __future__ import annotations

import csv
import io
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import sqlalchemy as sa
import psycopg2.errors
from psycopg2.extras import execute_values
from sqlalchemy.engine import Engine
from sqlmodel import Session

from superintendent import serialization
from superintendent.auth import ensure_user
from superintendent.labels import IMPORT_USER, content_ids
from superintendent.queue.common import _A, _I, _NOT_DONE, _R, _check_id, _count_items, _insert, _recount, _require_project, _validate
from superintendent.store.db import session_scope
from superintendent.store.models import Project, Role, utcnow
from superintendent.validation import NotFoundError, ValidationError, split_labels


@dataclass(frozen=True)
class AddResult:
    """What an add or import did: items ``added`` and ``already_present``; ``labelled`` labels stored, of which
    ``labels_new`` were new, ``labels_changed`` replaced a different label and ``labels_same`` were there already."""

    added: int
    already_present: int
    labelled: int
    labels_new: int = 0
    labels_changed: int = 0
    labels_same: int = 0

    def describe(self) -> str:
        """One line for people: ``3 new items, 178 already there; labels: 2 new, 0 changed, 10 already there``."""
        items = f"{self.added:,} new item{'' if self.added == 1 else 's'}, {self.already_present:,} already there"
        if not (self.labelled or self.labels_new or self.labels_changed or self.labels_same):
            return f"{items}; no labels"
        return f"{items}; labels: {self.labels_new:,} new, {self.labels_changed:,} changed, {self.labels_same:,} already there"


def add_items(
    session: Session,
    project: Project,
    items: Sequence[Any],
    *,
    external_ids: Sequence[str] | None = None,
    labels: Sequence[Any] | None = None,
    file_paths: Sequence[str | None] | None = None,
    chunk_size: int = 5000,
    payloads: Sequence[str] | None = None,
) -> AddResult:
    """Add items in bulk (one multi-row insert per chunk).

    Adding is idempotent: an item whose external id is in the project already
    is left as it is. Without ``external_ids`` the id is a hash of the item's
    content (the n-th repeat of the same content in one call gets ``#n``), so
    adding the same data twice adds it once. ``labels`` (None for unlabelled)
    are stored as annotations of the ``_import`` user: the result counts them
    as new, changed (a different label than that user's before, kept in the
    item's history) or the same (left as it is). Everything is checked
    before anything is written. ``payloads``, when given, are the items as :func:`serialization.dumps` writes them
    (an import that made them faster, e.g. :meth:`~superintendent.ingest.tables.TableRows.dumps`).
    """
    n = len(items)
    if payloads is None:
        payloads = [serialization.dumps(x) for x in items]
    elif len(payloads) != n:
        raise ValidationError(f"payloads must have one entry per item: got {len(payloads)} for {n} items")
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
        label_values = [None if v is None else serialization.dumps(_validate(project, v, item=item)) for v, item in zip(label_list, items)]
    if file_paths is not None and len(file_paths) != n:
        raise ValidationError(f"file_paths must have one entry per item: got {len(file_paths)} for {n} items")
    if n == 0:
        return AddResult(0, 0, 0)

    _require_project(session, project)  # deleted meanwhile: a message, not a foreign-key error
    added = 0
    # behind every open item: one seek of the queue index, written as ORDER BY ... LIMIT 1 so that it stays one while a
    # big import has not been analysed yet (max() over all items read every row: 0.5 s a call at 1M items; max() over the
    # open ones was planned as a scan of them until ANALYZE: 17 ms a call at 200,000)
    base = session.execute(sa.select(_I.c.priority).where(_I.c.project_id == project.id, _NOT_DONE)
                           .order_by(_I.c.priority.desc()).limit(1)).scalar()
    base = 0.0 if base is None else float(base) + 1.0
    now = utcnow()
    # an item that comes with its label is inserted already counted (one annotation: the label stored below), so its
    # row is written once, not inserted and then recounted (a second version of 100,000 rows in a 1M-row import)
    wanted_per_item = project.annotations_per_item
    labelled = [False] * n if label_values is None else [v is not None for v in label_values]
    new_ids: set[str] | None = set()
    for start in range(0, n, chunk_size):
        rows = [
            (project.id, ids[i], payloads[i], base + i, None if file_paths is None else file_paths[i], now,
             int(labelled[i]), labelled[i] and wanted_per_item <= 1)
            for i in range(start, min(n, start + chunk_size))
        ]
        chunk_added, chunk_new = _insert_items(session, rows)
        added += chunk_added
        new_ids = None if new_ids is None or chunk_new is None else new_ids | chunk_new

    new = changed = same = 0
    if label_values is not None and any(v is not None for v in label_values):
        importer = ensure_user(session, IMPORT_USER, role=Role.system)
        wanted = {ids[i]: label_values[i] for i in range(n) if label_values[i] is not None}
        keys = list(wanted)
        for start in range(0, len(keys), chunk_size):
            chunk = keys[start:start + chunk_size]
            found = session.execute(sa.select(_I.c.id, _I.c.external_id).where(_I.c.project_id == project.id, _I.c.external_id.in_(chunk))).all()
            old = dict(session.execute(sa.select(_A.c.item_id, _A.c.value).where(
                _A.c.user_id == importer, _A.c.item_id.in_([item_id for item_id, _ in found]))).all())
            rows = [{"project_id": project.id, "item_id": item_id, "user_id": importer, "value": wanted[ext], "created_at": now}
                    for item_id, ext in found if old.get(item_id) != wanted[ext]]  # a label already there is left as it is
            same += len(found) - len(rows)
            edits = [{"project_id": project.id, "item_id": r["item_id"], "user_id": importer, "kind": "edit", "old_value": old[r["item_id"]],
                      "new_value": r["value"], "changed_by": importer, "changed_at": now} for r in rows if r["item_id"] in old]
            if edits:  # a different label than the one imported before: kept in the item's history (history.py's edit rows)
                session.execute(sa.insert(_R), edits)
            changed += len(edits)
            new += len(rows) - len(edits)
            if rows:
                _upsert_labels(session, rows)
                if new_ids is None:  # which items this call inserted is not known: count them all again
                    _recount(session, project, [r["item_id"] for r in rows])
                else:  # the items that were there before (the new ones were inserted counted)
                    inserted = {item_id for item_id, ext in found if ext in new_ids}
                    _recount(session, project, [r["item_id"] for r in rows if r["item_id"] not in inserted])
    session.flush()
    refresh_statistics(session, added)
    return AddResult(added=added, already_present=n - added, labelled=new + changed + same,
                     labels_new=new, labels_changed=changed, labels_same=same)


# PostgreSQL plans from table statistics that autovacuum refreshes in its own time (on a loaded server, not for over
# ten minutes after a 1M-row load, measured): until then it took a freshly loaded project for a few hundred rows, and a
# retrain's batch reads sorted every open item for each batch of 10,000 (1.8 s a batch, a million rows: hours).
ANALYZE_AFTER_ROWS = 50_000


def refresh_statistics(session: Session, added: int) -> None:
    """After a bulk add of ``added`` items: refresh PostgreSQL's statistics of the item table when that is many rows
    (:data:`ANALYZE_AFTER_ROWS`), in the caller's transaction, as PostgreSQL's manual advises after a bulk load."""
    if added >= ANALYZE_AFTER_ROWS and session.get_bind().dialect.name == "postgresql":
        session.execute(sa.text("ANALYZE sp_item"))


_ITEM_COLUMNS = ("project_id", "external_id", "data", "priority", "file_path", "created_at", "n_annotations", "done")
_LABEL_COLUMNS = ("project_id", "item_id", "user_id", "value", "created_at")


def _upsert_labels(session: Session, rows: list[dict[str, Any]]) -> None:
    """Store imported labels (dicts of ``_LABEL_COLUMNS``), replacing the same user's label of the same item.

    PostgreSQL: pages of a multi-row ``INSERT ... ON CONFLICT`` (psycopg2's ``execute_values``), where an
    executemany costs a round trip per row (7 s for 5,000 labels in the import benchmark). SQLite: executemany,
    which runs in-process.
    """
    if session.get_bind().dialect.name == "postgresql":
        cursor = session.connection().connection.dbapi_connection.cursor()
        try:
            execute_values(cursor, f"INSERT INTO sp_annotation ({', '.join(_LABEL_COLUMNS)}) VALUES %s "
                           "ON CONFLICT (item_id, user_id) DO UPDATE SET value = EXCLUDED.value",
                           [tuple(r[c] for c in _LABEL_COLUMNS) for r in rows], page_size=1000)
        finally:
            cursor.close()
        return
    stmt = _insert(session)(_A)
    session.execute(stmt.on_conflict_do_update(index_elements=["item_id", "user_id"], set_={"value": stmt.excluded.value}), rows)


def _copy_buffer(rows: list[tuple[Any, ...]]) -> io.StringIO:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")  # "\r\n": a value holding either is quoted (COPY ends a row at a bare "\r")
    writer.writerows(rows)  # None -> empty -> NULL; a datetime as str(): ISO 8601 with a space, which PostgreSQL reads
    buffer.seek(0)
    return buffer


def _insert_items(session: Session, rows: list[tuple[Any, ...]]) -> tuple[int, set[str] | None]:
    """Insert item rows of one project (in ``_ITEM_COLUMNS`` order), skipping external ids the project has;
    returns how many were added (by this transaction: another one adding items meanwhile does not count) and their
    external ids, or None where that is not known (SQLite; a chunk another import raced).

    PostgreSQL: the rows go in with one ``COPY`` straight into ``sp_item``, about 40 % less database time than a
    staging table and ``INSERT ... SELECT ... ON CONFLICT``. If the project has one of the ids already (a re-import, or
    another import adding the same ids meanwhile), that ``COPY`` fails at the first such row and is rolled back to its
    savepoint; then the ids already there are looked up (one index probe each), the others copied again, and if
    another import added one of them meanwhile, the chunk goes through the staging table, which skips it. (Looking up
    every chunk's ids first cost a fresh 1M-row import about 6 s.)
    SQLite: ``executemany`` of an ``INSERT OR IGNORE``-style statement.
    """
    columns = ", ".join(_ITEM_COLUMNS)
    if session.get_bind().dialect.name == "postgresql":
        cursor = session.connection().connection.dbapi_connection.cursor()
        try:
            return _pg_copy_items(cursor, rows, columns)
        finally:
            cursor.close()
    return session.execute(_insert(session)(_I).on_conflict_do_nothing(index_elements=["project_id", "external_id"]),
                           [dict(zip(_ITEM_COLUMNS, row)) for row in rows]).rowcount, None


def _pg_copy_items(cursor: Any, rows: list[tuple[Any, ...]], columns: str) -> tuple[int, set[str] | None]:
    """:func:`_insert_items` on PostgreSQL, with the driver's cursor."""
    for attempt in ("fresh", "after the probe"):
        cursor.execute("SAVEPOINT sp_copy_items")
        try:
            cursor.copy_expert(f"COPY sp_item ({columns}) FROM STDIN WITH (FORMAT csv)", _copy_buffer(rows))
        except psycopg2.errors.UniqueViolation:  # some ids are in the project already
            cursor.execute("ROLLBACK TO SAVEPOINT sp_copy_items")
            cursor.execute("RELEASE SAVEPOINT sp_copy_items")
            if attempt == "fresh":
                cursor.execute("SELECT external_id FROM sp_item WHERE project_id = %s AND external_id = ANY(%s)",
                               (rows[0][0], [r[1] for r in rows]))
                have = {e for (e,) in cursor.fetchall()}
                rows = [r for r in rows if r[1] not in have]
                if not rows:
                    return 0, set()
                continue
            break  # added by another import meanwhile: skip those, as ON CONFLICT does
        cursor.execute("RELEASE SAVEPOINT sp_copy_items")
        return len(rows), {r[1] for r in rows}
    cursor.execute("CREATE TEMP TABLE IF NOT EXISTS sp_item_staging (LIKE sp_item INCLUDING DEFAULTS) ON COMMIT DROP")
    cursor.copy_expert(f"COPY sp_item_staging ({columns}) FROM STDIN WITH (FORMAT csv)", _copy_buffer(rows))
    cursor.execute(f"INSERT INTO sp_item ({columns}) SELECT {columns} FROM sp_item_staging ON CONFLICT (project_id, external_id) DO NOTHING")
    added = cursor.rowcount
    cursor.execute("TRUNCATE sp_item_staging")
    return added, None


def unlabelled_batches(engine: Engine, project: Project, batch_size: int = 10_000) -> Iterator[tuple[np.ndarray, list[Any]]]:
    """Ids and features of unfinished items, ``batch_size`` at a time (each batch its own short read)."""
    last = -1
    project_id, batch_size = _check_id(project.id, "project"), int(batch_size)
    while True:
        with session_scope(engine, write=False) as session:
            # the driver's own cursor: SQLAlchemy's rows took as long as the rest of the read (a 1M-item project: 8.9 s
            # against 4.8 s); every value in the statement is a checked int
            cursor = session.connection().connection.dbapi_connection.cursor()
            try:
                cursor.execute(f"SELECT id, data FROM sp_item WHERE project_id = {project_id} AND NOT done AND id > {int(last)} "
                               f"ORDER BY id LIMIT {batch_size}")
                rows = cursor.fetchall()
            finally:
                cursor.close()
        if not rows:
            return
        last = rows[-1][0]
        yield np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows)), serialization.loads_rows([r[1] for r in rows])


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
    ids = [_check_id(i) for i in item_ids]
    if not ids:
        return {}
    rows = session.execute(sa.select(_I.c.id, _I.c.data).where(_I.c.project_id == project.id, _I.c.id.in_(ids))).all()
    return dict(zip((int(i) for i, _ in rows), serialization.loads_rows([data for _, data in rows])))


def item_data(session: Session, project: Project, item_id: int) -> Any:
    """One item's payload (to show it again); :class:`NotFoundError` if it is not in the project."""
    item_id = _check_id(item_id, "item")
    row = session.execute(sa.select(_I.c.project_id, _I.c.data).where(_I.c.id == item_id)).first()
    if row is None or row.project_id != project.id:
        raise NotFoundError(f"item {item_id} is not in project {project.name!r}")
    return serialization.loads(row.data)
