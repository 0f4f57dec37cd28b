"""Engines and transactions. Nothing connects at import time.

* :func:`make_engine` builds an engine from a URL: SQLite gets WAL, a busy
  timeout, foreign keys and ``BEGIN IMMEDIATE`` for writing transactions;
  PostgreSQL gets a pre-pinged pool.
* :func:`session_scope` is the one place that commits: the caller owns the
  transaction, queue functions only flush.
* :func:`init_db` creates or upgrades the schema through Alembic.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError
from sqlalchemy.pool import StaticPool
from sqlmodel import Session

from superintendent.validation import SuperintendentError

_BEGIN_OPTION = "superintendent_sqlite_begin"
_MEMORY_LOCKS: "weakref.WeakKeyDictionary[Engine, threading.RLock]" = weakref.WeakKeyDictionary()
# Any fixed 64-bit number: serialises concurrent schema upgrades on PostgreSQL.
_SCHEMA_LOCK_KEY = 7_301_551_044_211


class DatabaseError(SuperintendentError, RuntimeError):
    """The database named by a URL cannot be used; the message says why and what to do."""


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


def is_memory(engine: Engine) -> bool:
    return is_sqlite(engine) and engine.url.database in (None, "", ":memory:")


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
        if not memory:
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_seconds * 1000)}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: sa.Connection) -> None:
        mode = conn.get_execution_options().get(_BEGIN_OPTION, "IMMEDIATE")
        conn.exec_driver_sql(f"BEGIN {mode}")

    return engine


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
        with conn.begin():
            if engine.dialect.name == "postgresql":
                conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": _SCHEMA_LOCK_KEY})
            command.upgrade(_alembic_config(conn), "head")
        return current_revision(conn)


def current_revision(conn: sa.Connection) -> str:
    from alembic.runtime.migration import MigrationContext

    return MigrationContext.configure(conn).get_current_revision() or ""


def head_revision() -> str:
    from alembic.script import ScriptDirectory
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(Path(__file__).with_name("migrations")))
    return ScriptDirectory.from_config(cfg).get_current_head() or ""
