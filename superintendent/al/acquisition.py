"""Acquisition functions: which unlabelled items to show first.

Each public function takes the predicted class probabilities of the
unlabelled items, shape ``(n_samples, n_classes)`` or, for multi-output
models, ``(n_samples, n_classes, n_outputs)``, and returns a *visiting
order*: the row indices, the item most in need of a label first.

The work is split in two so large projects can be ranked batch by batch:
:func:`acquisition_scores` turns one batch of probabilities into one score
per row (higher = more in need of a label); :func:`visiting_order` sorts
the concatenated scores (and mixes in some random picks if asked).

Each name has a batch-aware variant, ``<name>_diverse`` (e.g.
``margin_diverse``): the same scores, but the top of the order is re-ranked
so the items that several labellers claim at the same moment are not
near-duplicates (see :mod:`superintendent.al.diversity`). That step needs the
items' features; without them the variant's order equals the plain one.

Only numpy is imported here. The public import path of these names is
:mod:`superintendent.acquisition_functions`, as in the original library.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable

import numpy as np
from numpy.typing import ArrayLike

from superintendent.al import diversity

__all__ = [
    "ACQUISITION_FUNCTIONS",
    "DEFAULT_ACQUISITION",
    "DIVERSE_SUFFIX",
    "acquisition_scores",
    "certainty",
    "certainty_diverse",
    "entropy",
    "entropy_diverse",
    "get_acquisition_function",
    "margin",
    "margin_diverse",
    "split_name",
    "visiting_order",
]

DIVERSE_SUFFIX = "_diverse"

RandomState = np.random.Generator | int | None
AcquisitionFunction = Callable[[np.ndarray], np.ndarray]

# Probabilities a little over 1 come from float rounding; more than this is a bug upstream.
_ONE_TOLERANCE = 1e-6


def _as_generator(rng: RandomState) -> np.random.Generator:
    """Return a numpy ``Generator`` for ``rng`` (a Generator, an int seed or None for fresh entropy)."""
    if isinstance(rng, np.random.Generator):
        return rng
    if rng is None:
        return np.random.default_rng()
    if isinstance(rng, numbers.Integral) and not isinstance(rng, (bool, np.bool_)):
        return np.random.default_rng(int(rng))
    raise TypeError(
        f"rng must be a numpy.random.Generator, an int seed or None; got {type(rng).__name__} {rng!r}; "
        "pass e.g. rng=np.random.default_rng(0) or rng=0"
    )


def _first_row(mask: np.ndarray) -> int:
    """Index of the first sample (axis 0) where ``mask`` is True anywhere."""
    return int(np.flatnonzero(mask.reshape(len(mask), -1).any(axis=1))[0])


def _check_probabilities(probabilities: ArrayLike) -> np.ndarray:
    """Validate predicted probabilities and return them as a float array.

    Accepts shape ``(n_samples, n_classes)`` or ``(n_samples, n_classes,
    n_outputs)``; zero samples is fine (an empty list too), zero classes is
    not. Values must be finite and within [0, 1]; rows need not sum to 1.

    Raises
    ------
    ValueError
        Naming the problem and the first offending row.
    """
    try:
        p = np.asarray(probabilities, dtype=float)
    except (TypeError, ValueError) as exc:
        raise ValueError(
            "probabilities must be a numeric array of shape (n_samples, n_classes), e.g. the output of "
            f"model.predict_proba(X); could not convert a {type(probabilities).__name__} to floats: {exc}"
        ) from exc
    if p.ndim == 1 and p.size == 0:  # an empty list: no samples to rank
        return p.reshape(0, 0)
    if p.ndim not in (2, 3):
        raise ValueError(
            "probabilities must have shape (n_samples, n_classes) or (n_samples, n_classes, n_outputs); "
            f"got shape {p.shape}; for a single sample use np.reshape(p, (1, -1))"
        )
    if p.shape[0] == 0:
        return p
    if p.shape[1] == 0 or (p.ndim == 3 and p.shape[2] == 0):
        raise ValueError(
            f"probabilities must have at least one class and one output; got shape {p.shape}"
        )
    finite = np.isfinite(p)
    if not finite.all():
        row = _first_row(~finite)
        bad = p[row][~finite[row]].flat[0]
        raise ValueError(
            f"probabilities must be finite; got {'NaN' if np.isnan(bad) else bad} in row {row}; "
            "check the model's predict_proba output"
        )
    negative = p < 0
    if negative.any():
        row = _first_row(negative)
        raise ValueError(
            f"probabilities must be non-negative; got {p[row][negative[row]].flat[0]:g} in row {row}; "
            "pass probabilities (predict_proba), not decision scores"
        )
    too_big = p > 1 + _ONE_TOLERANCE
    if too_big.any():
        row = _first_row(too_big)
        raise ValueError(
            f"probabilities must be at most 1; got {p[row][too_big[row]].flat[0]:g} in row {row}; "
            "pass probabilities (predict_proba), not decision scores or counts"
        )
    return p


def _check_shuffle_prop(shuffle_prop: float) -> float:
    """Return ``shuffle_prop`` as a float in [0, 1] or raise ValueError."""
    if isinstance(shuffle_prop, (bool, np.bool_)) or not isinstance(shuffle_prop, numbers.Real):
        raise ValueError(
            f"shuffle_prop must be a number between 0 and 1; got {type(shuffle_prop).__name__} {shuffle_prop!r}"
        )
    value = float(shuffle_prop)
    if not 0.0 <= value <= 1.0:  # also rejects NaN
        raise ValueError(
            f"shuffle_prop must be between 0 and 1 (the share of random picks); got {shuffle_prop!r}"
        )
    return value


def _mean_over_outputs(per_output: np.ndarray) -> np.ndarray:
    """Average an ``(n_samples, n_outputs)`` score array over outputs; pass 1-D through."""
    return per_output.mean(axis=1) if per_output.ndim == 2 else per_output


def _entropy_scores(p: np.ndarray) -> np.ndarray:
    """Entropy of each row's distribution (0 log 0 taken as 0); higher = more uncertain."""
    if p.shape[0] == 0:
        return np.empty(0)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, p * np.log(p), 0.0)
    return _mean_over_outputs(-terms.sum(axis=1))


