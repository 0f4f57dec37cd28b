"""An admin changes a project while a labeller is labelling in it, in a real headless Chromium (fixtures of
tests/test_browser.py). The Label page draws each next item without redrawing the page, and it once kept the
project as it was when the page was drawn: a new option never appeared, a removed one was still stored, and
"annotations per item" raised to 2 still finished items after one label. Now

* each next item is drawn with the project's settings as they are then (options, their order);
* a label is checked against the options at the moment of the click: one removed since the buttons were drawn
  stores nothing and says so, and the buttons are drawn again;
* whether a label finishes its item follows the project's "annotations per item" at that moment.
"""

from __future__ import annotations

import pytest
import pyjokes
import sqlalchemy as sa
from browser_helpers import PASSWORD, VIEWPORT, item_text, screenshots_into, settle, sign_in, wait_for_new_item

from superintendent import auth, queue
from superintendent.store import Annotation, Item, init_db, make_engine, session_scope
from tests.test_browser import browser, server

__all__ = ["browser", "server"]  # fixtures of tests/test_browser.py, used here


@pytest.fixture(autouse=True)
def _no_file_watcher(monkeypatch):
    monkeypatch.setenv("STREAMLIT_SERVER_FILE_WATCHER_TYPE", "none")


def _buttons(page) -> list[str]:
    return [t.strip().splitlines()[0] for t in page.locator('[class*="st-key-label-opt-"] button').all_inner_texts()]


def _change(engine, **settings) -> None:
    with session_scope(engine) as s:
        queue.update_project(s, queue.get_project(s, "jokes"), **settings)


def _stored(engine) -> list[tuple[str, bool]]:
    with session_scope(engine, write=False) as s:
        return [tuple(r) for r in s.execute(sa.select(Annotation.value, Item.done).join(Item, Item.id == Annotation.item_id)
                                            .order_by(Annotation.id))]


def test_the_label_page_follows_an_admins_change_of_the_project(server, browser, tmp_path):
    base, db_url = server
    engine = make_engine(db_url)
    init_db(engine)
    with session_scope(engine) as s:
        auth.create_user(s, "lee", PASSWORD, "labeller")
        project = queue.create_project(s, "jokes", options=["funny", "not funny"], data_type="text")
        queue.add_items(s, project, pyjokes.get_jokes()[:20])
    shoot = screenshots_into(tmp_path / "shots")
    page = browser.new_context(viewport=VIEWPORT).new_page()
    sign_in(page, base, "lee")
    for key in ("1", "2"):  # past the first runs after signing in: the next items come in the fragment
        before = item_text(page)
        page.keyboard.press(key)
        wait_for_new_item(page, before)
    assert _buttons(page) == ["funny", "not funny"]

    _change(engine, options=["funny", "not funny", "pun"])  # the admin adds an option
    before = item_text(page)
    page.keyboard.press("1")
    wait_for_new_item(page, before)
    settle(page)
    shoot(page, "new-option-shown")
    assert _buttons(page) == ["funny", "not funny", "pun"]

    _change(engine, options=["pun", "not funny"])  # removes "funny", which the page shows as key 1
    before = item_text(page)
    page.keyboard.press("1")
    page.get_by_text("label 'funny' is not an option of project 'jokes'").wait_for(timeout=20_000)
    settle(page)
    shoot(page, "removed-option-refused")
    assert item_text(page) == before  # the same item, not labelled
    assert _buttons(page) == ["pun", "not funny"]
    assert [v for v, _ in _stored(engine)] == ['"funny"', '"not funny"', '"funny"']

    _change(engine, annotations_per_item=2)
    page.keyboard.press("1")  # "pun" now
    wait_for_new_item(page, before)
    assert _stored(engine)[-1] == ('"pun"', False)  # one label of two: the item stays open for a second labeller
    assert page.locator('[data-testid="stException"]').count() == 0
    engine.dispose()
