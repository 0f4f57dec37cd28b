"""Tour 4, a team's first hour, in two browser contexts: shared by tests/test_walkthrough_browser.py and tools/screenshots.py.

:func:`team_tour` drives an admin and the labeller bob through it and hands each screenshot to ``shoot``; the
test checks the database and the export around it, the tool writes the pictures docs/admin.md and
docs/labelling.md show. No pytest in here.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyjokes
from browser_helpers import PASSWORD, VIEWPORT, Shoot, choose, item_text, settle, sign_in, wait_for_new_item
from playwright.sync_api import Browser, Page
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from superintendent import auth
from superintendent.store import init_db, make_engine, session_scope

EXCEPTION = '[data-testid="stException"]'
OPTIONS = ("pun", "groan", "other")
PRELABELLED = 6  # the uploaded file's first rows carry a label
ROWS = 60
BOB_LABELS = 20
ADMIN_LABELS = 8
CAROL_PASSWORD = "a brand new password"
TEAM_SHOTS = ("admin-project-created", "admin-members", "admin-upload-ids", "admin-imported", "label-guidelines",
              "label-bob", "label-admin", "admin-users", "admin-deactivated", "signed-out", "admin-export")
DOC_SHOTS = ("admin-members", "admin-upload-ids", "admin-users", "admin-export", "label-guidelines", "signed-out")  # in docs/images


@dataclass(frozen=True)
class TeamTour:
    uploaded: pd.DataFrame  # the CSV the admin uploaded
    given: dict[str, tuple[str, str]]  # joke -> (who, option), as pressed in the browser
    exported: Path  # the CSV the admin downloaded
    key_pressed_after_deactivation: str


def seed_team(db_url: str) -> None:
    """The admin boss and the labellers bob and carol, on a fresh database."""
    engine = make_engine(db_url)
    init_db(engine)
    with session_scope(engine) as s:
        auth.create_user(s, "boss", PASSWORD, "admin")
        auth.create_user(s, "bob", PASSWORD, "labeller")
        auth.create_user(s, "carol", PASSWORD, "labeller")
    engine.dispose()


def key_for(text: str) -> str:
    """The option key a person presses for a joke: a fixed choice per joke, so the export can be checked."""
    return str(zlib.crc32(text.strip().encode()) % len(OPTIONS) + 1)


def jokes_csv(folder: Path) -> tuple[Path, pd.DataFrame]:
    """The jokes that ship with pyjokes, as a CSV with an id column and a label column (the first rows labelled)."""
    jokes = pyjokes.get_jokes(language="en", category="neutral")[:ROWS]
    frame = pd.DataFrame({"id": [f"joke-{i:03d}" for i in range(ROWS)], "joke": jokes,
                          "label": [OPTIONS[i % 3] if i < PRELABELLED else "" for i in range(ROWS)]})
    path = folder / "jokes.csv"
    frame.to_csv(path, index=False)
    return path, frame


def no_exception(*pages: Page) -> None:
    for page in pages:
        assert page.locator(EXCEPTION).count() == 0, page.locator(EXCEPTION).first.inner_text()


def add_to_multiselect(page: Page, label: str, option: str) -> None:
    """Add an option to a multiselect by typing its start and picking it, as a person does (again if a rerun closed the list)."""
    box = page.get_by_label(label, exact=True)
    for _ in range(5):
        settle(page)
        box.click()
        box.press_sequentially(option[:3])
        try:
            page.get_by_role("option", name=option, exact=True).click(timeout=5_000)
        except PlaywrightTimeout:
            continue
        page.keyboard.press("Escape")
        settle(page)
        if page.locator('[data-testid="stMultiSelect"]', has_text=option).count():
            return
    raise AssertionError(f"could not add {option!r} to {label!r}")


def press_label(page: Page) -> tuple[str, str]:
    """Label the shown joke by its number key, as a person does; returns (joke, option) once the next item is shown."""
    text = item_text(page)
    key = key_for(text)
    page.evaluate("document.activeElement && document.activeElement.blur()")
    page.keyboard.press(key)
    wait_for_new_item(page, text)
    return text.strip(), OPTIONS[int(key) - 1]


def team_tour(browser: Browser, base: str, folder: Path, shoot: Shoot) -> TeamTour:
    """The admin creates the project "jokes" (guidelines, option descriptions, model by data type), makes bob its
    member and uploads a CSV with an id and a label column; bob labels ``BOB_LABELS`` items by keyboard while the
    admin labels ``ADMIN_LABELS`` in the same project; the admin sets carol's password (only that), deactivates bob,
    whose next key must show the sign-in form, and downloads the CSV export. Screenshots ``TEAM_SHOTS``."""
    upload, frame = jokes_csv(folder)
    admin = browser.new_context(viewport=VIEWPORT).new_page()
    bob = browser.new_context(viewport=VIEWPORT).new_page()

    # the admin creates the project, with guidelines and a description per option
    sign_in(admin, base, "boss")
    admin.get_by_role("link", name="Admin").click()
    settle(admin)
    admin.get_by_label("Name", exact=True).fill("jokes")
    choose(admin, "Data type", "text")
    admin.get_by_label("Label options (one per line or comma-separated)").fill("\n".join(OPTIONS))
    admin.get_by_label("Option descriptions (optional, one per line: option: what it means)", exact=True).fill(
        "pun: the joke turns on a word\ngroan: you sigh more than laugh")
    admin.get_by_label("Guidelines for labellers (Markdown; HTML and images are shown as text)", exact=True).fill("Read the **whole** joke first.")
    admin.get_by_role("button", name="Create project").click()
    settle(admin)
    admin.get_by_text("Project 'jokes' saved.").first.wait_for(timeout=30_000)
    shoot(admin, "admin-project-created")

    # ... makes bob its member
    choose(admin, "Project to edit", "jokes")
    add_to_multiselect(admin, "Labellers and reviewers who work in this project (admins see every project)", "bob (labeller)")
    admin.get_by_role("button", name="Save members").click()
    settle(admin)
    admin.get_by_text("Members saved: 1 added, 0 removed.").wait_for(timeout=20_000)
    admin.get_by_role("heading", name="Members").scroll_into_view_if_needed()
    shoot(admin, "admin-members", full_page=False)

    # ... and uploads the CSV: the id and label columns are found, and neither is shown nor given to the model
    admin.get_by_role("tab", name="Upload data").click()
    choose(admin, "Into project", "jokes")
    admin.locator('[data-testid="stFileUploaderDropzoneInput"]').set_input_files(str(upload))
    settle(admin)
    admin.get_by_text("Columns to show").first.wait_for(timeout=30_000)
    assert admin.get_by_label("Column of item ids (optional)", exact=True).input_value() == "id"
    assert admin.get_by_label("Column of existing labels (optional)", exact=True).input_value() == "label"
    shoot(admin, "admin-upload-ids")
    no_exception(admin)
    admin.get_by_role("button", name=f"Import {ROWS} items into 'jokes'").click()
    settle(admin)
    admin.get_by_text(f"Imported {ROWS} new items").first.wait_for(timeout=30_000)
    shoot(admin, "admin-imported")

    # bob signs in and lands on his one project; guidelines and option descriptions are there
    sign_in(bob, base, "bob")
    assert bob.get_by_label("Project", exact=True).input_value() == "jokes"
    bob.get_by_text("Guidelines").first.click()
    bob.get_by_text("the whole joke first").wait_for(timeout=10_000)
    bob.get_by_role("button", name="pun").hover()
    bob.get_by_text("the joke turns on a word").wait_for(timeout=10_000)
    shoot(bob, "label-guidelines", full_page=False)

    # bob labels by keyboard while the admin labels the same project
    admin.get_by_role("link", name="Label").click()
    settle(admin)
    choose(admin, "Project", "jokes")
    given: dict[str, tuple[str, str]] = {}  # joke -> (who, option)
    for i in range(BOB_LABELS):
        joke, option = press_label(bob)
        assert joke not in given, "an item was handed to two people"
        given[joke] = ("bob", option)
        if i < ADMIN_LABELS:
            joke, option = press_label(admin)
            assert joke not in given, "an item was handed to two people"
            given[joke] = ("boss", option)
    shoot(bob, "label-bob")
    shoot(admin, "label-admin")
    no_exception(admin, bob)

    # the admin changes carol's password only
    admin.get_by_role("link", name="Admin").click()
    settle(admin)
    admin.get_by_role("tab", name="Users").click()
    settle(admin)
    choose(admin, "User", "carol")
    admin.get_by_label("New password (leave empty to keep)").fill(CAROL_PASSWORD)
    admin.get_by_role("button", name="Apply").click()
    settle(admin)
    admin.get_by_text("User 'carol' updated.").wait_for(timeout=15_000)
    assert admin.get_by_label("New password (leave empty to keep)").input_value() == "", "the form kept the password just set"
    shoot(admin, "admin-users")

    # ... then deactivates bob while he labels: his next key must show the sign-in form
    choose(admin, "User", "bob")
    admin.get_by_text("Active (may log in)", exact=True).click()
    admin.wait_for_function("() => !document.querySelector('input[aria-label=\"Active (may log in)\"]').checked", timeout=5_000)
    admin.get_by_role("button", name="Apply").click()
    settle(admin)
    admin.get_by_text("User 'bob' updated.").wait_for(timeout=15_000)
    shoot(admin, "admin-deactivated")
    key = key_for(item_text(bob))
    bob.evaluate("document.activeElement && document.activeElement.blur()")
    bob.keyboard.press(key)
    bob.get_by_role("button", name="Log in").wait_for(timeout=15_000)
    settle(bob)
    shoot(bob, "signed-out", full_page=False)
    assert "deactivated" in bob.locator("[data-testid='stAlert']").first.inner_text()
    no_exception(admin, bob)

    # the admin exports CSV
    admin.get_by_role("tab", name="Export labels").click()
    settle(admin)
    choose(admin, "Project", "jokes")
    admin.get_by_role("button", name="Prepare export").click()
    settle(admin)
    shoot(admin, "admin-export", full_page=False)
    with admin.expect_download() as download:
        admin.get_by_role("button", name="Download CSV").click()
    exported = folder / "jokes-export.csv"
    download.value.save_as(exported)
    no_exception(admin, bob)
    return TeamTour(uploaded=frame, given=given, exported=exported, key_pressed_after_deactivation=key)
