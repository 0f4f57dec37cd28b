"""Interop: Label Studio JSON tasks and JSON Lines of items, in and out, without loss.

Import (through :func:`superintendent.importers.prepare_upload`, which sniffs
the content, or with the explicit format ``"label-studio"``):

* **Label Studio tasks**: a JSON list of ``{"id", "data": {...}, "annotations":
  [{"completed_by", "result": [{"type": "choices", "from_name", "to_name",
  "value": {"choices": [...]}}], ...}], "predictions": [...]}``, or a ZIP
  holding that JSON and the image files it names. Each task becomes an item
  (text, image or table row) and each annotation an annotation of its
  annotator (a user created without a password, so unable to log in, unless
  one of that name exists). Predictions are model output, not labels: they
  are checked for shape and left out.
* **JSON Lines of items** (what :func:`export_jsonl` writes): one object per
  item with ``external_id``, ``data``, ``file_path`` and ``annotations``.

Every problem raises :class:`ValidationError` naming the task (or line) and
what to fix, before anything is written; nothing is fetched from the network.

Export: :func:`export_label_studio` (tasks Label Studio imports, one
annotation per annotator) and :func:`export_jsonl` (one object per item:
data, consensus label, tie flag and every annotation). The item's label comes from
:func:`superintendent.queue.final_labels` (a reviewer's correction, else the
consensus); JSON Lines carry the review too, Label Studio tasks do not.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import io
import json
import math
import re
import zipfile
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import unquote, urlparse

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session

from superintendent import queue, serialization
from superintendent.auth import ensure_user
from superintendent.store import Item, Project, Role, User, session_scope, utcnow
from superintendent.validation import (
    LABEL_MODES,
    SuperintendentError,
    ValidationError,
    check_label,
    check_options,
)

__all__ = [
    "DEFAULT_FROM_NAME", "ITEMS_JSONL", "LABEL_STUDIO", "ImportedAnnotation", "ItemRecord", "export_jsonl", "export_label_studio",
    "prepare_items_jsonl", "prepare_label_studio", "project_snapshot", "sniff_format", "write_annotations",
]

LABEL_STUDIO = "label-studio"
ITEMS_JSONL = "items-jsonl"
DEFAULT_FROM_NAME = "label"
# Label Studio matches annotators by e-mail; users without one are written as <name>@this domain (never a real one).
EMAIL_DOMAIN = "superintendent.invalid"
IMAGE_KEYS = ("image", "img", "image_url", "imageurl", "picture", "photo")
_SNIFF_BYTES = 1 << 16
_DATA_URI = re.compile(r"^data:image/(png|jpe?g);base64,(.*)$", re.IGNORECASE | re.DOTALL)
_LS_USER_ID = re.compile(r"^ls-(\d+)$")


@dataclass(frozen=True)
class ImportedAnnotation:
    """One annotation read from a file: who, what (checked against the project), when and how long."""

    user: str
    value: Any
    created_at: dt.datetime | None = None
    time_taken: float | None = None
    review: bool = False  # a reviewer's correction of the item's label (``user`` must be allowed to review)


# --------------------------------------------------------------------------- sniffing


def _strip_bom(data: bytes) -> bytes:
    return data[3:] if data.startswith(b"\xef\xbb\xbf") else data


def _is_task_list(obj: Any) -> bool:
    return (isinstance(obj, list) and bool(obj) and all(isinstance(t, dict) and isinstance(t.get("data"), dict) for t in obj))


def sniff_format(fmt: str, data: bytes) -> str:
    """Refine a format told by the file name from the content: Label Studio tasks, our items JSON Lines, or ``fmt``.

    A ``.json`` list of objects that all have a ``"data"`` object is Label
    Studio's; a ``.zip`` holding a ``.json`` file is Label Studio tasks with
    their images; a ``.jsonl`` whose first object has ``external_id``,
    ``data`` and ``annotations`` is :func:`export_jsonl`'s. Anything else
    keeps ``fmt`` (and its reader reports any problem).
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        return fmt
    data = _strip_bom(bytes(data))
    if fmt == "json":
        if data.lstrip()[:1] != b"[" or b'"data"' not in data[:_SNIFF_BYTES]:
            return fmt
        try:
            return LABEL_STUDIO if _is_task_list(json.loads(data)) else fmt
        except (ValueError, RecursionError):
            return fmt
    if fmt == "zip":
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as zf:
                names = [i.filename for i in zf.infolist() if not i.filename.endswith("/") and not _skipped(i.filename)]
        except Exception:  # noqa: BLE001 - any damaged archive (BadZipFile, NotImplementedError, ...): the ZIP reader says why
            return fmt
        return LABEL_STUDIO if any(n.lower().endswith(".json") for n in names) else fmt
    if fmt == "jsonl":
        for line in data[:_SNIFF_BYTES].split(b"\n"):
            if not line.strip():
                continue
            try:
                first = json.loads(line)
            except (ValueError, RecursionError):
                return fmt
            keys = {"external_id", "data", "annotations"}
            return ITEMS_JSONL if isinstance(first, dict) and keys <= set(first) else fmt
    return fmt


