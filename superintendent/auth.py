"""Users, roles, passwords (bcrypt) and lockout. No Streamlit here: the web app's login glue calls these.

* Passwords are stored only as bcrypt hashes; the minimum length is
  :data:`MIN_PASSWORD_LENGTH`. No function logs, returns or raises a password.
* :data:`MAX_FAILED_LOGINS` failed logins in a row lock an account for
  :data:`LOCKOUT`; a deactivated or locked account cannot log in.
* :func:`authenticate` is the one login rule ("may this user sign in now, with
  this password?"): the web app's login form calls it, then opens a
  server-side session (:mod:`superintendent.sessions`). :func:`may_log_in`
  is asked again of a session's account at every page run.
* A password reset, a deactivation and :func:`sign_out_everywhere` end every
  sign-in of the account, in the caller's transaction.
* Every role check goes through :func:`can`; :func:`allowed` is the same
  question asked of the account as it is in the database right now.
"""

from __future__ import annotations

import datetime as dt
import functools
import math
import threading
from dataclasses import dataclass, field

import bcrypt
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine
from sqlmodel import Session

from superintendent import sessions
from superintendent.store.db import session_scope
from superintendent.store.models import Role, User, utcnow
from superintendent.validation import NotFoundError, ValidationError
from superintendent.labels import IMPORT_USER  # re-exported: auth.IMPORT_USER is where callers have found it

MIN_PASSWORD_LENGTH = 8
MAX_FAILED_LOGINS = 5
LOCKOUT = dt.timedelta(minutes=15)
HUMAN_ROLES = (Role.admin.value, Role.reviewer.value, Role.labeller.value)

# What each role may do; the web app asks `can(role, action)` on the server for every page and action.
PERMISSIONS: dict[str, frozenset[str]] = {
    Role.admin.value: frozenset({"label", "view_progress", "view_model", "retrain", "admin", "export", "manage_users", "manage_projects", "upload", "review"}),
    Role.reviewer.value: frozenset({"label", "view_progress", "view_model", "review"}),
    Role.labeller.value: frozenset({"label", "view_progress", "view_model"}),
}


def can(role: str | None, action: str) -> bool:
    return role is not None and action in PERMISSIONS.get(role, frozenset())


def allowed(session: Session, username: str, action: str, now: dt.datetime | None = None) -> bool:
    """Whether ``username`` may do ``action`` now, read afresh from the database.

    For every server-side action check: a role change, a deactivation or a
    lockout since the page was drawn counts at once, whatever a browser
    session remembers (:func:`signed_in_account`, then :func:`can`).
    """
    user = signed_in_account(session, username, now)
    return user is not None and can(user.role, action)


def _find(session: Session, username: str) -> User | None:
    return session.execute(sa.select(User).where(User.username == username.strip().lower())).scalar_one_or_none()


def normalise_username(username: str) -> str:
    """Usernames are case-insensitive: stored lower-case, without surrounding spaces."""
    if not isinstance(username, str):
        raise ValidationError("a user name must be text")
    name = username.strip().lower()
    if not name or len(name) > 150:
        raise ValidationError("a user name must have 1 to 150 characters")
    if name.startswith("_") or any(c.isspace() for c in name):
        raise ValidationError(f"user name {name!r} may not start with '_' or contain spaces")
    return name


def check_password(password: str) -> None:
    if not isinstance(password, str) or len(password) < MIN_PASSWORD_LENGTH:
        raise ValidationError(f"a password needs at least {MIN_PASSWORD_LENGTH} characters")
    if len(password.encode("utf-8")) > 72:
        raise ValidationError("a password may have at most 72 bytes (a bcrypt limit)")


def hash_password(password: str) -> str:
    check_password(password)
    return bcrypt.hashpw(password.encode("utf-8"), bcrypt.gensalt()).decode("ascii")


def verify_password(password: str, password_hash: str | None) -> bool:
    """Whether ``password`` matches; one longer than 72 bytes never does (no such password can be set,
    and bcrypt would compare only its first 72 bytes)."""
    if not password_hash or not isinstance(password, str) or len(password.encode("utf-8")) > 72:
        return False
    try:
        return bcrypt.checkpw(password.encode("utf-8"), password_hash.encode("ascii"))
    except ValueError:
        return False


def ensure_user(session: Session, username: str, *, role: Role = Role.system) -> int:
    """The id of user ``username``, created without a password (so unable to log in) if missing.

    For API workers and the importer; concurrent creation of one name is safe.
    """
    if not isinstance(username, str) or not username.strip() or len(username) > 150:
        raise ValidationError(f"a user name must be a non-empty string of at most 150 characters; got {username!r}")
    user_id = session.execute(sa.select(User.id).where(User.username == username)).scalar_one_or_none()
    if user_id is not None:
        return user_id
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    session.execute(insert(User.__table__).values(username=username, role=role.value, display_name=username, email="", active=True,
                                                  failed_logins=0, created_at=utcnow()).on_conflict_do_nothing(index_elements=["username"]))
    return session.execute(sa.select(User.id).where(User.username == username)).scalar_one()


