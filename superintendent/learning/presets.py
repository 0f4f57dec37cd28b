"""Models and what they see: presets, factories named by import path, features stacked and viewed for a model.

A project's model comes from a factory named in its settings
(``package.module:function``; code, so set by configuration or an admin
only) or from a preset an admin picks (:data:`MODEL_PRESETS`). Item
features, stored one per item, are stacked into what a model takes
(:func:`stack_features`) and cut to the project's model columns
(:func:`model_view`).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.multioutput import MultiOutputClassifier

from superintendent.learning.embeddings import TextEmbeddings, require_wordllama, wordllama_installed
from superintendent.learning.spans import SpanModel
from superintendent.store import Project
from superintendent.validation import ValidationError

__all__ = [
    "EMBEDDINGS_PRESET", "IMAGE_FILE_PIXELS", "MODEL_PRESETS", "PRESET_LABEL_MODES", "SMALL_DATA_LABELS", "SPAN_PRESET", "OptionModel",
    "Preprocess", "SmallDataStage", "as_frame", "as_text", "flatten", "has_in_app_model", "identity_preprocess", "load_factory",
    "make_preset", "model_features", "model_for_project", "model_view", "preset_description", "preset_misfit", "stack_features",
]

Preprocess = Callable[[Any, Any], tuple[Any, Any]]

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


def flatten(x: Any) -> np.ndarray:
    """Rows as one flat float vector each (images, arrays, numeric rows; a table of image files: their pixels)."""
    if isinstance(x, pd.DataFrame) and "image_path" in x.columns:
        x = _load_image_files(x["image_path"].tolist())
    arr = np.asarray(x, dtype=float)
    return arr.reshape(len(arr), -1)


def as_text(x: Any) -> list[str]:
    """Rows as one string each (a table row or dict: its values joined by spaces)."""
    if isinstance(x, pd.DataFrame):
        return x.astype(str).agg(" ".join, axis=1).tolist()
    return [v if isinstance(v, str) else " ".join(map(str, dict(v).values())) if isinstance(v, (dict, pd.Series)) else str(v) for v in x]


def as_frame(x: Any) -> pd.DataFrame:
    """Rows as a table (dicts and rows to columns); text columns become categories (gradient boosting's own kind)."""
    frame = x.copy() if isinstance(x, pd.DataFrame) else pd.DataFrame(list(x))
    for col in frame.columns:
        if not pd.api.types.is_numeric_dtype(frame[col]):
            frame[col] = frame[col].astype("category")
    return frame


# Below this many labels the table preset fits logistic regression, from here on gradient boosting: boosting's trees need 20
# rows per leaf, so with fewer labels they cannot split and predict one class; measured in bench/first_labels.py (docs/benchmarks.md).
# The image preset regularises its logistic regression more below it.
SMALL_DATA_LABELS = 100


class SmallDataStage(ClassifierMixin, BaseEstimator):
    """``small`` while there are fewer than ``min_labels`` labels, ``large`` from there on (the fitted one is ``estimator_``)."""

    def __init__(self, small: BaseEstimator, large: BaseEstimator, min_labels: int = SMALL_DATA_LABELS) -> None:
        self.small = small
        self.large = large
        self.min_labels = min_labels

    def fit(self, x: Any, y: Any) -> SmallDataStage:
        self.estimator_ = clone(self.large if len(y) >= self.min_labels else self.small).fit(x, y)
        self.classes_ = self.estimator_.classes_
        return self

    def predict_proba(self, x: Any) -> np.ndarray:
        return self.estimator_.predict_proba(x)

    def predict(self, x: Any) -> np.ndarray:
        return self.estimator_.predict(x)


class OptionModel(ClassifierMixin, BaseEstimator):
    """Whether one option applies (a multi-label project's 0/1 column): ``estimator`` once the labelled items both use and
    skip the option; before that a constant, the observed rate (0 for an option no item has yet, 1 for one every item has).

    ``constant_`` is that rate, or None when ``estimator_`` was fitted. ``classes_`` is always ``[0, 1]``.
    """

    def __init__(self, estimator: BaseEstimator) -> None:
        self.estimator = estimator

    def fit(self, x: Any, y: Any) -> OptionModel:
        y = np.asarray(y, dtype=int)
        self.classes_ = np.array([0, 1])
        if len(np.unique(y)) < 2:
            self.constant_: float | None = float(y.mean()) if len(y) else 0.0
            self.estimator_ = None
        else:
            self.constant_ = None
            self.estimator_ = clone(self.estimator).fit(x, y)
        return self

    def predict_proba(self, x: Any) -> np.ndarray:
        if self.estimator_ is None:
            return np.tile([1.0 - self.constant_, self.constant_], (len(x), 1))
        proba = np.asarray(self.estimator_.predict_proba(x))
        fitted_classes = getattr(self.estimator_, "classes_", self.classes_)  # a model without classes_: columns taken as 0, 1
        return proba[:, np.searchsorted(fitted_classes, self.classes_)]

    def predict(self, x: Any) -> np.ndarray:
        return (self.predict_proba(x)[:, 1] > 0.5).astype(int)


def _table_small() -> BaseEstimator:
    """Regularised logistic regression on a table: numbers scaled (missing ones: the median), categories one-hot."""
    from sklearn.compose import ColumnTransformer, make_column_selector
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    columns = ColumnTransformer([
        ("numbers", make_pipeline(SimpleImputer(strategy="median", keep_empty_features=True), StandardScaler()),
         make_column_selector(dtype_include=np.number)),
        ("categories", OneHotEncoder(handle_unknown="ignore"), make_column_selector(dtype_exclude=np.number)),
    ])
    return make_pipeline(columns, LogisticRegression(max_iter=2000, class_weight="balanced"))


def make_preset(name: str) -> BaseEstimator:
    """A fresh model for a preset name (see :data:`MODEL_PRESETS`)."""
    from sklearn.ensemble import HistGradientBoostingClassifier, VotingClassifier
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer, Normalizer, StandardScaler

    if name == "logistic_regression":
        # below SMALL_DATA_LABELS labels ten times the regularisation (C=0.1): on digits, 30 seeds, margin labels, 84.7% vs
        # 83.6% test accuracy at 50 labels, the same from 100 on (bench/preset_learning.py, docs/benchmarks.md)
        return make_pipeline(FunctionTransformer(flatten), StandardScaler(), SmallDataStage(
            small=LogisticRegression(C=0.1, max_iter=2000, class_weight="balanced"),
            large=LogisticRegression(max_iter=2000, class_weight="balanced")))
    if name == "tfidf_logistic_regression":  # balanced class weights: with 20 short texts the intercept no longer outvotes the words
        return make_pipeline(FunctionTransformer(as_text), TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True),
                             LogisticRegression(max_iter=2000, class_weight="balanced"))
    if name == EMBEDDINGS_PRESET:  # needs the extra superintendent[embeddings]: without it, say so now, not at the first fit
        require_wordllama()
        # rows scaled to length 1 (cosine geometry), measured against standardised and raw embeddings, 10 seeds: at 20 labels
        # 99.5% / 97.3% / 97.9% on pyjokes' neutral-or-chuck, 66.9% / 65.6% / 66.7% on VADER's words (positive or negative).
        # Normalizer leaves an empty text's zeros as they are.
        return make_pipeline(FunctionTransformer(as_text), TextEmbeddings(), Normalizer(),
                             LogisticRegression(max_iter=2000, class_weight="balanced"))
    if name == SPAN_PRESET:
        return SpanModel()
    if name == "gradient_boosting":
        # from SMALL_DATA_LABELS on, the trees' and the logistic regression's probabilities averaged: trees alone on 100
        # labels chosen by margin fell to 37 % accuracy on tips' day (55 % before the switch) and 54 % on gapminder's
        # continent; averaged, 56.5 % and 59.5 %, and about as good as the trees further on (bench/preset_learning.py,
        # data tips_day and gapminder; docs/benchmarks.md)
        trees = HistGradientBoostingClassifier(categorical_features="from_dtype", max_iter=100)
        return make_pipeline(FunctionTransformer(as_frame), SmallDataStage(
            small=_table_small(), large=VotingClassifier([("linear", _table_small()), ("trees", trees)], voting="soft")))
    raise ValidationError(f"unknown model preset {name!r}; choose one of: {', '.join(MODEL_PRESETS)}")


