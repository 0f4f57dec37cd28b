"""Sign-in sessions: the one place that says whether a browser's sign-in is still good. No Streamlit here.

A sign-in is a row of :class:`superintendent.store.models.UserSession`. The
browser holds a random token (:func:`new_token`, 32 random bytes) in an
HttpOnly cookie; the database holds only its SHA-256 (:func:`hash_token`), so
neither a copy of the table nor a log of its queries signs anybody in.

* :func:`start` opens a session for a user who just proved their password,
  with a one-time *handoff* token (valid :data:`HANDOFF_LIFETIME`): the web
  app's page hands it to the app's own HTTP route, which trades it
  (:func:`issue_cookie`) for the session's token and sets the cookie. The
  session's token therefore never passes through page JavaScript.
* :func:`find` reads a session (by its id, or by a cookie's token) together
  with its user; :func:`resume` is that plus the "last seen" write, which
  happens at most once per :data:`TOUCH_EVERY` per session.
* A session is live while it is not ended, was used within ``Rules.idle``,
  and began less than ``Rules.max_age`` ago. It ends by "Log out"
  (:func:`end`), by a password change or a deactivation, or by an admin's
  "Sign out everywhere" (:func:`end_all`, called by
  :mod:`superintendent.auth`); an ended row keeps its reason, so the sign-in
  form can say why. Rows older than ``max_age`` are deleted at each sign-in
  (:func:`purge`).

Whether the *account* may still sign in (active, not locked) is
:mod:`superintendent.auth`'s rule, asked by the caller; this module only keeps
sessions.
"""

from __future__ import annotations

import datetime as dt
import enum
import hashlib
import math
import secrets
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session

from superintendent.store.db import session_scope
from superintendent.store.models import User, UserSession, utcnow
from superintendent.validation import ValidationError

if TYPE_CHECKING:
    from superintendent.config import Settings

TOUCH_EVERY = dt.timedelta(minutes=1)  # "last seen" is written at most this often per session
HANDOFF_LIFETIME = dt.timedelta(minutes=2)  # how long the page has to trade its handoff for the cookie
TOKEN_BYTES = 32


class EndReason(str, enum.Enum):
    """Why a session ended. The first five are stored (``end_reason``); the last two are read off its times."""

    logged_out = "logged_out"
    password_changed = "password_changed"
    deactivated = "deactivated"
    signed_out_everywhere = "signed_out_everywhere"
    refused = "refused"  # the account could not sign in (e.g. locked) when the session was next used
    idle = "idle"
    expired = "expired"


@dataclass(frozen=True)
class Rules:
    """How long a session lasts: ``idle`` without use, ``max_age`` at most, however active."""

    idle: dt.timedelta
    max_age: dt.timedelta

    def __post_init__(self) -> None:
        for name in ("idle", "max_age"):
            value = getattr(self, name)
            if not isinstance(value, dt.timedelta) or value <= dt.timedelta(0):
                raise ValidationError(f"session {name} must be a positive time span; got {value!r}")

    @classmethod
    def of(cls, settings: Settings) -> Rules:
        """The rules the settings give: ``session_idle_minutes`` and ``cookie_expiry_days``."""
        return cls(idle=dt.timedelta(minutes=settings.session_idle_minutes), max_age=dt.timedelta(days=settings.cookie_expiry_days))


@dataclass(frozen=True)
class Started:
    """A new session: its id, and the one-time handoff token the page trades for the cookie."""

    session_id: int
    handoff: str = field(repr=False)


@dataclass(frozen=True)
class Issued:
    """The session token for the cookie (returned once, never stored) and when the session ends at the latest."""

    token: str = field(repr=False)
    expires_at: dt.datetime


@dataclass(frozen=True)
class Found:
    """A session as read now, with its user (the caller asks :mod:`superintendent.auth` whether they may sign in)."""

    session_id: int
    user: User = field(repr=False)
    ended: EndReason | None  # None: live
    cookie_issued: bool
    last_seen_at: dt.datetime

    @property
    def live(self) -> bool:
        return self.ended is None


