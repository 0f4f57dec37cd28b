"""Queue order: bulk priority (and model hint) rewrites after a retrain, and the stored guesses they replace."""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Sequence
from typing import Any

import numpy as np
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session

from superintendent import serialization
from superintendent.labels import IMPORT_USER
from superintendent.queue.common import _A, _I, _NOT_DONE, _U, _check_ids
from superintendent.store.db import session_scope
from superintendent.store.models import Project
from superintendent.validation import ValidationError


# The rows of a rewrite chunk that no labeller holds locked right now: the rewrite never waits on a
# labeller (so it cannot deadlock with an undo or a submit); a row it skips keeps its old priority.
_UNLOCKED = "(SELECT id FROM sp_item WHERE id = ANY(CAST(:ids AS bigint[])) ORDER BY id FOR UPDATE SKIP LOCKED)"


def _pg_rewrite_chunk(session: Session, project_id: int, rows: Any, with_hints: bool) -> int:
    """One chunk of :func:`reprioritise` on PostgreSQL: ``COPY`` (id, priority[, hint, confidence]) into a
    temporary table, then one ``UPDATE ... FROM`` of the rows no labeller holds locked (``SKIP LOCKED``)
    and nobody holds a live lease on: the chunk's row locks never make a labeller's submit wait (a
    leased item cannot be claimed, so its priority does not matter until the next rewrite).
    No per-row statements and no giant literal arrays to parse and plan."""
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(rows)
    buffer.seek(0)
    columns = "id, p, h, c, t" if with_hints else "id, p"
    assign = "priority = u.p, hint = u.h, hint_confidence = u.c, hint_top = u.t" if with_hints else "priority = u.p"
    cursor = session.connection().connection.dbapi_connection.cursor()
    try:
        cursor.execute("CREATE TEMP TABLE IF NOT EXISTS sp_priority_staging (id bigint PRIMARY KEY, p double precision, h text, "
                       "c double precision, t text) ON COMMIT DROP")
        cursor.copy_expert(f"COPY sp_priority_staging ({columns}) FROM STDIN WITH (FORMAT csv)", buffer)
        cursor.execute("ANALYZE sp_priority_staging")
        cursor.execute(f"UPDATE sp_item AS i SET {assign} FROM sp_priority_staging AS u "
                       "WHERE i.id = u.id AND i.project_id = %(project)s AND i.id IN ("
                       "SELECT s.id FROM sp_item AS s JOIN sp_priority_staging AS t ON s.id = t.id "
                       "WHERE s.leased_by IS NULL OR s.lease_expires_at < now() "
                       "ORDER BY s.id FOR UPDATE OF s SKIP LOCKED)", {"project": project_id})
        return cursor.rowcount
    finally:
        cursor.close()


def reprioritise(engine: Engine, project: Project, item_ids: Sequence[int] | np.ndarray, priorities: Sequence[float] | np.ndarray,
                 *, hints: Sequence[Any] | None = None, confidences: Sequence[float] | np.ndarray | None = None,
                 top_guesses: Sequence[Sequence[tuple[Any, float]]] | None = None, chunk_size: int = 20_000) -> int:
    """Bulk-rewrite priorities (lower is served first), and the model's hints if given; returns rows written.

    ``hints`` (the model's guess per item), ``confidences`` and, optionally,
    ``top_guesses`` (per item, its most likely labels with their
    probabilities, best first) are written with the priorities.

    Each chunk is its own short transaction: labellers never wait long, and
    an interrupted rewrite leaves every item reachable (only the order is
    part old, part new). Nothing but ``priority`` (and ``hint``,
    ``hint_confidence``, ``hint_top``) is touched. On PostgreSQL a chunk skips rows a
    labeller's transaction holds locked at that instant, and rows leased to a
    labeller right now (they keep their old priority until the next rewrite),
    so a rewrite never waits on labellers and they never wait on it.
    """
    ids = _check_ids(item_ids, "item")  # the one id check: True, "3", 2**70 are refused, not written to item 1, 3 or overflowed
    prio = np.asarray(priorities, dtype=np.float64)
    if ids.shape != prio.shape or ids.ndim != 1:
        raise ValidationError(f"item_ids and priorities must be 1-D of equal length; got {ids.shape} and {prio.shape}")
    if not np.isfinite(prio).all():
        raise ValidationError("priorities must be finite numbers")
    with_hints = hints is not None
    if with_hints and (len(hints) != len(ids) or confidences is None or len(confidences) != len(ids)):
        raise ValidationError("hints and confidences need one entry per item")
    if top_guesses is not None and (not with_hints or len(top_guesses) != len(ids)):
        raise ValidationError("top_guesses need hints and one entry per item")
    hint_text = [serialization.dumps(h) for h in hints] if with_hints else []
    conf = np.asarray(confidences, dtype=np.float64).tolist() if with_hints else []
    top_text = ([serialization.dumps([[label, round(float(p), 4)] for label, p in top]) for top in top_guesses]
                if top_guesses is not None else [None] * len(hint_text))
    changed = 0
    for start in range(0, len(ids), chunk_size):
        stop = start + chunk_size
        chunk_ids, chunk_prio = ids[start:stop].tolist(), prio[start:stop].tolist()
        with session_scope(engine) as session:
            if engine.dialect.name == "postgresql":
                rows = (zip(chunk_ids, chunk_prio, hint_text[start:stop], conf[start:stop], top_text[start:stop]) if with_hints
                        else zip(chunk_ids, chunk_prio))
                changed += _pg_rewrite_chunk(session, project.id, rows, with_hints)
            else:
                conn = session.connection()
                if with_hints:
                    rows = list(zip(chunk_prio, hint_text[start:stop], conf[start:stop], top_text[start:stop], chunk_ids,
                                    [project.id] * len(chunk_ids)))
                    sql = ("UPDATE sp_item SET priority = ?, hint = ?, hint_confidence = ?, hint_top = ? "
                           "WHERE id = ? AND project_id = ?")
                else:
                    rows = [(p, i, project.id) for i, p in zip(chunk_ids, chunk_prio)]
                    sql = "UPDATE sp_item SET priority = ? WHERE id = ? AND project_id = ?"
                changed += conn.exec_driver_sql(sql, rows).rowcount
    return changed


