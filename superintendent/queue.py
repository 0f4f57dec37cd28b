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
from superintendent.auth import IMPORT_USER, ensure_user
from superintendent.store.db import session_scope
from superintendent.store.models import Annotation, Item, Project, Role, Skip, User, utcnow
from superintendent.validation import (
    ConflictError,
    NotFoundError,
    ValidationError,
    check_label,
    check_project_settings,
    split_labels,
)

_I = Item.__table__
_A = Annotation.__table__
_S = Skip.__table__
_U = User.__table__
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
                hint=None if row.hint is None else serialization.loads(row.hint), hint_confidence=row.hint_confidence)


_RETURNING = (_I.c.id, _I.c.project_id, _I.c.external_id, _I.c.data, _I.c.priority, _I.c.lease_expires_at, _I.c.file_path,
              _I.c.hint, _I.c.hint_confidence)


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


def _candidate(project: Project, user_id: int, now: dt.datetime, *, skip_locked: bool = True) -> sa.Select:
    """The next free item for ``user_id``: one seek along ``ix_item_queue``."""
    return (
        sa.select(_I.c.id)
        .where(
            _I.c.project_id == project.id,
            _NOT_DONE,
            _free(now),
            ~sa.exists().where(_A.c.item_id == _I.c.id, _A.c.user_id == user_id),
            ~sa.exists().where(_S.c.item_id == _I.c.id, _S.c.user_id == user_id),
        )
        .order_by(_I.c.priority, _I.c.id)
        .limit(1)
        .with_for_update(skip_locked=skip_locked)
    )


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
    candidate = _candidate(project, user_id, now, skip_locked=skip_locked).scalar_subquery()
    return session.execute(
        sa.update(_I)
        .where(_I.c.id == candidate, _free(now), _NOT_DONE)
        .values(leased_by=user_id, leased_at=now, lease_expires_at=now + dt.timedelta(seconds=project.lease_seconds))
        .returning(*_RETURNING)
    ).first()


def _lock_item(session: Session, project: Project, item_id: int) -> Any:
    row = session.execute(
        sa.select(_I.c.id, _I.c.project_id, _I.c.leased_by, _I.c.leased_at).where(_I.c.id == item_id).with_for_update()
    ).first()
    if row is None or row.project_id != project.id:
        raise NotFoundError(f"item {item_id} is not in project {project.name!r}")
    return row


def submit(session: Session, project: Project, user_id: int, item_id: int, value: Any, *,
           time_taken: float | None = None, now: dt.datetime | None = None) -> None:
    """Store ``user_id``'s label for ``item_id`` and end their lease, in the caller's transaction.

    The label is checked against the project's options first (nothing is
    written if it is not one). A submit after the lease expired is kept.
    """
    label = serialization.dumps(_validate(project, value))
    now = now or utcnow()
    row = _lock_item(session, project, item_id)  # serialises concurrent submits of one item
    if time_taken is None and row.leased_by == user_id and row.leased_at is not None:
        time_taken = max(0.0, (now - row.leased_at).total_seconds())
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
    the item right now.
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
    session.execute(sa.delete(_A).where(_A.c.id == last.id))
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


def labelled_data(session: Session, project: Project) -> LabelledData:
    """Features and consensus labels of the project's finished items, in item order."""
    grouped = _annotations_by_item(session, project, only_done=True)
    ids, features, labels, ties = [], [], [], []
    for item_id, data in session.execute(
        sa.select(_I.c.id, _I.c.data).where(_I.c.project_id == project.id, _I.c.done).order_by(_I.c.id)
    ):
        if item_id not in grouped:
            continue
        label, tie = consensus(grouped[item_id], project.label_mode)
        ids.append(item_id)
        features.append(serialization.loads(data))
        labels.append(label)
        if tie:
            ties.append(item_id)
    return LabelledData(ids, features, labels, ties)


def all_labels(session: Session, project: Project) -> list[Any]:
    """One entry per item in the order added: its consensus label, or None while unfinished."""
    grouped = _annotations_by_item(session, project, only_done=True)
    ids = session.execute(sa.select(_I.c.id).where(_I.c.project_id == project.id).order_by(_I.c.id)).scalars()
    return [consensus(grouped[i], project.label_mode)[0] if i in grouped else None for i in ids]


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


def reprioritise(engine: Engine, project: Project, item_ids: Sequence[int] | np.ndarray, priorities: Sequence[float] | np.ndarray,
                 *, hints: Sequence[Any] | None = None, confidences: Sequence[float] | np.ndarray | None = None,
                 chunk_size: int = 20_000) -> int:
    """Bulk-rewrite priorities (lower is served first), and the model's hints if given; returns rows written.

    Each chunk is its own short transaction: labellers never wait long, and
    an interrupted rewrite leaves every item reachable (only the order is
    part old, part new). Nothing but ``priority`` (and ``hint``,
    ``hint_confidence``) is touched. On PostgreSQL a chunk skips rows a
    labeller's transaction holds locked at that instant (they keep their old
    priority until the next rewrite), so a rewrite never waits on labellers.
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
    hint_text = [serialization.dumps(h) for h in hints] if with_hints else []
    conf = np.asarray(confidences, dtype=np.float64).tolist() if with_hints else []
    changed = 0
    for start in range(0, len(ids), chunk_size):
        stop = start + chunk_size
        chunk_ids, chunk_prio = ids[start:stop].tolist(), prio[start:stop].tolist()
        with session_scope(engine) as session:
            if engine.dialect.name == "postgresql":
                if with_hints:
                    sql = ("UPDATE sp_item AS i SET priority = u.p, hint = u.h, hint_confidence = u.c FROM unnest("
                           "CAST(:ids AS bigint[]), CAST(:ps AS double precision[]), CAST(:hs AS text[]), CAST(:cs AS double precision[])) "
                           "AS u(id, p, h, c) WHERE i.id = u.id AND i.project_id = :project AND i.id IN " + _UNLOCKED)
                    params = {"ids": chunk_ids, "ps": chunk_prio, "hs": hint_text[start:stop], "cs": conf[start:stop], "project": project.id}
                else:
                    sql = ("UPDATE sp_item AS i SET priority = u.p FROM unnest(CAST(:ids AS bigint[]), CAST(:ps AS double precision[])) "
                           "AS u(id, p) WHERE i.id = u.id AND i.project_id = :project AND i.id IN " + _UNLOCKED)
                    params = {"ids": chunk_ids, "ps": chunk_prio, "project": project.id}
                changed += session.execute(sa.text(sql), params).rowcount
            else:
                conn = session.connection()
                if with_hints:
                    rows = list(zip(chunk_prio, hint_text[start:stop], conf[start:stop], chunk_ids, [project.id] * len(chunk_ids)))
                    sql = "UPDATE sp_item SET priority = ?, hint = ?, hint_confidence = ? WHERE id = ? AND project_id = ?"
                else:
                    rows = [(p, i, project.id) for i, p in zip(chunk_ids, chunk_prio)]
                    sql = "UPDATE sp_item SET priority = ? WHERE id = ? AND project_id = ?"
                changed += conn.exec_driver_sql(sql, rows).rowcount
    return changed


def progress_counts(session: Session, project: Project) -> tuple[int, int]:
    """(items, finished items): the figures the Label page shows on every item.

    Two index-only counts (all items; unfinished items on the partial queue
    index), never a scan of the item rows and their payloads.
    """
    total = _count_items(session, project.id)
    remaining = session.execute(sa.select(sa.func.count()).select_from(_I).where(_I.c.project_id == project.id, _NOT_DONE)).scalar_one()
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
