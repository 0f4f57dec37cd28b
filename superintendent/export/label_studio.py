"""Labels out as Label Studio tasks (JSON): one task per item, one annotation per annotator, ready for Label Studio's import.

Class labels are ``choices`` results. A spans project's annotation is one ``labels`` result per span (``value``:
``start``, ``end``, ``text``, ``labels: [label]``; the labelling config ``<Labels name="label" toName="text">``);
a boxes project's is one ``rectanglelabels`` result per box, its ``value`` ``x``, ``y``, ``width``, ``height`` in
percent of the image's width and height (Label Studio's unit: ``100 * pixels / image size``, not rounded) with
``rotation: 0`` and ``rectanglelabels: [label]``, beside the image's ``original_width`` / ``original_height`` in
pixels. An annotation with nothing marked has an empty ``result``. :mod:`superintendent.ingest.label_studio` reads
all of these back.

The review (a reviewer's corrected label) is not carried: Label Studio has no
place for it; the items JSON Lines export keeps it.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from sqlalchemy.engine import Engine
from sqlmodel import Session

from superintendent import serialization
from superintendent.export.common import iso
from superintendent.labels import file_annotator
from superintendent.marks import BOXES, SPANS, image_size, item_text
from superintendent.queue.transfer import ItemRecord, count_items, iter_snapshot, user_emails
from superintendent.store.db import session_scope
from superintendent.store.models import Project
from superintendent.validation import ValidationError

__all__ = ["DEFAULT_FROM_NAME", "EMAIL_DOMAIN", "export_label_studio", "write_label_studio"]

DEFAULT_FROM_NAME = "label"
TABLE_ROW_KEY = "row"  # a table row is one object in Label Studio: data {"row": {column: value}}, shown by <Table name="row" value="$row"/>
# Label Studio matches annotators by e-mail; users without one are written as <name>@this domain (never a real one).
EMAIL_DOMAIN = "superintendent.invalid"
_LS_USER_ID = re.compile(r"^ls-(\d+)$")


def _emails(session: Session, usernames: set[str]) -> dict[str, str]:
    """Each annotator's e-mail: the stored one, else the name if it is one, else ``<name>@`` :data:`EMAIL_DOMAIN`."""
    stored = user_emails(session, usernames)
    names = {u: file_annotator(u) for u in usernames}  # an import-only account goes back as the annotator it stands for
    return {u: (stored.get(u) or (names[u] if "@" in names[u] else f"{names[u]}@{EMAIL_DOMAIN}")) for u in usernames}


def _completed_by(username: str, emails: dict[str, str]) -> int | dict[str, str]:
    name = file_annotator(username)
    m = _LS_USER_ID.match(name)
    if m:
        return int(m.group(1))  # an annotator imported from Label Studio by id goes back as that id
    return {"email": emails[username], "username": name}


def _is_image(rec: ItemRecord) -> bool:
    return isinstance(rec.data, dict) and "image_path" in rec.data


def export_label_studio(engine: Engine, project: Project, *, from_name: str = DEFAULT_FROM_NAME, to_name: str | None = None,
                        data_key: str | None = None, image_value: str = "path") -> bytes:
    """The project as Label Studio tasks (JSON), one annotation per annotator, ready for Label Studio's import.

    Text items go under ``data["text"]``, images under ``data["image"]`` (their
    stored file path, or with ``image_value="name"`` their original file
    name), table rows as their own keys, anything else encoded under
    ``data["value"]``; ``data_key`` renames the key. Results are Choices of
    the control ``from_name`` on the object ``to_name`` (default: the data
    key). ``completed_by`` is ``{"email", "username"}``: Label Studio matches
    annotators by e-mail. ``meta.external_id`` keeps our id.
    """
    buffer = io.BytesIO()
    write_label_studio(engine, project, buffer, from_name=from_name, to_name=to_name, data_key=data_key, image_value=image_value)
    return buffer.getvalue()


