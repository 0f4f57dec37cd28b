"""A page's own address, opened as a person does (a bookmark, a link in a message, a tab open across a server
restart), in a real headless Chromium (fixtures of tests/test_browser.py).

* Signed out, ``/admin`` shows the login form and nothing else: not Streamlit's listing of the files in ``pages/``
  (``streamlit app``, ``admin``, ``review``, ...), which a server shows until its router has run once. Signing in
  there opens the page asked for.
* A labeller at ``/admin`` or ``/review`` (a link an admin sent, or a role taken away since) is told the page is
  not open to their role, not "Page not found", and keeps their own pages in the sidebar.

The server is fresh in each test: the first visit is the one a restarted server gets.
"""

from __future__ import annotations

import pytest
from browser_helpers import PASSWORD, VIEWPORT, screenshots_into, settle, sign_in
from playwright.sync_api import Page

from superintendent import auth, queue
from superintendent.store import init_db, make_engine, session_scope
from tests.test_browser import browser, server

__all__ = ["browser", "server"]  # fixtures of tests/test_browser.py, used here

NAV = '[data-testid="stSidebarNav"]'
NOT_FOUND = "Page not found"


@pytest.fixture(autouse=True)
def _no_file_watcher(monkeypatch):
    monkeypatch.setenv("STREAMLIT_SERVER_FILE_WATCHER_TYPE", "none")


def _seed(db_url: str) -> None:
    engine = make_engine(db_url)
    init_db(engine)
    with session_scope(engine) as s:
        auth.create_user(s, "boss", PASSWORD, "admin")
        auth.create_user(s, "bob", PASSWORD, "labeller")
        project = queue.create_project(s, "films", options=["good", "bad"], data_type="text")
        queue.add_items(s, project, [f"film number {i}" for i in range(5)])
    engine.dispose()


def _nav_links(page: Page) -> list[str]:
    return [t.strip().splitlines()[-1] for t in page.locator(f"{NAV} a").all_inner_texts()]  # after the icon's name


def test_signed_out_at_a_page_address_sees_only_the_login_form_then_that_page(server, browser, tmp_path):
    base, db_url = server
    _seed(db_url)
    shoot = screenshots_into(tmp_path / "shots")
    page = browser.new_context(viewport=VIEWPORT).new_page()
    page.goto(f"{base}/admin")  # the first visit this server gets
    settle(page)
    page.get_by_role("button", name="Log in").wait_for()
    page.wait_for_timeout(500)
    shoot(page, "signed-out-admin")
    assert page.locator(NAV).count() == 0, f"signed out, the sidebar lists pages: {_nav_links(page)}"
    assert page.get_by_text(NOT_FOUND).count() == 0

    sign_in(page, base, "boss", path="admin")
    page.get_by_role("heading", name="Admin").first.wait_for(timeout=30_000)
    settle(page)
    shoot(page, "admin-after-sign-in")
    assert page.url.rstrip("/").endswith("/admin")
    assert _nav_links(page) == ["Label", "Progress", "Model", "Review", "Admin", "My account"]
    assert page.get_by_text(NOT_FOUND).count() == 0


@pytest.mark.parametrize("path, title", [("admin", "Admin"), ("review", "Review")])
def test_a_labeller_at_a_page_for_other_roles_is_told_so(server, browser, tmp_path, path, title):
    base, db_url = server
    _seed(db_url)
    shoot = screenshots_into(tmp_path / "shots")
    page = browser.new_context(viewport=VIEWPORT).new_page()
    sign_in(page, base, "bob", path=path)
    message = page.get_by_text(f"The {title} page is not open to labellers")
    message.wait_for(timeout=30_000)
    settle(page)
    shoot(page, f"labeller-{path}")
    assert page.get_by_text(NOT_FOUND).count() == 0
    assert _nav_links(page) == ["Label", "Progress", "Model", "My account"]
    assert page.get_by_role("heading", name=title).count() == 0  # nothing of the page itself

    page.goto(base)  # and signed in, the same address again
    settle(page)
    page.goto(f"{base}/{path}")
    settle(page)
    message.wait_for(timeout=30_000)
    assert page.get_by_text(NOT_FOUND).count() == 0
