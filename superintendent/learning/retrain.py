"""One retrain of one project, as named phases: read the labelled data, fit and evaluate, predict in batches,
rank, write priorities and hints, finish the run.

:func:`run_retrain` never raises for a model's failure: the error is stored
on the :class:`~superintendent.store.ModelRun` and the queue keeps its old
order, so labelling goes on. (Locking, so that one retrain per project runs
at a time, is :mod:`superintendent.orchestration`'s job.) The time each
phase took is stored on the run (``phase_seconds``).
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.multioutput import MultiOutputClassifier
from sklearn.preprocessing import MultiLabelBinarizer
from sqlalchemy.engine import Engine
from threadpoolctl import threadpool_limits

from superintendent import queue, serialization
from superintendent.al import stopping
from superintendent.al.acquisition import acquisition_scores, get_acquisition_function, split_name, visiting_order
from superintendent.al.diversity import DEFAULT_CANDIDATES, DEFAULT_WINDOW, MAX_WINDOW, TopCandidates
from superintendent.config import get_settings
from superintendent.learning import cold_start, marks_retrain, runs
from superintendent.learning.evaluation import EvalMethod, Evaluation, evaluate
from superintendent.learning.presets import (OptionModel, Preprocess, identity_preprocess, model_features, model_for_project, model_view,
                                             stack_features)
from superintendent.learning.writing import head_priorities, item_batches, labels_before_next_retrain
from superintendent.marks import is_marks
from superintendent.store import ModelRun, Project, RunStatus, session_scope
from superintendent.validation import ValidationError

__all__ = ["PHASES", "RetrainOptions", "RetrainProgress", "guesses", "run_retrain", "top_guesses"]

NO_MODEL = "no model: pass one to Superintendent(model=...) or set the project's model preset"
# The phases of a retrain, in the order they run (the keys of ``ModelRun.phase_seconds``).
PHASES = ("read_labelled", "preprocess", "evaluate", "fit", "predict", "rank", "write", "signals")


@dataclass(frozen=True)
class RetrainProgress:
    """Where a retrain is: the phase under way and, while predicting, how many of the unlabelled items are done."""

    phase: str  # one of PHASES
    done: int = 0
    total: int = 0


@dataclass
class RetrainOptions:
    """What a retrain uses beyond the project's stored settings (a live model from the Python API, ...)."""

    model: BaseEstimator | None = None
    eval_method: EvalMethod | None = None
    model_preprocess: Preprocess | None = None
    acquisition_function: str | Callable[[np.ndarray], np.ndarray] | None = None
    shuffle_prop: float | None = None
    rng: np.random.Generator | int | None = None
    batch_size: int | None = None  # default: the predict_batch_size setting
    worker: str = ""
    # Batch-aware ("<name>_diverse") ranking: the items of one round; default the project's diversity_window, else the
    # labels expected before the next retrain (see _diversity_window).
    diversity_window: int | None = None
    # Called as each phase begins and after each predicted batch, on the retrain's own thread; it must return quickly.
    progress: Callable[[RetrainProgress], None] | None = None


# --------------------------------------------------------------------------- what a retrain works with


class _PhaseClock:
    """Seconds per phase, each from the end of the previous one (the first from the clock's start)."""

    def __init__(self, progress: Callable[[RetrainProgress], None] | None = None) -> None:
        self.phases: dict[str, float] = {}
        self._last = time.perf_counter()
        self.progress = progress
        self.report(PHASES[0])

    def lap(self, label: str) -> None:
        now = time.perf_counter()
        self.phases[label] = round(now - self._last, 6)
        self._last = now
        if label in PHASES[:-1]:
            self.report(PHASES[PHASES.index(label) + 1])

    def report(self, phase: str, done: int = 0, total: int = 0) -> None:
        if self.progress is not None:
            self.progress(RetrainProgress(phase, done, total))


@dataclass(frozen=True)
class _Setup:
    """The project's settings and the options, resolved: how this retrain preprocesses and ranks."""

    acquisition: str | Callable[[np.ndarray], np.ndarray]
    rank_with: Callable[[np.ndarray], np.ndarray]
    shuffle_prop: float
    preprocess: Preprocess
    multi: bool
    diverse: bool  # a "<name>_diverse" acquisition: the top of the order spread out over the model's view
    window: int  # items per round of the diverse order (1 unless diverse)
    window_source: str  # where the window came from (see _diversity_window); "" unless diverse

    @property
    def by_name(self) -> bool:
        return isinstance(self.acquisition, str)


