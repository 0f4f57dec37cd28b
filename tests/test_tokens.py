"""Personal access tokens for the HTTP API (superintendent.tokens), on SQLite and PostgreSQL.

Issue 15: a token is shown once and stored hashed, listed with its last use, revocable; it acts as its user only
while the token is live and the account may act now (a deactivated or locked account's tokens stop at once);
"last used" is written at most once a minute; failed attempts are counted per client address. The HTTP side is
tests/test_api_http.py; the My account page in Chromium: tests/test_account_browser.py.
"""

from __future__ import annotations

import datetime as dt
import hashlib

import pytest
import sqlalchemy as sa
from streamlit.testing.v1 import AppTest

from superintendent import audit, auth, tokens
from superintendent.store import session_scope
from superintendent.store.models import ApiToken
from superintendent.validation import NotFoundError, ValidationError
from test_app import APP, add_user, errors, logged_in

PASSWORD = "correct horse battery"
T0 = dt.datetime(2026, 11, 30, 9, 0, tzinfo=dt.timezone.utc)


@pytest.fixture
def people(engine):
    """boss (admin) and bob, ann (labellers): their ids."""
    with session_scope(engine) as s:
        return {name: auth.create_user(s, name, PASSWORD, role).id
                for name, role in (("boss", "admin"), ("bob", "labeller"), ("ann", "labeller"))}


def make(engine, user_id: int, name: str = "script", now: dt.datetime = T0, **options) -> tokens.Created:
    with session_scope(engine) as s:
        return tokens.create(s, user_id, name, now=now, **options)


def test_a_token_is_shown_once_and_only_its_hash_and_prefix_are_stored(engine, people):
    created = make(engine, people["bob"])
    assert created.token.startswith("sp_") and len(created.token) > 40
    assert created.prefix == created.token[:10]
    assert created.token not in repr(created)
    with session_scope(engine, write=False) as s:
        row = s.get(ApiToken, created.token_id)
        stored = [str(v) for v in s.execute(sa.select(ApiToken.__table__)).one()]
    assert row.token_hash == hashlib.sha256(created.token.encode()).hexdigest()
    assert not any(created.token in v for v in stored)
    found = tokens.user_for_token(engine, created.token, now=T0)
    assert (found.user_id, found.username, found.role) == (people["bob"], "bob", "labeller")
    assert found.can("label") and not found.can("admin")


@pytest.mark.parametrize("bad", ["", "sp_", "sp_not-a-token", "nonsense", "x" * 500, None, 42], ids=repr)
def test_unknown_and_malformed_tokens_act_as_nobody(engine, people, bad):
    make(engine, people["bob"])
    assert tokens.user_for_token(engine, bad, now=T0) is None


def test_a_revoked_token_stops_and_only_its_owner_can_revoke_it(engine, people):
    created = make(engine, people["bob"])
    with session_scope(engine) as s, pytest.raises(NotFoundError, match="no token with id"):
        tokens.revoke(s, people["ann"], created.token_id)
    assert tokens.user_for_token(engine, created.token, now=T0) is not None
    with session_scope(engine) as s:
        assert tokens.revoke(s, people["bob"], created.token_id, now=T0) is True
    with session_scope(engine) as s:
        assert tokens.revoke(s, people["bob"], created.token_id) is False  # already revoked: nothing more to do
    assert tokens.user_for_token(engine, created.token, now=T0) is None
    with session_scope(engine, write=False) as s:
        (listed,) = tokens.list_tokens(s, people["bob"])
    assert listed.state(T0) == "revoked" and listed.revoked_at == T0


def test_an_expired_token_stops_at_its_expiry(engine, people):
    created = make(engine, people["bob"], expires_days=2)
    assert created.expires_at == T0 + dt.timedelta(days=2)
    assert tokens.user_for_token(engine, created.token, now=T0 + dt.timedelta(days=2, seconds=-1)) is not None
    assert tokens.user_for_token(engine, created.token, now=T0 + dt.timedelta(days=2)) is None


def test_a_deactivated_or_locked_account_s_tokens_stop_at_once_and_its_current_role_counts(engine, people):
    created = make(engine, people["bob"])
    with session_scope(engine) as s:
        auth.set_active(s, "bob", False)
    assert tokens.user_for_token(engine, created.token, now=T0) is None
    with session_scope(engine) as s:
        auth.set_active(s, "bob", True)
        auth.set_role(s, "bob", "reviewer")
    assert tokens.user_for_token(engine, created.token, now=T0).role == "reviewer"
    with session_scope(engine) as s:
        for _ in range(auth.MAX_FAILED_LOGINS):
            auth.record_failed_login(s, "bob", now=T0)
    assert tokens.user_for_token(engine, created.token, now=T0 + dt.timedelta(minutes=1)) is None
    assert tokens.user_for_token(engine, created.token, now=T0 + auth.LOCKOUT + dt.timedelta(minutes=1)) is not None


