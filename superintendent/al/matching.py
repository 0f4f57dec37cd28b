"""Matching spans and boxes: overlap, IoU, one-to-one pairing and majority consensus. Pure: lists of dicts in, numbers out.

Marks are the checked values of :mod:`superintendent.marks` (``{start, end, label}`` spans, ``{x, y, width, height,
label}`` boxes). Agreement, consensus, learning and exports all pair marks through :func:`match`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

SPANS = "spans"
BOXES = "boxes"
MARK_MODES = (SPANS, BOXES)  # the project kinds (label modes) whose values are lists of marks
IOU_MATCH = 0.5  # two boxes are the same mark at this intersection over union or more


def iou(a: Mapping[str, Any], b: Mapping[str, Any]) -> float:
    """Intersection over union of two boxes (0 when they do not touch)."""
    ix = max(0.0, min(a["x"] + a["width"], b["x"] + b["width"]) - max(a["x"], b["x"]))
    iy = max(0.0, min(a["y"] + a["height"], b["y"] + b["height"]) - max(a["y"], b["y"]))
    inter = ix * iy
    union = a["width"] * a["height"] + b["width"] * b["height"] - inter
    return inter / union if union > 0 else 0.0


def span_overlap(a: Mapping[str, Any], b: Mapping[str, Any]) -> float:
    """Characters two spans share over the characters either covers (0 to 1; 1 when they are the same range)."""
    inter = max(0, min(a["end"], b["end"]) - max(a["start"], b["start"]))
    union = (a["end"] - a["start"]) + (b["end"] - b["start"]) - inter
    return inter / union if union > 0 else 0.0


def similarity(a: Mapping[str, Any], b: Mapping[str, Any], label_mode: str, how: str = "default") -> float:
    """How alike two marks of one kind are, 0 to 1, whatever their labels: spans ``"exact"`` (1 or 0) or by
    ``"overlap"`` (shared characters, any > 0 matches); boxes by IoU. ``"default"``: exact spans, IoU boxes."""
    if label_mode == BOXES:
        return iou(a, b)
    if how == "overlap":
        return span_overlap(a, b)
    return 1.0 if (a["start"], a["end"]) == (b["start"], b["end"]) else 0.0


def threshold(label_mode: str, how: str = "default") -> float:
    """The least :func:`similarity` at which two marks are the same mark."""
    if label_mode == BOXES:
        return IOU_MATCH
    return 1e-9 if how == "overlap" else 1.0


def match(a: Sequence[Mapping[str, Any]], b: Sequence[Mapping[str, Any]], label_mode: str, how: str = "default",
          *, same_label: bool = True) -> list[tuple[int, int]]:
    """Pairs (i, j) of marks of ``a`` and ``b`` that are the same mark: greedy one-to-one, most alike first (the usual
    rule of detection metrics); with ``same_label`` only marks with equal labels pair up."""
    limit = threshold(label_mode, how)
    candidates = []
    for i, x in enumerate(a):
        for j, y in enumerate(b):
            if same_label and x["label"] != y["label"]:
                continue
            s = similarity(x, y, label_mode, how)
            if s >= limit:
                candidates.append((-s, i, j))
    candidates.sort()
    used_a: set[int] = set()
    used_b: set[int] = set()
    pairs = []
    for _, i, j in candidates:
        if i not in used_a and j not in used_b:
            used_a.add(i)
            used_b.add(j)
            pairs.append((i, j))
    return sorted(pairs)


def marks_consensus(values: Sequence[Sequence[Mapping[str, Any]]], label_mode: str) -> tuple[list[dict[str, Any]], bool]:
    """The marks a majority of an item's labellers made, and whether any mark was a tie (made by exactly half).

    Each labeller's marks are matched (same label, :func:`match`) against the groups built so far; a group made by
    more than half of ``values`` is kept, as its first labeller drew it. Spans that overlap in the result (possible
    only with ties in odd layouts) keep the one made by more labellers.
    """
    if not values:
        return [], False
    groups: list[list[Mapping[str, Any]]] = []
    for marks in values:
        heads = [g[0] for g in groups]
        pairs = dict(match(list(marks), heads, label_mode))
        for i, mark in enumerate(marks):
            if i in pairs:
                groups[pairs[i]].append(mark)
            else:
                groups.append([mark])
    half = len(values) / 2
    kept = [g for g in groups if len(g) > half]
    tie = any(len(g) == half for g in groups)
    result = [dict(g[0]) for g in sorted(kept, key=len, reverse=True)]
    if label_mode == SPANS:
        chosen: list[dict[str, Any]] = []
        for span in result:
            if all(span["end"] <= c["start"] or c["end"] <= span["start"] for c in chosen):
                chosen.append(span)
        result = sorted(chosen, key=lambda s: (s["start"], s["end"]))
    return result, tie
