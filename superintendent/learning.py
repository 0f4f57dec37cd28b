"""Active learning: fit, evaluate, predict in batches, rank, write priorities, record a model run.

:func:`run_retrain` is one retrain of one project. It never raises for a
model's failure: the error is stored on the :class:`ModelRun` and the queue
keeps its old order, so labelling goes on. (Locking, so that one retrain
per project runs at a time, is :mod:`superintendent.orchestration`'s job.)
"""

from __future__ import annotations

import importlib
import time
import traceback
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sklearn.base import BaseEstimator
from sklearn.metrics import accuracy_score, classification_report, confusion_matrix
from sklearn.model_selection import KFold, StratifiedKFold, cross_val_predict
from sklearn.multioutput import MultiOutputClassifier
from sklearn.preprocessing import MultiLabelBinarizer
from sqlalchemy.engine import Engine

from superintendent import queue, serialization, stopping
from superintendent.acquisition_functions import (
    acquisition_scores,
    get_acquisition_function,
    split_name,
    visiting_order,
)
from superintendent.config import get_settings
from superintendent.diversity import DEFAULT_CANDIDATES, DEFAULT_WINDOW, TopCandidates
from superintendent.store import ModelRun, Project, RunStatus, session_scope, utcnow
from superintendent.validation import ValidationError

Preprocess = Callable[[Any, Any], tuple[Any, Any]]
EvalMethod = Callable[[Any, Any, Any], Any]


# --------------------------------------------------------------------------- models


IMAGE_FILE_PIXELS = (32, 32)


def _load_image_files(paths: Any) -> np.ndarray:
    """Images stored as files (ZIP uploads): grey, resized to :data:`IMAGE_FILE_PIXELS`."""
    from PIL import Image

    out = np.empty((len(paths), *IMAGE_FILE_PIXELS), dtype=float)
    for i, path in enumerate(paths):
        with Image.open(path) as image:
            out[i] = np.asarray(image.convert("L").resize(IMAGE_FILE_PIXELS), dtype=float)
    return out


def _flatten(x: Any) -> np.ndarray:
    if isinstance(x, pd.DataFrame) and "image_path" in x.columns:
        x = _load_image_files(x["image_path"].tolist())
    arr = np.asarray(x, dtype=float)
    return arr.reshape(len(arr), -1)


def _as_text(x: Any) -> list[str]:
    if isinstance(x, pd.DataFrame):
        return x.astype(str).agg(" ".join, axis=1).tolist()
    return [v if isinstance(v, str) else " ".join(map(str, dict(v).values())) if isinstance(v, (dict, pd.Series)) else str(v) for v in x]


def _as_frame(x: Any) -> pd.DataFrame:
    frame = x.copy() if isinstance(x, pd.DataFrame) else pd.DataFrame(list(x))
    for col in frame.columns:
        if not pd.api.types.is_numeric_dtype(frame[col]):
            frame[col] = frame[col].astype("category")
    return frame


def make_preset(name: str) -> BaseEstimator:
    """A fresh model for a preset name (see :data:`MODEL_PRESETS`)."""
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer, StandardScaler

    if name == "logistic_regression":
        return make_pipeline(FunctionTransformer(_flatten), StandardScaler(), LogisticRegression(max_iter=2000))
    if name == "tfidf_logistic_regression":
        return make_pipeline(FunctionTransformer(_as_text), TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True),
                             LogisticRegression(max_iter=2000))
    if name == "gradient_boosting":
        return make_pipeline(FunctionTransformer(_as_frame), HistGradientBoostingClassifier(categorical_features="from_dtype", max_iter=100))
    raise ValidationError(f"unknown model preset {name!r}; choose one of: {', '.join(MODEL_PRESETS)}")


MODEL_PRESETS = {
    "logistic_regression": "Logistic regression on flattened, scaled arrays (images, numeric rows)",
    "tfidf_logistic_regression": "TF-IDF of character n-grams and logistic regression (text, short or long)",
    "gradient_boosting": "Histogram gradient boosting trees (table rows; handles categories and missing values)",
}


def load_factory(path: str) -> Callable[[], BaseEstimator]:
    """A model factory named ``package.module:function`` (set by configuration or an admin only)."""
    module_name, _, attr = path.partition(":")
    if not module_name or not attr:
        raise ValidationError(f"a model factory is written 'package.module:function'; got {path!r}")
    try:
        factory = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise ValidationError(f"cannot load model factory {path!r}: {exc}") from None
    if not callable(factory):
        raise ValidationError(f"model factory {path!r} is not callable")
    return factory


