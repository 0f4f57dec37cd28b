"""The My account page in a real headless Chromium (fixtures of tests/test_browser.py): a labeller creates an API token,
sees it once, uses it, revokes it; "Sign out everywhere" ends their sign-ins (issue 15).

Screenshots go into /tmp/shots-httpapi/ when SUPERINTENDENT_SHOTS is set to a folder, else the test's temporary folder.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import requests
import sqlalchemy as sa
from browser_helpers import PASSWORD, VIEWPORT, screenshots_into, settle, sign_in

from superintendent import auth, queue, tokens
from superintendent.store import init_db, make_engine, session_scope
from tests.test_browser import browser, server

__all__ = ["browser", "server"]  # fixtures of tests/test_browser.py, used here

EXCEPTION = '[data-testid="stException"]'


@pytest.fixture(autouse=True)
def _no_file_watcher(monkeypatch):
    monkeypatch.setenv("STREAMLIT_SERVER_FILE_WATCHER_TYPE", "none")


def _seed(db_url: str) -> sa.Engine:
    engine = make_engine(db_url)
    init_db(engine)
    with session_scope(engine) as s:
        auth.create_user(s, "boss", PASSWORD, "admin")
        bob = auth.create_user(s, "bob", PASSWORD, "labeller")
        project = queue.create_project(s, "films", options=["good", "bad"], data_type="text")
        queue.add_items(s, project, [f"film number {i}" for i in range(5)])
        tokens.create(s, bob.id, "old laptop")
    return engine


def test_my_account_creates_a_token_shown_once_and_revokes_it(server, browser, tmp_path):
    base, db_url = server
    engine = _seed(db_url)
    shoot = screenshots_into(Path(os.environ.get("SUPERINTENDENT_SHOTS") or tmp_path / "shots"))
    page = browser.new_page(viewport=VIEWPORT)
    sign_in(page, base, "bob")
    page.get_by_role("link", name="My account").click()
    settle(page)
    page.get_by_text("API tokens").first.wait_for()
    shoot(page, "account-before")

    page.get_by_label("What it is for").fill("crowd bridge")
    page.get_by_role("button", name="Create token").click()
    settle(page)
    shown = page.locator('[data-testid="stCode"] code').first.inner_text().strip()
    assert shown.startswith("sp_") and len(shown) > 40
    assert page.get_by_text("it is shown only this once").count() == 1
    shoot(page, "account-token-created")
    with session_scope(engine, write=False) as s:
        listed = tokens.list_tokens(s, auth.get_user(s, "bob").id)
    assert [t.name for t in listed] == ["crowd bridge", "old laptop"] and listed[0].prefix == shown[:10]

    answer = requests.get(f"{base}/api/v1/projects", headers={"Authorization": f"Bearer {shown}"}, timeout=30)
    assert answer.status_code == 200 and [p["name"] for p in answer.json()["data"]] == ["films"]

    page.get_by_role("link", name="Label").click()  # leave and come back: the token is not shown again
    settle(page)
    page.get_by_role("link", name="My account").click()
    settle(page)
    assert page.locator('[data-testid="stCode"]').count() == 0
    assert shown not in page.content()

    pick = page.get_by_label("Token to revoke")
    pick.click()
    page.get_by_role("option", name="crowd bridge", exact=False).click()
    settle(page)
    page.get_by_role("button", name="Revoke").click()
    settle(page)
    shoot(page, "account-token-revoked")
    assert page.locator(EXCEPTION).count() == 0
    with session_scope(engine, write=False) as s:
        states = {t.name: t.state() for t in tokens.list_tokens(s, auth.get_user(s, "bob").id)}
    assert states == {"crowd bridge": "revoked", "old laptop": "active"}
    assert requests.get(f"{base}/api/v1/projects", headers={"Authorization": f"Bearer {shown}"}, timeout=30).status_code == 401

    page.get_by_role("button", name="Sign out everywhere").click()
    page.get_by_role("button", name="Log in").last.wait_for(timeout=30_000)
    settle(page)
    page.get_by_text("signed out everywhere (by its owner or an admin)").first.wait_for()
    shoot(page, "account-signed-out")
    assert page.locator(EXCEPTION).count() == 0