def create_user(session: Session, username: str, password: str, role: str = Role.labeller.value, *,
                display_name: str = "", email: str = "") -> User:
    """A new admin or labeller; refuses a taken name, a short password or an unknown role."""
    name = normalise_username(username)
    if role not in HUMAN_ROLES:
        raise ValidationError(f"role must be one of {', '.join(HUMAN_ROLES)}; got {role!r}")
    if session.execute(sa.select(User.id).where(User.username == name)).first() is not None:
        raise ValidationError(f"user name {name!r} is taken; pick another")
    user = User(username=name, password_hash=hash_password(password), role=role, display_name=display_name.strip() or name,
                email=email.strip())
    session.add(user)
    session.flush()
    return user


def get_user(session: Session, username: str) -> User:
    user = _find(session, username)
    if user is None:
        raise NotFoundError(f"no user {username!r}")
    return user


def list_users(session: Session) -> list[User]:
    """The people who can log in (admins and labellers), by name."""
    return list(session.execute(sa.select(User).where(User.role.in_(HUMAN_ROLES)).order_by(User.username)).scalars())


def count_people(session: Session) -> int:
    return session.execute(sa.select(sa.func.count()).select_from(User).where(User.role.in_(HUMAN_ROLES))).scalar_one()


def set_role(session: Session, username: str, role: str) -> None:
    if role not in HUMAN_ROLES:
        raise ValidationError(f"role must be one of {', '.join(HUMAN_ROLES)}; got {role!r}")
    user = get_user(session, username)
    if user.role == Role.admin.value and role != Role.admin.value:
        _keep_one_admin(session, user)
    user.role = role
    session.add(user)


def set_active(session: Session, username: str, active: bool) -> None:
    """Activate or deactivate an account; a deactivation ends every sign-in of it (:func:`superintendent.sessions.end_all`)."""
    user = get_user(session, username)
    if not active and user.role == Role.admin.value:
        _keep_one_admin(session, user)
    user.active = active
    session.add(user)
    if not active:
        sessions.end_all(session, user.id, sessions.EndReason.deactivated)


def reset_password(session: Session, username: str, password: str) -> None:
    """Set a new password (and lift a lockout); every sign-in of the account ends (:func:`superintendent.sessions.end_all`)."""
    user = get_user(session, username)
    user.password_hash = hash_password(password)
    user.failed_logins = 0
    user.locked_until = None
    session.add(user)
    sessions.end_all(session, user.id, sessions.EndReason.password_changed)


def sign_out_everywhere(session: Session, username: str) -> int:
    """End every sign-in of ``username`` (an admin's "Sign out everywhere"); returns how many were still open."""
    return sessions.end_all(session, get_user(session, username).id, sessions.EndReason.signed_out_everywhere)


def _keep_one_admin(session: Session, leaving: User) -> None:
    others = session.execute(sa.select(sa.func.count()).select_from(User).where(
        User.role == Role.admin.value, User.active, User.id != leaving.id)).scalar_one()
    if others == 0:
        raise ValidationError("this is the last active admin: make someone else admin first")


def may_log_in(user: User, now: dt.datetime | None = None) -> bool:
    """Whether this account may be signed in at ``now``: active, a person (not a system user), with a password, not locked."""
    now = now or utcnow()
    return (user.active and user.role in HUMAN_ROLES and user.password_hash is not None
            and (user.locked_until is None or user.locked_until <= now))


def signed_in_account(session: Session, username: str, now: dt.datetime | None = None) -> User | None:
    """The account of a signed-in browser session (by a login or its sign-in cookie), read afresh;
    None if it may no longer be signed in (unknown, deactivated, locked, or no longer a person's role)."""
    user = _find(session, username)
    return user if user is not None and may_log_in(user, now) else None


def record_failed_login(session: Session, username: str, now: dt.datetime | None = None) -> dt.datetime | None:
    """Count a failed login; the :data:`MAX_FAILED_LOGINS`-th in a row locks the account for :data:`LOCKOUT`.

    One atomic increment: failures arriving at once on several replicas all count.
    Returns the end of the lockout this failure started, else None.
    """
    now = now or utcnow()
    table = User.__table__
    name = username.strip().lower()
    failed = session.execute(sa.update(table).where(table.c.username == name).values(failed_logins=table.c.failed_logins + 1)
                             .returning(table.c.failed_logins)).scalar_one_or_none()
    if failed is not None and failed >= MAX_FAILED_LOGINS:
        session.execute(sa.update(table).where(table.c.username == name).values(locked_until=now + LOCKOUT, failed_logins=0))
        return now + LOCKOUT
    return None


@dataclass(frozen=True)
class LoginResult:
    """What :func:`authenticate` decided; ``user`` is the account on success (never shown in a repr)."""

    ok: bool
    message: str = ""
    user: User | None = field(default=None, repr=False, compare=False)