def _skipped(name: str) -> bool:
    parts = [p for p in name.replace("\\", "/").split("/") if p not in ("", ".")]
    return not parts or parts[0] == "__MACOSX" or any(p.startswith(".") for p in parts)


# --------------------------------------------------------------------------- shared checks


def _what(name: str | None) -> str:
    return repr(name) if name else "the file"


def _loads(text: str | bytes, what: str, hint: str) -> Any:
    from superintendent.importers import _no_duplicate_keys

    try:
        return json.loads(text, object_pairs_hook=_no_duplicate_keys(what))
    except json.JSONDecodeError as exc:
        raise ValidationError(f"{what} is not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}. {hint}") from None
    except ValidationError:
        raise
    except (ValueError, RecursionError) as exc:
        raise ValidationError(f"cannot read {what} as JSON: {exc}. {hint}") from None


def _text(data: bytes, what: str) -> str:
    from superintendent.importers import _decode_text

    return _decode_text(_strip_bom(data), what)


class _LabelChecker:
    """Turns label values from a file into the project's canonical labels, collecting unknown ones."""

    def __init__(self, options: Sequence[Any], label_mode: str, allow_free_text: bool) -> None:
        self.options = list(options)
        self.label_mode = label_mode
        self.allow_free_text = allow_free_text
        self.unknown: list[str] = []

    def one(self, value: Any, where: str) -> Any:
        from superintendent.importers import _NO_MATCH, _match

        matched = _match(value, self.options) if self.options else value
        if matched is _NO_MATCH:
            if self.allow_free_text and isinstance(value, str) and value.strip():
                return value.strip()
            self.unknown.append(f"{where}: {value!r}")
            return None
        try:
            return check_label(matched, options=self.options, label_mode="single", allow_free_text=self.allow_free_text)
        except ValidationError as exc:
            self.unknown.append(f"{where}: {value!r} ({exc})")
            return None

    def value(self, values: list[Any], where: str) -> Any:
        """A single label or a list (multi-label) from the chosen values; None when nothing is usable."""
        labels = [self.one(v, where) for v in values]
        if self.label_mode == "multi":
            return check_label([x for x in labels if x is not None], options=self.options, label_mode="multi",
                               allow_free_text=self.allow_free_text)
        return labels[0] if labels else None

    def raise_unknown(self, what: str) -> None:
        if not self.unknown:
            return
        shown = "; ".join(self.unknown[:5]) + (f"; and {len(self.unknown) - 5} more" if len(self.unknown) > 5 else "")
        options = ", ".join(map(str, self.options[:20])) or "none"
        raise ValidationError(f"{what}: {len(self.unknown):,} label(s) are not options of the project (options: {options}): {shown}. "
                              "Add them as options on the Admin page, or fix the file; nothing was imported")


def _time(value: Any, where: str) -> dt.datetime | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ValidationError(f"{where}: created_at must be a date-time text such as '2024-05-01T12:00:00Z'; got {value!r}")
    try:
        stamp = dt.datetime.fromisoformat(value.strip())
    except ValueError:
        raise ValidationError(f"{where}: created_at {value!r} is not an ISO 8601 date-time such as '2024-05-01T12:00:00Z'") from None
    return stamp.replace(tzinfo=dt.UTC) if stamp.tzinfo is None else stamp.astimezone(dt.UTC)


