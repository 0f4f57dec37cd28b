"""The bounding-box widget (superintendent.app.box_input) in a real headless Chromium, on a tiny Streamlit script.

The script shows ``box_input`` on sklearn's china.jpg scaled to 320 x 240 (with one pre-filled box) and writes what
it returns (and what its ``on_submit`` callback was handed) to the page. The labeller draws, moves, resizes and
relabels a box, draws a second and deletes it, drags past the image's corner (clipped, also on screen), relabels with
a label that looks like HTML (shown as text) and submits with Enter; the returned boxes are the drawn ones to the
pixel (expected pixels come from the display scale the page reports). Then "Nothing to mark" returns ``[]``. Screenshots go to ``$SUPERINTENDENT_SHOTS`` or the test's
temporary folder. The checks of what the browser sends (no browser needed) come first.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from browser_helpers import running_app, screenshots_into, settle

from superintendent.app.box_input import _prefill, _submitted, box_input
from superintendent.app.keys import number_keys
from superintendent.validation import ValidationError
from tests.test_browser import browser

__all__ = ["browser"]  # the fixture of tests/test_browser.py, used here

OPTIONS = ["cat", "dog", "<b>bird</b>"]
W, H = 320, 240

SCRIPT = """
import base64, io
import streamlit as st
from PIL import Image
from sklearn.datasets import load_sample_images
from superintendent.app.box_input import box_input

@st.cache_data
def china():
    image = Image.fromarray(load_sample_images().images[0]).resize((%(w)d, %(h)d))
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=85)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")

def stored(boxes):  # the callback, before the script runs
    st.session_state["stored"] = boxes

got = box_input(china(), %(w)d, %(h)d, %(options)r, key="boxes", on_submit=stored,
                value=[{"x": 10, "y": 12, "width": 30, "height": 20, "label": "cat"},
                       {"x": 0, "y": 0, "width": 5, "height": 5, "label": "zebra"}])
if got is not None:
    st.session_state["got"] = got
    st.session_state["submits"] = st.session_state.get("submits", 0) + 1
st.code(__import__("json").dumps({"submits": st.session_state.get("submits", 0), "boxes": st.session_state.get("got"),
                                  "stored": st.session_state.get("stored")}), language=None)
