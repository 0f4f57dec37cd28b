"""Spans and boxes as values: checked against their item before anything is stored, on both databases; consensus."""

from __future__ import annotations

import numpy as np
import pytest
import sqlalchemy as sa

from superintendent import queue
from superintendent.auth import ensure_user
from superintendent.labels import consensus
from superintendent.marks import check_boxes, check_spans, iou, marks_consensus, match
from superintendent.queue import Action
from superintendent.store import Annotation, Item, Role, session_scope
from superintendent.validation import ValidationError

TEXT = "Ada Lovelace met Charles Babbage in London."
OPTIONS = ["PER", "LOC"]


def test_spans_are_sorted_and_checked_against_the_text():
    got = check_spans([{"start": 36, "end": 42, "label": "LOC", "text": "London"}, {"start": 0, "end": 12, "label": "PER"}], TEXT, OPTIONS)
    assert got == [{"start": 0, "end": 12, "label": "PER"}, {"start": 36, "end": 42, "label": "LOC"}]
    assert check_spans([], TEXT, OPTIONS) == []  # nothing to mark is an answer


@pytest.mark.parametrize("value, message", [
    ([{"start": 0, "end": 99, "label": "PER"}], "runs from 0 to 99"),
    ([{"start": 3, "end": 3, "label": "PER"}], "at least one character"),
    ([{"start": 0, "end": 3, "label": "ORG"}], "'ORG', which is not an option"),
    ([{"start": 0, "end": 3, "label": "PER", "text": "Bob"}], "says it covers 'Bob'"),
    ([{"start": 0, "end": 12, "label": "PER"}, {"start": 4, "end": 20, "label": "PER"}], "may not overlap"),
    ([{"start": 0.5, "end": 3, "label": "PER"}], "whole number"),
    ([{"start": True, "end": 3, "label": "PER"}], "finite number"),
    ("PER", "takes a list of spans"),
    ([{"start": 0, "end": 3}], "needs the fields start, end and label"),
])
def test_bad_spans_are_refused_with_a_message(value, message):
    with pytest.raises(ValidationError, match=message):
        check_spans(value, TEXT, OPTIONS)


def test_boxes_are_clipped_to_the_image_and_outside_ones_refused():
    got = check_boxes([{"x": -5, "y": 10, "width": 20, "height": 500, "label": "LOC"}], 100, 80, OPTIONS)
    assert got == [{"x": 0, "y": 10, "width": 15, "height": 70, "label": "LOC"}]
    with pytest.raises(ValidationError, match="lies outside the 100 x 80 image"):
        check_boxes([{"x": 120, "y": 0, "width": 5, "height": 5, "label": "LOC"}], 100, 80, OPTIONS)
    with pytest.raises(ValidationError, match="positive width"):
        check_boxes([{"x": 1, "y": 0, "width": 0, "height": 5, "label": "LOC"}], 100, 80, OPTIONS)


def test_matching_and_consensus():
    a = {"x": 0, "y": 0, "width": 10, "height": 10, "label": "PER"}
    b = {"x": 2, "y": 0, "width": 10, "height": 10, "label": "PER"}  # IoU 80 / 120
    assert iou(a, b) == pytest.approx(80 / 120)
    assert match([a], [b], "boxes") == [(0, 0)]
    assert match([a], [{**b, "x": 6}], "boxes") == []  # IoU 40 / 160 < 0.5
    s1, s2 = {"start": 0, "end": 12, "label": "PER"}, {"start": 4, "end": 12, "label": "PER"}
    assert match([s1], [s2], "spans") == [] and match([s1], [s2], "spans", "overlap") == [(0, 0)]
    loc = {"start": 36, "end": 42, "label": "LOC"}
    assert marks_consensus([[s1, loc], [s1], [loc]], "spans") == ([s1, loc], False)  # each made by 2 of 3
    assert consensus([[s1], []], "spans") == ([], True)  # made by one of two: a tie, left out


@pytest.fixture
def span_project(engine):
    with session_scope(engine) as s:
        project = queue.create_project(s, "ner", label_mode="spans", options=OPTIONS, data_type="text")
        queue.add_items(s, project, [TEXT, "Paris."])
        uid = ensure_user(s, "alice", role=Role.labeller)
    return project, uid


def test_a_submitted_span_annotation_is_stored_checked_and_a_bad_one_stores_nothing(engine, span_project):
    project, uid = span_project
    with session_scope(engine) as s:
        item = queue.act(s, project, uid, Action.claim).task
    bad = [{"start": 0, "end": 500, "label": "PER"}]
    with pytest.raises(ValidationError, match="runs from 0 to 500"), session_scope(engine) as s:
        queue.act(s, project, uid, Action.submit, item_id=item.item_id, value=bad)
    with session_scope(engine, write=False) as s:
        assert s.execute(sa.select(sa.func.count()).select_from(Annotation)).scalar_one() == 0
    text = item.data
    good = [{"start": len(text) - 1, "end": len(text), "label": "LOC"}, {"start": 0, "end": 1, "label": "PER"}]
    with session_scope(engine) as s:
        queue.act(s, project, uid, Action.submit, item_id=item.item_id, value=good)
    with session_scope(engine, write=False) as s:
        stored = s.execute(sa.select(Annotation.value)).scalar_one()
    assert stored.index('"PER"') < stored.index('"LOC"')  # stored sorted by start


def test_boxes_on_an_image_array_item(engine):
    with session_scope(engine) as s:
        project = queue.create_project(s, "boxes", label_mode="boxes", options=["cat"], data_type="image")
        queue.add_items(s, project, [np.zeros((30, 40), dtype=np.uint8)])  # 40 wide, 30 high
        uid = ensure_user(s, "bob", role=Role.labeller)
        item_id = s.execute(sa.select(Item.id)).scalar_one()
    with session_scope(engine) as s:
        queue.act(s, project, uid, Action.submit, item_id=item_id, value=[{"x": 30, "y": 20, "width": 50, "height": 50, "label": "cat"}])
    with session_scope(engine, write=False) as s:
        assert s.execute(sa.select(Annotation.value)).scalar_one().replace(" ", "") == '[{"x":30,"y":20,"width":10,"height":10,"label":"cat"}]'


def test_progress_counts_each_mark_under_its_label(engine, span_project):
    project, uid = span_project
    with session_scope(engine) as s:
        item = queue.act(s, project, uid, Action.claim).task
        spans = [{"start": 0, "end": 1, "label": "PER"}, {"start": 2, "end": 3, "label": "PER"}, {"start": 4, "end": 5, "label": "LOC"}]
        queue.act(s, project, uid, Action.submit, item_id=item.item_id, value=spans)
    with session_scope(engine, write=False) as s:
        assert queue.progress(s, project).per_class == {"LOC": 1, "PER": 2}
        assert queue.options_in_use(s, project, ["PER", "ORG", "LOC"]) == {"PER": 2, "LOC": 1}  # marks, in the order asked
