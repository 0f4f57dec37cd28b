"""The labelling queue: the one place with concurrency logic.

Every statement that reads or changes queue state (items, leases,
annotations, skips, priorities) lives here. Functions take a SQLModel
``Session`` and only flush: the caller owns the transaction
(:func:`superintendent.store.session_scope`), so "submit and claim next" is
one atomic transaction and one round trip per label.

The claim path
--------------
Queue state sits on the item row: ``priority``, ``done`` (it has all the
annotations it needs), ``leased_by`` / ``lease_expires_at``. One statement
claims::

    UPDATE sp_item SET leased_by = :user, lease_expires_at = :until
    WHERE id = (SELECT id FROM sp_item
                WHERE project_id = :p AND NOT done AND <lease free or expired>
                  AND <not annotated by :user> AND <not skipped by :user>
                ORDER BY priority, id LIMIT 1
                FOR UPDATE SKIP LOCKED)          -- PostgreSQL only
      AND <lease free or expired> AND NOT done
    RETURNING id, ...

The sub-select walks the partial index ``ix_item_queue (project_id,
priority, id) WHERE NOT done`` in order and stops at the first free row: no
scan of the queue, no count. On PostgreSQL, ``SKIP LOCKED`` lets concurrent
claimers pass over each other's rows instead of waiting or taking the same
one; the repeated "still free" test in the outer ``WHERE`` re-checks the row
after the lock. On SQLite, writing transactions start with ``BEGIN
IMMEDIATE`` (see :mod:`superintendent.store.db`), so claims are serialised.

Semantics
---------
* An item is served until it has ``annotations_per_item`` annotations from
  as many different users; never to two users at the same time; never again
  to a user who annotated or skipped it.
* A lease expires after the project's ``lease_seconds``; the item is then
  free again (no sweeper needed; :func:`release_expired_leases` tidies up).
* A submit is kept even when its lease expired or another user now holds
  the item: a label is never thrown away. Submitting twice changes the label.
* Undo deletes the user's most recent annotation in the project and hands
  that item back to them.
* :func:`reprioritise` rewrites priorities in short chunked transactions,
  so labellers are never blocked for long, and touches nothing else.
"""

from __future__ import annotations

import csv
import datetime as dt
import enum
import hashlib
import io
from collections import Counter, defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session

from superintendent import serialization
from superintendent.auth import IMPORT_USER, can, ensure_user
from superintendent.store.db import session_scope
from superintendent.store.models import Annotation, AnnotationRevision, Item, Project, Role, Skip, User, utcnow
from superintendent.validation import (
    ConflictError,
    NotFoundError,
    SuperintendentError,
    ValidationError,
    check_label,
    check_project_settings,
    split_labels,
)

_I = Item.__table__
_A = Annotation.__table__
_S = Skip.__table__
_U = User.__table__
_R = AnnotationRevision.__table__
# Matches the partial index's predicate word for word, so SQLite uses it too.
_NOT_DONE = sa.text("NOT sp_item.done")


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


@dataclass(frozen=True)
class AddResult:
    added: int
    already_present: int
    labelled: int


@dataclass(frozen=True)
class Progress:
    total: int
    labelled: int
    n_annotations: int
    per_class: dict[str, int] = field(default_factory=dict)
    per_user: dict[str, int] = field(default_factory=dict)

    @property
    def fraction(self) -> float:
        return self.labelled / self.total if self.total else 0.0

    @property
    def remaining(self) -> int:
        return self.total - self.labelled


@dataclass(frozen=True)
class LabelledData:
    """Labelled items of a project: consensus label per item, in item order."""

    item_ids: list[int]
    features: list[Any]
    labels: list[Any]
    ties: list[int] = field(default_factory=list)


# --------------------------------------------------------------------------- projects


