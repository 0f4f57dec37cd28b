"""Personal access tokens for the HTTP API: the one place that says whether a token is good. No web framework here.

A token is a row of :class:`superintendent.store.models.ApiToken`. Its owner
sees the token once, when it is made (:func:`create`); the database holds only
its SHA-256 (:func:`superintendent.sessions.hash_token`) and its first
characters (``prefix``, e.g. ``sp_Xy12ab``), so that a person can tell their
tokens apart in a list (:func:`list_tokens`) without the list giving a token
away.

* :func:`user_for_token` is asked on every API request: the token's user, if
  the token is known, not revoked and not expired, *and* the account may act
  now (:func:`superintendent.auth.may_log_in`: active, not locked, a person).
  A deactivated or locked user's tokens stop at once and work again if the
  account does; a token acts with the role and the project memberships its
  user has at that moment. "Last used" is written at most once per
  :data:`TOUCH_EVERY` per token.
* :func:`revoke` ends one token for good; :func:`revoke_all` every token of a
  user.
* :class:`FailedAttempts` counts requests with a missing-the-mark token per
  client address: after :data:`MAX_FAILURES` in :data:`FAILURE_WINDOW` the
  address is refused until the window has passed. The count is kept in memory,
  per server process (each replica counts its own).
"""

from __future__ import annotations

import datetime as dt
import math
import secrets
import threading
from collections import deque
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session

from superintendent import auth
from superintendent.sessions import hash_token
from superintendent.store.db import session_scope
from superintendent.store.models import ApiToken, User, utcnow
from superintendent.validation import NotFoundError, ValidationError

PREFIX = "sp_"  # every token starts with this: a secret scanner (or a person) can tell what it is
TOKEN_BYTES = 32
SHOWN_CHARS = 10  # the prefix kept and listed: "sp_" and 7 characters of the random part
MAX_NAME = 100
MAX_EXPIRES_DAYS = 3650
TOUCH_EVERY = dt.timedelta(minutes=1)  # "last used" is written at most this often per token
MAX_FAILURES = 20  # failed token attempts per client address ...
FAILURE_WINDOW = dt.timedelta(minutes=1)  # ... in this long, then the address waits


@dataclass(frozen=True)
class Created:
    """A new token: the token itself (shown once, never stored) and what is listed about it."""

    token_id: int
    token: str = field(repr=False)
    prefix: str
    expires_at: dt.datetime | None


@dataclass(frozen=True)
class TokenInfo:
    """A token as listed: never the token, only its prefix."""

    token_id: int
    name: str
    prefix: str
    created_at: dt.datetime
    expires_at: dt.datetime | None
    last_used_at: dt.datetime | None
    revoked_at: dt.datetime | None

    def state(self, now: dt.datetime | None = None) -> str:
        """``revoked``, ``expired`` or ``active``."""
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= (now or utcnow()):
            return "expired"
        return "active"


@dataclass(frozen=True)
class TokenUser:
    """Who a good token acts as, read at this request: the user's id, name and current role."""

    token_id: int
    user_id: int
    username: str
    role: str

    def can(self, action: str) -> bool:
        return auth.can(self.role, action)


def _check_name(name: str) -> str:
    if not isinstance(name, str) or not name.strip():
        raise ValidationError("a token needs a name (what it is for, e.g. 'labelling script'), of 1 to 100 characters")
    name = name.strip()
    if len(name) > MAX_NAME:
        raise ValidationError(f"a token's name may have at most {MAX_NAME} characters; got {len(name)}")
    return name


def _check_days(expires_days: int | None) -> int | None:
    if expires_days is None:
        return None
    if isinstance(expires_days, bool) or not isinstance(expires_days, int) or not 1 <= expires_days <= MAX_EXPIRES_DAYS:
        raise ValidationError(f"a token's lifetime must be a whole number of days from 1 to {MAX_EXPIRES_DAYS} "
                              f"(or none, for a token that does not expire); got {expires_days!r}")
    return expires_days


def new_token() -> str:
    return PREFIX + secrets.token_urlsafe(TOKEN_BYTES)


def create(session: Session, user_id: int, name: str, *, expires_days: int | None = None, now: dt.datetime | None = None) -> Created:
    """A new token for ``user_id``, named ``name``, lasting ``expires_days`` (None: until revoked). Returns it once."""
    name, expires_days = _check_name(name), _check_days(expires_days)
    if session.get(User, user_id) is None:
        raise NotFoundError(f"no user with id {user_id}")
    now = now or utcnow()
    token = new_token()
    expires_at = None if expires_days is None else now + dt.timedelta(days=expires_days)
    row = ApiToken(user_id=user_id, name=name, prefix=token[:SHOWN_CHARS], token_hash=hash_token(token), created_at=now,
                   expires_at=expires_at)
    session.add(row)
    session.flush()
    return Created(row.id, token, row.prefix, expires_at)


