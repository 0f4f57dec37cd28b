"""Items and labels in and out: import (a file, or a JSON list), list and search, one item with its history, export.

An upload goes through the same code as the Admin page and ``superintendent
import``: :func:`superintendent.ingest.prepare_upload` (same formats, limits
and messages; nothing touches the database until the file passed every check)
then :func:`superintendent.importing.import_prepared` (one transaction: a
failure imports nothing). A body over the upload limit is refused with 413
before it is read whole. An export is :func:`superintendent.export.write_labels`,
written to a temporary file (spilling to disk when large) and sent in chunks.
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Iterator
from typing import IO, Annotated, Literal

import pandas as pd
from fastapi import APIRouter, Depends, File, Form, Query, Request, UploadFile
from fastapi.responses import StreamingResponse

from superintendent import audit, export, importing, ingest, queue
from superintendent.api.common import (Route, PAGE_DEFAULT, PAGE_MAX, ApiError, caller, context, decode_cursor, engine, is_id, jsonable, page,
                                       project_for, require)
from superintendent.api.schemas import ImportOut, ItemDetail, ItemOut, ItemPage, LabelOut, NewItems, RevisionOut
from superintendent.queue.review import ItemSummary, list_items
from superintendent.store import session_scope
from superintendent.tokens import TokenUser
from superintendent.validation import ValidationError

router = APIRouter(tags=["items"], route_class=Route)
Caller = Annotated[TokenUser, Depends(caller)]
CHUNK = 64 * 1024
SPOOL_BYTES = 64 * 1024 * 1024  # an export larger than this is written to a temporary file while it is made
Format = Literal["csv", "parquet", "json", "jsonl", "npy", "npz", "zip", "label-studio", "items-jsonl"]
ExportFormat = Literal["csv", "json", "parquet", "jsonl", "label-studio", "conll", "spacy", "coco", "yolo"]  # export.FORMATS; the last four for spans / boxes projects only


def _columns(text: str | None) -> list[str] | None:
    return None if text is None else [c.strip() for c in text.split(",") if c.strip()]


def _plan(data: bytes, name: str, fmt: str, limits: ingest.ImportLimits, label_column: str | None, id_column: str | None,
          display_columns: str | None, model_columns: str | None) -> ingest.TablePlan | None:
    """A table's column plan as ``superintendent import`` makes it: shown = every column but the label and id columns."""
    asked = (label_column, id_column, display_columns, model_columns)
    if fmt not in ingest.TABLE_FORMATS:
        if any(v is not None for v in asked):
            raise ValidationError(f"column fields apply to tables (CSV, Parquet, JSON, JSON Lines); {name} is read as {fmt}")
        return None
    columns = list(ingest.read_table(data, fmt, limits, name=name).columns)
    display = _columns(display_columns) or [c for c in columns if c not in (label_column, id_column)]
    return ingest.TablePlan(display_columns=display, model_columns=_columns(model_columns) or display, label_column=label_column,
                            id_column=id_column)


def _import(request: Request, user: TokenUser, project_id: int, prepare, what: dict) -> ImportOut:  # noqa: ANN001
    require(user, "upload")
    eng = engine(request)
    with session_scope(eng, write=False) as s:
        project = project_for(s, user, project_id)
    prepared = prepare(project)
    result = importing.import_prepared(eng, project, prepared)
    with session_scope(eng) as s:
        audit.record(s, user.username, audit.AuditAction.data_import, project.name, via="api", added=result.added,
                     already_present=result.already_present, labelled=result.labelled, labels_new=result.labels_new,
                     labels_changed=result.labels_changed, labels_same=result.labels_same, **what)
    return ImportOut.of(result)


@router.post("/projects/{project_id}/items/upload", response_model=ImportOut, status_code=201, summary="Import a data file (admins)")
def upload(request: Request, project_id: int, user: Caller, file: Annotated[UploadFile, File(description="The data file")],
           format: Annotated[Format | None, Form(description="Read the file as this; default: from its name and content")] = None,
           label_column: Annotated[str | None, Form()] = None, id_column: Annotated[str | None, Form()] = None,
           display_columns: Annotated[str | None, Form(description="Comma-separated; default: all but label and id")] = None,
           model_columns: Annotated[str | None, Form(description="Comma-separated; default: the displayed ones")] = None,
           data_key: Annotated[str | None, Form(description="Label Studio: the data key holding the item")] = None,
           from_name: Annotated[str | None, Form(description="Label Studio: the Choices control")] = None) -> ImportOut:
    """The formats of the Admin page's upload, with its limits (413 for a file over ``max_upload_mb``) and its messages.
    Annotators named in Label Studio or items JSON Lines files get import-only accounts."""
    settings = context(request).settings()
    limits = ingest.ImportLimits.from_settings(settings)
    name = file.filename or "upload"
    data = file.file.read(limits.max_bytes + 1)

    def prepare(project):  # noqa: ANN001, ANN202
        try:
            fmt = ingest.detect_format(name, data) if format is None else format
            plan = _plan(data, name, fmt, limits, label_column, id_column, display_columns, model_columns)
            return ingest.prepare_upload(name, data, plan=plan, options=project.options, label_mode=project.label_mode, limits=limits,
                                         upload_dir=settings.upload_dir, fmt=fmt, allow_free_text=project.allow_free_text,
                                         data_key=data_key, from_name=from_name)
        except ValidationError as exc:
            if len(data) > limits.max_bytes:  # prepare_upload's own message says the size and the limit
                raise ApiError(413, str(exc)) from None
            raise

    return _import(request, user, project_id, prepare, {"file": name})