SPAN_PRESET = "token_crf"
EMBEDDINGS_PRESET = "embeddings_logistic_regression"
MODEL_PRESETS = {
    "logistic_regression": (f"Logistic regression on flattened, scaled arrays (images, numeric rows), stronger below "
                            f"{SMALL_DATA_LABELS} labels"),
    "tfidf_logistic_regression": "TF-IDF of character n-grams and logistic regression (text, short or long)",
    EMBEDDINGS_PRESET: "Text embeddings (WordLlama, offline) and logistic regression",
    "gradient_boosting": (f"Logistic regression; from {SMALL_DATA_LABELS} labels, averaged with boosted trees (table rows; "
                          "categories, missing values)"),
    SPAN_PRESET: "Spans projects: a CRF over the text's tokens (word, shape, neighbours) that predicts the marked spans",
}
# The project kinds (label modes) each preset suits; a boxes project has no in-app preset (a model factory, or predictions
# uploaded through the HTTP API).
PRESET_LABEL_MODES = {"logistic_regression": ("single", "multi"), "tfidf_logistic_regression": ("single", "multi"),
                      EMBEDDINGS_PRESET: ("single", "multi"),
                      "gradient_boosting": ("single", "multi"), SPAN_PRESET: ("spans",)}


def preset_description(name: str) -> str:
    """What a preset is, for people (one line in the Admin select box); a preset whose package is missing says how to
    install it (looked up without importing it)."""
    text = MODEL_PRESETS[name]
    if name == EMBEDDINGS_PRESET and not wordllama_installed():
        text += '; needs pip install "superintendent[embeddings]"'
    return text


