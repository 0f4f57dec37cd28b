"""Review: reviewers' corrected labels, the review list with its filters, one item's full story, final labels."""

from __future__ import annotations

import datetime as dt
import json
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session

from superintendent import serialization
from superintendent.auth import can
from superintendent.labels import consensus, final_label
from superintendent.queue.common import _A, _I, _R, _U, _check_id, _validate
from superintendent.queue.history import NotAllowedError, Revision, RevisionKind, _add_revision
from superintendent.queue.members import check_may_work_in
from superintendent.queue.reads import _annotations_by_item
from superintendent.store.models import Project, utcnow
from superintendent.validation import NotFoundError, ValidationError, check_label


def _check_reviewer(session: Session, project: Project, user_id: int) -> None:
    """The account is read afresh: a role or a membership taken away a moment ago counts at once."""
    row = session.execute(sa.select(_U.c.role, _U.c.active).where(_U.c.id == user_id)).first()
    if row is None or not row.active or not can(row.role, "review"):
        raise NotAllowedError("only an admin or a reviewer may review labels; ask an admin for the reviewer role")
    check_may_work_in(session, user_id, project.id)


def set_review(session: Session, project: Project, reviewer_id: int, item_id: int, value: Any, *,
               now: dt.datetime | None = None) -> bool:
    """Set a finished item's corrected label (it then wins over the consensus); the change is kept in the history.

    Checked first, nothing written otherwise: the label (as in :func:`submit`),
    the reviewer's role (:class:`NotAllowedError`), the item (in the project,
    finished). Returns False when the item already had this reviewed label.
    """
    item_id = _check_id(item_id, "item")
    label = serialization.dumps(_validate(project, value, session=session, item_id=item_id))
    return _write_review(session, project, reviewer_id, item_id, label, now or utcnow())


def clear_review(session: Session, project: Project, reviewer_id: int, item_id: int, *, now: dt.datetime | None = None) -> bool:
    """Remove an item's corrected label (the consensus counts again); kept in the history. False if there was none."""
    return _write_review(session, project, reviewer_id, item_id, None, now or utcnow())


def _write_review(session: Session, project: Project, reviewer_id: int, item_id: int, label: str | None, now: dt.datetime) -> bool:
    item_id, reviewer_id = _check_id(item_id, "item"), _check_id(reviewer_id, "user")
    _check_reviewer(session, project, reviewer_id)
    row = session.execute(
        sa.select(_I.c.project_id, _I.c.done, _I.c.review_value).where(_I.c.id == item_id).with_for_update()
    ).first()  # the locked row's own columns are its latest version: concurrent reviews chain, none is lost
    if row is None or row.project_id != project.id:
        raise NotFoundError(f"item {item_id} is not in project {project.name!r}")
    if label is not None and not row.done:
        raise ValidationError(f"item {item_id} is not finished (it still needs labels); review it once it has all its annotations")
    if row.review_value == label:
        return False
    session.execute(sa.update(_I).where(_I.c.id == item_id).values(
        review_value=label, reviewed_by=None if label is None else reviewer_id, reviewed_at=None if label is None else now))
    _add_revision(session, project, item_id, None, RevisionKind.review, row.review_value, label, changed_by=reviewer_id, now=now)
    return True


@dataclass(frozen=True)
class LabelGiven:
    """One labeller's current label of an item."""

    user_id: int
    username: str
    label: Any
    created_at: dt.datetime
    time_taken: float | None


@dataclass(frozen=True)
class ReviewRow:
    """A finished item as the Review page lists it."""

    item_id: int
    external_id: str
    annotations: list[LabelGiven]
    consensus: Any
    tie: bool
    disagreement: bool
    reviewed: Any = None  # the corrected label, or None
    reviewed_by: str | None = None
    reviewed_at: dt.datetime | None = None

    @property
    def final(self) -> Any:
        """What training and export use: the corrected label, else the consensus."""
        return self.consensus if self.reviewed is None else self.reviewed


@dataclass(frozen=True)
class ReviewPage:
    rows: list[ReviewRow]
    next_after: int | None  # pass as ``after`` for the next page; None when this is the last


@dataclass(frozen=True)
class ItemHistory(ReviewRow):
    data: Any = None
    done: bool = False
    revisions: list[Revision] = field(default_factory=list)


def labellers(session: Session, project: Project) -> list[tuple[int, str]]:
    """(id, user name) of everyone with a label in the project, by name."""
    users = sa.select(_A.c.user_id).where(_A.c.project_id == project.id).distinct().subquery()
    return [(r.id, r.username) for r in session.execute(
        sa.select(_U.c.id, _U.c.username).where(_U.c.id.in_(sa.select(users.c.user_id))).order_by(_U.c.username))]


