"""Spans projects on the Label and Review pages through AppTest (SQLite and PostgreSQL), and the span widget's Python side.

AppTest runs no component JavaScript: these tests read what the page hands the span widget (its data) and what the
pages draw around it. Marking, submitting and correcting in a browser: tests/test_spans_browser.py.
"""

from __future__ import annotations

import json

import sqlalchemy as sa

from superintendent import auth, queue
from superintendent.app.render import marks_text
from superintendent.app.span_input import _indexed, spans_from_payload
from superintendent.store import Item, session_scope
from tests.test_app import add_user, errors, logged_in

__all__ = ["app_env"]  # a fixture of tests/test_app.py, used here

OPTIONS = ["PER", "LOC", "ORG"]
TEXT = "Zoë Müller 👩🏽‍🔬 met Ada Lovelace at CERN, near Gene\u0300ve."
ADA = {"start": TEXT.index("Ada"), "end": TEXT.index("Ada") + len("Ada Lovelace"), "label": "PER"}
CERN = {"start": TEXT.index("CERN"), "end": TEXT.index("CERN") + 4, "label": "ORG"}


def spans_project(engine, texts, **settings):
    with session_scope(engine) as s:
        project = queue.create_project(s, "people", label_mode="spans", options=OPTIONS, data_type="text", **settings)
        queue.add_items(s, project, texts, external_ids=[f"s{i}" for i in range(len(texts))])
        ids = s.execute(sa.select(Item.id).where(Item.project_id == project.id).order_by(Item.id)).scalars().all()
    return project, ids


def widget_data(at, key):
    """The data the page gave the span widget mounted with ``key`` (AppTest keeps the element's proto)."""
    found = [e for e in at.main.get("bidi_component") if e.proto.id.endswith(key)]
    assert len(found) == 1, f"no span widget {key!r}"
    proto = found[0].proto
    return json.loads(proto.json or proto.mixed.json)


def test_the_label_page_draws_the_span_widget_prefilled_with_the_models_spans(app_env):
    add_user(app_env, "boss", role="admin")
    project, ids = spans_project(app_env, [TEXT, "Grace Hopper flew to Toronto."], show_hints=True)
    with session_scope(app_env) as s:  # a model's spans for the first item; one has a label the project lacks
        queue.set_hints(s, project, [ids[0]], [[ADA, {"start": 0, "end": 3, "label": "ANIMAL"}]], [0.8], [[]])
    at = logged_in("boss")
    assert errors(at) == []
    data = widget_data(at, f"label-spans-{ids[0]}")
    assert data["text"] == TEXT
    assert data["options"] == OPTIONS and data["keys"] == ["1", "2", "3"]
    assert data["spans"] == [{"start": ADA["start"], "end": ADA["end"], "label": 0}]  # PER is option 0; ANIMAL left out
    assert data["suggested"] is True and data["readonly"] is False
    assert [b.key for b in at.button if b.key and b.key.startswith("label-opt-")] == []  # no label buttons
    assert not any("Model's guess" in c.value for c in at.caption)  # the hint is in the widget, not as raw JSON
    at.button(key="label-skip").click().run()  # Skip still works
    assert errors(at) == []
    assert widget_data(at, f"label-spans-{ids[1]}")["spans"] == []


def test_a_model_that_found_nothing_suggests_nothing_to_mark(app_env):
    add_user(app_env, "boss", role="admin")
    project, ids = spans_project(app_env, [TEXT], show_hints=True)
    with session_scope(app_env) as s:
        queue.set_hints(s, project, [ids[0]], [[]], [0.9], [[]])
    at = logged_in("boss")
    data = widget_data(at, f"label-spans-{ids[0]}")
    assert data["spans"] == [] and data["suggested"] is True
    assert any("Model's suggestion, pre-filled: nothing to mark (90% sure)" in c.value for c in at.caption)


def test_hints_stay_out_of_the_span_widget_where_the_project_hides_them(app_env):
    add_user(app_env, "boss", role="admin")
    project, ids = spans_project(app_env, [TEXT], show_hints=False)
    with session_scope(app_env) as s:
        queue.set_hints(s, project, [ids[0]], [[ADA]], [0.8], [[]])
    at = logged_in("boss")
    data = widget_data(at, f"label-spans-{ids[0]}")
    assert data["spans"] == [] and data["suggested"] is False


def test_a_text_free_item_of_a_spans_project_says_so_and_can_be_skipped(app_env):
    add_user(app_env, "boss", role="admin")
    with session_scope(app_env) as s:
        project = queue.create_project(s, "people", label_mode="spans", options=OPTIONS, data_type="any")
        queue.add_items(s, project, [{"title": "no text field"}, "A sentence about Paris."])
    at = logged_in("boss")
    assert any("cannot be marked" in w.value and "'text'" in w.value for w in at.warning)
    at.button(key="label-skip").click().run()
    assert errors(at) == [] and not at.warning


