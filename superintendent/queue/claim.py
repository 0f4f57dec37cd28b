"""Claiming, submitting, skipping, undoing and leases: the labeller's path through the queue.

See :mod:`superintendent.queue` (and docs/queue.md) for the claim statement
and the semantics. :func:`act` is the one entry point every front end uses
(the Label page, the notebook widget, the simulator): one action and the
item to show next, in the caller's transaction.
"""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session

from superintendent import serialization
from superintendent.queue.common import _A, _I, _NOT_DONE, _S, _U, _check_id, _insert, _lock_item, _require_user, _validate
from superintendent.queue.history import RevisionKind, _add_revision
from superintendent.queue.members import check_may_work_in
from superintendent.store.models import Project, utcnow
from superintendent.validation import ConflictError, ValidationError
from superintendent.webhooks import events as webhook_events


@dataclass(frozen=True)
class Task:
    """An item handed to a labeller, with the lease that reserves it."""

    item_id: int
    project_id: int
    external_id: str
    data: Any
    priority: float
    lease_expires_at: dt.datetime
    file_path: str | None = None
    hint: Any = None
    hint_confidence: float | None = None
    hint_top: list[tuple[Any, float]] | None = None  # the model's most likely labels with their probabilities, best first


def _free(now: dt.datetime) -> sa.ColumnElement[bool]:
    return sa.or_(_I.c.leased_by.is_(None), _I.c.lease_expires_at < now)


def _task(row: Any) -> Task:
    return Task(item_id=row.id, project_id=row.project_id, external_id=row.external_id, data=serialization.loads(row.data),
                priority=row.priority, lease_expires_at=row.lease_expires_at, file_path=row.file_path,
                hint=None if row.hint is None else serialization.loads(row.hint), hint_confidence=row.hint_confidence,
                hint_top=None if row.hint_top is None else [(label, float(p)) for label, p in serialization.loads(row.hint_top)])


_RETURNING = (_I.c.id, _I.c.project_id, _I.c.external_id, _I.c.data, _I.c.priority, _I.c.lease_expires_at, _I.c.file_path,
              _I.c.hint, _I.c.hint_confidence, _I.c.hint_top)


def current_task(session: Session, project: Project, user_id: int, *, now: dt.datetime | None = None) -> Task | None:
    """The item ``user_id`` holds a live lease on in this project, its lease renewed; or None."""
    user_id = _check_id(user_id, "user")
    now = now or utcnow()
    row = session.execute(
        sa.update(_I)
        .where(_I.c.leased_by == user_id, _I.c.project_id == project.id, _I.c.lease_expires_at >= now, _NOT_DONE)
        .values(lease_expires_at=now + dt.timedelta(seconds=project.lease_seconds))
        .returning(*_RETURNING)
    ).first()
    return None if row is None else _task(row)


def _candidate(project: Project | Any, user_id: int | Any, now: dt.datetime | Any, *, skip_locked: bool = True) -> sa.Select:
    """The next free item for ``user_id``: one seek along ``ix_item_queue``.

    ``project`` may be a bound parameter standing for the project's id
    (likewise ``user_id`` and ``now``): see :func:`_claim_statement`.
    """
    project_id = project.id if isinstance(project, Project) else project
    return (
        sa.select(_I.c.id)
        .where(
            _I.c.project_id == project_id,
            _NOT_DONE,
            _free(now),
            ~sa.exists().where(_A.c.item_id == _I.c.id, _A.c.user_id == user_id),
            ~sa.exists().where(_S.c.item_id == _I.c.id, _S.c.user_id == user_id),
        )
        .order_by(_I.c.priority, _I.c.id)
        .limit(1)
        .with_for_update(skip_locked=skip_locked)
    )


_CLAIM_STATEMENTS: dict[bool, sa.Update] = {}


