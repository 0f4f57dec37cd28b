"""The Upload tab as an admin uses it, in headless Chromium (issue 12, items 5 and 11).

Real data: scikit-learn's wine table as CSV (an id column and a label column), then plotly's tips as Parquet dropped on
the same uploader. The pickers never offer the id and label columns to show or to model; a second file starts from its
own columns with no error; nothing says "Nothing was imported" before Import is pressed.
"""

from __future__ import annotations


import pytest
from browser_helpers import VIEWPORT, choose, screenshots_into, settle, sign_in
from sklearn.datasets import load_wine

from superintendent import auth, queue
from superintendent.store import init_db, make_engine, session_scope
from tests.test_browser import browser, server

__all__ = ["browser", "server"]  # fixtures of tests/test_browser.py, used here



@pytest.fixture(autouse=True)
def _no_file_watcher(monkeypatch):
    monkeypatch.setenv("STREAMLIT_SERVER_FILE_WATCHER_TYPE", "none")


def picked(page, key):
    """The options chosen in the multiselect whose key starts with ``key`` (the pickers' keys end in the file's hash)."""
    return [t.strip() for t in page.locator(f'[class*="st-key-{key}"] [data-tag] span[title]').all_text_contents()]


def no_errors(page):
    assert page.locator('[data-testid="stException"]').count() == 0
    assert page.get_by_text("Nothing was imported").count() == 0
    assert page.locator('[data-testid="stAlertContentError"]').count() == 0


def test_the_pickers_follow_the_file_and_leave_out_the_id_and_label_columns(server, browser, tmp_path):
    base, db_url = server
    engine = make_engine(db_url)
    init_db(engine)
    with session_scope(engine) as s:
        auth.create_user(s, "boss", "correct horse battery", "admin")
        queue.create_project(s, "wine", options=["class_0", "class_1", "class_2"], data_type="tabular")
    engine.dispose()
    wine = load_wine(as_frame=True).frame
    wine["target"] = [f"class_{t}" for t in wine["target"]]
    wine.insert(0, "id", [f"w-{i:03d}" for i in range(len(wine))])
    wine.to_csv(tmp_path / "wine.csv", index=False)
    px = pytest.importorskip("plotly.express")
    px.data.tips().to_parquet(tmp_path / "tips.parquet")
    shoot = screenshots_into(tmp_path / "shots")

    page = browser.new_page(viewport=VIEWPORT)
    sign_in(page, base, "boss")
    page.get_by_role("link", name="Admin").click()
    settle(page)
    page.get_by_role("tab", name="Upload data").click()
    choose(page, "Into project", "wine")
    page.locator('[data-testid="stFileUploaderDropzoneInput"]').set_input_files(str(tmp_path / "wine.csv"))
    settle(page)
    page.get_by_text("Columns to show").first.wait_for(timeout=30_000)
    choose(page, "Column of existing labels (optional)", "target")
    choose(page, "Column of item ids (optional)", "id")
    shoot(page, "upload-wine")
    no_errors(page)
    for label in ("admin-upload-display", "admin-upload-model"):
        chosen = picked(page, label)
        assert "alcohol" in chosen and "proline" in chosen, chosen
        assert "id" not in chosen and "target" not in chosen, (label, chosen)

    page.locator('[data-testid="stFileUploaderDropzoneInput"]').set_input_files(str(tmp_path / "tips.parquet"))
    settle(page)
    page.get_by_text("Columns to show").first.wait_for(timeout=30_000)
    shoot(page, "upload-tips")
    no_errors(page)
    assert "total_bill" in picked(page, "admin-upload-display") and "alcohol" not in picked(page, "admin-upload-display")
    page.get_by_role("button", name="Import 244 items into 'wine'").click()
    settle(page)
    page.get_by_text("Imported 244 new items").first.wait_for(timeout=30_000)
    shoot(page, "upload-imported")
