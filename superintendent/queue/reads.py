"""Reading results: progress, the labelled data a retrain learns from, every item's label, the annotation log."""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session

from superintendent import serialization
from superintendent.labels import IMPORT_USER
from superintendent.labels import final_label
from superintendent.marks import is_marks
from superintendent.queue.common import _A, _I, _U, _check_id
from superintendent.queue.items import progress_counts
from superintendent.store.models import Project


@dataclass(frozen=True)
class Progress:
    total: int
    labelled: int
    n_annotations: int
    per_class: dict[str, int] = field(default_factory=dict)
    per_user: dict[str, int] = field(default_factory=dict)

    @property
    def fraction(self) -> float:
        return self.labelled / self.total if self.total else 0.0

    @property
    def remaining(self) -> int:
        return self.total - self.labelled


@dataclass(frozen=True)
class LabelledData:
    """Labelled items of a project: consensus label per item, in item order."""

    item_ids: list[int]
    features: list[Any]
    labels: list[Any]
    ties: list[int] = field(default_factory=list)


def progress(session: Session, project: Project) -> Progress:
    """How far a project is: items, labelled items, annotations per class and per user (never cached)."""
    total, labelled = progress_counts(session, project)
    per_class = _per_class(session, project)
    per_user = {name: n for name, n in session.execute(
        sa.select(_U.c.username, sa.func.count()).select_from(_A.join(_U, _A.c.user_id == _U.c.id))
        .where(_A.c.project_id == project.id).group_by(_U.c.username).order_by(_U.c.username)
    )}
    return Progress(total=int(total), labelled=int(labelled), n_annotations=sum(per_user.values()),
                    per_class=dict(sorted(per_class.items())), per_user=per_user)


def options_in_use(session: Session, project: Project, options: list[Any]) -> dict[str, int]:
    """Those of ``options`` that labels use, with how many annotations use each (marks, in a spans or boxes project),
    in the order given: e.g. the options an edit of the project removes, whose labels stay as they were given."""
    if not options:  # nothing to look up (an edit that removes no option): no query
        return {}
    per_class = _per_class(session, project)
    return {str(o): per_class[str(o)] for o in options if per_class[str(o)]}


def _per_class(session: Session, project: Project) -> Counter[str]:
    """Annotations per label (a multi-label annotation counts for each of its labels; marks each for its own)."""
    per_class: Counter[str] = Counter()
    marks = is_marks(project.label_mode)
    for value, n in session.execute(sa.select(_A.c.value, sa.func.count()).where(_A.c.project_id == project.id).group_by(_A.c.value)):
        label = serialization.loads(value)
        if marks:  # a list of spans or boxes: each mark counts for its label
            for mark in label:
                per_class[str(mark["label"])] += n
            continue
        for one in (label if isinstance(label, list) else [label]):
            per_class[str(one)] += n
    return per_class


def _annotations_by_item(session: Session, project: Project, only_done: bool) -> dict[int, list[Any]]:
    stmt = (sa.select(_A.c.item_id, _A.c.value).select_from(_A.join(_I, _A.c.item_id == _I.c.id))
            .where(_A.c.project_id == project.id).order_by(_A.c.item_id, _A.c.created_at, _A.c.id))
    if only_done:
        stmt = stmt.where(_I.c.done)
    grouped: dict[int, list[Any]] = defaultdict(list)
    for item_id, value in session.execute(stmt):
        grouped[item_id].append(serialization.loads(value))
    return grouped


def labelled_data(session: Session, project: Project) -> LabelledData:
    """Features and labels of the project's finished items, in item order: a reviewed label, else the consensus."""
    grouped = _annotations_by_item(session, project, only_done=True)
    ids, texts, labels, ties = [], [], [], []
    for item_id, data, review_value in session.execute(
        sa.select(_I.c.id, _I.c.data, _I.c.review_value).where(_I.c.project_id == project.id, _I.c.done).order_by(_I.c.id)
    ):
        if item_id not in grouped and review_value is None:
            continue
        label, tie = final_label(review_value, grouped.get(item_id, []), project.label_mode)
        ids.append(item_id)
        texts.append(data)
        labels.append(label)
        if tie:
            ties.append(item_id)
    return LabelledData(ids, serialization.loads_rows(texts), labels, ties)


def all_labels(session: Session, project: Project) -> list[Any]:
    """One entry per item in the order added: its reviewed or consensus label, or None while unfinished."""
    grouped = _annotations_by_item(session, project, only_done=True)
    rows = session.execute(sa.select(_I.c.id, _I.c.done, _I.c.review_value).where(_I.c.project_id == project.id).order_by(_I.c.id))
    return [final_label(review, grouped.get(i, []), project.label_mode)[0] if done else None for i, done, review in rows]


@dataclass(frozen=True)
class AnnotationRow:
    item_id: int
    external_id: str
    username: str
    label: Any
    created_at: dt.datetime
    time_taken: float | None


def annotation_log(session: Session, project: Project, *, user_id: int | None = None, include_import: bool = True) -> list[AnnotationRow]:
    """Every annotation of a project (who labelled which item what, when), oldest first."""
    stmt = (sa.select(_A.c.item_id, _I.c.external_id, _U.c.username, _A.c.value, _A.c.created_at, _A.c.time_taken)
            .select_from(_A.join(_I, _A.c.item_id == _I.c.id).join(_U, _A.c.user_id == _U.c.id))
            .where(_A.c.project_id == project.id).order_by(_A.c.created_at, _A.c.id))
    if user_id is not None:
        stmt = stmt.where(_A.c.user_id == _check_id(user_id, "user"))
    if not include_import:
        stmt = stmt.where(_U.c.username != IMPORT_USER)
    return [AnnotationRow(r.item_id, r.external_id, r.username, serialization.loads(r.value), r.created_at, r.time_taken)
            for r in session.execute(stmt)]
