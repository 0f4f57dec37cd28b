"""One retrain of a spans or boxes project: fit a model of marks, score it, order the queue by its doubt, store hints.

:func:`~superintendent.learning.retrain.run_retrain` routes a marks project here (the run is already recorded as
running; its clock times the same phases). The model:

* a **spans** project: the token model (:class:`~superintendent.learning.spans.SpanModel`, preset ``token_crf``), a
  model factory's model, or the one handed to ``Superintendent(model=...)``; a classification preset is refused with
  a message saying which preset to choose;
* a **boxes** project has no in-app model: the retrain is skipped with a message (upload a detector's predictions
  through the HTTP API) unless a model factory (or a live model from Python) gives one.

A model of marks other than the token model takes the items as they are stored and has ``predict_marks(items)`` (per
item a list of marks, each with a ``score`` in [0, 1]) and, optionally, ``fit(items, values)``; it is scored by the
lowest mark score per item (:mod:`~superintendent.learning.mark_hints`).

Phases: read the labelled items' final values (``labels.final_label``: a review, else the consensus), evaluate (span
model: entity F1 over up to 3 folds, stored as the run's scores, per label in ``per_class``), fit on all of them,
predict the unlabelled items in batches (one doubt per item), rank (most doubtful first, the project's
``shuffle_prop`` random picks mixed in), write the head of the order with its hints (the predicted marks, the item's
confidence, each mark's label and score), then the run's figures.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
from sqlalchemy.engine import Engine

from superintendent import queue, serialization
from superintendent.al import stopping
from superintendent.al.acquisition import visiting_order
from superintendent.learning import runs
from superintendent.learning.mark_hints import hint_of, lowest_score
from superintendent.learning.presets import model_for_project
from superintendent.learning.spans import SpanModel, cross_validated_f1, per_label_f1, texts_of
from superintendent.learning.writing import head_priorities, item_batches
from superintendent.store import ModelRun, Project, RunStatus, session_scope
from superintendent.validation import ValidationError

__all__ = ["NO_BOX_MODEL", "NO_SPAN_MODEL", "run_marks_retrain"]

NO_BOX_MODEL = ("boxes projects have no in-app model: upload a detector's predictions (HTTP API: POST "
                "/api/v1/projects/{id}/predictions, a list of boxes with a score each per item; the queue then follows their "
                "lowest box score), or have an admin set a model factory")
NO_SPAN_MODEL = "no model: set the project's model preset to 'token_crf' (the token model for spans) or pass one to Superintendent(model=...)"
MIN_LABELLED = 2


class _Clock(Protocol):  # retrain._PhaseClock (not imported: retrain imports this module)
    def lap(self, label: str) -> None: ...
    def report(self, phase: str, done: int = 0, total: int = 0) -> None: ...


@dataclass
class _Analysis:
    """A marks model's answer for some items: marks (with scores), the item's confidence, its doubt."""

    marks: list[list[dict[str, Any]]]
    confidence: np.ndarray
    doubt: np.ndarray


def _analyse(model: Any, items: Sequence[Any]) -> _Analysis:
    if isinstance(model, SpanModel):
        found = model.analyse(texts_of(items))
        return _Analysis([m for m, _, _ in found], np.array([p for _, p, _ in found], dtype=float),
                         np.array([u for _, _, u in found], dtype=float))
    marks = [list(m) for m in model.predict_marks(list(items))]
    if len(marks) != len(items):
        raise ValidationError(f"the model's predict_marks gave {len(marks)} answers for {len(items)} items; it must give one list per item")
    confidence = np.array([lowest_score(m) for m in marks], dtype=float)
    return _Analysis(marks, confidence, 1.0 - confidence)


def _model(project: Project, given: Any) -> tuple[Any, str | None]:
    """The model this retrain uses, or (None, why not)."""
    if given is None:
        if project.label_mode == "boxes" and not project.model_factory:
            return None, NO_BOX_MODEL
        try:
            given = model_for_project(project)
        except ValidationError as exc:
            return None, str(exc)
        if given is None:
            return None, NO_SPAN_MODEL
    if isinstance(given, SpanModel) or callable(getattr(given, "predict_marks", None)):
        return given, None
    return None, (f"a {project.label_mode} project needs a model of marks: the token model (superintendent.learning.SpanModel) "
                  f"or one with predict_marks(items) giving a list of {project.label_mode} with a score each per item; "
                  f"got {type(given).__name__}")


def _evaluate(model: Any, items: list[Any], values: list[Any]) -> tuple[list[float], dict[str, Any], str | None]:
    if not isinstance(model, SpanModel):
        return [], {}, "no evaluation for an outside marks model (scores only for the in-app span model)"
    texts = texts_of(items)
    scores, predicted, message = cross_validated_f1(model, texts, values)
    per_class = per_label_f1(values, predicted) if predicted else {}
    return scores, per_class, message


def _fit(model: Any, items: list[Any], values: list[Any]) -> None:
    if isinstance(model, SpanModel):
        model.fit(texts_of(items), values)
    elif hasattr(model, "fit"):
        model.fit(items, values)


def run_marks_retrain(engine: Engine, project: Project, run_id: int, clock: _Clock, *, model: Any = None,
                      rng: np.random.Generator | int | None = None, shuffle_prop: float = 0.0, batch_size: int = 10_000) -> ModelRun:
    """Fit, evaluate, order and hint a spans or boxes project (see the module's docstring); returns the recorded run."""
    model, why_not = _model(project, model)
    if model is None:
        return runs.finish_run(engine, run_id, status=RunStatus.skipped.value, message=why_not)
    with session_scope(engine, write=False) as s:
        labelled = queue.labelled_data(s, project)
    items, values = list(labelled.features), [list(v or []) for v in labelled.labels]
    clock.lap("read_labelled")
    if isinstance(model, SpanModel):
        if len(values) < MIN_LABELLED or not any(values):
            return runs.finish_run(
                engine, run_id, status=RunStatus.skipped.value, n_labels=len(values), phase_seconds=clock.phases,
                message=(f"need at least {MIN_LABELLED} labelled items with at least one marked span among them to train the span "
                         f"model; have {len(values)} labelled item(s) with {sum(map(len, values))} span(s)"))
    clock.lap("preprocess")
    scores, per_class, message = _evaluate(model, items, values)
    clock.lap("evaluate")
    _fit(model, items, values)
    clock.lap("fit")

    ids_parts, doubt_parts = [], []
    compared = changed = 0
    with session_scope(engine, write=False) as s:  # the total the progress reports (two index-only counts)
        total, finished = queue.progress_counts(s, project)
    for ids, batch in queue.unlabelled_batches(engine, project, batch_size):
        found = _analyse(model, batch)
        ids_parts.append(ids)
        doubt_parts.append(found.doubt)
        with session_scope(engine, write=False) as s:  # guesses that changed since the last run (the stopping signal)
            previous = queue.hints_between(s, project, int(ids[0]), int(ids[-1]))
        if previous:
            rows = [k for k, i in enumerate(ids.tolist()) if i in previous]
            now = (serialization.dumps(hint_of(found.marks[k])[0]) for k in rows)
            delta = stopping.changed_predictions((previous[int(ids[k])] for k in rows), now)
            compared, changed = compared + delta.n_compared, changed + delta.n_changed
        done = sum(map(len, ids_parts))
        clock.report("predict", done, max(total - finished, done))
    ids = np.concatenate(ids_parts) if ids_parts else np.empty(0, dtype=np.int64)
    doubt = np.concatenate(doubt_parts) if doubt_parts else np.empty(0)
    clock.lap("predict")
    order = visiting_order(doubt, shuffle_prop=shuffle_prop, rng=rng)
    clock.lap("rank")
    n_ranked = _write_head(engine, project, model, ids, order, batch_size)
    clock.lap("write")

    score_mean = float(np.mean(scores)) if scores else None
    signals = stopping.stopping_signals(runs.earlier_successes(engine, project, run_id), stopping.ChangedPredictions(compared, changed),
                                        len(values), score_mean)
    signals["uncertainty"] = model.aggregation if isinstance(model, SpanModel) else "lowest_mark_score"
    clock.lap("signals")
    return runs.finish_run(
        engine, run_id, status=RunStatus.succeeded.value, n_labels=len(values), n_ranked=n_ranked, score_mean=score_mean,
        score_std=float(np.std(scores)) if scores else None, scores=scores, per_class=per_class, confusion={},
        phase_seconds=clock.phases, message=message, signals=signals,
        acquisition_function=f"span {model.aggregation}" if isinstance(model, SpanModel) else "lowest mark score",
    )


def _write_head(engine: Engine, project: Project, model: Any, ids: np.ndarray, order: np.ndarray, batch_size: int) -> int:
    """The head of the order's priorities with the model's marks as hints (those items predicted once more, so nothing
    per item is kept for the whole project). Returns how many items were given a new place."""
    order, priorities = head_priorities(engine, project, order)
    head = ids[order]
    kept, hints, confidence, tops = [], [], [], []
    for chunk, contents in item_batches(engine, project, head, batch_size):
        found = _analyse(model, contents)
        for marks in found.marks:
            plain, top = hint_of(marks)
            hints.append(plain)
            tops.append(top)
        kept.extend(chunk)
        confidence.extend(found.confidence.tolist())
    keep = np.isin(head, kept)
    queue.reprioritise(engine, project, head[keep], priorities[keep], hints=hints, confidences=confidence, top_guesses=tops)
    return len(order)
