"""Driving the web app in headless Chromium: shared by the browser tests and ``tools/screenshots.py``.

The app is ``streamlit run streamlit_app.py`` on 127.0.0.1, on a free port
and a fresh SQLite file in a folder the caller gives (a test's tmp_path, the
tool's temporary folder). Chromium is Debian's (``/usr/bin/chromium``, or
``SUPERINTENDENT_CHROMIUM``), driven by the Python playwright package (never
``playwright install``).

The tours at the end drive the app through the states README.md and docs/
show, and hand each screenshot to a ``shoot(page, name, **options)``
function: the tests pass one writing into their temporary folder and check
what they need around the tours; the tool passes one writing into
docs/images/. No pytest in here: the fixtures that skip or fail without
Chromium are in tests/test_browser.py.
"""

from __future__ import annotations

import csv
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from playwright.sync_api import Browser, Page, sync_playwright
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from superintendent import auth, queue
from superintendent.learning import MODEL_PRESETS
from superintendent.store import Item, init_db, make_engine, session_scope

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = os.environ.get("SUPERINTENDENT_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--no-first-run", "--disable-quic"]
PASSWORD = "correct horse battery"
VIEWPORT = {"width": 1280, "height": 900}  # the pages the screenshots are taken of
REVIEW_VIEWPORT = {"width": 1280, "height": 1000}

Shoot = Callable[..., None]  # shoot(page, name, **options of page.screenshot)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class AppDidNotStart(RuntimeError):
    """``streamlit run`` exited or did not answer in time; the message holds its log."""


@contextmanager
def running_app(folder: Path, timeout: float = 60, db_url: str | None = None,
                extra_env: dict[str, str] | None = None, script: Path | None = None) -> Iterator[tuple[str, str]]:
    """``streamlit run streamlit_app.py`` (or another ``script``, e.g. a test's page of one widget) on ``db_url``
    (default: a fresh SQLite file in ``folder``); yields (base URL, database URL).

    Its data folder and log (``streamlit.log``) are in ``folder`` too; no background scheduler (unless ``extra_env``,
    which is added to the environment last, turns it on), no file watcher.
    """
    port = free_port()
    db_url = db_url or f"sqlite:///{folder / 'app.db'}"
    env = {**os.environ, "SUPERINTENDENT_DATABASE_URL": db_url, "SUPERINTENDENT_DATA_DIR": str(folder / "data"),
           "SUPERINTENDENT_RUN_SCHEDULER": "false", **(extra_env or {})}
    log_path = folder / "streamlit.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen([sys.executable, "-m", "streamlit", "run", str(script or ROOT / "streamlit_app.py"), "--server.port", str(port),
                                 "--server.address", "127.0.0.1", "--server.headless", "true", "--browser.gatherUsageStats", "false",
                                 "--server.fileWatcherType", "none"],
                                cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            base = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + timeout
            while True:
                try:
                    if urllib.request.urlopen(f"{base}/_stcore/health", timeout=2).read() == b"ok":
                        break
                except OSError:
                    pass
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise AppDidNotStart("streamlit did not start:\n" + log_path.read_text())
                time.sleep(0.2)
            yield base, db_url
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@contextmanager
def chromium() -> Iterator[Browser]:
    """Headless Chromium (``CHROMIUM``, with ``ARGS``) through playwright."""
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        try:
            yield browser
        finally:
            browser.close()


def screenshots_into(folder: Path) -> Shoot:
    """A ``shoot(page, name, **options)`` writing ``folder/<name>.png``: the whole page, unless a ``clip`` is given."""

    def shoot(page: Page, name: str, **options: Any) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        if "clip" not in options:
            options.setdefault("full_page", True)
        page.screenshot(path=str(folder / f"{name}.png"), **options)

    return shoot


# --------------------------------------------------------------------------- waiting for Streamlit, logging in


def settle(page: Page, timeout: float = 30_000) -> None:
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


def log_in(page: Page, base: str, name: str, password: str = PASSWORD, path: str = "") -> None:
    """Open ``base/path`` signed out and log in there as ``name``."""
    page.goto(f"{base}/{path}" if path else base)
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


def sign_in(page: Page, base: str, name: str, path: str = "") -> None:
    """``log_in``, tried again from the start if a redraw of the login form got in its way
    (under load the form can briefly be on the page twice, which its strict locators refuse)."""
    for attempt in range(3):
        try:
            return log_in(page, base, name, path=path)
        except PlaywrightError:
            if attempt == 2:
                raise


def choose(page: Page, label: str, option: str) -> None:
    """Pick an option of a select box; a rerun that redraws the box meanwhile closes the list, so try again then."""
    box = page.get_by_label(label, exact=True).filter(visible=True)  # hidden tabs keep their widgets in the page
    for _ in range(5):
        settle(page)
        box.click()
        try:
            page.get_by_role("option", name=option, exact=True).click(timeout=5_000)
        except PlaywrightTimeout:
            continue
        settle(page)
        if box.input_value() == option:
            return
    raise AssertionError(f"could not pick {option!r} in {label!r}; it shows {box.input_value()!r}")


