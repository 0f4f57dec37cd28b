"""A reviewer corrects a finished item in a real headless Chromium (fixtures of tests/test_browser.py).

The tour is tests/browser_helpers.py's (tools/screenshots.py takes docs/images/review.png
from it); the screenshot taken here goes into the test's temporary folder.
"""

from __future__ import annotations

import shutil

import pytest
import sqlalchemy as sa
from browser_helpers import REVIEW_VIEWPORT, review_tour, screenshots_into, seed_review, settle, sign_in

from superintendent import queue
from superintendent.store import AnnotationRevision, Item, make_engine, session_scope
from tests.test_browser import browser, server

__all__ = ["browser", "server"]  # fixtures of tests/test_browser.py, used here


@pytest.fixture(autouse=True)
def _no_file_watcher(monkeypatch):
    """The server started by the shared `server` fixture ignores edits of the working tree (set before it starts)."""
    monkeypatch.setenv("STREAMLIT_SERVER_FILE_WATCHER_TYPE", "none")


def test_a_reviewer_corrects_a_tie(server, browser, tmp_path):
    base, db_url = server
    ids, users = seed_review(db_url)
    page = browser.new_page(viewport=REVIEW_VIEWPORT)
    review_tour(page, base, ids["r2"], screenshots_into(tmp_path / "screenshots"))
    assert (tmp_path / "screenshots" / "review.png").exists()

    engine = make_engine(db_url)
    with session_scope(engine, write=False) as s:
        assert s.get(Item, ids["r2"]).review_value == '"bad"'
        assert s.get(Item, ids["r2"]).reviewed_by == users["rita"]
        changes = s.execute(sa.select(AnnotationRevision.kind, AnnotationRevision.old_value, AnnotationRevision.new_value,
                                      AnnotationRevision.changed_by)).all()
        assert [tuple(c) for c in changes] == [("review", None, '"bad"', users["rita"])]
        assert queue.labelled_data(s, queue.get_project(s, "reviews")).labels == ["good", "bad"]

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


def test_items_are_shown_by_content_in_review_and_in_your_recent_labels(server, browser, tmp_path):
    """Issue 12, item 13: the text of an item (and its id), never ``item 1869 · e4dbe526...``; Review finds items by
    content and by id."""
    base, db_url = server
    ids, _ = seed_review(db_url)
    shoot = screenshots_into(tmp_path / "shots")
    page = browser.new_page(viewport=REVIEW_VIEWPORT)
    sign_in(page, base, "rita")
    page.get_by_role("link", name="Review").click()
    settle(page)
    page.get_by_role("heading", name="Review").first.wait_for(timeout=30_000)
    picker = page.get_by_label("Open item", exact=True)
    assert picker.input_value().startswith("a dull film · id r2")  # newest first: r2, by its text and id
    assert f"item {ids['r2']}" not in picker.input_value()
    box = page.get_by_label("Search by id or content")
    box.fill("FINE")
    box.press("Enter")
    settle(page)
    assert picker.input_value().startswith("a fine film · id r1")
    box.fill("r2")
    box.press("Enter")
    settle(page)
    assert picker.input_value().startswith("a dull film · id r2")
    shoot(page, "review-search")

    other = browser.new_page(viewport=REVIEW_VIEWPORT)
    sign_in(other, base, "alice")
    other.get_by_text("Your recent labels").first.click()
    settle(other)
    recent = other.get_by_label("Label to change", exact=True)
    recent.wait_for(timeout=30_000)
    assert " · id r" in recent.input_value() and recent.input_value().split(" · ")[0] in ("a fine film", "a dull film")
    shoot(other, "recent-labels")
    shutil.copytree(tmp_path / "shots", "/tmp/review-shots", dirs_exist_ok=True)
