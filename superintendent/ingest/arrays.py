"""Arrays in: ``.npy`` and ``.npz`` files, their headers checked before numpy reads them; never unpickled."""

from __future__ import annotations

import io
import math
import zipfile
from collections.abc import Sequence
from typing import IO, Any

import numpy as np
import pandas as pd

from superintendent.ingest.common import NUMERIC_KINDS, as_bytes, file_name, mb, plain, reading, too_many_rows
from superintendent.ingest.formats import ARRAY_FORMATS
from superintendent.ingest.label_values import labels_from_values
from superintendent.ingest.prepared import PREVIEW_ROWS, ImportLimits, PreparedImport
from superintendent.validation import ValidationError

__all__ = ["prepare_arrays", "read_arrays"]


_NPY_HINT = "Save it with numpy.save(path, array) from a numeric array"
_UNCOMPRESSED_HINT = "SUPERINTENDENT_MAX_UNCOMPRESSED_MB"  # the setting that changes the limit


def _npy_header(f: IO[bytes], n_bytes: int, what: str, limits: ImportLimits, *, items: bool) -> tuple[tuple[int, ...], bool, np.dtype]:
    """Shape, Fortran order and dtype from the header of a .npy stream of ``n_bytes`` bytes, checked before any data is
    read: no Python objects (never unpickled), numbers and booleans (or text for labels), the declared size within the
    limit and equal to the data that follows; for ``items``, the rows within the limit and each row holding values."""
    from numpy.lib import format as npformat

    version = npformat.read_magic(f)
    if version == (1, 0):
        shape, fortran, dtype = npformat.read_array_header_1_0(f)
    elif version == (2, 0):
        shape, fortran, dtype = npformat.read_array_header_2_0(f)
    else:
        raise ValidationError(f"{what} is a .npy file of version {version[0]}.{version[1]}, which is only used for "
                              f"structured arrays; {_NPY_HINT}")
    if dtype.hasobject:
        raise ValidationError(f"{what} holds Python objects (dtype {dtype}); reading it would need pickle, which uploads "
                              "never use. Save a numeric array instead, e.g. numpy.save(path, x.astype(numpy.float32))")
    allowed = NUMERIC_KINDS + ("" if items else "U")
    if dtype.kind not in allowed or dtype.names is not None or dtype.subdtype is not None:
        kinds = "numbers, booleans" + ("" if items else " or text")
        raise ValidationError(f"{what} has dtype {dtype}; expected {kinds}. Convert it first, e.g. x.astype(numpy.float32)")
    size = math.prod(shape) * dtype.itemsize
    if size > limits.max_in_memory:
        raise ValidationError(f"{what} declares an array of {mb(size)}; the limit is {mb(limits.max_in_memory)} ({_UNCOMPRESSED_HINT}). "
                              "Split it into smaller files")
    if items:
        _check_item_shape(shape, what, limits)
    if n_bytes - f.tell() != size:
        raise ValidationError(f"{what} is damaged: its header declares shape {shape} of {dtype} ({size:,} bytes) but it holds "
                              f"{n_bytes - f.tell():,} bytes of data (an upload cut short?). {_NPY_HINT}")
    return shape, fortran, dtype


def _check_item_shape(shape: tuple[int, ...], what: str, limits: ImportLimits) -> None:
    """One item per row: rows there, not too many, and each holding at least one value."""
    if not shape:
        raise ValidationError(f"{what} is a single number; expected an array of shape (n_items, ...) with one row per item")
    if shape[0] == 0:
        raise ValidationError(f"{what} has no rows (shape {shape}); expected one row per item")
    if shape[0] > limits.max_rows:
        raise too_many_rows(what, int(shape[0]), limits.max_rows)
    if math.prod(shape[1:]) == 0:
        raise ValidationError(f"{what} has shape {shape}: its {shape[0]:,} items hold no values. Expected one row of values per "
                              "item, e.g. shape (n_items, n_features)")


def _load_npy(raw: bytes, what: str, limits: ImportLimits, *, items: bool = True) -> np.ndarray:
    """A .npy array held in memory, its header checked before numpy reads it; never unpickles."""
    with reading(f"{what} as a .npy array", _NPY_HINT):
        _npy_header(io.BytesIO(raw), len(raw), what, limits, items=items)
        return np.load(io.BytesIO(raw), allow_pickle=False)


def _read_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, what: str, limits: ImportLimits, *, items: bool) -> np.ndarray:
    """A .npz member read straight into its array (no copy of its bytes), after its header is checked."""
    with zf.open(info) as f:
        shape, fortran, dtype = _npy_header(f, info.file_size, what, limits, items=items)
        arr = np.empty(shape[::-1] if fortran else shape, dtype)
        view = memoryview(arr.reshape(-1).view(np.uint8))
        done = 0
        while done < len(view):
            n = f.readinto(view[done:])
            if not n:
                raise ValidationError(f"{what} is damaged: it ends after {done:,} of its {len(view):,} bytes of data. {_NPY_HINT}")
            done += n
        if f.read(1):  # also where zipfile checks the CRC
            raise ValidationError(f"{what} is damaged: it holds more data than its header declares. {_NPY_HINT}")
    return arr.T if fortran else arr


def _check_finite(arr: np.ndarray, what: str) -> None:
    if arr.dtype.kind not in "fc" or arr.size == 0:
        return
    finite = np.isfinite(arr)
    if finite.all():
        return
    n_nan = int(np.isnan(arr).sum())
    n_inf = int(finite.size - finite.sum()) - n_nan
    first = int(np.argmax(~finite.reshape(len(arr), -1).all(axis=1))) if arr.ndim else 0
    parts = [f"{n_nan:,} NaN" if n_nan else "", f"{n_inf:,} infinite" if n_inf else ""]
    raise ValidationError(f"{what} contains {' and '.join(p for p in parts if p)} value(s) (first in row {first + 1}); models "
                          "cannot use them. Replace them first, e.g. numpy.nan_to_num(x), or drop those rows")


