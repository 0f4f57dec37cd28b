"""The cold start: while no model can be fitted yet, the queue ordered so that the first labels span the data.

A retrain of a classification project that has labels of fewer than two
classes is ``skipped`` (:func:`~superintendent.learning.retrain.run_retrain`);
in that branch it calls :func:`order_for_coverage`, which

1. reads the unlabelled pool with :func:`superintendent.queue.unlabelled_batches`,
   keeping a seeded random sample of at most :data:`SAMPLE_SIZE` items (only
   the head of the order is written, so a sample is enough for a big pool);
2. turns the sample into numbers without any label (:func:`coverage_features`):
   arrays and image files flattened (randomly projected to at most 64
   columns when wider, as the diversity step does) and scaled; table rows
   with numbers scaled and categories one-hot; text hashed
   (``HashingVectorizer``, TF-IDF weights) and reduced (``TruncatedSVD``);
3. orders it with :func:`superintendent.al.coverage.coverage_order` (the
   item nearest each k-means centre first, random picks mixed in at the
   project's ``shuffle_prop``) and writes the head of that order through
   :func:`~superintendent.learning.writing.head_priorities` and
   :func:`superintendent.queue.reprioritise`, as a retrain writes its order.

It does so only when the project's items changed since the last coverage
order: the skipped run records how many items the project had
(``signals["cold_start"]["items"]``), and the next run compares. Labels
coming in do not count as a change (a labelled item just leaves the order).
:func:`pending` is the scheduler's question "would a run now write a new
coverage order?", so that items imported into a project with no labels are
ordered without waiting for the first labels. A failure here never fails
labelling: it is recorded in the run's message and signals.
"""

from __future__ import annotations

import time
import traceback
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy.engine import Engine
from sqlmodel import Session

from superintendent import queue
from superintendent.al.coverage import coverage_order, default_centres
from superintendent.al.diversity import DEFAULT_MAX_DIMS, project_features
from superintendent.config import get_settings
from superintendent.learning import runs
from superintendent.learning.presets import as_text, flatten, model_view, stack_features  # the model's own readers of text and images
from superintendent.learning.writing import head_priorities
from superintendent.marks import is_marks
from superintendent.store import ModelRun, Project, RunStatus, session_scope

__all__ = ["SAMPLE_SIZE", "ColdStart", "coverage_features", "order_for_coverage", "pending"]

SAMPLE_SIZE = 20_000  # unlabelled items ordered at most (a random sample of a bigger pool), or rank_write_limit + 1 if more
TEXT_FEATURES = 2**18  # hashed text columns
SIGNAL = "cold_start"  # the key of ModelRun.signals


class NoNumericView(ValueError):
    """The items are neither arrays, image files, table rows nor text: no coverage order for them."""


@dataclass(frozen=True)
class ColdStart:
    """What a cold start did, for the skipped run that made it: ``signals`` to store, items ``written``, and a sentence
    for the run's message."""

    message: str
    written: int = 0
    signals: dict[str, Any] = field(default_factory=dict)


# --------------------------------------------------------------------------- a numeric view without labels


def _batch_view(features: list[Any], project: Project) -> Any:
    """One batch of item features as the cold start keeps them: a float array of at most 64 columns (arrays, image
    files), a DataFrame (table rows) or a list of strings (text)."""
    x = model_view(stack_features(features), project)
    if isinstance(x, pd.DataFrame) and "image_path" in x.columns:
        return project_features(flatten(x), DEFAULT_MAX_DIMS, rng=0)
    if project.data_type == "text" or (isinstance(x, list) and all(isinstance(v, str) for v in x)):
        return as_text(x)
    if isinstance(x, pd.DataFrame):
        return x.reset_index(drop=True)
    try:
        arr = np.asarray(x, dtype=float)
    except (TypeError, ValueError):
        raise NoNumericView(f"items of type {type(features[0]).__name__} are neither arrays, image files, table rows nor text") from None
    arr = arr.reshape(len(arr), -1)
    return project_features(np.where(np.isfinite(arr), arr, 0.0), DEFAULT_MAX_DIMS, rng=0)


def _numbers(x: np.ndarray) -> np.ndarray:
    from sklearn.preprocessing import StandardScaler

    return StandardScaler().fit_transform(x)