def _margin_scores(p: np.ndarray) -> np.ndarray:
    """Minus the gap between the two most likely classes (a single class: the gap to 0)."""
    if p.shape[0] == 0:
        return np.empty(0)
    ordered = np.sort(p, axis=1)
    top1 = ordered[:, -1]
    top2 = ordered[:, -2] if p.shape[1] > 1 else np.zeros_like(top1)
    return _mean_over_outputs(top2 - top1)


def _certainty_scores(p: np.ndarray) -> np.ndarray:
    """One minus the top probability; higher = less certain."""
    if p.shape[0] == 0:
        return np.empty(0)
    return _mean_over_outputs(1.0 - p.max(axis=1))


_SCORE_FUNCTIONS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "certainty": _certainty_scores,
    "entropy": _entropy_scores,
    "margin": _margin_scores,
}


def split_name(name: str) -> tuple[str, bool]:
    """``"margin_diverse"`` -> ``("margin", True)``; ``"Margin"`` -> ``("margin", False)``; unknown names raise ValueError."""
    if not isinstance(name, str):
        raise TypeError(f"acquisition function name must be a str; got {type(name).__name__} {name!r}")
    key = name.strip().lower()
    diverse = key.endswith(DIVERSE_SUFFIX)
    base = key[: -len(DIVERSE_SUFFIX)] if diverse else key
    if base not in _SCORE_FUNCTIONS:
        raise _unknown_name(name, with_callable=False)
    return base, diverse


def _unknown_name(name: str, with_callable: bool) -> ValueError:
    names = ", ".join(sorted(ACQUISITION_NAMES))
    hint = ", or pass a callable" if with_callable else ""
    return ValueError(f"unknown acquisition function {name!r}; choose one of: {names}{hint}")


