"""The old home of uploads, kept for the Admin page, the CLI, the benchmarks and the docs' examples.

Reading and checking a file is :mod:`superintendent.ingest`
(:func:`~superintendent.ingest.prepare_upload`); writing it in one
transaction is :mod:`superintendent.importing`
(:func:`~superintendent.importing.import_prepared`). New code imports from there.
"""

from __future__ import annotations

from superintendent.importing import import_prepared
from superintendent.ingest import (
    ACCEPTED_EXTENSIONS,
    ARRAY_FORMATS,
    IMAGE_EXTENSIONS,
    INTEROP_FORMATS,
    TABLE_FORMATS,
    ImageFile,
    ImportLimits,
    PreparedImport,
    TablePlan,
    detect_format,
    plan_items,
    prepare_upload,
    read_arrays,
    read_image_zip,
    read_table,
)

__all__ = [
    "ACCEPTED_EXTENSIONS", "ARRAY_FORMATS", "IMAGE_EXTENSIONS", "INTEROP_FORMATS", "ImageFile", "ImportLimits", "PreparedImport",
    "TABLE_FORMATS", "TablePlan", "detect_format", "import_prepared", "plan_items", "prepare_upload", "read_arrays",
    "read_image_zip", "read_table",
]
