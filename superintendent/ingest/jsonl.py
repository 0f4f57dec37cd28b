"""Items JSON Lines in: what :func:`superintendent.export.export_jsonl` writes, one item per line, read back without loss.

Each line holds ``external_id``, ``data``, ``file_path`` (a file already in
this server's upload folder, or null), ``annotations`` (``user``, ``value``,
``created_at``, ``time_taken``) and optionally a ``review``. Every path (the
``file_path``, a ``data.image_path``) must name a file inside the upload
folder (:func:`~superintendent.ingest.checks.upload_file`). The spans or
boxes of a marks project are checked against their item
(:func:`superintendent.marks.check_marks`). Annotators are
names from the file: :mod:`superintendent.importing` gives each an
import-only account unless the admin maps it to a person. Nothing here
touches the database.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from superintendent.ingest.annotations import check_ids, decoded, parse_seconds, parse_time, short_item
from superintendent.ingest.checks import check_annotator, item_paths, upload_file
from superintendent.ingest.common import decode_text, file_name, load_json, strip_bom
from superintendent.ingest.label_values import LabelChecker
from superintendent.ingest.prepared import ImportedAnnotation, ImportLimits, PreparedImport
from superintendent.marks import check_marks, is_marks
from superintendent.validation import ValidationError, check_options

__all__ = ["prepare_items_jsonl"]


def _marks(value: Any, label_mode: str, item: Any, options: Sequence[Any], at: str) -> list[dict[str, Any]]:
    """A spans or boxes value checked against its item (:func:`superintendent.marks.check_marks`), the place named."""
    try:
        return check_marks(value, label_mode, item, options)
    except ValidationError as exc:
        raise ValidationError(f"{at}: {exc}; nothing was imported") from None


def prepare_items_jsonl(data: bytes, *, name: str | None = None, options: Sequence[Any] = (), label_mode: str = "single",
                        allow_free_text: bool = False, limits: ImportLimits | None = None,
                        upload_dir: Path | str | None = None) -> PreparedImport:
    """Read :func:`superintendent.export.export_jsonl`'s JSON Lines (one item per line) into a PreparedImport."""
    limits = limits or ImportLimits()
    what = file_name(name)
    options = check_options(list(options) if options is not None else None)
    text = decode_text(strip_bom(bytes(data)), what, "JSON Lines")
    checker = LabelChecker(options, label_mode, allow_free_text)
    items: list[Any] = []
    ids: list[str] = []
    paths: list[str | None] = []
    annotations: list[list[ImportedAnnotation]] = []
    places: list[str] = []
    for lineno, line in enumerate(text.split("\n"), 1):
        if not line.strip():
            continue
        where = f"line {lineno}"
        obj = load_json(line, f"{what}, {where}", "Each line must be one object with external_id, data and annotations")
        if not isinstance(obj, dict) or "data" not in obj or not isinstance(obj.get("external_id"), str):
            raise ValidationError(f"{what}: {where} is not an item object with a text \"external_id\" and \"data\"")
        if len(items) >= limits.max_rows:
            raise ValidationError(f"{what} has more than {limits.max_rows:,} items; split it into several files")
        where = f"{where} (external_id {obj['external_id']!r})"
        item = item_paths(decoded(obj["data"], f"{what}: {where}"), upload_dir, f"{what}: {where}, data")
        if isinstance(item, str) and len(item) > limits.max_field_chars:
            raise ValidationError(f"{what}: {where} has {len(item):,} characters of text; the limit is {limits.max_field_chars:,}")
        path = obj.get("file_path")
        if path is not None:
            path = upload_file(path, upload_dir, f"{what}: {where}, file_path")
        anns = obj.get("annotations") or []
        if not isinstance(anns, list):
            raise ValidationError(f"{what}: {where} has \"annotations\" that are not a list")
        out: list[ImportedAnnotation] = []
        users: set[str] = set()
        for j, ann in enumerate(anns, 1):
            at = f"{where}, annotation {j}"
            if not isinstance(ann, dict) or not isinstance(ann.get("user"), str) or "value" not in ann:
                raise ValidationError(f"{what}: {at} is not an object with \"user\" and \"value\"")
            user = check_annotator(ann["user"].strip(), f"{what}: {at}")
            if user in users:
                raise ValidationError(f"{what}: {at} has the user {ann['user']!r} given twice for this item")
            users.add(user)
            value = decoded(ann["value"], f"{what}: {at}")
            if is_marks(label_mode):
                out.append(ImportedAnnotation(user=user, value=_marks(value, label_mode, item, options, f"{what}: {at}"),
                                              created_at=parse_time(ann.get("created_at"), f"{what}: {at}"),
                                              time_taken=parse_seconds(ann.get("time_taken"), f"{what}: {at}", "time_taken")))
                continue
            values = value if label_mode == "multi" and isinstance(value, list) else [value]
            if label_mode == "single" and isinstance(value, list):
                raise ValidationError(f"{what}: {at} has the labels {value!r}, but the project takes one label per item")
            label = checker.value(values, at)
            if label is None:
                continue
            out.append(ImportedAnnotation(user=user, value=label, created_at=parse_time(ann.get("created_at"), f"{what}: {at}"),
                                          time_taken=parse_seconds(ann.get("time_taken"), f"{what}: {at}", "time_taken")))
        review = obj.get("review")
        if review is not None:
            at = f"{where}, review"
            if not isinstance(review, dict) or not isinstance(review.get("by"), str) or "value" not in review:
                raise ValidationError(f"{what}: {at} is not an object with \"value\" and \"by\" (or null)")
            value = decoded(review["value"], f"{what}: {at}")
            if label_mode == "single" and isinstance(value, list):
                raise ValidationError(f"{what}: {at} has the labels {value!r}, but the project takes one label per item")
            if is_marks(label_mode):
                label = _marks(value, label_mode, item, options, f"{what}: {at}")
            else:
                label = checker.value(value if label_mode == "multi" and isinstance(value, list) else [value], at)
            if label is not None:
                out.append(ImportedAnnotation(user=check_annotator(review["by"].strip(), f"{what}: {at}"), value=label,
                                              created_at=parse_time(review.get("at"), f"{what}: {at}"),
                                              review=True))
        items.append(item)
        ids.append(obj["external_id"])
        paths.append(path)
        annotations.append(out)
        places.append(where)
    if not items:
        raise ValidationError(f"{what} holds no items")
    checker.raise_unknown(what)
    check_ids(ids, places)
    preview = pd.DataFrame({"external_id": ids[:20], "item": [short_item(x) for x in items[:20]],
                            "annotations": [len(a) for a in annotations[:20]]})
    as_rows = isinstance(items[0], dict) and all(p is None for p in paths)
    columns = list(items[0]) if as_rows else None
    return PreparedImport(items=items, external_ids=ids, labels=None, preview=preview, n_rows=len(items),
                          file_paths=paths if any(p is not None for p in paths) else None, display_columns=columns,
                          model_columns=columns, annotations=annotations if any(annotations) else None)