def _given(session: Session, item_ids: Sequence[int]) -> dict[int, list[LabelGiven]]:
    out: dict[int, list[LabelGiven]] = defaultdict(list)
    if not item_ids:
        return out
    for r in session.execute(
        sa.select(_A.c.item_id, _A.c.user_id, _U.c.username, _A.c.value, _A.c.created_at, _A.c.time_taken)
        .select_from(_A.join(_U, _A.c.user_id == _U.c.id)).where(_A.c.item_id.in_(list(item_ids)))
        .order_by(_A.c.item_id, _A.c.created_at, _A.c.id)
    ):
        out[r.item_id].append(LabelGiven(r.user_id, r.username, serialization.loads(r.value), r.created_at, r.time_taken))
    return out


_REVIEWER = _U.alias("reviewer")
# The reviewer's name comes from a scalar sub-select, so it is read only for the rows a page returns.
_ITEM_FOR_REVIEW = (_I.c.id, _I.c.external_id, _I.c.review_value, _I.c.reviewed_at,
                    sa.select(_REVIEWER.c.username).where(_REVIEWER.c.id == _I.c.reviewed_by).scalar_subquery().label("reviewed_by_name"))


def _review_row(project: Project, item: Any, given: list[LabelGiven]) -> dict[str, Any]:
    values = [g.label for g in given]
    label, tie = consensus(values, project.label_mode) if values else (None, False)
    return dict(item_id=item.id, external_id=item.external_id, annotations=given, consensus=label, tie=tie,
                disagreement=len({serialization.dumps(v) for v in values}) > 1,
                reviewed=None if item.review_value is None else serialization.loads(item.review_value),
                reviewed_by=item.reviewed_by_name if item.review_value is not None else None, reviewed_at=item.reviewed_at)


def _has_label(row: ReviewRow, label: Any) -> bool:
    def holds(value: Any) -> bool:
        return label in value if isinstance(value, list) else value == label
    return any(holds(g.label) for g in row.annotations) or (row.reviewed is not None and holds(row.reviewed))


def _search(text: str) -> sa.ColumnElement[bool]:
    """``text`` (case ignored) is part of the item's external id or of its stored content (the JSON text of its payload)."""
    needle = text.strip().lower()
    return sa.or_(sa.func.lower(_I.c.external_id).contains(needle, autoescape=True),
                  sa.func.lower(_I.c.data).contains(json.dumps(needle)[1:-1], autoescape=True))


def review_items(session: Session, project: Project, *, label: Any = None, labeller_id: int | None = None,
                 disagreement: bool = False, ties: bool = False, unreviewed: bool = False,
                 after: int | None = None, limit: int = 50, newest_first: bool = True, search: str | None = None) -> ReviewPage:
    """One page of the project's finished items for review, by item id (newest first by default).

    Filters: ``label`` (some labeller, or the reviewer, gave it), ``labeller_id``
    (that user labelled the item), ``disagreement`` (the labels differ),
    ``ties`` (the consensus is a tie), ``unreviewed`` (no corrected label yet),
    ``search`` (the text, in any case, is part of the item's external id or
    of its content: the text, a table row's values, an image's file name).
    Pages are keyset pages: pass the previous page's ``next_after`` as
    ``after``; each page reads only as far into the items as it needs.
    """
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= 1000:
        raise ValidationError(f"limit must be a whole number from 1 to 1000; got {limit!r}")
    if label is not None:
        label = _review_filter_label(project, label)
        label = label[0] if project.label_mode == "multi" else label
    # Items are read in id order along the primary key and stop at the page's end. On SQLite, "+ 0" keeps the
    # planner off the (project, external id) index, which would read every item of the project and sort them.
    in_project = (_I.c.project_id + 0 if session.get_bind().dialect.name == "sqlite" else _I.c.project_id) == project.id
    stmt = sa.select(*_ITEM_FOR_REVIEW).where(in_project, _I.c.done)
    annotated = sa.select(_A.c.item_id).where(_A.c.project_id == project.id)
    if unreviewed:
        stmt = stmt.where(_I.c.review_value.is_(None))
    if search is not None and search.strip():
        stmt = stmt.where(_search(search))
    if labeller_id is not None:
        stmt = stmt.where(_I.c.id.in_(annotated.where(_A.c.user_id == _check_id(labeller_id, "user"))))
    if disagreement or ties:  # the labels differ (one aggregate over the project's annotations); ties are picked out below
        stmt = stmt.where(_I.c.id.in_(annotated.group_by(_A.c.item_id).having(sa.func.min(_A.c.value) != sa.func.max(_A.c.value))))
    if label is not None:
        text = serialization.dumps(label)
        if project.label_mode == "multi":  # a cheap pre-filter on the JSON text; the exact test is below
            stmt = stmt.where(sa.or_(_I.c.id.in_(annotated.where(_A.c.value.contains(text, autoescape=True))),
                                     _I.c.review_value.contains(text, autoescape=True)))
        else:
            stmt = stmt.where(sa.or_(_I.c.id.in_(annotated.where(_A.c.value == text)), _I.c.review_value == text))
    order = _I.c.id.desc() if newest_first else _I.c.id
    rows: list[ReviewRow] = []
    cursor = after
    batch = max(limit + 1, 100)
    while len(rows) <= limit:
        page = stmt
        if cursor is not None:
            page = page.where(_I.c.id < cursor if newest_first else _I.c.id > cursor)
        items = session.execute(page.order_by(order).limit(batch)).all()
        given = _given(session, [i.id for i in items])
        for item in items:
            row = ReviewRow(**_review_row(project, item, given.get(item.id, [])))
            if (ties and not row.tie) or (label is not None and not _has_label(row, label)):
                continue
            rows.append(row)
        if len(items) < batch:
            break
        cursor = items[-1].id
    more = len(rows) > limit
    rows = rows[:limit]
    return ReviewPage(rows, rows[-1].item_id if more else None)


