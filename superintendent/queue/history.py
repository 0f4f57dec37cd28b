"""An item's history: every change of a label (own edits, undos, reviews) is a row; one's own recent labels."""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session

from superintendent import serialization
from superintendent.queue.common import _A, _I, _R, _U, _check_id, _lock_item, _validate
from superintendent.queue.reads import AnnotationRow
from superintendent.store.models import Project, utcnow
from superintendent.validation import NotFoundError, SuperintendentError, ValidationError


class RevisionKind(str, enum.Enum):
    edit = "edit"  # a labeller changed their own label
    review = "review"  # a reviewer set or cleared an item's corrected label
    undo = "undo"  # a labeller took their label back


class NotAllowedError(SuperintendentError, PermissionError):
    """The account's role does not allow this (e.g. a labeller trying to review)."""


def _add_revision(session: Session, project: Project, item_id: int, user_id: int | None, kind: RevisionKind,
                  old: str | None, new: str | None, *, changed_by: int, now: dt.datetime) -> None:
    """One history row (values are JSON text, None for "no label"); rows are only ever added."""
    session.execute(sa.insert(_R).values(project_id=project.id, item_id=item_id, user_id=user_id, kind=kind.value,
                                         old_value=old, new_value=new, changed_by=changed_by, changed_at=now))


def recent_labels(session: Session, project: Project, user_id: int, limit: int = 20) -> list[AnnotationRow]:
    """``user_id``'s latest labels in the project, most recent first (one seek along their index)."""
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise ValidationError(f"limit must be a positive whole number; got {limit!r}")
    user_id = _check_id(user_id, "user")
    stmt = (sa.select(_A.c.item_id, _I.c.external_id, _U.c.username, _A.c.value, _A.c.created_at, _A.c.time_taken)
            .select_from(_A.join(_I, _A.c.item_id == _I.c.id).join(_U, _A.c.user_id == _U.c.id))
            .where(_A.c.project_id == project.id, _A.c.user_id == user_id)
            .order_by(_A.c.created_at.desc(), _A.c.id.desc()).limit(limit))
    return [AnnotationRow(r.item_id, r.external_id, r.username, serialization.loads(r.value), r.created_at, r.time_taken)
            for r in session.execute(stmt)]


def change_own_label(session: Session, project: Project, user_id: int, item_id: int, value: Any, *,
                     now: dt.datetime | None = None) -> bool:
    """Change ``user_id``'s existing label of an item; the old one is kept in the history (``edit``).

    Returns False (and writes nothing) when the label is unchanged. The
    label's time stays that of the first labelling; the change has its own
    time in the history. Raises :class:`NotFoundError` if the user has not
    labelled the item, :class:`ValidationError` for a label that is not an option.
    """
    item_id, user_id = _check_id(item_id, "item"), _check_id(user_id, "user")
    label = serialization.dumps(_validate(project, value, session=session, item_id=item_id))
    now = now or utcnow()
    _lock_item(session, project, item_id)  # serialises with submits, undos and reviews of the item
    mine = sa.and_(_A.c.item_id == item_id, _A.c.user_id == user_id)
    old = session.execute(sa.select(_A.c.value).where(mine)).scalar_one_or_none()
    if old is None:
        raise NotFoundError(f"you have no label on item {item_id} in project {project.name!r} to change; label it on the Label page")
    if old == label:
        return False
    session.execute(sa.update(_A).where(mine).values(value=label))
    _add_revision(session, project, item_id, user_id, RevisionKind.edit, old, label, changed_by=user_id, now=now)
    return True


@dataclass(frozen=True)
class Revision:
    kind: str
    labeller: str | None  # whose label changed; None for the item's reviewed label
    old: Any
    new: Any
    changed_by: str | None
    changed_at: dt.datetime
