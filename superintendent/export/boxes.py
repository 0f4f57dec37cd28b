"""Boxes out: COCO JSON and YOLO text files, each as a ZIP holding the images themselves.

Both hold the finished items of a ``boxes`` project (in item order) with their final boxes
(:func:`superintendent.labels.final_label`: a reviewer's correction, else the labellers' majority). An item whose
final value is ``[]`` ("nothing to mark") is a negative example: listed in COCO's ``images`` with no annotations, and
given an empty ``labels/<stem>.txt`` in YOLO. Unfinished items are left out (an image nobody has looked at is not an
image without objects).

Every image is in the ZIP under ``images/``: an uploaded image file byte for byte (its original name, made unique
with ``-2``, ``-3``, ... when two items share one), an image array as a PNG of what labellers saw
(:func:`superintendent.images.array_to_image` at its own size), named after the item's id. An image file that is
missing on this server stops the export with a message naming the item.

COCO (``annotations.json``)
    ``images``: ``{"id", "file_name": "images/<name>", "width", "height"}`` (``file_name`` relative to the JSON, so
    the folder the ZIP is unpacked into is the image root); ``annotations``: ``{"id", "image_id", "category_id",
    "bbox": [x, y, width, height], "area", "iscrowd": 0, "segmentation": []}`` in pixels from the top left;
    ``categories``: the project's options in order, ids from 1. Ids count from 1.
YOLO
    ``images/<name>``, ``labels/<stem>.txt`` with one ``class cx cy w h`` line per box (class: the option's index
    from 0; centre, width and height as fractions of the image's width and height, 6 decimals), ``classes.txt``
    (one option per line) and ``data.yaml`` (``path``, ``train``, ``val``, ``nc``, ``names``).
"""

from __future__ import annotations

import io
import json
import re
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path, PurePosixPath
from typing import IO, Any

import numpy as np
from sqlalchemy.engine import Engine

from superintendent.export.spans import finished_marks
from superintendent.images import array_to_image
from superintendent.marks import image_size
from superintendent.queue.transfer import ItemRecord
from superintendent.store.models import Project
from superintendent.validation import ValidationError

__all__ = ["IMAGES_DIR", "write_coco", "write_yolo"]

IMAGES_DIR = "images"
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


class _Images:
    """Unique file names in ``images/`` for a ZIP's items, and the image bytes written under them."""

    def __init__(self, zf: zipfile.ZipFile) -> None:
        self.zf = zf
        self.used: set[str] = set()

    def _unique(self, stem: str, ext: str) -> str:
        stem = _UNSAFE.sub("_", stem).strip("._") or "image"
        unique, n = stem, 1
        while unique.lower() in self.used:  # by stem: YOLO's labels/<stem>.txt must be unique too
            n += 1
            unique = f"{stem}-{n}"
        self.used.add(unique.lower())
        return unique + ext

    def add(self, rec: ItemRecord) -> tuple[str, int, int]:
        """Write the item's image into the ZIP; its file name (inside ``images/``), width and height."""
        data = rec.data
        if isinstance(data, dict) and "image_path" in data:
            path = Path(str(data["image_path"]))
            original = PurePosixPath(str(data.get("name") or path.name).replace("\\", "/")).name
            ext = (Path(original).suffix or path.suffix).lower()
            try:
                raw = path.read_bytes()
            except OSError as exc:
                raise ValidationError(f"the image of item {rec.external_id!r} ({path}) cannot be read ({exc.strerror or exc}); "
                                      "put the file back or delete the item, then export again") from None
            width, height = image_size(data)
            name = self._unique(Path(original).stem, ext)
        elif isinstance(data, np.ndarray):
            width, height = image_size(data)
            buffer = io.BytesIO()
            array_to_image(data, size=0).save(buffer, format="PNG")
            raw = buffer.getvalue()
            name = self._unique(rec.external_id, ".png")
        else:
            raise ValidationError(f"item {rec.external_id!r} is not an image file or image array; a boxes export needs images")
        self.zf.writestr(f"{IMAGES_DIR}/{name}", raw, compress_type=zipfile.ZIP_STORED)  # PNG and JPEG are compressed already
        return name, width, height


def _zip(out: IO[bytes]) -> zipfile.ZipFile:
    return zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED)


def _number(value: float) -> int | float:
    return int(value) if float(value).is_integer() else round(float(value), 3)


def write_coco(engine: Engine, project: Project, out: IO[bytes], *, progress: Callable[[float], Any] | None = None) -> None:
    """A ZIP of ``annotations.json`` (COCO) and ``images/`` (see the module's docstring)."""
    options: Sequence[Any] = list(project.options)
    category = {o: i for i, o in enumerate(options, 1)}
    images: list[dict[str, Any]] = []
    annotations: list[dict[str, Any]] = []
    with _zip(out) as zf:
        files = _Images(zf)
        for rec, boxes in finished_marks(engine, project, progress):
            name, width, height = files.add(rec)
            image_id = len(images) + 1
            images.append({"id": image_id, "file_name": f"{IMAGES_DIR}/{name}", "width": width, "height": height,
                           "external_id": rec.external_id})
            for box in boxes:
                w, h = box["width"], box["height"]
                annotations.append({"id": len(annotations) + 1, "image_id": image_id, "category_id": category[box["label"]],
                                    "bbox": [_number(box["x"]), _number(box["y"]), _number(w), _number(h)],
                                    "area": _number(w * h), "iscrowd": 0, "segmentation": []})
        coco = {"info": {"description": f"superintendent project {project.name}", "version": "1.0"}, "licenses": [],
                "images": images, "annotations": annotations,
                "categories": [{"id": i, "name": str(o), "supercategory": ""} for o, i in category.items()]}
        zf.writestr("annotations.json", json.dumps(coco, ensure_ascii=False, indent=1))


def yolo_line(box: dict[str, Any], width: int, height: int, class_index: int) -> str:
    """``class cx cy w h``: the box's centre and size as fractions of the image (6 decimals)."""
    cx = (box["x"] + box["width"] / 2) / width
    cy = (box["y"] + box["height"] / 2) / height
    return f"{class_index} {cx:.6f} {cy:.6f} {box['width'] / width:.6f} {box['height'] / height:.6f}"


def write_yolo(engine: Engine, project: Project, out: IO[bytes], *, progress: Callable[[float], Any] | None = None) -> None:
    """A ZIP of ``images/``, ``labels/<stem>.txt``, ``classes.txt`` and ``data.yaml`` (see the module's docstring)."""
    options = list(project.options)
    index = {o: i for i, o in enumerate(options)}
    with _zip(out) as zf:
        files = _Images(zf)
        for rec, boxes in finished_marks(engine, project, progress):
            name, width, height = files.add(rec)
            lines = [yolo_line(b, width, height, index[b["label"]]) for b in boxes]
            zf.writestr(f"labels/{Path(name).stem}.txt", "".join(line + "\n" for line in lines))
        names = [str(o) for o in options]
        zf.writestr("classes.txt", "".join(n + "\n" for n in names))
        # JSON strings are YAML strings: names with colons, quotes or non-ASCII letters stay one name each.
        zf.writestr("data.yaml", f"path: .\ntrain: {IMAGES_DIR}\nval: {IMAGES_DIR}\nnc: {len(names)}\n"
                                 f"names: {json.dumps(names, ensure_ascii=False)}\n")
