"""The old home of exports, kept for the Admin page, the CLI and the docs: see :mod:`superintendent.export`."""

from __future__ import annotations

from superintendent.export import EXTENSIONS, FORMATS, TABLE_FORMATS, export_labels, labels_frame

__all__ = ["EXTENSIONS", "FORMATS", "TABLE_FORMATS", "export_labels", "labels_frame"]