def new_token() -> str:
    return secrets.token_urlsafe(TOKEN_BYTES)


def hash_token(token: str) -> str:
    """The SHA-256 (hex) that is stored for a token."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _aware(moment: dt.datetime) -> dt.datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=dt.timezone.utc)


def _ended(row: UserSession, rules: Rules, now: dt.datetime) -> EndReason | None:
    if row.ended_at is not None:
        try:
            return EndReason(row.end_reason)
        except ValueError:
            return EndReason.logged_out  # written by a newer version: ended all the same
    if _aware(row.created_at) + rules.max_age <= now:
        return EndReason.expired
    if _aware(row.last_seen_at) + rules.idle <= now:
        return EndReason.idle
    return None


def purge(session: Session, rules: Rules, now: dt.datetime | None = None) -> int:
    """Delete every session that began ``max_age`` ago or earlier (none of them can be live); returns how many."""
    now = now or utcnow()
    table = UserSession.__table__
    return session.execute(sa.delete(table).where(table.c.created_at <= now - rules.max_age)).rowcount or 0


def start(session: Session, user_id: int, rules: Rules, now: dt.datetime | None = None) -> Started:
    """Open a session for ``user_id`` (who just signed in); old rows are purged on the way."""
    now = now or utcnow()
    purge(session, rules, now)
    handoff = new_token()
    row = UserSession(user_id=user_id, handoff_hash=hash_token(handoff), handoff_expires_at=now + HANDOFF_LIFETIME,
                      created_at=now, last_seen_at=now)
    session.add(row)
    session.flush()
    return Started(row.id, handoff)


def issue_cookie(session: Session, handoff: str, rules: Rules, now: dt.datetime | None = None) -> Issued | None:
    """Trade a handoff token for the session's cookie token, once; None if it is unknown, used, late, or its session ended.

    A single UPDATE ... RETURNING: two requests racing with one handoff cannot both win.
    """
    now = now or utcnow()
    if not isinstance(handoff, str) or not handoff or len(handoff) > 200:
        return None
    token = new_token()
    table = UserSession.__table__
    won = session.execute(
        sa.update(table)
        .where(table.c.handoff_hash == hash_token(handoff), table.c.handoff_expires_at > now, table.c.ended_at.is_(None))
        .values(token_hash=hash_token(token), handoff_hash=None, handoff_expires_at=None)
        .returning(table.c.id)
    ).scalar_one_or_none()
    if won is None:
        return None
    row = session.get(UserSession, won)
    if _ended(row, rules, now) is not None:
        return None
    return Issued(token, _aware(row.created_at) + rules.max_age)


def find(session: Session, rules: Rules, *, session_id: int | None = None, token: str | None = None,
         now: dt.datetime | None = None) -> Found | None:
    """The session with id ``session_id`` or cookie token ``token`` (exactly one), with its user; None if there is none."""
    if (session_id is None) == (token is None):
        raise ValidationError("find a session by its id or by a cookie token, exactly one of the two")
    now = now or utcnow()
    if token is not None:
        if not isinstance(token, str) or not token or len(token) > 200:
            return None
        where = UserSession.token_hash == hash_token(token)
    else:
        where = UserSession.id == session_id
    found = session.execute(sa.select(UserSession, User).join(User, User.id == UserSession.user_id).where(where)).first()
    if found is None:
        return None
    row, user = found
    return Found(row.id, user, _ended(row, rules, now), row.token_hash is not None, _aware(row.last_seen_at))


def touch_due(found: Found, now: dt.datetime) -> bool:
    """Whether "last seen" should be written now: the session is live and was last written :data:`TOUCH_EVERY` ago or more."""
    return found.live and now - found.last_seen_at >= TOUCH_EVERY


def touch(session: Session, session_id: int, now: dt.datetime | None = None) -> None:
    """Record that the session was used at ``now`` (only ever forward in time, only while it is not ended)."""
    now = now or utcnow()
    table = UserSession.__table__
    session.execute(sa.update(table).where(table.c.id == session_id, table.c.ended_at.is_(None), table.c.last_seen_at < now)
                    .values(last_seen_at=now))


def resume(engine: Engine, rules: Rules, *, session_id: int | None = None, token: str | None = None,
           now: dt.datetime | None = None) -> Found | None:
    """:func:`find`, then, if due (:func:`touch_due`), :func:`touch` in a short transaction of its own.

    Takes the engine: most calls only read, and on SQLite a read never waits for the write lock.
    """
    now = now or utcnow()
    with session_scope(engine, write=False) as s:
        found = find(s, rules, session_id=session_id, token=token, now=now)
    if found is not None and touch_due(found, now):
        with session_scope(engine) as s:
            touch(s, found.session_id, now)
    return found


def end(session: Session, session_id: int, reason: EndReason, now: dt.datetime | None = None) -> bool:
    """End one session (if it has not ended yet); True if this call ended it."""
    table = UserSession.__table__
    return bool(session.execute(sa.update(table).where(table.c.id == session_id, table.c.ended_at.is_(None))
                                .values(ended_at=now or utcnow(), end_reason=EndReason(reason).value,
                                        handoff_hash=None, handoff_expires_at=None)).rowcount)


def end_by_token(session: Session, token: str, reason: EndReason, now: dt.datetime | None = None) -> bool:
    """End the session a cookie's token names (if any, and not ended yet); True if this call ended it."""
    if not isinstance(token, str) or not token or len(token) > 200:
        return False
    table = UserSession.__table__
    return bool(session.execute(sa.update(table).where(table.c.token_hash == hash_token(token), table.c.ended_at.is_(None))
                                .values(ended_at=now or utcnow(), end_reason=EndReason(reason).value)).rowcount)


