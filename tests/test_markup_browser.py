"""Strings from uploads, labels and users are shown as text, never as Markdown, in a real headless Chromium (issue 13, item 2).

A labeller's free-text label ``![l](http://host/x.png)`` used to make every reviewer's browser fetch that URL;
options (inside buttons), external ids, table cells and user names did the same, and ``:red[...]``, ``**...**`` or
links could dress up the interface. A tiny HTTP listener on 127.0.0.1 stands for "another host": the project below
carries links, images and HTML pointing at it in every place a user or an upload can write, and the admin and a
reviewer walk through the Label, Review, Progress, Model and Admin pages. The listener must get no request, no
element may point at it (outside the guidelines, whose links are the admin's), and the strings must be on the
page as their own characters. Screenshots go into the test's temporary folder.
"""

from __future__ import annotations

import datetime as dt
import http.server
import threading
from pathlib import Path

import pytest
import sqlalchemy as sa
from browser_helpers import PASSWORD, VIEWPORT, choose, screenshots_into, settle, sign_in
from playwright.sync_api import Page

from superintendent import auth, queue
from superintendent.markdown_text import WORD_JOINER
from superintendent.store import Item, ModelRun, init_db, make_engine, session_scope, utcnow
from tests.test_browser import browser, server

__all__ = ["browser", "server"]  # fixtures of tests/test_browser.py, used here


@pytest.fixture(autouse=True)
def _no_file_watcher(monkeypatch):
    monkeypatch.setenv("STREAMLIT_SERVER_FILE_WATCHER_TYPE", "none")


@pytest.fixture
def listener():
    """An HTTP server on 127.0.0.1 that records every request; yields (port, list of requested paths)."""
    seen: list[str] = []

    class Record(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - the name http.server calls
            seen.append(self.path)
            self.send_response(404)
            self.end_headers()

        def log_message(self, *args):  # quiet
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Record)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    try:
        yield srv.server_address[1], seen
    finally:
        srv.shutdown()
        srv.server_close()


def payloads(port: int) -> dict[str, str]:
    host = f"http://127.0.0.1:{port}"
    return {"image": f"![x]({host}/leak.png)", "link": f"[click]({host}/link)", "html": f"<img src={host}/i.png>",
            "colour": ":red[spoof]", "bold": "**bold**"}


def seed(db_url: str, port: int) -> dict:
    """boss (admin) and rita (reviewer), display names full of Markdown; labellers named like the payloads; the
    project (its name, options, option descriptions, guidelines, column names, cells, external ids, free-text
    labels, a correction, model runs) full of them too."""
    p = payloads(port)
    host = f"http://127.0.0.1:{port}"
    engine = make_engine(db_url)
    init_db(engine)
    name = f"Pets {p['bold']} {p['colour']} {p['image']}"
    free = f"![l]({host}/free.png)"
    tick = f'<a href="{host}/chart">tick</a> <b>b</b>'  # plotly reads a little HTML in a chart's category names
    with session_scope(engine) as s:
        boss = auth.create_user(s, "boss", PASSWORD, "admin", display_name=f"Boss {p['image']} {p['colour']} {p['bold']}")
        rita = auth.create_user(s, "rita", PASSWORD, "reviewer", display_name=f"Rita {p['link']} {p['html']}")
        # user names may hold anything but spaces (and a leading "_")
        nasty = [auth.create_user(s, n, PASSWORD, "labeller").id for n in (p["image"], p["colour"], p["bold"])]
        checker = auth.create_user(s, p["link"], PASSWORD, "reviewer").id
        guidelines = ("Read these first.\n\n" + "\n\n".join(p.values()) + f"\n\n![ref][r]\n\n[r]: {host}/ref.png\n\n"
                      f"[![linked]({host}/linked.png)]({host}/page)\n\n$\\includegraphics{{{host}/k.png}}$")
        project = queue.create_project(s, name, data_type="tabular", options=list(p.values()), allow_free_text=True,
                                       annotations_per_item=2, guidelines=guidelines,
                                       option_descriptions={o: f"means {p['image']}" for o in p.values()})
        column = f"![c]({host}/col.png)"
        rows = [{"comment": f"row {i} {v}", column: p["bold"]} for i, v in enumerate([*p.values(), p["image"]])]
        queue.add_items(s, project, rows, external_ids=[f"id{i} {v}" for i, v in enumerate([*p.values(), p["image"]])])
        queue.add_members(s, project.id, [rita.id, *nasty, checker])
        items = [i for i, in s.execute(sa.select(Item.id).where(Item.project_id == project.id).order_by(Item.id))]
        options = list(p.values())
        for k, item in enumerate(items[:4]):  # items 0-3 finished: two labels each
            first = free if k == 3 else tick if k == 2 else options[k]
            queue.submit(s, project, nasty[k % 3], item, first)
            queue.submit(s, project, nasty[(k + 1) % 3], item, options[(k + 2) % 5])
        queue.set_review(s, project, checker, items[3], p["html"])  # a free-text correction, by a user named like a link
        started = utcnow()
        s.add(ModelRun(project_id=project.id, status="succeeded", started_at=started, finished_at=started, n_labels=8,
                       score_mean=0.5, score_std=0.1, per_class={o: {"precision": 0.5, "recall": 0.5, "f1-score": 0.5} for o in options},
                       confusion={"labels": options, "matrix": [[1 if a == b else 0 for b in range(5)] for a in range(5)]}))
        later = started + dt.timedelta(seconds=1)
        s.add(ModelRun(project_id=project.id, status="failed", started_at=later, finished_at=later, n_labels=8,
                       message=f"boom: {p['image']} {p['colour']}\n```\n{p['html']}\n```"))
        ids = {"boss": boss.id, "rita": rita.id}
    engine.dispose()
    return {"project": name, "payloads": p, "free": free, "tick": tick, "column": column, "ids": ids}


