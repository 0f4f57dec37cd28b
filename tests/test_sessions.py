"""Server-side sign-in sessions (superintendent.sessions) and the cookie route's answers, on SQLite and PostgreSQL.

Issue 13, item 1: a copy of the sign-in cookie must stop working after "Log out", a password reset, a
deactivation or an admin's "Sign out everywhere"; a sign-in ends after ``session_idle_minutes`` without use and
``cookie_expiry_days`` after it began; "last seen" is written at most once a minute per session; the database
holds only the SHA-256 of a cookie's token. The browser side is tests/test_sessions_browser.py.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import threading

import pytest
import sqlalchemy as sa
from starlette.requests import Request

from superintendent import audit, auth, sessions
from superintendent.app import session_cookie
from superintendent.config import Settings
from superintendent.sessions import EndReason, Rules
from superintendent.store import session_scope, utcnow
from superintendent.store.models import UserSession
from superintendent.validation import ValidationError

PASSWORD = "correct horse battery"
RULES = Rules(idle=dt.timedelta(hours=12), max_age=dt.timedelta(days=7))
T0 = dt.datetime(2026, 11, 30, 9, 0, tzinfo=dt.timezone.utc)


@pytest.fixture
def people(engine):
    """boss (admin) and bob, ann (labellers): their ids."""
    with session_scope(engine) as s:
        return {name: auth.create_user(s, name, PASSWORD, role).id
                for name, role in (("boss", "admin"), ("bob", "labeller"), ("ann", "labeller"))}


def sign_in(engine, user_id: int, now: dt.datetime = T0) -> tuple[int, str]:
    """A session as the web app opens it, and the cookie token the browser then gets: (session id, token)."""
    with session_scope(engine) as s:
        started = sessions.start(s, user_id, RULES, now)
    with session_scope(engine) as s:
        issued = sessions.issue_cookie(s, started.handoff, RULES, now + dt.timedelta(seconds=1))
    assert issued is not None
    return started.session_id, issued.token


def find(engine, *, now: dt.datetime = T0, **by) -> sessions.Found | None:
    with session_scope(engine, write=False) as s:
        return sessions.find(s, RULES, now=now, **by)


def rows(engine) -> list[UserSession]:
    with session_scope(engine, write=False) as s:
        return list(s.execute(sa.select(UserSession).order_by(UserSession.id)).scalars())


# --------------------------------------------------------------------------- a sign-in, its token, its handoff


def test_a_cookie_token_signs_in_and_only_its_hash_is_stored(engine, people):
    session_id, token = sign_in(engine, people["bob"])
    found = find(engine, token=token)
    assert found is not None and found.live and found.session_id == session_id and found.user.username == "bob"
    assert found.cookie_issued
    assert find(engine, session_id=session_id).session_id == session_id
    (row,) = rows(engine)
    assert row.token_hash == hashlib.sha256(token.encode()).hexdigest()
    stored = " ".join(str(v) for v in row.model_dump().values())
    assert token not in stored and len(token) >= 43  # 32 random bytes, URL-safe base64
    assert row.handoff_hash is None and row.handoff_expires_at is None  # the handoff is used up
    assert find(engine, token=token + "x") is None and find(engine, token="") is None and find(engine, token="a" * 500) is None


def test_a_handoff_is_traded_for_a_cookie_once_and_only_while_fresh(engine, people):
    with session_scope(engine) as s:
        first = sessions.start(s, people["bob"], RULES, T0)
        late = sessions.start(s, people["bob"], RULES, T0)
        ended = sessions.start(s, people["bob"], RULES, T0)
        sessions.end(s, ended.session_id, EndReason.logged_out, T0)
    with session_scope(engine) as s:
        assert sessions.issue_cookie(s, first.handoff, RULES, T0) is not None
        assert sessions.issue_cookie(s, first.handoff, RULES, T0) is None  # used
        assert sessions.issue_cookie(s, late.handoff, RULES, T0 + sessions.HANDOFF_LIFETIME) is None  # too late
        assert sessions.issue_cookie(s, ended.handoff, RULES, T0) is None  # the session ended first
        assert sessions.issue_cookie(s, "not a handoff", RULES, T0) is None
    assert [r.token_hash is not None for r in rows(engine)] == [True, False, False]


def test_two_requests_racing_with_one_handoff_get_one_cookie(engine, people):
    with session_scope(engine) as s:
        started = sessions.start(s, people["bob"], RULES)
    results, barrier = [], threading.Barrier(4)

    def trade() -> None:
        barrier.wait()
        with session_scope(engine) as s:
            results.append(sessions.issue_cookie(s, started.handoff, RULES))

    threads = [threading.Thread(target=trade) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(r is not None for r in results) == 1, results


def test_find_takes_an_id_or_a_token(engine):
    with session_scope(engine, write=False) as s, pytest.raises(ValidationError, match="exactly one"):
        sessions.find(s, RULES)
    with session_scope(engine, write=False) as s, pytest.raises(ValidationError, match="exactly one"):
        sessions.find(s, RULES, session_id=1, token="x")


# --------------------------------------------------------------------------- timeouts and "last seen"


def test_idle_and_absolute_timeouts(engine, people):
    session_id, token = sign_in(engine, people["bob"])
    assert find(engine, token=token, now=T0 + RULES.idle - dt.timedelta(seconds=1)).live
    assert find(engine, token=token, now=T0 + RULES.idle).ended is EndReason.idle
    # Used every 6 hours it never idles out, but it ends cookie_expiry_days after it began.
    now = T0
    while now + dt.timedelta(hours=6) < T0 + RULES.max_age:
        now += dt.timedelta(hours=6)
        found = sessions.resume(engine, RULES, token=token, now=now)
        assert found.live, now
    assert find(engine, token=token, now=T0 + RULES.max_age).ended is EndReason.expired
    assert sessions.resume(engine, RULES, session_id=session_id, now=T0 + RULES.max_age).ended is EndReason.expired


def test_last_seen_is_written_at_most_once_a_minute(engine, people):
    session_id, token = sign_in(engine, people["bob"])
    writes = []

    def count(conn, cursor, statement, *args):  # noqa: ANN001, ANN002
        if statement.lstrip().upper().startswith("UPDATE SP_USER_SESSION"):
            writes.append(statement)

    sa.event.listen(engine, "before_cursor_execute", count)
    try:
        for second in range(0, 180):  # a click every second for three minutes, by cookie and by id
            by = {"token": token} if second % 2 else {"session_id": session_id}
            assert sessions.resume(engine, RULES, now=T0 + dt.timedelta(seconds=second), **by).live
    finally:
        sa.event.remove(engine, "before_cursor_execute", count)
    assert len(writes) == 2, f"{len(writes)} writes of 'last seen' in 180 clicks over 3 minutes"  # at 1:00 and 2:00
    assert rows(engine)[0].last_seen_at == T0 + dt.timedelta(minutes=2)


def test_touch_never_moves_last_seen_back_nor_revives_an_ended_session(engine, people):
    session_id, _ = sign_in(engine, people["bob"])
    with session_scope(engine) as s:
        sessions.touch(s, session_id, T0 + dt.timedelta(minutes=5))
        sessions.touch(s, session_id, T0 + dt.timedelta(minutes=2))
    assert rows(engine)[0].last_seen_at == T0 + dt.timedelta(minutes=5)
    with session_scope(engine) as s:
        sessions.end(s, session_id, EndReason.logged_out, T0 + dt.timedelta(minutes=6))
        sessions.touch(s, session_id, T0 + dt.timedelta(minutes=7))
    assert rows(engine)[0].last_seen_at == T0 + dt.timedelta(minutes=5)


# --------------------------------------------------------------------------- what ends a sign-in


def test_log_out_ends_that_sign_in_only(engine, people):
    first, first_token = sign_in(engine, people["bob"])
    _, second_token = sign_in(engine, people["bob"])
    with session_scope(engine) as s:
        assert sessions.end(s, first, EndReason.logged_out) is True
        assert sessions.end(s, first, EndReason.logged_out) is False  # already ended: the reason stays
    assert find(engine, token=first_token).ended is EndReason.logged_out
    assert find(engine, token=second_token).live


@pytest.mark.parametrize("change, reason", [
    ("password reset", EndReason.password_changed),
    ("deactivation", EndReason.deactivated),
    ("sign out everywhere", EndReason.signed_out_everywhere),
])
def test_an_account_change_ends_every_sign_in_of_that_account(engine, people, change, reason):
    bob_tokens = [sign_in(engine, people["bob"])[1] for _ in range(3)]
    _, ann_token = sign_in(engine, people["ann"])
    with session_scope(engine) as s:
        if change == "password reset":
            auth.reset_password(s, "bob", "a brand new password")
        elif change == "deactivation":
            auth.set_active(s, "bob", False)
        else:
            assert auth.sign_out_everywhere(s, "bob") == 3
    assert [find(engine, token=t, now=utcnow()).ended for t in bob_tokens] == [reason] * 3
    assert find(engine, token=ann_token, now=T0).live  # nobody else's
    if change == "deactivation":
        with session_scope(engine) as s:
            auth.set_active(s, "bob", True)  # active again: the old sign-ins stay ended
        assert [find(engine, token=t, now=utcnow()).ended for t in bob_tokens] == [reason] * 3
    with session_scope(engine) as s:
        assert sessions.live_count(s, people["bob"], RULES, T0) == 0
        assert sessions.live_count(s, people["ann"], RULES, T0) == 1


def test_a_role_change_or_a_failed_login_ends_nothing(engine, people):
    _, token = sign_in(engine, people["bob"])
    with session_scope(engine) as s:
        auth.set_role(s, "bob", "reviewer")
        auth.record_failed_login(s, "bob")
    assert find(engine, token=token).live


def test_a_deleted_user_takes_their_sessions_along(engine, people):
    _, token = sign_in(engine, people["bob"])
    with session_scope(engine) as s:
        s.execute(sa.delete(auth.User).where(auth.User.username == "bob"))
    assert find(engine, token=token) is None and rows(engine) == []


def test_rows_older_than_the_longest_sign_in_are_purged_at_the_next_sign_in(engine, people):
    sign_in(engine, people["bob"], T0)
    sign_in(engine, people["ann"], T0 + dt.timedelta(days=1))
    sign_in(engine, people["boss"], T0 + RULES.max_age)  # purges bob's: it began max_age ago
    assert [r.user_id for r in rows(engine)] == [people["ann"], people["boss"]]


def test_live_count(engine, people):
    ids = [sign_in(engine, people["bob"], T0 + dt.timedelta(hours=h))[0] for h in (0, 1, 2)]
    with session_scope(engine) as s:
        sessions.end(s, ids[0], EndReason.logged_out)
        assert sessions.live_count(s, people["bob"], RULES, T0 + dt.timedelta(hours=2)) == 2
        assert sessions.live_count(s, people["bob"], RULES, T0 + dt.timedelta(hours=13, minutes=30)) == 1  # ids[1] idled out


def test_sign_out_everywhere_is_an_audit_action():
    assert audit.AuditAction("user.sign_out_everywhere") is audit.AuditAction.user_sign_out_everywhere


# --------------------------------------------------------------------------- rules and messages


def test_rules_come_from_the_settings_and_must_be_positive():
    rules = Rules.of(Settings(session_idle_minutes=90, cookie_expiry_days=1.5))
    assert (rules.idle, rules.max_age) == (dt.timedelta(minutes=90), dt.timedelta(days=1.5))
    assert Rules.of(Settings()) == RULES  # defaults: 12 hours idle, 7 days at most
    for bad in (dt.timedelta(0), dt.timedelta(seconds=-1), 5):
        with pytest.raises(ValidationError, match="positive time span"):
            Rules(idle=bad, max_age=dt.timedelta(days=1))
    with pytest.raises(ValueError, match="greater than 0"):
        Settings(session_idle_minutes=0)
    with pytest.raises(ValueError, match="greater than 0"):
        Settings(cookie_expiry_days=0)


def test_every_end_has_a_reason_in_words():
    assert sessions.why(EndReason.idle, RULES) == "it was not used for 12 hours"
    assert sessions.why(EndReason.expired, RULES) == "a sign-in lasts at most 7 days"
    odd = Rules(idle=dt.timedelta(minutes=90), max_age=dt.timedelta(days=1.5))
    assert sessions.why(EndReason.idle, odd) == "it was not used for 90 minutes"
    assert sessions.why(EndReason.expired, odd) == "a sign-in lasts at most 36 hours"
    assert all(sessions.why(reason, RULES) for reason in EndReason)


# --------------------------------------------------------------------------- the cookie route's answers


def _request(method: str, headers: dict[str, str]) -> Request:
    return Request({"type": "http", "method": method, "path": session_cookie.PATH, "query_string": b"",
                    "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()]})


def _set_cookie(response) -> str:  # noqa: ANN001 - a starlette Response
    return "; ".join(v.decode() for k, v in response.raw_headers if k == b"set-cookie")


@pytest.mark.parametrize("secure", [False, True], ids=["http", "https"])
def test_the_route_sets_an_http_only_cookie_once_per_handoff(engine, people, secure):
    settings = Settings(cookie_secure=secure)
    with session_scope(engine) as s:
        started = sessions.start(s, people["bob"], RULES, T0)
    response = session_cookie.set_cookie_response(engine, settings, started.handoff, T0 + dt.timedelta(seconds=1))
    assert response.status_code == 204
    header = _set_cookie(response)
    token = header.split(";")[0].split("=", 1)[1]
    assert header.startswith(f"{settings.cookie_name}=")
    assert "HttpOnly" in header and "SameSite=lax" in header and "Path=/" in header
    assert ("Secure" in header) is secure
    assert f"Max-Age={7 * 86400 - 1}" in header  # the session's remaining lifetime
    assert find(engine, token=token, now=T0 + dt.timedelta(seconds=2)).session_id == started.session_id
    again = session_cookie.set_cookie_response(engine, settings, started.handoff, T0 + dt.timedelta(seconds=2))
    assert again.status_code == 403 and _set_cookie(again) == "" and b"sign in again" in again.body


def test_the_route_clears_a_dead_cookie_but_keeps_another_tabs_fresh_sign_in(engine, people):
    settings = Settings()
    ended, dead = sign_in(engine, people["bob"], utcnow())
    fresh, live = sign_in(engine, people["bob"], utcnow())
    with session_scope(engine) as s:
        sessions.end(s, ended, EndReason.logged_out)

    def cleared(token, ended_id=""):  # noqa: ANN001, ANN202
        response = session_cookie.clear_cookie_response(engine, settings, token, ended_id)
        assert response.status_code == 204
        header = _set_cookie(response)
        if header:
            assert header.startswith(f'{settings.cookie_name}="";') and "Max-Age=0" in header and "HttpOnly" in header
        return bool(header)

    assert cleared(dead, str(ended)) and cleared(dead)  # names an ended sign-in
    assert cleared(None) and cleared("not a token of anyone")
    assert not cleared(live, str(ended))  # a stale tab must not drop the cookie another tab just signed in with
    assert cleared(live, str(fresh))  # the tab whose sign-in this is
    assert find(engine, token=live, now=utcnow()).live  # clearing a cookie ends nothing


@pytest.mark.parametrize("headers, allowed", [
    ({}, False),
    ({session_cookie.CSRF_HEADER: "1", "Sec-Fetch-Site": "cross-site"}, False),
    ({session_cookie.CSRF_HEADER: "1", "Sec-Fetch-Site": "same-site"}, False),
    ({session_cookie.CSRF_HEADER: "1", "Sec-Fetch-Site": "same-origin"}, True),
    ({session_cookie.CSRF_HEADER: "1"}, True),
], ids=["no header", "cross-site", "same-site", "same-origin", "no fetch metadata"])
def test_the_route_answers_only_the_apps_own_pages(headers, allowed):
    refused = session_cookie.refusal(_request("POST", headers))
    assert (refused is None) is allowed
    if refused is not None:
        assert refused.status_code == 403