@dataclass
class _Fitted:
    model: BaseEstimator
    classes: Any  # None for a model without classes_ (then no hints)
    evaluation: Evaluation
    n_labels: int
    learned: np.ndarray | None = None  # multi-label: per option, whether a model was fitted (else a constant, the observed rate)


@dataclass
class _Predictions:
    """What predicting the unlabelled items in batches gave, in item order."""

    ids: np.ndarray
    scores: list[np.ndarray] = field(default_factory=list)  # per batch, for a named acquisition function
    proba: list[np.ndarray] = field(default_factory=list)  # per batch, for an acquisition callable
    n_compared: int = 0  # items with the previous run's guess, and how many of those changed
    n_changed: int = 0


def _acquisition_name(acquisition: str | Callable[..., Any]) -> str:
    return acquisition if isinstance(acquisition, str) else getattr(acquisition, "__name__", "custom")


def _diversity_window(engine: Engine, project: Project, opts: RetrainOptions) -> tuple[int, str]:
    """Items per round of a diverse order, and where the number came from (``"set"``, ``"expected"``, ``"default"``):
    the option, else the project's ``diversity_window`` (set); else the labels people are expected to give between this
    retrain and the next (:func:`labels_before_next_retrain`, within 1 and :data:`MAX_WINDOW`; expected), or
    :data:`DEFAULT_WINDOW` when that is under one (default: nobody labelled since the last retrain, or lately). Those
    are the items labelled without the model seeing any of them, a batch of batch-mode active learning: on VADER's
    words with text embeddings, 10 labels between retrains, rounds of 10 reached 90 % of the full-data accuracy at
    110 labels, rounds of 8 at 135 (random: 160; 10 seeds, bench/preset_learning.py, docs/benchmarks.md)."""
    value = next((v for v in (opts.diversity_window, project.diversity_window) if v is not None), None)
    if value is None:
        expected = labels_before_next_retrain(engine, project)
        if expected < 1:
            return DEFAULT_WINDOW, "default"
        return int(min(MAX_WINDOW, max(1, round(expected)))), "expected"
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValidationError(f"diversity_window must be a whole number of at least 1 (labellers claiming together); got {value!r}")
    return int(value), "set"


def _setup(engine: Engine, project: Project, opts: RetrainOptions) -> _Setup:
    acquisition = opts.acquisition_function or project.acquisition_function
    rank_with = get_acquisition_function(acquisition)  # unknown names fail before any work
    diverse = isinstance(acquisition, str) and split_name(acquisition)[1]
    window, window_source = _diversity_window(engine, project, opts) if diverse else (1, "")
    return _Setup(acquisition=acquisition, rank_with=rank_with,
                  shuffle_prop=project.shuffle_prop if opts.shuffle_prop is None else opts.shuffle_prop,
                  preprocess=opts.model_preprocess or identity_preprocess, multi=project.label_mode == "multi",
                  diverse=diverse, window=window, window_source=window_source)


# --------------------------------------------------------------------------- predictions as guesses


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def guesses(proba: np.ndarray, classes: Any, multi: bool, learned: np.ndarray | None = None) -> tuple[list[Any], np.ndarray]:
    """The model's guess per row and its confidence: the most likely class (single-label), or
    every label above one half (multi-label; confidence = mean certainty over the labels the model
    ``learned``, all when not given: an option no labelled item has, or every one has, is left out)."""
    if multi:
        on = proba[:, 1, :] > 0.5 if proba.shape[1] > 1 else np.zeros((len(proba), proba.shape[2]), dtype=bool)
        labels = [[_plain(c) for c, flag in zip(classes, row) if flag] for row in on]
        certainty = proba.max(axis=1)
        if learned is not None and np.any(learned):
            certainty = certainty[:, np.asarray(learned, dtype=bool)]
        return labels, certainty.mean(axis=1)
    best = proba.argmax(axis=1)
    return [_plain(classes[i]) for i in best], proba.max(axis=1)


def top_guesses(proba: np.ndarray, classes: Any, multi: bool, k: int = 3) -> list[list[tuple[Any, float]]]:
    """Per row, the ``k`` most likely labels with their probabilities, best first.

    Single-label: the classes' probabilities (they sum to one). Multi-label:
    each label's own probability of applying (they need not sum to one).
    """
    p = (proba[:, 1, :] if proba.shape[1] > 1 else np.zeros((len(proba), proba.shape[2]))) if multi else proba
    k = min(k, p.shape[1]) if p.ndim == 2 else 0
    if k == 0:
        return [[] for _ in range(len(p))]
    best = np.argsort(-p, axis=1, kind="stable")[:, :k]
    plain = [_plain(c) for c in classes]
    return [[(plain[j], float(row[j])) for j in cols] for row, cols in zip(p, best)]