ITEM_JS = "() => [...document.querySelectorAll('.st-key-label-item')].map(el => el.innerText.trim()).filter(t => t)"


def item_text(page: Page) -> str:
    """The shown item's text, once exactly one item is drawn (a fragment rerun briefly shows old and new)."""
    page.wait_for_function(f"() => ({ITEM_JS})().length === 1", timeout=20_000)
    return page.evaluate(ITEM_JS)[0]


def wait_for_new_item(page: Page, before: str) -> str:
    page.wait_for_function(f"before => {{ const now = ({ITEM_JS})(); return now.length === 1 && now[0] !== before; }}",
                           arg=before.strip(), timeout=20_000)
    return item_text(page)


# --------------------------------------------------------------------------- tour 1: from a fresh app to a retrained project

FIRST_RUN_SHOTS = ("label-digits", "admin-projects", "admin-upload", "label-text", "model", "progress")


def first_run_tour(page: Page, base: str, folder: Path, shoot: Shoot) -> list[tuple[str, str]]:
    """A fresh app's first run, screenshotting ``FIRST_RUN_SHOTS`` on the way (README.md's pictures).

    Creates the first admin "boss" (with the demo projects) and logs in; creates the project "reviews" and uploads
    a CSV (written to ``folder``) of 20 reviews whose text carries HTML that must never run; creates the labeller
    "alice"; labels ten items as boss (five by clicks, five by number keys), undoes the last, skips one; retrains on
    the Model page; opens the Progress page. Returns the (review text before its colon, label) pairs still given.
    """
    # first run: create the admin, with the demo projects
    page.goto(base)
    settle(page)
    page.get_by_text("Welcome to superintendent").first.wait_for(timeout=30_000)
    page.get_by_label("User name").fill("boss")
    page.get_by_role("textbox", name="Password", exact=True).fill(PASSWORD)
    page.get_by_role("textbox", name="Repeat password").fill(PASSWORD)
    page.get_by_role("button", name="Create admin").click()
    settle(page, timeout=120_000)
    page.get_by_text("Signed in as").first.wait_for(timeout=60_000)  # the new admin is signed in at once
    page.wait_for_timeout(1500)  # the cookie component's rerun (see log_in)
    settle(page)
    page.get_by_role("heading", name="Label").first.wait_for(timeout=30_000)
    shoot(page, "label-digits")

    # create a project by uploading a CSV
    page.get_by_role("link", name="Admin").click()
    settle(page)
    page.get_by_label("Name", exact=True).fill("reviews")
    page.get_by_label("Label options (one per line or comma-separated)").fill("good\nbad")
    choose(page, "Model", MODEL_PRESETS["tfidf_logistic_regression"])
    page.get_by_role("button", name="Create project").click()
    settle(page)
    page.get_by_text("Project 'reviews' saved.").first.wait_for(timeout=30_000)
    shoot(page, "admin-projects")
    rows = [("id", "text")] + [(f"r{i}", f"review number {i}: {'great' if i % 2 else 'awful'} <script>window.pwned=1</script>"
                               f"<img src=x onerror=\"window.pwned2=1\">")
                               for i in range(20)]
    csv_path = folder / "reviews.csv"
    with open(csv_path, "w", newline="") as fh:
        csv.writer(fh).writerows(rows)
    page.get_by_role("tab", name="Upload data").click()
    page.get_by_label("Into project").click()
    page.get_by_role("option", name="reviews").click()
    settle(page)
    page.locator('[data-testid="stFileUploaderDropzoneInput"]').set_input_files(str(csv_path))
    settle(page)
    choose(page, "Column of item ids (optional)", "id")
    shoot(page, "admin-upload")
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

    # label ten items: five by clicks, five by keyboard; undo one; skip one
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
    shoot(page, "label-text")

    # retrain and see the score; then the progress
    page.get_by_role("link", name="Model").click()
    settle(page)
    page.get_by_label("Project").click()
    page.get_by_role("option", name="reviews").click()
    settle(page)
    page.get_by_role("button", name="Retrain now").click()
    settle(page, timeout=60_000)
    page.get_by_text("Retrain succeeded").first.wait_for(timeout=30_000)
    shoot(page, "model")
    page.get_by_role("link", name="Progress").click()
    settle(page)
    shoot(page, "progress")
    return given


# --------------------------------------------------------------------------- tour 2: a reviewer corrects a tie


def seed_review(db_url: str) -> tuple[dict[str, int], dict[str, int]]:
    """Users boss (admin), rita (reviewer), alice and bob (labellers); the project "reviews" with 2 annotations per
    item: r1 agreed on, r2 a tie, r3 not labelled yet. Returns the item ids by external id and the user ids by name."""
    engine = make_engine(db_url)
    init_db(engine)
    with session_scope(engine) as s:
        users = {"boss": auth.create_user(s, "boss", PASSWORD, "admin").id,
                 "rita": auth.create_user(s, "rita", PASSWORD, "reviewer").id,
                 "alice": auth.create_user(s, "alice", PASSWORD, "labeller").id,
                 "bob": auth.create_user(s, "bob", PASSWORD, "labeller").id}
        project = queue.create_project(s, "reviews", options=["good", "bad"], annotations_per_item=2, data_type="text")
        queue.add_items(s, project, ["a fine film", "a dull film", "not labelled yet"], external_ids=["r1", "r2", "r3"])
        items = dict(s.execute(sa.select(Item.external_id, Item.id).where(Item.project_id == project.id)).all())
        for user, value in (("alice", "good"), ("bob", "bad")):
            queue.submit(s, project, users[user], items["r2"], value)  # a tie
        for user in ("alice", "bob"):
            queue.submit(s, project, users[user], items["r1"], "good")
    engine.dispose()
    return items, users