def _table(frame: pd.DataFrame) -> np.ndarray:
    """Numbers scaled (missing ones: the median), everything else one-hot (the 20 most frequent values of a column)."""
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    numeric = [c for c in frame.columns if pd.api.types.is_numeric_dtype(frame[c])]
    other = [c for c in frame.columns if c not in numeric]
    frame = frame.copy()
    for column in other:  # lists, dicts, mixed types: their text is a category
        frame[column] = frame[column].map(lambda v: "" if v is None or (isinstance(v, float) and np.isnan(v)) else str(v))
    columns = ColumnTransformer([
        ("numbers", make_pipeline(SimpleImputer(strategy="median", keep_empty_features=True), StandardScaler()), numeric),
        ("categories", OneHotEncoder(handle_unknown="ignore", max_categories=20, sparse_output=False), other),
    ], sparse_threshold=0.0)
    return project_features(np.asarray(columns.fit_transform(frame), dtype=float), DEFAULT_MAX_DIMS, rng=0)


def _text(texts: list[str]) -> np.ndarray:
    """Hashed words and word pairs, TF-IDF weighted, reduced to at most 50 dimensions, rows of length one (cosine)."""
    from sklearn.decomposition import TruncatedSVD
    from sklearn.feature_extraction.text import HashingVectorizer, TfidfTransformer
    from sklearn.preprocessing import normalize

    hashed = HashingVectorizer(ngram_range=(1, 2), n_features=TEXT_FEATURES, alternate_sign=False, norm=None).transform(texts).tocsc()
    hashed = hashed[:, np.flatnonzero(np.diff(hashed.indptr))]  # the columns some text uses: the SVD's cost grows with the width
    if hashed.shape[1] == 0:  # no words at all: every text alike
        return np.zeros((len(texts), 1))
    weighted = TfidfTransformer(sublinear_tf=True).fit_transform(hashed)
    dims = min(50, weighted.shape[0] - 1, weighted.shape[1] - 1)
    reduced = TruncatedSVD(n_components=dims, random_state=0).fit_transform(weighted) if dims >= 2 else weighted.toarray()
    return normalize(reduced)


def _numeric(views: Any) -> np.ndarray:
    """The kept batches (:func:`_batch_view`) put together as the numbers the coverage order groups."""
    if isinstance(views, pd.DataFrame):
        return _table(views)
    if isinstance(views, list):
        return _text(views)
    return _numbers(np.asarray(views, dtype=float))


def coverage_features(features: list[Any], project: Project) -> np.ndarray:
    """The numeric view of items (their features as stored) that the coverage order groups; no label is used.

    Arrays and image files: flattened (randomly projected to 64 columns when wider) and scaled. Table rows (the
    project's model columns): numbers scaled, the rest one-hot. Text (a text project, or strings): hashed words and word
    pairs, TF-IDF weighted, reduced to at most 50 dimensions. :class:`NoNumericView` for anything else.
    """
    return _numeric(_batch_view(features, project))


# --------------------------------------------------------------------------- the pool, sampled


def _take(view: Any, rows: np.ndarray) -> Any:
    if isinstance(view, pd.DataFrame):
        return view.iloc[rows].reset_index(drop=True)
    if isinstance(view, list):
        return [view[i] for i in rows]
    return view[rows]


def _join(a: Any, b: Any) -> Any:
    if a is None:
        return b
    if isinstance(a, pd.DataFrame):
        return pd.concat([a, b], ignore_index=True)
    if isinstance(a, list):
        return a + list(b)
    return np.concatenate([a, b])


def _sample_pool(engine: Engine, project: Project, size: int, rng: np.random.Generator,
                 batch_size: int) -> tuple[np.ndarray, Any, int]:
    """(ids, their views, the pool's size) of a uniform random sample of at most ``size`` unlabelled items (all of them
    when fewer), in id order.

    Each item gets a random key; the ``size`` smallest keys are kept as the batches go by, so memory stays that of the
    sample plus one batch however big the pool.
    """
    ids, keys, views, pool = np.empty(0, dtype=np.int64), np.empty(0), None, 0
    for batch_ids, features in queue.unlabelled_batches(engine, project, batch_size):
        pool += len(batch_ids)
        ids, keys = np.concatenate([ids, batch_ids]), np.concatenate([keys, rng.random(len(batch_ids))])
        views = _join(views, _batch_view(features, project))
        if len(ids) > size:
            keep = np.sort(np.argpartition(keys, size - 1)[:size])
            ids, keys, views = ids[keep], keys[keep], _take(views, keep)
    return ids, views, pool


