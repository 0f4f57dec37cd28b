"""A retrain's model runs with ``model_threads`` BLAS / OpenMP threads (default 1): with the library's default (one per
core) a fit took 11-29 s instead of 0.14-0.3 s on a busy 2-core machine, and starved the labellers' requests
(bench/retrain_load.py, issue 14)."""

from __future__ import annotations

import numpy as np
from sklearn.linear_model import LogisticRegression
from threadpoolctl import threadpool_info

from superintendent.learning import RetrainOptions, run_retrain
from superintendent.store import RunStatus

from test_learning import digits_project, flatten


class ThreadsSeen(LogisticRegression):
    """Logistic regression that notes the thread pools' sizes it was fitted under."""

    seen: list[list[int]] = []

    def fit(self, x, y, sample_weight=None):
        pools = [p["num_threads"] for p in threadpool_info()]
        assert pools, "no BLAS or OpenMP library is loaded: nothing to limit"
        ThreadsSeen.seen.append(pools)
        return super().fit(x, y, sample_weight)


def test_the_model_is_fitted_with_the_configured_threads(engine, monkeypatch):
    project = digits_project(engine, n_items=200, n_labelled=60)
    for threads in (1, 2):
        monkeypatch.setenv("SUPERINTENDENT_MODEL_THREADS", str(threads))
        ThreadsSeen.seen = []
        run = run_retrain(engine, project, RetrainOptions(model=ThreadsSeen(max_iter=500), model_preprocess=flatten))
        assert run.status == RunStatus.succeeded.value, run.message
        assert ThreadsSeen.seen and all(max(pools) <= threads for pools in ThreadsSeen.seen), ThreadsSeen.seen
    assert np.isfinite(run.score_mean)