def test_last_used_is_written_at_most_once_a_minute(engine, people):
    created = make(engine, people["bob"])

    def last_used():
        with session_scope(engine, write=False) as s:
            return tokens.list_tokens(s, people["bob"])[0].last_used_at

    assert last_used() is None
    tokens.user_for_token(engine, created.token, now=T0)
    assert last_used() == T0
    tokens.user_for_token(engine, created.token, now=T0 + dt.timedelta(seconds=59))
    assert last_used() == T0
    tokens.user_for_token(engine, created.token, now=T0 + dt.timedelta(seconds=61))
    assert last_used() == T0 + dt.timedelta(seconds=61)


def test_list_shows_a_user_s_own_tokens_newest_first_and_revoke_all(engine, people):
    first = make(engine, people["bob"], "first")
    second = make(engine, people["bob"], "second", now=T0 + dt.timedelta(hours=1), expires_days=30)
    make(engine, people["ann"], "ann's")
    with session_scope(engine, write=False) as s:
        listed = tokens.list_tokens(s, people["bob"])
    assert [(t.name, t.prefix) for t in listed] == [("second", second.prefix), ("first", first.prefix)]
    assert [t.state(T0) for t in listed] == ["active", "active"]
    with session_scope(engine) as s:
        assert tokens.revoke_all(s, people["bob"]) == 2
    assert tokens.user_for_token(engine, first.token, now=T0) is None
    assert tokens.user_for_token(engine, second.token, now=T0) is None


@pytest.mark.parametrize(("name", "days", "message"), [
    ("", None, "needs a name"), ("   ", None, "needs a name"), ("x" * 101, None, "at most 100"),
    ("ok", 0, "from 1 to 3650"), ("ok", 3651, "from 1 to 3650"), ("ok", 1.5, "whole number"), ("ok", True, "whole number"),
])
def test_bad_names_and_lifetimes_say_what_to_do_and_store_nothing(engine, people, name, days, message):
    with session_scope(engine) as s, pytest.raises(ValidationError, match=message):
        tokens.create(s, people["bob"], name, expires_days=days)
    with session_scope(engine, write=False) as s:
        assert tokens.list_tokens(s, people["bob"]) == []


def test_failed_attempts_are_limited_per_address_for_the_window():
    limit = tokens.FailedAttempts(max_failures=3, window=dt.timedelta(minutes=1))
    for i in range(3):
        assert limit.retry_after("10.0.0.1", T0) is None
        limit.fail("10.0.0.1", T0 + dt.timedelta(seconds=i))
    assert limit.retry_after("10.0.0.1", T0 + dt.timedelta(seconds=3)) == 57
    assert limit.retry_after("10.0.0.2", T0 + dt.timedelta(seconds=3)) is None  # another address is not held up
    assert limit.retry_after("10.0.0.1", T0 + dt.timedelta(seconds=60)) is None  # the first failure has left the window


# --------------------------------------------------------------------------- the My account page (AppTest; Chromium: tests/test_account_browser.py)


def test_the_account_page_is_every_role_s_and_shows_nothing_logged_out(app_env):
    add_user(app_env, "boss", role="admin")
    add_user(app_env, "rita", role="reviewer")
    add_user(app_env, "lena")
    out = AppTest.from_file(APP, default_timeout=60).switch_page("pages/account.py").run()
    assert [w.label for w in out.text_input] == ["User name", "Password"] and not out.get("code")
    for name in ("boss", "rita", "lena"):
        at = logged_in(name).switch_page("pages/account.py").run()
        assert errors(at) == [] and at.title[0].value == "My account"
        at.text_input(key="account-token-name").input(f"{name}'s script")
        at.button[[b.label for b in at.button].index("Create token")].click().run()
        (shown,) = [c.value for c in at.code]
        found = tokens.user_for_token(app_env, shown)
        assert found is not None and found.username == name
        at.run()
        assert not at.code  # shown once
        at.button(key="account-token-revoke").click().run()
        assert errors(at) == [] and tokens.user_for_token(app_env, shown) is None
        with session_scope(app_env, write=False) as s:  # both in the audit log, with the name and first characters only
            entries = [(e.action, e.details) for e in audit.recent(s) if e.actor == name]
        assert [a for a, _ in entries] == ["api_key.revoke", "api_key.create"]
        assert entries[1][1]["name"] == f"{name}'s script" and shown.startswith(entries[1][1]["starts_with"])
        assert shown not in str(entries)
