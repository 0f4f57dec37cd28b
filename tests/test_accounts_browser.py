"""Accounts as an admin and a labeller meet them, in a real headless Chromium (fixtures of tests/test_browser.py).

* "Change a user" reloads for the picked user, and Apply changes only what the admin changed (issue 12, item 1).
* A deactivated labeller's next click on the Label page stores nothing and shows the sign-in form (item 2).
* A locked or deactivated account with a valid login cookie sees the sign-in form and a message, never a
  traceback; a locked account is told so, with the minutes left (items 3 and 4).
* A new user is in the Users table and the "Change a user" picker at once (item 7).

Screenshots go into the test's temporary folder.
"""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa
from browser_helpers import PASSWORD, VIEWPORT, choose, item_text, screenshots_into, settle, sign_in, wait_for_new_item
from playwright.sync_api import Page
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from superintendent import auth, queue
from superintendent.store import Annotation, User, init_db, make_engine, session_scope, utcnow
from tests.test_browser import browser, server

__all__ = ["browser", "server"]  # fixtures of tests/test_browser.py, used here

EXCEPTION = '[data-testid="stException"]'


@pytest.fixture(autouse=True)
def _no_file_watcher(monkeypatch):
    monkeypatch.setenv("STREAMLIT_SERVER_FILE_WATCHER_TYPE", "none")


def _seed(db_url: str) -> sa.Engine:
    """amy (admin, first in the picker), bob (labeller), boss (admin); the text project "films" with 30 items."""
    engine = make_engine(db_url)
    init_db(engine)
    with session_scope(engine) as s:
        auth.create_user(s, "amy", PASSWORD, "admin")
        auth.create_user(s, "bob", PASSWORD, "labeller")
        auth.create_user(s, "boss", PASSWORD, "admin")
        project = queue.create_project(s, "films", options=["good", "bad"], data_type="text")
        queue.add_items(s, project, [f"film number {i}" for i in range(30)], external_ids=[f"f{i}" for i in range(30)])
    return engine


def _user(engine: sa.Engine, name: str) -> User:
    with session_scope(engine, write=False) as s:
        return auth.get_user(s, name)


def _annotations(engine: sa.Engine) -> int:
    with session_scope(engine, write=False) as s:
        return s.execute(sa.select(sa.func.count()).select_from(Annotation)).scalar_one()


def _users_tab(page: Page) -> None:
    page.get_by_role("link", name="Admin").click()
    settle(page)
    page.get_by_role("tab", name="Users").click()
    settle(page)


def _untick_active(page: Page) -> None:
    """Untick "Active (may log in)" as a person does: a click on its label."""
    page.get_by_text("Active (may log in)", exact=True).click()
    page.wait_for_function("() => !document.querySelector('input[aria-label=\"Active (may log in)\"]').checked", timeout=5_000)


def _table_cells(page: Page) -> list[str]:
    """The cell texts of the page's first table (the data grid keeps an accessible copy of its cells in the page)."""
    grid = page.locator('[data-testid="stDataFrame"]').first
    grid.wait_for(timeout=10_000)
    return grid.locator("td, [role=gridcell]").all_inner_texts()


def _no_exception(page: Page) -> None:
    assert page.locator(EXCEPTION).count() == 0, page.locator(EXCEPTION).first.inner_text()


def test_change_a_user_reloads_for_the_picked_user(server, browser, tmp_path):
    base, db_url = server
    engine = _seed(db_url)
    shoot = screenshots_into(tmp_path / "shots")
    page = browser.new_page(viewport=VIEWPORT)
    sign_in(page, base, "boss")
    _users_tab(page)
    choose(page, "User", "bob")
    settle(page)
    shoot(page, "change-user-bob")
    active = page.get_by_role("checkbox", name="Active (may log in)")
    assert active.is_checked()
    _untick_active(page)
    page.get_by_role("button", name="Apply").click()
    settle(page)
    page.get_by_text("User 'bob' updated.").wait_for(timeout=15_000)
    bob = _user(engine, "bob")
    assert (bob.role, bob.active) == ("labeller", False)
    # Back to amy: her values, nothing carried over from bob's form
    choose(page, "User", "amy")
    settle(page)
    assert page.get_by_role("checkbox", name="Active (may log in)").is_checked()
    page.get_by_role("button", name="Apply").click()
    settle(page)
    amy = _user(engine, "amy")
    assert (amy.role, amy.active) == ("admin", True)
    _no_exception(page)
    engine.dispose()


