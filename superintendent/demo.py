"""Demo projects that need no download: sklearn's digits (images) and VADER's sentiment lexicon (text)."""

from __future__ import annotations

from importlib import resources

import numpy as np
from sqlalchemy.engine import Engine

from superintendent import queue
from superintendent.store import session_scope

DIGITS = "Demo: handwritten digits"
WORDS = "Demo: word sentiment"


def _vader_words(n: int, seed: int = 0) -> list[str]:
    text = resources.files("vaderSentiment").joinpath("vader_lexicon.txt").read_text(encoding="utf-8")
    words = [line.split("\t")[0] for line in text.splitlines() if line.strip() and line.split("\t")[0].isalpha()]
    rng = np.random.default_rng(seed)
    return sorted(rng.choice(words, size=min(n, len(words)), replace=False).tolist())


def load_demo(engine: Engine, *, n_digits: int = 500, n_words: int = 600) -> list[str]:
    """Create the demo projects that do not exist yet; returns the names created."""
    from sklearn.datasets import load_digits

    created = []
    with session_scope(engine) as s:
        existing = {p.name for p in queue.list_projects(s)}
    if DIGITS not in existing:
        images = load_digits().images[:n_digits]
        with session_scope(engine) as s:
            project = queue.create_project(s, DIGITS, options=[str(d) for d in range(10)], data_type="image",
                                           model_preset="logistic_regression", acquisition_function="margin",
                                           retrain_interval_seconds=30.0, retrain_interval_n_labels=10)
            queue.add_items(s, project, list(images))
        created.append(DIGITS)
    if WORDS not in existing:
        with session_scope(engine) as s:
            project = queue.create_project(s, WORDS, options=["positive", "negative"], data_type="text",
                                           model_preset="tfidf_logistic_regression", acquisition_function="entropy",
                                           retrain_interval_seconds=30.0, retrain_interval_n_labels=10)
            queue.add_items(s, project, _vader_words(n_words))
        created.append(WORDS)
    return created