@router.post("/projects/{project_id}/items", response_model=ImportOut, status_code=201, summary="Add items from JSON (admins)")
def add_items(request: Request, project_id: int, body: NewItems, user: Caller) -> ImportOut:
    """Items already in the project (same ``external_id``) are left as they are; labels are checked against the options."""
    given = body.items
    with_ids = [i.external_id is not None for i in given]
    if any(with_ids) and not all(with_ids):
        raise ValidationError("give every item an external_id, or none (then ids are made from the content)")

    def prepare(project):  # noqa: ANN001, ANN202
        labels = [i.label for i in given]
        return ingest.PreparedImport(items=[i.data for i in given], external_ids=[i.external_id for i in given] if all(with_ids) else None,
                                     labels=labels if any(v is not None for v in labels) else None, preview=pd.DataFrame(),
                                     n_rows=len(given))

    return _import(request, user, project_id, prepare, {"items": len(given)})


def _item_out(row: ItemSummary) -> ItemOut:
    return ItemOut(item_id=row.item_id, external_id=row.external_id, data=jsonable(row.data), done=row.done, n_annotations=row.n_annotations)


@router.get("/projects/{project_id}/items", response_model=ItemPage, summary="List and search items (reviewers, admins)")
def items(request: Request, project_id: int, user: Caller, cursor: str | None = None,
          limit: Annotated[int, Query(ge=1, le=PAGE_MAX)] = PAGE_DEFAULT,
          search: Annotated[str | None, Query(max_length=200, description="Text in the item's id or content (any case)")] = None,
          done: Annotated[bool | None, Query(description="true: finished items only; false: unfinished only")] = None) -> dict:
    require(user, "review")
    after = decode_cursor(cursor, is_id)
    with session_scope(engine(request), write=False) as s:
        rows = list_items(s, project_for(s, user, project_id), after=after, limit=limit + 1, search=search, done=done)
    return page([_item_out(r) for r in rows], limit, lambda r: r.item_id)


@router.get("/projects/{project_id}/items/{item_id}", response_model=ItemDetail, summary="One item with its labels and history")
def item(request: Request, project_id: int, item_id: int, user: Caller) -> ItemDetail:
    """404 for an item of another project. For reviewers and admins."""
    require(user, "review")
    with session_scope(engine(request), write=False) as s:
        got = queue.item_history(s, project_for(s, user, project_id), item_id)
    return ItemDetail(
        item_id=got.item_id, external_id=got.external_id, data=jsonable(got.data), done=got.done,
        labels=[LabelOut(user=g.username, label=jsonable(g.label), created_at=g.created_at, time_taken=g.time_taken) for g in got.annotations],
        consensus=jsonable(got.consensus), tie=got.tie, reviewed=jsonable(got.reviewed), reviewed_by=got.reviewed_by,
        revisions=[RevisionOut(kind=str(getattr(r.kind, "value", r.kind)), labeller=r.labeller, old=jsonable(r.old), new=jsonable(r.new),
                               changed_by=r.changed_by, changed_at=r.changed_at) for r in got.revisions])


def _chunks(out: IO[bytes]) -> Iterator[bytes]:
    try:
        while chunk := out.read(CHUNK):
            yield chunk
    finally:
        out.close()


@router.get("/projects/{project_id}/export", summary="Download the labels (admins)",
            responses={200: {"content": {mime: {} for mime in set(export.FORMATS.values())}, "description": "The file"}})
def export_labels(request: Request, project_id: int, user: Caller, format: ExportFormat = "csv",
                  individual: Annotated[bool, Query(description="Tables: one row per annotation beside the consensus")] = False,
                  raw_csv: Annotated[bool, Query(description="CSV: cells as they are (no ' before a formula)")] = False,
                  from_name: Annotated[str, Query(max_length=100, description="Label Studio: the Choices control")] = "label",
                  to_name: Annotated[str | None, Query(max_length=100, description="Label Studio: the object")] = None,
                  image_value: Literal["path", "name"] = "path") -> StreamingResponse:
    """Every format of the Admin page's export: csv, json, parquet (tables), jsonl (items, to import again), label-studio."""
    require(user, "export")
    eng = engine(request)
    with session_scope(eng, write=False) as s:
        project = project_for(s, user, project_id)
    out = tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES)
    try:
        export.write_labels(eng, project, format, out, individual=individual, raw_csv=raw_csv, from_name=from_name, to_name=to_name,
                            image_value=image_value)
        size = out.tell()
        out.seek(0)
        with session_scope(eng) as s:
            audit.record(s, user.username, audit.AuditAction.labels_export, project.name, via="api", format=format,
                         individual=individual, bytes=size)
    except BaseException:
        out.close()
        raise
    slug = re.sub(r"[^A-Za-z0-9]+", "-", project.name).strip("-").lower() or "labels"
    suffix = {"label-studio": "-label-studio", "jsonl": "-items", "coco": "-coco", "yolo": "-yolo", "spacy": "-spacy"}.get(format, "-annotations" if individual else "-labels")
    return StreamingResponse(_chunks(out), media_type=export.FORMATS[format], headers={
        "Content-Disposition": f'attachment; filename="{slug}{suffix}.{export.EXTENSIONS[format]}"', "Content-Length": str(size)})