def model_for_project(project: Project) -> BaseEstimator | None:
    """The model a project's settings name (factory path first, then preset), or None."""
    if project.model_factory:
        return load_factory(project.model_factory)()
    if project.model_preset:
        return make_preset(project.model_preset)
    return None


# --------------------------------------------------------------------------- data


def stack_features(features: list[Any]) -> Any:
    """Put per-item features together for a model: arrays stacked, Series rows as a DataFrame, else a list/array."""
    if not features:
        return np.empty((0,))
    first = features[0]
    if all(isinstance(f, pd.Series) for f in features):
        return pd.DataFrame(features).reset_index(drop=True)
    if all(isinstance(f, dict) for f in features):
        return pd.DataFrame(features)
    if all(isinstance(f, np.ndarray) for f in features):
        return np.stack(features)
    if all(isinstance(f, (int, float, np.number)) and not isinstance(f, bool) for f in features):
        return np.asarray(features)
    if isinstance(first, str):
        return list(features)
    return list(features)


def model_view(x: Any, project: Project) -> Any:
    """Table rows keep only the project's model columns (set at import), when it names them."""
    columns = project.settings.get("model_columns") if project.settings else None
    if columns and isinstance(x, pd.DataFrame):
        return x[[c for c in columns if c in x.columns]]
    return x


def identity_preprocess(x: Any, y: Any) -> tuple[Any, Any]:
    return x, y


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


# --------------------------------------------------------------------------- one retrain


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
    # Batch-aware ("<name>_diverse") ranking: labellers expected to claim together; default the
    # project's settings["diversity_window"], else 8.
    diversity_window: int | None = None


def _finish(engine: Engine, run_id: int, **fields: Any) -> ModelRun:
    with session_scope(engine) as s:
        run = s.get(ModelRun, run_id)
        for key, value in fields.items():
            setattr(run, key, value)
        run.finished_at = utcnow()
        s.add(run)
    return run


def _order_from_callable(fn: Callable[[np.ndarray], np.ndarray], proba: np.ndarray) -> np.ndarray:
    order = np.asarray(fn(proba))
    n = len(proba)
    if order.shape != (n,) or not np.issubdtype(order.dtype, np.integer) or not np.array_equal(np.sort(order), np.arange(n)):
        raise ValidationError(
            f"acquisition function {getattr(fn, '__name__', fn)!r} must return a visiting order: each row index 0..{n - 1} once; "
            f"got shape {order.shape}, dtype {order.dtype}"
        )
    return order


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def guesses(proba: np.ndarray, classes: Any, multi: bool) -> tuple[list[Any], np.ndarray]:
    """The model's guess per row and its confidence: the most likely class (single-label), or
    every label above one half (multi-label; confidence = mean certainty over labels)."""
    if multi:
        on = proba[:, 1, :] > 0.5 if proba.shape[1] > 1 else np.zeros((len(proba), proba.shape[2]), dtype=bool)
        labels = [[_plain(c) for c, flag in zip(classes, row) if flag] for row in on]
        return labels, proba.max(axis=1).mean(axis=1)
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


def _take(x: Any, rows: np.ndarray) -> Any:
    """Rows of a batch as the model takes it (array, DataFrame or list)."""
    if isinstance(x, pd.DataFrame):
        return x.iloc[rows]
    if isinstance(x, np.ndarray):
        return x[rows]
    return [x[i] for i in rows]


def model_features(model: BaseEstimator, x: Any, proba: np.ndarray) -> Any:
    """The model's own numeric view of items, for the diversity step.

    A pipeline's steps before the classifier (e.g. scaled pixels, TF-IDF
    vectors); else the features themselves when numeric; else the predicted
    probabilities (items the model sees alike are then those it predicts alike).
    """
    estimator = model.estimators_[0] if isinstance(model, MultiOutputClassifier) else model
    view: Any = x
    if hasattr(estimator, "steps") and len(estimator.steps) > 1:
        try:
            view = estimator[:-1].transform(x)
        except Exception:  # noqa: BLE001 - a custom pipeline that cannot transform alone: fall back
            view = x
    if hasattr(view, "toarray") and hasattr(view, "shape"):
        return view  # sparse (TF-IDF): projected by the diversity step
    try:
        arr = np.asarray(view, dtype=float)
        return arr.reshape(len(arr), -1) if np.isfinite(arr).all() else proba.reshape(len(proba), -1)
    except (TypeError, ValueError):
        return proba.reshape(len(proba), -1)


