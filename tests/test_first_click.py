"""A labeller's first click right after signing in is kept (Chromium, real `streamlit run`).

Just after login the cookie component makes Streamlit rerun the whole app;
a click on a fragment's button during that rerun used to be dropped. The
Label page draws the item without its fragment for the first runs after
signing in (label_view.SETTLING_RUNS), so the click is never lost.
"""

from __future__ import annotations

import sqlalchemy as sa
from browser_helpers import PASSWORD, settle

from superintendent import auth, queue
from superintendent.store import Annotation, init_db, make_engine, session_scope
from tests.test_browser import browser, server  # noqa: F401 - fixtures

ROUNDS = 6  # without the fix, about one first click in four was lost here


def _setup(db_url: str) -> None:
    engine = make_engine(db_url)
    init_db(engine)
    with session_scope(engine) as s:
        auth.create_user(s, "boss", PASSWORD, role="admin")
        for n in range(ROUNDS):
            auth.create_user(s, f"lab{n}", PASSWORD, role="labeller")
        project = queue.create_project(s, "quick", options=["yes", "no"])
        queue.add_items(s, project, [f"item {i}" for i in range(40)])


def test_the_first_click_after_signing_in_is_stored(server, browser):
    base, db_url = server
    _setup(db_url)
    engine = make_engine(db_url)
    for n in range(ROUNDS):
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        page = context.new_page()
        page.goto(base)
        settle(page)
        page.get_by_role("button", name="Log in").last.wait_for(timeout=30_000)
        user, secret = page.get_by_label("User name").last, page.get_by_role("textbox", name="Password").last
        for _ in range(5):  # the first script run may still redraw the form: type until the values stick
            user.fill(f"lab{n}")
            secret.fill(PASSWORD)
            page.wait_for_timeout(300)
            if user.input_value() == f"lab{n}" and secret.input_value() == PASSWORD:
                break
        page.get_by_role("button", name="Log in").last.click()
        page.get_by_text("Signed in as").first.wait_for(timeout=30_000)
        # click "yes" the moment it is there: inside the window of the post-login rerun
        page.locator(".st-key-label-opt-0 button").first.click(timeout=30_000)
        settle(page)
        page.wait_for_timeout(1500)  # a dropped click would never arrive; a kept one is stored by now
        settle(page)
        with session_scope(engine, write=False) as s:
            uid = auth.get_user(s, f"lab{n}").id
            stored = s.execute(sa.select(sa.func.count()).select_from(Annotation).where(Annotation.user_id == uid)).scalar_one()
        assert stored == 1, f"round {n}: the first click after signing in was lost"
        # and after the settling runs the fragment path labels as before
        for _ in range(3):
            page.locator(".st-key-label-opt-1 button").first.click()
            settle(page)
        page.wait_for_timeout(500)
        with session_scope(engine, write=False) as s:
            stored = s.execute(sa.select(sa.func.count()).select_from(Annotation).where(Annotation.user_id == uid)).scalar_one()
        assert stored == 4, f"round {n}: {stored} labels stored after 4 clicks"
        context.close()
