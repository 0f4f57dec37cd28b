"""Engines and transactions. Nothing connects at import time.

* :func:`make_engine` builds an engine from a URL: SQLite gets WAL, a busy
  timeout, foreign keys and ``BEGIN IMMEDIATE`` for writing transactions;
  PostgreSQL gets a pre-pinged pool.
* :func:`session_scope` is the one place that commits: the caller owns the
  transaction, queue functions only flush.
* :func:`run_transaction` runs one whole transaction through
  :func:`session_scope` and runs it again if the connection was lost
  (a database restart, a dropped network link); see its docstring for the
  one ambiguous case, a connection lost during ``COMMIT``.
* :func:`init_db` creates or upgrades the schema through Alembic.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError
from sqlalchemy.pool import StaticPool
from sqlmodel import Session

from superintendent.validation import SuperintendentError

log = logging.getLogger(__name__)
T = TypeVar("T")

_BEGIN_OPTION = "superintendent_sqlite_begin"
_MEMORY_LOCKS: "weakref.WeakKeyDictionary[Engine, threading.RLock]" = weakref.WeakKeyDictionary()
# Any fixed 64-bit number: serialises concurrent schema upgrades on PostgreSQL.
_SCHEMA_LOCK_KEY = 7_301_551_044_211


class DatabaseError(SuperintendentError, RuntimeError):
    """The database named by a URL cannot be used; the message says why and what to do."""


class CommitUnknownError(DatabaseError):
    """The connection was lost while ``COMMIT`` was under way: the transaction may or may not be stored.

    Raised by :func:`run_transaction` for a transaction not declared
    ``idempotent``; the original error is the ``__cause__``.
    """


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


def make_engine(url: str, *, busy_timeout_seconds: float = 30.0, echo: bool = False) -> Engine:
    """An engine for ``url`` (``sqlite:///file.db``, ``sqlite://`` in memory, ``postgresql+psycopg2://...``).

    Raises :class:`DatabaseError` for a URL SQLAlchemy cannot parse or has no driver for.
    """
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise DatabaseError(f"cannot parse database URL {url!r}: {exc}. Expected e.g. 'sqlite:///superintendent.db' or 'postgresql+psycopg2://user@host/db'.") from None
    try:
        if parsed.get_backend_name() == "sqlite":
            return _sqlite_engine(parsed, busy_timeout_seconds, echo)
        if parsed.get_backend_name() == "postgresql":
            return sa.create_engine(parsed, pool_pre_ping=True, pool_size=10, max_overflow=20, echo=echo, future=True)
        return sa.create_engine(parsed, pool_pre_ping=True, echo=echo)
    except NoSuchModuleError as exc:
        raise DatabaseError(f"no driver for database URL {parsed.render_as_string(hide_password=True)!r}: {exc}") from None


def _sqlite_engine(url: sa.URL, busy_timeout_seconds: float, echo: bool) -> Engine:
    memory = url.database in (None, "", ":memory:")
    if memory:
        engine = sa.create_engine(url, poolclass=StaticPool, connect_args={"check_same_thread": False}, echo=echo)
        _MEMORY_LOCKS[engine] = threading.RLock()
    else:
        Path(url.database).expanduser().resolve().parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(url, connect_args={"timeout": busy_timeout_seconds, "check_same_thread": False}, echo=echo)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy (below) decide when a transaction starts, and how.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_seconds * 1000)}")
        if not memory:
            _switch_to_wal(cursor, busy_timeout_seconds)
            cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: sa.Connection) -> None:
        mode = conn.get_execution_options().get(_BEGIN_OPTION, "IMMEDIATE")
        conn.exec_driver_sql(f"BEGIN {mode}")

    return engine


def _switch_to_wal(cursor: Any, busy_timeout_seconds: float) -> None:
    """``PRAGMA journal_mode=WAL``, waiting as a writer would for the lock it needs.

    On a new file, two connections switching at once can each hold a shared lock and want the exclusive one; SQLite
    then answers "database is locked" at once, without its busy handler (seen with six processes opening one new
    database on a loaded machine). Retried until the busy timeout, like any other wait for the lock.
    """
    deadline = time.monotonic() + busy_timeout_seconds
    pause = 0.01
    while True:
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() + pause > deadline:
                raise
            time.sleep(pause)
            pause = min(pause * 2, 0.5)


@contextmanager
def session_scope(engine: Engine, *, write: bool = True) -> Iterator[Session]:
    """A session whose transaction commits on success and rolls back on error.

    On SQLite a writing session starts with ``BEGIN IMMEDIATE`` (it takes the
    write lock first, waiting up to the busy timeout), so a transaction never
    fails half-way with "database is locked"; ``write=False`` reads a snapshot.
    """
    lock = _MEMORY_LOCKS.get(engine) or nullcontext()
    with lock, Session(engine, expire_on_commit=False, autoflush=False) as session:
        if is_sqlite(engine):
            session.connection(execution_options={_BEGIN_OPTION: "IMMEDIATE" if write else "DEFERRED"})
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


# SQLSTATE classes that mean "the connection is gone or cannot be made now":
# 08 connection exception, 57P01-57P03 admin/crash shutdown, cannot connect now (starting up).
_PG_DISCONNECT_SQLSTATES = ("08", "57P")


def is_disconnect(exc: BaseException) -> bool:
    """True if ``exc`` says the connection to the database was lost or could not be made.

    That is SQLAlchemy's own verdict (``connection_invalidated``: the server
    closed the connection, a restart terminated it), plus, on PostgreSQL, an
    ``OperationalError`` with no SQLSTATE (libpq could not connect: the server
    is down or restarting) or one of class 08 / 57P. Errors of the
    statement itself (constraint violations, deadlocks, serialisation
    failures, timeouts, SQLite's "database is locked") are not disconnects.
    """
    if not isinstance(exc, sa.exc.DBAPIError):
        return False
    if exc.connection_invalidated:
        return True
    orig = exc.orig
    if not isinstance(exc, sa.exc.OperationalError) or orig is None or not type(orig).__module__.startswith("psycopg"):
        return False
    code = getattr(orig, "pgcode", None) or getattr(getattr(orig, "diag", None), "sqlstate", None)
    return code is None or str(code).startswith(_PG_DISCONNECT_SQLSTATES)


# SQLSTATEs of a transaction the server rolled back whole, at once, to break a tie between
# transactions: 40001 serialization failure, 40P01 deadlock detected. Never ambiguous.
_PG_ROLLED_BACK_SQLSTATES = ("40001", "40P01")


def is_rolled_back_conflict(exc: BaseException) -> bool:
    """True for a PostgreSQL deadlock or serialization failure: the server rolled the whole
    transaction back (nothing of it is stored), and running it again is the documented remedy."""
    orig = getattr(exc, "orig", None)
    code = getattr(orig, "pgcode", None) or getattr(getattr(orig, "diag", None), "sqlstate", None)
    return isinstance(exc, sa.exc.DBAPIError) and code in _PG_ROLLED_BACK_SQLSTATES


def _first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def run_transaction(engine: Engine, fn: Callable[[Session], T], *, retries: int = 3, write: bool = True, idempotent: bool = False,
                    backoff_seconds: float = 0.1, max_backoff_seconds: float = 2.0,
                    on_retry: Callable[[int, BaseException], None] | None = None) -> T:
    """``fn(session)`` in one :func:`session_scope` transaction, run again (up to ``retries`` times,
    waiting ``backoff_seconds``, doubling, at most ``max_backoff_seconds``) if the connection was lost.

    Why a retry is safe: ``fn`` is the whole transaction. A connection lost
    before ``COMMIT`` was sent means the server rolled everything back, so
    running ``fn`` again on a fresh connection is as if the first try never
    happened. ``fn`` must therefore do nothing but database work (no side
    effects outside the session), and may run more than once.

    The one ambiguous case is a connection lost *during* ``COMMIT``: the
    server may have committed or not, and the client cannot tell. Then:

    * ``idempotent=True`` (``fn`` gives the same end state run once or
      twice): run again. :func:`superintendent.queue.submit` is such a
      transaction: it is an upsert per (item, user), so a second run rewrites
      the same label instead of adding one; so are claims that resume the
      user's held item, skips, releases and reads.
    * ``idempotent=False`` (the default): raise :class:`CommitUnknownError`,
      for the caller to check what is stored. :func:`superintendent.queue.undo`
      is *not* idempotent: run twice it would remove two labels.

    A read-only transaction (``write=False``) is always run again. A
    PostgreSQL deadlock or serialization failure (:func:`is_rolled_back_conflict`)
    is run again too: the server rolled it back whole, so it is never
    ambiguous. Other errors are raised at once, as is the last retryable one
    once the retries are used up. ``on_retry(attempt, error)`` is called
    before each new attempt (for logs and counters).
    """
    attempt = 0
    while True:
        committing = False
        try:
            with session_scope(engine, write=write) as session:
                result = fn(session)
                committing = True  # fn returned: what fails from here on failed in COMMIT
            return result
        except Exception as exc:
            disconnect = is_disconnect(exc)
            if not disconnect and not is_rolled_back_conflict(exc):
                raise
            if disconnect and committing and write and not idempotent:
                raise CommitUnknownError(
                    "the connection to the database was lost while committing; the transaction may or may not have been "
                    f"stored (check before doing it again): {_first_line(exc)}"
                ) from exc
            if attempt >= retries:
                raise
            attempt += 1
            log.warning("%s (%s); retry %d of %d", "database connection lost" if disconnect else "transaction rolled back by the server",
                        _first_line(exc), attempt, retries)
            if on_retry is not None:
                on_retry(attempt, exc)
            time.sleep(min(max_backoff_seconds, backoff_seconds * 2 ** (attempt - 1)))


def check_connection(engine: Engine) -> None:
    """Raise :class:`DatabaseError` with a readable message if the database cannot be reached."""
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")
    except sa.exc.OperationalError as exc:
        where = engine.url.render_as_string(hide_password=True)
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig is not None else str(exc)
        raise DatabaseError(f"cannot connect to {where}: {reason}. Check that the server runs and the URL is right.") from None


def _alembic_config(connection: sa.Connection) -> Any:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(Path(__file__).with_name("migrations")))
    cfg.attributes["connection"] = connection
    return cfg


def init_db(engine: Engine) -> str:
    """Create the schema, or upgrade it to the newest version. Returns the revision.

    Safe to call from several processes at once (an advisory lock on
    PostgreSQL, ``BEGIN IMMEDIATE`` on SQLite).
    """
    from alembic import command

    check_connection(engine)
    with engine.connect() as conn:
        conn = conn.execution_options(**{_BEGIN_OPTION: "IMMEDIATE"})
        sqlite = engine.dialect.name == "sqlite"
        if sqlite:
            # A migration that rebuilds a table on SQLite (copy, drop the old one, rename) would, with foreign keys
            # on, cascade the drop to the rows that point at it (0004 once emptied sp_annotation so). The pragma
            # only takes effect outside a transaction; the keys are checked once the upgrade is done.
            conn.connection.driver_connection.execute("PRAGMA foreign_keys=OFF")  # below SQLAlchemy: no autobegin
        try:
            with conn.begin():
                if engine.dialect.name == "postgresql":
                    conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": _SCHEMA_LOCK_KEY})
                command.upgrade(_alembic_config(conn), "head")
                if sqlite:
                    broken = conn.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                    if broken:
                        raise DatabaseError(f"the schema upgrade left {len(broken)} rows pointing at rows that do not exist "
                                            f"(first: table {broken[0][0]}, row {broken[0][1]}); nothing was changed")
        finally:
            if sqlite:
                conn.connection.driver_connection.execute("PRAGMA foreign_keys=ON")
        return current_revision(conn)


def current_revision(conn: sa.Connection) -> str:
    from alembic.runtime.migration import MigrationContext

    return MigrationContext.configure(conn).get_current_revision() or ""