# Every element that would fetch from, or link to, the listener (links inside the guidelines are the admin's).
POINTING_AT = """port => {
  const here = el => ['src', 'href', 'xlink:href', 'srcset'].some(name => String(el.getAttribute(name) || '').includes(':' + port));
  const inGuidelines = el => el.closest('[class*="st-key-label-guidelines"]') !== null;
  return [...document.querySelectorAll('img, image, source, video, audio, iframe, a')]
    .filter(el => here(el) && !(el.tagName === 'A' && inGuidelines(el))).map(el => el.outerHTML.slice(0, 200));
}"""


def shown(page: Page, selector: str = "body") -> str:
    """What a reader sees in ``selector`` (the invisible word joiners the escaping adds taken out)."""
    return "\n".join(page.locator(selector).all_inner_texts()).replace(WORD_JOINER, "")


def button_text(page: Page, key: str) -> str:
    """The label of the button with ``key`` (without its shortcut badge)."""
    return page.locator(f".st-key-{key} button [data-testid='stMarkdownContainer']").first.inner_text().replace(WORD_JOINER, "")


def nothing_points_out(page: Page, port: int, seen: list[str], where: str) -> None:
    page.wait_for_timeout(500)  # an image element starts its request at once; give it a moment to arrive
    assert page.evaluate(POINTING_AT, port) == [], where
    assert seen == [], f"{where}: the browser fetched {seen}"


def signed_in_as(page: Page) -> str:
    return shown(page, '[data-testid="stSidebar"] [data-testid="stCaptionContainer"]')


def open_page(page: Page, title: str) -> None:
    page.get_by_role("link", name=title).click()
    settle(page)
    page.get_by_role("heading", name=title).first.wait_for(timeout=30_000)
    settle(page)