# --------------------------------------------------------------------------- the order, written once per change of the pool


def _covered(run: ModelRun | None) -> dict[str, Any] | None:
    """What the cold start of ``run`` recorded (a skipped run of a project with no model yet), or None."""
    if run is None or run.status != RunStatus.skipped.value:
        return None
    entry = (run.signals or {}).get(SIGNAL)
    return entry if isinstance(entry, dict) else None


def pending(session: Session, project: Project, last: ModelRun | None) -> bool:
    """Whether a retrain now would write a new coverage order: a classification project whose latest run (``last``) is
    none yet, or a cold start that saw another number of items than the project has now. (A project whose latest run
    fitted a model, or was skipped for another reason, follows its label schedule alone.)"""
    if is_marks(project.label_mode):
        return False
    entry = _covered(last)
    if last is not None and entry is None:
        return False
    total, _ = queue.progress_counts(session, project)
    return total > 0 and (entry is None or entry.get("items") != total)


def _write(engine: Engine, project: Project, rng: np.random.Generator, random_prop: float, batch_size: int) -> tuple[dict[str, Any], int]:
    started = time.perf_counter()
    settings = get_settings()
    size = max(SAMPLE_SIZE, settings.rank_write_limit + 1)  # a sampled pool's order is longer than its head: written before every item
    ids, views, pool = _sample_pool(engine, project, size, rng, batch_size)
    if len(ids) == 0:
        return {"pool": 0, "written": 0}, 0
    features = _numeric(views)
    order = coverage_order(features, rng, random_prop=random_prop)
    order, priorities = head_priorities(engine, project, order)
    queue.reprioritise(engine, project, ids[order], priorities)
    return {"pool": pool, "sampled": len(ids), "centres": default_centres(len(ids)), "random_prop": random_prop,
            "written": len(order), "seconds": round(time.perf_counter() - started, 3)}, len(order)


def order_for_coverage(engine: Engine, project: Project, run_id: int, *, rng: np.random.Generator | int | None = None,
                       random_prop: float = 0.1, batch_size: int | None = None) -> ColdStart:
    """Write the coverage order of the project's unlabelled items, unless the latest run before ``run_id`` already wrote
    one for as many items as the project has now. Never raises: a failure is told in the returned message."""
    total: int | None = None
    try:
        previous = next((r for r in runs.latest_runs(engine, project, limit=2) if r.id != run_id), None)
        with session_scope(engine, write=False) as s:
            total, _ = queue.progress_counts(s, project)
        entry = _covered(previous)
        if entry is not None and entry.get("items") == total:
            again = {"items": total, "written": 0, "unchanged": True, **({"error": entry["error"]} if "error" in entry else {})}
            why = ("no coverage order could be made for these items" if "error" in entry
                   else "the queue keeps the coverage order written earlier")
            return ColdStart(f"{why}; no items were added or removed since.", 0, {SIGNAL: again})
        generator = np.random.default_rng(rng)
        signal, written = _write(engine, project, generator, random_prop, batch_size or get_settings().predict_batch_size)
        signal = {"items": total, **signal}
        if not written:
            return ColdStart("no unlabelled items to order.", 0, {SIGNAL: signal})
        of = (f"the {_n(signal['pool'], 'unlabelled item')}" if signal["sampled"] == signal["pool"] else
              f"a random sample of {signal['sampled']} of the {signal['pool']} unlabelled items")
        return ColdStart(f"until then the queue is ordered for coverage: {_n(signal['centres'], 'k-means group')} of {of}, the item "
                         f"nearest each centre first ({_n(written, 'item')} given a new place).", written, {SIGNAL: signal})
    except NoNumericView as exc:
        return ColdStart(f"the queue keeps its order ({exc}).", 0, {SIGNAL: {"items": total, "written": 0, "error": str(exc)}})
    except Exception as exc:  # noqa: BLE001 - the cold start is a nicety: labelling goes on in the old order, the run says why
        detail = "".join(traceback.format_exception_only(type(exc), exc)).strip()
        return ColdStart(f"the coverage order failed, the queue keeps its order: {detail}", 0,
                         {SIGNAL: {"items": total, "written": 0, "error": detail}})


def _n(count: int, noun: str) -> str:
    """"1 item", "2 items"."""
    return f"{count} {noun}{'' if count == 1 else 's'}"