def labels_since(session: Session, project: Project, since: dt.datetime) -> int:
    """How many labels people gave in the project after ``since`` (a range of the (project, created_at) index); labels
    imported from a file (the ``_import`` account and the import-only ``_import:<name>`` ones) are not counted."""
    return session.execute(
        sa.select(sa.func.count()).select_from(_A.join(_U, _A.c.user_id == _U.c.id))
        .where(_A.c.project_id == project.id, _A.c.created_at > since, _U.c.username != IMPORT_USER,
               sa.not_(_U.c.username.startswith(f"{IMPORT_USER}:", autoescape=True)))
    ).scalar_one()


def lowest_priority(session: Session, project: Project) -> float | None:
    """The lowest priority among the project's unfinished items (served first), or None: one seek of the queue index."""
    return session.execute(sa.select(_I.c.priority).where(_I.c.project_id == project.id, _NOT_DONE)  # as ORDER BY .. LIMIT 1:
                           .order_by(_I.c.priority).limit(1)).scalar()  # one seek even before ANALYZE (queue.add_items)


def hints_between(session: Session, project: Project, first_id: int, last_id: int) -> dict[int, str]:
    """The stored guesses (``hint``, JSON text) of the project's unfinished items with ids in [first_id, last_id].

    A retrain reads these, batch by batch, before it writes new guesses, to
    count how many predictions changed since the previous run. Items
    without a guess are left out.
    """
    rows = session.execute(
        sa.select(_I.c.id, _I.c.hint).where(_I.c.project_id == project.id, _NOT_DONE, _I.c.id >= first_id, _I.c.id <= last_id,
                                            _I.c.hint.is_not(None))
    )
    return {int(item_id): hint for item_id, hint in rows}


def set_hints(session: Session, project: Project, item_ids: Sequence[int], hints: Sequence[Any], confidences: Sequence[float | None],
              top_guesses: Sequence[Sequence[tuple[Any, float]]]) -> int:
    """Store guesses from a model outside the app (hint, confidence, top guesses) on items of the project, in the caller's
    transaction; their priorities stay as they are. Items of other projects are left alone. Returns how many were given."""
    ids = _check_ids(item_ids, "item").tolist()
    if not len(ids) == len(hints) == len(confidences) == len(top_guesses):
        raise ValidationError("hints, confidences and top guesses need one entry per item")
    if not ids:
        return 0
    rows = [{"b_id": i, "b_hint": serialization.dumps(h), "b_conf": None if c is None else float(c),  # no score given: none shown
             "b_top": serialization.dumps([[label, round(float(p), 4)] for label, p in top]) if top else None}
            for i, h, c, top in zip(ids, hints, confidences, top_guesses)]
    session.execute(sa.update(_I).where(_I.c.id == sa.bindparam("b_id"), _I.c.project_id == project.id)
                    .values(hint=sa.bindparam("b_hint"), hint_confidence=sa.bindparam("b_conf"), hint_top=sa.bindparam("b_top")),
                    rows)
    return len(ids)