def _claim_statement(skip_locked: bool) -> sa.Update:
    """The claim ``UPDATE``, built once per lock mode from bound parameters (``claim_project``,
    ``claim_user``, ``claim_now``, ``claim_until``): no expression building per label, and
    SQLAlchemy compiles it once per dialect (its compiled cache)."""
    stmt = _CLAIM_STATEMENTS.get(skip_locked)
    if stmt is None:
        when = _I.c.lease_expires_at.type
        now, user = sa.bindparam("claim_now", type_=when), sa.bindparam("claim_user", type_=sa.Integer)
        candidate = _candidate(sa.bindparam("claim_project", type_=sa.Integer), user, now, skip_locked=skip_locked).scalar_subquery()
        # "the user exists" is one probe of sp_user's key: a deleted account leases nothing (claim_next then says why)
        stmt = (sa.update(_I).where(_I.c.id == candidate, _free(now), _NOT_DONE, sa.exists().where(_U.c.id == user))
                .values(leased_by=user, leased_at=now, lease_expires_at=sa.bindparam("claim_until", type_=when))
                .returning(*_RETURNING))
        _CLAIM_STATEMENTS[skip_locked] = stmt
    return stmt


def explain_claim(session: Session, project: Project, user_id: int) -> str:
    """The database's query plan for the claim's item lookup (to check it seeks the index)."""
    dialect = session.get_bind().dialect
    sql = str(_candidate(project, user_id, utcnow()).compile(dialect=dialect, compile_kwargs={"literal_binds": True}))
    prefix = "EXPLAIN QUERY PLAN " if dialect.name == "sqlite" else "EXPLAIN "
    return "\n".join(" ".join(str(c) for c in row) for row in session.connection().exec_driver_sql(prefix + sql))


def claim_next(session: Session, project: Project, user_id: int, *, now: dt.datetime | None = None, resume: bool = True) -> Task | None:
    """Lease the next item for ``user_id``; None when nothing is left for them.

    With ``resume`` (the default), an item the user already holds is handed
    back first (a reloaded page does not strand a lease). :class:`NotFoundError` if the user does not exist.
    """
    user_id = _check_id(user_id, "user")
    now = now or utcnow()
    if resume:
        held = current_task(session, project, user_id, now=now)
        if held is not None:
            return held
    row = _lease_next(session, project, user_id, now, skip_locked=True)
    if row is None and session.get_bind().dialect.name == "postgresql":
        # Nothing free that nobody has locked: free rows may still sit under a priority rewrite's
        # short transaction (or another claim in flight). Wait for them rather than say "empty";
        # rows leased to others are filtered out before locking, so this waits only on those.
        row = _lease_next(session, project, user_id, now, skip_locked=False)
    if row is None:
        _require_user(session, user_id)  # nothing leased: say so if it is because the account is gone
        return None
    return _task(row)


def _lease_next(session: Session, project: Project, user_id: int, now: dt.datetime, *, skip_locked: bool) -> Any:
    return session.connection().execute(_claim_statement(skip_locked), {
        "claim_project": project.id, "claim_user": user_id, "claim_now": now,
        "claim_until": now + dt.timedelta(seconds=project.lease_seconds)}).first()


# submit's annotation upsert and item update as one PostgreSQL statement. The item row is locked
# already (_lock_item) and every writer of an item's annotations locks it first, so the other users'
# annotations counted here cannot change under us; the statement's snapshot does not see its own
# upsert, hence "others + 1" (after the upsert this user has exactly one annotation on the item).
_PG_SUBMIT = sa.text("""
WITH ann AS (
    INSERT INTO sp_annotation (project_id, item_id, user_id, value, time_taken, created_at)
    VALUES (:project_id, :item_id, :user_id, :value, :time_taken, :now)
    ON CONFLICT (item_id, user_id) DO UPDATE
        SET value = EXCLUDED.value, time_taken = EXCLUDED.time_taken, created_at = EXCLUDED.created_at
    RETURNING item_id
)
UPDATE sp_item SET
    n_annotations = c.n,
    done = c.n >= :k,
    leased_by = CASE WHEN sp_item.leased_by = :user_id THEN NULL ELSE sp_item.leased_by END,
    leased_at = CASE WHEN sp_item.leased_by = :user_id THEN NULL ELSE sp_item.leased_at END,
    lease_expires_at = CASE WHEN sp_item.leased_by = :user_id THEN NULL ELSE sp_item.lease_expires_at END
FROM (SELECT 1 + (SELECT count(*) FROM sp_annotation o WHERE o.item_id = :item_id AND o.user_id <> :user_id) AS n
      FROM ann) AS c
WHERE sp_item.id = :item_id
""").bindparams(sa.bindparam("project_id", type_=sa.Integer), sa.bindparam("item_id", type_=sa.BigInteger),
                sa.bindparam("user_id", type_=sa.Integer), sa.bindparam("value", type_=sa.Text),
                sa.bindparam("time_taken", type_=sa.Float), sa.bindparam("now", type_=_A.c.created_at.type),
                sa.bindparam("k", type_=sa.Integer))