def test_a_new_user_is_listed_at_once(server, browser, tmp_path):
    base, db_url = server
    engine = _seed(db_url)
    page = browser.new_page(viewport=VIEWPORT)
    sign_in(page, base, "boss")
    _users_tab(page)
    page.get_by_label("User name", exact=True).fill("carol")
    page.get_by_role("textbox", name="Password").first.fill(PASSWORD)
    page.get_by_role("button", name="Create user").click()
    settle(page)
    page.get_by_text("User 'carol' created.").wait_for(timeout=15_000)
    screenshots_into(tmp_path / "shots")(page, "user-created")
    grid = page.locator('[data-testid="stDataFrame"]').first
    try:  # the grid draws its cells a moment after the element appears
        grid.locator("td, [role=gridcell]", has_text="carol").first.wait_for(state="attached", timeout=10_000)
    except PlaywrightTimeout:
        raise AssertionError(f"the Users table does not list carol: {_table_cells(page)}") from None
    choose(page, "User", "carol")  # fails if the picker has no "carol"
    settle(page)
    _no_exception(page)
    engine.dispose()


def test_a_deactivated_labeller_stops_at_the_next_click(server, browser, tmp_path):
    base, db_url = server
    engine = _seed(db_url)
    shoot = screenshots_into(tmp_path / "shots")
    admin = browser.new_context(viewport=VIEWPORT).new_page()
    bob = browser.new_context(viewport=VIEWPORT).new_page()
    sign_in(bob, base, "bob")
    before = item_text(bob)
    bob.get_by_role("button", name="good").click()
    wait_for_new_item(bob, before)
    stored = _annotations(engine)
    assert stored == 1
    sign_in(admin, base, "boss")
    _users_tab(admin)
    choose(admin, "User", "bob")
    settle(admin)
    _untick_active(admin)
    admin.get_by_role("button", name="Apply").click()
    settle(admin)
    assert _user(engine, "bob").active is False
    bob.get_by_role("button", name="good").click()
    bob.get_by_role("button", name="Log in").wait_for(timeout=15_000)
    settle(bob)
    shoot(bob, "deactivated-next-click")
    assert _annotations(engine) == stored, "the deactivated labeller's click stored a label"
    assert "deactivated" in bob.locator("[data-testid='stAlert']").first.inner_text()
    _no_exception(bob)
    engine.dispose()


@pytest.mark.parametrize("change", ["locked", "deactivated"])
def test_a_cookie_of_a_refused_account_shows_the_sign_in_form(server, browser, tmp_path, change):
    base, db_url = server
    engine = _seed(db_url)
    page = browser.new_context(viewport=VIEWPORT).new_page()
    sign_in(page, base, "bob")
    with session_scope(engine) as s:
        values = {"locked_until": utcnow() + dt.timedelta(minutes=10)} if change == "locked" else {"active": False}
        s.execute(sa.update(User).where(User.username == "bob").values(**values))
    for visit in range(2):  # the reload that deletes the cookie, then one without it
        page.goto(base)
        settle(page)
        page.get_by_role("button", name="Log in").wait_for(timeout=15_000)
        _no_exception(page)
        if visit == 0:
            screenshots_into(tmp_path / "shots")(page, f"cookie-{change}")
            page.get_by_text("try again in 10 minutes" if change == "locked" else "deactivated").first.wait_for(timeout=5_000)
    assert page.get_by_text("Signed in as").count() == 0
    engine.dispose()


def test_a_locked_account_is_told_so_whatever_the_name(server, browser, tmp_path):
    base, db_url = server
    engine = _seed(db_url)
    page = browser.new_page(viewport=VIEWPORT)
    page.goto(base)
    settle(page)
    for name in ("bob", "nobody"):
        for _ in range(auth.MAX_FAILED_LOGINS):
            page.get_by_label("User name").last.fill(name)
            page.get_by_role("textbox", name="Password").last.fill("wrong password!")
            page.get_by_role("button", name="Log in").last.click()
            settle(page)
        page.get_by_label("User name").last.fill(name)
        page.get_by_role("textbox", name="Password").last.fill(PASSWORD)
        page.get_by_role("button", name="Log in").last.click()
        settle(page)
        screenshots_into(tmp_path / "shots")(page, f"locked-{name}")
        page.get_by_text("try again in 15 minutes").first.wait_for(timeout=5_000)
    _no_exception(page)
    engine.dispose()
