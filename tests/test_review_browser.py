"""A reviewer corrects a finished item in a real headless Chromium (fixtures and helpers of tests/test_browser.py)."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from superintendent import auth, queue
from superintendent.store import (
    AnnotationRevision,
    Item,
    init_db,
    make_engine,
    session_scope,
)
from tests.test_browser import PASSWORD, browser, log_in, server, settle, shot

__all__ = ["browser", "server"]  # fixtures of tests/test_browser.py, used here


@pytest.fixture(autouse=True)
def _no_file_watcher(monkeypatch):
    """The server started by the shared `server` fixture ignores edits of the working tree (set before it starts)."""
    monkeypatch.setenv("STREAMLIT_SERVER_FILE_WATCHER_TYPE", "none")


def sign_in(page, base, name):
    """`log_in` of tests/test_browser.py, tried again from the start if a redraw of the login form got in its way
    (under load the form can briefly be on the page twice, which its strict locators refuse)."""
    from playwright.sync_api import Error

    for attempt in range(3):
        try:
            return log_in(page, base, name)
        except Error:
            if attempt == 2:
                raise


def choose(page, label, option):
    """Pick an option of a select box; a rerun that redraws the box meanwhile closes the list, so try again then."""
    from playwright.sync_api import TimeoutError

    box = page.get_by_label(label, exact=True)
    for _ in range(5):
        settle(page)
        box.click()
        try:
            page.get_by_role("option", name=option, exact=True).click(timeout=5_000)
        except TimeoutError:
            continue
        settle(page)
        if box.input_value() == option:
            return
    raise AssertionError(f"could not pick {option!r} in {label!r}; it shows {box.input_value()!r}")


def test_a_reviewer_corrects_a_tie(server, browser):
    base, db_url = server
    engine = make_engine(db_url)
    init_db(engine)
    with session_scope(engine) as s:
        auth.create_user(s, "boss", PASSWORD, "admin")
        rita = auth.create_user(s, "rita", PASSWORD, "reviewer").id
        alice = auth.create_user(s, "alice", PASSWORD, "labeller").id
        bob = auth.create_user(s, "bob", PASSWORD, "labeller").id
        project = queue.create_project(s, "reviews", options=["good", "bad"], annotations_per_item=2, data_type="text")
        queue.add_items(s, project, ["a fine film", "a dull film", "not labelled yet"], external_ids=["r1", "r2", "r3"])
        ids = dict(s.execute(sa.select(Item.external_id, Item.id).where(Item.project_id == project.id)).all())
        for user, value in ((alice, "good"), (bob, "bad")):
            queue.submit(s, project, user, ids["r2"], value)  # a tie
        for user in (alice, bob):
            queue.submit(s, project, user, ids["r1"], "good")

    page = browser.new_page(viewport={"width": 1280, "height": 1000})
    sign_in(page, base, "rita")
    page.get_by_role("link", name="Review").click()
    settle(page)
    page.get_by_role("heading", name="Review").first.wait_for(timeout=30_000)
    page.get_by_text("Only ties").click()
    settle(page)
    page.get_by_text(f"Item {ids['r2']} · r2").first.wait_for(timeout=30_000)
    page.get_by_text("a dull film").first.wait_for(timeout=30_000)  # the item itself is shown
    choose(page, "Corrected label", "bad")
    page.get_by_role("button", name="Save correction").click()
    settle(page)
    page.get_by_text("Corrected to bad.").first.wait_for(timeout=30_000)
    shot(page, "review")

    with session_scope(engine, write=False) as s:
        assert s.get(Item, ids["r2"]).review_value == '"bad"'
        assert s.get(Item, ids["r2"]).reviewed_by == rita
        changes = s.execute(sa.select(AnnotationRevision.kind, AnnotationRevision.old_value, AnnotationRevision.new_value,
                                      AnnotationRevision.changed_by)).all()
        assert [tuple(c) for c in changes] == [("review", None, '"bad"', rita)]
        assert queue.labelled_data(s, project).labels == ["good", "bad"]

    # a labeller has no Review page, even by its URL
    context = browser.new_context()
    other = context.new_page()
    sign_in(other, base, "alice")
    assert other.get_by_role("link", name="Review").count() == 0
    other.goto(f"{base}/review")
    settle(other)
    assert other.get_by_role("button", name="Save correction").count() == 0
    context.close()
    engine.dispose()
