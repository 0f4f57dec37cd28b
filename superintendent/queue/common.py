"""What the queue's modules share: the tables, the dialect's INSERT, label checks, item locks and recounts.

Internal to :mod:`superintendent.queue`; nothing outside the package imports it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session

from superintendent.store.models import Annotation, AnnotationRevision, Item, Project, Skip, User
from superintendent.validation import NotFoundError, check_label

_I = Item.__table__
_A = Annotation.__table__
_S = Skip.__table__
_U = User.__table__
_R = AnnotationRevision.__table__
# Matches the partial index's predicate word for word, so SQLite uses it too.
_NOT_DONE = sa.text("NOT sp_item.done")


def _validate(project: Project, value: Any) -> Any:
    return check_label(value, options=project.options, label_mode=project.label_mode,
                       allow_free_text=project.allow_free_text, project=project.name)


def _insert(session: Session):  # noqa: ANN202 - the dialect's INSERT with ON CONFLICT
    return postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert


def _count_items(session: Session, project_id: int) -> int:
    return session.execute(sa.select(sa.func.count()).select_from(_I).where(_I.c.project_id == project_id)).scalar_one()


def _recount(session: Session, project: Project, item_ids: Sequence[int]) -> None:
    """Set ``n_annotations`` and ``done`` of items from their annotations."""
    count = sa.select(sa.func.count()).select_from(_A).where(_A.c.item_id == _I.c.id).scalar_subquery()
    for start in range(0, len(item_ids), 5000):
        session.execute(
            sa.update(_I).where(_I.c.id.in_(item_ids[start:start + 5000]))
            .values(n_annotations=count, done=count >= project.annotations_per_item)
        )


_LOCK_ITEM = (sa.select(_I.c.id, _I.c.project_id, _I.c.leased_by, _I.c.leased_at, _I.c.n_annotations)
              .where(_I.c.id == sa.bindparam("lock_item_id", type_=_I.c.id.type)).with_for_update())


def _lock_item(session: Session, project: Project, item_id: int) -> Any:
    row = session.connection().execute(_LOCK_ITEM, {"lock_item_id": item_id}).first()
    if row is None or row.project_id != project.id:
        raise NotFoundError(f"item {item_id} is not in project {project.name!r}")
    return row