def submit(session: Session, project: Project, user_id: int, item_id: int, value: Any, *,
           time_taken: float | None = None, now: dt.datetime | None = None) -> None:
    """Store ``user_id``'s label for ``item_id`` and end their lease, in the caller's transaction.

    The label is checked against the project's options first (nothing is
    written if it is not one). A submit after the lease expired is kept.
    A new label over the user's earlier, different one is kept in the
    item's history (an ``edit`` revision).
    """
    item_id, user_id = _check_id(item_id, "item"), _check_id(user_id, "user")
    label = serialization.dumps(_validate(project, value, session=session, item_id=item_id))
    now = now or utcnow()
    row = _lock_item(session, project, item_id, user_id)  # serialises concurrent submits of one item; checks the user exists
    if time_taken is None and row.leased_by == user_id and row.leased_at is not None:
        time_taken = max(0.0, (now - row.leased_at).total_seconds())
    old = None
    if row.n_annotations:  # only then can this user have labelled it before: a first label costs no extra statement
        old = session.execute(sa.select(_A.c.value).where(_A.c.item_id == item_id, _A.c.user_id == user_id)).scalar_one_or_none()
    if old is not None and old != label:
        _add_revision(session, project, item_id, user_id, RevisionKind.edit, old, label, changed_by=user_id, now=now)
    if old != label and row.hooked:  # a new or changed label is announced to the project's webhooks (the same label again is not)
        _announce(session, project, row, label, old, now)
    if session.get_bind().dialect.name == "postgresql":  # the same two writes in one statement: one round trip
        session.connection().execute(_PG_SUBMIT, {"project_id": project.id, "item_id": item_id, "user_id": user_id, "value": label,
                                                  "time_taken": time_taken, "now": now, "k": project.annotations_per_item})
        return
    stmt = _insert(session)(_A).values(project_id=project.id, item_id=item_id, user_id=user_id, value=label,
                                       time_taken=time_taken, created_at=now)
    session.execute(stmt.on_conflict_do_update(
        index_elements=["item_id", "user_id"],
        set_={"value": stmt.excluded.value, "time_taken": stmt.excluded.time_taken, "created_at": stmt.excluded.created_at},
    ))
    count = sa.select(sa.func.count()).select_from(_A).where(_A.c.item_id == item_id).scalar_subquery()
    ours = _I.c.leased_by == user_id
    session.execute(
        sa.update(_I).where(_I.c.id == item_id).values(
            n_annotations=count,
            done=count >= project.annotations_per_item,
            leased_by=sa.case((ours, None), else_=_I.c.leased_by),
            leased_at=sa.case((ours, None), else_=_I.c.leased_at),
            lease_expires_at=sa.case((ours, None), else_=_I.c.lease_expires_at),
        )
    )