def end_all(session: Session, user_id: int, reason: EndReason, now: dt.datetime | None = None) -> int:
    """End every session of ``user_id`` not ended yet (every browser, every replica: they all read this table); returns how many."""
    table = UserSession.__table__
    return session.execute(sa.update(table).where(table.c.user_id == user_id, table.c.ended_at.is_(None))
                           .values(ended_at=now or utcnow(), end_reason=EndReason(reason).value,
                                   handoff_hash=None, handoff_expires_at=None)).rowcount or 0


def live_count(session: Session, user_id: int, rules: Rules, now: dt.datetime | None = None) -> int:
    """How many live sessions ``user_id`` has (for the Admin page)."""
    now = now or utcnow()
    table = UserSession.__table__
    return session.execute(sa.select(sa.func.count()).select_from(table).where(
        table.c.user_id == user_id, table.c.ended_at.is_(None), table.c.created_at > now - rules.max_age,
        table.c.last_seen_at > now - rules.idle)).scalar_one()


def _span(span: dt.timedelta) -> str:
    minutes = span.total_seconds() / 60
    for unit, size in (("day", 1440), ("hour", 60), ("minute", 1)):
        if minutes >= size and (unit == "minute" or math.isclose(minutes % size, 0, abs_tol=1e-6)):
            count = round(minutes / size)
            return f"{count} {unit}{'s' if count != 1 else ''}"
    return f"{span.total_seconds():g} seconds"


def why(reason: EndReason, rules: Rules) -> str:
    """Why a session ended, as the end of a sentence ("You were signed out: ...")."""
    return {
        EndReason.logged_out: "you logged out",
        EndReason.password_changed: "the account's password was changed",
        EndReason.deactivated: "the account was deactivated",
        EndReason.signed_out_everywhere: "this account was signed out everywhere (by its owner or an admin)",
        EndReason.refused: "the account could not sign in",
        EndReason.idle: f"it was not used for {_span(rules.idle)}",
        EndReason.expired: f"a sign-in lasts at most {_span(rules.max_age)}",
    }[EndReason(reason)]