def _seconds(value: Any, where: str, key: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise ValidationError(f"{where}: {key} must be a number of seconds (0 or more); got {value!r}")
    return float(value)


def _iso(stamp: dt.datetime | None) -> str | None:
    if stamp is None:
        return None
    return stamp.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def _check_ids(ids: list[str | None], where: Sequence[str]) -> None:
    seen: dict[str, str] = {}
    for ext, place in zip(ids, where):
        if ext is None:
            continue
        if not ext or len(ext) > 300:
            raise ValidationError(f"{place}: the id {ext!r} must have 1 to 300 characters")
        if ext in seen:
            raise ValidationError(f"{place} has the id {ext!r} of {seen[ext]}; every task needs its own id")
        seen[ext] = place


def _fill_ids(items: list[Any], ids: list[str | None]) -> list[str]:
    """Ids for tasks without one: the content hash add_items would use (n-th repeat gets '#n')."""
    taken = {e for e in ids if e is not None}
    seen: Counter[str] = Counter()
    out = []
    for item, ext in zip(items, ids):
        if ext is None:
            h = queue.content_id(serialization.dumps(item))
            seen[h] += 1
            ext = h if seen[h] == 1 else f"{h}#{seen[h]}"
            if ext in taken:
                raise ValidationError(f"the content id {ext!r} of an item without an id is also the id of another task; give every task an id")
        out.append(ext)
    return out


def _user_name(completed_by: Any, where: str) -> str:
    """Our user name for a Label Studio annotator: 'username', else e-mail, else 'ls-<id>'; '_import' when not given."""
    from superintendent.auth import IMPORT_USER

    if completed_by is None:
        return IMPORT_USER
    if isinstance(completed_by, dict):
        for key in ("username", "email"):
            v = completed_by.get(key)
            if isinstance(v, str) and v.strip():
                return _clean_name(v, where)
        v = completed_by.get("id")
        if isinstance(v, int) and not isinstance(v, bool):
            return f"ls-{v}"
        raise ValidationError(f"{where}: completed_by {completed_by!r} has no 'email', 'username' or 'id'; give one of them")
    if isinstance(completed_by, bool):
        raise ValidationError(f"{where}: completed_by must be a user id, an e-mail or an object with 'email'; got {completed_by!r}")
    if isinstance(completed_by, int):
        return f"ls-{completed_by}"
    if isinstance(completed_by, str) and completed_by.strip():
        return _clean_name(completed_by, where)
    raise ValidationError(f"{where}: completed_by must be a user id, an e-mail or an object with 'email'; got {completed_by!r}")


def _clean_name(text: str, where: str) -> str:
    name = re.sub(r"\s+", "-", text.strip().lower())
    if len(name) > 150:
        raise ValidationError(f"{where}: the annotator name {text[:40]!r}... is longer than 150 characters")
    return name


# --------------------------------------------------------------------------- Label Studio: import


@dataclass
class _Task:
    where: str
    item: Any
    image_ref: str | None
    external_id: str | None
    annotations: list[ImportedAnnotation]
    name: str | None = None


def prepare_label_studio(data: bytes, *, name: str | None = None, options: Sequence[Any] = (), label_mode: str = "single",
                         allow_free_text: bool = False, limits: Any = None, upload_dir: Path | str | None = None,
                         data_key: str | None = None, from_name: str | None = None) -> Any:
    """Read Label Studio tasks (JSON, or a ZIP of the JSON and its images) into a PreparedImport; nothing is written
    but the images (under ``upload_dir``, as a ZIP of images would be).

    ``data_key`` names the key of ``data`` that holds the item (default: the
    only key; with several keys and none of them an image, the whole ``data``
    object is the item, a table row). ``from_name`` names the Choices control
    whose results are the labels (needed only when the tasks use several).
    """
    from superintendent.importers import ImportLimits, PreparedImport

    limits = limits or ImportLimits()
    what = _what(name)
    if label_mode not in LABEL_MODES:
        raise ValidationError(f"label_mode must be one of {', '.join(LABEL_MODES)}; got {label_mode!r}")
    options = check_options(list(options) if options is not None else None)
    data = bytes(data)
    if not data:
        raise ValidationError(f"{what} is empty (0 bytes); expected a JSON list of Label Studio tasks")
    zf = None
    images: dict[str, zipfile.ZipInfo] = {}
    if data[:4] == b"PK\x03\x04":
        zf, tasks_name, images = _open_task_zip(data, limits, what)
        raw = _read_member(zf, images.pop(tasks_name), what)
        what = f"{tasks_name!r} in {what}"
    else:
        raw = data
    hint = "Expected a JSON list of Label Studio tasks such as [{\"data\": {\"text\": \"...\"}, \"annotations\": [...]}]"
    tasks = _loads(_text(raw, what), what, hint)
    if isinstance(tasks, dict) and isinstance(tasks.get("data"), dict):
        tasks = [tasks]
    if not isinstance(tasks, list) or not tasks:
        raise ValidationError(f"{what} holds {'an empty list' if tasks == [] else 'a JSON ' + type(tasks).__name__}. {hint}")
    if len(tasks) > limits.max_rows:
        raise ValidationError(f"{what} has {len(tasks):,} tasks; the limit is {limits.max_rows:,}. Split it into several files")
    checker = _LabelChecker(options, label_mode, allow_free_text)
    controls = _choice_controls(tasks, from_name, what)
    parsed = [_read_task(t, i, what, data_key, controls, checker, label_mode, limits) for i, t in enumerate(tasks, 1)]
    checker.raise_unknown(what)
    _check_ids([t.external_id for t in parsed], [t.where for t in parsed])
    file_paths: list[str | None] | None = None
    if any(t.image_ref is not None for t in parsed):
        if any(t.image_ref is None for t in parsed):
            first = next(t for t in parsed if t.image_ref is None)
            raise ValidationError(f"{first.where} holds no image while other tasks do; put text and images in separate files")
        file_paths = _resolve_images(parsed, zf, images, limits, upload_dir, what)
    if zf is not None:
        zf.close()
    items = [t.item for t in parsed]
    ids = _fill_ids(items, [t.external_id for t in parsed])
    annotations = [t.annotations for t in parsed]
    n_ann = sum(len(a) for a in annotations)
    preview = pd.DataFrame({
        "id": ids[:20],
        "item": [_short(t.item) for t in parsed[:20]],
        "annotations": [len(t.annotations) for t in parsed[:20]],
        "labels": ["; ".join(f"{a.user}: {_label_text(a.value)}" for a in t.annotations) for t in parsed[:20]],
    })
    as_rows = bool(items) and isinstance(items[0], dict) and file_paths is None
    columns = list(items[0]) if as_rows else None
    return PreparedImport(items=items, external_ids=ids, labels=None, preview=preview, n_rows=len(items), file_paths=file_paths,
                          display_columns=columns, model_columns=columns, annotations=annotations if n_ann else None)


def _short(x: Any) -> str:
    text = x.get("name", x.get("image_path")) if isinstance(x, dict) and "image_path" in x else x
    text = str(text)
    return text if len(text) <= 80 else text[:77] + "..."


def _label_text(value: Any) -> str:
    return ", ".join(map(str, value)) if isinstance(value, list) else str(value)


def _open_task_zip(data: bytes, limits: Any, what: str) -> tuple[zipfile.ZipFile, str, dict[str, zipfile.ZipInfo]]:
    from superintendent.importers import _entry_problem

    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
    except Exception as exc:  # noqa: BLE001 - zipfile raises several kinds on damaged archives
        raise ValidationError(f"{what} is not a readable ZIP archive ({exc}); expected a ZIP of a tasks .json file and its images") from None
    infos = zf.infolist()
    if len(infos) > limits.max_zip_entries:
        raise ValidationError(f"{what} has {len(infos):,} entries; the limit is {limits.max_zip_entries:,}. Split it into several ZIPs")
    unsafe = [(i.filename, p) for i in infos if (p := _entry_problem(i.filename))]
    if unsafe:
        shown = "; ".join(f"{n!r} ({p})" for n, p in unsafe[:5])
        raise ValidationError(f"{what} has entries with unsafe names: {shown}. Re-create the ZIP with relative paths only")
    entries = {i.filename.replace("\\", "/"): i for i in infos if not i.filename.endswith(("/", "\\")) and not _skipped(i.filename)}
    if any(i.flag_bits & 0x1 for i in entries.values()):
        raise ValidationError(f"{what} is password-protected; upload a ZIP without a password")
    total = sum(i.file_size for i in entries.values())
    if total > limits.max_zip_total_uncompressed:
        raise ValidationError(f"{what} unpacks to {total:,} bytes; the limit is {limits.max_zip_total_uncompressed:,}. Split it")
    tasks = [n for n in entries if n.lower().endswith(".json")]
    if len(tasks) != 1:
        got = ", ".join(map(repr, tasks[:5])) if tasks else "none"
        raise ValidationError(f"{what} must hold exactly one .json file of Label Studio tasks beside the images; it holds {got}")
    return zf, tasks[0], entries


def _read_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, what: str) -> bytes:
    from superintendent.importers import _read_entry

    return _read_entry(zf, info, what)


