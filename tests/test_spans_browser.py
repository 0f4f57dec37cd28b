"""Spans on the Label and Review pages, in a real headless Chromium (the span widget's JavaScript runs only there).

A labeller marks names and places in a sentence: one span by dragging the mouse, one with Shift+arrows (over a letter
with a combining accent, which the caret steps over as one), a span relabelled after a click on it, an overlap refused
with a message, a span deleted; Enter submits. The stored offsets are Python's (code points): the sentence holds an
emoji of four code points (seven UTF-16 units) before the marks, so offsets counted the browser's way would be off.
The next item comes in a fragment rerun (the browser's rerun request names the fragment), and "nothing to mark" is
an answer ([]). Then the admin sees the marks on the Review page and corrects them.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa
from PIL import Image
from sklearn.datasets import load_sample_images
from browser_helpers import PASSWORD, REVIEW_VIEWPORT, AppDidNotStart, choose, running_app, screenshots_into, settle, sign_in
from streamlit.proto.BackMsg_pb2 import BackMsg

from superintendent import auth, queue, serialization
from superintendent.store import Annotation, Item, init_db, make_engine, session_scope
from tests.test_browser import browser

__all__ = ["browser"]  # a fixture of tests/test_browser.py, used here

SHOTS = Path(os.environ.get("SUPERINTENDENT_SPANS_SHOTS", "/tmp/shots-spans-ui"))
OPTIONS = ["PER", "LOC", "ORG"]
# Names and places; the scientist emoji is 4 code points (woman, skin tone, zero-width joiner, microscope) and 7 UTF-16
# units; "Gene\u0300ve" has a combining grave accent (7 code points, 6 letters on screen).
FIRST = "Zoë Müller 👩🏽‍🔬 met Ada Lovelace at CERN, near Gene\u0300ve."
SECOND = "Grace Hopper flew from Toronto to São Paulo in 1985."
THIRD = "Alan Turing ran from Cambridge to London."
FOURTH = "Marie Curie worked in Paris and Warsaw."


def at(text: str, part: str) -> tuple[int, int]:
    start = text.index(part)
    return start, start + len(part)


@pytest.fixture
def app(db_url, tmp_path):
    """The app on ``db_url`` (SQLite and PostgreSQL): admin boss, labeller alice, the spans project "people"."""
    engine = make_engine(db_url)
    init_db(engine)
    with session_scope(engine) as s:
        auth.create_user(s, "boss", PASSWORD, "admin")
        alice = auth.create_user(s, "alice", PASSWORD, "labeller").id
        project = queue.create_project(s, "people", label_mode="spans", options=OPTIONS, data_type="text")
        queue.add_items(s, project, [FIRST, SECOND, THIRD, FOURTH], external_ids=["s1", "s2", "s3", "s4"])
        queue.add_members(s, project.id, [alice])
    try:
        with running_app(tmp_path, db_url=db_url) as (base, _):
            yield base, engine
    except AppDidNotStart as exc:
        pytest.fail(str(exc))
    finally:
        engine.dispose()


# --------------------------------------------------------------------------- driving the widget

CHAR_BOX = """([root, cp]) => {
  for (const seg of document.querySelectorAll(root + ' .si-text .si-seg')) {
    const s = +seg.dataset.s, e = +seg.dataset.e;
    if (cp < s || cp >= e) continue;
    seg.scrollIntoView({ block: 'nearest' });
    const node = seg.firstChild, chars = Array.from(node.data);
    const from = chars.slice(0, cp - s).join('').length, range = document.createRange();
    range.setStart(node, from);
    range.setEnd(node, from + chars[cp - s].length);
    const b = range.getBoundingClientRect();
    return [b.left, b.top, b.width, b.height];
  }
  return null;
}"""

MARKS = """root => [...document.querySelectorAll(root + ' .si-mark-end')].map(seg => {
  const k = seg.dataset.k; const parts = [...document.querySelectorAll(root + ' .si-mark')].filter(m => m.dataset.k === k);
  return [parts.map(p => p.textContent).join(''), seg.dataset.label];
})"""


def char_box(page, root: str, cp: int) -> tuple[float, float, float, float]:
    box = page.evaluate(CHAR_BOX, [root, cp])
    assert box is not None, f"character {cp} is not drawn in {root}"
    return box


def drag_select(page, root: str, start: int, end: int) -> None:
    """Select characters start..end (end exclusive) by dragging the mouse over them."""
    x0, y0, w0, h0 = char_box(page, root, start)
    x1, y1, w1, h1 = char_box(page, root, end - 1)
    page.mouse.move(x0 + w0 * 0.2, y0 + h0 / 2)
    page.mouse.down()
    page.mouse.move(x1 + w1 * 0.5, y1 + h1 / 2, steps=5)
    page.mouse.move(x1 + w1 * 0.8, y1 + h1 / 2, steps=2)
    page.mouse.up()


def click_char(page, root: str, cp: int) -> None:
    x, y, w, h = char_box(page, root, cp)
    page.mouse.click(x + w / 2, y + h / 2)


def marks_shown(page, root: str) -> list[list[str]]:
    return page.evaluate(MARKS, root)


def message(page, root: str) -> str:
    return page.locator(f"{root} .si-message").inner_text()


def rerun_requests(page) -> list[BackMsg]:
    """Every rerun request the page sends from now on (decoded BackMsgs), to tell fragment reruns from full ones."""
    sent: list[BackMsg] = []

    def on_socket(ws):  # noqa: ANN001 - playwright's WebSocket
        def on_frame(payload):  # noqa: ANN001 - bytes of a binary frame
            if isinstance(payload, bytes):
                msg = BackMsg.FromString(payload)
                if msg.WhichOneof("type") == "rerun_script":
                    sent.append(msg)
        ws.on("framesent", on_frame)

    page.on("websocket", on_socket)
    return sent


def stored(engine, external_id: str) -> list:
    with session_scope(engine, write=False) as s:
        value = s.execute(sa.select(Annotation.value).join(Item, Item.id == Annotation.item_id)
                          .where(Item.external_id == external_id)).scalar_one()
    return serialization.loads(value)


def shown_text(page, root: str) -> str:
    return page.locator(f"{root} .si-text").inner_text()


# --------------------------------------------------------------------------- the scenario


def test_a_labeller_marks_spans_and_the_admin_corrects_them(app, browser, db_url):
    base, engine = app
    shoot = screenshots_into(SHOTS)
    tag = "pg" if db_url.startswith("postgresql") else "sqlite"
    page = browser.new_page(viewport=REVIEW_VIEWPORT)
    sent = rerun_requests(page)
    sign_in(page, base, "alice")
    root = ".st-key-label-item"
    page.locator(f"{root} .si-text").wait_for(timeout=30_000)
    assert shown_text(page, root) == FIRST  # claimed in id order: the first sentence, drawn as its characters
    shoot(page, f"{tag}-1-item")

    # the mouse: drag over "Ada Lovelace", press 1 (PER)
    drag_select(page, root, *at(FIRST, "Ada Lovelace"))
    shoot(page, f"{tag}-2-selected")
    page.keyboard.press("1")
    assert marks_shown(page, root) == [["Ada Lovelace", "PER"]]
    # the keyboard: from the end, one step left (past the full stop), six graphemes with Shift (seven code points)
    page.keyboard.press("End")
    page.keyboard.press("ArrowLeft")
    for _ in range(6):
        page.keyboard.press("Shift+ArrowLeft")
    page.keyboard.press("2")
    assert marks_shown(page, root) == [["Ada Lovelace", "PER"], ["Gene\u0300ve", "LOC"]]
    # a wrong label, relabelled after a click on the mark
    drag_select(page, root, *at(FIRST, "CERN"))
    page.keyboard.press("1")
    click_char(page, root, FIRST.index("CERN") + 1)
    assert "Selected “CERN” (PER)" in message(page, root)
    page.keyboard.press("3")
    assert marks_shown(page, root) == [["Ada Lovelace", "PER"], ["CERN", "ORG"], ["Gene\u0300ve", "LOC"]]
    # an overlap is refused with a message, and nothing changes
    drag_select(page, root, *at(FIRST, "Lovelace at"))
    page.keyboard.press("3")
    assert "overlaps “Ada Lovelace” (PER)" in message(page, root)
    assert marks_shown(page, root) == [["Ada Lovelace", "PER"], ["CERN", "ORG"], ["Gene\u0300ve", "LOC"]]
    shoot(page, f"{tag}-3-overlap-refused")
    # a mark deleted: "Zoë Müller" marked, clicked, Delete
    drag_select(page, root, *at(FIRST, "Zoë Müller"))
    page.keyboard.press("1")
    assert len(marks_shown(page, root)) == 4
    click_char(page, root, 2)
    page.keyboard.press("Delete")
    assert marks_shown(page, root) == [["Ada Lovelace", "PER"], ["CERN", "ORG"], ["Gene\u0300ve", "LOC"]]
    shoot(page, f"{tag}-4-before-submit")

    # Enter submits (the first runs after signing in draw the item outside the fragment: label_view.SETTLING_RUNS)
    page.keyboard.press("Enter")
    page.wait_for_function(f"() => document.querySelector('{root} .si-text')?.innerText === {SECOND!r}", timeout=20_000)
    expected = [{"start": a, "end": b, "label": label} for (a, b), label in
                ((at(FIRST, "Ada Lovelace"), "PER"), (at(FIRST, "CERN"), "ORG"), (at(FIRST, "Gene\u0300ve"), "LOC"))]
    assert stored(engine, "s1") == expected
    assert [FIRST[m["start"]:m["end"]] for m in expected] == ["Ada Lovelace", "CERN", "Gene\u0300ve"]
    settle(page)
    shoot(page, f"{tag}-5-next-item")

    # "nothing to mark" is an answer
    page.locator(f"{root} .si-submit").click()
    page.wait_for_function(f"() => document.querySelector('{root} .si-text')?.innerText === {THIRD!r}", timeout=20_000)
    assert stored(engine, "s2") == []

    # a double-click marks a word; now settled, the next item comes in a fragment rerun (the request names the fragment)
    x, y, w, h = char_box(page, root, THIRD.index("Cambridge") + 3)
    page.mouse.dblclick(x + w / 2, y + h / 2)
    page.keyboard.press("2")
    assert marks_shown(page, root) == [["Cambridge", "LOC"]]
    before = len(sent)
    page.keyboard.press("Enter")
    page.wait_for_function(f"() => document.querySelector('{root} .si-text')?.innerText === {FOURTH!r}", timeout=20_000)
    requests = sent[before:]
    assert requests and all(r.rerun_script.fragment_id for r in requests), "the submit reran the whole page"
    assert stored(engine, "s3") == [{"start": THIRD.index("Cambridge"), "end": THIRD.index("Cambridge") + 9, "label": "LOC"}]

    # the admin sees alice's marks on the Review page and corrects them (CERN removed)
    admin = browser.new_page(viewport=REVIEW_VIEWPORT)
    sign_in(admin, base, "boss")
    admin.get_by_role("link", name="Review").click()
    settle(admin)
    choose(admin, "Project", "people")
    with session_scope(engine, write=False) as s:
        first_id = s.execute(sa.select(Item.id).where(Item.external_id == "s1")).scalar_one()
    choose(admin, "Open item", _option_named(admin, "id s1"))
    alices = f".st-key-review-marks-{first_id}-0"
    admin.locator(f"{alices} .si-text").wait_for(timeout=30_000)
    assert marks_shown(admin, alices) == [["Ada Lovelace", "PER"], ["CERN", "ORG"], ["Gene\u0300ve", "LOC"]]
    admin.set_viewport_size({"width": 1280, "height": 1900})  # the whole page in the screenshot
    settle(admin)
    shoot(admin, f"{tag}-6-review")
    fix = f".st-key-review-correct-{first_id}"
    click_char(admin, fix, FIRST.index("CERN"))
    admin.keyboard.press("Delete")
    admin.keyboard.press("Enter")
    admin.get_by_text("Corrected to Ada Lovelace (PER), Gene\u0300ve (LOC).").first.wait_for(timeout=30_000)
    settle(admin)
    shoot(admin, f"{tag}-7-corrected")
    with session_scope(engine, write=False) as s:
        reviewed = s.execute(sa.select(Item.review_value).where(Item.id == first_id)).scalar_one()
    assert serialization.loads(reviewed) == [expected[0], expected[2]]


def _option_named(page, fragment: str) -> str:
    """The full text of the "Open item" option containing ``fragment``."""
    page.get_by_label("Open item", exact=True).click()
    option = page.get_by_role("option").filter(has_text=fragment).first
    text = option.inner_text()
    page.keyboard.press("Escape")
    return text


# --------------------------------------------------------------------------- boxes: the same pages with the box widget


def photo(width: int) -> np.ndarray:
    """sklearn's china.jpg scaled to ``width`` pixels wide, as an image array item (rows are y)."""
    china = Image.fromarray(load_sample_images().images[0])
    return np.asarray(china.resize((width, round(china.height * width / china.width))))


