"""Sign-ins that can be ended, in a real headless Chromium (fixtures of tests/test_browser.py; issue 13, item 1).

A copy of the sign-in cookie, taken while it worked, is put into a fresh browser context (another browser, as a
thief would): before anything ends the sign-in it signs in (so the copy is a real one), and it never does again after

* "Log out" in the browser it came from,
* an admin's password reset of that account (Admin > Users > Change a user > Apply),
* an admin's "Sign out everywhere" for that account (audited as ``user.sign_out_everywhere``);

the browser it came from is signed out at its next click too. The cookie is HttpOnly (``document.cookie`` never
holds it), SameSite=Lax, and lasts no longer than ``cookie_expiry_days``. A tab whose sign-in ended never drops
the cookie another tab of the same browser has just signed in with.

Screenshots go into the test's temporary folder.
"""

from __future__ import annotations

import time

import pytest
import sqlalchemy as sa
from browser_helpers import PASSWORD, VIEWPORT, choose, screenshots_into, settle, sign_in
from playwright.sync_api import Browser, BrowserContext, Page

from superintendent import auth, queue
from superintendent.config import get_settings
from superintendent.store import init_db, make_engine, session_scope
from superintendent.store.models import AuditEntry
from tests.test_browser import browser, server

__all__ = ["browser", "server"]  # fixtures of tests/test_browser.py, used here

EXCEPTION = '[data-testid="stException"]'
NEW_PASSWORD = "a brand new password"


@pytest.fixture(autouse=True)
def _no_file_watcher(monkeypatch):
    monkeypatch.setenv("STREAMLIT_SERVER_FILE_WATCHER_TYPE", "none")


def _seed(db_url: str) -> sa.Engine:
    engine = make_engine(db_url)
    init_db(engine)
    with session_scope(engine) as s:
        auth.create_user(s, "boss", PASSWORD, "admin")
        auth.create_user(s, "bob", PASSWORD, "labeller")
        project = queue.create_project(s, "films", options=["good", "bad"], data_type="text")
        queue.add_items(s, project, [f"film number {i}" for i in range(10)], external_ids=[f"f{i}" for i in range(10)])
    return engine


def _sign_in_cookie(context: BrowserContext) -> dict:
    """The sign-in cookie the browser holds (by the configured name); fails if there is none."""
    name = get_settings().cookie_name
    found = [c for c in context.cookies() if c["name"] == name]
    assert found, f"no cookie {name!r} after signing in; the browser holds {[c['name'] for c in context.cookies()]}"
    return found[0]


def _cookie_value(context: BrowserContext) -> str | None:
    return next((c["value"] for c in context.cookies() if c["name"] == get_settings().cookie_name), None)


def _cookie_after_sign_in(browser: Browser, base: str, name: str) -> tuple[Page, dict]:
    """``name`` signs in in a context of its own; the page, and its sign-in cookie once the browser holds it."""
    page = browser.new_context(viewport=VIEWPORT).new_page()
    sign_in(page, base, name)
    deadline = time.monotonic() + 15
    while _cookie_value(page.context) is None and time.monotonic() < deadline:
        page.wait_for_timeout(200)  # the cookie is set a moment after the sign-in
    return page, _sign_in_cookie(page.context)


def _fresh_visit(browser: Browser, base: str, cookie: dict) -> Page:
    """A new browser context holding only ``cookie``, on the app's first page."""
    context = browser.new_context(viewport=VIEWPORT)
    context.add_cookies([cookie])
    page = context.new_page()
    page.goto(base)
    settle(page)
    page.locator('[data-testid="stSidebar"], [data-testid="stForm"]').first.wait_for(timeout=30_000)
    settle(page)
    return page


def _signed_in(page: Page) -> bool:
    return page.get_by_text("Signed in as").count() > 0


def _shows_sign_in_form(page: Page) -> bool:
    page.get_by_role("button", name="Log in").wait_for(timeout=30_000)
    return not _signed_in(page)


def test_the_cookie_is_http_only_and_dead_after_log_out(server, browser, tmp_path):
    base, db_url = server
    engine = _seed(db_url)
    shoot = screenshots_into(tmp_path / "shots")
    page, cookie = _cookie_after_sign_in(browser, base, "bob")
    assert cookie["httpOnly"] is True, cookie
    assert cookie["sameSite"] == "Lax", cookie
    assert cookie["secure"] is False, cookie  # served over plain http here (cookie_secure is off by default)
    lifetime_days = (cookie["expires"] - time.time()) / 86400
    assert 0 < lifetime_days <= get_settings().cookie_expiry_days + 0.01, cookie
    scripts_see = page.evaluate("() => document.cookie")
    assert get_settings().cookie_name not in scripts_see, f"page scripts can read the sign-in cookie: {scripts_see!r}"
    assert cookie["value"] not in scripts_see

    # The copy works while the sign-in lasts: it is a real one.
    thief = _fresh_visit(browser, base, cookie)
    thief.get_by_text("Signed in as").first.wait_for(timeout=30_000)
    thief.context.close()

    page.get_by_role("button", name="Log out").click()
    page.get_by_role("button", name="Log in").wait_for(timeout=30_000)
    settle(page)
    shoot(page, "after-log-out")
    thief = _fresh_visit(browser, base, cookie)
    shoot(thief, "copied-cookie-after-log-out")
    assert _shows_sign_in_form(thief), "a cookie copied before 'Log out' still signs in"
    assert thief.locator(EXCEPTION).count() == 0
    # The browser that logged out, reloaded, stays signed out too.
    page.goto(base)
    settle(page)
    assert _shows_sign_in_form(page)
    engine.dispose()


