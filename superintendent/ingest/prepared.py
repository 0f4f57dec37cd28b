"""What every reader returns: a checked upload (:class:`PreparedImport`) and the small records inside it.

Nothing here reads a file or touches the database; :mod:`superintendent.importing`
writes a :class:`PreparedImport` in one transaction.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

MB = 1024 * 1024
PREVIEW_ROWS = 20


@dataclass(frozen=True)
class ImportLimits:
    """Upper bounds on what one upload may contain.

    ``max_zip_total_uncompressed`` also bounds the decompressed size of the
    other compressed containers (the column chunks of a Parquet file, the
    members of a ``.npz``).
    """

    max_bytes: int = 200 * MB
    max_rows: int = 2_000_000
    max_field_chars: int = 100_000
    max_zip_entries: int = 10_000
    max_zip_total_uncompressed: int = 1024 * MB
    max_image_pixels: int = 50_000_000


@dataclass(frozen=True)
class TablePlan:
    """How the columns of a table become items.

    The item holds the union of ``display_columns`` (shown to labellers) and
    ``model_columns`` (given to the model); ``label_column`` holds existing
    labels (empty cells = unlabelled); ``id_column`` holds external ids.
    """

    display_columns: list[str]
    model_columns: list[str]
    label_column: str | None = None
    id_column: str | None = None


@dataclass(frozen=True)
class ImageFile:
    """An image of an upload, checked and saved: its name in the upload, where it now is, its size in pixels."""

    original_name: str
    path: Path
    width: int
    height: int


@dataclass(frozen=True)
class ImportedAnnotation:
    """One annotation read from a file: who, what (checked against the project), when and how long."""

    user: str
    value: Any
    created_at: dt.datetime | None = None
    time_taken: float | None = None
    review: bool = False  # a reviewer's correction of the item's label (``user`` must be allowed to review)


@dataclass
class PreparedImport:
    """A checked upload, ready for :func:`superintendent.importing.import_prepared`."""

    items: list[Any]
    external_ids: list[str] | None
    labels: list[Any] | None
    preview: pd.DataFrame
    n_rows: int
    file_paths: list[str | None] | None = None
    display_columns: list[str] | None = None  # table rows: which fields labellers see ...
    model_columns: list[str] | None = None  # ... and which the model gets (stored with the project)
    annotations: list[list[ImportedAnnotation]] | None = None  # per item, those of named annotators (Label Studio, items JSONL)