def _predict_proba(model: BaseEstimator, x: Any, multi: bool) -> np.ndarray:
    proba = model.predict_proba(x)
    if multi:  # MultiOutputClassifier: one (n, n_classes) array per output
        return np.stack(proba, axis=2)
    return np.asarray(proba)


def _take(x: Any, rows: np.ndarray) -> Any:
    """Rows of a batch as the model takes it (array, DataFrame or list)."""
    if isinstance(x, pd.DataFrame):
        return x.iloc[rows]
    if isinstance(x, np.ndarray):
        return x[rows]
    return [x[i] for i in rows]


def _order_from_callable(fn: Callable[[np.ndarray], np.ndarray], proba: np.ndarray) -> np.ndarray:
    order = np.asarray(fn(proba))
    n = len(proba)
    if order.shape != (n,) or not np.issubdtype(order.dtype, np.integer) or not np.array_equal(np.sort(order), np.arange(n)):
        raise ValidationError(
            f"acquisition function {getattr(fn, '__name__', fn)!r} must return a visiting order: each row index 0..{n - 1} once; "
            f"got shape {order.shape}, dtype {order.dtype}"
        )
    return order


def _as_scores(order: np.ndarray) -> np.ndarray:
    """Scores that sort into ``order`` (the first row of the order scores highest)."""
    scores = np.empty(len(order))
    scores[order] = -np.arange(len(order), dtype=float)
    return scores


# --------------------------------------------------------------------------- the phases


def _read_labelled(engine: Engine, project: Project) -> queue.LabelledData:
    with session_scope(engine, write=False) as s:
        return queue.labelled_data(s, project)


def _count_unlabelled(engine: Engine, project: Project) -> int:
    """How many items a retrain will predict (two index-only counts): the total its progress reports."""
    with session_scope(engine, write=False) as s:
        total, finished = queue.progress_counts(s, project)
    return total - finished


def _too_few_classes(labels: list[Any], multi: bool = False) -> str | None:
    """Why a project cannot train yet (single-label: labels of fewer than two classes; multi-label: no option that some
    labelled items have and others lack), or None."""
    if multi:
        sets = [frozenset(map(str, label or [])) for label in labels]
        if not sets or frozenset.union(*sets) == frozenset.intersection(*sets):
            return (f"need an option that some labelled items have and others lack to train; the {len(labels)} labelled items "
                    "all have the same options")
        return None
    distinct = set(map(str, labels))
    if not distinct:
        return "need labels of at least two classes to train; there are no labels yet"
    if len(distinct) == 1:
        (only,) = distinct
        have = f"the only label is '{only}'" if len(labels) == 1 else f"all {len(labels)} labels are '{only}'"
        return f"need labels of at least two classes to train; {have}"
    return None


def _fit_and_evaluate(project: Project, labelled: queue.LabelledData, model: BaseEstimator, setup: _Setup, opts: RetrainOptions,
                      clock: _PhaseClock) -> _Fitted:
    """Preprocess the labelled items, evaluate the model on them, then fit it on all of them."""
    y_raw: Any = labelled.labels
    binarizer = None
    if setup.multi:
        binarizer = MultiLabelBinarizer(classes=project.options or None)
        y_raw = binarizer.fit_transform(labelled.labels)
        model = MultiOutputClassifier(OptionModel(model))  # an option not used yet (or used by every item) is a constant
    x, y = setup.preprocess(model_view(stack_features(labelled.features), project), y_raw)
    clock.lap("preprocess")
    evaluation = evaluate(model, x, y, multi=setup.multi, eval_method=opts.eval_method)
    clock.lap("evaluate")
    model.fit(x, y)
    clock.lap("fit")
    classes = binarizer.classes_ if setup.multi else getattr(model, "classes_", None)
    learned = np.array([e.constant_ is None for e in model.estimators_]) if setup.multi else None
    return _Fitted(model, classes, evaluation, len(labelled.labels), learned)