def _rows_of(arr: np.ndarray, what: str, limits: ImportLimits) -> list[Any]:
    _check_item_shape(arr.shape, what, limits)
    if arr.ndim == 1:
        return arr.tolist()
    return [arr[i] for i in range(arr.shape[0])]


def read_arrays(data: bytes, fmt: str, limits: ImportLimits = ImportLimits(), *, name: str | None = None
                ) -> tuple[list[Any], list[Any] | None]:
    """Items (rows of the array; plain numbers for a 1-D array) and labels (or None) from a .npy or .npz file.

    A .npz holds the items under ``x`` or ``features`` (or as its only
    array) and optionally labels under ``y`` or ``labels``; NaN labels mean
    unlabelled. Items must be numbers or booleans, all finite.
    """
    what = file_name(name)
    data = as_bytes(data, what)
    if fmt not in ARRAY_FORMATS:
        raise ValidationError(f"{what}: read_arrays reads {', '.join(ARRAY_FORMATS)}; got format {fmt!r}")
    if not data:
        raise ValidationError(f"{what} is empty (0 bytes); save an array with numpy.save")
    if fmt == "npy":
        arr = _load_npy(data, what, limits)
        items = _rows_of(arr, what, limits)
        _check_finite(arr, what)
        return items, None
    with reading(f"{what} as a .npz archive", "Save it with numpy.savez(path, x=features, y=labels)"):
        with zipfile.ZipFile(io.BytesIO(data)) as zf:  # sizes and headers are checked before any array is unpacked
            members = _npz_members(zf, what, limits)
            item_keys = [k for k in ("x", "features") if k in members]
            label_keys = [k for k in ("y", "labels") if k in members]
            if len(item_keys) > 1 or len(label_keys) > 1:
                both = item_keys if len(item_keys) > 1 else label_keys
                raise ValidationError(f"{what} has both {both[0]!r} and {both[1]!r}; keep one of them")
            if not item_keys:
                rest = [k for k in members if k not in label_keys]
                if len(rest) != 1:
                    raise ValidationError(f"{what} holds the arrays {', '.join(map(repr, members)) or 'none'}; expected the items "
                                          "under 'x' (or 'features') and optional labels under 'y' (or 'labels'): "
                                          "numpy.savez(path, x=..., y=...)")
                item_keys = rest
            where = f"array {item_keys[0]!r} of {what}"
            arr = _read_member(zf, members[item_keys[0]], where, limits, items=True)  # zipfile checks the CRC
            y = _read_member(zf, members[label_keys[0]], f"array {label_keys[0]!r} of {what}", limits, items=False) if label_keys else None
    items = _rows_of(arr, where, limits)
    _check_finite(arr, where)
    labels = None
    if y is not None:
        key = label_keys[0]
        if y.ndim != 1 or len(y) != len(items):
            raise ValidationError(f"labels {key!r} of {what} have shape {y.shape}; expected one label per item, shape ({len(items)},). "
                                  "For several labels per item give strings such as 'cat;dog'")
        if y.dtype.kind in "fc" and np.isinf(y).any():
            raise ValidationError(f"labels {key!r} of {what} contain infinite values; use NaN for unlabelled items")
        labels = [plain(v) for v in y.tolist()]
    return items, labels


def _npz_members(zf: zipfile.ZipFile, what: str, limits: ImportLimits) -> dict[str, zipfile.ZipInfo]:
    infos = [i for i in zf.infolist() if not i.filename.endswith("/")]
    if len(infos) > limits.max_zip_entries:
        raise ValidationError(f"{what} holds {len(infos):,} arrays; the limit is {limits.max_zip_entries:,}")
    total = sum(i.file_size for i in infos)
    if total > limits.max_in_memory:
        raise ValidationError(f"{what} unpacks to {mb(total)}; the limit is {mb(limits.max_in_memory)} ({_UNCOMPRESSED_HINT}). "
                              "Split it into smaller files")
    members: dict[str, zipfile.ZipInfo] = {}
    for info in infos:
        if not info.filename.endswith(".npy"):
            raise ValidationError(f"{what} holds {info.filename!r}, which is not an array; a .npz written by numpy.savez "
                                  "holds only .npy arrays")
        members[info.filename[:-4]] = info
    return members


def _short(x: Any) -> str:
    if isinstance(x, np.ndarray):
        flat = x.ravel()[:6]
        body = ", ".join(f"{v:.4g}" if isinstance(v, float) else str(v) for v in flat.tolist())
        return f"{x.dtype}{list(x.shape)}: [{body}{', ...' if x.size > 6 else ''}]"
    return str(x)


def prepare_arrays(data: bytes, fmt: str, limits: ImportLimits, *, name: str | None = None, options: Sequence[Any] = (),
                   label_mode: str = "single") -> PreparedImport:
    """One item per row of the array (see :func:`read_arrays`), labels from ``y`` of a .npz checked against ``options``."""
    items, raw_labels = read_arrays(data, fmt, limits, name=name)
    labels = None if raw_labels is None else labels_from_values(raw_labels, options, label_mode, f"the labels of {file_name(name)}")
    preview = pd.DataFrame({
        "row": range(1, min(len(items), PREVIEW_ROWS) + 1),
        "value": [_short(x) for x in items[:PREVIEW_ROWS]],
    })
    if labels is not None:
        preview["label"] = [None if v is None else str(v) for v in labels[:PREVIEW_ROWS]]
    return PreparedImport(items=items, external_ids=None, labels=labels, preview=preview, n_rows=len(items))
