"""Which reader an upload goes to: the format from the file name, refined by a look at the content."""

from __future__ import annotations

import io
import json
import os
import zipfile
from typing import Any

from superintendent.ingest.common import file_name, strip_bom
from superintendent.ingest.zipsafe import skipped
from superintendent.validation import ValidationError

TABLE_FORMATS = ("csv", "parquet", "json", "jsonl")
ARRAY_FORMATS = ("npy", "npz")
LABEL_STUDIO = "label-studio"
ITEMS_JSONL = "items-jsonl"
INTEROP_FORMATS = (LABEL_STUDIO, ITEMS_JSONL)  # told from the content (or named), never from the extension alone
ACCEPTED_EXTENSIONS: dict[str, str] = {
    ".csv": "csv", ".parquet": "parquet", ".pq": "parquet", ".json": "json", ".jsonl": "jsonl", ".ndjson": "jsonl",
    ".npy": "npy", ".npz": "npz", ".zip": "zip",
}
_SNIFF_BYTES = 1 << 16


def detect_format(filename: str | os.PathLike[str], data: bytes | None = None) -> str:
    """The format of an upload from its file name's extension (case-insensitive).

    Given the content too, Label Studio tasks (``.json``, or a ``.zip`` with a
    ``.json`` in it) are told as ``"label-studio"`` and exported items JSON
    Lines as ``"items-jsonl"`` (see :func:`sniff_format`).
    """
    if not isinstance(filename, (str, os.PathLike)):
        raise ValidationError(f"expected a file name such as 'data.csv'; got {type(filename).__name__}")
    name = os.fspath(filename)
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    suffix = ("." + base.rsplit(".", 1)[-1].lower()) if "." in base else ""
    fmt = ACCEPTED_EXTENSIONS.get(suffix)
    if fmt is None:
        got = f"extension {suffix!r}" if suffix else "no extension"
        raise ValidationError(f"cannot tell the format of {name!r} from its name ({got}); accepted extensions: "
                              f"{', '.join(ACCEPTED_EXTENSIONS)}. Rename the file or convert it to one of these formats")
    if data is not None:
        fmt = sniff_format(fmt, data)
    return fmt


def explicit_format(fmt: str, filename: str | None) -> str:
    """A format the caller named, checked against those known."""
    known = sorted(set(ACCEPTED_EXTENSIONS.values()) | set(INTEROP_FORMATS))
    if fmt not in known:
        raise ValidationError(f"unknown import format {fmt!r} for {file_name(filename)}; formats: {', '.join(known)}")
    return fmt


def _is_task_list(obj: Any) -> bool:
    return isinstance(obj, list) and bool(obj) and all(isinstance(t, dict) and isinstance(t.get("data"), dict) for t in obj)


def sniff_format(fmt: str, data: bytes) -> str:
    """Refine a format told by the file name from the content: Label Studio tasks, our items JSON Lines, or ``fmt``.

    A ``.json`` list of objects that all have a ``"data"`` object is Label
    Studio's; a ``.zip`` holding a ``.json`` file is Label Studio tasks with
    their images; a ``.jsonl`` whose first object has ``external_id``,
    ``data`` and ``annotations`` is what :func:`superintendent.export.export_jsonl`
    writes. Anything else keeps ``fmt`` (and its reader reports any problem).
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        return fmt
    data = strip_bom(bytes(data))
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
                names = [i.filename for i in zf.infolist() if not i.filename.endswith("/") and not skipped(i.filename)]
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