def test_user_strings_are_shown_as_text_and_fetch_nothing(server, browser, listener, tmp_path):
    base, db_url = server
    port, seen = listener
    data = seed(db_url, port)
    p = data["payloads"]
    shoot = screenshots_into(tmp_path / "shots")

    # ------------------------------------------------------------------ the admin
    page = browser.new_page(viewport=VIEWPORT)
    sign_in(page, base, "boss")
    assert f"Boss {p['image']} {p['colour']} {p['bold']}" in signed_in_as(page)

    # Label: the row's cells and column names, the option buttons, a tooltip, the guidelines
    settle(page)
    item = shown(page, ".st-key-label-item")
    assert data["column"] in item and p["bold"] in item and "row " in item, item
    for i, option in enumerate(p.values()):
        assert button_text(page, f"label-opt-{i}") == option
    page.locator(".st-key-label-opt-0 button").first.hover()
    page.get_by_test_id("stTooltipContent").first.wait_for(timeout=10_000)
    assert f"means {p['image']}" in shown(page, '[data-testid="stTooltipContent"]')
    page.get_by_text("Guidelines", exact=True).click()
    settle(page)
    guide = shown(page, '[class*="st-key-label-guidelines"]')
    assert "Read these first." in guide
    assert p["image"] in guide and p["html"] in guide and "![ref]" in guide and "![linked](" in guide  # images: text
    assert "**bold**" not in guide and ":red[spoof]" not in guide  # the rest of the admin's Markdown is Markdown
    nothing_points_out(page, port, seen, "Label page")
    shoot(page, "label")

    # a free-text label full of Markdown, then changed under "Your recent labels": the message shows it as text
    typed = f"typed {p['image']} {p['colour']}"
    page.get_by_label("Other label").fill(typed)
    page.get_by_role("button", name="Submit label").click()
    settle(page)
    page.get_by_text("Your recent labels").click()
    settle(page)
    page.get_by_label("Other label").last.fill(f"changed {p['link']} {p['bold']}")
    page.get_by_role("button", name="Save change").click()
    settle(page)
    page.get_by_text("Changed to changed").first.wait_for(timeout=30_000)
    assert f"Changed to changed {p['link']} {p['bold']}." in shown(page, '[data-testid="stAlert"]')
    nothing_points_out(page, port, seen, "Label page, recent labels")
    shoot(page, "label-recent")

    # Review: the opened item (newest finished: a tie of a free-text label, corrected by a user named like a link)
    open_page(page, "Review")
    heading = shown(page, '[data-testid="stMainBlockContainer"] h3')
    assert f"row 3 {p['colour']}" in heading and "![c](" in heading, heading  # the row in one line, cut at 60 characters
    main = shown(page, '[data-testid="stMainBlockContainer"]')
    assert f"id id3 {p['colour']}" in main
    assert f"Consensus: {data['free']} — a tie" in main, main
    assert f"Corrected label: {p['html']} (by {p['link']}," in main
    assert f"Used for training and export: {p['html']}" in main
    assert p["bold"] in shown(page, ".st-key-label-item, [data-testid='stTable']")  # the row's cells
    nothing_points_out(page, port, seen, "Review page")
    shoot(page, "review")

    # Progress (labellers, agreement) and Model (per-class figures, a failed run's message)
    open_page(page, "Progress")
    page.get_by_role("heading", name="Labellers").wait_for(timeout=60_000)
    page.wait_for_function("() => document.querySelectorAll('.js-plotly-plot .xtick').length > 0", timeout=30_000)
    ticks = page.eval_on_selector_all(".js-plotly-plot .xtick text", "els => els.map(e => e.textContent)")
    assert data["tick"] in ticks and p["html"] in ticks, ticks  # the chart's categories as typed, no link, no bold
    nothing_points_out(page, port, seen, "Progress page")
    shoot(page, "progress")
    open_page(page, "Model")
    assert f"boom: {p['image']} {p['colour']}" in shown(page, '[data-testid="stCode"]')
    nothing_points_out(page, port, seen, "Model page")
    shoot(page, "model")

    # Admin: the project's name in the delete box's label, a user named like an image, an upload's preview and import
    open_page(page, "Admin")
    choose(page, "Project to edit", data["project"])
    assert f"type its name: {data['project']}" in shown(page, '[data-testid="stWidgetLabel"]')
    page.get_by_role("tab", name="Users").click()
    newcomer = f"![n](http://127.0.0.1:{port}/new.png)"
    page.get_by_label("User name").fill(newcomer)
    page.locator(".st-key-admin-new-password input").fill(PASSWORD)
    page.get_by_role("button", name="Create user").click()
    settle(page)
    page.get_by_text("created.").first.wait_for(timeout=30_000)
    assert f"User '{newcomer}' created." in shown(page, '[data-testid="stAlert"]')
    page.get_by_role("tab", name="Upload data").click()
    upload = tmp_path / "more.csv"
    upload.write_text(f"note,id\n\"{p['link']}\",u1\n\"{p['image']}\",u2\n")
    page.locator('[data-testid="stFileUploaderDropzoneInput"]').set_input_files(str(upload))
    settle(page)
    button = page.locator(".st-key-admin-upload-import button")
    assert button_text(page, "admin-upload-import") == f"Import 2 items into '{data['project']}'"
    button.click()
    settle(page)
    page.get_by_text("Imported 2 new items").first.wait_for(timeout=30_000)
    page.get_by_role("tab", name="Audit log").click()
    settle(page)
    nothing_points_out(page, port, seen, "Admin page")
    shoot(page, "admin")
    page.close()

    # ------------------------------------------------------------------ the reviewer
    context = browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    sign_in(page, base, "rita")
    assert f"Rita {p['link']} {p['html']}" in signed_in_as(page)
    for i, option in enumerate(p.values()):
        assert button_text(page, f"label-opt-{i}") == option
    nothing_points_out(page, port, seen, "Label page (reviewer)")
    for title in ("Review", "Progress", "Model"):
        open_page(page, title)
        assert f"Rita {p['link']} {p['html']}" in signed_in_as(page)
        nothing_points_out(page, port, seen, f"{title} page (reviewer)")
    shoot(page, "reviewer-model")
    context.close()
    assert seen == []
    assert Path(tmp_path / "shots" / "review.png").exists()
