"""Images in: a ZIP of PNG / JPEG files, every entry checked before one is saved under the upload folder."""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from superintendent.ingest.common import as_bytes, file_name, reason
from superintendent.ingest.prepared import PREVIEW_ROWS, ImageFile, ImportLimits, PreparedImport
from superintendent.ingest.zipsafe import check_ratio, open_zip, read_entry, safe_entries
from superintendent.validation import ValidationError

__all__ = ["IMAGE_EXTENSIONS", "ImageFile", "prepare_image_zip", "read_image_zip"]

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg")
_IMAGE_FORMATS = {"PNG": ".png", "JPEG": ".jpg"}


@dataclass(frozen=True)
class _CheckedImage:
    info: zipfile.ZipInfo
    name: str
    digest: str
    ext: str
    width: int
    height: int

def _other_image_format(raw: bytes) -> str | None:
    """The format of an image Pillow can read that is not PNG or JPEG ("GIF", "BMP", ...), else None."""
    from PIL import Image

    try:
        with Image.open(io.BytesIO(raw)) as im:
            return im.format if im.format not in _IMAGE_FORMATS else None
    except Exception:  # noqa: BLE001 - not an image at all
        return None


def _check_image(raw: bytes, name: str, limits: ImportLimits, what: str) -> tuple[str, int, int]:
    from PIL import Image

    try:
        with Image.open(io.BytesIO(raw), formats=tuple(_IMAGE_FORMATS)) as im:
            width, height = im.size
            if width * height > limits.max_image_pixels:
                raise ValidationError(f"{name!r} in {what} is {width:,} x {height:,} = {width * height:,} pixels; the limit is "
                                      f"{limits.max_image_pixels:,}. Scale it down first")
            im.verify()
        with Image.open(io.BytesIO(raw), formats=tuple(_IMAGE_FORMATS)) as im:
            fmt, (width, height) = im.format, im.size
    except ValidationError:
        raise
    except Image.DecompressionBombError as exc:
        raise ValidationError(f"{name!r} in {what} is too large an image ({reason(exc)}); scale it down first") from None
    except Exception:  # noqa: BLE001 - Pillow raises many kinds on broken files; its messages name its internals
        other = _other_image_format(raw)
        if other is not None:
            raise ValidationError(f"{what}: entry {name} is a {other} image (PNG or JPEG expected); re-save it as PNG or JPEG") from None
        raise ValidationError(f"{what}: entry {name} is not an image (PNG or JPEG expected); remove it or re-save it as PNG "
                              "or JPEG") from None
    if fmt not in _IMAGE_FORMATS:
        raise ValidationError(f"{what}: entry {name} is a {fmt} image (PNG or JPEG expected); re-save it as PNG or JPEG")
    return _IMAGE_FORMATS[fmt], width, height


def read_image_zip(data: bytes, limits: ImportLimits = ImportLimits(), upload_dir: Path | str | None = None, *,
                   name: str | None = None) -> list[ImageFile]:
    """Check a ZIP of PNG / JPEG images, then save them under ``upload_dir``.

    Every entry is checked first (count, sizes, compression ratio, path,
    extension, image header and pixel count); only then are the images
    written, as ``<sha256[:16]>.png|.jpg``, into a temporary folder inside
    ``upload_dir`` that is renamed to ``upload_dir/zip-<sha256 of the ZIP>``.
    A failure leaves nothing behind; uploading the same ZIP again reuses the
    folder. Directories, ``__MACOSX/`` and dotfiles are skipped.
    """
    what = file_name(name)
    data = as_bytes(data, what)
    if upload_dir is None:
        raise ValidationError("a ZIP of images needs an upload folder to save the images in (upload_dir)")
    if not data:
        raise ValidationError(f"{what} is empty (0 bytes); upload a ZIP of PNG or JPEG images")
    hint = "Expected a ZIP archive of PNG or JPEG images"
    with open_zip(data, what, hint) as zf:
        entries = safe_entries(zf, limits, what)
        wrong = [i.filename for i in entries if not i.filename.lower().endswith(IMAGE_EXTENSIONS)]
        if wrong:
            raise ValidationError(f"{what} holds files that are not .png, .jpg or .jpeg: {', '.join(map(repr, wrong[:5]))}"
                                  f"{' and more' if len(wrong) > 5 else ''}; remove them from the ZIP")
        if not entries:
            raise ValidationError(f"{what} holds no images; {hint}")
        for i in entries:
            check_ratio(i, what)
        checked: list[_CheckedImage] = []
        for i in entries:
            raw = read_entry(zf, i, what)
            ext, width, height = _check_image(raw, i.filename, limits, what)
            checked.append(_CheckedImage(i, i.filename, hashlib.sha256(raw).hexdigest(), ext, width, height))
        folder = _save_images(zf, checked, Path(upload_dir), hashlib.sha256(data).hexdigest()[:16], what)
    return [ImageFile(c.name, folder / f"{c.digest[:16]}{c.ext}", c.width, c.height) for c in checked]


def prepare_image_zip(data: bytes, limits: ImportLimits, upload_dir: Path | str | None, *, name: str | None = None) -> PreparedImport:
    """Items ``{"image_path": ..., "name": ..., "width": ..., "height": ...}`` of the images of a ZIP, saved by
    :func:`read_image_zip` (the size in pixels is what boxes are checked against and exports write)."""
    images = read_image_zip(data, limits, upload_dir, name=name)
    items = [{"image_path": str(img.path), "name": img.original_name, "width": img.width, "height": img.height} for img in images]
    preview = pd.DataFrame({"name": [i.original_name for i in images[:PREVIEW_ROWS]],
                            "width": [i.width for i in images[:PREVIEW_ROWS]],
                            "height": [i.height for i in images[:PREVIEW_ROWS]]})
    return PreparedImport(items=items, external_ids=[img.original_name for img in images], labels=None, preview=preview, n_rows=len(items),
                          file_paths=[str(img.path) for img in images])


def _save_images(zf: zipfile.ZipFile, checked: list[_CheckedImage], upload_dir: Path, zip_digest: str, what: str) -> Path:
    try:
        upload_dir.mkdir(parents=True, exist_ok=True)
        root = upload_dir.resolve()
    except OSError as exc:
        raise ValidationError(f"cannot create the upload folder {str(upload_dir)!r}: {reason(exc)}") from None
    final = root / f"zip-{zip_digest}"
    files = {f"{c.digest[:16]}{c.ext}": c for c in checked}
    if final.is_dir() and all((final / n).is_file() and (final / n).stat().st_size == c.info.file_size for n, c in files.items()):
        return final  # the same ZIP was saved before
    tmp = Path(tempfile.mkdtemp(prefix=".incoming-", dir=root))
    try:
        for stored, c in files.items():
            raw = read_entry(zf, c.info, what)
            if hashlib.sha256(raw).hexdigest() != c.digest:
                raise ValidationError(f"{c.name!r} in {what} changed while it was read; upload the ZIP again")
            (tmp / stored).write_bytes(raw)
        try:
            os.rename(tmp, final)
        except OSError:
            if not final.is_dir():
                raise
            for stored in files:  # another upload of this ZIP got there first, or left it incomplete
                if not (final / stored).is_file():
                    os.replace(tmp / stored, final / stored)
            shutil.rmtree(tmp, ignore_errors=True)
    except ValidationError:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise ValidationError(f"cannot save the images of {what} in {str(root)!r}: {reason(exc)}") from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


