"""Data in, second half: a :class:`~superintendent.ingest.PreparedImport` written in ONE transaction.

:func:`import_prepared` adds the items (and labels, and named annotators'
annotations) of a checked upload to a project; on any error nothing is
imported, and every error is a :class:`ValidationError` saying what and
where. Reading and checking the file is :mod:`superintendent.ingest`'s job;
every statement is the queue's (:func:`superintendent.queue.add_items`,
:func:`~superintendent.queue.import_annotations`,
:func:`~superintendent.queue.set_review`, :mod:`superintendent.queue.transfer`).

Whom a file's annotators become: a name in a file proves nothing, so by
default each annotator gets an import-only account ``_import:<name>``
(:func:`superintendent.labels.import_identity`: system role, no password,
never signs in, a name no person can take). Only the importing admin's
``user_map`` ({name in the file: user name here}) attaches a name's labels
to a person's account. A reviewer's correction (items JSON Lines
``review.by``) is kept only when its reviewer is mapped to a person who may
review; otherwise the import is refused with a message saying so.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session

from superintendent import queue, serialization
from superintendent.auth import HUMAN_ROLES, ensure_user, normalise_username
from superintendent.ingest.checks import check_text, first_text_problem
from superintendent.ingest.prepared import ImportedAnnotation, Prediction, PreparedImport
from superintendent.ingest.tables import TableRows
from superintendent.labels import content_ids, import_identity
from superintendent.marks import check_marks, is_marks
from superintendent.queue.bulk import LabelCounts
from superintendent.queue.transfer import accounts, external_item_ids
from superintendent.store.db import session_scope
from superintendent.store.models import Project, Role, utcnow
from superintendent.validation import SuperintendentError, ValidationError, check_label

__all__ = ["Annotator", "annotators", "import_prepared", "write_annotations"]

_CHUNK = 5000
UserMap = Mapping[str, str | None]  # annotator name in the file -> user name here (None: the import-only account)


@dataclass(frozen=True)
class Annotator:
    """An annotator named in an upload: how many labels and reviews the file gives them, and their import-only account."""

    name: str
    labels: int
    reviews: int

    @property
    def identity(self) -> str:
        return import_identity(self.name)


def annotators(prepared: PreparedImport) -> list[Annotator]:
    """Everyone the upload names as annotator or reviewer, in the order the file first names them."""
    labels: Counter[str] = Counter()
    reviews: Counter[str] = Counter()
    for anns in prepared.annotations or ():
        for ann in anns:
            (reviews if ann.review else labels)[ann.user] += 1
    names = dict.fromkeys(ann.user for anns in prepared.annotations or () for ann in anns)
    return [Annotator(name, labels[name], reviews[name]) for name in names]


_NO_ITEM = object()
# Items added per call of queue.add_items: memory holds one chunk's rows, payloads and COPY buffer at a time (a 1M-row
# table in 20 chunks of 50,000 peaked about 170 MB above the prepared upload).
MAX_ROWS_PER_CHUNK = 10_000


def _check_label(project: Project, value: Any, item: Any = _NO_ITEM) -> Any:
    """``value`` checked against the project's settings; the spans or boxes of a marks project against ``item`` too
    (:func:`superintendent.marks.check_marks`), which must then be given."""
    if is_marks(project.label_mode):
        if item is _NO_ITEM:
            raise ValidationError(f"a {project.label_mode} value is checked against its item, and this one has none here")
        return check_marks(value, project.label_mode, item, project.options)
    return check_label(value, options=project.options, label_mode=project.label_mode, allow_free_text=project.allow_free_text,
                       project=project.name)


def _check_texts(texts: Sequence[str | None], field: str, ids: Sequence[str]) -> None:
    """Ids and paths are stored as text: one with a NUL character or a lone surrogate is refused, naming its item."""
    found = first_text_problem(texts)
    if found is not None:
        row, problem = found
        raise ValidationError(f"item {row + 1} (id {ids[row][:60]!r}): its {field} holds {problem}; remove it from the file "
                              "and upload it again; nothing was imported")


def import_prepared(engine: Engine, project: Project | str | int, prepared: PreparedImport,
                    progress: Callable[[float], Any] | None = None, *, n_chunks: int = 20,
                    user_map: UserMap | None = None) -> queue.AddResult:
    """Add a prepared upload to ``project`` in ONE transaction: on any error nothing is imported.

    The add is split into about ``n_chunks`` calls of :func:`queue.add_items` (more for a big upload: at most
    :data:`MAX_ROWS_PER_CHUNK` rows each) so ``progress(fraction)`` can report how far it is. Items already in the
    project (same external id) are left as they are. The project's settings
    are read afresh inside the transaction, and every label is checked
    against them before the first row is written. ``user_map`` maps
    annotators of the file to people here (see the module's docstring and
    :func:`write_annotations`); the others get import-only accounts.
    A value the database cannot store is a :class:`ValidationError` too
    (checked first where possible, never a database traceback).
    """
    items = prepared.items  # a sequence: table rows are made a chunk at a time (ingest.tables.TableRows)
    n = len(items)
    if prepared.external_ids is not None:
        ids = [str(e) for e in prepared.external_ids]
        if len(ids) != n:
            raise ValidationError(f"external ids must have one entry per item: got {len(ids)} for {n} items")
        dupes = [e for e, c in Counter(ids).items() if c > 1]
        if dupes:
            raise ValidationError(f"external ids must be unique; repeated: {', '.join(map(repr, dupes[:5]))}")
    else:  # the ids add_items would make for the whole upload at once (content hash, '#n' for the n-th repeat)
        try:
            ids = content_ids(serialization.dumps(item) for item in items)
        except UnicodeError as exc:
            raise ValidationError(f"an item holds text that cannot be stored ({str(exc)[:200]}); fix it and import again") from None
    labels = prepared.labels
    paths = prepared.file_paths
    for what, seq in (("labels", labels), ("file_paths", paths)):
        if seq is not None and len(seq) != n:
            raise ValidationError(f"{what} must have one entry per item: got {len(seq)} for {n} items")
    _check_texts(ids, "id", ids)
    if paths is not None:
        _check_texts(paths, "file path", ids)
    try:
        return _write(engine, project, prepared, items, ids, progress, n_chunks, user_map)
    except (RecursionError, UnicodeError) as exc:  # a value the checks let through: still a message, never a traceback
        raise ValidationError(f"cannot store this upload: {type(exc).__name__}: {str(exc)[:200]}; nothing was imported") from None
    except sa.exc.DataError as exc:
        first = str(exc.orig).strip().splitlines()[0][:200] if exc.orig is not None else type(exc).__name__
        raise ValidationError(f"the database refused a value of this upload ({first}); nothing was imported") from None


def _write(engine: Engine, project: Project | str | int, prepared: PreparedImport, items: Sequence[Any], ids: list[str],
           progress: Callable[[float], Any] | None, n_chunks: int, user_map: UserMap | None) -> queue.AddResult:
    n = len(items)
    labels = prepared.labels
    paths = prepared.file_paths
    size = max(1, min(MAX_ROWS_PER_CHUNK, math.ceil(n / max(1, n_chunks))))
    added = present = 0
    counts = LabelCounts()
    with session_scope(engine) as s:
        proj = queue.get_project(s, project.id if isinstance(project, Project) else project)
        if prepared.display_columns is not None:  # how table rows are shown and modelled, for the Label page and retrains
            try:
                queue.update_project(s, proj, display_columns=prepared.display_columns, model_columns=prepared.model_columns)
            except ValidationError as exc:
                shown = ", ".join(repr(c)[:60] for c in prepared.display_columns[:10])
                raise ValidationError(f"the fields of the upload's rows ({shown}) cannot be the project's columns: {exc}; "
                                      "nothing was imported") from None
        if labels is not None:
            marks = is_marks(proj.label_mode)  # only marks are checked against their item: a class label needs no row made
            for row, value in enumerate(labels, 1):
                if value is None:
                    continue
                try:
                    _check_label(proj, value, items[row - 1] if marks else _NO_ITEM)
                except ValidationError as exc:
                    raise ValidationError(f"item {row}: {exc}; nothing was imported") from None
        if prepared.annotations is None and user_map:
            raise ValidationError("the user map names annotators, but this upload has no annotations by named annotators; "
                                  "nothing was imported")
        if progress is not None:
            progress(0.0)
        for start in range(0, n, size):
            end = min(n, start + size)
            chunk = items[start:end]
            result = queue.add_items(s, proj, chunk, external_ids=ids[start:end],
                                     payloads=items.dumps(chunk) if isinstance(items, TableRows) else None,
                                     labels=None if labels is None else labels[start:end],
                                     file_paths=None if paths is None else paths[start:end])
            added += result.added
            present += result.already_present
            counts += LabelCounts(result.labels_new, result.labels_changed, result.labels_same)
            if progress is not None:
                progress(end / n)
        queue.refresh_statistics(s, added)  # the chunks are each below its threshold; the upload may not be
        if prepared.annotations is not None:  # named annotators (Label Studio, items JSONL): same transaction
            counts += write_annotations(s, proj, ids, prepared.annotations, user_map=user_map, items=items)
        if prepared.hints is not None:  # a model's guesses the file carries: hints, until the project's own model makes its own
            write_hints(s, proj, ids, prepared.hints)
        if progress is not None and n == 0:
            progress(1.0)
    return queue.AddResult(added=added, already_present=present, labelled=counts.total,
                           labels_new=counts.new, labels_changed=counts.changed, labels_same=counts.same)


def write_hints(session: Session, project: Project, external_ids: Sequence[str], hints: Sequence[Prediction | None]) -> int:
    """Store the guesses an upload carries as the items' hints (shown where the project shows hints), in the caller's
    transaction; an item that had a hint gets the new one. Returns how many items got one."""
    if len(hints) != len(external_ids):
        raise ValidationError(f"hints must have one entry per item: got {len(hints)} for {len(external_ids)} items")
    given = [(e, h) for e, h in zip(external_ids, hints) if h is not None]
    for _, h in given:
        _check_label(project, h.value)
    ids = external_item_ids(session, project, [e for e, _ in given])
    single = project.label_mode != "multi"
    return queue.set_hints(session, project, [ids[e] for e, _ in given], [h.value for _, h in given], [h.score for _, h in given],
                           [[(h.value, h.score)] if single and h.score is not None else [] for _, h in given])


def _annotator_accounts(session: Session, names: Sequence[str], user_map: UserMap | None) -> tuple[dict[str, int], set[str]]:
    """The account id each annotator's labels go to, and the names the admin mapped to a person.

    A mapped name goes to that person's account (it must exist and be a
    person's: admin, reviewer or labeller). Every other name goes to its
    import-only account, created (system role, no password) when missing;
    a name whose import-only account turns out to be a person's is refused.
    """
    user_map = dict(user_map or {})
    unknown = [k for k in user_map if k not in set(names)]
    if unknown:
        shown = ", ".join(map(repr, names[:10])) + (f" and {len(names) - 10} more" if len(names) > 10 else "") if names else "none"
        raise ValidationError(f"the user map names {unknown[0]!r}, who annotated nothing in this upload; its annotators are "
                              f"{shown}; nothing was imported")
    targets: dict[str, str] = {}
    for name, target in user_map.items():
        if target is None or target == import_identity(name):
            continue
        try:
            targets[name] = normalise_username(target)
        except ValidationError as exc:
            raise ValidationError(f"the user map gives {name!r} the user {target!r}: {exc}; nothing was imported") from None
    identities = {name: import_identity(name) for name in names if name not in targets}
    found = accounts(session, [*targets.values(), *identities.values()])
    out: dict[str, int] = {}
    for name, target in targets.items():
        account = found.get(target)
        if account is None or account.role not in HUMAN_ROLES:
            raise ValidationError(f"the user map gives {name!r} the user {target!r}, who is not a person's account here; map "
                                  "annotators to existing admins, reviewers or labellers (or leave them out to keep their "
                                  "import-only account); nothing was imported")
        out[name] = account.id
    for name, identity in identities.items():
        check_text(identity, f"annotator {name[:60]!r}", "name")
        account = found.get(identity)
        if account is not None and account.role != Role.system.value:
            raise ValidationError(f"the import-only account {identity!r} of annotator {name!r} is a person's account; "
                                  "nothing was imported")
        out[name] = account.id if account is not None else ensure_user(session, identity, role=Role.system)
    return out, set(targets)


def write_annotations(session: Session, project: Project, external_ids: Sequence[str],
                      annotations: Sequence[Sequence[ImportedAnnotation]], *, user_map: UserMap | None = None,
                      items: Sequence[Any] | None = None) -> LabelCounts:
    """Store imported annotations (one per user and item) in the caller's transaction; returns how many were new, changed, the same.

    Each annotator's labels go to their import-only account ``_import:<name>``
    (created without a password, so unable to log in, when missing), unless
    ``user_map`` maps the name to a person here; two names mapped to one
    person may not both have labelled one item. The annotations are stored
    in bulk by :func:`queue.import_annotations`, which checks them against
    the project's settings and marks items done, so a bad label rolls the
    whole import back. An existing annotation of the same account on the
    item is replaced. The spans or boxes of a marks project are checked against their items in the database by the
    queue; ``items`` (the upload's, one per external id) lets a refused one name its item and annotator. A review
    (a corrected label) goes through
    :func:`queue.set_review` after the item's annotations: it is kept only
    when its reviewer is mapped to a person who may review.
    """
    if len(external_ids) != len(annotations):
        raise ValidationError(f"annotations must have one list per item: got {len(annotations)} for {len(external_ids)} items")
    names = list(dict.fromkeys(ann.user for anns in annotations for ann in anns))
    users, mapped = _annotator_accounts(session, names, user_map)
    wanted = [e for e, anns in zip(external_ids, annotations) if anns]
    ids = external_item_ids(session, project, wanted)
    now = utcnow()
    plain: list[queue.ImportedLabel] = []
    where: list[tuple[str, str]] = []
    reviews: list[tuple[str, ImportedAnnotation]] = []
    for ext, anns in zip(external_ids, annotations):
        by_account: dict[int, str] = {}
        for ann in anns:
            if ann.review:  # a review needs the item finished first: after all annotations
                reviews.append((ext, ann))
                continue
            account = users[ann.user]
            if account in by_account:
                raise ValidationError(f"item {ext!r}: the annotators {by_account[account]!r} and {ann.user!r} are mapped to the same "
                                      "user, and one person keeps one annotation per item; map them to different users; "
                                      "nothing was imported")
            by_account[account] = ann.user
            plain.append(queue.ImportedLabel(ids[ext], account, ann.value, ann.created_at or now, ann.time_taken))
            where.append((ext, ann.user))
    counts = LabelCounts()
    for start in range(0, len(plain), _CHUNK):  # bulk, but a bad label still names its item and annotator
        try:
            counts += queue.import_annotations(session, project, plain[start:start + _CHUNK], now=now)
        except SuperintendentError:
            content = dict(zip(external_ids, items)) if items is not None else {}
            for (ext, user), label in zip(where[start:start + _CHUNK], plain[start:start + _CHUNK]):
                if is_marks(project.label_mode) and ext not in content:
                    continue  # the queue's own message stands
                try:
                    _check_label(project, label.value, content.get(ext, _NO_ITEM))
                except SuperintendentError as exc:
                    raise ValidationError(f"item {ext!r}, annotation by {user!r}: {exc}; nothing was imported") from None
            raise
    for ext, ann in reviews:
        try:
            if ann.user not in mapped:
                raise ValidationError(f"a review is kept only when its reviewer is mapped to a user here who may review; map "
                                      f"{ann.user!r} to one (--map-user {ann.user}=NAME on the command line, the annotators "
                                      "table on the Admin page), or remove the item's \"review\" to import it without the correction")
            queue.set_review(session, project, users[ann.user], ids[ext], ann.value, now=ann.created_at or now)
        except SuperintendentError as exc:
            raise ValidationError(f"item {ext!r}, review by {ann.user!r}: {exc}; nothing was imported") from None
    return counts