def review_tour(page: Page, base: str, tie_item_id: int, shoot: Shoot) -> None:
    """rita opens the Review page, keeps only ties, corrects r2 (``tie_item_id``) to "bad"; screenshot "review"."""
    sign_in(page, base, "rita")
    page.get_by_role("link", name="Review").click()
    settle(page)
    page.get_by_role("heading", name="Review").first.wait_for(timeout=30_000)
    page.get_by_text("Only ties").click()
    settle(page)
    page.get_by_text("id r2", exact=True).first.wait_for(timeout=30_000)  # item tie_item_id, shown by its content and id
    page.get_by_role("heading", name="a dull film").first.wait_for(timeout=30_000)  # the item itself is shown
    choose(page, "Corrected label", "bad")
    page.get_by_role("button", name="Save correction").click()
    settle(page)
    page.get_by_text("Corrected to bad.").first.wait_for(timeout=30_000)
    shoot(page, "review")


# --------------------------------------------------------------------------- tour 3: the Progress page's agreement section

AGREEMENT_OPTIONS = ["cat", "dog", "bird"]
# Item i gets these labels from ann, ben and cid: p3 is a three-way tie, p1 and p2 are 2 against 1.
AGREEMENT_LABELS = {
    "ann": ["cat", "cat", "dog", "bird", "dog", "cat"],
    "ben": ["cat", "dog", "dog", "cat", "dog", "cat"],
    "cid": ["cat", "dog", "cat", "dog", "dog", "cat"],
}


def make_agreement_project(engine: sa.Engine, name: str = "pets", **settings: Any):  # noqa: ANN201 - a queue project
    """Six items ("photo of pet number i", external ids p0-p5), three annotations per item."""
    with session_scope(engine) as s:
        project = queue.create_project(s, name, options=AGREEMENT_OPTIONS, annotations_per_item=3, **settings)
        queue.add_items(s, project, [f"photo of pet number {i}" for i in range(6)], external_ids=[f"p{i}" for i in range(6)])
    return project


def label_all(engine: sa.Engine, project, name: str, labels: list) -> None:
    """``name`` labels every item the queue gives them, as the Label page would (claim, then submit)."""
    with session_scope(engine, write=False) as s:
        user_id = auth.get_user(s, name).id
    while True:
        with session_scope(engine) as s:
            task = queue.claim_next(s, project, user_id)
            if task is None:
                return
            queue.submit(s, project, user_id, task.item_id, labels[int(task.external_id[1:])])


def seed_agreement(db_url: str) -> None:
    """The admin boss; ann, ben and cid have labelled every item of "pets" with ``AGREEMENT_LABELS``."""
    engine = make_engine(db_url)
    init_db(engine)  # the server creates the schema on its first page view; nobody has opened one yet
    with session_scope(engine) as s:
        auth.create_user(s, "boss", PASSWORD, "admin")
        for name in AGREEMENT_LABELS:
            auth.create_user(s, name, PASSWORD, "labeller")
    project = make_agreement_project(engine)
    for name, labels in AGREEMENT_LABELS.items():
        label_all(engine, project, name, labels)
    engine.dispose()


def open_agreement(page: Page, base: str) -> None:
    """boss opens the Progress page and waits for the agreement section with its charts."""
    page.goto(base)  # a first, settled visit: the first script run of a fresh server is the slowest
    settle(page, timeout=60_000)
    try:
        log_in(page, base, "boss")
    except PlaywrightTimeout:
        # Seen once in three runs on a machine loaded far past its cores: the click's rerun was overtaken by
        # the login cookie component's and the form came back empty. A person types again; so does the test.
        log_in(page, base, "boss")
    page.get_by_role("link", name="Progress").click()
    settle(page)
    page.get_by_text("Items with most disagreement").wait_for(timeout=60_000)
    page.wait_for_function("() => document.querySelectorAll('.js-plotly-plot').length >= 6", timeout=30_000)


def shoot_agreement(page: Page, shoot: Shoot) -> None:
    """Screenshot "progress-agreement": the section from its heading to the table of disputed items."""
    page.set_viewport_size({"width": 1280, "height": 3200})  # the whole page at once, for the screenshot
    settle(page)
    top = page.get_by_role("heading", name="Agreement").bounding_box()["y"]
    bottom = page.locator('[data-testid="stDataFrame"]').last.bounding_box()
    shoot(page, "progress-agreement",
          clip={"x": 300, "y": top - 10, "width": 980, "height": bottom["y"] + bottom["height"] + 60 - (top - 10)})
