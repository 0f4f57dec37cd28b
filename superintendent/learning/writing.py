"""Where a retrain's order goes: the head of the order, and the priorities that put it before every open item.

Shared by the retrain of classification projects (:mod:`~superintendent.learning.retrain`) and of marks projects
(:mod:`~superintendent.learning.marks_retrain`).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterator
from typing import Any

import numpy as np
from sqlalchemy.engine import Engine

from superintendent import queue
from superintendent.config import get_settings
from superintendent.learning import runs
from superintendent.store import Project, session_scope, utcnow

__all__ = ["HEAD_MIN", "head_length", "head_priorities", "item_batches", "labels_before_next_retrain"]


# The head a scheduled retrain writes: twice the labels expected before the next one's head lands, at least HEAD_MIN
# items; the labelling rate is that of the last retrain interval, or of the last RATE_WINDOW_SECONDS if longer.
HEAD_MIN = 1_000
RATE_WINDOW_SECONDS = 600.0
RETRAIN_SLACK_SECONDS = 300.0  # labels made while the next retrain runs and waits for the scheduler's tick


def labels_before_next_retrain(engine: Engine, project: Project, now: dt.datetime | None = None, *,
                               slack_seconds: float = 0.0) -> float:
    """How many labels people give between this retrain and the next: the items they reach meanwhile.

    A scheduled project retrains after ``retrain_interval_n_labels`` new labels and ``retrain_interval_seconds``, so
    labellers give about ``max(n_labels, rate x seconds)`` labels before the next retrain, plus ``rate x
    slack_seconds`` for a caller that counts the time a retrain may take to run and land; the rate is that of the last
    retrain interval, or of the last :data:`RATE_WINDOW_SECONDS` if longer. A project retrained by hand (no interval)
    retrains when someone asks: the labels people gave since its last successful retrain started (since it was
    created, before its first) are the estimate of the gap to the next one. Labels imported with items are not people
    labelling and do not count.
    """
    every, n_labels = project.retrain_interval_seconds, project.retrain_interval_n_labels
    if every is None and n_labels == 0:
        with session_scope(engine, write=False) as s:
            since = runs.last_success_started(s, project) or project.created_at
            return float(queue.labels_since(s, project, since))
    window = max(every or 0.0, RATE_WINDOW_SECONDS)
    with session_scope(engine, write=False) as s:
        recent = queue.labels_since(s, project, (now or utcnow()) - dt.timedelta(seconds=window))
    rate = recent / window
    return max(n_labels, rate * (every or 0.0)) + rate * slack_seconds


def head_length(engine: Engine, project: Project, now: dt.datetime | None = None) -> int:
    """How many items of its order a retrain writes: the ones labellers can reach before the next retrain.

    Twice :func:`labels_before_next_retrain` with :data:`RETRAIN_SLACK_SECONDS` of slack, at least :data:`HEAD_MIN`, at
    most ``rank_write_limit``. An item past the head keeps its earlier place, so labellers who outrun the estimate
    still get every item, in the earlier order.
    """
    expected = labels_before_next_retrain(engine, project, now, slack_seconds=RETRAIN_SLACK_SECONDS)
    return int(min(get_settings().rank_write_limit, max(HEAD_MIN, math.ceil(2 * expected))))


def head_priorities(engine: Engine, project: Project, order: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(the head of ``order`` to write, its priorities).

    Only the head of the order is written (:func:`head_length` items: the ones labellers reach before the next
    retrain), with priorities below every open item's, so they are served first; the rest keep their earlier
    order behind them. A project within that length gets its whole order, as positions 0, 1, 2, ... until every open
    item has been in a head (the lowest open priority is below zero); then below that, as a head is.
    """
    limit = head_length(engine, project)
    partial, order = len(order) > limit, order[:limit]
    with session_scope(engine, write=False) as s:
        floor = queue.lowest_priority(s, project)
    if partial or (floor is not None and floor < 0):
        # below every open item: those not in the head, and those added after this read (an add puts its items after
        # the highest open priority of its moment, which is below zero once every open item has been in a head)
        return order, min(0.0, floor if floor is not None else 0.0) - len(order) + np.arange(len(order), dtype=float)
    return order, np.arange(len(order), dtype=float)


def item_batches(engine: Engine, project: Project, ids: np.ndarray, batch_size: int) -> Iterator[tuple[list[int], list[Any]]]:
    """The items ``ids`` of the project, read and decoded ``batch_size`` at a time: (ids still there, their contents);
    an item deleted meanwhile is left out. Memory stays that of one batch however long the head of the order is."""
    for start in range(0, len(ids), batch_size):
        chunk = np.asarray(ids[start:start + batch_size]).tolist()
        with session_scope(engine, write=False) as s:
            data = queue.items_data(s, project, chunk)
        chunk = [i for i in chunk if i in data]
        if chunk:
            yield chunk, [data[i] for i in chunk]
