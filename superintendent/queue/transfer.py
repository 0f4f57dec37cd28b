"""Reads and lookups for moving a project's data in and out (imports and exports); the SQL they need, nothing else.

* :func:`external_item_ids`: the ids of items known by their external ids
  (an import storing annotations for the items it just added);
* :func:`find_user_id`, :func:`accounts` and :func:`user_emails`: annotators
  by name (an import checks whom its annotators become);
* :func:`project_snapshot`: every item of a project with its annotations
  and final label, read in the caller's (read-only) transaction.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session

from superintendent import serialization
from superintendent.labels import final_label
from superintendent.queue.common import _A, _I, _U
from superintendent.queue.reads import AnnotationRow, annotation_log
from superintendent.queue.review import final_labels
from superintendent.store.models import Project

__all__ = ["Account", "ItemRecord", "accounts", "count_items", "external_item_ids", "find_user_id", "iter_snapshot", "project_snapshot",
           "user_emails"]

_CHUNK = 5000


def external_item_ids(session: Session, project: Project, external_ids: Sequence[str]) -> dict[str, int]:
    """The ids of the project's items with these external ids (those not in the project are left out)."""
    out: dict[str, int] = {}
    for start in range(0, len(external_ids), _CHUNK):
        chunk = list(external_ids[start:start + _CHUNK])
        out.update(session.execute(sa.select(_I.c.external_id, _I.c.id)
                                   .where(_I.c.project_id == project.id, _I.c.external_id.in_(chunk))).all())
    return out


def find_user_id(session: Session, username: str) -> int | None:
    """The id of the user named exactly ``username``, or None."""
    return session.execute(sa.select(_U.c.id).where(_U.c.username == username)).scalar_one_or_none()


@dataclass(frozen=True)
class Account:
    """Who a user name is: its id, role and whether it is active."""

    id: int
    username: str
    role: str
    active: bool


def accounts(session: Session, usernames: Iterable[str]) -> dict[str, Account]:
    """The accounts named exactly so, by name (names that are no account are left out)."""
    names = sorted(set(usernames))
    out: dict[str, Account] = {}
    for start in range(0, len(names), _CHUNK):
        rows = session.execute(sa.select(_U.c.id, _U.c.username, _U.c.role, _U.c.active)
                               .where(_U.c.username.in_(names[start:start + _CHUNK])))
        out.update({r.username: Account(r.id, r.username, r.role, bool(r.active)) for r in rows})
    return out


def user_emails(session: Session, usernames: Iterable[str]) -> dict[str, str]:
    """The stored e-mail of each of these users ('' when they gave none; users not found are left out)."""
    names = sorted(set(usernames))
    if not names:
        return {}
    return {u: e or "" for u, e in session.execute(sa.select(_U.c.username, _U.c.email).where(_U.c.username.in_(names)))}


@dataclass
class ItemRecord:
    """One item with everything an export writes: data, every annotation (oldest first) and the final label."""

    item_id: int
    external_id: str
    data: Any
    file_path: str | None
    label: Any = None  # the item's label: a reviewer's correction, else the consensus; None while unfinished
    tie: bool = False
    done: bool = False
    annotations: list[AnnotationRow] = field(default_factory=list)
    reviewed_by: str | None = None  # set when ``label`` is a reviewer's correction
    reviewed_at: dt.datetime | None = None


def project_snapshot(session: Session, project: Project) -> list[ItemRecord]:
    """Every item of the project in id order, with its annotations and final label (read them in one transaction)."""
    rows = session.execute(sa.select(_I.c.id, _I.c.external_id, _I.c.data, _I.c.file_path)
                           .where(_I.c.project_id == project.id).order_by(_I.c.id)).all()
    log = annotation_log(session, project)
    finished = final_labels(session, project)
    records = {r.id: ItemRecord(r.id, r.external_id, serialization.loads(r.data), r.file_path) for r in rows}
    for ann in log:
        if ann.item_id in records:
            records[ann.item_id].annotations.append(ann)
    for final in finished:
        rec = records[final.item_id]
        rec.label, rec.tie, rec.done = final.label, final.tie, True
        if final.source == "review":
            rec.reviewed_by, rec.reviewed_at = final.reviewed_by, final.reviewed_at
    return list(records.values())


def count_items(session: Session, project: Project) -> int:
    """How many items the project holds (an export's progress bar counts against it)."""
    return int(session.execute(sa.select(sa.func.count()).select_from(_I).where(_I.c.project_id == project.id)).scalar_one())


def iter_snapshot(session: Session, project: Project, batch_size: int = 2000) -> Iterator[list[ItemRecord]]:
    """Every item of the project in id order, as :func:`project_snapshot` gives them, ``batch_size`` items at a time.

    Keyset pages (``id > last``): one batch of items, their annotations and
    reviews in memory at a time, however large the project. Call it inside
    one read-only transaction so the batches are one snapshot.
    """
    reviewer = _U.alias("reviewer")
    last = 0
    while True:
        rows = session.execute(
            sa.select(_I.c.id, _I.c.external_id, _I.c.data, _I.c.file_path, _I.c.done, _I.c.review_value, _I.c.reviewed_at,
                      reviewer.c.username.label("reviewed_by_name"))
            .select_from(_I.outerjoin(reviewer, reviewer.c.id == _I.c.reviewed_by))
            .where(_I.c.project_id == project.id, _I.c.id > last).order_by(_I.c.id).limit(batch_size)).all()
        if not rows:
            return
        records = {r.id: ItemRecord(r.id, r.external_id, serialization.loads(r.data), r.file_path) for r in rows}
        anns = session.execute(
            sa.select(_A.c.item_id, _I.c.external_id, _U.c.username, _A.c.value, _A.c.created_at, _A.c.time_taken)
            .select_from(_A.join(_I, _A.c.item_id == _I.c.id).join(_U, _A.c.user_id == _U.c.id))
            .where(_A.c.project_id == project.id, _A.c.item_id.in_(list(records))).order_by(_A.c.created_at, _A.c.id))
        for a in anns:
            records[a.item_id].annotations.append(AnnotationRow(a.item_id, a.external_id, a.username, serialization.loads(a.value),
                                                                a.created_at, a.time_taken))
        for r in rows:
            rec = records[r.id]
            if not r.done or (not rec.annotations and r.review_value is None):
                continue
            rec.label, rec.tie = final_label(r.review_value, [a.label for a in rec.annotations], project.label_mode)
            rec.done = True
            if r.review_value is not None:
                rec.reviewed_by, rec.reviewed_at = r.reviewed_by_name, r.reviewed_at
        yield list(records.values())
        last = rows[-1].id