""" % {"w": W, "h": H, "options": OPTIONS}


# --------------------------------------------------------------------------- what the browser sends, checked in Python


def test_submitted_boxes_are_whole_pixels_with_their_options_clipped_to_the_image():
    sent = {"boxes": [{"x": 10.4, "y": 19.6, "width": 20.2, "height": 10, "label": 2},
                      {"x": 300, "y": 200, "width": 40, "height": 60, "label": 0}]}
    assert _submitted(sent, W, H, OPTIONS) == [{"x": 10, "y": 20, "width": 21, "height": 10, "label": "<b>bird</b>"},
                                               {"x": 300, "y": 200, "width": 20, "height": 40, "label": "cat"}]
    assert _submitted({"boxes": []}, W, H, OPTIONS) == []


@pytest.mark.parametrize("sent", [None, {"boxes": "x"}, {"boxes": [{"x": 1, "y": 1, "width": 5, "height": 5, "label": 3}]},
                                  {"boxes": [{"x": 1, "y": 1, "width": 5, "height": 5, "label": True}]},
                                  {"boxes": [{"x": "a", "y": 1, "width": 5, "height": 5, "label": 0}]},
                                  {"boxes": [{"x": 400, "y": 1, "width": 5, "height": 5, "label": 0}]}],
                         ids=["nothing", "not-a-list", "no-such-option", "bool-label", "text-x", "outside"])
def test_a_garbled_submit_is_refused(sent):
    with pytest.raises(ValidationError, match="box|boxes"):
        _submitted(sent, W, H, OPTIONS)


def test_prefilled_boxes_carry_option_indices_and_skip_unknown_labels():
    value = [{"x": 1, "y": 2, "width": 3, "height": 4, "label": "dog"}, {"x": 1, "y": 2, "width": 3, "height": 4, "label": "zebra"},
             {"x": 1, "y": 2, "label": "cat"}]
    assert _prefill(value, OPTIONS) == [{"x": 1.0, "y": 2.0, "width": 3.0, "height": 4.0, "label": 1}]
    assert number_keys(11) == ["1", "2", "3", "4", "5", "6", "7", "8", "9", "0", None]
    with pytest.raises(ValueError, match="needs the labels"):
        box_input("data:,", W, H, [], key="no-options")


# --------------------------------------------------------------------------- in Chromium


@pytest.fixture
def boxes_app(tmp_path):
    """``streamlit run`` of :data:`SCRIPT` on a free port; yields its URL."""
    script = tmp_path / "boxes_app.py"
    script.write_text(SCRIPT)
    with running_app(tmp_path, script=script) as (base, _):
        yield base


def _result(page, submits: int) -> list[dict]:
    """The boxes the script got, once it has had ``submits`` submits."""
    code = page.locator('[data-testid="stCode"]')
    page.wait_for_function("n => [...document.querySelectorAll('[data-testid=stCode]')].some("
                           "el => el.innerText.includes('\"submits\": ' + n))", arg=submits, timeout=20_000)
    shown = json.loads(code.inner_text())
    assert shown["stored"] == shown["boxes"]  # on_submit was handed the same boxes
    return shown["boxes"]


def test_draw_move_resize_relabel_delete_clip_and_submit(boxes_app, browser, tmp_path):
    shoot = screenshots_into(Path(os.environ.get("SUPERINTENDENT_SHOTS", tmp_path / "shots")))
    page = browser.new_page(viewport={"width": 1000, "height": 900})
    page.goto(boxes_app)
    settle(page)
    stage, image = page.get_by_test_id("box-stage"), page.locator(".bx-img")
    stage.wait_for(timeout=20_000)
    page.wait_for_function("() => document.querySelector('[data-testid=stBidiComponentIsolated]')")
    scale = float(stage.get_attribute("data-scale"))
    origin = image.bounding_box()
    assert origin["width"] == pytest.approx(W * scale, abs=0.5) and origin["width"] >= 500  # fitted to the page

    def at(x: float, y: float) -> tuple[float, float]:
        """The page point over image pixel (x, y); +0.2 keeps rounding on the pixel whatever the sub-pixel offsets."""
        return origin["x"] + (x + 0.2) * scale, origin["y"] + (y + 0.2) * scale

    def drag(start: tuple[float, float], end: tuple[float, float]) -> None:
        page.mouse.move(*start)
        page.mouse.down()
        page.mouse.move(*end, steps=6)
        page.mouse.up()

    def shown() -> list[tuple[str, str]]:
        return [(b.locator(".bx-tag").inner_text(), b.get_attribute("class")) for b in page.locator(".bx-box").all()]

    # the pre-filled box is shown (the one labelled "zebra", no option, is left out)
    assert [tag for tag, _ in shown()] == ["cat"]
    shoot(page, "boxes-1-prefilled")

    # draw: a new box, labelled with the first option, selected
    drag(at(60, 50), at(140, 110))
    assert shown()[1] == ("cat", "bx-box selected")
    # move it by (+20, +10) image pixels, from its inside
    middle = at(100, 80)
    drag(middle, (middle[0] + 20 * scale, middle[1] + 10 * scale))
    # resize: its bottom-right handle to (170, 150)
    handle = page.locator(".bx-box.selected .bx-handle[data-corner=se]").bounding_box()
    drag((handle["x"] + handle["width"] / 2, handle["y"] + handle["height"] / 2), at(170, 150))
    # nudge it one pixel left with the arrow key, then relabel with a number key
    page.keyboard.press("ArrowLeft")
    page.keyboard.press("2")
    assert shown()[1] == ("dog", "bx-box selected")
    shoot(page, "boxes-2-drawn-moved-resized-relabelled")

    # a second box takes the label used last; Delete removes it
    drag(at(200, 20), at(260, 70))
    assert [tag for tag, _ in shown()] == ["cat", "dog", "dog"]
    page.keyboard.press("Delete")
    assert [tag for tag, _ in shown()] == ["cat", "dog"]

    # a drag past the image's bottom-right corner ends at the corner; the label that looks like HTML is text
    drag(at(250, 180), (origin["x"] + origin["width"] + 60, origin["y"] + origin["height"] + 40))
    clipped = page.locator(".bx-box.selected").bounding_box()
    assert clipped["x"] + clipped["width"] == pytest.approx(origin["x"] + origin["width"], abs=1)  # drawn to the edge
    assert clipped["y"] + clipped["height"] == pytest.approx(origin["y"] + origin["height"], abs=1)
    page.keyboard.press("3")
    assert page.locator(".bx-box.selected .bx-tag").inner_text() == "<b>bird</b>"
    assert page.locator(".bx-box b").count() == 0
    shoot(page, "boxes-3-clipped-and-html-label")

    page.keyboard.press("Enter")
    settle(page)
    assert _result(page, 1) == [
        {"x": 10, "y": 12, "width": 30, "height": 20, "label": "cat"},
        # drawn 60,50-140,110; moved +20,+10; resized to 170,150; nudged a pixel left
        {"x": 79, "y": 60, "width": 90, "height": 90, "label": "dog"},
        {"x": 250, "y": 180, "width": W - 250, "height": H - 180, "label": "<b>bird</b>"},
    ]
    shoot(page, "boxes-4-submitted")

    # "Nothing to mark" sends an empty list (not sooner than a double press would: that one is dropped)
    page.wait_for_timeout(700)
    page.get_by_role("button", name="Nothing to mark").click()
    settle(page)
    assert _result(page, 2) == []
    shoot(page, "boxes-5-nothing-to-mark")