def create_project(session: Session, name: str, **settings: Any) -> Project:
    """Create a project; raises :class:`ValidationError` for bad settings or a taken name."""
    checked_keys = {"options", "label_mode", "acquisition_function", "shuffle_prop", "annotations_per_item",
                    "lease_seconds", "retrain_interval_seconds", "retrain_interval_n_labels"}
    checked = check_project_settings(name=name, **{k: v for k, v in settings.items() if k in checked_keys})
    if session.execute(sa.select(Project.id).where(Project.name == checked["name"])).first() is not None:
        raise ValidationError(f"a project named {checked['name']!r} exists already; pick another name")
    other = {k: v for k, v in settings.items() if k not in checked_keys}
    unknown = set(other) - set(Project.model_fields)
    if unknown:
        raise ValidationError(f"unknown project settings: {', '.join(sorted(unknown))}")
    project = Project(**checked, **other)
    session.add(project)
    session.flush()
    return project


def get_project(session: Session, project: str | int) -> Project:
    """A project by name or id; :class:`NotFoundError` if there is none."""
    if isinstance(project, int):
        found = session.get(Project, project)
    else:
        found = session.execute(sa.select(Project).where(Project.name == project)).scalar_one_or_none()
    if found is None:
        names = session.execute(sa.select(Project.name).order_by(Project.name).limit(20)).scalars().all()
        raise NotFoundError(f"no project {project!r}; projects: {', '.join(names) or 'none yet'}")
    return found


def list_projects(session: Session) -> list[Project]:
    return list(session.execute(sa.select(Project).order_by(Project.name)).scalars())


def _validate(project: Project, value: Any) -> Any:
    return check_label(value, options=project.options, label_mode=project.label_mode,
                       allow_free_text=project.allow_free_text, project=project.name)


def _insert(session: Session):  # noqa: ANN202 - the dialect's INSERT with ON CONFLICT
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert


# --------------------------------------------------------------------------- adding items


def content_id(payload: str) -> str:
    """The default external id of an item: a hash of its serialised content."""
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:32]


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
        seen: Counter[str] = Counter()
        ids: list[str] = []
        for p in payloads:
            h = content_id(p)
            seen[h] += 1
            ids.append(h if seen[h] == 1 else f"{h}#{seen[h]}")
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


