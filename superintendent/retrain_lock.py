"""One retrain per project at a time, across processes and hosts: :func:`retrain_lock`
(and :func:`retrain_lock_held`, which only looks).

* PostgreSQL: a session advisory lock (``pg_try_advisory_lock``), freed by
  the server the moment the holder's connection ends (a killed process, a
  restarted container): nothing to expire.
* SQLite: a row in ``sp_retrain_lock`` naming the holder
  (``host:pid:nonce:hb``) with a deadline, ``expires_at``. While the retrain
  runs, a heartbeat thread pushes the deadline forward every
  ``retrain_lock_heartbeat_seconds`` (10 s) to ``retrain_lock_stale_seconds``
  (60 s) from now. A row whose deadline has passed is taken over, whatever
  host wrote it: a container that was restarted (a new host name) blocks
  retraining for at most a minute, not for an hour. A row written on this
  host by a process that is gone is taken over at once.

A long ``fit`` needs nothing special: the heartbeat is a thread of its own,
so the lock stays held however long one phase takes. If the holder is
stopped (SIGSTOP, a frozen VM) for longer than the stale time, another
process takes the lock over; the heartbeat then finds its row gone, logs a
warning and stops renewing, and the first retrain finishes without the lock.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
import threading
import uuid
import zlib
from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from superintendent.config import get_settings
from superintendent.store import session_scope, utcnow
from superintendent.store.models import RetrainLock

log = logging.getLogger(__name__)
_LOCK_NAMESPACE = 0x5E7A  # "superintendent retrain": with the schema's name, the first key of PostgreSQL's two-key advisory locks
_HEARTBEAT_MARK = "hb"  # last part of a holder that renews its row; rows of older versions lack it and are never renewed


def lock_namespace(conn: sa.Connection) -> int:
    """The first key of the project retrain locks of the schema ``conn`` works in (the second is the project id).

    Advisory locks belong to the whole database, and project ids start at 1 in every schema: two deployments (or test
    runs) in schemas of one database would otherwise share the lock of their project 1. A number from 0 to 2**31 - 1: an
    int4 for ``pg_try_advisory_lock`` that ``pg_locks.classid`` (an oid) shows as it is.
    """
    schema = conn.execute(sa.text("SELECT current_schema()")).scalar_one() or ""
    return zlib.crc32(f"{_LOCK_NAMESPACE}:{schema}".encode()) & 0x7FFF_FFFF


def _holder_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}:{_HEARTBEAT_MARK}"


def _gone_from_this_host(holder: str) -> bool:
    """Whether ``holder`` names a process of this host that has ended (then its row is free at once)."""
    host, _, rest = holder.partition(":")
    pid = rest.partition(":")[0]
    if host != socket.gethostname() or not pid.isdigit():
        return False  # another host: only the deadline tells
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def _free(row: RetrainLock, now: dt.datetime) -> bool:
    """A lock row may be taken over: its holder stopped renewing it, is gone from this host, or never renewed (an older version)."""
    renews = row.holder.rpartition(":")[2] == _HEARTBEAT_MARK
    return row.expires_at < now or not renews or _gone_from_this_host(row.holder)


class _Heartbeat:
    """A daemon thread that pushes the lock row's deadline forward until stopped."""

    def __init__(self, engine: Engine, project_id: int, holder: str, stale_seconds: float, every_seconds: float) -> None:
        self.engine, self.project_id, self.holder = engine, project_id, holder
        self.stale_seconds, self.every_seconds = stale_seconds, every_seconds
        self.lost = threading.Event()  # set once the row was found taken over
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"retrain-lock-heartbeat-{project_id}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def beat(self) -> bool:
        """Renew the row once; False if it is no longer ours."""
        with session_scope(self.engine) as s:
            renewed = s.execute(
                sa.update(RetrainLock).where(RetrainLock.project_id == self.project_id, RetrainLock.holder == self.holder)
                .values(expires_at=utcnow() + dt.timedelta(seconds=self.stale_seconds))
            ).rowcount
        return renewed == 1

    def _run(self) -> None:
        while not self._stop.wait(self.every_seconds):
            try:
                if not self.beat():
                    log.warning("project %s: the retrain lock was taken over by another process (this one was silent for more than "
                                "%.0f s); this retrain finishes without it", self.project_id, self.stale_seconds)
                    self.lost.set()
                    return
            except sa.exc.DBAPIError:
                # e.g. the database stayed locked past the busy timeout: the next beat tries again, well before the deadline
                log.warning("project %s: could not renew the retrain lock; trying again in %.0f s", self.project_id,
                            self.every_seconds, exc_info=True)


def _in_memory(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite" and engine.url.database in (None, "", ":memory:")


@contextmanager
def retrain_lock(engine: Engine, project_id: int, *, stale_seconds: float | None = None,
                 heartbeat_seconds: float | None = None) -> Iterator[bool]:
    """Yield True if this process may retrain ``project_id`` now, False if another one is at it.

    ``stale_seconds`` and ``heartbeat_seconds`` default to the settings
    ``retrain_lock_stale_seconds`` and ``retrain_lock_heartbeat_seconds`` (SQLite only).
    """
    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            namespace = lock_namespace(conn)
            got = conn.execute(sa.text("SELECT pg_try_advisory_lock(:ns, :p)"), {"ns": namespace, "p": project_id}).scalar_one()
            conn.commit()
            try:
                yield bool(got)
            finally:
                if got:
                    conn.execute(sa.text("SELECT pg_advisory_unlock(:ns, :p)"), {"ns": namespace, "p": project_id})
                    conn.commit()
        return
    settings = get_settings()
    stale = settings.retrain_lock_stale_seconds if stale_seconds is None else stale_seconds
    every = settings.retrain_lock_heartbeat_seconds if heartbeat_seconds is None else heartbeat_seconds
    if not 0 < every < stale:
        raise ValueError(f"the heartbeat ({every} s) must be positive and shorter than the stale time ({stale} s)")
    holder = _holder_id()
    now = utcnow()
    with session_scope(engine) as s:  # BEGIN IMMEDIATE: one process at a time looks and takes
        row = s.get(RetrainLock, project_id)
        if row is not None and _free(row, now):
            log.info("project %s: taking over the retrain lock of %s (deadline %s)", project_id, row.holder, row.expires_at)
            s.delete(row)
            s.flush()
            row = None
        got = row is None
        if got:
            s.add(RetrainLock(project_id=project_id, holder=holder, expires_at=now + dt.timedelta(seconds=stale)))
    if not got:
        yield False
        return
    heartbeat = None if _in_memory(engine) else _Heartbeat(engine, project_id, holder, stale, every)  # nobody else sees a memory database
    if heartbeat is not None:
        heartbeat.start()
    try:
        yield True
    finally:
        if heartbeat is not None:
            heartbeat.stop()
        with session_scope(engine) as s:
            s.execute(sa.delete(RetrainLock).where(RetrainLock.project_id == project_id, RetrainLock.holder == holder))


def retrain_lock_held(engine: Engine, project_id: int) -> bool:
    """Whether some process (any host) holds ``project_id``'s retrain lock now; reads only, never takes it."""
    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            return bool(conn.execute(sa.text(
                "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted AND classid = :ns AND objid = :p "
                "AND objsubid = 2 AND database = (SELECT oid FROM pg_database WHERE datname = current_database()))"),
                {"ns": lock_namespace(conn), "p": project_id}).scalar_one())
    with session_scope(engine, write=False) as s:
        row = s.get(RetrainLock, project_id)
        return row is not None and not _free(row, utcnow())
