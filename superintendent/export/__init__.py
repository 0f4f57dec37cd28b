"""Data out: a project's labels as a file's bytes, in the format asked for.

* :mod:`~superintendent.export.tables`: CSV, JSON and Parquet tables, one row
  per finished item with its final label (the default), or with
  ``individual=True`` one row per annotation beside the item's label; a CSV
  text cell a spreadsheet would run as a formula (``=``, ``+``, ``-``, ``@``,
  tab, carriage return first) gets a single quote in front unless
  ``raw_csv=True``;
* :mod:`~superintendent.export.jsonl`: JSON Lines of items, every item and
  every annotation, to import again without loss;
* :mod:`~superintendent.export.label_studio`: Label Studio tasks (choices, or the
  ``labels`` / ``rectanglelabels`` regions of spans and boxes projects);
* :mod:`~superintendent.export.spans`: a spans project as CoNLL-2003 BIO tags
  or spaCy-style JSON Lines;
* :mod:`~superintendent.export.boxes`: a boxes project as COCO or YOLO, each a
  ZIP holding the images.

Which formats fit a project is :func:`formats_for` (its kind, the ``label_mode``).

The item's label is :func:`superintendent.queue.final_labels`' (a reviewer's
correction, else the consensus). Every statement is the queue's
(:mod:`superintendent.queue.transfer`).
"""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import IO, Any

from sqlalchemy.engine import Engine

from superintendent.export.boxes import write_coco, write_yolo
from superintendent.export.jsonl import export_jsonl, write_jsonl
from superintendent.export.label_studio import DEFAULT_FROM_NAME, EMAIL_DOMAIN, export_label_studio, write_label_studio
from superintendent.export.tables import (TABLE_FORMATS, annotations_frame, annotations_table, check_raw_csv, export_table, labels_frame,
                                          neutralise_formula, shown_fields, write_table)
from superintendent.export.spans import write_conll, write_spacy
from superintendent.marks import BOXES, SPANS
from superintendent.store.models import Project
from superintendent.validation import ValidationError

__all__ = [
    "DEFAULT_FROM_NAME", "EMAIL_DOMAIN", "EXTENSIONS", "FORMATS", "TABLE_FORMATS", "annotations_frame", "annotations_table",
    "KIND_FORMATS", "export_jsonl", "export_label_studio", "export_labels", "export_table", "formats_for", "labels_frame",
    "neutralise_formula", "shown_fields", "write_labels",
]

FORMATS = {"csv": "text/csv", "json": "application/json", "parquet": "application/vnd.apache.parquet",
           "jsonl": "application/x-ndjson", "label-studio": "application/json",
           "conll": "text/plain", "spacy": "application/x-ndjson", "coco": "application/zip", "yolo": "application/zip"}  # -> MIME type
EXTENSIONS = {"csv": "csv", "json": "json", "parquet": "parquet", "jsonl": "jsonl", "label-studio": "json",
              "conll": "conll", "spacy": "jsonl", "coco": "zip", "yolo": "zip"}
KIND_FORMATS = {SPANS: ("conll", "spacy"), BOXES: ("coco", "yolo")}  # the formats of one kind of project only
_WRITERS = {"conll": write_conll, "spacy": write_spacy, "coco": write_coco, "yolo": write_yolo}


def formats_for(label_mode: str) -> list[str]:
    """The export formats that fit a project of this kind (``label_mode``), the kind's own first: spans add CoNLL and
    spaCy JSON Lines, boxes COCO and YOLO; every kind has the tables (spans and boxes as JSON text in CSV and Parquet),
    the items JSON Lines and Label Studio."""
    own = list(KIND_FORMATS.get(label_mode, ()))
    return [*own, *(f for f in FORMATS if not any(f in kind for kind in KIND_FORMATS.values()))]


def _check_format(project: Project, fmt: str) -> None:
    if fmt not in FORMATS:
        raise ValidationError(f"export format must be one of {', '.join(FORMATS)}; got {fmt!r}")
    if fmt not in formats_for(project.label_mode):
        kind = next(k for k, fmts in KIND_FORMATS.items() if fmt in fmts)
        raise ValidationError(f"{fmt} is an export of {kind} projects; project {project.name!r} is a {project.label_mode} project: "
                              f"export it as {', '.join(formats_for(project.label_mode))}")


def write_labels(engine: Engine, project: Project, fmt: str, out: IO[bytes], *, individual: bool = False,
                 from_name: str = DEFAULT_FROM_NAME, to_name: str | None = None, image_value: str = "path",
                 progress: Callable[[float], Any] | None = None, raw_csv: bool = False) -> None:
    """Write the project's labels to ``out`` in ``fmt`` (see :func:`export_labels`), a batch of items at a time (CSV,
    JSON, JSON Lines and Label Studio stream; Parquet and ``individual`` tables are built whole);
    ``progress(fraction)`` reports how far it is."""
    _check_format(project, fmt)
    check_raw_csv(fmt, raw_csv)
    if individual and fmt not in TABLE_FORMATS:
        raise ValidationError(f"individual annotations are an option of the table formats ({', '.join(TABLE_FORMATS)}); "
                              f"{fmt} always holds every annotation")
    if fmt in _WRITERS:
        _WRITERS[fmt](engine, project, out, progress=progress)
    elif fmt == "jsonl":
        write_jsonl(engine, project, out, progress=progress)
    elif fmt == "label-studio":
        write_label_studio(engine, project, out, from_name=from_name, to_name=to_name, image_value=image_value, progress=progress)
    else:
        write_table(engine, project, fmt, out, individual=individual, progress=progress, raw_csv=raw_csv)


def export_labels(engine: Engine, project: Project, fmt: str, *, individual: bool = False,
                  from_name: str = DEFAULT_FROM_NAME, to_name: str | None = None, image_value: str = "path",
                  raw_csv: bool = False) -> bytes:
    """The project's labels as a file's bytes.

    ``csv`` / ``json`` / ``parquet``: the table of :func:`labels_frame`
    (multi-label values are ``a;b`` in CSV, lists in JSON and Parquet): the
    external id as uploaded, the shown fields, the label, who labelled and when.
    In CSV, a text cell or header that begins with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return
    (and is not a plain number such as ``-3.5``) gets a single quote in front, so a spreadsheet shows it as
    text instead of running it as a formula (OWASP, "CSV Injection"); ``raw_csv=True`` writes the values as
    they are. JSON, JSON Lines, Parquet and Label Studio always hold the values as they are.
    ``jsonl``: one object per item (:func:`export_jsonl`).
    ``label-studio``: Label Studio tasks (:func:`export_label_studio`;
    ``from_name``, ``to_name`` and ``image_value`` are passed on).
    Spans projects only: ``conll`` (CoNLL-2003 BIO, :mod:`~superintendent.export.spans`), ``spacy``
    (``{"text", "spans", "id"}`` JSON Lines). Boxes projects only: ``coco`` and ``yolo``, ZIPs holding the
    images (:mod:`~superintendent.export.boxes`).
    """
    buffer = io.BytesIO()
    write_labels(engine, project, fmt, buffer, individual=individual, from_name=from_name, to_name=to_name, image_value=image_value,
                 raw_csv=raw_csv)
    return buffer.getvalue()
