"""What every reader returns: a checked upload (:class:`PreparedImport`) and the small records inside it.

Nothing here reads a file or touches the database; :mod:`superintendent.importing`
writes a :class:`PreparedImport` in one transaction.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import pandas as pd

if TYPE_CHECKING:
    from superintendent.config import Settings

MB = 1024 * 1024
PREVIEW_ROWS = 20


@dataclass(frozen=True)
class ImportLimits:
    """Upper bounds on what one upload may contain.

    ``max_zip_total_uncompressed`` bounds what a ZIP of files unpacks to
    (images are written to disk one at a time); data read into memory from a
    compressed container (the column chunks of a Parquet file as they decode,
    the members of a ``.npz``) is bounded by the smaller of it and
    ``max_unpacked_bytes``. A table may have at most ``max_columns`` columns
    and ``max_cells`` cells (rows x columns). :meth:`from_settings` takes them
    from the process settings (``SUPERINTENDENT_MAX_UPLOAD_MB``, ...).
    """

    max_bytes: int = 200 * MB
    max_rows: int = 2_000_000
    max_field_chars: int = 100_000
    max_zip_entries: int = 10_000
    max_zip_total_uncompressed: int = 1024 * MB
    max_image_pixels: int = 50_000_000
    max_columns: int = 10_000
    max_cells: int = 10_000_000
    max_unpacked_bytes: int = 256 * MB

    @classmethod
    def from_settings(cls, settings: Settings) -> ImportLimits:
        """The limits the Admin page and ``superintendent import`` apply, from the settings (``max_upload_*``, ...)."""
        return cls(max_bytes=settings.max_upload_mb * MB, max_rows=settings.max_upload_rows, max_columns=settings.max_upload_columns,
                   max_cells=settings.max_upload_cells, max_field_chars=settings.max_field_chars,
                   max_unpacked_bytes=settings.max_uncompressed_mb * MB)

    @property
    def max_in_memory(self) -> int:
        """The most bytes a compressed table or array may unpack to in memory."""
        return min(self.max_unpacked_bytes, self.max_zip_total_uncompressed)


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


@dataclass(frozen=True)
class Prediction:
    """A model's guess for an item, carried by the file (a Label Studio task's prediction): the label (a list for a
    multi-label project) and the model's score for it, when the file gives one (0 to 1)."""

    value: Any
    score: float | None = None
    model_version: str | None = None


@dataclass
class PreparedImport:
    """A checked upload, ready for :func:`superintendent.importing.import_prepared`."""

    items: Sequence[Any]  # a list, or a table's rows made a chunk at a time (ingest.tables.TableRows)
    external_ids: list[str] | None
    labels: list[Any] | None
    preview: pd.DataFrame
    n_rows: int
    file_paths: list[str | None] | None = None
    display_columns: list[str] | None = None  # table rows: which fields labellers see ...
    model_columns: list[str] | None = None  # ... and which the model gets (stored with the project)
    annotations: list[list[ImportedAnnotation]] | None = None  # per item, those of named annotators (Label Studio, items JSONL)
    hints: list[Prediction | None] | None = None  # per item, a model's guess the file carries (Label Studio predictions)
