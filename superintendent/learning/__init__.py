"""Active learning: fit, evaluate, predict in batches, rank, write priorities, record a model run.

* :mod:`~superintendent.learning.presets`: the models (presets, factories named by import path) and the features they see;
* :mod:`~superintendent.learning.evaluation`: cross-validated scores and per-class figures;
* :mod:`~superintendent.learning.retrain`: :func:`run_retrain`, one retrain of one project as named phases;
* :mod:`~superintendent.learning.marks_retrain`: the same for spans and boxes projects (routed there by ``run_retrain``);
* :mod:`~superintendent.learning.spans`: :class:`SpanModel`, the token model (a CRF over BIO tags) of spans projects;
* :mod:`~superintendent.learning.mark_hints`: predicted marks as hints, and the queue order by their lowest score;
* :mod:`~superintendent.learning.span_data`: a span set known by construction (tests and ``bench/span_learning.py``);
* :mod:`~superintendent.learning.writing`: the head of a retrain's order and its priorities;
* :mod:`~superintendent.learning.runs`: every query on model runs.

The maths (acquisition functions, diversity, the stopping signal) is in
:mod:`superintendent.al`. ``from superintendent import learning;
learning.run_retrain(...)`` and ``from superintendent.learning import ...``
give the names below.
"""

from __future__ import annotations

from superintendent.learning.evaluation import EvalMethod, Evaluation, default_evaluation
from superintendent.learning.presets import (
    IMAGE_FILE_PIXELS,
    MODEL_PRESETS,
    Preprocess,
    identity_preprocess,
    load_factory,
    make_preset,
    model_features,
    model_for_project,
    model_view,
    preset_description,
    stack_features,
)
from superintendent.learning.runs import latest_runs
from superintendent.learning.spans import SpanModel
from superintendent.learning.retrain import RetrainOptions, guesses, run_retrain, top_guesses

__all__ = [
    "IMAGE_FILE_PIXELS",
    "MODEL_PRESETS",
    "EvalMethod",
    "Evaluation",
    "Preprocess",
    "RetrainOptions",
    "SpanModel",
    "default_evaluation",
    "guesses",
    "identity_preprocess",
    "latest_runs",
    "load_factory",
    "make_preset",
    "model_features",
    "model_for_project",
    "model_view",
    "preset_description",
    "run_retrain",
    "stack_features",
    "top_guesses",
]
