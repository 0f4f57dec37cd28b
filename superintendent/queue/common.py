"""What the queue's modules share: the tables, the dialect's INSERT, label checks, item locks and recounts.

Internal to :mod:`superintendent.queue`; nothing outside the package imports it.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from typing import Any

import numpy as np
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session

from superintendent import serialization
from superintendent.marks import MARK_MODES, check_marks
from superintendent.store.models import Annotation, AnnotationRevision, Item, Project, Skip, User, Webhook
from superintendent.validation import NotFoundError, ValidationError, check_label

_I = Item.__table__
_A = Annotation.__table__
_S = Skip.__table__
_U = User.__table__
_R = AnnotationRevision.__table__
_W = Webhook.__table__
# Matches the partial index's predicate word for word, so SQLite uses it too.
_NOT_DONE = sa.text("NOT sp_item.done")


_ID_MAX = 2**63 - 1  # ids are 64-bit integers on both databases (SQLite's INTEGER, PostgreSQL's BIGINT)


def _check_id(value: Any, what: str = "item") -> int:
    """An item or user id as given to a public queue function: a whole number from 1 to 2**63 - 1, returned as ``int``.

    The one check of ids at the queue's edge, so both databases answer alike:
    ``True`` (a bool is not an id), ``"3"`` (text), ``3.0`` and an id past
    64 bits raise :class:`ValidationError` instead of labelling item 1, item 3
    (SQLite) or failing in the driver (PostgreSQL, SQLite's OverflowError).
    """
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise ValidationError(f"the {what} id must be a whole number such as 42; got {type(value).__name__} {value!r}")
    value = int(value)
    if not 1 <= value <= _ID_MAX:
        raise ValidationError(f"the {what} id must be a whole number from 1 to {_ID_MAX:,}; got {value:,}")
    return value


def _check_ids(values: Any, what: str = "item") -> np.ndarray:
    """Many ids (a sequence or an array) checked by :func:`_check_id`, as an int64 array. An array of whole numbers is
    checked at once (a retrain passes hundreds of thousands); the first id out of range is named by :func:`_check_id`."""
    if isinstance(values, np.ndarray) and values.dtype.kind in "iu":
        flat = values.ravel()
        bad = np.flatnonzero((flat < 1) | (flat > _ID_MAX))
        if bad.size:
            _check_id(flat[bad[0]].item(), what)
        return values.astype(np.int64)
    return np.asarray([_check_id(v, what) for v in (values.tolist() if isinstance(values, np.ndarray) else values)], dtype=np.int64)


def _no_user(user_id: int) -> NotFoundError:
    return NotFoundError(f"no user with id {user_id}: the account was deleted or never existed; look the user up again")


def _require_user(session: Session, user_id: int) -> None:
    """:class:`NotFoundError` unless the account ``user_id`` exists (e.g. it was deleted after the caller looked it up)."""
    if session.execute(sa.select(_U.c.id).where(_U.c.id == user_id)).first() is None:
        raise _no_user(user_id)


def _require_project(session: Session, project: Project) -> None:
    """:class:`NotFoundError` unless ``project`` still exists; on PostgreSQL its row stays (key-share lock) until commit.

    For writers holding a :class:`Project` read earlier: a project deleted in
    between gets this message instead of a foreign-key error. (On SQLite the
    writing transaction holds the database's write lock from its start.)
    """
    found = session.execute(sa.select(Project.id).where(Project.id == project.id).with_for_update(read=True, key_share=True)).first()
    if found is None:
        raise _project_gone(project)


def _project_gone(project: Project) -> NotFoundError:
    return NotFoundError(f"project {project.name!r} no longer exists: it was deleted after it was opened; "
                         "create it again (or open another project)")


def _validate(project: Project, value: Any, *, session: Session | None = None, item_id: int | None = None, item: Any = None) -> Any:
    """``value`` checked against the project's settings. Spans and boxes are checked against their item too: give its
    content (``item``), or ``session`` and ``item_id`` to read it (a project of class labels reads nothing)."""
    if project.label_mode not in MARK_MODES:
        return check_label(value, options=project.options, label_mode=project.label_mode,
                           allow_free_text=project.allow_free_text, project=project.name)
    if item is None:
        if session is None or item_id is None:
            raise TypeError("checking spans or boxes needs the item (item=, or session= and item_id=)")
        item = _item_content(session, project, item_id)
    try:
        return check_marks(value, project.label_mode, item, project.options)
    except ValidationError as exc:
        raise ValidationError(f"{exc} (project {project.name!r})") from None


def _item_content(session: Session, project: Project, item_id: int) -> Any:
    """The decoded content of an item of ``project`` (:class:`NotFoundError` if it is not there)."""
    data = session.execute(sa.select(_I.c.data).where(_I.c.id == _check_id(item_id, "item"), _I.c.project_id == project.id)).scalar()
    if data is None:
        raise NotFoundError(f"item {item_id} is not in project {project.name!r}")
    return serialization.loads(data)


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
# The same, whether the user exists (their name, for a submit's webhook events) and whether the project has a hook that
# may listen, in the same round trip (only the item row is locked): a project without hooks costs a submit no statement.
_LOCK_ITEM_FOR_USER = (sa.select(_I.c.id, _I.c.project_id, _I.c.leased_by, _I.c.leased_at, _I.c.n_annotations, _I.c.external_id,
                                 sa.select(_U.c.username).where(_U.c.id == sa.bindparam("lock_user_id", type_=_U.c.id.type))
                                 .scalar_subquery().label("user_found"),
                                 sa.exists().where(_W.c.project_id == _I.c.project_id, _W.c.active, _W.c.paused_at.is_(None)).label("hooked"))
                       .where(_I.c.id == sa.bindparam("lock_item_id", type_=_I.c.id.type)).with_for_update(of=_I))


def _lock_item(session: Session, project: Project, item_id: int, user_id: int | None = None) -> Any:
    """Lock an item row of the project (:class:`NotFoundError` if it is not there); with ``user_id``,
    also check that account exists, so a write for a deleted user fails here with a message."""
    item_id = _check_id(item_id, "item")
    if user_id is None:
        row = session.connection().execute(_LOCK_ITEM, {"lock_item_id": item_id}).first()
    else:
        row = session.connection().execute(_LOCK_ITEM_FOR_USER, {"lock_item_id": item_id, "lock_user_id": _check_id(user_id, "user")}).first()
    if row is None or row.project_id != project.id:
        raise NotFoundError(f"item {item_id} is not in project {project.name!r}")
    if user_id is not None and row.user_found is None:
        raise _no_user(user_id)
    return row
