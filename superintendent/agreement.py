"""Agreement of a project's labellers: the project's annotations read from the database, then the figures.

The statistics are pure functions in :mod:`superintendent.al.agreement`
(spans and boxes: :mod:`superintendent.al.mark_agreement`, F1 of matched
marks); this module only reads what they need (read-only) and puts them
together for the Progress page.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd
from sqlalchemy.engine import Engine

from superintendent import queue
from superintendent.al.agreement import AgreementReport, agreement_report, has_overlap
from superintendent.al.mark_agreement import EXACT, MarkAgreementReport
from superintendent.al.disagreement import preview
from superintendent.export.tables import annotations_frame
from superintendent.store import Project, session_scope

__all__ = ["annotations_long", "item_data", "item_previews", "project_agreement"]


def annotations_long(engine: Engine, project: Project) -> pd.DataFrame:
    """The labellers' annotations of a project, oldest first: item_id, external_id, user, value, created_at.

    The importer's labels are left out. The order is the one
    :func:`superintendent.labels.consensus` breaks ties by.
    """
    frame = annotations_frame(engine, project, include_import=False)
    return frame.rename(columns={"label": "value"})[["item_id", "external_id", "user", "value", "created_at"]]


def item_data(engine: Engine, project: Project, item_ids: Sequence[int]) -> dict[int, Any]:
    """Some items' data (read-only), by item id."""
    with session_scope(engine, write=False) as s:
        return queue.items_data(s, project, [int(i) for i in item_ids])


def item_previews(engine: Engine, project: Project, item_ids: Sequence[int], width: int = 60) -> dict[int, str]:
    """Short previews of some items' data (read-only), by item id."""
    return {i: preview(d, width) for i, d in item_data(engine, project, item_ids).items()}


def project_agreement(engine: Engine, project: Project, *, top: int | None = None,
                      how: str = EXACT) -> AgreementReport | MarkAgreementReport | None:
    """Every agreement figure of a project, or None while no item has labels from two labellers.

    The disagreement table lists only items with all the labels the project
    wants (at least two), so nobody still labelling an item sees its votes;
    ``top`` limits it to the items of most disagreement. Spans and boxes
    projects get F1 of matched marks (:mod:`superintendent.al.mark_agreement`;
    ``how``: spans matched "exact" or by "overlap").
    """
    frame = annotations_long(engine, project)
    if not has_overlap(frame):
        return None
    return agreement_report(frame, project.label_mode, project.options, min_labels=max(2, project.annotations_per_item),
                            top=top, how=how)
