"""The stopping signal: do more labels still help? Pure functions; the figures go into ``ModelRun.signals``.

Two figures, both computed after every successful retrain:

* **changed predictions**: the share of unlabelled items whose predicted
  label (the model's guess, stored as the item's hint) differs from the
  previous run's guess. When new labels no longer change what the model
  predicts on the rest of the data, further labels teach it little
  ("stabilising predictions", Bloodgood & Vijay-Shanker 2009).
* **score slope**: the cross-validated score's gain per 100 labels, from a
  least-squares line through the last :data:`SLOPE_RUNS` scored runs.

The verdict (thresholds below, also in docs/concepts.md):

* ``not enough runs yet``: fewer than :data:`MIN_SCORED_RUNS` scored runs
  with distinct label counts, or no earlier guesses to compare with;
* ``levelling off``: at most :data:`STABLE_CHANGED` of the predictions
  changed in this run *and* the previous one, and the slope is below
  :data:`FLAT_SLOPE` points of accuracy per 100 labels;
* ``more labels still help``: otherwise.

Cross-validated scores of actively chosen labels are pessimistic (the
hard items are picked on purpose), so the slope alone is a weak signal;
the verdict asks both figures to agree before it says "levelling off".

Runs on the same labels (one after another with the same label count: no
new labels came in between, e.g. "Retrain now" pressed twice) count once
(:func:`one_per_label_count`): a slope through two runs at one label count
is a slope through one point twice, and a run's changed predictions on the
same labels compare the model with itself. The group's score is its latest
run's (the model that now ranks the queue, say after an admin picked
another preset; a deterministic model gives the same score each time, so a
mean would only mix models); its changed predictions are its first run's,
the only one that compared guesses across new labels.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = [
    "FLAT_SLOPE",
    "LEVELLING_OFF",
    "MIN_SCORED_RUNS",
    "MORE_HELP",
    "NOT_ENOUGH",
    "SLOPE_RUNS",
    "STABLE_CHANGED",
    "ChangedPredictions",
    "Verdict",
    "changed_predictions",
    "one_per_label_count",
    "score_slope",
    "stopping_signals",
    "verdict",
]

MORE_HELP = "more labels still help"
LEVELLING_OFF = "levelling off"
NOT_ENOUGH = "not enough runs yet"

STABLE_CHANGED = 0.01  # at most 1 % of the unlabelled items' predictions changed since the previous run
FLAT_SLOPE = 1.0  # below 1 point of accuracy gained per 100 labels
MIN_SCORED_RUNS = 3  # a slope needs at least three scored runs with different label counts
SLOPE_RUNS = 4  # the slope is fitted over the latest four scored runs


@dataclass(frozen=True)
class ChangedPredictions:
    n_compared: int  # unlabelled items that had a guess from the previous run
    n_changed: int

    @property
    def fraction(self) -> float | None:
        return self.n_changed / self.n_compared if self.n_compared else None


def changed_predictions(previous: Iterable[Any], current: Iterable[Any]) -> ChangedPredictions:
    """Compare two runs' guesses for the same items, pairwise; a ``None`` previous guess (none yet) is not compared.

    Guesses are compared as given (e.g. JSON text of each label), so a
    multi-label guess counts as changed when any of its labels changed.
    """
    n_compared = n_changed = 0
    for old, new in zip(previous, current, strict=True):
        if old is None:
            continue
        n_compared += 1
        n_changed += old != new
    return ChangedPredictions(n_compared, n_changed)


def score_slope(n_labels: Sequence[float], scores: Sequence[float | None], last: int = SLOPE_RUNS) -> float | None:
    """Score gained per 100 labels, in points (0-100 scale), from a line through the last ``last`` scored runs.

    Runs are given oldest first; runs without a score are left out. Returns
    None with fewer than :data:`MIN_SCORED_RUNS` scored runs or when they
    all have the same number of labels.
    """
    pairs = [(float(n), float(s)) for n, s in zip(n_labels, scores, strict=True) if s is not None and np.isfinite(s)]
    pairs = pairs[-last:]
    if len(pairs) < MIN_SCORED_RUNS:
        return None
    x = np.array([p[0] for p in pairs])
    y = np.array([p[1] for p in pairs])
    if np.ptp(x) == 0:
        return None
    slope = np.polyfit(x, y, 1)[0]  # score per label
    return float(slope * 100 * 100)  # points of accuracy per 100 labels


@dataclass(frozen=True)
class Verdict:
    verdict: str
    reason: str


def verdict(changed_fractions: Sequence[float | None], slope_per_100: float | None) -> Verdict:
    """The verdict from the changed-prediction shares of the runs so far (oldest first; this run last) and the slope."""
    recent = list(changed_fractions)[-2:]
    if slope_per_100 is None:
        return Verdict(NOT_ENOUGH, f"the score slope needs {MIN_SCORED_RUNS} scored runs with different numbers of labels")
    if len(recent) < 2 or any(f is None for f in recent):
        return Verdict(NOT_ENOUGH, "changed predictions need two runs that could compare with the run before them")
    shown = ", ".join(f"{f:.1%}" for f in recent)
    if max(recent) <= STABLE_CHANGED and slope_per_100 < FLAT_SLOPE:
        return Verdict(LEVELLING_OFF, f"predictions changed by {shown} in the last two runs (at most {STABLE_CHANGED:.0%}) and the score "
                                      f"gains {slope_per_100:+.1f} points per 100 labels (below {FLAT_SLOPE:g})")
    reasons = []
    if max(recent) > STABLE_CHANGED:
        reasons.append(f"predictions still change ({shown} in the last two runs; stable is at most {STABLE_CHANGED:.0%})")
    if slope_per_100 >= FLAT_SLOPE:
        reasons.append(f"the score gains {slope_per_100:+.1f} points per 100 labels (flat is below {FLAT_SLOPE:g})")
    return Verdict(MORE_HELP, "; ".join(reasons))


def one_per_label_count(runs: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Runs (oldest first, dicts with ``n_labels``, ``score``, ``changed_fraction``) with each stretch of consecutive runs
    on the same label count as one: the latest scored run's score, the stretch's first run's changed fraction."""
    out: list[dict[str, Any]] = []
    for run in runs:
        if out and run["n_labels"] == out[-1]["n_labels"]:
            score = run.get("score") if run.get("score") is not None else out[-1].get("score")
            out[-1] = {**out[-1], "score": score}
        else:
            out.append({"n_labels": run["n_labels"], "score": run.get("score"), "changed_fraction": run.get("changed_fraction")})
    return out


