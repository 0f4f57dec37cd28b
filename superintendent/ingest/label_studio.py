"""Label Studio tasks in: a JSON list of tasks, or a ZIP of that JSON and the images it names.

Each task becomes an item (text, image or table row) and each annotation an
:class:`ImportedAnnotation` of its annotator; predictions are model output,
not labels: they are checked for shape and left out. A classification
project reads ``choices`` results; a spans project reads ``labels`` regions
(``value``: ``start``, ``end``, ``labels: [one label]``, and ``text``, which
must equal the characters it covers) and a boxes project ``rectanglelabels``
regions (``value``: ``x``, ``y``, ``width``, ``height`` in percent of the
image, ``rotation`` 0, ``rectanglelabels: [one label]``), turned into pixels
of the image as imported (``percent * size / 100``, kept to 1/1000 of a pixel,
so our own export comes back to the pixel) and checked against their item by
:func:`superintendent.marks.check_marks`; an annotation with an empty
``result`` is "nothing to mark". Nothing is fetched from the network; images
come from the ZIP, from ``data:`` URIs or from files already in the upload
folder, and are saved through the ZIP-of-images reader (same checks, same
folder layout); every other path a task names (a table row's ``image_path``)
must be a file inside the upload folder too
(:func:`~superintendent.ingest.checks.upload_file`). Annotators are names
from the file: :mod:`superintendent.importing` gives each an import-only
account unless the admin maps it to a person. Nothing here touches the
database.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import hashlib
import io
import math
import re
import zipfile
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import unquote, urlparse

import pandas as pd

from superintendent.labels import IMPORT_USER
from superintendent.ingest.annotations import check_ids, decoded, fill_ids, parse_seconds, parse_time, short_item
from superintendent.ingest.checks import check_annotator, item_paths, upload_file
from superintendent.ingest.common import decode_text, file_name, load_json, strip_bom
from superintendent.ingest.images import IMAGE_EXTENSIONS, read_image_zip
from superintendent.ingest.label_values import LabelChecker
from superintendent.ingest.prepared import ImportedAnnotation, ImportLimits, Prediction, PreparedImport
from superintendent.ingest.zipsafe import check_ratio, open_zip, read_entry, safe_entries
from superintendent.marks import BOXES, SPANS, check_marks, image_size, is_marks
from superintendent.validation import LABEL_MODES, ValidationError, check_options

__all__ = ["IMAGE_KEYS", "prepare_label_studio"]

IMAGE_KEYS = ("image", "img", "image_url", "imageurl", "picture", "photo")
RESULT_TYPES = {SPANS: "labels", BOXES: "rectanglelabels"}  # the region type a marks project reads; others read "choices"
DATA_URI = re.compile(r"^data:image/(png|jpe?g);base64,(.*)$", re.IGNORECASE | re.DOTALL)


@dataclass
class _Task:
    where: str
    item: Any
    image_ref: str | None
    external_id: str | None
    annotations: list[ImportedAnnotation]
    name: str | None = None
    prediction: Prediction | None = None


def prepare_label_studio(data: bytes, *, name: str | None = None, options: Sequence[Any] = (), label_mode: str = "single",
                         allow_free_text: bool = False, limits: ImportLimits | None = None, upload_dir: Path | str | None = None,
                         data_key: str | None = None, from_name: str | None = None) -> PreparedImport:
    """Read Label Studio tasks (JSON, or a ZIP of the JSON and its images) into a PreparedImport; nothing is written
    but the images (under ``upload_dir``, as a ZIP of images would be).

    ``data_key`` names the key of ``data`` that holds the item (default: the
    only key; with several keys and none of them an image, the whole ``data``
    object is the item, a table row). ``from_name`` names the Choices control
    whose results are the labels (needed only when the tasks use several).
    """
    limits = limits or ImportLimits()
    what = file_name(name)
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
        raw = read_entry(zf, images.pop(tasks_name), what)
        what = f"{tasks_name!r} in {what}"
    else:
        raw = data
    hint = "Expected a JSON list of Label Studio tasks such as [{\"data\": {\"text\": \"...\"}, \"annotations\": [...]}]"
    tasks = load_json(decode_text(strip_bom(raw), what, "JSON"), what, hint, unit="task")
    if isinstance(tasks, dict) and isinstance(tasks.get("data"), dict):
        tasks = [tasks]
    if not isinstance(tasks, list) or not tasks:
        raise ValidationError(f"{what} holds {'an empty list' if tasks == [] else 'a JSON ' + type(tasks).__name__}. {hint}")
    if len(tasks) > limits.max_rows:
        raise ValidationError(f"{what} has {len(tasks):,} tasks; the limit is {limits.max_rows:,}. Split it into several files")
    checker = LabelChecker(options, label_mode, allow_free_text)
    controls = _choice_controls(tasks, from_name, what, RESULT_TYPES.get(label_mode, "choices"))
    parsed = [_read_task(t, i, what, data_key, controls, checker, label_mode, limits) for i, t in enumerate(tasks, 1)]
    checker.raise_unknown(what)
    check_ids([t.external_id for t in parsed], [t.where for t in parsed])
    for t in parsed:
        if t.image_ref is None:
            t.item = item_paths(t.item, upload_dir, f"{what}: {t.where}, data")
    file_paths: list[str | None] | None = None
    if any(t.image_ref is not None for t in parsed):
        if any(t.image_ref is None for t in parsed):
            first = next(t for t in parsed if t.image_ref is None)
            raise ValidationError(f"{first.where} holds no image while other tasks do; put text and images in separate files")
        file_paths = _resolve_images(parsed, zf, images, limits, upload_dir, what)
    if zf is not None:
        zf.close()
    if is_marks(label_mode):
        for t in parsed:
            t.annotations = [_checked_marks(ann, t, label_mode, options, what) for ann in t.annotations]
    items = [t.item for t in parsed]
    ids = fill_ids(items, [t.external_id for t in parsed])
    annotations = [t.annotations for t in parsed]
    n_ann = sum(len(a) for a in annotations)
    hints = [t.prediction for t in parsed]
    with_hints = any(h is not None for h in hints)
    preview = pd.DataFrame({
        "id": ids[:20],
        "item": [short_item(t.item) for t in parsed[:20]],
        "annotations": [len(t.annotations) for t in parsed[:20]],
        "labels": ["; ".join(f"{a.user}: {_label_text(a.value, label_mode)}" for a in t.annotations) for t in parsed[:20]],
        **({"model's guess": ["" if h is None else _label_text(h.value) + ("" if h.score is None else f" ({h.score:.0%})")
                              for h in hints[:20]]} if with_hints else {}),
    })
    as_rows = bool(items) and isinstance(items[0], dict) and file_paths is None
    columns = list(items[0]) if as_rows else None
    return PreparedImport(items=items, external_ids=ids, labels=None, preview=preview, n_rows=len(items), file_paths=file_paths,
                          display_columns=columns, model_columns=columns, annotations=annotations if n_ann else None,
                          hints=hints if with_hints else None)


def _label_text(value: Any, label_mode: str = "single") -> str:
    if is_marks(label_mode):
        return f"{len(value)} {label_mode if len(value) != 1 else label_mode[:-1]}"
    return ", ".join(map(str, value)) if isinstance(value, list) else str(value)


def _open_task_zip(data: bytes, limits: ImportLimits, what: str) -> tuple[zipfile.ZipFile, str, dict[str, zipfile.ZipInfo]]:
    """The ZIP, the name of its one tasks .json, and its files by path (checked as every upload's ZIP is)."""
    zf = open_zip(data, what, "Expected a ZIP of a tasks .json file and its images")
    entries = {i.filename.replace("\\", "/"): i for i in safe_entries(zf, limits, what)}
    tasks = [n for n in entries if n.lower().endswith(".json")]
    if len(tasks) != 1:
        got = ", ".join(map(repr, tasks[:5])) if tasks else "none"
        raise ValidationError(f"{what} must hold exactly one .json file of Label Studio tasks beside the images; it holds {got}")
    return zf, tasks[0], entries


def _choice_controls(tasks: list[Any], from_name: str | None, what: str, kind: str = "choices") -> str | None:
    """The from_name whose results (of type ``kind``: choices, labels or rectanglelabels) are labels: the one given, or
    the only one the file uses."""
    names: Counter[str] = Counter()
    for task in tasks:
        anns = task.get("annotations") if isinstance(task, dict) else None
        for ann in anns if isinstance(anns, list) else []:
            for res in (ann.get("result") if isinstance(ann, dict) and isinstance(ann.get("result"), list) else []):
                if isinstance(res, dict) and str(res.get("type", "")).lower() == kind:
                    names[str(res.get("from_name", ""))] += 1
    if from_name is not None:
        if names and from_name not in names:
            raise ValidationError(f"{what} has no {kind} from the control {from_name!r}; its controls of that kind are "
                                  f"{', '.join(map(repr, names))}")
        return from_name
    if len(names) > 1:
        raise ValidationError(f"{what} has {kind} from several controls ({', '.join(map(repr, names))}); name the one that "
                              "holds the labels (from_name: --from-name on the command line, 'Choices control' on the Admin page)")
    return next(iter(names), None)


def _read_task(task: Any, i: int, what: str, data_key: str | None, control: str | None, checker: LabelChecker,
               label_mode: str, limits: ImportLimits) -> _Task:
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
        if isinstance(value, str) and (key.lower() in IMAGE_KEYS or DATA_URI.match(value)):
            image_ref = value
            item: Any = None
        else:
            item = decoded(value, f"{what}: {where}, data key {key!r}")
    else:
        item = {k: decoded(v, f"{what}: {where}, data key {k!r}") for k, v in data.items()}
    if isinstance(item, str) and len(item) > limits.max_field_chars:
        raise ValidationError(f"{what}: {where} has {len(item):,} characters of text; the limit is {limits.max_field_chars:,}")
    if item is None and image_ref is None:
        raise ValidationError(f"{what}: {where} has null data; give every task its text or image")
    preds = task.get("predictions")
    if preds is not None and not isinstance(preds, list):
        raise ValidationError(f"{what}: {where} has \"predictions\" that are not a list")
    # A marks project's hints come from its own model; a file's predictions are left out there.
    prediction = None if is_marks(label_mode) else _prediction(preds or [], what, where, control, checker, label_mode)
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
        if is_marks(label_mode):
            user = _user_name(ann.get("completed_by"), f"{what}: {at}")
            if user in users:
                raise ValidationError(f"{what}: {where} has two annotations by {user!r} (annotations {users[user]} and {j}); "
                                      "superintendent keeps one annotation per person per item: remove one")
            users[user] = j
            out.append(ImportedAnnotation(user=user, value=_regions(result, f"{what}: {at}", control, label_mode, checker),
                                          created_at=parse_time(ann.get("created_at"), f"{what}: {at}"),
                                          time_taken=parse_seconds(ann.get("lead_time"), f"{what}: {at}", "lead_time")))
            continue
        chosen = _choices(result, f"{what}: {at}", control)
        other = next((r for r in result if str(r.get("type", "")).lower() != "choices"), None)
        if other is not None:
            raise ValidationError(f"{what}: {at} has a result of type {other.get('type')!r}; superintendent imports "
                                  "classification results (type 'choices') only")
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
        out.append(ImportedAnnotation(user=user, value=label, created_at=parse_time(ann.get("created_at"), f"{what}: {at}"),
                                      time_taken=parse_seconds(ann.get("lead_time"), f"{what}: {at}", "lead_time")))
    name = meta.get("name") if isinstance(meta.get("name"), str) else None
    return _Task(where=where, item=item, image_ref=image_ref, external_id=external_id, annotations=out, name=name,
                 prediction=prediction)


def _regions(results: Any, at: str, control: str | None, label_mode: str, checker: LabelChecker) -> list[dict[str, Any]]:
    """The spans or boxes of an annotation's result list, as read (box positions still in percent, under ``"percent"``);
    each label matched to an option (unknown ones are collected by ``checker``)."""
    kind = RESULT_TYPES[label_mode]
    if not isinstance(results, list):
        raise ValidationError(f"{at} has a \"result\" that is not a list")
    out: list[dict[str, Any]] = []
    for k, res in enumerate(results, 1):
        if not isinstance(res, dict):
            raise ValidationError(f"{at} has a result that is not an object")
        rtype = str(res.get("type", "")).lower()
        if rtype != kind:
            raise ValidationError(f"{at} has a result of type {res.get('type')!r}; a {label_mode} project imports {kind!r} regions "
                                  f"only (Label Studio's {'<Labels>' if label_mode == SPANS else '<RectangleLabels>'} control)")
        if control is not None and str(res.get("from_name", "")) != control:
            continue
        value = res.get("value")
        region = f"{at}, region {k}"
        if not isinstance(value, dict):
            raise ValidationError(f"{region} has no \"value\" object")
        labels = value.get(kind)
        if not isinstance(labels, list) or len(labels) != 1 or isinstance(labels[0], (dict, list)):
            raise ValidationError(f"{region} must have exactly one label in value.{kind}; got {labels!r}"[:300]
                                  + (": a mark has one label here, so give each label its own region" if isinstance(labels, list)
                                     and len(labels) > 1 else ""))
        label = checker.one(labels[0], region)
        if label is None:
            continue  # an unknown label: listed with the others, and nothing is imported
        if label_mode == SPANS:
            if "start" not in value or "end" not in value:
                raise ValidationError(f"{region} has no start / end character offsets (a region of <HyperText> is "
                                      "located by XPath, which superintendent does not read: use <Text>)")
            mark = {"start": value["start"], "end": value["end"], "label": label}
            if "text" in value:
                mark["text"] = value["text"]
        else:
            rotation = value.get("rotation", 0)
            if rotation not in (0, None) and not (isinstance(rotation, (int, float)) and float(rotation) % 360 == 0):
                raise ValidationError(f"{region} is rotated by {rotation!r} degrees; superintendent's boxes are upright")
            missing = [f for f in ("x", "y", "width", "height") if f not in value]
            if missing:
                raise ValidationError(f"{region} has no {', '.join(missing)} (percent of the image)")
            mark = {"percent": [value[f] for f in ("x", "y", "width", "height")], "label": label}
        out.append(mark)
    return out


def _checked_marks(ann: ImportedAnnotation, task: _Task, label_mode: str, options: Sequence[Any], what: str) -> ImportedAnnotation:
    """An annotation's regions as the project's checked spans or boxes (percent turned into pixels of the item's image)."""
    at = f"{what}: {task.where}, annotation by {ann.user!r}"
    value = ann.value
    try:
        if label_mode == BOXES:
            width, height = image_size(task.item)
            value = []
            for k, mark in enumerate(ann.value, 1):
                numbers = mark["percent"]
                if any(isinstance(v, bool) or not isinstance(v, (int, float)) for v in numbers):
                    raise ValidationError(f"box {k}'s x, y, width and height must be numbers (percent of the image); got {numbers!r}")
                x, y, w, h = (float(v) for v in numbers)
                value.append({"x": x * width / 100, "y": y * height / 100, "width": w * width / 100, "height": h * height / 100,
                              "label": mark["label"]})
        checked = check_marks(value, label_mode, task.item, options)
    except ValidationError as exc:
        raise ValidationError(f"{at}: {exc}; nothing was imported") from None
    return dataclasses.replace(ann, value=checked)


def _choices(results: Any, at: str, control: str | None) -> list[Any]:
    """The chosen values of a result list (its ``choices`` results from ``control``, or from any when None)."""
    if not isinstance(results, list):
        raise ValidationError(f"{at} has a \"result\" that is not a list")
    chosen: list[Any] = []
    for res in results:
        if not isinstance(res, dict):
            raise ValidationError(f"{at} has a result that is not an object")
        if str(res.get("type", "")).lower() != "choices" or (control is not None and str(res.get("from_name", "")) != control):
            continue
        value = res.get("value")
        choices = value.get("choices") if isinstance(value, dict) else None
        if not isinstance(choices, list) or any(isinstance(c, (dict, list)) for c in choices):
            raise ValidationError(f"{at} has a choices result without a \"value\": {{\"choices\": [...]}} list")
        chosen.extend(c for c in choices if c not in chosen)
    return chosen


def _prediction(preds: list[Any], what: str, where: str, control: str | None, checker: LabelChecker,
                label_mode: str) -> Prediction | None:
    """A task's model guess: its first prediction with a choice (the label, checked as annotations are, and the
    prediction's ``score`` when it is a number from 0 to 1). Other kinds of prediction results are left alone."""
    for k, pred in enumerate(preds, 1):
        at = f"{where}, prediction {k}"
        if not isinstance(pred, dict):
            raise ValidationError(f"{what}: {at} is not an object with a \"result\" list")
        chosen = _choices(pred.get("result", []), f"{what}: {at}", control)
        if not chosen or (label_mode == "single" and len(chosen) > 1):
            continue  # no choice, or several for a one-label project: no single guess to show
        label = checker.value(chosen, at)
        if label is None or label == []:
            continue  # an unknown choice: listed with the other unknown values
        score = pred.get("score")
        ok = isinstance(score, (int, float)) and not isinstance(score, bool) and math.isfinite(score) and 0 <= score <= 1
        version = pred.get("model_version")
        return Prediction(label, float(score) if ok else None, str(version)[:200] if version not in (None, "") else None)
    return None


def _resolve_images(tasks: list[_Task], zf: zipfile.ZipFile | None, entries: dict[str, zipfile.ZipInfo], limits: ImportLimits,
                    upload_dir: Path | str | None, what: str) -> list[str]:
    """Find every task's image (data URI, ZIP entry by path or basename, or a file already in the upload folder)
    and save the new ones through the ZIP-of-images importer (same checks, same folder layout)."""
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
        uri = DATA_URI.match(ref)
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
            check_ratio(info, what)
            key = "zip:" + entry
            if key not in pending:
                pending[key] = (f"{len(pending):06d}-{PurePosixPath(entry).name}", read_entry(zf, info, what))
            plan.append(("new", key))
            t.name = t.name or PurePosixPath(entry).name
            continue
        local = Path(ref) if not parsed.scheme or len(parsed.scheme) == 1 else None
        if local is not None and local.is_absolute():
            try:
                existing = upload_file(ref, root, f"{what}: {t.where}")
            except ValidationError:
                existing = None  # not a file of this server's upload folder: said below, with what to upload instead
            if existing is not None:
                plan.append(("existing", existing))
                t.name = t.name or Path(existing).name
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
        names = {f.original_name: f for f in files}
        saved = {key: names[entry_name] for key, (entry_name, _) in pending.items()}
    paths = []
    for t, (kind, ref) in zip(tasks, plan):
        if kind == "new":
            path, width, height = str(saved[ref].path), saved[ref].width, saved[ref].height
        else:
            path = ref
            width, height = image_size({"image_path": path})
        t.item = {"image_path": path, "name": t.name or Path(path).name, "width": width, "height": height}
        paths.append(path)
    return paths


def _user_name(completed_by: Any, where: str) -> str:
    """Our user name for a Label Studio annotator: 'username', else e-mail, else 'ls-<id>'; '_import' when not given."""
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
    return check_annotator(re.sub(r"\s+", "-", text.strip().lower()), where)