def _choice_controls(tasks: list[Any], from_name: str | None, what: str) -> str | None:
    """The from_name whose choices are labels: the one given, or the only one the file uses."""
    names: Counter[str] = Counter()
    for task in tasks:
        anns = task.get("annotations") if isinstance(task, dict) else None
        for ann in anns if isinstance(anns, list) else []:
            for res in (ann.get("result") if isinstance(ann, dict) and isinstance(ann.get("result"), list) else []):
                if isinstance(res, dict) and str(res.get("type", "")).lower() == "choices":
                    names[str(res.get("from_name", ""))] += 1
    if from_name is not None:
        if names and from_name not in names:
            raise ValidationError(f"{what} has no choices from the control {from_name!r}; its Choices controls are "
                                  f"{', '.join(map(repr, names))}")
        return from_name
    if len(names) > 1:
        raise ValidationError(f"{what} has choices from several controls ({', '.join(map(repr, names))}); name the one that "
                              "holds the labels (from_name: --from-name on the command line, 'Choices control' on the Admin page)")
    return next(iter(names), None)


def _read_task(task: Any, i: int, what: str, data_key: str | None, control: str | None, checker: _LabelChecker,
               label_mode: str, limits: Any) -> _Task:
    where = f"task {i}"
    if not isinstance(task, dict):
        raise ValidationError(f"{what}: {where} is a JSON {type(task).__name__}; every task must be an object with a \"data\" object")
    if "id" in task and task["id"] is not None:
        where = f"task {i} (id {task['id']!r})"
    data = task.get("data")
    if not isinstance(data, dict) or not data:
        raise ValidationError(f"{what}: {where} has no \"data\" object with at least one key, e.g. {{\"data\": {{\"text\": \"...\"}}}}")
    meta = task.get("meta") if isinstance(task.get("meta"), dict) else {}
    external_id = meta.get("external_id", task.get("id"))
    if external_id is not None:
        if isinstance(external_id, bool) or not isinstance(external_id, (str, int)):
            raise ValidationError(f"{what}: {where} has an id of type {type(external_id).__name__}; ids are numbers or text")
        external_id = str(external_id)
    key = data_key
    if key is not None and key not in data:
        raise ValidationError(f"{what}: {where} has no data key {key!r}; its keys are {', '.join(map(repr, data))}")
    if key is None:
        image_keys = [k for k in data if k.lower() in IMAGE_KEYS]
        if len(data) == 1:
            key = next(iter(data))
        elif len(image_keys) == 1:
            key = image_keys[0]
    image_ref = None
    if key is not None:
        value = data[key]
        if isinstance(value, str) and (key.lower() in IMAGE_KEYS or _DATA_URI.match(value)):
            image_ref = value
            item: Any = None
        else:
            item = _decoded(value, f"{what}: {where}, data key {key!r}")
    else:
        item = {k: _decoded(v, f"{what}: {where}, data key {k!r}") for k, v in data.items()}
    if isinstance(item, str) and len(item) > limits.max_field_chars:
        raise ValidationError(f"{what}: {where} has {len(item):,} characters of text; the limit is {limits.max_field_chars:,}")
    if item is None and image_ref is None:
        raise ValidationError(f"{what}: {where} has null data; give every task its text or image")
    preds = task.get("predictions")
    if preds is not None and not isinstance(preds, list):
        raise ValidationError(f"{what}: {where} has \"predictions\" that are not a list")
    anns = task.get("annotations", task.get("completions"))
    if anns is None:
        anns = []
    if not isinstance(anns, list):
        raise ValidationError(f"{what}: {where} has \"annotations\" that are not a list of annotations")
    out: list[ImportedAnnotation] = []
    users: dict[str, int] = {}
    for j, ann in enumerate(anns, 1):
        at = f"{where}, annotation {j}"
        if not isinstance(ann, dict):
            raise ValidationError(f"{what}: {at} is not an object with a \"result\" list")
        if ann.get("was_cancelled"):
            continue  # a skipped task in Label Studio: no label
        result = ann.get("result", [])
        if not isinstance(result, list):
            raise ValidationError(f"{what}: {at} has a \"result\" that is not a list")
        chosen: list[Any] = []
        for res in result:
            if not isinstance(res, dict):
                raise ValidationError(f"{what}: {at} has a result that is not an object")
            kind = str(res.get("type", "")).lower()
            if kind != "choices":
                raise ValidationError(f"{what}: {at} has a result of type {res.get('type')!r}; superintendent imports "
                                      "classification results (type 'choices') only")
            if control is not None and str(res.get("from_name", "")) != control:
                continue
            value = res.get("value")
            choices = value.get("choices") if isinstance(value, dict) else None
            if not isinstance(choices, list) or any(isinstance(c, (dict, list)) for c in choices):
                raise ValidationError(f"{what}: {at} has a choices result without a \"value\": {{\"choices\": [...]}} list")
            chosen.extend(c for c in choices if c not in chosen)
        if label_mode == "single":
            if not chosen:
                continue  # submitted without a choice: no label
            if len(chosen) > 1:
                raise ValidationError(f"{what}: {at} chose {len(chosen)} labels ({', '.join(map(repr, chosen))}), but the project "
                                      "takes one label per item; import into a multi-label project (Labels per item: several)")
        label = checker.value(chosen, where)
        user = _user_name(ann.get("completed_by"), f"{what}: {at}")
        if user in users:
            raise ValidationError(f"{what}: {where} has two annotations by {user!r} (annotations {users[user]} and {j}); "
                                  "superintendent keeps one annotation per person per item: remove one")
        users[user] = j
        if label is None and label_mode == "single":
            continue  # an unknown choice, reported with the others
        out.append(ImportedAnnotation(user=user, value=label, created_at=_time(ann.get("created_at"), f"{what}: {at}"),
                                      time_taken=_seconds(ann.get("lead_time"), f"{what}: {at}", "lead_time")))
    name = meta.get("name") if isinstance(meta.get("name"), str) else None
    return _Task(where=where, item=item, image_ref=image_ref, external_id=external_id, annotations=out, name=name)


