"""A reviewer corrects a finished item in a real headless Chromium (fixtures of tests/test_browser.py).

The tour is tests/browser_helpers.py's (tools/screenshots.py takes docs/images/review.png
from it); the screenshot taken here goes into the test's temporary folder.
"""

from __future__ import annotations

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