def _diversity_window(project: Project, opts: RetrainOptions) -> int:
    value = opts.diversity_window if opts.diversity_window is not None else (project.settings or {}).get("diversity_window", DEFAULT_WINDOW)
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValidationError(f"diversity_window must be a whole number of at least 1 (labellers claiming together); got {value!r}")
    return int(value)


def _history(engine: Engine, project: Project, run_id: int, limit: int = 20) -> list[dict[str, Any]]:
    """Earlier successful runs of the project, oldest first, as the stopping signal needs them."""
    with session_scope(engine, write=False) as s:
        rows = s.execute(sa.select(ModelRun.n_labels, ModelRun.score_mean, ModelRun.signals)
                         .where(ModelRun.project_id == project.id, ModelRun.id != run_id, ModelRun.status == RunStatus.succeeded.value)
                         .order_by(ModelRun.started_at.desc(), ModelRun.id.desc()).limit(limit)).all()
    return [{"n_labels": n, "score": score, "changed_fraction": (signals or {}).get("changed_fraction")} for n, score, signals in reversed(rows)]


def _predict_proba(model: BaseEstimator, x: Any, multi: bool) -> np.ndarray:
    proba = model.predict_proba(x)
    if multi:  # MultiOutputClassifier: one (n, n_classes) array per output
        return np.stack(proba, axis=2)
    return np.asarray(proba)


