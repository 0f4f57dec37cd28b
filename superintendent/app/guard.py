"""Re-check, act, audit: the one way a page changes something on a user's behalf.

A browser session's picture of its user can be stale (the role changed, or
the account was deactivated, a moment ago, maybe on another replica), so
every action asks the database again at the moment it happens:

* :func:`guarded_action` for work that fits in one transaction (projects,
  users, review corrections, label changes): the account is re-read and
  checked with :func:`superintendent.auth.allowed`, the action runs, and its
  audit entries are written, all in that one transaction: a refused or
  failed action changes nothing and leaves no entry.
* :func:`guarded_engine_action` for work that runs its own transactions on
  the engine (an import, an export, a retrain): the check comes first, then
  the work, then, only if it succeeded, its audit entries in one short
  transaction.

A refusal raises :class:`Refused` (a :class:`SuperintendentError`), so a
page's usual ``except SuperintendentError`` shows it like any other error.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sqlalchemy.engine import Engine
from sqlmodel import Session

from superintendent import audit as audit_log
from superintendent import auth
from superintendent.app import resources
from superintendent.app.login import CurrentUser
from superintendent.store import session_scope
from superintendent.store.db import run_transaction
from superintendent.validation import SuperintendentError

T = TypeVar("T")
REFUSED = "your account may not do this any more"


class Refused(SuperintendentError, PermissionError):
    """The account may not do this now (its role changed, or it was deactivated or locked, since the page was drawn)."""


@dataclass(frozen=True)
class Note:
    """One audit-log entry an action asks for; the actor is always the checked user."""

    action: audit_log.AuditAction
    target: str
    details: Mapping[str, Any] = field(default_factory=dict)


Notes = Callable[[T], "Note | Iterable[Note] | None"]


def _check(session: Session, user: CurrentUser, permission: str) -> None:
    if not auth.allowed(session, user.username, permission):
        raise Refused(REFUSED)


def _write_notes(session: Session, user: CurrentUser, notes: Note | Iterable[Note] | None) -> None:
    for note in [notes] if isinstance(notes, Note) else notes or ():
        audit_log.record(session, user.username, note.action, note.target, **note.details)


def guarded_action(user: CurrentUser, permission: str, act: Callable[[Session], T], *, audit: Notes[T] | None = None,
                   retries: int = 0, idempotent: bool = False) -> T:
    """``act(session)`` if ``user`` may do ``permission`` now; returns what ``act`` returned.

    Check, ``act`` and the entries ``audit(result)`` asks for (a :class:`Note`,
    several, or None) are one transaction. ``retries`` and ``idempotent`` are
    :func:`superintendent.store.db.run_transaction`'s: a lost connection is
    retried that often (``act`` must then do database work only).
    """
    def transaction(session: Session) -> T:
        _check(session, user, permission)
        result = act(session)
        if audit is not None:
            _write_notes(session, user, audit(result))
        return result

    return run_transaction(resources.engine(), transaction, retries=retries, idempotent=idempotent)


def guarded_engine_action(user: CurrentUser, permission: str, act: Callable[[Engine], T], *, audit: Notes[T] | None = None) -> T:
    """``act(engine)`` (work that runs its own transactions) if ``user`` may do ``permission`` now.

    The account is checked just before ``act``; the entries ``audit(result)``
    asks for are written after it, only if it returned.
    """
    engine = resources.engine()
    with session_scope(engine, write=False) as s:
        _check(s, user, permission)
    result = act(engine)
    notes = audit(result) if audit is not None else None
    if notes:
        with session_scope(engine) as s:
            _write_notes(s, user, notes)
    return result