def drag_box(page, root: str, x0: int, y0: int, x1: int, y1: int) -> None:
    """Drag on the box widget's image from image pixel (x0, y0) to (x1, y1)."""
    stage = page.locator(f"{root} .bx-stage")
    stage.scroll_into_view_if_needed()
    left, top, scale = page.evaluate("""el => { const r = el.getBoundingClientRect();
        return [r.left + el.clientLeft, r.top + el.clientTop, +el.dataset.scale]; }""", stage.element_handle())
    page.mouse.move(left + (x0 + 0.2) * scale, top + (y0 + 0.2) * scale)
    page.mouse.down()
    page.mouse.move(left + (x1 + 0.2) * scale, top + (y1 + 0.2) * scale, steps=6)
    page.mouse.up()


def test_boxes_on_the_label_and_review_pages(tmp_path, browser):
    """A labeller draws a box and relabels it by key, Enter submits, the next image comes; the admin sees it drawn on
    the Review page and corrects its label (SQLite: the database half is the spans scenario's)."""
    db_url = f"sqlite:///{tmp_path / 'boxes.db'}"
    engine = make_engine(db_url)
    init_db(engine)
    with session_scope(engine) as s:
        auth.create_user(s, "boss", PASSWORD, "admin")
        project = queue.create_project(s, "scenes", label_mode="boxes", options=["roof", "tree", "sky"], data_type="image")
        queue.add_items(s, project, [photo(120), photo(90)], external_ids=["b1", "b2"])
        first, second = s.execute(sa.select(Item.id).where(Item.project_id == project.id).order_by(Item.id)).scalars().all()
    shoot = screenshots_into(SHOTS)
    try:
        with running_app(tmp_path, db_url=db_url) as (base, _):
            page = browser.new_page(viewport=REVIEW_VIEWPORT)
            sign_in(page, base, "boss")
            choose(page, "Project", "scenes")
            root = f".st-key-label-boxes-{first}"
            page.locator(f"{root} .bx-stage").wait_for(timeout=30_000)
            drag_box(page, root, 20, 10, 70, 50)
            page.keyboard.press("2")
            shoot(page, "boxes-1-drawn")
            page.keyboard.press("Enter")
            page.locator(f".st-key-label-boxes-{second} .bx-stage").wait_for(timeout=20_000)
            with session_scope(engine, write=False) as s:
                value = s.execute(sa.select(Annotation.value).where(Annotation.item_id == first)).scalar_one()
            assert serialization.loads(value) == [{"x": 20, "y": 10, "width": 50, "height": 40, "label": "tree"}]
            settle(page)
            shoot(page, "boxes-2-next-item")

            page.get_by_role("link", name="Review").click()
            settle(page)
            choose(page, "Project", "scenes")
            fix = f".st-key-review-correct-{first}"
            page.locator(f"{fix} .bx-box").wait_for(timeout=30_000)
            page.set_viewport_size({"width": 1280, "height": 2200})
            settle(page)
            shoot(page, "boxes-3-review")
            page.locator(f"{fix} .bx-box").click()
            page.keyboard.press("1")
            page.keyboard.press("Enter")
            page.get_by_text("Corrected to 1 box: roof.").first.wait_for(timeout=30_000)
            settle(page)
            shoot(page, "boxes-4-corrected")
            with session_scope(engine, write=False) as s:
                reviewed = s.execute(sa.select(Item.review_value).where(Item.id == first)).scalar_one()
            assert serialization.loads(reviewed) == [{"x": 20, "y": 10, "width": 50, "height": 40, "label": "roof"}]
    except AppDidNotStart as exc:
        pytest.fail(str(exc))
    finally:
        engine.dispose()
