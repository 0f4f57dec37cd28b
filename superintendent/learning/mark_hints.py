"""Predicted marks (spans or boxes, each with a ``score``) as an item's hint, and the queue order they give. Pure.

One rule for the in-app retrain of a marks project and for predictions uploaded through the HTTP API:

* the hint is the marks as a labeller would store them (without ``score``), so accepting it stores exactly it;
* the hint's top list is each mark's ``(label, score)``, in the marks' order (the caption shows them);
* an item's confidence is its *lowest* mark score (the one box the labeller most needs to check); an item with no
  predicted mark counts as sure (1): the model found nothing it doubted;
* the queue visits the least confident items first (:func:`lowest_first`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from superintendent.al.acquisition import visiting_order

__all__ = ["SCORE", "hint_of", "lowest_first", "lowest_score"]

SCORE = "score"


def lowest_score(marks: Sequence[Mapping[str, Any]]) -> float:
    """The lowest ``score`` of the marks (a mark without one counts as 1); 1 when there are none."""
    return float(min((float(m.get(SCORE, 1.0)) for m in marks), default=1.0))


def hint_of(marks: Sequence[Mapping[str, Any]]) -> tuple[list[dict[str, Any]], list[tuple[Any, float]]]:
    """(the marks without their scores, each mark's ``(label, score)`` in the same order)."""
    plain = [{k: v for k, v in m.items() if k != SCORE} for m in marks]
    return plain, [(m["label"], float(m.get(SCORE, 1.0))) for m in marks]


def lowest_first(confidence: Sequence[float] | np.ndarray, *, shuffle_prop: float = 0.0,
                 rng: np.random.Generator | int | None = None) -> np.ndarray:
    """The visiting order of items by confidence, least confident first (ties in item order), with ``shuffle_prop``
    random picks mixed in (the project's setting, as for every acquisition function)."""
    return visiting_order(1.0 - np.asarray(confidence, dtype=float), shuffle_prop=shuffle_prop, rng=rng)
