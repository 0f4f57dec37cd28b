"""Spans and boxes: the values of ``spans`` and ``boxes`` projects, checked against their item. Pure: no database, no I/O.

A span annotation is a list of ``{"start", "end", "label"}`` (character offsets into the item's text, end exclusive;
``"text"``, the covered characters, may come along as a check). A box annotation is a list of
``{"x", "y", "width", "height", "label"}`` in image pixels, origin top left. An empty list is an answer ("nothing to
mark"), not a skip. Every front end (the Label page, the HTTP API, imports, the notebook) stores values through
:func:`check_marks`, so the rules live here once; agreement, consensus and exports read the checked form.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from superintendent.al.matching import BOXES, IOU_MATCH, MARK_MODES, SPANS, iou, marks_consensus, match, similarity, span_overlap, threshold
from superintendent.labels import NO_MATCH, match_option
from superintendent.validation import ValidationError

__all__ = ["BOXES", "IOU_MATCH", "MARK_MODES", "SPANS", "check_boxes", "check_marks", "check_spans", "image_size", "iou", "is_marks",
           "item_text", "marks_consensus", "match", "similarity", "span_overlap", "threshold"]

MAX_MARKS = 1000  # marks per annotation


def is_marks(label_mode: str) -> bool:
    """Whether a project's values are lists of spans or boxes (not class labels)."""
    return label_mode in MARK_MODES


# --------------------------------------------------------------------------- what an item offers to mark


def item_text(data: Any) -> str:
    """The text of a spans project's item: the item itself, or the ``"text"`` field of a table row."""
    if isinstance(data, str):
        return data
    if isinstance(data, Mapping) and isinstance(data.get("text"), str):
        return data["text"]
    raise ValidationError("a spans project labels text: this item is not a text (nor a row with a 'text' field)")


def image_size(data: Any) -> tuple[int, int]:
    """(width, height) in pixels of a boxes project's item: an image file item (``width`` / ``height`` stored at import,
    else read from the file's header) or an image array (rows are y)."""
    if isinstance(data, Mapping) and "image_path" in data:
        if isinstance(data.get("width"), int) and isinstance(data.get("height"), int):
            return int(data["width"]), int(data["height"])
        from PIL import Image  # the header only: Pillow reads the size without decoding the pixels

        try:
            with Image.open(str(data["image_path"])) as image:
                return image.size
        except OSError as exc:
            raise ValidationError(f"this item's image file cannot be read ({exc}); boxes need its size") from None
    shape = getattr(data, "shape", None)
    if shape is not None and len(shape) in (2, 3):
        if len(shape) == 3 and shape[0] in (1, 3, 4) and shape[-1] not in (1, 3, 4):
            return int(shape[2]), int(shape[1])
        return int(shape[1]), int(shape[0])
    raise ValidationError("a boxes project labels images: this item is not an image file or image array")


# --------------------------------------------------------------------------- checks


def _number(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValidationError(f"{what} must be a finite number; got {value!r}")
    return float(value)


def _whole(value: Any, what: str) -> int:
    number = _number(value, what)
    if number != int(number):
        raise ValidationError(f"{what} must be a whole number of characters; got {value!r}")
    return int(number)


def _option(value: Any, options: Sequence[Any], what: str) -> Any:
    matched = match_option(value, options, by_text=False)
    if matched is NO_MATCH:
        raise ValidationError(f"{what} has label {value!r}, which is not an option (options: {', '.join(map(str, options))})")
    return matched


def _marks_list(value: Any, kind: str) -> list[Mapping[str, Any]]:
    if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, Sequence):
        example = '[{"start": 0, "end": 5, "label": "PER"}]' if kind == SPANS else '[{"x": 10, "y": 20, "width": 30, "height": 40, "label": "cat"}]'
        raise ValidationError(f"a {kind} project takes a list of {kind} (empty: nothing to mark), e.g. {example}; got {value!r}"[:400])
    if len(value) > MAX_MARKS:
        raise ValidationError(f"an annotation may have at most {MAX_MARKS} {kind}; got {len(value)}")
    for i, mark in enumerate(value):
        if not isinstance(mark, Mapping):
            raise ValidationError(f"{kind[:-1]} {i + 1} must be an object with its fields; got {mark!r}"[:300])
    return list(value)


