"""How good a model is on the labels so far: cross-validated scores, per-class figures, a confusion matrix."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.metrics import accuracy_score, classification_report, confusion_matrix
from sklearn.model_selection import KFold, StratifiedKFold, cross_val_predict

__all__ = ["EvalMethod", "Evaluation", "default_evaluation", "evaluate"]

EvalMethod = Callable[[Any, Any, Any], Any]


@dataclass
class Evaluation:
    scores: list[float]
    per_class: dict[str, Any]
    confusion: dict[str, Any]
    message: str | None = None


def default_evaluation(model: BaseEstimator, x: Any, y: Any, *, multi: bool = False) -> Evaluation:
    """Mean accuracy over (up to) 3 cross-validation folds, with per-class figures.

    With few labels the number of folds shrinks to what the rarest class
    allows; with fewer than two labels in some class there is no
    cross-validation yet, and the message says so.
    """
    n = len(y)
    if multi:
        if n < 2:
            return Evaluation([], {}, {}, "cross-validation needs at least 2 labelled items")
        cv = KFold(n_splits=min(3, n), shuffle=True, random_state=0)
    else:
        rarest_label, rarest = min(Counter(y).items(), key=lambda kv: kv[1])
        if rarest < 2:
            return Evaluation([], {}, {}, f"cross-validation needs at least 2 labels of every class; {rarest_label!r} has {rarest}")
        cv = StratifiedKFold(n_splits=min(3, rarest), shuffle=True, random_state=0)
    try:
        predicted = cross_val_predict(model, x, y, cv=cv)
    except ValueError as exc:  # e.g. a fold where some label never occurs: score later, rank now
        return Evaluation([], {}, {}, f"cross-validation not possible yet: {exc}")
    y_arr = np.asarray(y)
    scores = [float(accuracy_score(y_arr[test], predicted[test])) for _, test in cv.split(np.zeros(n), y_arr if not multi else None)]
    if multi:
        return Evaluation(scores, {}, {})
    labels = sorted(set(y_arr.tolist()) | set(predicted.tolist()), key=str)
    report = classification_report(y_arr, predicted, labels=labels, output_dict=True, zero_division=0)
    per_class = {str(k): {m: float(v) for m, v in row.items()} for k, row in report.items() if isinstance(row, dict) and k in {str(lab) for lab in labels}}
    matrix = confusion_matrix(y_arr, predicted, labels=labels)
    return Evaluation(scores, per_class, {"labels": [str(lab) for lab in labels], "matrix": matrix.tolist()})


def evaluate(model: BaseEstimator, x: Any, y: Any, *, multi: bool, eval_method: EvalMethod | None = None) -> Evaluation:
    """The caller's ``eval_method(model, x, y)`` (its scores only), else :func:`default_evaluation`."""
    if eval_method is not None:
        scores = [float(v) for v in np.atleast_1d(np.asarray(eval_method(model, x, y), dtype=float))]
        return Evaluation(scores, {}, {})
    return default_evaluation(model, x, y if multi else list(y), multi=multi)
