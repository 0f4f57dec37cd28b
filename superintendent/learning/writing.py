"""Where a retrain's order goes: the head of the order, and the priorities that put it before every open item.

Shared by the retrain of classification projects (:mod:`~superintendent.learning.retrain`) and of marks projects
(:mod:`~superintendent.learning.marks_retrain`).
"""

from __future__ import annotations

import numpy as np
from sqlalchemy.engine import Engine

from superintendent import queue
from superintendent.config import get_settings
from superintendent.store import Project, session_scope

__all__ = ["head_priorities"]


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