def visiting_order(scores: ArrayLike, shuffle_prop: float = 0.0, rng: RandomState = None) -> np.ndarray:
    """Row indices by descending score, optionally with some random picks.

    Parameters
    ----------
    scores : array-like, shape (n,)
        Need for a label per row; higher comes first. Ties keep row order.
    shuffle_prop : float
        Share of positions, rounded half up, given to random picks: those
        positions are chosen at random and the items there are shuffled
        among them. 0 is fully deterministic, 1 a random permutation.
    rng : numpy.random.Generator, int or None
        Source of randomness for the random picks.

    Returns
    -------
    numpy.ndarray of intp, shape (n,)
        A permutation of ``range(n)``.
    """
    prop = _check_shuffle_prop(shuffle_prop)
    generator = _as_generator(rng)
    s = np.asarray(scores, dtype=float)
    if s.ndim != 1:
        raise ValueError(f"scores must be 1-D, one per row; got shape {s.shape}")
    if np.isnan(s).any():
        raise ValueError(f"scores must not be NaN; got NaN in row {int(np.flatnonzero(np.isnan(s))[0])}")
    order = np.argsort(-s, kind="stable").astype(np.intp, copy=False)
    n_random = int(np.floor(prop * len(s) + 0.5))
    if n_random > 0:
        positions = generator.choice(len(s), size=n_random, replace=False)
        order[positions] = order[generator.permutation(positions)]
    return order


def acquisition_scores(name: str, probabilities: ArrayLike) -> np.ndarray:
    """Per-row need for a label (higher = sooner) under the named acquisition function.

    Scores of several batches can be concatenated and passed to
    :func:`visiting_order`; the result equals ranking all rows at once.

    Parameters
    ----------
    name : {"certainty", "entropy", "margin"} or one of them with "_diverse"
        Case-insensitive; a ``_diverse`` variant scores like its base.
    probabilities : array-like, shape (n_samples, n_classes[, n_outputs])

    Returns
    -------
    numpy.ndarray of float, shape (n_samples,)
    """
    base, _ = split_name(name)
    return _SCORE_FUNCTIONS[base](_check_probabilities(probabilities))


def entropy(probabilities: ArrayLike, shuffle_prop: float = 0.0, rng: RandomState = None) -> np.ndarray:
    """Visiting order by entropy of the predicted distribution, highest first.

    Parameters
    ----------
    probabilities : array-like, shape (n_samples, n_classes[, n_outputs])
        Multi-output scores are averaged across outputs.
    shuffle_prop, rng
        See :func:`visiting_order`.

    Returns
    -------
    numpy.ndarray of intp
        Row indices, the one most in need of a label first.
    """
    return visiting_order(_entropy_scores(_check_probabilities(probabilities)), shuffle_prop, rng)


def margin(probabilities: ArrayLike, shuffle_prop: float = 0.0, rng: RandomState = None) -> np.ndarray:
    """Visiting order by the gap between the two most likely classes, smallest first.

    Parameters
    ----------
    probabilities : array-like, shape (n_samples, n_classes[, n_outputs])
        Multi-output scores are averaged across outputs. With a single
        class the gap is to 0.
    shuffle_prop, rng
        See :func:`visiting_order`.

    Returns
    -------
    numpy.ndarray of intp
        Row indices, the one most in need of a label first.

    Examples
    --------
    >>> margin([[.1, .8, .1], [.3, .3, .4], [.33, .33, .34], [.01, .01, .98]]).tolist()
    [2, 1, 0, 3]
    """
    return visiting_order(_margin_scores(_check_probabilities(probabilities)), shuffle_prop, rng)


def certainty(probabilities: ArrayLike, shuffle_prop: float = 0.0, rng: RandomState = None) -> np.ndarray:
    """Visiting order by the top predicted probability, lowest first.

    Parameters
    ----------
    probabilities : array-like, shape (n_samples, n_classes[, n_outputs])
        Multi-output scores are averaged across outputs.
    shuffle_prop, rng
        See :func:`visiting_order`.

    Returns
    -------
    numpy.ndarray of intp
        Row indices, the one most in need of a label first.
    """
    return visiting_order(_certainty_scores(_check_probabilities(probabilities)), shuffle_prop, rng)


