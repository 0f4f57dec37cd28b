"""Data in, second half: a :class:`~superintendent.ingest.PreparedImport` written in ONE transaction.

:func:`import_prepared` adds the items (and labels, and named annotators'
annotations) of a checked upload to a project; on any error nothing is
imported. Reading and checking the file is :mod:`superintendent.ingest`'s
job; every statement is the queue's (:func:`superintendent.queue.add_items`,
:func:`~superintendent.queue.import_annotations`,
:func:`~superintendent.queue.set_review`, :mod:`superintendent.queue.transfer`).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session

from superintendent import queue, serialization
from superintendent.auth import ensure_user
from superintendent.ingest.prepared import ImportedAnnotation, PreparedImport
from superintendent.labels import content_ids
from superintendent.queue.bulk import LabelCounts
from superintendent.queue.transfer import external_item_ids, find_user_id
from superintendent.store.db import session_scope
from superintendent.store.models import Project, Role, utcnow
from superintendent.validation import SuperintendentError, ValidationError, check_label

__all__ = ["import_prepared", "write_annotations"]

_CHUNK = 5000


def _check_label(project: Project, value: Any) -> Any:
    return check_label(value, options=project.options, label_mode=project.label_mode, allow_free_text=project.allow_free_text,
                       project=project.name)


def import_prepared(engine: Engine, project: Project | str | int, prepared: PreparedImport,
                    progress: Callable[[float], Any] | None = None, *, n_chunks: int = 20) -> queue.AddResult:
    """Add a prepared upload to ``project`` in ONE transaction: on any error nothing is imported.

    The add is split into about ``n_chunks`` calls of :func:`queue.add_items`
    so ``progress(fraction)`` can report how far it is. Items already in the
    project (same external id) are left as they are. The project's settings
    are read afresh inside the transaction, and every label is checked
    against them before the first row is written.
    """
    items = list(prepared.items)
    n = len(items)
    if prepared.external_ids is not None:
        ids = [str(e) for e in prepared.external_ids]
        if len(ids) != n:
            raise ValidationError(f"external ids must have one entry per item: got {len(ids)} for {n} items")
        dupes = [e for e, c in Counter(ids).items() if c > 1]
        if dupes:
            raise ValidationError(f"external ids must be unique; repeated: {', '.join(map(repr, dupes[:5]))}")
    else:  # the ids add_items would make for the whole upload at once (content hash, '#n' for the n-th repeat)
        ids = content_ids(serialization.dumps(item) for item in items)
    labels = prepared.labels
    paths = prepared.file_paths
    for what, seq in (("labels", labels), ("file_paths", paths)):
        if seq is not None and len(seq) != n:
            raise ValidationError(f"{what} must have one entry per item: got {len(seq)} for {n} items")
    size = max(1, math.ceil(n / max(1, n_chunks)))
    added = present = 0
    counts = LabelCounts()
    with session_scope(engine) as s:
        proj = queue.get_project(s, project.id if isinstance(project, Project) else project)
        if prepared.display_columns is not None:  # how table rows are shown and modelled, for the Label page and retrains
            queue.update_project(s, proj, display_columns=prepared.display_columns, model_columns=prepared.model_columns)
        if labels is not None:
            for row, value in enumerate(labels, 1):
                if value is None:
                    continue
                try:
                    _check_label(proj, value)
                except ValidationError as exc:
                    raise ValidationError(f"item {row}: {exc}; nothing was imported") from None
        if progress is not None:
            progress(0.0)
        for start in range(0, n, size):
            end = min(n, start + size)
            result = queue.add_items(s, proj, items[start:end], external_ids=ids[start:end],
                                     labels=None if labels is None else labels[start:end],
                                     file_paths=None if paths is None else paths[start:end])
            added += result.added
            present += result.already_present
            counts += LabelCounts(result.labels_new, result.labels_changed, result.labels_same)
            if progress is not None:
                progress(end / n)
        if prepared.annotations is not None:  # named annotators (Label Studio, items JSONL): same transaction
            counts += write_annotations(s, proj, ids, prepared.annotations)
        if progress is not None and n == 0:
            progress(1.0)
    return queue.AddResult(added=added, already_present=present, labelled=counts.total,
                           labels_new=counts.new, labels_changed=counts.changed, labels_same=counts.same)


def write_annotations(session: Session, project: Project, external_ids: Sequence[str],
                      annotations: Sequence[Sequence[ImportedAnnotation]]) -> LabelCounts:
    """Store imported annotations (one per user and item) in the caller's transaction; returns how many were new, changed, the same.

    Each annotator is a user of that name, created without a password (so
    unable to log in) when missing. The annotations are stored in bulk by
    :func:`queue.import_annotations`, which checks them against the project's
    settings and marks items done, so a bad label rolls the whole import
    back. An existing annotation of the same user on the item is replaced. A
    review (a corrected label) goes through :func:`queue.set_review` after
    the item's annotations: its reviewer must be a user here who may review.
    """
    if len(external_ids) != len(annotations):
        raise ValidationError(f"annotations must have one list per item: got {len(annotations)} for {len(external_ids)} items")
    wanted = [e for e, anns in zip(external_ids, annotations) if anns]
    ids = external_item_ids(session, project, wanted)
    users: dict[str, int] = {}
    now = utcnow()
    plain: list[queue.ImportedLabel] = []
    where: list[tuple[str, str]] = []
    reviews: list[tuple[str, ImportedAnnotation]] = []
    for ext, anns in zip(external_ids, annotations):
        for ann in anns:
            if ann.review:  # a review needs the item finished first: after all annotations
                reviews.append((ext, ann))
                continue
            if ann.user not in users:
                users[ann.user] = ensure_user(session, ann.user, role=Role.system)
            plain.append(queue.ImportedLabel(ids[ext], users[ann.user], ann.value, ann.created_at or now, ann.time_taken))
            where.append((ext, ann.user))
    counts = LabelCounts()
    for start in range(0, len(plain), _CHUNK):  # bulk, but a bad label still names its item and annotator
        try:
            counts += queue.import_annotations(session, project, plain[start:start + _CHUNK], now=now)
        except SuperintendentError:
            for (ext, user), label in zip(where[start:start + _CHUNK], plain[start:start + _CHUNK]):
                try:
                    _check_label(project, label.value)
                except SuperintendentError as exc:
                    raise ValidationError(f"item {ext!r}, annotation by {user!r}: {exc}; nothing was imported") from None
            raise
    for ext, ann in reviews:
        try:
            reviewer = find_user_id(session, ann.user)
            if reviewer is None:
                raise ValidationError(f"there is no user {ann.user!r} here to have reviewed it; create them (role reviewer) "
                                      "first, or remove the item's \"review\" to import it without the correction")
            queue.set_review(session, project, reviewer, ids[ext], ann.value, now=ann.created_at or now)
        except SuperintendentError as exc:
            raise ValidationError(f"item {ext!r}, review by {ann.user!r}: {exc}; nothing was imported") from None
    return counts