def check_spans(value: Any, text: str, options: Sequence[Any]) -> list[dict[str, Any]]:
    """Spans checked against ``text``: whole offsets in bounds, not empty, not overlapping, an option each, the
    ``"text"`` (if given) equal to the covered characters. Returned sorted by start, each ``{start, end, label}``."""
    spans = []
    for i, mark in enumerate(_marks_list(value, SPANS)):
        what = f"span {i + 1}"
        unknown = set(mark) - {"start", "end", "label", "text"}
        if unknown or not {"start", "end", "label"} <= set(mark):
            raise ValidationError(f"{what} needs the fields start, end and label (and may have text); got {sorted(mark)}")
        start, end = _whole(mark["start"], f"{what}'s start"), _whole(mark["end"], f"{what}'s end")
        if not 0 <= start < end <= len(text):
            raise ValidationError(f"{what} runs from {start} to {end}; a span must cover at least one character of the "
                                  f"item's {len(text)} (0 <= start < end <= {len(text)}, end exclusive)")
        if "text" in mark and mark["text"] != text[start:end]:
            raise ValidationError(f"{what} says it covers {mark['text']!r}, but characters {start} to {end} are "
                                  f"{text[start:end]!r}: the item's text differs from what was marked")
        spans.append({"start": start, "end": end, "label": _option(mark["label"], options, what)})
    spans.sort(key=lambda s: (s["start"], s["end"]))
    for a, b in zip(spans, spans[1:]):
        if b["start"] < a["end"]:
            raise ValidationError(f"spans may not overlap: {text[a['start']:a['end']]!r} ({a['start']}-{a['end']}) and "
                                  f"{text[b['start']:b['end']]!r} ({b['start']}-{b['end']}) share characters; remove one or shorten it")
    return spans


def check_boxes(value: Any, width: int, height: int, options: Sequence[Any]) -> list[dict[str, Any]]:
    """Boxes checked against an image of ``width`` x ``height`` pixels: numbers, an option each, clipped to the image;
    a box with no area left inside the image is refused. Each returned as ``{x, y, width, height, label}``."""
    boxes = []
    for i, mark in enumerate(_marks_list(value, BOXES)):
        what = f"box {i + 1}"
        unknown = set(mark) - {"x", "y", "width", "height", "label", "score"}
        if unknown or not {"x", "y", "width", "height", "label"} <= set(mark):
            raise ValidationError(f"{what} needs the fields x, y, width, height and label; got {sorted(mark)}")
        x, y = _number(mark["x"], f"{what}'s x"), _number(mark["y"], f"{what}'s y")
        w, h = _number(mark["width"], f"{what}'s width"), _number(mark["height"], f"{what}'s height")
        if w <= 0 or h <= 0:
            raise ValidationError(f"{what} is {w:g} x {h:g} pixels; a box needs a positive width and height")
        x0, y0, x1, y1 = max(0.0, x), max(0.0, y), min(float(width), x + w), min(float(height), y + h)
        if x1 <= x0 or y1 <= y0:
            raise ValidationError(f"{what} ({x:g}, {y:g}, {w:g} x {h:g}) lies outside the {width} x {height} image")
        boxes.append({"x": _tidy(x0), "y": _tidy(y0), "width": _tidy(x1 - x0), "height": _tidy(y1 - y0),
                      "label": _option(mark["label"], options, what)})
    return boxes


def _tidy(number: float) -> int | float:
    """Whole pixels stay whole (``12``, not ``12.0``); fractions are kept to 1/1000 of a pixel."""
    rounded = round(number, 3)
    return int(rounded) if rounded == int(rounded) else rounded


def check_marks(value: Any, label_mode: str, data: Any, options: Sequence[Any]) -> list[dict[str, Any]]:
    """A spans or boxes project's value, checked against its item's ``data`` (the one entry point for every writer)."""
    if label_mode == SPANS:
        return check_spans(value, item_text(data), options)
    if label_mode == BOXES:
        width, height = image_size(data)
        return check_boxes(value, width, height, options)
    raise ValueError(f"not a marks mode: {label_mode!r}")