def _info(row: ApiToken) -> TokenInfo:
    return TokenInfo(row.id, row.name, row.prefix, row.created_at, row.expires_at, row.last_used_at, row.revoked_at)


def list_tokens(session: Session, user_id: int) -> list[TokenInfo]:
    """Every token of ``user_id`` (revoked and expired ones too), newest first."""
    rows = session.execute(sa.select(ApiToken).where(ApiToken.user_id == user_id)
                           .order_by(ApiToken.created_at.desc(), ApiToken.id.desc())).scalars()
    return [_info(r) for r in rows]


def revoke(session: Session, user_id: int, token_id: int, now: dt.datetime | None = None) -> bool:
    """Revoke ``user_id``'s token ``token_id``; True if this call revoked it, False if it was revoked already.

    Raises :class:`NotFoundError` if ``user_id`` has no such token (another user's token is "no such token").
    """
    if isinstance(token_id, bool) or not isinstance(token_id, int):
        raise ValidationError(f"a token id is a whole number; got {token_id!r}")
    table = ApiToken.__table__
    owner = session.execute(sa.select(table.c.user_id).where(table.c.id == token_id)).scalar_one_or_none()
    if owner is None or owner != user_id:
        raise NotFoundError(f"this account has no token with id {token_id}")
    return bool(session.execute(sa.update(table).where(table.c.id == token_id, table.c.revoked_at.is_(None))
                                .values(revoked_at=now or utcnow())).rowcount)


def revoke_all(session: Session, user_id: int, now: dt.datetime | None = None) -> int:
    """Revoke every token of ``user_id`` not revoked yet; returns how many."""
    table = ApiToken.__table__
    return session.execute(sa.update(table).where(table.c.user_id == user_id, table.c.revoked_at.is_(None))
                           .values(revoked_at=now or utcnow())).rowcount or 0


def _looks_like_token(token: object) -> bool:
    return isinstance(token, str) and token.startswith(PREFIX) and len(token) <= 200


def user_for_token(engine: Engine, token: str | None, now: dt.datetime | None = None) -> TokenUser | None:
    """The user ``token`` acts as now, or None (unknown, revoked, expired, or the account may not act: deactivated, locked).

    One indexed read; "last used" is written in a short transaction of its own, at most once per :data:`TOUCH_EVERY`.
    """
    if not _looks_like_token(token):
        return None
    now = now or utcnow()
    with session_scope(engine, write=False) as s:
        found = s.execute(sa.select(ApiToken, User).join(User, User.id == ApiToken.user_id)
                          .where(ApiToken.token_hash == hash_token(token))).first()
    if found is None:
        return None
    row, user = found
    if row.revoked_at is not None or (row.expires_at is not None and row.expires_at <= now) or not auth.may_log_in(user, now):
        return None
    if row.last_used_at is None or now - row.last_used_at >= TOUCH_EVERY:
        table = ApiToken.__table__
        with session_scope(engine) as s:
            s.execute(sa.update(table).where(table.c.id == row.id, sa.or_(table.c.last_used_at.is_(None), table.c.last_used_at < now))
                      .values(last_used_at=now))
    return TokenUser(row.id, user.id, user.username, user.role)


class FailedAttempts:
    """Failed token attempts per client address, in memory (one count per server process).

    :meth:`retry_after` says how many seconds an address must wait (None: it may try);
    :meth:`fail` counts one failure.
    """

    def __init__(self, max_failures: int = MAX_FAILURES, window: dt.timedelta = FAILURE_WINDOW) -> None:
        self.max_failures, self.window = max_failures, window
        self._lock = threading.Lock()
        self._failures: dict[str, deque[dt.datetime]] = {}

    def _recent(self, address: str, now: dt.datetime) -> deque[dt.datetime]:
        times = self._failures.get(address, deque())
        while times and times[0] <= now - self.window:
            times.popleft()
        return times

    def retry_after(self, address: str, now: dt.datetime | None = None) -> int | None:
        now = now or utcnow()
        with self._lock:
            times = self._recent(address, now)
            if len(times) < self.max_failures:
                return None
            return max(1, math.ceil((times[0] + self.window - now).total_seconds()))

    def fail(self, address: str, now: dt.datetime | None = None) -> None:
        now = now or utcnow()
        with self._lock:
            if len(self._failures) > 10_000:  # bounded: forget the addresses seen longest ago
                for key in list(self._failures)[:5_000]:
                    del self._failures[key]
            times = self._recent(address, now)
            times.append(now)
            while len(times) > self.max_failures:  # only the latest count
                times.popleft()
            self._failures[address] = times