def _decoded(value: Any, where: str) -> Any:
    """Task data as a Python value: tagged values (arrays, ...) written by our own export become what they were."""
    try:
        return serialization.decode(value)
    except (TypeError, ValueError) as exc:
        raise ValidationError(f"{where}: cannot read the value ({exc})") from None


def _resolve_images(tasks: list[_Task], zf: zipfile.ZipFile | None, entries: dict[str, zipfile.ZipInfo], limits: Any,
                    upload_dir: Path | str | None, what: str) -> list[str]:
    """Find every task's image (data URI, ZIP entry by path or basename, or a file already in the upload folder)
    and save the new ones through the ZIP-of-images importer (same checks, same folder layout)."""
    from superintendent.importers import IMAGE_EXTENSIONS, MAX_ZIP_RATIO, read_image_zip

    if upload_dir is None:
        raise ValidationError("importing images needs an upload folder to save them in (upload_dir)")
    root = Path(upload_dir).resolve()
    by_base: dict[str, list[str]] = defaultdict(list)
    for entry in entries:
        by_base[PurePosixPath(entry).name].append(entry)
    pending: dict[str, tuple[str, bytes]] = {}  # key -> (entry name in the new ZIP, bytes)
    plan: list[tuple[str, str]] = []  # per task: ("new", key) or ("existing", path)
    for t in tasks:
        ref = t.image_ref or ""
        uri = _DATA_URI.match(ref)
        if uri:
            try:
                raw = base64.b64decode(uri.group(2), validate=False)
            except (binascii.Error, ValueError):
                raise ValidationError(f"{what}: {t.where} has an image data URI whose base64 cannot be decoded") from None
            ext = ".png" if uri.group(1).lower() == "png" else ".jpg"
            key = "uri:" + hashlib.sha256(raw).hexdigest()
            pending.setdefault(key, (f"{len(pending):06d}{ext}", raw))
            plan.append(("new", key))
            t.name = t.name or f"{t.external_id or t.where}{ext}"
            continue
        parsed = urlparse(ref)
        path = unquote(parsed.path if parsed.scheme in ("http", "https", "s3", "gs", "azure-blob", "file") else ref)
        rel = path.replace("\\", "/").lstrip("/")
        entry = rel if rel in entries else None
        if entry is None and zf is not None:
            base = PurePosixPath(rel).name
            found = by_base.get(base, [])
            if len(found) > 1:
                raise ValidationError(f"{what}: {t.where} names the image {base!r}, which is in the ZIP {len(found)} times "
                                      f"({', '.join(map(repr, found[:3]))}); give the tasks the file's path inside the ZIP")
            entry = found[0] if found else None
        if entry is not None:
            info = entries[entry]
            if not entry.lower().endswith(IMAGE_EXTENSIONS):
                raise ValidationError(f"{what}: {t.where} names {entry!r}, which is not a .png, .jpg or .jpeg file")
            if info.file_size > MAX_ZIP_RATIO * max(info.compress_size, 1) or (info.file_size and not info.compress_size):
                raise ValidationError(f"{what}: entry {entry!r} unpacks from {info.compress_size:,} to {info.file_size:,} bytes, more "
                                      f"than {MAX_ZIP_RATIO}x; real images do not compress like that (a ZIP bomb?)")
            key = "zip:" + entry
            if key not in pending:
                pending[key] = (f"{len(pending):06d}-{PurePosixPath(entry).name}", _read_member(zf, info, what))
            plan.append(("new", key))
            t.name = t.name or PurePosixPath(entry).name
            continue
        local = Path(ref) if not parsed.scheme or len(parsed.scheme) == 1 else None
        if local is not None and local.is_absolute():
            resolved = local.resolve()
            if resolved.is_relative_to(root) and resolved.is_file():
                plan.append(("existing", str(resolved)))
                t.name = t.name or resolved.name
                continue
        if parsed.scheme and len(parsed.scheme) > 1:
            raise ValidationError(f"{what}: {t.where} names the image {ref[:200]!r}, a URL; superintendent never fetches files from "
                                  "the network. Upload a ZIP holding the tasks .json and the image files (found by their path in "
                                  f"the ZIP or by the file name {PurePosixPath(rel).name!r}), or give the images as data: URIs")
        raise ValidationError(f"{what}: {t.where} names the image {ref[:200]!r}, which is "
                              + ("not in the ZIP" if zf is not None else "not a file in the upload folder")
                              + ". Upload a ZIP holding the tasks .json and the image files (by relative path or file name)")
    saved: dict[str, str] = {}
    if pending:
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as out:
            for entry_name, raw in pending.values():
                out.writestr(zipfile.ZipInfo(entry_name, date_time=(1980, 1, 1, 0, 0, 0)), raw)
        files = read_image_zip(buffer.getvalue(), limits, root, name=what)
        names = {f.original_name: str(f.path) for f in files}
        saved = {key: names[entry_name] for key, (entry_name, _) in pending.items()}
    paths = []
    for t, (kind, ref) in zip(tasks, plan):
        path = saved[ref] if kind == "new" else ref
        t.item = {"image_path": path, "name": t.name or Path(path).name}
        paths.append(path)
    return paths


