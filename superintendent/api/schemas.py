"""The shapes of request bodies and answers: pydantic models, so a bad body is a 422 naming each field, and the
OpenAPI description (``/api/v1/openapi.json``) documents every one."""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from superintendent import queue
from superintendent.api.common import jsonable
from superintendent.store import ModelRun, Project


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PredictedMark(Strict):
    """One predicted span (``start``, ``end``) or box (``x``, ``y``, ``width``, ``height``), its label and score."""

    label: Any = Field(description="One of the project's options")
    score: float | None = Field(default=None, ge=0, le=1, description="How sure the model is of this mark (default 1)")
    start: int | None = Field(default=None, description="Spans: first character (offset into the item's text)")
    end: int | None = Field(default=None, description="Spans: end character, exclusive")
    text: str | None = Field(default=None, description="Spans, optional: the covered characters, checked against the item")
    x: float | None = Field(default=None, description="Boxes: left edge in image pixels")
    y: float | None = Field(default=None, description="Boxes: top edge in image pixels (origin top left)")
    width: float | None = Field(default=None, description="Boxes: width in pixels")
    height: float | None = Field(default=None, description="Boxes: height in pixels")


class Error(BaseModel):
    error: str = Field(description="What went wrong and what to do, in one line.")
    fields: list[dict[str, str]] | None = Field(default=None, description="422: each bad field and its message.")
    error_id: str | None = Field(default=None, description="500: the id of the server log entry.")


class ProjectOut(BaseModel):
    id: int
    name: str
    data_type: str
    label_mode: str
    options: list[Any]
    allow_free_text: bool
    annotations_per_item: int
    lease_seconds: int
    model_preset: str | None
    acquisition_function: str
    show_hints: bool
    guidelines: str
    option_descriptions: dict[str, str]
    archived: bool
    created_at: dt.datetime | None

    @classmethod
    def of(cls, p: Project) -> ProjectOut:
        return cls(**{name: getattr(p, name) for name in cls.model_fields})


class ProjectPage(BaseModel):
    data: list[ProjectOut]
    next_cursor: str | None


class ProgressOut(BaseModel):
    total: int = Field(description="Items in the project.")
    labelled: int = Field(description="Items with all the labels they need.")
    remaining: int
    n_annotations: int
    per_class: dict[str, int]
    per_user: dict[str, int]


class TaskOut(BaseModel):
    """An item handed to the caller, reserved for them until ``lease_expires_at``."""

    item_id: int
    external_id: str
    data: Any
    lease_expires_at: dt.datetime
    hint: Any = None
    hint_confidence: float | None = None
    hint_top: list[tuple[Any, float]] | None = None

    @classmethod
    def of(cls, task: queue.Task | None) -> TaskOut | None:
        if task is None:
            return None
        return cls(item_id=task.item_id, external_id=task.external_id, data=jsonable(task.data), lease_expires_at=task.lease_expires_at,
                   hint=jsonable(task.hint), hint_confidence=task.hint_confidence,
                   hint_top=None if task.hint_top is None else [(jsonable(label), p) for label, p in task.hint_top])


class Next(BaseModel):
    task: TaskOut | None = Field(description="The item to label now; null when nothing is left for you.")
    undone: bool = Field(default=False, description="undo: whether a label was taken back.")


class Submit(Strict):
    item_id: int = Field(description="The item labelled (the task's item_id).")
    value: Any = Field(description="The label: one of the project's options (a list of them in a multi-label project).")
    time_taken: float | None = Field(default=None, ge=0, description="Seconds spent; default: since the item was handed out.")


class ItemRef(Strict):
    item_id: int


class MaybeItem(Strict):
    item_id: int | None = Field(default=None, description="Release this item only; default: every item you hold here.")


class NewItem(Strict):
    data: Any = Field(description="The item: a text, a table row (an object), a list of numbers, ...")
    external_id: str | None = Field(default=None, max_length=300, description="Its id; default: made from the content.")
    label: Any = Field(default=None, description="A label it already has (stored as the import's), or null.")


class NewItems(Strict):
    items: list[NewItem] = Field(min_length=1, description="The items to add; items already there (same id) are left as they are.")


class ImportOut(BaseModel):
    added: int
    already_present: int
    labelled: int
    labels_new: int
    labels_changed: int
    labels_same: int
    summary: str

    @classmethod
    def of(cls, r: queue.AddResult) -> ImportOut:
        return cls(added=r.added, already_present=r.already_present, labelled=r.labelled, labels_new=r.labels_new,
                   labels_changed=r.labels_changed, labels_same=r.labels_same, summary=r.describe())


class LabelOut(BaseModel):
    user: str
    label: Any
    created_at: dt.datetime | None = None
    time_taken: float | None = None


class ItemOut(BaseModel):
    item_id: int
    external_id: str
    data: Any
    done: bool
    n_annotations: int


class ItemPage(BaseModel):
    data: list[ItemOut]
    next_cursor: str | None


class RevisionOut(BaseModel):
    kind: str
    labeller: str | None
    old: Any
    new: Any
    changed_by: str | None
    changed_at: dt.datetime | None


class ItemDetail(BaseModel):
    item_id: int
    external_id: str
    data: Any
    done: bool
    labels: list[LabelOut]
    consensus: Any
    tie: bool
    reviewed: Any
    reviewed_by: str | None
    revisions: list[RevisionOut]


class RunOut(BaseModel):
    id: int
    status: str
    started_at: dt.datetime | None
    finished_at: dt.datetime | None
    n_labels: int
    n_ranked: int
    score_mean: float | None
    score_std: float | None
    acquisition_function: str
    worker: str
    message: str | None

    @classmethod
    def of(cls, r: ModelRun) -> RunOut:
        return cls(**{name: getattr(r, name) for name in cls.model_fields})


class RunPage(BaseModel):
    data: list[RunOut]
    next_cursor: str | None


class Retrained(BaseModel):
    run: RunOut | None = Field(description="The run this request made; null if another retrain of the project was running.")