FAILED_LOGIN_MESSAGE = (f"Wrong user name or password. After {MAX_FAILED_LOGINS} failed attempts an account is locked for "
                        f"{int(LOCKOUT.total_seconds() // 60)} minutes.")
DEACTIVATED_MESSAGE = "Your account was deactivated: ask an admin to activate it again."


def locked_message(until: dt.datetime, now: dt.datetime | None = None) -> str:
    """What a sign-in under a lockout is told: the same words whether or not the name is an account."""
    minutes = max(1, math.ceil((_aware(until) - _aware(now or utcnow())).total_seconds() / 60))
    return (f"Too many failed sign-ins for this user name: it is locked, try again in {minutes} "
            f"minute{'s' if minutes != 1 else ''}.")


def _aware(moment: dt.datetime) -> dt.datetime:
    """SQLite hands back naive UTC times; PostgreSQL aware ones."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=dt.timezone.utc)


def _locked_until(user: User, now: dt.datetime) -> dt.datetime | None:
    until = user.locked_until
    return until if until is not None and _aware(until) > _aware(now) else None


def refusal_message(session: Session, username: str, now: dt.datetime | None = None) -> str:
    """Why a signed-in session's account (a login or its sign-in cookie) may no longer be signed in, in one line.

    Only for a session that proved it was this account: it may be told that the account is deactivated.
    """
    now = now or utcnow()
    user = _find(session, username)
    if user is not None and user.active and user.role in HUMAN_ROLES and (until := _locked_until(user, now)) is not None:
        return locked_message(until, now)
    return DEACTIVATED_MESSAGE


class _UnknownNames:
    """Failed sign-ins for names that are no account, counted like an account's (per process, in memory), so that
    after :data:`MAX_FAILED_LOGINS` failures any name gets the same "locked" answer: a lockout reveals nothing."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._failures: dict[str, tuple[int, dt.datetime | None]] = {}

    def locked_until(self, name: str, now: dt.datetime) -> dt.datetime | None:
        with self._lock:
            until = self._failures.get(name, (0, None))[1]
            return until if until is not None and until > now else None

    def fail(self, name: str, now: dt.datetime) -> dt.datetime | None:
        with self._lock:
            if len(self._failures) > 10_000:  # bounded: forget the oldest names
                for key in list(self._failures)[:5_000]:
                    del self._failures[key]
            count, until = self._failures.get(name, (0, None))
            if until is not None and until <= now:
                count, until = 0, None
            count += 1
            if count >= MAX_FAILED_LOGINS:
                self._failures[name] = (0, now + LOCKOUT)
                return now + LOCKOUT
            self._failures[name] = (count, until)
            return None


_UNKNOWN = _UnknownNames()


def authenticate(engine: Engine, username: str, password: str, now: dt.datetime | None = None) -> LoginResult:
    """The login rule: may ``username`` sign in at ``now`` with ``password``?

    Yes only for an account that :func:`may_log_in` (active, not locked, a
    person's role, a password set) and the right password. A wrong password
    counts towards the lockout (:func:`record_failed_login`; for a name that
    is no account, the same count is kept in memory); a success resets the
    count. A locked name is told so, with the minutes left, whether or not it
    is an account; any other failure says :data:`FAILED_LOGIN_MESSAGE`, and
    takes as long, so it reveals nothing.

    Takes the engine, not a session: the bcrypt check (a few hundred
    milliseconds) runs between two short transactions, so a login never
    holds SQLite's write lock while it hashes.
    """
    now = now or utcnow()
    try:
        name = normalise_username(username)
    except ValidationError:
        name = None
    with session_scope(engine, write=False) as s:
        user = _find(s, name) if name else None
        until = _locked_until(user, now) if user is not None else (_UNKNOWN.locked_until(name, now) if name else None)
        password_hash = user.password_hash if user is not None and may_log_in(user, now) else None
    if until is not None:
        verify_password(password, _dummy_hash())  # take as long as a real check
        return LoginResult(False, locked_message(until, now))
    if password_hash is None:
        verify_password(password, _dummy_hash())
        if user is None and name:
            locked = _UNKNOWN.fail(name, now)
            if locked is not None:
                return LoginResult(False, locked_message(locked, now))
        return LoginResult(False, FAILED_LOGIN_MESSAGE)
    if not verify_password(password, password_hash):
        with session_scope(engine) as s:
            locked = record_failed_login(s, name, now)
        return LoginResult(False, locked_message(locked, now) if locked is not None else FAILED_LOGIN_MESSAGE)
    with session_scope(engine) as s:
        user = _find(s, name)
        if user is None or not may_log_in(user, now) or user.password_hash != password_hash:
            return LoginResult(False, FAILED_LOGIN_MESSAGE)  # deactivated, locked or reset while the password was checked
        user.failed_logins = 0
        s.add(user)
    return LoginResult(True, user=user)


@functools.cache
def _dummy_hash() -> str:
    return bcrypt.hashpw(b"not a password of anyone", bcrypt.gensalt()).decode("ascii")
