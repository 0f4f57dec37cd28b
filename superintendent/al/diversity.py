"""Batch-aware ranking: keep the top of the queue diverse when many labellers claim at once.

Pure uncertainty ranking hands out near-duplicates together: eight
labellers claiming in the same second get the eight least certain items,
which are often eight variants of the same confusion (a "1" that looks like
a "7"), and the model learns from them little more than from one.

:func:`diverse_order` re-orders only the top ``n_candidates`` items by
uncertainty (a few thousand at most, so it stays fast for a million
unlabelled items; everything below keeps the plain uncertainty order). The
candidates are handed out in *rounds* of ``window`` items (the number of
labellers expected to claim together). Within a round each next item is
the one with the best

    need x min(1, distance to the nearest item already in this round / typical distance)

where *need* is the item's uncertainty rank among the candidates (1 for the
most uncertain, falling linearly to ``1 / n_candidates``) and the *typical
distance* is twice the median distance from a candidate to its nearest
other candidate. An item at least that far from this round's items keeps its full need; a
near-duplicate of one of them gets close to none, and waits for a later
round. The first item of every round is simply the most uncertain one left,
so with ``window=1`` the order is the plain uncertainty order.

Distances are Euclidean in the model's own view of the items (e.g. the
scaled pixels the classifier sees), projected to at most ``max_dims``
dimensions by a seeded random projection when wider. Only numpy here.
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

__all__ = ["DEFAULT_CANDIDATES", "DEFAULT_WINDOW", "TopCandidates", "diverse_order", "diverse_ranking", "project_features"]

DEFAULT_WINDOW = 8  # labellers expected to claim in the same moment
DEFAULT_CANDIDATES = 2000  # items re-ordered for diversity; the rest keep the uncertainty order
DEFAULT_MAX_DIMS = 64


def _check_positive_int(name: str, value: Any) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name} must be a whole number of at least 1; got {value!r}")
    return int(value)


def project_features(features: Any, max_dims: int = DEFAULT_MAX_DIMS, rng: np.random.Generator | int | None = 0) -> np.ndarray:
    """Features as a dense float array ``(n, <= max_dims)``: flattened, and randomly projected when wider.

    Accepts numpy arrays, anything ``np.asarray`` turns into numbers, and
    scipy sparse matrices (e.g. TF-IDF). The projection is a Gaussian
    random matrix from ``rng`` (the same seed gives the same projection), so
    distances are kept up to a small distortion.
    """
    max_dims = _check_positive_int("max_dims", max_dims)
    if hasattr(features, "toarray") and hasattr(features, "shape") and len(features.shape) == 2:  # scipy sparse
        d = features.shape[1]
        if d <= max_dims:
            return np.asarray(features.toarray(), dtype=float)
        generator = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
        matrix = generator.standard_normal((d, max_dims)) / np.sqrt(max_dims)
        return np.asarray(features @ matrix, dtype=float)
    try:
        x = np.asarray(features, dtype=float)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"features for the diversity step must be numeric; got {type(features).__name__}: {exc}") from exc
    x = x.reshape(len(x), -1)
    if not np.isfinite(x).all():
        raise ValueError("features for the diversity step must be finite; got NaN or infinity")
    if x.shape[1] <= max_dims:
        return x
    generator = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    matrix = generator.standard_normal((x.shape[1], max_dims)) / np.sqrt(max_dims)
    return x @ matrix


def _typical_distance(x: np.ndarray, rng: np.random.Generator, sample: int = 400) -> float:
    """Twice the median nearest-neighbour distance among (a seeded sample of) the rows; 0 if all rows are equal.

    Items closer than this to an item of the same round count as near-duplicates and are held back.
    """
    if len(x) > sample:
        x = x[np.sort(rng.choice(len(x), size=sample, replace=False))]
    sq = (x * x).sum(axis=1)
    d2 = np.maximum(sq[:, None] + sq[None, :] - 2.0 * x @ x.T, 0.0)
    np.fill_diagonal(d2, np.inf)
    nearest = d2.min(axis=1)
    nearest = nearest[np.isfinite(nearest)]
    return float(2.0 * np.sqrt(np.median(nearest))) if nearest.size else 0.0


def diverse_order(features: ArrayLike, window: int = DEFAULT_WINDOW, rng: np.random.Generator | int | None = 0) -> np.ndarray:
    """Visiting order of candidates already sorted by need (row 0 most uncertain), diverse within each round.

    Parameters
    ----------
    features : array-like, shape (m, d)
        Numeric features of the candidates, in descending order of need.
    window : int
        Items per round (labellers claiming together). 1 keeps the given order.
    rng : numpy.random.Generator, int or None
        Seeds the sample used for the typical distance (only drawn from with more than 400 candidates).

    Returns
    -------
    numpy.ndarray of intp, shape (m,)
        A permutation of ``range(m)``.
    """
    window = _check_positive_int("window", window)
    x = np.asarray(features, dtype=float)
    m = len(x)
    if m == 0:
        return np.empty(0, dtype=np.intp)
    x = x.reshape(m, -1)
    if window == 1 or m == 1:
        return np.arange(m, dtype=np.intp)
    generator = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    scale = _typical_distance(x, generator)
    if scale <= 0.0:  # all candidates alike: nothing to spread
        return np.arange(m, dtype=np.intp)
    need = 1.0 - np.arange(m, dtype=float) / m  # 1 for the most uncertain, 1/m for the last
    sq = (x * x).sum(axis=1)
    remaining = np.ones(m, dtype=bool)
    order = np.empty(m, dtype=np.intp)
    nearest = np.full(m, np.inf)  # distance to the nearest item of the current round
    for position in range(m):
        if position % window == 0:
            nearest.fill(np.inf)
            pick = int(np.flatnonzero(remaining)[0])  # the most uncertain left opens the round
        else:
            value = np.where(remaining, need * np.minimum(1.0, nearest / scale), -1.0)
            pick = int(np.argmax(value))  # ties: the more uncertain (lower row) first
        order[position] = pick
        remaining[pick] = False
        d = np.sqrt(np.maximum(sq + sq[pick] - 2.0 * (x @ x[pick]), 0.0))
        np.minimum(nearest, d, out=nearest)
    return order


def diverse_ranking(scores: ArrayLike, features_of: Any, *, window: int = DEFAULT_WINDOW, n_candidates: int = DEFAULT_CANDIDATES,
                    rng: np.random.Generator | int | None = 0) -> np.ndarray:
    """Full visiting order: the top ``n_candidates`` by score re-ordered by :func:`diverse_order`, then the rest by score.

    ``features_of`` is either an array of features for every row, or a
    callable taking the candidates' row indices (most uncertain first) and
    returning their features, so a caller need not hold features of all rows.
    """
    window = _check_positive_int("window", window)
    n_candidates = _check_positive_int("n_candidates", n_candidates)
    s = np.asarray(scores, dtype=float)
    if s.ndim != 1:
        raise ValueError(f"scores must be 1-D, one per row; got shape {s.shape}")
    if np.isnan(s).any():
        raise ValueError(f"scores must not be NaN; got NaN in row {int(np.flatnonzero(np.isnan(s))[0])}")
    by_score = np.argsort(-s, kind="stable").astype(np.intp, copy=False)
    top = by_score[:n_candidates]
    if window == 1 or len(top) < 2:
        return by_score
    feats = features_of(top) if callable(features_of) else np.asarray(features_of)[top]
    local = diverse_order(project_features(feats, rng=0), window=window, rng=rng)
    return np.concatenate([top[local], by_score[n_candidates:]])


class TopCandidates:
    """Keeps the ``n`` best-scoring rows (and their features) while scores arrive batch by batch.

    For ranking a million items in batches: only the rows that could be among
    the top ``n`` have their features kept, so memory stays ``n x d``.
    Rows are numbered in arrival order across batches; ties keep the earlier row.
    """

    def __init__(self, n: int = DEFAULT_CANDIDATES, max_dims: int = DEFAULT_MAX_DIMS) -> None:
        self.n = _check_positive_int("n", n)
        self.max_dims = max_dims
        self._rows = np.empty(0, dtype=np.intp)
        self._scores = np.empty(0)
        self._features: np.ndarray | None = None
        self._offset = 0

    def add(self, scores: ArrayLike, features_of: Any) -> None:
        """Add one batch: its scores, and its features (an array, or a callable taking batch row indices)."""
        s = np.asarray(scores, dtype=float)
        rows = np.arange(self._offset, self._offset + len(s), dtype=np.intp)
        self._offset += len(s)
        if len(s) == 0:
            return
        threshold = self._scores.min() if len(self._scores) >= self.n else -np.inf
        keep = np.flatnonzero(s >= threshold)  # cheap pre-filter: rows that may enter the top n
        keep = keep[np.argsort(-s[keep], kind="stable")][: self.n]
        if len(keep) == 0:
            return
        feats = features_of(keep) if callable(features_of) else np.asarray(features_of)[keep]
        feats = project_features(feats, self.max_dims, rng=0)
        all_rows = np.concatenate([self._rows, rows[keep]])
        all_scores = np.concatenate([self._scores, s[keep]])
        all_feats = feats if self._features is None else np.concatenate([self._features, feats])
        best = np.lexsort((all_rows, -all_scores))[: self.n]  # by score, then by row
        self._rows, self._scores, self._features = all_rows[best], all_scores[best], all_feats[best]

    def order(self, all_scores: ArrayLike, window: int = DEFAULT_WINDOW, rng: np.random.Generator | int | None = 0) -> np.ndarray:
        """The full visiting order of every row added: diverse top, then the rest by score."""
        s = np.asarray(all_scores, dtype=float)
        if len(s) != self._offset:
            raise ValueError(f"all_scores must have one score per row added ({self._offset}); got {len(s)}")
        by_score = np.argsort(-s, kind="stable").astype(np.intp, copy=False)
        if window == 1 or len(self._rows) < 2:
            return by_score
        local = diverse_order(self._features, window=window, rng=rng)
        top = self._rows[local]
        rest = by_score[~np.isin(by_score, self._rows)]
        return np.concatenate([top, rest])
