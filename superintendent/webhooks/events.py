"""Webhook events and the outbox: what is announced, its JSON body, and the one statement that enqueues it.

An event is written to ``sp_webhook_delivery`` (the outbox) in the
transaction of what it announces: a rolled-back submit enqueues nothing, and
a committed one cannot lose its event. :func:`enqueue` is one
``INSERT ... SELECT`` over the project's hooks that are active, not paused and
subscribed to the event; a project with no hook costs that one statement (an
index probe of ``ix_webhook_project`` that finds nothing), never an HTTP call.
The worker in :mod:`superintendent.webhooks.delivery` sends the rows later.

The queue calls :func:`enqueue_submit` from ``queue.claim.submit``; the
learning layer calls :func:`enqueue_run_finished` where a run is recorded
as finished (``learning.runs.finish_run``).
"""

from __future__ import annotations

import datetime as dt
import enum
import json
import math
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session

from superintendent.store.models import ModelRun, Project, UTCDateTime, Webhook, WebhookDelivery, utcnow

_H = Webhook.__table__
_D = WebhookDelivery.__table__


class Event(str, enum.Enum):
    """The events a hook can subscribe to."""

    annotation_created = "annotation.created"  # a labeller stored a label (a new one, or a changed one)
    item_completed = "item.completed"  # an item got all the annotations its project wants
    retrain_finished = "retrain.finished"  # a model run ended (succeeded, skipped or failed)
    project_completed = "project.completed"  # no item of the project is left to label


EVENTS: tuple[str, ...] = tuple(e.value for e in Event)


class Status(str, enum.Enum):
    """A delivery row's state: waiting (first try or a retry), sent, or given up."""

    pending = "pending"
    delivered = "delivered"
    failed = "failed"


@dataclass(frozen=True)
class Announcement:
    """One event to enqueue: its data, and optionally a SQL condition that must hold for it to be written."""

    event: Event
    data: Mapping[str, Any]
    only_if: sa.ColumnElement[bool] | None = field(default=None, compare=False)


def new_event_id() -> str:
    """A fresh event id (also the ``X-Superintendent-Delivery`` header: receivers de-duplicate on it)."""
    return f"evt_{uuid.uuid4().hex}"


def body(event: Event | str, event_id: str, project_id: int, project_name: str, when: dt.datetime, data: Mapping[str, Any]) -> str:
    """The JSON body POSTed for one event (the same bytes are signed)."""
    return json.dumps({"event": Event(event).value, "id": event_id, "time": when.astimezone(dt.timezone.utc).isoformat(),
                       "project": {"id": project_id, "name": project_name}, "data": dict(data)},
                      separators=(",", ":"), ensure_ascii=False, allow_nan=False, default=str)


def subscribed(event: Event) -> sa.ColumnElement[bool]:
    """Hooks that take ``event``: ``events`` holds a JSON list of names, matched with its quotes."""
    return _H.c.events.like(f'%"{event.value}"%')


def enqueue(session: Session, project: Project, announcements: Sequence[Announcement], *, now: dt.datetime | None = None) -> None:
    """Write a delivery row per announcement and per listening hook, in the caller's transaction: one statement."""
    if not announcements:
        return
    now = now or utcnow()
    branches = []
    for a in announcements:
        text = body(a.event, event_id := new_event_id(), project.id, project.name, now, a.data)
        where = [_H.c.project_id == project.id, _H.c.active, _H.c.paused_at.is_(None), subscribed(a.event)]
        if a.only_if is not None:
            where.append(a.only_if)
        branches.append(sa.select(_H.c.id, sa.literal(a.event.value, sa.String), sa.literal(event_id, sa.String),
                                  sa.literal(text, sa.Text), sa.literal(Status.pending.value, sa.String),
                                  sa.literal(0, sa.Integer), sa.literal(now, UTCDateTime()), sa.literal(now, UTCDateTime()))
                        .where(*where))
    rows = branches[0] if len(branches) == 1 else sa.union_all(*branches)
    session.execute(sa.insert(_D).from_select(["webhook_id", "event", "event_id", "payload", "status", "attempts",
                                               "next_attempt_at", "created_at"], rows))


def enqueue_submit(session: Session, project: Project, *, item_id: int, external_id: str, username: str, label: str,
                   previous: str | None, completed: bool, rest_done: sa.ColumnElement[bool], now: dt.datetime) -> None:
    """A submit's events: ``annotation.created``; with ``completed`` (this label gave the item its last wanted
    annotation) ``item.completed``, and ``project.completed`` if ``rest_done`` (no other item is left to label).

    ``label`` and ``previous`` are the stored JSON texts of the new label and of the user's earlier one (None if none).
    """
    item = {"item_id": item_id, "external_id": external_id}
    announce = [Announcement(Event.annotation_created, {**item, "label": json.loads(label), "user": username,
                                                        "previous_label": None if previous is None else json.loads(previous)})]
    if completed:
        announce.append(Announcement(Event.item_completed, {**item, "annotations": project.annotations_per_item}))
        announce.append(Announcement(Event.project_completed, {"last_item_id": item_id, "last_external_id": external_id},
                                     only_if=rest_done))
    enqueue(session, project, announce, now=now)


def _finite(x: float | None) -> float | None:
    return None if x is None or not math.isfinite(x) else float(x)


def enqueue_run_finished(session: Session, run: ModelRun) -> None:
    """``retrain.finished`` for a run just recorded as finished (in the transaction that records it)."""
    project = session.get(Project, run.project_id)
    if project is None:
        return
    message = (run.message or "").strip().splitlines()
    enqueue(session, project, [Announcement(Event.retrain_finished, {
        "run_id": run.id, "status": run.status, "n_labels": run.n_labels, "n_ranked": run.n_ranked,
        "score_mean": _finite(run.score_mean), "score_std": _finite(run.score_std), "acquisition_function": run.acquisition_function,
        "started_at": run.started_at.isoformat() if run.started_at else None,
        "finished_at": run.finished_at.isoformat() if run.finished_at else None,
        "message": message[0] if message else None,  # the first line only: a failed run's traceback stays on the server
    })], now=run.finished_at)
