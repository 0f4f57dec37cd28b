"""Projects for teams, as a labeller sees them in a real headless Chromium (fixtures of tests/test_browser.py).

A labeller sees only the projects they are members of, lands on the one they used last, reads the
guidelines (Markdown, raw HTML not rendered) and each option's description, gets a plain empty-queue
message in a project without a model, and, right after choosing a project, presses "2" to label (the
key does not go into the Project box). Screenshots go to the test's temporary folder.
"""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from browser_helpers import PASSWORD, VIEWPORT, choose, item_text, screenshots_into, settle, sign_in

from superintendent import auth, queue
from superintendent.store import Annotation, init_db, make_engine, session_scope
from tests.test_browser import browser, server

__all__ = ["browser", "server"]  # fixtures of tests/test_browser.py, used here

GUIDELINES = "Label **each** film by its tone.\n\n<b id='raw-html'>bold by HTML</b>"


@pytest.fixture(autouse=True)
def _no_file_watcher(monkeypatch):
    monkeypatch.setenv("STREAMLIT_SERVER_FILE_WATCHER_TYPE", "none")


def seed(db_url: str) -> dict[str, int]:
    """bob is a member of 'alpha', 'films' and 'empty' (no items, no model); carl alone of 'secret'."""
    engine = make_engine(db_url)
    init_db(engine)
    with session_scope(engine) as s:
        bob = auth.create_user(s, "bob", PASSWORD, "labeller").id
        carl = auth.create_user(s, "carl", PASSWORD, "labeller").id
        ids = {"bob": bob}
        for name, items, extra in (("alpha", ["a1", "a2"], {}), ("secret", ["s1"], {}), ("empty", [], {}),
                                   ("films", ["a fine film", "a dull film", "a long film"],
                                    {"guidelines": GUIDELINES, "option_descriptions": {"good": "you would watch it again"}})):
            project = queue.create_project(s, name, options=["good", "bad"], data_type="text", **extra)
            if items:
                queue.add_items(s, project, items)
            queue.add_members(s, project.id, [carl] if name == "secret" else [bob])
            ids[name] = project.id
    engine.dispose()
    return ids


def project_options(page) -> list[str]:
    page.get_by_label("Project", exact=True).click()
    names = page.get_by_role("option").all_inner_texts()
    page.keyboard.press("Escape")
    return names


def test_a_labeller_works_in_their_projects_by_keyboard(server, browser, tmp_path):
    base, db_url = server
    ids = seed(db_url)
    shoot = screenshots_into(tmp_path / "screenshots")
    page = browser.new_page(viewport=VIEWPORT)
    sign_in(page, base, "bob")
    assert project_options(page) == ["alpha", "empty", "films"]  # not 'secret'
    settle(page)

    choose(page, "Project", "films")
    item = item_text(page)
    page.keyboard.press("2")  # right after choosing: labels "bad", does not type into the Project box
    page.wait_for_function("() => document.querySelectorAll('.st-key-label-item').length === 1 && "
                           f"!document.querySelector('.st-key-label-item').innerText.includes({item!r})", timeout=20_000)
    engine = make_engine(db_url)
    with session_scope(engine, write=False) as s:
        assert s.execute(sa.select(Annotation.value).where(Annotation.project_id == ids["films"])).scalars().all() == ['"bad"']
    assert page.get_by_label("Project", exact=True).input_value() == "films"
    assert page.evaluate("() => document.activeElement.getAttribute('aria-label')") != "Project"

    page.get_by_text("Guidelines").click()
    page.get_by_text("by its tone").wait_for(timeout=10_000)
    assert page.locator("strong", has_text="each").count() == 1  # Markdown rendered
    assert page.locator("#raw-html").count() == 0  # raw HTML not
    page.get_by_role("button", name="good").hover()
    page.get_by_text("you would watch it again").wait_for(timeout=10_000)
    shoot(page, "label-guidelines")

    choose(page, "Project", "empty")
    page.get_by_text("Nothing left for you to label").wait_for(timeout=20_000)
    text = page.locator('[data-testid="stMain"]').inner_text()
    assert "no model" in text and "The model reorders the queue" not in text
    shoot(page, "label-empty-no-model")

    # a new session lands on the project used last
    other = browser.new_page(viewport=VIEWPORT)
    sign_in(other, base, "bob")
    assert other.get_by_label("Project", exact=True).input_value() == "empty"
    assert page.locator('[data-testid="stException"]').count() == 0 and other.locator('[data-testid="stException"]').count() == 0
    engine.dispose()