def stopping_signals(history: Sequence[dict[str, Any]], changed: ChangedPredictions | None, n_labels: int,
                     score: float | None) -> dict[str, Any]:
    """The figures stored in ``ModelRun.signals`` for a new run.

    ``history`` holds the earlier successful runs, oldest first, each a dict
    with ``n_labels``, ``score`` and ``changed_fraction`` (None where unknown).
    Runs on the same labels count once (:func:`one_per_label_count`): a run
    with no new labels since the previous run stores no ``changed_fraction``
    (its guesses were compared with a model of the same labels; the counts
    ``n_compared`` and ``n_changed`` are still stored).
    """
    previous_labels = history[-1]["n_labels"] if history else None
    fraction = None if changed is None or previous_labels == n_labels else changed.fraction
    counted = one_per_label_count([*history, {"n_labels": n_labels, "score": score, "changed_fraction": fraction}])
    scores = [c["score"] for c in counted]
    slope = score_slope([c["n_labels"] for c in counted], scores)
    decided = verdict([c["changed_fraction"] for c in counted], slope)
    reason = decided.reason
    if previous_labels == n_labels:
        reason += "; no new labels since the previous run, so the runs on these labels count once"
    return {
        "changed_fraction": fraction,
        "n_compared": 0 if changed is None else changed.n_compared,
        "n_changed": 0 if changed is None else changed.n_changed,
        "labels_since_previous": None if previous_labels is None else n_labels - previous_labels,
        "slope_per_100_labels": slope,
        "slope_runs": min(SLOPE_RUNS, sum(s is not None for s in scores)),
        "verdict": decided.verdict,
        "verdict_reason": reason,
        "thresholds": {"stable_changed": STABLE_CHANGED, "flat_slope_per_100": FLAT_SLOPE, "min_scored_runs": MIN_SCORED_RUNS,
                       "slope_runs": SLOPE_RUNS},
    }
