"""Users, roles, passwords (bcrypt) and lockout. No Streamlit here: the web app's login glue calls these.

* Passwords are stored only as bcrypt hashes; the minimum length is
  :data:`MIN_PASSWORD_LENGTH`. No function logs, returns or raises a password.
* :data:`MAX_FAILED_LOGINS` failed logins in a row lock an account for
  :data:`LOCKOUT`; a deactivated or locked account cannot log in.
* Every role check the web app makes goes through :func:`can`.
"""

from __future__ import annotations

import datetime as dt
import functools
from dataclasses import dataclass

import bcrypt
import sqlalchemy as sa
from sqlmodel import Session

from superintendent.store.models import Role, User, utcnow
from superintendent.validation import NotFoundError, ValidationError

IMPORT_USER = "_import"
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


def allowed(session: Session, username: str, action: str) -> bool:
    """Whether ``username`` may do ``action`` now, read afresh from the database.

    For every server-side action check: a role change or a deactivation since
    the page was drawn counts at once, whatever a browser session remembers.
    """
    user = session.execute(sa.select(User).where(User.username == username)).scalar_one_or_none()
    return user is not None and user.active and user.role in HUMAN_ROLES and can(user.role, action)


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
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
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
    user = session.execute(sa.select(User).where(User.username == username.strip().lower())).scalar_one_or_none()
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
    user = get_user(session, username)
    if not active and user.role == Role.admin.value:
        _keep_one_admin(session, user)
    user.active = active
    session.add(user)


def reset_password(session: Session, username: str, password: str) -> None:
    user = get_user(session, username)
    user.password_hash = hash_password(password)
    user.failed_logins = 0
    user.locked_until = None
    session.add(user)


def _keep_one_admin(session: Session, leaving: User) -> None:
    others = session.execute(sa.select(sa.func.count()).select_from(User).where(
        User.role == Role.admin.value, User.active, User.id != leaving.id)).scalar_one()
    if others == 0:
        raise ValidationError("this is the last active admin: make someone else admin first")


def may_log_in(user: User, now: dt.datetime | None = None) -> bool:
    now = now or utcnow()
    return (user.active and user.role in HUMAN_ROLES and user.password_hash is not None
            and (user.locked_until is None or user.locked_until <= now))


def login_candidates(session: Session, now: dt.datetime | None = None) -> list[User]:
    """Users who may log in right now (active, not locked, with a password)."""
    return [u for u in list_users(session) if may_log_in(u, now)]


def record_failed_login(session: Session, username: str, now: dt.datetime | None = None) -> None:
    """Count a failed login; the :data:`MAX_FAILED_LOGINS`-th in a row locks the account for :data:`LOCKOUT`."""
    now = now or utcnow()
    user = session.execute(sa.select(User).where(User.username == username.strip().lower())).scalar_one_or_none()
    if user is None:
        return
    user.failed_logins += 1
    if user.failed_logins >= MAX_FAILED_LOGINS:
        user.locked_until = now + LOCKOUT
        user.failed_logins = 0
    session.add(user)


def record_login(session: Session, username: str) -> None:
    user = get_user(session, username)
    user.failed_logins = 0
    session.add(user)


@dataclass(frozen=True)
class LoginResult:
    ok: bool
    message: str = ""


FAILED_LOGIN_MESSAGE = (f"Wrong user name or password. After {MAX_FAILED_LOGINS} failed attempts an account is locked for "
                        f"{int(LOCKOUT.total_seconds() // 60)} minutes.")


def authenticate(session: Session, username: str, password: str, now: dt.datetime | None = None) -> LoginResult:
    """Check a login; a failure says the same whatever went wrong, so it reveals nothing."""
    now = now or utcnow()
    try:
        name = normalise_username(username)
    except ValidationError:
        return LoginResult(False, FAILED_LOGIN_MESSAGE)
    user = session.execute(sa.select(User).where(User.username == name)).scalar_one_or_none()
    if user is None or not may_log_in(user, now):
        verify_password(password, _dummy_hash())  # take as long as a real check
        return LoginResult(False, FAILED_LOGIN_MESSAGE)
    if not verify_password(password, user.password_hash):
        record_failed_login(session, name, now)
        return LoginResult(False, FAILED_LOGIN_MESSAGE)
    record_login(session, name)
    return LoginResult(True)


@functools.cache
def _dummy_hash() -> str:
    return bcrypt.hashpw(b"not a password of anyone", bcrypt.gensalt()).decode("ascii")