def run_retrain(engine: Engine, project: Project, options: RetrainOptions | None = None) -> ModelRun:
    """Fit, evaluate, rank the unlabelled items and write their priorities; return the recorded run.

    The run is recorded first as ``running``; it ends ``succeeded``,
    ``skipped`` (nothing to learn from yet: fewer than two classes) or
    ``failed`` with the error. A failed run changes no priorities.
    """
    opts = options or RetrainOptions()
    acquisition = opts.acquisition_function or project.acquisition_function
    shuffle_prop = project.shuffle_prop if opts.shuffle_prop is None else opts.shuffle_prop
    preprocess = opts.model_preprocess or identity_preprocess
    multi = project.label_mode == "multi"
    name = acquisition if isinstance(acquisition, str) else getattr(acquisition, "__name__", "custom")
    diverse = False
    with session_scope(engine) as s:
        run = ModelRun(project_id=project.id, worker=opts.worker, acquisition_function=name)
        s.add(run)
        s.flush()
        run_id = run.id
    phases: dict[str, float] = {}
    clock = time.perf_counter()

    def phase(label: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        phases[label] = round(now - clock, 6)
        clock = now

    try:
        rank_with = get_acquisition_function(acquisition)  # unknown names fail before any work
        if isinstance(acquisition, str):
            diverse = split_name(acquisition)[1]
            window = _diversity_window(project, opts) if diverse else 1
        model = opts.model if opts.model is not None else model_for_project(project)
        if model is None:
            return _finish(engine, run_id, status=RunStatus.skipped.value, message="no model: pass one to Superintendent(model=...) or set the project's model preset")
        with session_scope(engine, write=False) as s:
            labelled = queue.labelled_data(s, project)
        phase("read_labelled")
        n_labels = len(labelled.labels)
        y_raw: Any = labelled.labels
        binarizer = None
        if multi:
            binarizer = MultiLabelBinarizer(classes=project.options or None)
            y_raw = binarizer.fit_transform(labelled.labels)
            model = MultiOutputClassifier(model)
        else:
            distinct = set(map(str, y_raw))
            if len(distinct) < 2:
                return _finish(engine, run_id, status=RunStatus.skipped.value, n_labels=n_labels, phase_seconds=phases,
                               message=f"need labels of at least two classes to train; have {len(distinct)} class(es) in {n_labels} labels")
        x, y = preprocess(model_view(stack_features(labelled.features), project), y_raw)
        phase("preprocess")
        if opts.eval_method is not None:
            scores = [float(v) for v in np.atleast_1d(np.asarray(opts.eval_method(model, x, y), dtype=float))]
            evaluation = Evaluation(scores, {}, {})
        else:
            evaluation = default_evaluation(model, x, y if multi else list(y), multi=multi)
        phase("evaluate")
        model.fit(x, y)
        phase("fit")

        ids_parts, score_parts, proba_parts, hints, confidence_parts, tops = [], [], [], [], [], []
        classes = binarizer.classes_ if multi else getattr(model, "classes_", None)
        candidates = TopCandidates(DEFAULT_CANDIDATES) if diverse and window > 1 else None
        n_compared = n_changed = 0
        for ids, feats in queue.unlabelled_batches(engine, project, opts.batch_size or get_settings().predict_batch_size):
            xb, _ = preprocess(model_view(stack_features(feats), project), None)
            proba = _predict_proba(model, xb, multi)
            ids_parts.append(ids)
            if classes is not None:
                batch_hints, batch_confidence = guesses(proba, classes, multi)
                hints.extend(batch_hints)
                tops.extend(top_guesses(proba, classes, multi))
                confidence_parts.append(batch_confidence)
                with session_scope(engine, write=False) as s:  # the previous run's guesses, before they are overwritten
                    previous = queue.hints_between(s, project, int(ids[0]), int(ids[-1]))
                changed = stopping.changed_predictions((previous.get(int(i)) for i in ids), (serialization.dumps(h) for h in batch_hints))
                n_compared += changed.n_compared
                n_changed += changed.n_changed
            if isinstance(acquisition, str):
                batch_scores = acquisition_scores(acquisition, proba)
                score_parts.append(batch_scores)
                if candidates is not None:
                    candidates.add(batch_scores, lambda rows, xb=xb, proba=proba: model_features(model, _take(xb, rows), proba[rows]))
            else:
                proba_parts.append(proba)
        phase("predict")
        ids = np.concatenate(ids_parts) if ids_parts else np.empty(0, dtype=np.int64)
        if isinstance(acquisition, str):
            scores_all = np.concatenate(score_parts) if score_parts else np.empty(0)
            if candidates is not None:  # batch-aware: the top of the order re-ranked for diversity, then ranks as scores
                diverse_first = candidates.order(scores_all, window=window, rng=0)
                scores_all = np.empty(len(diverse_first))
                scores_all[diverse_first] = -np.arange(len(diverse_first), dtype=float)
        else:
            order = _order_from_callable(rank_with, np.concatenate(proba_parts)) if proba_parts else np.empty(0, dtype=np.intp)
            scores_all = np.empty(len(order))
            scores_all[order] = -np.arange(len(order), dtype=float)
        order = visiting_order(scores_all, shuffle_prop=shuffle_prop, rng=opts.rng)
        phase("rank")
        if classes is not None and len(hints) == len(order):
            confidence = np.concatenate(confidence_parts) if confidence_parts else np.empty(0)
            queue.reprioritise(engine, project, ids[order], np.arange(len(order), dtype=float),
                               hints=[hints[i] for i in order], confidences=confidence[order], top_guesses=[tops[i] for i in order])
        else:
            queue.reprioritise(engine, project, ids[order], np.arange(len(order), dtype=float))
        phase("write")
        scores_arr = np.asarray(evaluation.scores, dtype=float)
        score_mean = float(scores_arr.mean()) if scores_arr.size else None
        changed_now = stopping.ChangedPredictions(n_compared, n_changed) if classes is not None else None
        signals = stopping.stopping_signals(_history(engine, project, run_id), changed_now, n_labels, score_mean)
        if diverse:
            signals["diversity_window"] = window
        phase("signals")
        return _finish(
            engine, run_id, status=RunStatus.succeeded.value, n_labels=n_labels, n_ranked=len(order),
            score_mean=score_mean,
            score_std=float(scores_arr.std()) if scores_arr.size else None,
            scores=evaluation.scores, per_class=evaluation.per_class, confusion=evaluation.confusion,
            phase_seconds=phases, message=evaluation.message, signals=signals,
        )
    except Exception as exc:  # a model's failure is recorded, never raised into labelling
        detail = "".join(traceback.format_exception_only(type(exc), exc)).strip()
        return _finish(engine, run_id, status=RunStatus.failed.value, phase_seconds=phases,
                       message=f"{detail}\n\n{traceback.format_exc(limit=8)}")


def latest_runs(engine: Engine, project: Project, limit: int = 100) -> list[ModelRun]:
    with session_scope(engine, write=False) as s:
        return list(s.execute(sa.select(ModelRun).where(ModelRun.project_id == project.id)
                              .order_by(ModelRun.started_at.desc(), ModelRun.id.desc()).limit(limit)).scalars())
