"""Labelling over HTTP: next (a lease), submit (and the next item, in the same transaction), skip, undo, release.

Each is one :func:`superintendent.queue.act` in one transaction, exactly as the
Label page's buttons (:mod:`superintendent.app.label_view`): the caller's right
to work in the project is read afresh inside it, and a lost connection runs it
again where that is safe (a claim, submit, skip or release; an undo is not run
twice). So the API hands out no item twice and stores each label once, on
SQLite and PostgreSQL alike.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request

from superintendent import queue
from superintendent.api.common import Route, caller, engine, project_for, require
from superintendent.api.schemas import ItemRef, MaybeItem, Next, Submit, TaskOut
from superintendent.queue import Action
from superintendent.store.db import run_transaction
from superintendent.tokens import TokenUser

router = APIRouter(tags=["labelling"], route_class=Route)
Caller = Annotated[TokenUser, Depends(caller)]
RETRIES = 3  # as the Label page: a lost connection is tried again this often


def _act(request: Request, user: TokenUser, project_id: int, action: Action, *, item_id: int | None = None, value: Any = None,
         time_taken: float | None = None) -> queue.Outcome:
    require(user, "label")

    def transaction(s):  # noqa: ANN001, ANN202 - the whole transaction, run again after a lost connection
        # giving an item back is always allowed (as on the Label page); anything else needs the right to work here now
        project = project_for(s, user, project_id, check_member=action is not Action.release)
        return queue.act(s, project, user.user_id, action, item_id=item_id, value=value, time_taken=time_taken)

    return run_transaction(engine(request), transaction, retries=RETRIES, idempotent=action is not Action.undo)


def _next(outcome: queue.Outcome) -> Next:
    return Next(task=TaskOut.of(outcome.task), undone=outcome.undone)


@router.post("/projects/{project_id}/next", response_model=Next, summary="The item to label (the one you hold, else the next)")
def next_item(request: Request, project_id: int, user: Caller) -> Next:
    """Leases an item to you for the project's ``lease_seconds``; asking again hands back the same item while you hold it."""
    return _next(_act(request, user, project_id, Action.claim))


@router.post("/projects/{project_id}/submit", response_model=Next, summary="Store your label, get the next item")
def submit(request: Request, project_id: int, body: Submit, user: Caller) -> Next:
    """The label must be one of the project's options (422 otherwise); labelling an item again replaces your label."""
    return _next(_act(request, user, project_id, Action.submit, item_id=body.item_id, value=body.value, time_taken=body.time_taken))


@router.post("/projects/{project_id}/skip", response_model=Next, summary="Pass over an item, get the next")
def skip(request: Request, project_id: int, body: ItemRef, user: Caller) -> Next:
    """The item is released and never handed to you again."""
    return _next(_act(request, user, project_id, Action.skip, item_id=body.item_id))


@router.post("/projects/{project_id}/undo", response_model=Next, summary="Take back your last label")
def undo(request: Request, project_id: int, user: Caller) -> Next:
    """Your latest label in the project is removed (kept in the item's history) and its item is leased to you again;
    409 if someone else holds that item right now."""
    return _next(_act(request, user, project_id, Action.undo))


@router.post("/projects/{project_id}/release", response_model=Next, summary="Give back what you hold")
def release(request: Request, project_id: int, user: Caller, body: MaybeItem | None = None) -> Next:
    """Ends your lease on the item given, or on every item you hold in the project; ``task`` is always null."""
    return _next(_act(request, user, project_id, Action.release, item_id=None if body is None else body.item_id))
