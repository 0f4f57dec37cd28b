"""Data in: an uploaded file's bytes become a checked :class:`PreparedImport`; no database, no SQL.

:func:`prepare_upload` tells the format (:mod:`~superintendent.ingest.formats`)
and hands the bytes to its reader:

* :mod:`~superintendent.ingest.tables`: CSV, Parquet, JSON, JSON Lines, made
  items by a :class:`TablePlan`;
* :mod:`~superintendent.ingest.arrays`: ``.npy`` / ``.npz``;
* :mod:`~superintendent.ingest.images`: a ZIP of PNG / JPEG images (saved
  under the upload folder once every entry passed);
* :mod:`~superintendent.ingest.label_studio`: Label Studio tasks (JSON, or a
  ZIP of the tasks and their images);
* :mod:`~superintendent.ingest.jsonl`: items JSON Lines, as exported.

Every problem with the input raises :class:`ValidationError` whose message
names the file, what was expected, what came and how to fix it; no pandas,
pyarrow, numpy or Pillow traceback reaches the user. Nothing is ever
unpickled, and a ZIP is checked entry by entry
(:mod:`~superintendent.ingest.zipsafe`) before a single byte is written.
:func:`superintendent.importing.import_prepared` then writes the result in
one transaction, so a failure imports nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from superintendent.ingest import tables
from superintendent.ingest.arrays import prepare_arrays, read_arrays
from superintendent.ingest.checks import item_paths
from superintendent.ingest.common import as_bytes, file_name, mb
from superintendent.ingest.formats import (
    ACCEPTED_EXTENSIONS,
    ARRAY_FORMATS,
    INTEROP_FORMATS,
    ITEMS_JSONL,
    LABEL_STUDIO,
    TABLE_FORMATS,
    detect_format,
    explicit_format,
    sniff_format,
)
from superintendent.ingest.images import IMAGE_EXTENSIONS, prepare_image_zip, read_image_zip
from superintendent.ingest.jsonl import prepare_items_jsonl
from superintendent.ingest.label_studio import prepare_label_studio
from superintendent.ingest.prepared import ImageFile, ImportedAnnotation, ImportLimits, Prediction, PreparedImport, TablePlan
from superintendent.ingest.tables import plan_items, read_table
from superintendent.ingest.zipsafe import MAX_ZIP_RATIO
from superintendent.validation import LABEL_MODES, ValidationError, check_options

__all__ = [
    "ACCEPTED_EXTENSIONS", "ARRAY_FORMATS", "IMAGE_EXTENSIONS", "INTEROP_FORMATS", "ITEMS_JSONL", "LABEL_STUDIO", "MAX_ZIP_RATIO",
    "TABLE_FORMATS", "ImageFile", "ImportLimits", "ImportedAnnotation", "Prediction", "PreparedImport", "TablePlan", "detect_format", "plan_items",
    "prepare_items_jsonl", "prepare_label_studio", "prepare_upload", "read_arrays", "read_image_zip", "read_table", "sniff_format",
]


def prepare_upload(filename: str, data: bytes, *, plan: TablePlan | None = None, options: Sequence[Any] = (),
                   label_mode: str = "single", limits: ImportLimits = ImportLimits(),
                   upload_dir: Path | str | None = None, fmt: str | None = None, allow_free_text: bool = False,
                   data_key: str | None = None, from_name: str | None = None) -> PreparedImport:
    """Read and check an uploaded file; nothing touches the database.

    Tables become items through ``plan`` (default: every column shown and
    modelled, no labels, ids from the content); arrays give one item per row
    (labels from ``y`` of a .npz); a ZIP of images is saved under
    ``upload_dir`` and gives items ``{"image_path": ..., "name": ...}``.
    Label Studio tasks and items JSON Lines (told from the content, or by
    ``fmt="label-studio"`` / ``"items-jsonl"``) keep their annotators'
    annotations (``data_key`` / ``from_name`` pick the data key and the
    Choices control of Label Studio tasks).
    """
    what = file_name(filename)
    data = as_bytes(data, what)
    if len(data) > limits.max_bytes:
        raise ValidationError(f"{what} is {mb(len(data))}; the limit is {mb(limits.max_bytes)}. Split it into smaller files")
    fmt = detect_format(filename, data) if fmt is None else explicit_format(fmt, filename)
    if label_mode not in LABEL_MODES:
        raise ValidationError(f"label_mode must be one of {', '.join(LABEL_MODES)}; got {label_mode!r}")
    options = check_options(list(options) if options is not None else None)
    if not data:
        raise ValidationError(f"{what} is empty (0 bytes)")
    if fmt in INTEROP_FORMATS:
        if plan is not None:
            raise ValidationError(f"{what} holds {fmt} items; a column plan only applies to tables (CSV, Parquet, JSON, JSON Lines)")
        if fmt == ITEMS_JSONL:
            return prepare_items_jsonl(data, name=filename, options=options, label_mode=label_mode, allow_free_text=allow_free_text,
                                       limits=limits, upload_dir=upload_dir)
        return prepare_label_studio(data, name=filename, options=options, label_mode=label_mode, allow_free_text=allow_free_text,
                                    limits=limits, upload_dir=upload_dir, data_key=data_key, from_name=from_name)
    if fmt in TABLE_FORMATS:
        text_columns = [plan.id_column] if plan is not None and plan.id_column else []
        df = tables.read_table(data, fmt, limits, text_columns=text_columns, name=filename)
        if plan is None:
            plan = TablePlan(display_columns=list(df.columns), model_columns=list(df.columns))
        prepared = plan_items(df, plan, options, label_mode)
        if prepared.items and isinstance(prepared.items[0], dict) and "image_path" in prepared.items[0]:  # files retrains read
            prepared.items = [item_paths(x, upload_dir, f"{what}: data row {i}") for i, x in enumerate(prepared.items, 1)]
        return prepared
    if plan is not None:
        raise ValidationError(f"{what} is a {fmt} file; a column plan only applies to tables (CSV, Parquet, JSON, JSON Lines)")
    if fmt in ARRAY_FORMATS:
        return prepare_arrays(data, fmt, limits, name=filename, options=options, label_mode=label_mode)
    return prepare_image_zip(data, limits, upload_dir, name=filename)
