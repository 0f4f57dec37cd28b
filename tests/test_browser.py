"""End to end in a real headless Chromium against `streamlit run streamlit_app.py` on 127.0.0.1.

Chromium is Debian's (/usr/bin/chromium), driven by the Python playwright
package (never `playwright install`). Without Chromium the test skips with
the reason, except under CI=true, where it fails.
"""

from __future__ import annotations

import csv
import io
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import sqlalchemy as sa

from superintendent import queue
from superintendent.learning import MODEL_PRESETS
from superintendent.store import Annotation, User, make_engine, session_scope

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = os.environ.get("SUPERINTENDENT_CHROMIUM", "/usr/bin/chromium")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
SHOTS = ROOT / "docs" / "images"
PASSWORD = "correct horse battery"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--no-first-run", "--disable-quic"]


def _need_chromium() -> None:
    if not Path(CHROMIUM).exists():
        reason = f"no Chromium at {CHROMIUM} (Debian package 'chromium')"
        if IN_CI:
            pytest.fail(reason + " (CI=true: browser tests must run)")
        pytest.skip(reason)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def server(tmp_path):
    """`streamlit run streamlit_app.py` on a fresh SQLite file; yields (base URL, database URL)."""
    _need_chromium()
    port = _free_port()
    db_url = f"sqlite:///{tmp_path / 'app.db'}"
    env = {**os.environ, "SUPERINTENDENT_DATABASE_URL": db_url, "SUPERINTENDENT_DATA_DIR": str(tmp_path / "data"),
           "SUPERINTENDENT_RUN_SCHEDULER": "false"}
    log = open(tmp_path / "streamlit.log", "w")
    proc = subprocess.Popen([sys.executable, "-m", "streamlit", "run", str(ROOT / "streamlit_app.py"), "--server.port", str(port),
                             "--server.address", "127.0.0.1", "--server.headless", "true", "--browser.gatherUsageStats", "false",
                             "--server.fileWatcherType", "none"],
                            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if urllib.request.urlopen(f"{base}/_stcore/health", timeout=2).read() == b"ok":
                break
        except OSError:
            pass
        if time.monotonic() > deadline or proc.poll() is not None:
            proc.kill()
            pytest.fail("streamlit did not start:\n" + (tmp_path / "streamlit.log").read_text())
        time.sleep(0.2)
    yield base, db_url
    proc.terminate()
    proc.wait(timeout=20)
    log.close()


@pytest.fixture
def browser():
    _need_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        yield b
        b.close()


def settle(page, timeout=30_000):
    """Wait until Streamlit has drawn the app and no script run is going on (twice in a row, 100 ms apart)."""
    page.wait_for_selector('[data-testid="stApp"]', timeout=timeout)
    page.wait_for_selector('[data-testid="stMainBlockContainer"] [data-testid="stElementContainer"]', timeout=timeout)
    deadline = time.monotonic() + timeout / 1000
    page.wait_for_timeout(250)  # a click's rerun may take a moment to begin
    quiet = 0
    while quiet < 2:
        if time.monotonic() > deadline:
            raise TimeoutError("the app kept running")
        busy = page.locator('[data-testid="stStatusWidget"]').count() > 0 or page.locator('[data-stale="true"]').count() > 0
        quiet = 0 if busy else quiet + 1
        page.wait_for_timeout(100)


def shot(page, name):
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def log_in(page, base, name, password=PASSWORD):
    page.goto(base)
    settle(page)
    page.get_by_role("button", name="Log in").last.wait_for(timeout=30_000)
    # .last: while the first script run redraws, the form can briefly be on the page twice
    user, secret = page.get_by_label("User name").last, page.get_by_role("textbox", name="Password").last
    for _ in range(5):  # the first script run may still redraw the form: type until the values stick
        user.fill(name)
        secret.fill(password)
        page.wait_for_timeout(300)
        if user.input_value() == name and secret.input_value() == password:
            break
    page.get_by_role("button", name="Log in").last.click()
    page.get_by_text("Signed in as").first.wait_for(timeout=30_000)
    settle(page)
    # The login cookie's component answers a moment later with a full rerun; a click on a fragment's button
    # sent during that rerun is dropped by Streamlit ("fragment ... does not exist anymore"). Let it pass.
    page.wait_for_timeout(1500)
    settle(page)


ITEM_JS = "() => [...document.querySelectorAll('.st-key-label-item')].map(el => el.innerText.trim()).filter(t => t)"


def item_text(page) -> str:
    """The shown item's text, once exactly one item is drawn (a fragment rerun briefly shows old and new)."""
    page.wait_for_function(f"() => ({ITEM_JS})().length === 1", timeout=20_000)
    return page.evaluate(ITEM_JS)[0]


def wait_for_new_item(page, before: str) -> str:
    page.wait_for_function(f"before => {{ const now = ({ITEM_JS})(); return now.length === 1 && now[0] !== before; }}",
                           arg=before.strip(), timeout=20_000)
    return item_text(page)


def test_first_run_to_export(server, browser, tmp_path):
    base, db_url = server
    page = browser.new_page(viewport={"width": 1280, "height": 900})

    # first run: create the admin, with the demo projects
    page.goto(base)
    settle(page)
    page.get_by_text("Welcome to superintendent").first.wait_for(timeout=30_000)
    page.get_by_label("User name").fill("boss")
    page.get_by_role("textbox", name="Password", exact=True).fill(PASSWORD)
    page.get_by_role("textbox", name="Repeat password").fill(PASSWORD)
    page.get_by_role("button", name="Create admin").click()
    settle(page, timeout=120_000)
    log_in(page, base, "boss")
    page.get_by_role("heading", name="Label").first.wait_for(timeout=30_000)
    shot(page, "label-digits")

    # create a project by uploading a CSV
    page.get_by_role("link", name="Admin").click()
    settle(page)
    page.get_by_label("Name", exact=True).fill("reviews")
    page.get_by_label("Label options (one per line or comma-separated)").fill("good\nbad")
    page.get_by_label("Model", exact=True).click()
    page.get_by_role("option", name=MODEL_PRESETS["tfidf_logistic_regression"]).click()
    page.get_by_role("button", name="Create project").click()
    settle(page)
    page.get_by_text("Project 'reviews' saved.").first.wait_for(timeout=30_000)
    shot(page, "admin-projects")
    rows = [("id", "text")] + [(f"r{i}", f"review number {i}: {'great' if i % 2 else 'awful'} <script>window.pwned=1</script>"
                               f"<img src=x onerror=\"window.pwned2=1\">")
                               for i in range(20)]
    csv_path = tmp_path / "reviews.csv"
    with open(csv_path, "w", newline="") as fh:
        csv.writer(fh).writerows(rows)
    page.get_by_role("tab", name="Upload data").click()
    page.get_by_label("Into project").click()
    page.get_by_role("option", name="reviews").click()
    settle(page)
    page.locator('[data-testid="stFileUploaderDropzoneInput"]').set_input_files(str(csv_path))
    settle(page)
    page.get_by_label("Column of item ids (optional)").click()
    page.get_by_role("option", name="id").click()
    settle(page)
    shot(page, "admin-upload")
    page.get_by_role("button", name="Import 20 items into 'reviews'").click()
    settle(page)
    page.get_by_text("Imported 20 new items").first.wait_for(timeout=30_000)

    # a labeller account
    page.get_by_role("tab", name="Users").click()
    page.get_by_label("User name").fill("alice")
    page.locator(".st-key-admin-new-password input").fill(PASSWORD)
    page.get_by_role("button", name="Create user").click()
    settle(page)
    page.get_by_text("User 'alice' created.").first.wait_for(timeout=30_000)

    # label ten items: five by clicks, five by keyboard; undo one
    page.get_by_role("link", name="Label").click()
    settle(page)
    page.get_by_label("Project").click()
    page.get_by_role("option", name="reviews").click()
    settle(page)
    given = []
    text = item_text(page)
    assert "<script>" in text and "<img src=x onerror" in text  # shown as text, never run
    for i in range(10):
        label = "good" if "great" in text else "bad"
        if i < 5:
            page.locator(f".st-key-label-opt-{0 if label == 'good' else 1} button").click()
        else:
            page.evaluate("document.activeElement && document.activeElement.blur()")
            page.keyboard.press("1" if label == "good" else "2")
        given.append((text.split(":")[0], label))
        text = wait_for_new_item(page, text)
    assert page.evaluate("[window.pwned, window.pwned2]") == [None, None]  # neither the script nor the onerror ran
    page.evaluate("document.activeElement && document.activeElement.blur()")
    page.keyboard.press("u")
    text = wait_for_new_item(page, text)
    assert text.split(":")[0] == given[-1][0]  # the last labelled item is back
    given.pop()
    page.locator(".st-key-label-skip button").click()
    wait_for_new_item(page, text)
    shot(page, "label-text")

    engine = make_engine(db_url)
    with session_scope(engine, write=False) as s:
        stored = s.execute(sa.select(Annotation.value).join(User, User.id == Annotation.user_id).where(User.username == "boss")).scalars().all()
    assert len(stored) == 9

    # retrain and see the score
    page.get_by_role("link", name="Model").click()
    settle(page)
    page.get_by_label("Project").click()
    page.get_by_role("option", name="reviews").click()
    settle(page)
    page.get_by_role("button", name="Retrain now").click()
    settle(page, timeout=60_000)
    page.get_by_text("Retrain succeeded").first.wait_for(timeout=30_000)
    shot(page, "model")
    page.get_by_role("link", name="Progress").click()
    settle(page)
    shot(page, "progress")

    # export: the CSV's rows are the labels given
    page.get_by_role("link", name="Admin").click()
    settle(page)
    page.get_by_role("tab", name="Export labels").click()
    page.get_by_label("Project", exact=True).click()
    page.get_by_role("option", name="reviews").click()
    settle(page)
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
