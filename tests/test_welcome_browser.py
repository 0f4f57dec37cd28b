"""The first run and the error boundary in a real headless Chromium (fixtures of tests/test_browser.py).

* The welcome page shows every problem at once and signs the new admin in (issue 12, item 8).
* No traceback ever reaches a browser: a page that raises shows one line with an error id, and the
  server's log holds the traceback.
"""

from __future__ import annotations

import re

import pytest
from browser_helpers import PASSWORD, VIEWPORT, AppDidNotStart, running_app, screenshots_into, settle, sign_in

from superintendent import auth
from superintendent.app.errors import FAULT_ENV
from superintendent.store import init_db, make_engine, session_scope
from tests.test_browser import _need_chromium, browser, server

__all__ = ["browser", "server"]  # fixtures of tests/test_browser.py, used here

EXCEPTION = '[data-testid="stException"]'


@pytest.fixture(autouse=True)
def _no_file_watcher(monkeypatch):
    monkeypatch.setenv("STREAMLIT_SERVER_FILE_WATCHER_TYPE", "none")


def _fill(page, label: str, value: str) -> None:
    box = page.get_by_role("textbox", name=label, exact=True)
    box.fill(value)


def test_welcome_shows_every_problem_and_signs_the_admin_in(server, browser, tmp_path):
    base, _db_url = server
    shoot = screenshots_into(tmp_path / "shots")
    page = browser.new_page(viewport=VIEWPORT)
    page.goto(base)
    settle(page)
    page.get_by_text("Welcome to superintendent").wait_for(timeout=30_000)
    _fill(page, "User name", "new admin")
    _fill(page, "Password", "short")
    _fill(page, "Repeat password", "shorter")
    page.get_by_role("button", name="Create admin").click()
    settle(page)
    shoot(page, "welcome-problems")
    alerts = page.locator('[data-testid="stAlert"]').all_inner_texts()
    text = " ".join(alerts)
    assert "contain spaces" in text and f"at least {auth.MIN_PASSWORD_LENGTH} characters" in text and "differ" in text, alerts
    _fill(page, "User name", "ada")
    _fill(page, "Password", PASSWORD)
    _fill(page, "Repeat password", PASSWORD)
    page.get_by_text(re.compile("^Load the demo projects")).click()  # untick, as a person does: on its label
    page.wait_for_function("() => !document.querySelector('input[aria-label^=\"Load the demo projects\"]').checked", timeout=5_000)
    page.get_by_role("button", name="Create admin").click()
    page.get_by_text("Signed in as").first.wait_for(timeout=30_000)
    settle(page)
    shoot(page, "welcome-signed-in")
    assert page.get_by_role("button", name="Log in").count() == 0
    page.wait_for_timeout(1500)  # the remember-me cookie's component answers
    page.goto(base)  # a reload keeps the admin signed in (the cookie was set)
    settle(page)
    page.get_by_text("Signed in as").first.wait_for(timeout=30_000)
    assert page.locator(EXCEPTION).count() == 0


def test_a_page_that_raises_shows_an_error_id_and_no_traceback(browser, tmp_path, monkeypatch):
    _need_chromium()
    monkeypatch.setenv(FAULT_ENV, "page")
    try:
        with running_app(tmp_path) as (base, db_url):
            engine = make_engine(db_url)
            init_db(engine)
            with session_scope(engine) as s:
                auth.create_user(s, "boss", PASSWORD, "admin")
            engine.dispose()
            page = browser.new_page(viewport=VIEWPORT)
            page.goto(base)
            settle(page)
            page.get_by_role("button", name="Log in").last.wait_for(timeout=30_000)
            page.get_by_label("User name").last.fill("boss")
            page.get_by_role("textbox", name="Password").last.fill(PASSWORD)
            page.get_by_role("button", name="Log in").last.click()
            page.get_by_text("Something went wrong on this page").first.wait_for(timeout=30_000)
            settle(page)
            screenshots_into(tmp_path / "shots")(page, "error-boundary")
            assert page.locator(EXCEPTION).count() == 0
            shown = page.locator('[data-testid="stAlert"]').all_inner_texts()
            assert not any("/secret/server/path.py" in t or "Traceback" in t for t in shown), shown
            error_id = re.search(r"error id ([0-9a-f]{8})", " ".join(shown)).group(1)
        log = (tmp_path / "streamlit.log").read_text()
        assert f"error {error_id}" in log and "Traceback" in log and "/secret/server/path.py" in log
    except AppDidNotStart as exc:
        pytest.fail(str(exc))
