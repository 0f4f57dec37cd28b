"""Where a retrain's order goes: the head of the order, and the priorities that put it before every open item.

Shared by the retrain of classification projects (:mod:`~superintendent.learning.retrain`) and of marks projects
(:mod:`~superintendent.learning.marks_retrain`).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
from sqlalchemy.engine import Engine

from superintendent import queue
from superintendent.config import get_settings
from superintendent.store import Project, session_scope

__all__ = ["head_priorities", "item_batches"]


def head_priorities(engine: Engine, project: Project, order: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(the head of ``order`` to write, its priorities).

    Only the head of the order is written, at most ``rank_write_limit`` items (the ones labellers reach before the
    next retrain), with priorities below every open item's, so they are served first; the rest keep their earlier
    order behind them. A project within the limit gets its whole order, as positions 0, 1, 2, ...
    """
    limit = get_settings().rank_write_limit
    if len(order) > limit:
        order = order[:limit]
        with session_scope(engine, write=False) as s:
            floor = queue.lowest_priority(s, project)
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