# --------------------------------------------------------------------------- claiming


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
        stmt = (sa.update(_I).where(_I.c.id == candidate, _free(now), _NOT_DONE)
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
    back first (a reloaded page does not strand a lease).
    """
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
    return None if row is None else _task(row)


def _lease_next(session: Session, project: Project, user_id: int, now: dt.datetime, *, skip_locked: bool) -> Any:
    return session.connection().execute(_claim_statement(skip_locked), {
        "claim_project": project.id, "claim_user": user_id, "claim_now": now,
        "claim_until": now + dt.timedelta(seconds=project.lease_seconds)}).first()


_LOCK_ITEM = (sa.select(_I.c.id, _I.c.project_id, _I.c.leased_by, _I.c.leased_at, _I.c.n_annotations)
              .where(_I.c.id == sa.bindparam("lock_item_id", type_=_I.c.id.type)).with_for_update())


def _lock_item(session: Session, project: Project, item_id: int) -> Any:
    row = session.connection().execute(_LOCK_ITEM, {"lock_item_id": item_id}).first()
    if row is None or row.project_id != project.id:
        raise NotFoundError(f"item {item_id} is not in project {project.name!r}")
    return row


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
    label = serialization.dumps(_validate(project, value))
    now = now or utcnow()
    row = _lock_item(session, project, item_id)  # serialises concurrent submits of one item
    if time_taken is None and row.leased_by == user_id and row.leased_at is not None:
        time_taken = max(0.0, (now - row.leased_at).total_seconds())
    old = None
    if row.n_annotations:  # only then can this user have labelled it before: a first label costs no extra statement
        old = session.execute(sa.select(_A.c.value).where(_A.c.item_id == item_id, _A.c.user_id == user_id)).scalar_one_or_none()
    if old is not None and old != label:
        _add_revision(session, project, item_id, user_id, RevisionKind.edit, old, label, changed_by=user_id, now=now)
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


def submit_and_claim_next(session: Session, project: Project, user_id: int, item_id: int, value: Any, *,
                          time_taken: float | None = None, now: dt.datetime | None = None) -> Task | None:
    """Submit a label and lease the next item, in one transaction."""
    now = now or utcnow()
    submit(session, project, user_id, item_id, value, time_taken=time_taken, now=now)
    return claim_next(session, project, user_id, now=now, resume=False)


def skip(session: Session, project: Project, user_id: int, item_id: int) -> None:
    """Pass over an item: it is released at once and not shown to this user again."""
    _lock_item(session, project, item_id)
    session.execute(_insert(session)(_S).values(item_id=item_id, user_id=user_id, created_at=utcnow())
                    .on_conflict_do_nothing(index_elements=["item_id", "user_id"]))
    release(session, project, user_id, item_id)


def release(session: Session, project: Project, user_id: int, item_id: int | None = None) -> int:
    """End ``user_id``'s leases in the project (or on one item); returns how many."""
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


# --------------------------------------------------------------------------- reading results


def progress(session: Session, project: Project) -> Progress:
    """How far a project is: items, labelled items, annotations per class and per user (never cached)."""
    total, labelled = progress_counts(session, project)
    per_class: Counter[str] = Counter()
    for value, n in session.execute(sa.select(_A.c.value, sa.func.count()).where(_A.c.project_id == project.id).group_by(_A.c.value)):
        label = serialization.loads(value)
        for one in (label if isinstance(label, list) else [label]):
            per_class[str(one)] += n
    per_user = {name: n for name, n in session.execute(
        sa.select(_U.c.username, sa.func.count()).select_from(_A.join(_U, _A.c.user_id == _U.c.id))
        .where(_A.c.project_id == project.id).group_by(_U.c.username).order_by(_U.c.username)
    )}
    return Progress(total=int(total), labelled=int(labelled), n_annotations=sum(per_user.values()),
                    per_class=dict(sorted(per_class.items())), per_user=per_user)


def consensus(values: Sequence[Any], label_mode: str = "single") -> tuple[Any, bool]:
    """The majority label of several annotations, and whether there was a tie.

    Single-label: the most frequent label; a tie goes to the label given
    first. Multi-label: every label chosen by more than half of the
    annotators (a label chosen by exactly half counts as a tie and is left out).
    """
    if label_mode == "multi":
        counts: Counter[Any] = Counter(lab for v in values for lab in v)
        half = len(values) / 2
        chosen = [lab for lab in dict.fromkeys(lab for v in values for lab in v) if counts[lab] > half]
        return chosen, any(counts[lab] == half for lab in counts)
    keys = [serialization.dumps(v) for v in values]
    counts = Counter(keys)
    best = max(counts.values())
    winners = [k for k in dict.fromkeys(keys) if counts[k] == best]
    return serialization.loads(winners[0]), len(winners) > 1


def _annotations_by_item(session: Session, project: Project, only_done: bool) -> dict[int, list[Any]]:
    stmt = (sa.select(_A.c.item_id, _A.c.value).select_from(_A.join(_I, _A.c.item_id == _I.c.id))
            .where(_A.c.project_id == project.id).order_by(_A.c.item_id, _A.c.created_at, _A.c.id))
    if only_done:
        stmt = stmt.where(_I.c.done)
    grouped: dict[int, list[Any]] = defaultdict(list)
    for item_id, value in session.execute(stmt):
        grouped[item_id].append(serialization.loads(value))
    return grouped


def final_label(review_value: str | None, values: Sequence[Any], label_mode: str = "single") -> tuple[Any, bool]:
    """An item's label for training and export, and whether it is a tie.

    A reviewer's correction (``review_value``, JSON text) wins and is never a
    tie; otherwise the :func:`consensus` of the annotations (None, no tie, if
    there are none).
    """
    if review_value is not None:
        return serialization.loads(review_value), False
    if not values:
        return None, False
    return consensus(values, label_mode)


def labelled_data(session: Session, project: Project) -> LabelledData:
    """Features and labels of the project's finished items, in item order: a reviewed label, else the consensus."""
    grouped = _annotations_by_item(session, project, only_done=True)
    ids, features, labels, ties = [], [], [], []
    for item_id, data, review_value in session.execute(
        sa.select(_I.c.id, _I.c.data, _I.c.review_value).where(_I.c.project_id == project.id, _I.c.done).order_by(_I.c.id)
    ):
        if item_id not in grouped and review_value is None:
            continue
        label, tie = final_label(review_value, grouped.get(item_id, []), project.label_mode)
        ids.append(item_id)
        features.append(serialization.loads(data))
        labels.append(label)
        if tie:
            ties.append(item_id)
    return LabelledData(ids, features, labels, ties)


def all_labels(session: Session, project: Project) -> list[Any]:
    """One entry per item in the order added: its reviewed or consensus label, or None while unfinished."""
    grouped = _annotations_by_item(session, project, only_done=True)
    rows = session.execute(sa.select(_I.c.id, _I.c.done, _I.c.review_value).where(_I.c.project_id == project.id).order_by(_I.c.id))
    return [final_label(review, grouped.get(i, []), project.label_mode)[0] if done else None for i, done, review in rows]


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


# --------------------------------------------------------------------------- priorities


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
    ids = np.asarray(item_ids, dtype=np.int64)
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


def progress_counts(session: Session, project: Project | int) -> tuple[int, int]:
    """(items, finished items) of a project (or project id): the figures the Label page shows.

    Two index-only counts (all items; unfinished items on the partial queue
    index), never a scan of the item rows and their payloads.
    """
    project_id = project if isinstance(project, int) else project.id
    total = _count_items(session, project_id)
    remaining = session.execute(sa.select(sa.func.count()).select_from(_I).where(_I.c.project_id == project_id, _NOT_DONE)).scalar_one()
    return int(total), int(total - remaining)


@dataclass(frozen=True)
class AnnotationRow:
    item_id: int
    external_id: str
    username: str
    label: Any
    created_at: dt.datetime
    time_taken: float | None


def annotation_log(session: Session, project: Project, *, user_id: int | None = None, include_import: bool = True) -> list[AnnotationRow]:
    """Every annotation of a project (who labelled which item what, when), oldest first."""
    stmt = (sa.select(_A.c.item_id, _I.c.external_id, _U.c.username, _A.c.value, _A.c.created_at, _A.c.time_taken)
            .select_from(_A.join(_I, _A.c.item_id == _I.c.id).join(_U, _A.c.user_id == _U.c.id))
            .where(_A.c.project_id == project.id).order_by(_A.c.created_at, _A.c.id))
    if user_id is not None:
        stmt = stmt.where(_A.c.user_id == user_id)
    if not include_import:
        stmt = stmt.where(_U.c.username != IMPORT_USER)
    return [AnnotationRow(r.item_id, r.external_id, r.username, serialization.loads(r.value), r.created_at, r.time_taken)
            for r in session.execute(stmt)]


def update_project(session: Session, project: Project, **changes: Any) -> Project:
    """Change a project's settings (checked as on creation); a new overlap re-marks finished items."""
    current = {k: getattr(project, k) for k in ("name", "options", "label_mode", "acquisition_function", "shuffle_prop",
                                                 "annotations_per_item", "lease_seconds", "retrain_interval_seconds",
                                                 "retrain_interval_n_labels")}
    checked_keys = set(current)
    merged = {**current, **{k: v for k, v in changes.items() if k in checked_keys}}
    checked = check_project_settings(**merged)
    if checked["name"] != project.name and session.execute(sa.select(Project.id).where(Project.name == checked["name"])).first():
        raise ValidationError(f"a project named {checked['name']!r} exists already; pick another name")
    other = {k: v for k, v in changes.items() if k not in checked_keys}
    unknown = set(other) - set(Project.model_fields)
    if unknown:
        raise ValidationError(f"unknown project settings: {', '.join(sorted(unknown))}")
    old_k = project.annotations_per_item
    for key, value in {**checked, **other}.items():
        setattr(project, key, value)
    session.add(project)
    session.flush()
    if project.annotations_per_item != old_k:
        session.execute(sa.update(_I).where(_I.c.project_id == project.id).values(done=_I.c.n_annotations >= project.annotations_per_item))
    return project


# --------------------------------------------------------------------------- history, own labels, review


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
    stmt = (sa.select(_A.c.item_id, _I.c.external_id, _U.c.username, _A.c.value, _A.c.created_at, _A.c.time_taken)
            .select_from(_A.join(_I, _A.c.item_id == _I.c.id).join(_U, _A.c.user_id == _U.c.id))
            .where(_A.c.project_id == project.id, _A.c.user_id == user_id)
            .order_by(_A.c.created_at.desc(), _A.c.id.desc()).limit(limit))
    return [AnnotationRow(r.item_id, r.external_id, r.username, serialization.loads(r.value), r.created_at, r.time_taken)
            for r in session.execute(stmt)]


def item_data(session: Session, project: Project, item_id: int) -> Any:
    """One item's payload (to show it again); :class:`NotFoundError` if it is not in the project."""
    row = session.execute(sa.select(_I.c.project_id, _I.c.data).where(_I.c.id == item_id)).first()
    if row is None or row.project_id != project.id:
        raise NotFoundError(f"item {item_id} is not in project {project.name!r}")
    return serialization.loads(row.data)


def change_own_label(session: Session, project: Project, user_id: int, item_id: int, value: Any, *,
                     now: dt.datetime | None = None) -> bool:
    """Change ``user_id``'s existing label of an item; the old one is kept in the history (``edit``).

    Returns False (and writes nothing) when the label is unchanged. The
    label's time stays that of the first labelling; the change has its own
    time in the history. Raises :class:`NotFoundError` if the user has not
    labelled the item, :class:`ValidationError` for a label that is not an option.
    """
    label = serialization.dumps(_validate(project, value))
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


def _check_reviewer(session: Session, user_id: int) -> None:
    """The account is read afresh: a role taken away a moment ago counts at once."""
    row = session.execute(sa.select(_U.c.role, _U.c.active).where(_U.c.id == user_id)).first()
    if row is None or not row.active or not can(row.role, "review"):
        raise NotAllowedError("only an admin or a reviewer may review labels; ask an admin for the reviewer role")


def set_review(session: Session, project: Project, reviewer_id: int, item_id: int, value: Any, *,
               now: dt.datetime | None = None) -> bool:
    """Set a finished item's corrected label (it then wins over the consensus); the change is kept in the history.

    Checked first, nothing written otherwise: the label (as in :func:`submit`),
    the reviewer's role (:class:`NotAllowedError`), the item (in the project,
    finished). Returns False when the item already had this reviewed label.
    """
    return _write_review(session, project, reviewer_id, item_id, serialization.dumps(_validate(project, value)), now or utcnow())


def clear_review(session: Session, project: Project, reviewer_id: int, item_id: int, *, now: dt.datetime | None = None) -> bool:
    """Remove an item's corrected label (the consensus counts again); kept in the history. False if there was none."""
    return _write_review(session, project, reviewer_id, item_id, None, now or utcnow())


def _write_review(session: Session, project: Project, reviewer_id: int, item_id: int, label: str | None, now: dt.datetime) -> bool:
    _check_reviewer(session, reviewer_id)
    row = session.execute(
        sa.select(_I.c.project_id, _I.c.done, _I.c.review_value).where(_I.c.id == item_id).with_for_update()
    ).first()  # the locked row's own columns are its latest version: concurrent reviews chain, none is lost
    if row is None or row.project_id != project.id:
        raise NotFoundError(f"item {item_id} is not in project {project.name!r}")
    if label is not None and not row.done:
        raise ValidationError(f"item {item_id} is not finished (it still needs labels); review it once it has all its annotations")
    if row.review_value == label:
        return False
    session.execute(sa.update(_I).where(_I.c.id == item_id).values(
        review_value=label, reviewed_by=None if label is None else reviewer_id, reviewed_at=None if label is None else now))
    _add_revision(session, project, item_id, None, RevisionKind.review, row.review_value, label, changed_by=reviewer_id, now=now)
    return True


@dataclass(frozen=True)
class LabelGiven:
    """One labeller's current label of an item."""

    user_id: int
    username: str
    label: Any
    created_at: dt.datetime
    time_taken: float | None


@dataclass(frozen=True)
class ReviewRow:
    """A finished item as the Review page lists it."""

    item_id: int
    external_id: str
    annotations: list[LabelGiven]
    consensus: Any
    tie: bool
    disagreement: bool
    reviewed: Any = None  # the corrected label, or None
    reviewed_by: str | None = None
    reviewed_at: dt.datetime | None = None

    @property
    def final(self) -> Any:
        """What training and export use: the corrected label, else the consensus."""
        return self.consensus if self.reviewed is None else self.reviewed


@dataclass(frozen=True)
class ReviewPage:
    rows: list[ReviewRow]
    next_after: int | None  # pass as ``after`` for the next page; None when this is the last


@dataclass(frozen=True)
class Revision:
    kind: str
    labeller: str | None  # whose label changed; None for the item's reviewed label
    old: Any
    new: Any
    changed_by: str | None
    changed_at: dt.datetime


@dataclass(frozen=True)
class ItemHistory(ReviewRow):
    data: Any = None
    done: bool = False
    revisions: list[Revision] = field(default_factory=list)


def labellers(session: Session, project: Project) -> list[tuple[int, str]]:
    """(id, user name) of everyone with a label in the project, by name."""
    users = sa.select(_A.c.user_id).where(_A.c.project_id == project.id).distinct().subquery()
    return [(r.id, r.username) for r in session.execute(
        sa.select(_U.c.id, _U.c.username).where(_U.c.id.in_(sa.select(users.c.user_id))).order_by(_U.c.username))]


def _given(session: Session, item_ids: Sequence[int]) -> dict[int, list[LabelGiven]]:
    out: dict[int, list[LabelGiven]] = defaultdict(list)
    if not item_ids:
        return out
    for r in session.execute(
        sa.select(_A.c.item_id, _A.c.user_id, _U.c.username, _A.c.value, _A.c.created_at, _A.c.time_taken)
        .select_from(_A.join(_U, _A.c.user_id == _U.c.id)).where(_A.c.item_id.in_(list(item_ids)))
        .order_by(_A.c.item_id, _A.c.created_at, _A.c.id)
    ):
        out[r.item_id].append(LabelGiven(r.user_id, r.username, serialization.loads(r.value), r.created_at, r.time_taken))
    return out


_REVIEWER = _U.alias("reviewer")
# The reviewer's name comes from a scalar sub-select, so it is read only for the rows a page returns.
_ITEM_FOR_REVIEW = (_I.c.id, _I.c.external_id, _I.c.review_value, _I.c.reviewed_at,
                    sa.select(_REVIEWER.c.username).where(_REVIEWER.c.id == _I.c.reviewed_by).scalar_subquery().label("reviewed_by_name"))


def _review_row(project: Project, item: Any, given: list[LabelGiven]) -> dict[str, Any]:
    values = [g.label for g in given]
    label, tie = consensus(values, project.label_mode) if values else (None, False)
    return dict(item_id=item.id, external_id=item.external_id, annotations=given, consensus=label, tie=tie,
                disagreement=len({serialization.dumps(v) for v in values}) > 1,
                reviewed=None if item.review_value is None else serialization.loads(item.review_value),
                reviewed_by=item.reviewed_by_name if item.review_value is not None else None, reviewed_at=item.reviewed_at)


def _has_label(row: ReviewRow, label: Any) -> bool:
    def holds(value: Any) -> bool:
        return label in value if isinstance(value, list) else value == label
    return any(holds(g.label) for g in row.annotations) or (row.reviewed is not None and holds(row.reviewed))


def review_items(session: Session, project: Project, *, label: Any = None, labeller_id: int | None = None,
                 disagreement: bool = False, ties: bool = False, unreviewed: bool = False,
                 after: int | None = None, limit: int = 50, newest_first: bool = True) -> ReviewPage:
    """One page of the project's finished items for review, by item id (newest first by default).

    Filters: ``label`` (some labeller, or the reviewer, gave it), ``labeller_id``
    (that user labelled the item), ``disagreement`` (the labels differ),
    ``ties`` (the consensus is a tie), ``unreviewed`` (no corrected label yet).
    Pages are keyset pages: pass the previous page's ``next_after`` as
    ``after``; each page reads only as far into the items as it needs.
    """
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= 1000:
        raise ValidationError(f"limit must be a whole number from 1 to 1000; got {limit!r}")
    if label is not None:
        label = _validate(project, [label] if project.label_mode == "multi" else label)
        label = label[0] if project.label_mode == "multi" else label
    # Items are read in id order along the primary key and stop at the page's end. On SQLite, "+ 0" keeps the
    # planner off the (project, external id) index, which would read every item of the project and sort them.
    in_project = (_I.c.project_id + 0 if session.get_bind().dialect.name == "sqlite" else _I.c.project_id) == project.id
    stmt = sa.select(*_ITEM_FOR_REVIEW).where(in_project, _I.c.done)
    annotated = sa.select(_A.c.item_id).where(_A.c.project_id == project.id)
    if unreviewed:
        stmt = stmt.where(_I.c.review_value.is_(None))
    if labeller_id is not None:
        stmt = stmt.where(_I.c.id.in_(annotated.where(_A.c.user_id == labeller_id)))
    if disagreement or ties:  # the labels differ (one aggregate over the project's annotations); ties are picked out below
        stmt = stmt.where(_I.c.id.in_(annotated.group_by(_A.c.item_id).having(sa.func.min(_A.c.value) != sa.func.max(_A.c.value))))
    if label is not None:
        text = serialization.dumps(label)
        if project.label_mode == "multi":  # a cheap pre-filter on the JSON text; the exact test is below
            stmt = stmt.where(sa.or_(_I.c.id.in_(annotated.where(_A.c.value.contains(text, autoescape=True))),
                                     _I.c.review_value.contains(text, autoescape=True)))
        else:
            stmt = stmt.where(sa.or_(_I.c.id.in_(annotated.where(_A.c.value == text)), _I.c.review_value == text))
    order = _I.c.id.desc() if newest_first else _I.c.id
    rows: list[ReviewRow] = []
    cursor = after
    batch = max(limit + 1, 100)
    while len(rows) <= limit:
        page = stmt
        if cursor is not None:
            page = page.where(_I.c.id < cursor if newest_first else _I.c.id > cursor)
        items = session.execute(page.order_by(order).limit(batch)).all()
        given = _given(session, [i.id for i in items])
        for item in items:
            row = ReviewRow(**_review_row(project, item, given.get(item.id, [])))
            if (ties and not row.tie) or (label is not None and not _has_label(row, label)):
                continue
            rows.append(row)
        if len(items) < batch:
            break
        cursor = items[-1].id
    more = len(rows) > limit
    rows = rows[:limit]
    return ReviewPage(rows, rows[-1].item_id if more else None)


def item_history(session: Session, project: Project, item_id: int) -> ItemHistory:
    """Everything about one item for review: its data, each labeller's label and time, consensus,
    corrected label, and every change in order (edits, undos, reviews)."""
    item = session.execute(
        sa.select(*_ITEM_FOR_REVIEW, _I.c.project_id, _I.c.data, _I.c.done).where(_I.c.id == item_id)
    ).first()
    if item is None or item.project_id != project.id:
        raise NotFoundError(f"item {item_id} is not in project {project.name!r}")
    labeller, changer = _U.alias("labeller"), _U.alias("changer")
    revisions = [
        Revision(r.kind, r.labeller, None if r.old_value is None else serialization.loads(r.old_value),
                 None if r.new_value is None else serialization.loads(r.new_value), r.changer, r.changed_at)
        for r in session.execute(
            sa.select(_R.c.kind, labeller.c.username.label("labeller"), _R.c.old_value, _R.c.new_value,
                      changer.c.username.label("changer"), _R.c.changed_at)
            .select_from(_R.outerjoin(labeller, labeller.c.id == _R.c.user_id).outerjoin(changer, changer.c.id == _R.c.changed_by))
            .where(_R.c.item_id == item_id).order_by(_R.c.changed_at, _R.c.id))
    ]
    return ItemHistory(**_review_row(project, item, _given(session, [item_id]).get(item_id, [])),
                       data=serialization.loads(item.data), done=bool(item.done), revisions=revisions)


@dataclass(frozen=True)
class FinalLabel:
    item_id: int
    external_id: str
    label: Any
    source: str  # "review" or "consensus"
    tie: bool
    reviewed_by: str | None
    reviewed_at: dt.datetime | None


def final_labels(session: Session, project: Project) -> list[FinalLabel]:
    """One row per finished item, in item order: the label training uses (reviewed, else consensus)."""
    grouped = _annotations_by_item(session, project, only_done=True)
    out = []
    for item in session.execute(sa.select(*_ITEM_FOR_REVIEW).where(_I.c.project_id == project.id, _I.c.done).order_by(_I.c.id)):
        if item.id not in grouped and item.review_value is None:
            continue
        label, tie = final_label(item.review_value, grouped.get(item.id, []), project.label_mode)
        reviewed = item.review_value is not None
        out.append(FinalLabel(item.id, item.external_id, label, "review" if reviewed else "consensus", tie,
                              item.reviewed_by_name if reviewed else None, item.reviewed_at if reviewed else None))
    return out


# --------------------------------------------------------------------------- model guesses (stopping signal)


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


# --------------------------------------------------------------------------- bulk annotations (imports)


@dataclass(frozen=True)
class ImportedLabel:
    """One annotation to store in bulk: ``user_id``'s label ``value`` for ``item_id``."""

    item_id: int
    user_id: int
    value: Any
    created_at: dt.datetime | None = None
    time_taken: float | None = None


def import_annotations(session: Session, project: Project, labels: Sequence[ImportedLabel], *,
                       chunk_size: int = 5000, now: dt.datetime | None = None) -> int:
    """Store many annotations at once (an import), in the caller's transaction; returns how many.

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
                     "value": serialization.dumps(_validate(project, label.value)), "time_taken": label.time_taken,
                     "created_at": label.created_at or now})
    # One user's two labels for one item in the same import: the later one is kept, as a second submit would.
    rows = list({(r["item_id"], r["user_id"]): r for r in rows}.values())
    insert = _insert(session)
    for start in range(0, len(rows), chunk_size):
        chunk = rows[start:start + chunk_size]
        item_ids = sorted({r["item_id"] for r in chunk})
        known = session.execute(sa.select(_I.c.id).where(_I.c.project_id == project.id, _I.c.id.in_(item_ids))).scalars().all()
        missing = set(item_ids) - set(known)
        if missing:
            raise NotFoundError(f"no item with id {min(missing)} in project {project.name!r}")
        old = {(i, u): v for i, u, v in session.execute(
            sa.select(_A.c.item_id, _A.c.user_id, _A.c.value).where(_A.c.item_id.in_(item_ids)))}
        for row in chunk:
            before = old.get((row["item_id"], row["user_id"]))
            if before is not None and before != row["value"]:
                _add_revision(session, project, row["item_id"], row["user_id"], RevisionKind.edit, before, row["value"],
                              changed_by=row["user_id"], now=now)
        stmt = insert(_A)
        session.execute(stmt.on_conflict_do_update(
            index_elements=["item_id", "user_id"],
            set_={"value": stmt.excluded.value, "time_taken": stmt.excluded.time_taken, "created_at": stmt.excluded.created_at}),
            chunk)
        _recount(session, project, item_ids)
    session.flush()
    return len(rows)