def _predict_batches(engine: Engine, project: Project, fitted: _Fitted, setup: _Setup, batch_size: int,
                     candidates: TopCandidates | None, clock: _PhaseClock) -> _Predictions:
    """Predict the unlabelled items batch by batch: acquisition scores (or probabilities), guesses, changed guesses.

    ``candidates`` (batch-aware ranking) keeps the best-scoring rows' features as the batches go by.
    """
    ids_parts = []
    out = _Predictions(ids=np.empty(0, dtype=np.int64))
    total = _count_unlabelled(engine, project) if clock.progress is not None else 0
    for ids, feats in queue.unlabelled_batches(engine, project, batch_size):
        xb, _ = setup.preprocess(model_view(stack_features(feats), project), None)
        proba = _predict_proba(fitted.model, xb, setup.multi)
        ids_parts.append(ids)
        if fitted.classes is not None:  # changed guesses, where an earlier run left one (the new ones are made for the head only)
            with session_scope(engine, write=False) as s:
                previous = queue.hints_between(s, project, int(ids[0]), int(ids[-1]))
            if previous:
                rows = np.fromiter((k for k, i in enumerate(ids.tolist()) if i in previous), dtype=np.intp)
                now, _ = guesses(proba[rows], fitted.classes, setup.multi, fitted.learned)
                changed = stopping.changed_predictions((previous[int(ids[k])] for k in rows), (serialization.dumps(h) for h in now))
                out.n_compared += changed.n_compared
                out.n_changed += changed.n_changed
        if setup.by_name:
            batch_scores = acquisition_scores(setup.acquisition, proba)
            out.scores.append(batch_scores)
            if candidates is not None:
                candidates.add(batch_scores, lambda rows, xb=xb, proba=proba: model_features(fitted.model, _take(xb, rows), proba[rows]))
        else:
            out.proba.append(proba)
        done = sum(map(len, ids_parts))
        clock.report("predict", done, max(total, done))
    if ids_parts:
        out.ids = np.concatenate(ids_parts)
    return out


def _rank(predictions: _Predictions, setup: _Setup, candidates: TopCandidates | None, rng: np.random.Generator | int | None) -> np.ndarray:
    """The visiting order of the predicted items (positions in ``predictions.ids``), random picks mixed in."""
    if setup.by_name:
        scores = np.concatenate(predictions.scores) if predictions.scores else np.empty(0)
        if candidates is not None:  # batch-aware: the top of the order re-ranked for diversity, then ranks as scores
            scores = _as_scores(candidates.order(scores, window=setup.window, rng=0))
    else:
        proba = predictions.proba
        scores = _as_scores(_order_from_callable(setup.rank_with, np.concatenate(proba)) if proba else np.empty(0, dtype=np.intp))
    return visiting_order(scores, shuffle_prop=setup.shuffle_prop, rng=rng)


def _head_guesses(engine: Engine, project: Project, fitted: _Fitted, setup: _Setup, ids: np.ndarray,
                  batch_size: int) -> tuple[np.ndarray, list[Any], np.ndarray, list[list[tuple[Any, float]]]]:
    """The model's guesses for the items about to be shown (the head of the order): those items predicted once more,
    so a retrain keeps no per-item guess for the whole project. Returns (ids still there, guesses, confidences, top guesses)."""
    kept, hints, confidence, tops = [], [], [], []
    for chunk, contents in item_batches(engine, project, ids, batch_size):
        xb, _ = setup.preprocess(model_view(stack_features(contents), project), None)
        proba = _predict_proba(fitted.model, xb, setup.multi)
        batch_hints, batch_confidence = guesses(proba, fitted.classes, setup.multi, fitted.learned)
        kept.extend(chunk)
        hints.extend(batch_hints)
        confidence.append(batch_confidence)
        tops.extend(top_guesses(proba, fitted.classes, setup.multi))
    return (np.asarray(kept, dtype=np.int64), hints, np.concatenate(confidence) if confidence else np.empty(0), tops)


def _write_priorities(engine: Engine, project: Project, predictions: _Predictions, order: np.ndarray, fitted: _Fitted,
                      setup: _Setup, batch_size: int) -> int:
    """New priorities for the head of the order (:func:`~superintendent.learning.writing.head_priorities`), and with
    them the model's guesses, their confidence and top guesses, made and written for those items only. Returns how many
    items were given a new place.
    """
    order, priorities = head_priorities(engine, project, order)
    ids = predictions.ids[order]
    if fitted.classes is not None:
        kept, hints, confidence, tops = _head_guesses(engine, project, fitted, setup, ids, batch_size)
        if len(kept) < len(ids):
            priorities = priorities[np.isin(ids, kept)]
        queue.reprioritise(engine, project, kept, priorities, hints=hints, confidences=confidence, top_guesses=tops)
    else:
        queue.reprioritise(engine, project, ids, priorities)
    return len(order)


