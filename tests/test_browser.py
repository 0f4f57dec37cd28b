"""End to end in a real headless Chromium against `streamlit run streamlit_app.py` on 127.0.0.1.

Chromium is Debian's (/usr/bin/chromium), driven by the Python playwright
package (never `playwright install`). Without Chromium the test skips with
the reason, except under CI=true, where it fails. The app and the browser
are driven by tests/browser_helpers.py (shared with tools/screenshots.py,
which redraws docs/images/ from the same tour); the screenshots taken here
go into the test's temporary folder.

The fixtures ``server`` and ``browser`` are imported by the other browser
tests from here.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
import sqlalchemy as sa
from browser_helpers import (
    CHROMIUM,
    FIRST_RUN_SHOTS,
    VIEWPORT,
    AppDidNotStart,
    choose,
    chromium,
    first_run_tour,
    log_in,
    running_app,
    screenshots_into,
    settle,
)

from conftest import IN_CI

from superintendent import queue
from superintendent.store import Annotation, User, make_engine, session_scope


def _need_chromium() -> None:
    if not Path(CHROMIUM).exists():
        reason = f"no Chromium at {CHROMIUM} (Debian package 'chromium')"
        if IN_CI:
            pytest.fail(reason + " (CI=true: browser tests must run)")
        pytest.skip(reason)


@pytest.fixture
def server(tmp_path):
    """`streamlit run streamlit_app.py` on a fresh SQLite file; yields (base URL, database URL)."""
    _need_chromium()
    try:
        with running_app(tmp_path) as (base, db_url):
            yield base, db_url
    except AppDidNotStart as exc:
        pytest.fail(str(exc))


@pytest.fixture
def browser():
    _need_chromium()
    with chromium() as b:
        yield b


def test_first_run_to_export(server, browser, tmp_path):
    base, db_url = server
    page = browser.new_page(viewport=VIEWPORT)
    shots = tmp_path / "screenshots"

    # first admin, a project from a CSV, a labeller, nine labels kept (one undone), a skip, a retrain, the progress
    given = first_run_tour(page, base, tmp_path, screenshots_into(shots))
    assert sorted(p.stem for p in shots.glob("*.png")) == sorted(FIRST_RUN_SHOTS)

    engine = make_engine(db_url)
    with session_scope(engine, write=False) as s:
        stored = s.execute(sa.select(Annotation.value).join(User, User.id == Annotation.user_id).where(User.username == "boss")).scalars().all()
    assert len(stored) == 9

    # export: the CSV's rows are the labels given
    page.get_by_role("link", name="Admin").click()
    settle(page)
    page.get_by_role("tab", name="Export labels").click()
    choose(page, "Project", "reviews")  # the visible tab's box (other tabs keep theirs in the page, hidden)
    page.get_by_text("Every individual annotation").click()  # one row per annotation, with who gave it
    settle(page)
    page.get_by_role("button", name="Prepare export").click()
    settle(page)
    with page.expect_download() as download:
        page.get_by_role("button", name="Download CSV").click()
    exported = list(csv.DictReader(io.StringIO(Path(download.value.path()).read_text())))
    with session_scope(engine, write=False) as s:
        project = queue.get_project(s, "reviews")
        ids = dict(s.execute(sa.select(queue.Item.external_id, queue.Item.data).where(queue.Item.project_id == project.id)).all())
    texts = {ext: data.strip('"').split(":")[0] for ext, data in ids.items()}
    assert sorted((texts[r["external_id"]], r["label"], r["user"]) for r in exported) == sorted((t, lab, "boss") for t, lab in given)

    # the labeller sees no Admin page, even by its URL
    context = browser.new_context()
    other = context.new_page()
    log_in(other, base, "alice")
    other.get_by_role("link", name="Label").first.wait_for(timeout=30_000)
    assert other.get_by_role("link", name="Admin").count() == 0
    other.goto(f"{base}/admin")
    settle(other)
    assert other.get_by_role("heading", name="Admin").count() == 0
    assert other.get_by_role("tab", name="Users").count() == 0
    other.keyboard.press("Escape")  # close Streamlit's "page not found" notice
    other.get_by_role("button", name="Log out").click()
    other.get_by_role("button", name="Log in").wait_for(timeout=20_000)
    context.close()
    engine.dispose()
