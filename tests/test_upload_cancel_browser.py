"""A long import in the Upload tab, in headless Chromium: it runs off the page's thread with a progress bar and a
"Cancel import" button; a cancelled import leaves the project without a single new item, a second Import press while
one runs says so, and the next import completes and shows its counts (issue 13, item 4).

Real data: scikit-learn's wine rows repeated to 200,000 rows with new ids (a 16 MB CSV), so the import takes seconds.
"""

from __future__ import annotations

import pandas as pd
import pytest
import sqlalchemy as sa
from browser_helpers import VIEWPORT, choose, screenshots_into, settle, sign_in
from sklearn.datasets import load_wine

from superintendent import audit, auth, queue
from superintendent.store import Annotation, Item, init_db, make_engine, session_scope
from tests.test_browser import browser, server

__all__ = ["browser", "server"]  # fixtures of tests/test_browser.py, used here

ROWS = 200_000


@pytest.fixture(autouse=True)
def _no_file_watcher(monkeypatch):
    monkeypatch.setenv("STREAMLIT_SERVER_FILE_WATCHER_TYPE", "none")


def wine_csv(path, n_rows: int) -> None:
    wine = load_wine(as_frame=True).frame
    big = pd.concat([wine] * (n_rows // len(wine) + 1), ignore_index=True).iloc[:n_rows]
    big["label"] = [f"class_{t}" for t in big.pop("target")]
    big.insert(0, "id", [f"w-{i:06d}" for i in range(n_rows)])
    big.to_csv(path, index=False)


def stored(db_url) -> tuple[int, int]:
    engine = make_engine(db_url)
    try:
        with session_scope(engine, write=False) as s:
            return (s.execute(sa.select(sa.func.count()).select_from(Item)).scalar_one(),
                    s.execute(sa.select(sa.func.count()).select_from(Annotation)).scalar_one())
    finally:
        engine.dispose()


def imports_audited(db_url) -> list[dict]:
    engine = make_engine(db_url)
    try:
        with session_scope(engine, write=False) as s:
            return [e.details for e in audit.recent(s) if e.action == "data.import"]
    finally:
        engine.dispose()


def test_a_long_import_shows_progress_can_be_cancelled_and_then_completes(server, browser, tmp_path):
    base, db_url = server
    engine = make_engine(db_url)
    init_db(engine)
    with session_scope(engine) as s:
        auth.create_user(s, "boss", "correct horse battery", "admin")
        queue.create_project(s, "wine", options=["class_0", "class_1", "class_2"], data_type="tabular")
    engine.dispose()
    wine_csv(tmp_path / "wine.csv", ROWS)
    shoot = screenshots_into(tmp_path / "shots")

    page = browser.new_page(viewport=VIEWPORT)
    sign_in(page, base, "boss")
    page.get_by_role("link", name="Admin").click()
    settle(page)
    page.get_by_role("tab", name="Upload data").click()
    choose(page, "Into project", "wine")
    page.locator('[data-testid="stFileUploaderDropzoneInput"]').set_input_files(str(tmp_path / "wine.csv"))
    import_button = page.get_by_role("button", name=f"Import {ROWS:,} items into 'wine'")
    import_button.wait_for(timeout=120_000)  # the id and label columns are guessed from their names
    settle(page, timeout=120_000)

    # 1. start, see it run, cancel: nothing is imported
    import_button.click()
    bar = page.locator('[data-testid="stProgress"]')
    page.get_by_text("Importing").filter(has_text=f"of {ROWS:,} items").first.wait_for(timeout=60_000)
    page.wait_for_function("() => /Importing [1-9][0-9,]* of 200,000 items/.test(document.body.innerText)", timeout=60_000)
    assert bar.count() == 1
    shoot(page, "upload-running")
    page.get_by_role("button", name="Cancel import").click()
    page.get_by_text("Import cancelled: nothing was imported").wait_for(timeout=60_000)
    settle(page)
    shoot(page, "upload-cancelled")
    assert stored(db_url) == (0, 0)  # no new item, no label
    assert imports_audited(db_url) == []  # nothing imported, nothing audited
    assert page.get_by_role("button", name="Cancel import").count() == 0 and bar.count() == 0  # the fragment stopped

    # 2. import again; a second press while it runs says so and starts nothing
    import_button.click()
    page.get_by_role("button", name="Cancel import").wait_for(timeout=60_000)
    import_button.click()
    page.get_by_text("An import started here is still running").wait_for(timeout=30_000)
    shoot(page, "upload-second-press")
    page.get_by_text(f"Imported {ROWS:,} new items").first.wait_for(timeout=300_000)
    settle(page)
    shoot(page, "upload-imported")
    assert page.get_by_text("Nothing was imported").count() == 0
    assert page.locator('[data-testid="stException"]').count() == 0
    assert stored(db_url) == (ROWS, ROWS)  # once: the second press imported nothing more
    (entry,) = imports_audited(db_url)  # written by the worker thread when the import ended
    assert entry["file"] == "wine.csv" and entry["added"] == ROWS and entry["labels_new"] == ROWS