def _announce(session: Session, project: Project, row: Any, label: str, old: str | None, now: dt.datetime) -> None:
    """The submit's webhook events into the outbox, in this transaction: one statement, run only when the project has
    a hook (``row.hooked``). ``row`` is the locked item as it was before this label: its count says whether the label completes it."""
    count = row.n_annotations + (old is None)  # the user's annotation is new, or replaces their own
    others_left = sa.exists().where(_I.c.project_id == project.id, _NOT_DONE, _I.c.id != row.id)
    webhook_events.enqueue_submit(session, project, item_id=row.id, external_id=row.external_id, username=row.user_found, label=label,
                                  previous=old, completed=row.n_annotations < project.annotations_per_item <= count,
                                  rest_done=~others_left, now=now)


def submit_and_claim_next(session: Session, project: Project, user_id: int, item_id: int, value: Any, *,
                          time_taken: float | None = None, now: dt.datetime | None = None) -> Task | None:
    """Submit a label and lease the next item, in one transaction."""
    now = now or utcnow()
    submit(session, project, user_id, item_id, value, time_taken=time_taken, now=now)
    return claim_next(session, project, user_id, now=now, resume=False)


def skip(session: Session, project: Project, user_id: int, item_id: int) -> None:
    """Pass over an item: it is released at once and not shown to this user again."""
    item_id, user_id = _check_id(item_id, "item"), _check_id(user_id, "user")
    _lock_item(session, project, item_id, user_id)
    session.execute(_insert(session)(_S).values(item_id=item_id, user_id=user_id, created_at=utcnow())
                    .on_conflict_do_nothing(index_elements=["item_id", "user_id"]))
    release(session, project, user_id, item_id)


def release(session: Session, project: Project, user_id: int, item_id: int | None = None) -> int:
    """End ``user_id``'s leases in the project (or on one item); returns how many."""
    user_id = _check_id(user_id, "user")
    item_id = None if item_id is None else _check_id(item_id, "item")
    stmt = sa.update(_I).where(_I.c.project_id == project.id, _I.c.leased_by == user_id)
    if item_id is not None:
        stmt = stmt.where(_I.c.id == item_id)
    return session.execute(stmt.values(leased_by=None, leased_at=None, lease_expires_at=None)).rowcount


def release_expired_leases(session: Session, project_id: int | None = None, *, now: dt.datetime | None = None) -> int:
    """Clear leases that have run out (claims treat them as free anyway); returns how many."""
    stmt = sa.update(_I).where(_I.c.leased_by.is_not(None), _I.c.lease_expires_at < (now or utcnow()))
    if project_id is not None:
        stmt = stmt.where(_I.c.project_id == project_id)
    return session.execute(stmt.values(leased_by=None, leased_at=None, lease_expires_at=None)).rowcount


def undo(session: Session, project: Project, user_id: int, *, now: dt.datetime | None = None) -> Task | None:
    """Delete ``user_id``'s most recent annotation in the project and lease that item back to them.

    Returns None when the user has nothing to undo. Raises
    :class:`ConflictError` (and changes nothing) if another labeller holds
    the item right now. The removed label is kept in the item's history (an
    ``undo`` revision).
    """
    user_id = _check_id(user_id, "user")
    now = now or utcnow()
    last = session.execute(
        sa.select(_A.c.id, _A.c.item_id).where(_A.c.project_id == project.id, _A.c.user_id == user_id)
        .order_by(_A.c.created_at.desc(), _A.c.id.desc()).limit(1)
    ).first()
    if last is None:
        return None
    row = _lock_item(session, project, last.item_id)
    if row.leased_by not in (None, user_id):
        holder = session.execute(sa.select(_I.c.lease_expires_at).where(_I.c.id == last.item_id)).scalar_one()
        if holder is not None and holder >= now:
            raise ConflictError(f"item {last.item_id} is being labelled by someone else right now; undo it once they are done")
    removed = session.execute(sa.delete(_A).where(_A.c.id == last.id).returning(_A.c.value)).scalar_one_or_none()
    if removed is not None:
        _add_revision(session, project, last.item_id, user_id, RevisionKind.undo, removed, None, changed_by=user_id, now=now)
    release(session, project, user_id)
    count = sa.select(sa.func.count()).select_from(_A).where(_A.c.item_id == last.item_id).scalar_subquery()
    row = session.execute(
        sa.update(_I).where(_I.c.id == last.item_id)
        .values(n_annotations=count, done=count >= project.annotations_per_item, leased_by=user_id, leased_at=now,
                lease_expires_at=now + dt.timedelta(seconds=project.lease_seconds))
        .returning(*_RETURNING)
    ).first()
    return _task(row)


