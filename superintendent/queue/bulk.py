"""Annotations stored in bulk (imports of labelled data), checked and written per chunk."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session

from superintendent import serialization
from superintendent.queue.common import _A, _I, _insert, _recount, _validate
from superintendent.queue.history import RevisionKind, _add_revision
from superintendent.store.models import Project, utcnow
from superintendent.validation import NotFoundError, ValidationError


@dataclass(frozen=True)
class LabelCounts:
    """Labels of an import by what they did: ``new`` (no label of that user before), ``changed`` (replaced a different
    label), ``same`` (the label was there already)."""

    new: int = 0
    changed: int = 0
    same: int = 0

    @property
    def total(self) -> int:
        return self.new + self.changed + self.same

    def __add__(self, other: LabelCounts) -> LabelCounts:
        return LabelCounts(self.new + other.new, self.changed + other.changed, self.same + other.same)


@dataclass(frozen=True)
class ImportedLabel:
    """One annotation to store in bulk: ``user_id``'s label ``value`` for ``item_id``."""

    item_id: int
    user_id: int
    value: Any
    created_at: dt.datetime | None = None
    time_taken: float | None = None


def import_annotations(session: Session, project: Project, labels: Sequence[ImportedLabel], *,
                       chunk_size: int = 5000, now: dt.datetime | None = None) -> LabelCounts:
    """Store many annotations at once (an import), in the caller's transaction; returns how many were new, changed, the same.

    Every value is checked against the project's settings before anything is
    written. Per chunk: one read of the annotations already there, one
    multi-row upsert, one recount of the items' ``n_annotations`` / ``done``.
    A value replacing the same user's different label is kept in the item's
    history (an ``edit`` revision), as :func:`submit` does; of one user's two
    labels for one item in the same import the later is kept. Leases are not
    touched.
    """
    now = now or utcnow()
    rows = []
    for label in labels:
        if not isinstance(label, ImportedLabel):
            raise ValidationError(f"expected ImportedLabel entries; got {type(label).__name__}")
        rows.append({"project_id": project.id, "item_id": int(label.item_id), "user_id": int(label.user_id),
                     "value": serialization.dumps(_validate(project, label.value, session=session, item_id=label.item_id)), "time_taken": label.time_taken,
                     "created_at": label.created_at or now})
    # One user's two labels for one item in the same import: the later one is kept, as a second submit would.
    rows = list({(r["item_id"], r["user_id"]): r for r in rows}.values())
    insert = _insert(session)
    counts = LabelCounts()
    for start in range(0, len(rows), chunk_size):
        chunk = rows[start:start + chunk_size]
        item_ids = sorted({r["item_id"] for r in chunk})
        known = session.execute(sa.select(_I.c.id).where(_I.c.project_id == project.id, _I.c.id.in_(item_ids))).scalars().all()
        missing = set(item_ids) - set(known)
        if missing:
            raise NotFoundError(f"no item with id {min(missing)} in project {project.name!r}")
        old = {(i, u): v for i, u, v in session.execute(
            sa.select(_A.c.item_id, _A.c.user_id, _A.c.value).where(_A.c.item_id.in_(item_ids)))}
        new = changed = 0
        for row in chunk:
            before = old.get((row["item_id"], row["user_id"]))
            if before is None:
                new += 1
            elif before != row["value"]:
                changed += 1
                _add_revision(session, project, row["item_id"], row["user_id"], RevisionKind.edit, before, row["value"],
                              changed_by=row["user_id"], now=now)
        counts += LabelCounts(new, changed, len(chunk) - new - changed)
        stmt = insert(_A)
        session.execute(stmt.on_conflict_do_update(
            index_elements=["item_id", "user_id"],
            set_={"value": stmt.excluded.value, "time_taken": stmt.excluded.time_taken, "created_at": stmt.excluded.created_at}),
            chunk)
        _recount(session, project, item_ids)
    session.flush()
    return counts
