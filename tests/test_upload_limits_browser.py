"""The Upload tab with the files of issue 13 (items 4 and 5), in headless Chromium.

A CSV of 20,001 columns and an .npz that unpacks to 458 MB are refused at once with the limit and the setting that
changes it; a CSV whose labels are NA, None, null and NULL shows all of them in the preview and imports them.
"""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pytest
from browser_helpers import VIEWPORT, choose, screenshots_into, settle, sign_in

from superintendent import auth, queue
from superintendent.store import init_db, make_engine, session_scope
from tests.test_browser import browser, server

__all__ = ["browser", "server"]  # fixtures of tests/test_browser.py, used here


@pytest.fixture(autouse=True)
def _no_file_watcher(monkeypatch):
    monkeypatch.setenv("STREAMLIT_SERVER_FILE_WATCHER_TYPE", "none")


def zeros_npz(path, rows: int, columns: int) -> None:
    """An .npz of float32 zeros written a few megabytes at a time: 0.47 MB for 2,000,000 x 60."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf, zf.open("x.npy", "w", force_zip64=True) as f:
        np.lib.format.write_array_header_1_0(f, {"descr": "<f4", "fortran_order": False, "shape": (rows, columns)})
        left, chunk = rows * columns * 4, bytes(4 << 20)
        while left > 0:
            f.write(chunk[: min(len(chunk), left)])
            left -= len(chunk)


def error_text(page) -> str:
    alert = page.locator('[data-testid="stAlertContentError"]').first
    alert.wait_for(timeout=30_000)
    return alert.inner_text()


def test_blow_ups_are_refused_on_the_page_and_na_labels_are_kept(server, browser, tmp_path):
    base, db_url = server
    engine = make_engine(db_url)
    init_db(engine)
    with session_scope(engine) as s:
        auth.create_user(s, "boss", "correct horse battery", "admin")
        queue.create_project(s, "codes", options=["NA", "None", "null", "NULL", "cat"], data_type="text")
    engine.dispose()
    (tmp_path / "wide.csv").write_bytes((",".join(f"c{i}" for i in range(20_001)) + "\n" + ",".join("1" * 20_001) + "\n").encode())
    zeros_npz(tmp_path / "zeros.npz", 2_000_000, 60)
    buf = io.StringIO("text,label\nfirst,NA\nsecond,None\nthird,null\nfourth,NULL\nfifth,cat\nsixth,\n")
    (tmp_path / "labels.csv").write_text(buf.getvalue())
    shoot = screenshots_into(tmp_path / "shots")

    page = browser.new_page(viewport=VIEWPORT)
    sign_in(page, base, "boss")
    page.get_by_role("link", name="Admin").click()
    settle(page)
    page.get_by_role("tab", name="Upload data").click()
    choose(page, "Into project", "codes")
    uploader = page.locator('[data-testid="stFileUploaderDropzoneInput"]')

    uploader.set_input_files(str(tmp_path / "wide.csv"))
    settle(page)
    text = error_text(page)
    assert "This file cannot be imported" in text and "has 20,001 columns; the limit is 10,000" in text, text
    assert "SUPERINTENDENT_MAX_UPLOAD_COLUMNS" in text
    shoot(page, "refused-wide-csv")

    uploader.set_input_files(str(tmp_path / "zeros.npz"))
    settle(page)
    text = error_text(page)
    assert "'zeros.npz' unpacks to 457.8 MB" in text and "the limit is 256.0 MB" in text, text
    shoot(page, "refused-npz")

    uploader.set_input_files(str(tmp_path / "labels.csv"))
    settle(page)
    page.get_by_text("Columns to show").first.wait_for(timeout=30_000)
    page.get_by_text("6 items, 5 with labels").first.wait_for(timeout=30_000)
    assert page.locator('[data-testid="stAlertContentError"]').count() == 0
    shoot(page, "na-labels-preview")
    page.get_by_role("button", name="Import 6 items into 'codes'").click()
    settle(page)
    page.get_by_text("Imported 6 new items").first.wait_for(timeout=30_000)
    shoot(page, "na-labels-imported")
    with session_scope(make_engine(db_url), write=False) as s:
        assert queue.all_labels(s, queue.get_project(s, "codes")) == ["NA", "None", "null", "NULL", "cat", None]