# --------------------------------------------------------------------------- one action, one entry point


class Action(str, enum.Enum):
    """What a labeller does: every front end names its action with one of these."""

    claim = "claim"  # show me an item (the one I hold, else the next)
    submit = "submit"  # store my label for the item, then the next item
    skip = "skip"  # pass over the item (never shown to me again), then the next item
    undo = "undo"  # take back my last label and show that item again
    release = "release"  # give back what I hold (leaving the page); no next item


@dataclass(frozen=True)
class Outcome:
    """The result of :func:`act`: the item to show now (None when nothing is left), and for an undo whether
    there was a label to take back."""

    task: Task | None
    undone: bool = False


def act(session: Session, project: Project, user_id: int, action: Action | str, *, item_id: int | None = None,
        value: Any = None, time_taken: float | None = None, now: dt.datetime | None = None, resume: bool = True) -> Outcome:
    """Carry out one labeller action and hand back the item to show next, in the caller's transaction.

    Every front end (the Label page, the notebook widget, the simulator, the
    HTTP layer) calls this, so "submit, then the next item" is composed once.
    The next item comes from a *resuming* claim: if a lost connection makes
    the caller run the whole transaction again (:func:`superintendent.store.db.run_transaction`),
    a submit is an upsert per (item, user) and the claim hands back the item the
    first try leased, so a claim, submit or skip stores nothing twice and leases
    no second item. An undo is not safe to repeat that way (a second run takes
    back one more label): see :func:`last_annotation_id`.

    ``resume=False`` leaves out the look for an item the user holds already (one
    statement less per label). Only a caller that knows it holds nothing else may
    pass it, such as the first try of a submit or skip of the one item it holds;
    a try that may follow a committed one must resume.

    Before anything but a release, the user's right to work here is read afresh
    (:func:`~superintendent.queue.members.check_may_work_in`): a user deactivated,
    or taken off the project, a moment ago stores nothing (:class:`NotAllowedError`).
    """
    action = Action(action)
    now = now or utcnow()
    if action in (Action.submit, Action.skip) and item_id is None:
        raise ValidationError(f"{action.value} needs the item's id")
    user_id = _check_id(user_id, "user")
    item_id = None if item_id is None else _check_id(item_id, "item")
    if action is not Action.release:  # giving an item back is always allowed; anything else needs the right now
        check_may_work_in(session, user_id, project.id)
    if action is Action.submit:
        submit(session, project, user_id, item_id, value, time_taken=time_taken, now=now)
    elif action is Action.skip:
        skip(session, project, user_id, item_id)
    elif action is Action.undo:
        task = undo(session, project, user_id, now=now)
        if task is not None:
            return Outcome(task, undone=True)
    elif action is Action.release:
        release(session, project, user_id, item_id)
        return Outcome(None)
    return Outcome(claim_next(session, project, user_id, now=now, resume=resume))


def last_annotation_id(session: Session, project: Project, user_id: int) -> int | None:
    """The id of ``user_id``'s most recent annotation in the project (what :func:`undo` would take back)."""
    user_id = _check_id(user_id, "user")
    return session.execute(
        sa.select(_A.c.id).where(_A.c.project_id == project.id, _A.c.user_id == user_id)
        .order_by(_A.c.created_at.desc(), _A.c.id.desc()).limit(1)
    ).scalar_one_or_none()


def annotation_exists(session: Session, annotation_id: int) -> bool:
    """Whether an annotation is still stored (after an undo whose commit may or may not have landed)."""
    return session.execute(sa.select(_A.c.id).where(_A.c.id == annotation_id)).first() is not None