# --------------------------------------------------------------------------- JSON Lines of items: import


def prepare_items_jsonl(data: bytes, *, name: str | None = None, options: Sequence[Any] = (), label_mode: str = "single",
                        allow_free_text: bool = False, limits: Any = None, upload_dir: Path | str | None = None) -> Any:
    """Read :func:`export_jsonl`'s JSON Lines (one item per line) into a PreparedImport."""
    from superintendent.importers import ImportLimits, PreparedImport

    limits = limits or ImportLimits()
    what = _what(name)
    options = check_options(list(options) if options is not None else None)
    text = _text(bytes(data), what)
    checker = _LabelChecker(options, label_mode, allow_free_text)
    root = Path(upload_dir).resolve() if upload_dir is not None else None
    items, ids, paths, annotations, places = [], [], [], [], []
    for lineno, line in enumerate(text.split("\n"), 1):
        if not line.strip():
            continue
        where = f"line {lineno}"
        obj = _loads(line, f"{what}, {where}", "Each line must be one object with external_id, data and annotations")
        if not isinstance(obj, dict) or "data" not in obj or not isinstance(obj.get("external_id"), str):
            raise ValidationError(f"{what}: {where} is not an item object with a text \"external_id\" and \"data\"")
        if len(items) >= limits.max_rows:
            raise ValidationError(f"{what} has more than {limits.max_rows:,} items; split it into several files")
        where = f"{where} (external_id {obj['external_id']!r})"
        item = _decoded(obj["data"], f"{what}: {where}")
        if isinstance(item, str) and len(item) > limits.max_field_chars:
            raise ValidationError(f"{what}: {where} has {len(item):,} characters of text; the limit is {limits.max_field_chars:,}")
        path = obj.get("file_path")
        if path is not None:
            resolved = Path(str(path)).resolve()
            if root is None or not resolved.is_relative_to(root) or not resolved.is_file():
                raise ValidationError(f"{what}: {where} has the file {str(path)!r}, which is not a file in this server's upload folder. "
                                      "JSON Lines carry paths, not images: move images between servers as a Label Studio ZIP")
            path = str(resolved)
        anns = obj.get("annotations") or []
        if not isinstance(anns, list):
            raise ValidationError(f"{what}: {where} has \"annotations\" that are not a list")
        out: list[ImportedAnnotation] = []
        users: set[str] = set()
        for j, ann in enumerate(anns, 1):
            at = f"{where}, annotation {j}"
            if not isinstance(ann, dict) or not isinstance(ann.get("user"), str) or "value" not in ann:
                raise ValidationError(f"{what}: {at} is not an object with \"user\" and \"value\"")
            user = ann["user"].strip()
            if not user or len(user) > 150 or user in users:
                raise ValidationError(f"{what}: {at} has the user {ann['user']!r}, empty, too long or given twice for this item")
            users.add(user)
            value = _decoded(ann["value"], f"{what}: {at}")
            values = value if label_mode == "multi" and isinstance(value, list) else [value]
            if label_mode == "single" and isinstance(value, list):
                raise ValidationError(f"{what}: {at} has the labels {value!r}, but the project takes one label per item")
            label = checker.value(values, at)
            if label is None:
                continue
            out.append(ImportedAnnotation(user=user, value=label, created_at=_time(ann.get("created_at"), f"{what}: {at}"),
                                          time_taken=_seconds(ann.get("time_taken"), f"{what}: {at}", "time_taken")))
        review = obj.get("review")
        if review is not None:
            at = f"{where}, review"
            if not isinstance(review, dict) or not isinstance(review.get("by"), str) or "value" not in review:
                raise ValidationError(f"{what}: {at} is not an object with \"value\" and \"by\" (or null)")
            value = _decoded(review["value"], f"{what}: {at}")
            if label_mode == "single" and isinstance(value, list):
                raise ValidationError(f"{what}: {at} has the labels {value!r}, but the project takes one label per item")
            label = checker.value(value if label_mode == "multi" and isinstance(value, list) else [value], at)
            if label is not None:
                out.append(ImportedAnnotation(user=review["by"].strip(), value=label, created_at=_time(review.get("at"), f"{what}: {at}"),
                                              review=True))
        items.append(item)
        ids.append(obj["external_id"])
        paths.append(path)
        annotations.append(out)
        places.append(where)
    if not items:
        raise ValidationError(f"{what} holds no items")
    checker.raise_unknown(what)
    _check_ids(ids, places)
    preview = pd.DataFrame({"external_id": ids[:20], "item": [_short(x) for x in items[:20]],
                            "annotations": [len(a) for a in annotations[:20]]})
    as_rows = isinstance(items[0], dict) and all(p is None for p in paths)
    columns = list(items[0]) if as_rows else None
    return PreparedImport(items=items, external_ids=ids, labels=None, preview=preview, n_rows=len(items),
                          file_paths=paths if any(p is not None for p in paths) else None, display_columns=columns,
                          model_columns=columns, annotations=annotations if any(annotations) else None)