def _finish_succeeded(engine: Engine, project: Project, run_id: int, fitted: _Fitted, predictions: _Predictions, setup: _Setup,
                      n_ranked: int, clock: _PhaseClock) -> ModelRun:
    """The stopping signal from this run and the earlier ones, then the run recorded as succeeded with its figures."""
    scores = np.asarray(fitted.evaluation.scores, dtype=float)
    score_mean = float(scores.mean()) if scores.size else None
    changed = stopping.ChangedPredictions(predictions.n_compared, predictions.n_changed) if fitted.classes is not None else None
    signals = stopping.stopping_signals(runs.earlier_successes(engine, project, run_id), changed, fitted.n_labels, score_mean)
    if setup.diverse:
        signals["diversity_window"], signals["diversity_window_source"] = setup.window, setup.window_source
    clock.lap("signals")
    evaluation = fitted.evaluation
    return runs.finish_run(
        engine, run_id, status=RunStatus.succeeded.value, n_labels=fitted.n_labels, n_ranked=n_ranked,
        score_mean=score_mean, score_std=float(scores.std()) if scores.size else None,
        scores=evaluation.scores, per_class=evaluation.per_class, confusion=evaluation.confusion,
        phase_seconds=clock.phases, message=evaluation.message, signals=signals,
    )


def run_retrain(engine: Engine, project: Project, options: RetrainOptions | None = None) -> ModelRun:
    """Fit, evaluate, rank the unlabelled items and write their priorities; return the recorded run.

    The run is recorded first as ``running``; it ends ``succeeded``,
    ``skipped`` (nothing to learn from yet: fewer than two classes) or
    ``failed`` with the error. A failed run changes no priorities. The model
    uses at most ``model_threads`` threads (BLAS and OpenMP; see the setting).
    """
    with threadpool_limits(limits=get_settings().model_threads):
        return _run_retrain(engine, project, options)


def _run_retrain(engine: Engine, project: Project, options: RetrainOptions | None) -> ModelRun:
    opts = options or RetrainOptions()
    run_id = runs.start_run(engine, project, worker=opts.worker,
                            acquisition_function=_acquisition_name(opts.acquisition_function or project.acquisition_function))
    clock = _PhaseClock(opts.progress)
    try:
        if is_marks(project.label_mode):  # spans / boxes: a model of marks, ordered by its doubt (marks_retrain)
            return marks_retrain.run_marks_retrain(
                engine, project, run_id, clock, model=opts.model, rng=opts.rng,
                shuffle_prop=project.shuffle_prop if opts.shuffle_prop is None else opts.shuffle_prop,
                batch_size=opts.batch_size or get_settings().predict_batch_size)
        setup = _setup(engine, project, opts)
        try:
            model = opts.model if opts.model is not None else model_for_project(project)
        except ValidationError as exc:  # a preset that does not suit the project's kind: nothing to learn with, say what to set
            return runs.finish_run(engine, run_id, status=RunStatus.skipped.value, message=str(exc))
        if model is None:
            return runs.finish_run(engine, run_id, status=RunStatus.skipped.value, message=NO_MODEL)
        labelled = _read_labelled(engine, project)
        clock.lap("read_labelled")
        too_few = _too_few_classes(labelled.labels, setup.multi)
        if too_few is not None:  # no model yet: the queue ordered so that the first labels span the data (when the items changed)
            cold = cold_start.order_for_coverage(engine, project, run_id, rng=opts.rng, random_prop=setup.shuffle_prop,
                                                 batch_size=opts.batch_size)
            return runs.finish_run(engine, run_id, status=RunStatus.skipped.value, n_labels=len(labelled.labels), n_ranked=cold.written,
                                   phase_seconds=clock.phases, message=f"{too_few}; {cold.message}", signals=cold.signals)
        fitted = _fit_and_evaluate(project, labelled, model, setup, opts, clock)
        candidates = TopCandidates(DEFAULT_CANDIDATES) if setup.diverse and setup.window > 1 else None
        predictions = _predict_batches(engine, project, fitted, setup, opts.batch_size or get_settings().predict_batch_size, candidates,
                                       clock)
        clock.lap("predict")
        order = _rank(predictions, setup, candidates, opts.rng)
        clock.lap("rank")
        _write_priorities(engine, project, predictions, order, fitted, setup, opts.batch_size or get_settings().predict_batch_size)
        clock.lap("write")
        return _finish_succeeded(engine, project, run_id, fitted, predictions, setup, len(order), clock)
    except Exception as exc:  # a model's failure is recorded, never raised into labelling
        detail = "".join(traceback.format_exception_only(type(exc), exc)).strip()
        return runs.finish_run(engine, run_id, status=RunStatus.failed.value, phase_seconds=clock.phases,
                               message=f"{detail}\n\n{traceback.format_exc(limit=8)}")
