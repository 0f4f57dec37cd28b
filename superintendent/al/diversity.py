"""Batch-aware ranking: keep the top of the queue diverse when many labellers claim at once.

Pure uncertainty ranking hands out near-duplicates together: eight
labellers claiming in the same second get the eight least certain items,
which are often eight variants of the same confusion (a "1" that looks like
a "7"), and the model learns from them little more than from one.

:func:`diverse_order` re-orders only the top ``n_candidates`` items by
uncertainty (a few thousand at most, so it stays fast for a million
unlabelled items; everything below keeps the plain uncertainty order). The
candidates are handed out in *rounds* of ``window`` items: the items
labelled before the model sees any of them (a retrain takes the labels
expected before the next one; see ``learning.retrain``). A round is drawn from the
``ROUND_POOL x window`` most uncertain candidates left (80 for a round of 8):
they are clustered by k-means into ``window`` groups, and each group gives
its most typical item, the one nearest its centre (Zhdanov's "diverse
mini-batch active learning", 2019). A round thus holds no two items of one
group of near-duplicates, and each item stands for a group of uncertain
ones rather than being an outlier. Within a round the most uncertain comes
first; with ``window=1`` the order is the plain uncertainty order.

Measured (bench/preset_learning.py, rounds of one batch as a retrain sizes them, 30 seeds; docs/benchmarks.md):
labels to 90 % of the full-data accuracy on VADER's words with text embeddings 120 (plain margin 150, random 165),
on digits 52.5 (60, 92.5); on small tables no better than plain margin (tips' day 30 against 30; gapminder 195
against 165, 10 seeds). With 8 labellers claiming together on digits (bench/batch_learning.py) 68 labels, against 76
for plain margin and 70.5 for one labeller retraining after every label.

Distances are Euclidean in the model's own view of the items (e.g. the
scaled pixels the classifier sees), projected to at most ``max_dims``
dimensions by a seeded random projection when wider. Only numpy here.
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

__all__ = ["DEFAULT_CANDIDATES", "DEFAULT_WINDOW", "MAX_WINDOW", "TopCandidates", "diverse_order", "diverse_ranking", "project_features"]

DEFAULT_WINDOW = 8  # items per round when nothing else sizes it (no recent labels; the Python API's default)
DEFAULT_CANDIDATES = 2000  # items re-ordered for diversity; the rest keep the uncertainty order
DEFAULT_MAX_DIMS = 64
ROUND_POOL = 10  # a round's items come from the next this-many x window candidates by need
MAX_WINDOW = DEFAULT_CANDIDATES // ROUND_POOL  # the largest round whose candidates are all among those re-ordered


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


def _kmeans(x: np.ndarray, k: int, rng: np.random.Generator, iterations: int = 100) -> np.ndarray:
    """Cluster of each row (``0 .. k-1``): Lloyd's k-means from greedy k-means++ centres.

    Greedy k-means++ (as scikit-learn's ``KMeans`` starts): each next centre is the best of ``2 + log k`` rows drawn with
    probability proportional to the squared distance to the nearest centre so far, the one that lowers the sum of those
    distances most. Measured on VADER's words (text embeddings, all 256 dimensions, rounds of 10, 30 seeds), this start
    reached the 90 % mark with 110 labels, where taking the farthest row each time (outliers as centres) needed 140: a
    round's picks are only as representative as its clusters.
    """
    n = len(x)
    sq = (x * x).sum(axis=1)

    def dist2(rows: np.ndarray) -> np.ndarray:  # (len(rows), n) squared distances
        return np.maximum(sq[rows][:, None] + sq[None, :] - 2.0 * (x[rows] @ x.T), 0.0)

    trials = 2 + int(np.log(k))
    centres = [int(rng.choice(n, p=np.full(n, 1.0 / n)))]
    d2 = dist2(np.array(centres))[0]
    for _ in range(1, k):
        if d2.sum() <= 0.0:  # fewer distinct rows than clusters
            break
        candidates = rng.choice(n, size=trials, p=d2 / d2.sum())
        options = np.minimum(d2[None, :], dist2(candidates))
        best = int(np.argmin(options.sum(axis=1)))
        centres.append(int(candidates[best]))
        d2 = options[best]
    c = x[centres]
    assign = np.full(n, -1)
    for _ in range(iterations):
        new = (sq[:, None] + (c * c).sum(axis=1)[None, :] - 2.0 * (x @ c.T)).argmin(axis=1)
        if np.array_equal(new, assign):
            break
        assign = new
        member = (assign[:, None] == np.arange(len(c))).astype(float)
        counts = member.sum(axis=0)
        c = np.where((counts > 0)[:, None], (member.T @ x) / np.maximum(counts, 1.0)[:, None], c)  # an empty cluster keeps its centre
    return assign


def _round(x: np.ndarray, rows: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """The ``k`` rows of one round out of ``rows`` (the candidates left, most needed first; at most ``ROUND_POOL x k``):
    a k-means of them into ``k`` clusters, and from each the row nearest its centre; most needed first."""
    if len(rows) <= k:
        return rows
    xr = x[rows]
    assign = _kmeans(xr, k, rng)
    picks = set()
    for cluster in np.unique(assign):
        members = np.flatnonzero(assign == cluster)
        centre = xr[members].mean(axis=0)
        picks.add(int(members[np.argmin(((xr[members] - centre) ** 2).sum(axis=1))]))
    if len(picks) < k:  # fewer clusters than labellers (rows alike): the most needed rows not yet taken fill the round
        picks.update(int(i) for i in np.setdiff1d(np.arange(len(rows)), sorted(picks))[: k - len(picks)])
    return rows[np.sort(np.fromiter(picks, dtype=np.intp))]


def diverse_order(features: ArrayLike, window: int = DEFAULT_WINDOW, rng: np.random.Generator | int | None = 0) -> np.ndarray:
    """Visiting order of candidates already sorted by need (row 0 most uncertain), diverse within each round.

    Parameters
    ----------
    features : array-like, shape (m, d)
        Numeric features of the candidates, in descending order of need.
    window : int
        Items per round (labellers claiming together). 1 keeps the given order.
    rng : numpy.random.Generator, int or None
        Seeds the k-means starts: the same seed and features give the same order.

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
    remaining = np.arange(m, dtype=np.intp)
    order = []
    while len(remaining):
        chosen = _round(x, remaining[: ROUND_POOL * window], window, generator)
        order.append(chosen)
        remaining = remaining[~np.isin(remaining, chosen)]
    return np.concatenate(order)


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