# --------------------------------------------------------------------------- writing annotations


def write_annotations(session: Session, project: Project, external_ids: Sequence[str],
                      annotations: Sequence[Sequence[ImportedAnnotation]]) -> int:
    """Store imported annotations (one per user and item) in the caller's transaction; returns how many.

    Each annotator is a user of that name, created without a password (so
    unable to log in) when missing. Every annotation goes through
    :func:`queue.submit`, which checks it against the project's settings and
    marks items done, so a bad label rolls the whole import back. An existing
    annotation of the same user on the item is replaced. A review (a
    corrected label) goes through :func:`queue.set_review` after the item's
    annotations: its reviewer must be a user here who may review.
    """
    if len(external_ids) != len(annotations):
        raise ValidationError(f"annotations must have one list per item: got {len(annotations)} for {len(external_ids)} items")
    wanted = [e for e, anns in zip(external_ids, annotations) if anns]
    ids = _item_ids(session, project, wanted)
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
    for start in range(0, len(plain), 5000):  # bulk, but a bad label still names its item and annotator
        try:
            queue.import_annotations(session, project, plain[start:start + 5000], now=now)
        except SuperintendentError:
            for (ext, user), label in zip(where[start:start + 5000], plain[start:start + 5000]):
                try:
                    check_label(label.value, options=project.options, label_mode=project.label_mode,
                                allow_free_text=project.allow_free_text, project=project.name)
                except SuperintendentError as exc:
                    raise ValidationError(f"item {ext!r}, annotation by {user!r}: {exc}; nothing was imported") from None
            raise
    for ext, ann in reviews:
        try:
            reviewer = session.execute(sa.select(User.id).where(User.username == ann.user)).scalar_one_or_none()
            if reviewer is None:
                raise ValidationError(f"there is no user {ann.user!r} here to have reviewed it; create them (role reviewer) "
                                      "first, or remove the item's \"review\" to import it without the correction")
            queue.set_review(session, project, reviewer, ids[ext], ann.value, now=ann.created_at or now)
        except SuperintendentError as exc:
            raise ValidationError(f"item {ext!r}, review by {ann.user!r}: {exc}; nothing was imported") from None
    return len(plain)