def item_history(session: Session, project: Project, item_id: int) -> ItemHistory:
    """Everything about one item for review: its data, each labeller's label and time, consensus,
    corrected label, and every change in order (edits, undos, reviews)."""
    item_id = _check_id(item_id, "item")
    item = session.execute(
        sa.select(*_ITEM_FOR_REVIEW, _I.c.project_id, _I.c.data, _I.c.done).where(_I.c.id == item_id)
    ).first()
    if item is None or item.project_id != project.id:
        raise NotFoundError(f"item {item_id} is not in project {project.name!r}")
    labeller, changer = _U.alias("labeller"), _U.alias("changer")
    revisions = [
        Revision(r.kind, r.labeller, None if r.old_value is None else serialization.loads(r.old_value),
                 None if r.new_value is None else serialization.loads(r.new_value), r.changer, r.changed_at)
        for r in session.execute(
            sa.select(_R.c.kind, labeller.c.username.label("labeller"), _R.c.old_value, _R.c.new_value,
                      changer.c.username.label("changer"), _R.c.changed_at)
            .select_from(_R.outerjoin(labeller, labeller.c.id == _R.c.user_id).outerjoin(changer, changer.c.id == _R.c.changed_by))
            .where(_R.c.item_id == item_id).order_by(_R.c.changed_at, _R.c.id))
    ]
    return ItemHistory(**_review_row(project, item, _given(session, [item_id]).get(item_id, [])),
                       data=serialization.loads(item.data), done=bool(item.done), revisions=revisions)


@dataclass(frozen=True)
class FinalLabel:
    item_id: int
    external_id: str
    label: Any
    source: str  # "review" or "consensus"
    tie: bool
    reviewed_by: str | None
    reviewed_at: dt.datetime | None


def final_labels(session: Session, project: Project) -> list[FinalLabel]:
    """One row per finished item, in item order: the label training uses (reviewed, else consensus)."""
    grouped = _annotations_by_item(session, project, only_done=True)
    out = []
    for item in session.execute(sa.select(*_ITEM_FOR_REVIEW).where(_I.c.project_id == project.id, _I.c.done).order_by(_I.c.id)):
        if item.id not in grouped and item.review_value is None:
            continue
        label, tie = final_label(item.review_value, grouped.get(item.id, []), project.label_mode)
        reviewed = item.review_value is not None
        out.append(FinalLabel(item.id, item.external_id, label, "review" if reviewed else "consensus", tie,
                              item.reviewed_by_name if reviewed else None, item.reviewed_at if reviewed else None))
    return out


@dataclass(frozen=True)
class ItemSummary:
    """One item as the HTTP API lists it."""

    item_id: int
    external_id: str
    data: Any
    done: bool
    n_annotations: int


def list_items(session: Session, project: Project, *, after: int | None = None, limit: int = 50,
               search: str | None = None, done: bool | None = None) -> list[ItemSummary]:
    """Up to ``limit`` items of the project in id order after item id ``after`` (a keyset page), optionally only those
    matching ``search`` (as :func:`review_items`' search) or only finished (``done=True``) or unfinished ones."""
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= 1000:
        raise ValidationError(f"limit must be a whole number from 1 to 1000; got {limit!r}")
    in_project = (_I.c.project_id + 0 if session.get_bind().dialect.name == "sqlite" else _I.c.project_id) == project.id
    stmt = sa.select(_I.c.id, _I.c.external_id, _I.c.data, _I.c.done, _I.c.n_annotations).where(in_project)
    if after is not None:
        stmt = stmt.where(_I.c.id > _check_id(after, "item"))
    if search is not None and search.strip():
        stmt = stmt.where(_search(search))
    if done is not None:
        stmt = stmt.where(_I.c.done if done else sa.not_(_I.c.done))
    return [ItemSummary(r.id, r.external_id, serialization.loads(r.data), bool(r.done), r.n_annotations)
            for r in session.execute(stmt.order_by(_I.c.id).limit(limit))]


def _review_filter_label(project: Project, label: Any) -> Any:
    """The label a review page filters by, checked: an option (of a multi-label list, or marked by a span or box)."""
    if project.label_mode in ("spans", "boxes"):
        return check_label(label, options=project.options, project=project.name)
    return _validate(project, [label] if project.label_mode == "multi" else label)