def write_label_studio(engine: Engine, project: Project, out: IO[bytes], *, from_name: str = DEFAULT_FROM_NAME,
                       to_name: str | None = None, data_key: str | None = None, image_value: str = "path",
                       progress: Callable[[float], Any] | None = None) -> None:
    """Write :func:`export_label_studio`'s JSON array to ``out``, a batch of items at a time; ``progress(fraction)``
    after each batch."""
    if image_value not in ("path", "name"):
        raise ValidationError(f"image_value must be 'path' or 'name'; got {image_value!r}")
    if not isinstance(from_name, str) or not from_name.strip():
        raise ValidationError("from_name must be a non-empty name, e.g. 'label'")
    out.write(b"[")
    first = True
    with session_scope(engine, write=False) as s:
        total = max(1, count_items(s, project))
        seen = 0
        for records in iter_snapshot(s, project):
            emails = _emails(s, {a.username for r in records for a in r.annotations})
            for rec in records:
                task = _task(rec, emails, from_name=from_name, to_name=to_name, data_key=data_key, image_value=image_value,
                             label_mode=project.label_mode)
                out.write((("\n" if first else ",\n") + json.dumps(task, ensure_ascii=False)).encode("utf-8"))
                first = False
            seen += len(records)
            if progress is not None:
                progress(min(1.0, seen / total))
    out.write(b"]" if first else b"\n]")


def _result(rec: ItemRecord, value: Any, n: int, label_mode: str, from_name: str, target: str) -> list[dict[str, Any]]:
    """One annotation's ``result`` list: a choices result, or a region per span or box (ids ``<item>-<n>-<k>``)."""
    common = {"from_name": from_name, "to_name": target, "origin": "manual"}
    if label_mode == SPANS:
        text = item_text(rec.data)
        return [{"id": f"{rec.item_id}-{n}-{k}", "type": "labels", **common,
                 "value": {"start": m["start"], "end": m["end"], "text": text[m["start"]:m["end"]], "labels": [str(m["label"])]}}
                for k, m in enumerate(value, 1)]
    if label_mode == BOXES:
        width, height = image_size(rec.data)
        return [{"id": f"{rec.item_id}-{n}-{k}", "type": "rectanglelabels", **common, "original_width": width,
                 "original_height": height, "image_rotation": 0,
                 "value": {"x": 100 * m["x"] / width, "y": 100 * m["y"] / height, "width": 100 * m["width"] / width,
                           "height": 100 * m["height"] / height, "rotation": 0, "rectanglelabels": [str(m["label"])]}}
                for k, m in enumerate(value, 1)]
    values = value if isinstance(value, list) else [value]
    return [{"id": f"{rec.item_id}-{n}", "type": "choices", **common, "value": {"choices": [str(v) for v in values]}}] if values else []


def _task(rec: ItemRecord, emails: dict[str, str], *, from_name: str, to_name: str | None, data_key: str | None,
          image_value: str, label_mode: str = "single") -> dict[str, Any]:
    meta: dict[str, Any] = {"external_id": rec.external_id}
    if _is_image(rec):
        key = data_key or "image"
        path = rec.file_path or str(rec.data["image_path"])
        name = str(rec.data.get("name") or Path(path).name)
        data = {key: path if image_value == "path" else name}
        meta["name"] = name
    elif isinstance(rec.data, str):
        key = data_key or "text"
        data = {key: rec.data}
    elif isinstance(rec.data, dict) and rec.data and all(isinstance(k, str) for k in rec.data):
        key = data_key or TABLE_ROW_KEY  # one object for the whole row: <Table name="row" value="$row"/>
        data = {key: serialization.encode(rec.data)}
    else:
        key = data_key or "value"
        data = {key: serialization.encode(rec.data)}
    target = to_name or key
    annotations = []
    for ann in rec.annotations:
        result = _result(rec, ann.label, len(annotations) + 1, label_mode, from_name, target)
        annotations.append({"completed_by": _completed_by(ann.username, emails), "result": result, "was_cancelled": False,
                            "ground_truth": False, "created_at": iso(ann.created_at), "lead_time": ann.time_taken})
    task: dict[str, Any] = {"data": data, "annotations": annotations, "predictions": [], "meta": meta}
    if rec.external_id.isdigit() and len(rec.external_id) < 16:
        task = {"id": int(rec.external_id), **task}
    return task
