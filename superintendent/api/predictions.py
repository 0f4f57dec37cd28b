"""Predictions from a model outside the app (a detector, an LLM, a model trained on a GPU box), stored as hints.

Each prediction names an item (``item_id`` or ``external_id``) and gives
per-label probabilities or a label with a confidence (classification
projects), or ``marks`` (spans and boxes projects: the item's spans or boxes,
each with a ``score`` from 0 to 1, checked against the item as a labeller's
marks are: :func:`superintendent.marks.check_marks`). They become the items'
hints (the guess, its confidence and the top guesses labellers see when the
project shows hints; for marks: the marks pre-filled, the item's lowest mark
score, each mark's label and score), exactly as an in-app retrain stores its
own. A project without an in-app model also takes them as the acquisition
input: the items are put in the order the project's acquisition function
gives (:func:`superintendent.al.acquisition.acquisition_scores`), or, for
marks, by their lowest mark score, least sure first
(:mod:`superintendent.learning.mark_hints`), ahead of the rest. The model's
name and version are kept in the audit log entry of the upload; the next
in-app retrain, if any, replaces the hints.
"""

from __future__ import annotations

from typing import Annotated, Any

import numpy as np
from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field, model_validator
from sqlalchemy.engine import Engine

from superintendent import audit, queue
from superintendent.al.acquisition import acquisition_scores, visiting_order
from superintendent.api.common import Route, caller, engine, project_for, require
from superintendent.api.schemas import PredictedMark, Strict
from superintendent.learning.mark_hints import hint_of, lowest_first, lowest_score
from superintendent.learning.presets import has_in_app_model
from superintendent.marks import SPANS, check_marks, is_marks
from superintendent.queue.priorities import lowest_priority, set_hints
from superintendent.store import Project, session_scope
from superintendent.tokens import TokenUser
from superintendent.validation import ValidationError, check_label

router = APIRouter(tags=["predictions"], route_class=Route)
Caller = Annotated[TokenUser, Depends(caller)]
TOP = 3  # top guesses kept per item, as a retrain keeps


class Prediction(Strict):
    item_id: int | None = None
    external_id: str | None = Field(default=None, max_length=300)
    probabilities: dict[str, float] | None = Field(default=None, description="{label: probability}; they may sum to less than 1")
    label: Any = Field(default=None, description="The guess, if no probabilities are given")
    confidence: float | None = Field(default=None, ge=0, le=1, description="With ``label``: how sure the model is (default 1)")
    marks: list[PredictedMark] | None = Field(default=None, max_length=1000, description=(
        "Spans and boxes projects: the item's predicted spans or boxes, each with a score (empty: nothing to mark)"))

    @model_validator(mode="after")
    def _one_of_each(self) -> Prediction:
        if (self.item_id is None) == (self.external_id is None):
            raise ValueError("name the item by item_id or by external_id (one of the two)")
        if self.marks is not None:
            if self.probabilities is not None or self.label is not None or self.confidence is not None:
                raise ValueError("give marks (spans and boxes projects) or probabilities or a label, not several")
            return self
        if (self.probabilities is None) == (self.label is None):
            raise ValueError("give probabilities or a label (one of the two), or marks for a spans or boxes project")
        if self.probabilities is not None:
            values = list(self.probabilities.values())
            if not values or any(not 0 <= p <= 1 for p in values) or sum(values) > 1 + 1e-6:
                raise ValueError("probabilities must be between 0 and 1 and sum to at most 1, for at least one label")
        return self


class Predictions(Strict):
    model: str = Field(min_length=1, max_length=100, description="The model's name, e.g. 'resnet50-finetuned'")
    version: str | None = Field(default=None, max_length=100)
    predictions: list[Prediction] = Field(min_length=1, max_length=100_000)


class Stored(BaseModel):
    stored: int = Field(description="Items given the model's guesses")
    reordered: bool = Field(description="Whether the queue order follows them (the project has no in-app model)")


def _guesses(project: Project, p: Prediction) -> list[tuple[Any, float]]:
    """The prediction's labels, checked against the project's options, with their probabilities, most likely first."""
    def label(value: Any) -> Any:
        return check_label(value, options=project.options, allow_free_text=project.allow_free_text, project=project.name)

    if p.probabilities is not None:
        pairs = [(label(k), float(v)) for k, v in p.probabilities.items()]
    else:
        pairs = [(label(p.label), 1.0 if p.confidence is None else float(p.confidence))]
    return sorted(pairs, key=lambda pair: -pair[1])