def test_the_review_page_shows_each_labellers_spans_and_flags_a_tie(app_env):
    add_user(app_env, "boss", role="admin")
    for name in ("alice", "bob"):
        add_user(app_env, name)
    project, (item,) = spans_project(app_env, [TEXT], annotations_per_item=2)
    with session_scope(app_env) as s:
        queue.submit(s, project, auth.get_user(s, "alice").id, item, [ADA])
        queue.submit(s, project, auth.get_user(s, "bob").id, item, [CERN])
    at = logged_in("boss")
    at.switch_page("pages/review.py").run()
    assert errors(at) == []
    table = at.dataframe[0].value
    assert list(table["labels"]) == ["alice: Ada Lovelace (PER); bob: CERN (ORG)"]
    assert list(table["consensus"])[0].endswith("(tie)")
    assert any("A tie" in w.value for w in at.warning)
    assert widget_data(at, f"review-marks-{item}-0")["spans"] == [{"start": ADA["start"], "end": ADA["end"], "label": 0}]
    assert widget_data(at, f"review-marks-{item}-1")["readonly"] is True
    assert widget_data(at, f"review-correct-{item}")["readonly"] is False


def test_the_widgets_submit_becomes_spans_with_the_options_themselves():
    options = [1, "LOC", "ORG"]  # an option that is a number stays a number
    payload = {"version": "v", "spans": [{"start": 9, "end": 12, "label": 2}, {"start": 0, "end": 3, "label": 0}]}
    assert spans_from_payload(payload, TEXT, options) == [{"start": 0, "end": 3, "label": 1}, {"start": 9, "end": 12, "label": "ORG"}]
    assert spans_from_payload({"version": "v", "spans": []}, TEXT, options) == []  # nothing to mark
    for bad in (None, [], {"spans": "x"}, {"spans": [{"start": 0, "end": 1, "label": 7}]},
                {"spans": [{"start": 0, "end": 1, "label": True}]}, {"spans": [{"start": "0", "end": 1, "label": 0}]}):
        assert spans_from_payload(bad, TEXT, options) is None


def test_a_value_is_drawn_only_where_it_fits_the_text_and_the_options():
    spans = [{"start": 5, "end": 9, "label": "LOC"}, {"start": 0, "end": 3, "label": "PER"}, {"start": 7, "end": 10, "label": "ORG"},
             {"start": 0, "end": 999, "label": "PER"}, {"start": 1, "end": 2, "label": "CAT"}, "junk"]
    assert _indexed(spans, TEXT, OPTIONS) == [{"start": 0, "end": 3, "label": 0}, {"start": 5, "end": 9, "label": 1}]


def test_marks_read_as_one_line():
    assert marks_text([ADA, CERN], "spans", TEXT) == "Ada Lovelace (PER), CERN (ORG)"
    assert marks_text([], "spans", TEXT) == "nothing to mark"
    assert marks_text(None, "spans", TEXT) == "—"
    assert marks_text([{"x": 0, "y": 0, "width": 2, "height": 2, "label": "cat"}] * 2, "boxes", None) == "2 boxes: cat, cat"


def test_your_recent_labels_reads_spans_as_text_and_opens_them_in_the_span_widget(app_env):
    add_user(app_env, "alice")
    project, ids = spans_project(app_env, [TEXT, "Grace Hopper flew to Toronto."])
    with session_scope(app_env) as s:
        alice = auth.get_user(s, "alice").id
        queue.add_members(s, project.id, [alice])
        queue.submit(s, project, alice, ids[0], [ADA, CERN])
    at = logged_in("alice")
    at.session_state["label-recent"] = True  # open "Your recent labels"
    at.run()
    assert errors(at) == []
    assert list(at.dataframe[0].value["your label"]) == ["Ada Lovelace (PER), CERN (ORG)"]
    data = widget_data(at, f"label-recent-spans-{ids[0]}")
    assert data["spans"] == [{"start": ADA["start"], "end": ADA["end"], "label": 0},
                             {"start": CERN["start"], "end": CERN["end"], "label": 2}]
    assert data["submit_label"] == "Save change"


def test_an_uploaded_photo_goes_to_the_box_widget_as_its_own_bytes(tmp_path, monkeypatch):
    """A JPEG of the upload folder is sent as it is (no decoding and encoding again on every run); an array as a PNG;
    a path outside the upload folder as nothing."""
    import base64
    import io

    import numpy as np
    from PIL import Image

    from superintendent.app import render

    monkeypatch.setenv("SUPERINTENDENT_DATA_DIR", str(tmp_path))
    photo = tmp_path / "uploads" / "photo.jpg"
    photo.parent.mkdir()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (60, 80, 3), dtype=np.uint8)).save(photo, quality=90)
    url = render.image_data_url({"image_path": str(photo), "name": "photo.jpg", "width": 80, "height": 60})
    assert url == "data:image/jpeg;base64," + base64.b64encode(photo.read_bytes()).decode("ascii")
    array_url = render.image_data_url(np.zeros((6, 8), dtype=np.uint8))
    assert array_url.startswith("data:image/png;base64,")
    assert Image.open(io.BytesIO(base64.b64decode(array_url.split(",", 1)[1]))).size == (8, 6)
    outside = tmp_path / "elsewhere.jpg"
    outside.write_bytes(photo.read_bytes())
    assert render.image_data_url({"image_path": str(outside), "name": "x"}) is None
