"""Users, passwords and lockout, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

from superintendent import auth
from superintendent.store import Project, make_engine, session_scope, utcnow
from superintendent.validation import ValidationError


def make_user(engine, name="alice", password="s3cret-pass", role="labeller"):
    with session_scope(engine) as s:
        auth.create_user(s, name, password, role)


def login(engine, name, password, now=None):
    return auth.authenticate(engine, name, password, now)


def test_passwords_are_bcrypt_hashes(engine):
    make_user(engine)
    with session_scope(engine, write=False) as s:
        user = auth.get_user(s, "alice")
    assert user.password_hash.startswith("$2b$") and "s3cret-pass" not in user.password_hash
    assert login(engine, "Alice ", "s3cret-pass").ok  # names are case-insensitive


def test_a_failed_login_reveals_nothing(engine):
    make_user(engine)
    wrong_password = login(engine, "alice", "nope-nope-nope")
    unknown_user = login(engine, "mallory", "nope-nope-nope")
    assert not wrong_password.ok and not unknown_user.ok
    assert wrong_password.message == unknown_user.message == auth.FAILED_LOGIN_MESSAGE
    assert "nope" not in wrong_password.message


def test_five_failures_lock_the_account_for_fifteen_minutes(engine):
    make_user(engine)
    now = utcnow()
    for _ in range(auth.MAX_FAILED_LOGINS):
        assert not login(engine, "alice", "wrong-password", now).ok
    assert not login(engine, "alice", "s3cret-pass", now + dt.timedelta(minutes=14)).ok
    assert login(engine, "alice", "s3cret-pass", now + dt.timedelta(minutes=16)).ok


def test_a_locked_account_is_signed_out_and_refused_every_action_until_the_lockout_ends(engine):
    """The same rule for a session already signed in (by the form or a cookie) as for a new login."""
    make_user(engine)
    now = utcnow()
    for _ in range(auth.MAX_FAILED_LOGINS):
        login(engine, "alice", "wrong-password", now)
    with session_scope(engine, write=False) as s:
        assert auth.signed_in_account(s, "alice", now) is None
        assert not auth.allowed(s, "alice", "label", now)
        later = now + auth.LOCKOUT + dt.timedelta(seconds=1)
        assert auth.signed_in_account(s, "alice", later).username == "alice"
        assert auth.allowed(s, "alice", "label", later)


def test_a_success_resets_the_count(engine):
    make_user(engine)
    for _ in range(auth.MAX_FAILED_LOGINS - 1):
        login(engine, "alice", "wrong-password")
    assert login(engine, "alice", "s3cret-pass").ok
    for _ in range(auth.MAX_FAILED_LOGINS - 1):
        login(engine, "alice", "wrong-password")
    assert login(engine, "alice", "s3cret-pass").ok


def test_deactivated_users_cannot_log_in_and_the_last_admin_stays(engine):
    make_user(engine, "boss", role="admin")
    make_user(engine)
    with session_scope(engine) as s:
        auth.set_active(s, "alice", False)
    assert not login(engine, "alice", "s3cret-pass").ok
    with session_scope(engine, write=False) as s:
        assert auth.signed_in_account(s, "alice") is None and not auth.allowed(s, "alice", "label")
        assert auth.get_user(s, "alice").failed_logins == 0  # a refused account's attempts are not counted
    with pytest.raises(ValidationError, match="last active admin"):
        with session_scope(engine) as s:
            auth.set_active(s, "boss", False)
    with pytest.raises(ValidationError, match="last active admin"):
        with session_scope(engine) as s:
            auth.set_role(s, "boss", "labeller")


def test_a_successful_login_returns_the_account_and_never_shows_its_hash(engine):
    make_user(engine)
    result = login(engine, "alice", "s3cret-pass")
    assert result.ok and result.user.username == "alice" and result.user.role == "labeller"
    assert "$2b$" not in repr(result) and "s3cret" not in repr(result)


def test_the_password_check_holds_no_write_lock(engine, monkeypatch):
    """bcrypt takes a few hundred milliseconds: others must be able to write meanwhile (SQLite has one writer at a time)."""
    make_user(engine)
    other = make_engine(engine.url.render_as_string(hide_password=False), busy_timeout_seconds=0.2)
    check = auth.verify_password

    def verify_while_someone_writes(password, password_hash):
        with session_scope(other) as s:  # would fail with "database is locked" if the login held the write lock
            s.add(Project(name=f"written during check {password}"))
        return check(password, password_hash)

    monkeypatch.setattr(auth, "verify_password", verify_while_someone_writes)
    assert login(engine, "alice", "s3cret-pass").ok
    assert not login(engine, "alice", "wrong-password").ok
    other.dispose()
    with session_scope(engine, write=False) as s:
        assert s.execute(sa.select(sa.func.count()).select_from(Project)).scalar_one() == 2
        assert auth.get_user(s, "alice").failed_logins == 1


@pytest.mark.parametrize(
    ("name", "password", "role", "message"),
    [("bob", "short", "labeller", "at least 8 characters"), ("bob", "long enough", "root", "role must be one of"),
     ("alice", "long enough", "labeller", "taken"), ("_sys", "long enough", "labeller", "may not start with"),
     ("two words", "long enough", "labeller", "spaces")],
    ids=["short-password", "unknown-role", "taken-name", "underscore", "space"],
)
def test_bad_new_users(engine, name, password, role, message):
    make_user(engine)
    with pytest.raises(ValidationError, match=message):
        with session_scope(engine) as s:
            auth.create_user(s, name, password, role)


def test_permissions():
    assert auth.can("admin", "admin") and auth.can("admin", "label")
    assert auth.can("labeller", "label") and auth.can("labeller", "view_model")
    assert not auth.can("labeller", "admin") and not auth.can("labeller", "retrain") and not auth.can("labeller", "export")
    assert not auth.can(None, "label") and not auth.can("system", "label")


def test_a_locked_name_is_told_so_with_the_minutes_left_whether_or_not_it_is_an_account(engine):
    """Issue 12, item 4: after five failures the right password said "wrong user name or password"."""
    make_user(engine)
    now = utcnow()
    unknown = f"nobody-{now.timestamp()}"  # unknown names are counted in memory, per process: a fresh one per test
    answers = {}
    for name in ("alice", unknown):
        fifth = [login(engine, name, "wrong-password", now) for _ in range(auth.MAX_FAILED_LOGINS)][-1]
        later = login(engine, name, "s3cret-pass", now + dt.timedelta(minutes=5))
        answers[name] = (fifth.message, later.message)
        assert not fifth.ok and not later.ok
    assert answers["alice"] == answers[unknown]  # nothing tells an account from a name that is none
    fifth, later = answers["alice"]
    assert "locked" in fifth and "15 minutes" in fifth
    assert "locked" in later and "try again in 10 minutes" in later
    assert login(engine, "alice", "s3cret-pass", now + auth.LOCKOUT + dt.timedelta(seconds=1)).ok


def test_the_refusal_of_a_signed_in_session_says_why(engine):
    make_user(engine)
    now = utcnow()
    with session_scope(engine) as s:
        auth.get_user(s, "alice").locked_until = now + dt.timedelta(minutes=3)
    with session_scope(engine, write=False) as s:
        assert "try again in 3 minutes" in auth.refusal_message(s, "alice", now)
    with session_scope(engine) as s:
        auth.set_active(s, "alice", False)
    with session_scope(engine, write=False) as s:
        assert auth.refusal_message(s, "alice", now) == auth.DEACTIVATED_MESSAGE