def _admin_users_tab(browser: Browser, base: str) -> Page:
    admin = browser.new_context(viewport=VIEWPORT).new_page()
    sign_in(admin, base, "boss")
    admin.get_by_role("link", name="Admin").click()
    settle(admin)
    admin.get_by_role("tab", name="Users").click()
    settle(admin)
    choose(admin, "User", "bob")
    settle(admin)
    return admin


@pytest.mark.parametrize("how", ["password reset", "sign out everywhere"])
def test_an_admin_ends_every_sign_in_of_a_user(server, browser, tmp_path, how):
    base, db_url = server
    engine = _seed(db_url)
    shoot = screenshots_into(tmp_path / "shots")
    bob, cookie = _cookie_after_sign_in(browser, base, "bob")
    thief = _fresh_visit(browser, base, cookie)  # a second live sign-in, by the copied cookie
    thief.get_by_text("Signed in as").first.wait_for(timeout=30_000)

    admin = _admin_users_tab(browser, base)
    if how == "password reset":
        admin.get_by_role("textbox", name="New password (leave empty to keep)").fill(NEW_PASSWORD)
        admin.get_by_role("button", name="Apply").click()
        admin.get_by_text("User 'bob' updated.").first.wait_for(timeout=30_000)
    else:
        shoot(admin, "change-a-user-with-sign-out-everywhere")
        admin.get_by_role("button", name="Sign out everywhere").click()
        admin.get_by_text("User 'bob' is signed out everywhere").first.wait_for(timeout=30_000)
        settle(admin)
        shoot(admin, "signed-out-everywhere")
        with session_scope(engine, write=False) as s:
            entries = s.execute(sa.select(AuditEntry.actor, AuditEntry.action, AuditEntry.target)).all()
        assert ("boss", "user.sign_out_everywhere", "bob") in entries, entries
    assert admin.locator(EXCEPTION).count() == 0
    assert _signed_in(admin), "the admin's own sign-in was ended"

    # The copied cookie in yet another browser: the sign-in form.
    again = _fresh_visit(browser, base, cookie)
    shoot(again, f"copied-cookie-after-{how.replace(' ', '-')}")
    assert _shows_sign_in_form(again), f"a cookie copied before the {how} still signs in"
    # Both open tabs are signed out at their next click.
    for page in (bob, thief):
        page.get_by_role("link", name="Progress").click()
        page.get_by_role("button", name="Log in").wait_for(timeout=30_000)
        settle(page)
        assert not _signed_in(page)
        assert page.locator(EXCEPTION).count() == 0
    shoot(bob, f"open-tab-after-{how.replace(' ', '-')}")
    if how == "password reset":  # the new password signs in as usual
        page = browser.new_context(viewport=VIEWPORT).new_page()
        page.goto(base)
        settle(page)
        page.get_by_label("User name").last.fill("bob")
        page.get_by_role("textbox", name="Password").last.fill(NEW_PASSWORD)
        page.get_by_role("button", name="Log in").last.click()
        page.get_by_text("Signed in as").first.wait_for(timeout=30_000)
    engine.dispose()


def test_a_stale_tab_keeps_the_cookie_another_tab_has_just_signed_in_with(server, browser, tmp_path):
    """Two tabs of one browser share its cookie: one logs out and signs in again; the other, still showing the old
    sign-in, is signed out at its next click, and must not drop the new cookie (a new tab is still signed in)."""
    base, db_url = server
    engine = _seed(db_url)
    first, cookie = _cookie_after_sign_in(browser, base, "bob")
    second = first.context.new_page()
    second.goto(base)
    settle(second)
    second.get_by_text("Signed in as").first.wait_for(timeout=30_000)  # by the shared cookie
    first.get_by_role("button", name="Log out").click()
    first.get_by_role("button", name="Log in").wait_for(timeout=30_000)
    settle(first)
    first.get_by_label("User name").last.fill("bob")
    first.get_by_role("textbox", name="Password").last.fill(PASSWORD)
    first.get_by_role("button", name="Log in").last.click()
    first.get_by_text("Signed in as").first.wait_for(timeout=30_000)
    deadline = time.monotonic() + 15
    while _cookie_value(first.context) in (None, cookie["value"]) and time.monotonic() < deadline:
        first.wait_for_timeout(200)  # the new cookie is set a moment after the sign-in
    fresh = _sign_in_cookie(first.context)
    assert fresh["value"] != cookie["value"]
    second.get_by_role("link", name="Progress").click()  # the old sign-in ended: this tab is signed out
    second.get_by_role("button", name="Log in").wait_for(timeout=30_000)
    settle(second)
    second.wait_for_timeout(1000)  # time for its page to ask for the cookie to go, if it (wrongly) did
    assert _sign_in_cookie(first.context)["value"] == fresh["value"]
    third = first.context.new_page()
    third.goto(base)
    settle(third)
    third.get_by_text("Signed in as").first.wait_for(timeout=30_000)
    screenshots_into(tmp_path / "shots")(second, "stale-tab-signed-out")
    engine.dispose()