def _diverse(base: str, probabilities: ArrayLike, shuffle_prop: float, rng: RandomState, features: ArrayLike | None,
             window: int, n_candidates: int | None) -> np.ndarray:
    scores = _SCORE_FUNCTIONS[base](_check_probabilities(probabilities))
    if features is None:
        return visiting_order(scores, shuffle_prop, rng)
    if len(features) != len(scores):
        raise ValueError(f"features must have one row per row of probabilities ({len(scores)}); got {len(features)}")
    order = diversity.diverse_ranking(scores, features, window=window, n_candidates=n_candidates or diversity.DEFAULT_CANDIDATES,
                                      rng=0)
    ranked = np.empty(len(order))
    ranked[order] = -np.arange(len(order), dtype=float)
    return visiting_order(ranked, shuffle_prop, rng)


def margin_diverse(probabilities: ArrayLike, shuffle_prop: float = 0.0, rng: RandomState = None, *,
                   features: ArrayLike | None = None, window: int = 8, n_candidates: int | None = None) -> np.ndarray:
    """Margin order whose top is spread out over the features: no near-duplicates among ``window`` consecutive items.

    Parameters
    ----------
    probabilities : array-like, shape (n_samples, n_classes[, n_outputs])
    shuffle_prop, rng
        See :func:`visiting_order` (applied after the diversity step).
    features : array-like, shape (n_samples, ...), optional
        Numeric features per row (e.g. what the model sees). Without them the
        order is plain :func:`margin`.
    window : int
        Labellers expected to claim at the same moment; 1 gives plain margin.
    n_candidates : int, optional
        How many of the least certain rows are re-ordered (default 2000); the rest keep the margin order.

    Examples
    --------
    Rows 0 and 1 are equally uncertain twins, row 2 a little less uncertain but elsewhere:

    >>> p = [[.5, .5], [.5, .5], [.45, .55], [.9, .1]]
    >>> x = [[0.0, 0.0], [0.0, 0.01], [5.0, 5.0], [9.0, 9.0]]
    >>> margin(p).tolist(), margin_diverse(p, features=x, window=2).tolist()
    ([0, 1, 2, 3], [0, 2, 1, 3])
    """
    return _diverse("margin", probabilities, shuffle_prop, rng, features, window, n_candidates)


def entropy_diverse(probabilities: ArrayLike, shuffle_prop: float = 0.0, rng: RandomState = None, *,
                    features: ArrayLike | None = None, window: int = 8, n_candidates: int | None = None) -> np.ndarray:
    """Entropy order with a diverse top; see :func:`margin_diverse`."""
    return _diverse("entropy", probabilities, shuffle_prop, rng, features, window, n_candidates)


def certainty_diverse(probabilities: ArrayLike, shuffle_prop: float = 0.0, rng: RandomState = None, *,
                      features: ArrayLike | None = None, window: int = 8, n_candidates: int | None = None) -> np.ndarray:
    """Certainty order with a diverse top; see :func:`margin_diverse`."""
    return _diverse("certainty", probabilities, shuffle_prop, rng, features, window, n_candidates)


ACQUISITION_FUNCTIONS: dict[str, Callable[..., np.ndarray]] = {
    "certainty": certainty,
    "entropy": entropy,
    "margin": margin,
    "certainty_diverse": certainty_diverse,
    "entropy_diverse": entropy_diverse,
    "margin_diverse": margin_diverse,
}
ACQUISITION_NAMES = tuple(ACQUISITION_FUNCTIONS)
DEFAULT_ACQUISITION = "margin"  # a new project's, unless it names another


def get_acquisition_function(spec: str | AcquisitionFunction) -> AcquisitionFunction:
    """Resolve a name (case-insensitive) or a callable to an acquisition function.

    A callable is returned unchanged; it must map probabilities to a
    visiting order.

    Raises
    ------
    ValueError
        For an unknown name, listing the valid ones.
    TypeError
        For anything that is neither a str nor callable.
    """
    if isinstance(spec, str):
        function = ACQUISITION_FUNCTIONS.get(spec.strip().lower())
        if function is None:
            raise _unknown_name(spec, with_callable=True)
        return function
    if callable(spec):
        return spec
    raise TypeError(
        f"acquisition function must be a name ({', '.join(sorted(ACQUISITION_FUNCTIONS))}) or a callable; "
        f"got {type(spec).__name__} {spec!r}"
    )