def _marks(project: Project, p: Prediction, data: Any, where: str) -> list[dict[str, Any]]:
    """The prediction's marks checked against the item (:func:`superintendent.marks.check_marks`), each with its score."""
    if p.marks is None:
        raise ValidationError(f"{where}: project {project.name!r} is a {project.label_mode} project: send marks, a list of "
                              f"{project.label_mode} with a score each, not a label or probabilities; nothing was stored")
    given = [m.model_dump(exclude_none=True) for m in p.marks]
    if project.label_mode == SPANS:  # the check sorts spans by position: sort first, so each score stays with its span
        given.sort(key=lambda m: (m.get("start", 0), m.get("end", 0)))
    try:
        checked = check_marks([{k: v for k, v in m.items() if k != "score"} for m in given], project.label_mode, data, project.options)
    except ValidationError as exc:
        raise ValidationError(f"{where}: {exc}; nothing was stored") from None
    return [{**mark, "score": float(m.get("score", 1.0))} for mark, m in zip(checked, given)]


def _item_ids(session, project: Project, given: list[Prediction]) -> list[int]:  # noqa: ANN001
    by_external = queue.external_item_ids(session, project, [p.external_id for p in given if p.external_id is not None])
    known = set(queue.items_data(session, project, [p.item_id for p in given if p.item_id is not None]))
    missing = [p.external_id if p.item_id is None else p.item_id for p in given
               if (p.item_id is None and p.external_id not in by_external) or (p.item_id is not None and p.item_id not in known)]
    if missing:
        raise ValidationError(f"{len(missing)} prediction(s) name no item of project {project.name!r}, e.g. "
                              f"{', '.join(map(repr, missing[:5]))}; nothing was stored")
    ids = [by_external[p.external_id] if p.item_id is None else p.item_id for p in given]
    if len(set(ids)) != len(ids):
        raise ValidationError("an item has more than one prediction; send one per item; nothing was stored")
    return ids


def _order(project: Project, guesses: list[list[tuple[Any, float]]]) -> np.ndarray:
    """The visiting order of the items under the project's acquisition function, from their probabilities over its options
    (a label given alone has its confidence, the rest spread evenly over the other options)."""
    options = list(project.options) or sorted({str(g) for gs in guesses for g, _ in gs})
    index = {str(o): i for i, o in enumerate(options)}
    proba = np.zeros((len(guesses), max(1, len(options))))
    for row, gs in enumerate(guesses):
        for label, p in gs:
            proba[row, index[str(label)]] = p
        rest = 1.0 - proba[row].sum()
        free = proba[row] == 0
        if rest > 0 and free.any():
            proba[row, free] = rest / free.sum()
    return visiting_order(acquisition_scores(project.acquisition_function, proba), shuffle_prop=project.shuffle_prop, rng=0)


@router.post("/projects/{project_id}/predictions", response_model=Stored, summary="Store an outside model's predictions (admins)")
def predictions(request: Request, project_id: int, body: Predictions, user: Caller) -> Stored:
    """Shown as hints where the project shows hints; the queue order follows them when the project has no in-app model."""
    return store_predictions(engine(request), user, project_id, body)


def store_predictions(eng: Engine, user: TokenUser, project_id: int, body: Predictions) -> Stored:
    """The route's work, for any caller that has checked who ``user`` is: all the predictions checked, then stored
    (hints, and the queue order where the project has no in-app model), or none with a message."""
    require(user, "retrain")
    with session_scope(eng) as s:
        project = project_for(s, user, project_id)
        ids = _item_ids(s, project, body.predictions)
        reorder = not has_in_app_model(project)
        if is_marks(project.label_mode):
            data = queue.items_data(s, project, ids)
            marks = [_marks(project, p, data[i], f"prediction {n + 1} (item {p.external_id or i!r})")
                     for n, (p, i) in enumerate(zip(body.predictions, ids))]
            hints, tops = map(list, zip(*(hint_of(m) for m in marks)))
            confidence = [lowest_score(m) for m in marks]
        else:
            if (given := next((n for n, p in enumerate(body.predictions) if p.marks is not None), None)) is not None:
                raise ValidationError(f"prediction {given + 1}: project {project.name!r} gives one label per item: send "
                                      "probabilities or a label, not marks; nothing was stored")
            guesses = [_guesses(project, p) for p in body.predictions]
            hints, confidence, tops = [g[0][0] for g in guesses], [g[0][1] for g in guesses], [g[:TOP] for g in guesses]
        if reorder:
            order = (lowest_first(confidence, shuffle_prop=project.shuffle_prop, rng=0) if is_marks(project.label_mode)
                     else _order(project, guesses))
            floor = lowest_priority(s, project)
            priorities = min(0.0, floor if floor is not None else 0.0) - len(order) + np.arange(len(order), dtype=float)
        else:
            set_hints(s, project, ids, hints, confidence, tops)
        audit.record(s, user.username, audit.AuditAction.model_retrain, project.name, via="api", external_model=body.model,
                     version=body.version, predictions=len(ids))
    if reorder:  # the queue's bulk rewrite, in short transactions of its own (labellers never wait on it)
        queue.reprioritise(eng, project, np.asarray(ids)[order], priorities, hints=[hints[i] for i in order],
                           confidences=np.asarray(confidence)[order], top_guesses=[tops[i] for i in order])
    return Stored(stored=len(ids), reordered=reorder)
