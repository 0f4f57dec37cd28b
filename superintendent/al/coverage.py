"""A cold start that covers the data: the order of the queue before any model exists.

Before the first model there is nothing for an acquisition function to
score, and insertion order is often the worst order there is: files come
sorted by class, by date, by source, so the first hundred labels may all be
one class and no model can be fitted from them. :func:`coverage_order`
orders the items so that the first labels span the data instead:

1. k-means (scikit-learn's ``KMeans``, k-means++ start, one run) finds
   ``n_centres`` groups in the items' features (by default
   :func:`default_centres`: about as many as the labels a first model needs,
   20 to 50, at most one per item). At the sizes a cold start sees (at most
   20,000 rows of at most 64 columns) it is faster than ``MiniBatchKMeans``:
   1.4 s against 3.5 s (n_init=3) for 20,000 x 64 and 50 groups, 0.04 s
   against 1.4 s for the 1,797 digits (the shared 2-core VM, load 8-10);
2. the item nearest each centre comes first, the largest group's first;
   then the second nearest of each group, and so on (a round robin over the
   groups, largest first), so every group has been shown once before any is
   shown twice;
3. a share ``random_prop`` of the positions is given to random picks, as
   :func:`~superintendent.al.acquisition.visiting_order` does for
   ``shuffle_prop``: a guard against features that group the items badly.

Only numpy and scikit-learn; no database. The same ``rng`` seed gives the
same order (it seeds k-means too).
"""

from __future__ import annotations

import numbers
import warnings
from typing import Any

import numpy as np
from sklearn.cluster import KMeans
from sklearn.exceptions import ConvergenceWarning

from superintendent.al.acquisition import RandomState, _as_generator, visiting_order

__all__ = ["MAX_CENTRES", "MIN_CENTRES", "coverage_order", "default_centres"]

MIN_CENTRES = 20  # about the labels a first model needs (bench/first_labels.py: the presets at 15-25 labels)
MAX_CENTRES = 50
ITEMS_PER_CENTRE = 50  # above 20 x 50 = 1,000 items, one more group per 50 items, up to MAX_CENTRES


def default_centres(n_items: int) -> int:
    """How many groups to look for among ``n_items`` items: ``n_items / 50`` kept within 20..50, and at most ``n_items``."""
    return int(min(n_items, max(MIN_CENTRES, min(MAX_CENTRES, n_items // ITEMS_PER_CENTRE))))


def _check_features(features: Any) -> Any:
    """Features as a 2-D float array, or a scipy sparse matrix kept sparse; ValueError saying what is wrong."""
    if hasattr(features, "toarray") and hasattr(features, "shape"):  # scipy sparse (e.g. hashed text)
        if len(features.shape) != 2:
            raise ValueError(f"features must be 2-D (one row per item); got a sparse matrix of shape {features.shape}")
        matrix = features.tocsr().astype(float)
        if not np.isfinite(matrix.data).all():
            raise ValueError("features must be finite numbers; got NaN or infinity in the sparse matrix")
        return matrix
    try:
        x = np.asarray(features, dtype=float)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"features for the coverage order must be numeric; got {type(features).__name__}: {exc}") from None
    if x.ndim == 0:
        raise ValueError("features must have one row per item; got a single number")
    x = x.reshape(len(x), -1) if x.size else x.reshape(len(x), 0)
    if not np.isfinite(x).all():
        row = int(np.flatnonzero(~np.isfinite(x).all(axis=1))[0])
        raise ValueError(f"features must be finite numbers; got NaN or infinity in row {row}")
    return x


def _check_centres(n_centres: Any, n: int) -> int:
    if n_centres is None:
        return default_centres(n)
    if isinstance(n_centres, (bool, np.bool_)) or not isinstance(n_centres, numbers.Integral) or n_centres < 1:
        raise ValueError(f"n_centres must be a whole number of at least 1 (groups to look for) or None; got {n_centres!r}")
    return int(min(n_centres, n))


def _round_robin(groups: np.ndarray, distances: np.ndarray) -> np.ndarray:
    """Rows in rounds: in each round the next nearest row of every group (largest groups first); ties by row."""
    n = len(groups)
    sizes = np.bincount(groups)
    by_distance = np.lexsort((np.arange(n), distances, groups))  # grouped, nearest first within each group
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    rank = np.empty(n, dtype=np.intp)
    rank[by_distance] = np.arange(n) - starts[groups[by_distance]]  # 0 for the row nearest its centre, 1 next, ...
    return np.lexsort((np.arange(n), groups, -sizes[groups], rank)).astype(np.intp)


def coverage_order(features: Any, rng: RandomState = None, *, n_centres: int | None = None, random_prop: float = 0.1) -> np.ndarray:
    """A visiting order of the rows of ``features`` whose first rows span the data.

    Parameters
    ----------
    features : array-like (n, ...) or scipy sparse matrix (n, d)
        A numeric view of the items (flattened to rows; sparse kept sparse), on a scale where
        Euclidean distance means something (e.g. scaled columns).
    rng : numpy.random.Generator, int or None
        Seeds k-means and the random picks: the same seed, the same order.
    n_centres : int or None
        Groups to look for; None: :func:`default_centres` of the number of rows. At most one per row.
    random_prop : float
        Share of positions, between 0 and 1, given to random picks (as ``shuffle_prop`` in
        :func:`~superintendent.al.acquisition.visiting_order`).

    Returns
    -------
    numpy.ndarray of intp, shape (n,)
        A permutation of ``range(n)``: the row nearest each centre first (largest group first), then the next
        nearest of each group, ..., with the random picks mixed in.
    """
    generator = _as_generator(rng)
    x = _check_features(features)
    n = x.shape[0]
    if n == 0:
        return np.empty(0, dtype=np.intp)
    k = _check_centres(n_centres, n)
    if k >= n:  # a group per row: nothing to choose between, the random picks alone
        ranked = np.arange(n, dtype=np.intp)
    else:
        kmeans = KMeans(n_clusters=k, n_init=1, random_state=int(generator.integers(2**31 - 1)))
        with warnings.catch_warnings():  # fewer distinct rows than groups: some groups stay empty, which the round robin ignores
            warnings.simplefilter("ignore", ConvergenceWarning)
            groups = kmeans.fit_predict(x)
        distances = kmeans.transform(x)[np.arange(n), groups]
        ranked = _round_robin(groups, distances)
    scores = np.empty(n)
    scores[ranked] = -np.arange(n, dtype=float)  # first in the round robin scores highest
    return visiting_order(scores, shuffle_prop=random_prop, rng=generator)