def preset_misfit(name: str, label_mode: str) -> str | None:
    """Why preset ``name`` cannot serve a ``label_mode`` project (what to choose instead), or None when it can."""
    modes = PRESET_LABEL_MODES.get(name)
    if modes is None or label_mode in modes:
        return None
    fitting = [p for p, m in PRESET_LABEL_MODES.items() if label_mode in m]
    what = "marks spans in a text" if name == SPAN_PRESET else "gives one label per item"
    instead = (f"choose {', '.join(map(repr, fitting))}" if fitting else
               "there is no in-app model for boxes: upload a detector's predictions (HTTP API: POST /api/v1/projects/{id}/predictions) "
               "or have an admin set a model factory")
    return f"model preset {name!r} {what}; a {label_mode} project cannot use it: {instead}"


def has_in_app_model(project: Project) -> bool:
    """Whether a retrain of the project fits a model of its own (a factory, or a preset that suits its kind)."""
    if project.model_factory:
        return True
    return bool(project.model_preset) and preset_misfit(project.model_preset, project.label_mode) is None


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
    """The model a project's settings name (factory path first, then preset), or None; :class:`ValidationError` when the
    preset does not suit the project's kind (a classification preset on a spans project, ...)."""
    if project.model_factory:
        return load_factory(project.model_factory)()
    if project.model_preset:
        if (misfit := preset_misfit(project.model_preset, project.label_mode)) is not None:
            raise ValidationError(misfit)
        return make_preset(project.model_preset)
    return None


# --------------------------------------------------------------------------- features


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
    columns = project.model_columns
    if columns and isinstance(x, pd.DataFrame):
        return x[[c for c in columns if c in x.columns]]
    return x


def identity_preprocess(x: Any, y: Any) -> tuple[Any, Any]:
    return x, y


def _fitted_model(model: BaseEstimator) -> BaseEstimator:
    """The fitted model under a multi-label wrapper: the first option's model that was fitted (not a constant)."""
    if isinstance(model, MultiOutputClassifier):
        fitted = [e.estimator_ if isinstance(e, OptionModel) else e for e in model.estimators_]
        return next((e for e in fitted if e is not None), model.estimators_[0])
    return model


def _classifier_input(estimator: BaseEstimator, x: Any) -> Any:
    """What the innermost classifier sees of ``x``: every pipeline's steps before its last, through a
    :class:`SmallDataStage` (its fitted stage) and a voting ensemble (its first member that is a pipeline: the table
    preset's scaled and one-hot columns, not the raw table, whose biggest column would decide every distance)."""
    from sklearn.ensemble import VotingClassifier
    from sklearn.pipeline import Pipeline

    while True:
        if isinstance(estimator, Pipeline) and len(estimator.steps) > 1:
            x, estimator = estimator[:-1].transform(x), estimator.steps[-1][1]
        elif isinstance(estimator, SmallDataStage):
            estimator = estimator.estimator_
        elif isinstance(estimator, VotingClassifier):
            inner = next((e for e in estimator.estimators_ if isinstance(e, Pipeline) and len(e.steps) > 1), None)
            if inner is None:
                return x
            estimator = inner
        else:
            return x


def model_features(model: BaseEstimator, x: Any, proba: np.ndarray) -> Any:
    """The model's own numeric view of items, for the diversity step.

    A pipeline's steps before the classifier (e.g. scaled pixels, TF-IDF
    vectors, a table's scaled and one-hot columns); else the features themselves when numeric; else the predicted
    probabilities (items the model sees alike are then those it predicts alike).
    """
    try:
        view = _classifier_input(_fitted_model(model), x)
    except Exception:  # noqa: BLE001 - a custom pipeline that cannot transform alone: fall back
        view = x
    if hasattr(view, "toarray") and hasattr(view, "shape"):
        return view  # sparse (TF-IDF): projected by the diversity step
    try:
        arr = np.asarray(view, dtype=float)
        return arr.reshape(len(arr), -1) if np.isfinite(arr).all() else proba.reshape(len(proba), -1)
    except (TypeError, ValueError):
        return proba.reshape(len(proba), -1)