def _item_ids(session: Session, project: Project, external_ids: Sequence[str]) -> dict[str, int]:
    out: dict[str, int] = {}
    for start in range(0, len(external_ids), 5000):
        chunk = list(external_ids[start:start + 5000])
        out.update(session.execute(sa.select(Item.external_id, Item.id)
                                   .where(Item.project_id == project.id, Item.external_id.in_(chunk))).all())
    return out


# --------------------------------------------------------------------------- export


@dataclass
class ItemRecord:
    """One item with everything an export writes: data, every annotation (oldest first) and the consensus."""

    item_id: int
    external_id: str
    data: Any
    file_path: str | None
    label: Any = None  # the item's label: a reviewer's correction, else the consensus; None while unfinished
    tie: bool = False
    done: bool = False
    annotations: list[queue.AnnotationRow] = field(default_factory=list)
    reviewed_by: str | None = None  # set when ``label`` is a reviewer's correction
    reviewed_at: dt.datetime | None = None


def project_snapshot(engine: Engine, project: Project) -> list[ItemRecord]:
    """Every item of the project with its annotations and consensus, read in one snapshot."""
    with session_scope(engine, write=False) as s:
        rows = s.execute(sa.select(Item.id, Item.external_id, Item.data, Item.file_path)
                         .where(Item.project_id == project.id).order_by(Item.id)).all()
        log = queue.annotation_log(s, project)
        finished = queue.final_labels(s, project)
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


def _emails(engine: Engine, usernames: set[str]) -> dict[str, str]:
    if not usernames:
        return {}
    with session_scope(engine, write=False) as s:
        stored = dict(s.execute(sa.select(User.username, User.email).where(User.username.in_(sorted(usernames)))).all())
    return {u: (stored.get(u) or (u if "@" in u else f"{u}@{EMAIL_DOMAIN}")) for u in usernames}


def _completed_by(username: str, emails: dict[str, str]) -> Any:
    m = _LS_USER_ID.match(username)
    if m:
        return int(m.group(1))  # an annotator imported from Label Studio by id goes back as that id
    return {"email": emails[username], "username": username}


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
    if image_value not in ("path", "name"):
        raise ValidationError(f"image_value must be 'path' or 'name'; got {image_value!r}")
    if not isinstance(from_name, str) or not from_name.strip():
        raise ValidationError("from_name must be a non-empty name, e.g. 'label'")
    records = project_snapshot(engine, project)
    emails = _emails(engine, {a.username for r in records for a in r.annotations})
    tasks = []
    for rec in records:
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
        elif isinstance(rec.data, dict) and rec.data and all(isinstance(k, str) for k in rec.data) and data_key is None:
            key = next(iter(rec.data))
            data = serialization.encode(rec.data)
        else:
            key = data_key or "value"
            data = {key: serialization.encode(rec.data)}
        target = to_name or key
        annotations = []
        for ann in rec.annotations:
            values = ann.label if isinstance(ann.label, list) else [ann.label]
            result = [{"id": f"{rec.item_id}-{len(annotations) + 1}", "type": "choices", "from_name": from_name, "to_name": target,
                       "origin": "manual", "value": {"choices": [str(v) for v in values]}}] if values else []
            annotations.append({"completed_by": _completed_by(ann.username, emails), "result": result, "was_cancelled": False,
                                "ground_truth": False, "created_at": _iso(ann.created_at), "lead_time": ann.time_taken})
        task: dict[str, Any] = {"data": data, "annotations": annotations, "predictions": [], "meta": meta}
        if rec.external_id.isdigit() and len(rec.external_id) < 16:
            task = {"id": int(rec.external_id), **task}
        tasks.append(task)
    return json.dumps(tasks, ensure_ascii=False, indent=1).encode("utf-8")


def export_jsonl(engine: Engine, project: Project) -> bytes:
    """One JSON object per line and item: ids, data, file path, label, tie flag, review and every annotation.

    Values are JSON as :mod:`superintendent.serialization` encodes them
    (plain text and numbers stay as they are), so importing the file into
    another project restores the same items and annotations.
    """
    out = io.StringIO()
    for rec in project_snapshot(engine, project):
        line = {
            "id": rec.item_id,
            "external_id": rec.external_id,
            "data": serialization.encode(rec.data),
            "file_path": rec.file_path,
            "label": serialization.encode(rec.label) if rec.done else None,
            "tie": rec.tie,
            "review": None if rec.reviewed_by is None else {"value": serialization.encode(rec.label), "by": rec.reviewed_by,
                                                            "at": _iso(rec.reviewed_at)},
            "annotations": [{"user": a.username, "value": serialization.encode(a.label), "created_at": _iso(a.created_at),
                             "time_taken": a.time_taken} for a in rec.annotations],
        }
        out.write(json.dumps(line, ensure_ascii=False) + "\n")
    return out.getvalue().encode("utf-8")
