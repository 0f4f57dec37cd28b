"""JSON serialisation of item data and labels, keeping types, dtypes and shapes.

``dumps``/``loads`` write and read compact JSON text; ``encode``/``decode``
convert to and from JSON-compatible python values (dicts, lists, str, int,
finite float, bool, None). Only JSON is produced: no executable or
binary object formats are used, so loading untrusted text cannot run code.

Values JSON cannot express are written as *tagged* objects: a dict with a
single key of the form ``"__name__"``, e.g.::

    {"__ndarray__": {"dtype": "float32", "shape": [8, 8], "data": "<base64>"}}

Numeric, bool, bytes, datetime64 and timedelta64 arrays store their raw
little-endian bytes in base64 (exact, NaN and inf included); str arrays
store a list of str; object arrays store each element encoded. A user dict
with a non-str key, or with a str key shaped like a tag, is written as
``{"__dict__": [[key, value], ...]}`` so it can never be mistaken for a tag.
"""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import json
import math
import pathlib
import uuid
import zoneinfo
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from superintendent.serialization_decode import (
    _INT64_MAX,
    _INT64_MIN,
    _MASKED_ARRAYS,
    _NUMERIC_DTYPES,
    SUPPORTED_TYPES,
    _is_tag_key,
    _unsupported,
    decode,
    loads,
    loads_rows,
)

__all__ = ["dumps", "dumps_plain_rows", "loads", "loads_rows", "encode", "decode", "plain_columns", "SUPPORTED_TYPES"]

# --------------------------------------------------------------------------- encoding


def encode(obj: Any) -> Any:
    """Convert ``obj`` to a JSON-compatible structure that :func:`decode` turns back into it.

    Raises
    ------
    TypeError
        For an unsupported object, anywhere inside ``obj``; the message names
        its type and where it is (e.g. ``at [3]['a']``).
    ValueError
        For a container that contains itself.
    """
    return _encode(obj, "", set())


def dumps(obj: Any) -> str:
    """Serialise ``obj`` to compact JSON text; see :func:`encode`."""
    return json.dumps(_encode(obj, "", set()), separators=(",", ":"), allow_nan=False)


def plain_columns(frame: pd.DataFrame) -> bool:
    """Whether every row of ``frame``, as a dict of its cells (NaN / None as None), is JSON as it stands: str column
    names that are not tags, and columns of int64-range integers, booleans, finite floats (or NaN) or strings (or
    missing). Checked a column at a time, in C; then :func:`dumps_plain_rows` needs no look at each value."""
    if not all(type(c) is str and not _is_tag_key(c) for c in frame.columns):
        return False
    for name in frame.columns:
        column = frame[name]
        if isinstance(column.dtype, pd.StringDtype):  # str or missing
            continue
        if not isinstance(column.dtype, np.dtype):  # categories, nullable or timezone dtypes: cell by cell
            return False
        kind = column.dtype.kind
        values = column.to_numpy()
        if kind == "b" or (kind == "i" and values.dtype.itemsize <= 8):
            continue
        if kind == "u":
            if len(values) and values.max() > _INT64_MAX:
                return False
        elif kind == "f":
            if np.isinf(values).any():
                return False
        elif kind != "O" or pd.api.types.infer_dtype(values, skipna=True) not in ("string", "empty"):
            return False
    return True


def dumps_plain_rows(rows: list[dict[str, Any]]) -> list[str]:
    """:func:`dumps` of dicts known to need no tags (rows of a table :func:`plain_columns` accepted): the same text,
    without :func:`encode`'s look at each value (a third of a 1M-row import's Python time)."""
    encoder = json.JSONEncoder(separators=(",", ":"), allow_nan=False)
    return [encoder.encode(row) for row in rows]


def _encode(obj: Any, where: str, active: set[int]) -> Any:
    encoder = _EXACT_ENCODERS.get(type(obj))
    if encoder is not None:
        return encoder(obj, where, active)
    if isinstance(obj, np.generic):
        return {"__npscalar__": _encode_ndarray_payload(np.asarray(obj), where, active)}
    if isinstance(obj, pathlib.PurePosixPath):  # Path, PosixPath, PurePosixPath
        return {"__path__": str(obj)}
    if isinstance(obj, pd.Index):  # MultiIndex, PeriodIndex, ...: explains what to do instead
        return _encode_index(obj, where, active)
    for base in (dict, list, tuple, set, frozenset, str, int, float, np.ndarray):
        if isinstance(obj, base):
            raise _unsupported(obj, where, f"subclasses of {base.__module__}.{base.__qualname__} would not come back "
                                           f"as the same type; convert it first, e.g. with {base.__qualname__}(x)")
    raise _unsupported(obj, where)


def _enter(obj: Any, where: str, active: set[int]) -> None:
    if id(obj) in active:
        raise ValueError(f"cannot serialise a {type(obj).__name__} that contains itself (at {where or 'the top level'})")
    active.add(id(obj))


def _encode_int(obj: int, where: str, active: set[int]) -> Any:
    if _INT64_MIN <= obj <= _INT64_MAX:
        return obj
    return {"__int__": hex(obj)}  # exact, portable, and free of the int-to-decimal-str digit limit


def _encode_float(obj: float, where: str, active: set[int]) -> Any:
    if math.isfinite(obj):
        return obj
    return {"__float__": "nan" if math.isnan(obj) else ("inf" if obj > 0 else "-inf")}


def _encode_complex(obj: complex, where: str, active: set[int]) -> Any:
    return {"__complex__": [_encode_float(obj.real, where, active), _encode_float(obj.imag, where, active)]}


def _encode_list(obj: list[Any], where: str, active: set[int]) -> list[Any]:
    _enter(obj, where, active)
    out = [_encode(v, f"{where}[{i}]", active) for i, v in enumerate(obj)]
    active.discard(id(obj))
    return out


def _encode_tuple(obj: tuple[Any, ...], where: str, active: set[int]) -> Any:
    return {"__tuple__": [_encode(v, f"{where}[{i}]", active) for i, v in enumerate(obj)]}


def _canonical(encoded: Any) -> str:
    return json.dumps(encoded, sort_keys=True, separators=(",", ":"), allow_nan=False)


def _encode_set(obj: set[Any] | frozenset[Any], where: str, active: set[int]) -> Any:
    _enter(obj, where, active)
    items = sorted((_encode(v, f"{where}<set element>", active) for v in obj), key=_canonical)  # deterministic text
    active.discard(id(obj))
    return {"__set__" if type(obj) is set else "__frozenset__": items}


def _is_plain(v: Any) -> bool:
    """A value JSON holds as it is: no tag needed (the common cell of a table row)."""
    t = type(v)
    return (t is str or v is None or t is bool or (t is int and _INT64_MIN <= v <= _INT64_MAX)
            or (t is float and math.isfinite(v)))


def _encode_dict(obj: dict[Any, Any], where: str, active: set[int]) -> Any:
    _enter(obj, where, active)
    if all(type(k) is str and not _is_tag_key(k) for k in obj):
        if all(_is_plain(v) for v in obj.values()):  # a table row of plain cells: nothing to encode
            out: Any = dict(obj)
        else:
            out = {k: _encode(v, f"{where}[{k!r}]", active) for k, v in obj.items()}
    else:
        out = {"__dict__": [[_encode(k, f"{where}<key {k!r}>", active), _encode(v, f"{where}[{k!r}]", active)]
                            for k, v in obj.items()]}
    active.discard(id(obj))
    return out


def _encode_bytes(obj: bytes, where: str, active: set[int]) -> Any:
    return {"__bytes__": base64.b64encode(obj).decode("ascii")}


def _tz_spec(tz: dt.tzinfo, offset: dt.timedelta | None, what: Any, where: str) -> str:
    """An IANA zone name, or a fixed UTC offset such as ``+01:00``."""
    if isinstance(tz, zoneinfo.ZoneInfo) and tz.key:
        return tz.key
    zone = getattr(tz, "zone", None)  # pytz
    if isinstance(zone, str) and zone:
        return zone
    if isinstance(tz, dt.timezone):
        offset = tz.utcoffset(None)
    if offset is None:
        raise _unsupported(what, where, f"its time zone {tz!r} is neither an IANA zone nor a fixed UTC offset")
    return dt.datetime(2000, 1, 1, tzinfo=dt.timezone(offset)).isoformat()[19:]




def _encode_datetime(obj: dt.datetime, where: str, active: set[int]) -> Any:
    text = obj.isoformat()
    if obj.tzinfo is not None:
        spec = _tz_spec(obj.tzinfo, obj.utcoffset(), obj, where)
        if spec[:1] not in "+-":
            text += f"[{spec}]"  # RFC 9557 style: the offset, then the zone it came from
    return {"__datetime__": text}


def _encode_time(obj: dt.time, where: str, active: set[int]) -> Any:
    if obj.tzinfo is not None and not isinstance(obj.tzinfo, dt.timezone):
        raise _unsupported(obj, where, "a time of day can only keep a fixed UTC offset (datetime.timezone)")
    return {"__time__": obj.isoformat()}


def _encode_timedelta(obj: dt.timedelta, where: str, active: set[int]) -> Any:
    return {"__timedelta__": [obj.days, obj.seconds, obj.microseconds]}


def _array_dtype_name(dtype: np.dtype, obj: Any, where: str) -> str:
    if dtype.kind in "U":
        return f"U{dtype.itemsize // 4}"
    if dtype.kind == "S":
        return f"S{dtype.itemsize}"
    if dtype.kind == "O":
        return "object"
    if dtype.kind in "mM" or dtype.name in _NUMERIC_DTYPES:
        return dtype.name  # e.g. "float32", "datetime64[ns]"; byte order is normalised to native
    raise _unsupported(obj, where, f"numpy dtype {dtype} is not supported (structured, void and extended-precision "
                                   "dtypes are not); convert with .astype(np.float64) or similar")


def _encode_ndarray_payload(arr: np.ndarray, where: str, active: set[int]) -> dict[str, Any]:
    name = _array_dtype_name(arr.dtype, arr, where)
    payload: dict[str, Any] = {"dtype": name, "shape": list(arr.shape)}
    if name == "object":
        _enter(arr, where, active)
        flat = arr.ravel(order="C")
        payload["data"] = [_encode(v, f"{where}.flat[{i}]", active) for i, v in enumerate(flat)]
        active.discard(id(arr))
    elif arr.dtype.kind == "U":
        payload["data"] = arr.ravel(order="C").tolist()
    else:
        little = np.ascontiguousarray(arr, dtype=np.dtype(name).newbyteorder("<"))
        payload["data"] = base64.b64encode(little.tobytes()).decode("ascii")
    return payload


def _encode_ndarray(obj: np.ndarray, where: str, active: set[int]) -> Any:
    return {"__ndarray__": _encode_ndarray_payload(obj, where, active)}


def _encode_values(values: Any, where: str, active: set[int]) -> Any:
    """A pandas column or index: a numpy array, or one of the supported extension arrays."""
    dtype = values.dtype
    if isinstance(dtype, np.dtype):
        return _encode_ndarray(np.asarray(values), where, active)
    if isinstance(dtype, pd.CategoricalDtype):
        payload: dict[str, Any] = {"kind": "category", "ordered": bool(dtype.ordered),
                                   "categories": _encode_index(dtype.categories, f"{where}.categories", active),
                                   "codes": _encode_ndarray(np.asarray(values.codes), where, active)}
    elif isinstance(dtype, pd.StringDtype):
        payload = {"kind": "string", "storage": dtype.storage, "na": "NA" if dtype.na_value is pd.NA else "nan",
                   "values": values.to_numpy(dtype=object, na_value=None).tolist()}
    elif isinstance(dtype, pd.DatetimeTZDtype):
        utc = pd.DatetimeIndex(values).tz_convert(None).to_numpy(dtype=f"datetime64[{dtype.unit}]")
        payload = {"kind": "datetimetz", "tz": _tz_spec(dtype.tz, None, values, where),
                   "utc": _encode_ndarray(utc, where, active)}
    elif str(dtype) in _MASKED_ARRAYS:
        mask = np.asarray(values.isna(), dtype=bool)
        data = values.to_numpy(dtype=dtype.numpy_dtype, na_value=dtype.numpy_dtype.type(0))
        payload = {"kind": "masked", "dtype": str(dtype), "data": _encode_ndarray(data, where, active),
                   "mask": _encode_ndarray(mask, where, active)}
    else:
        raise _unsupported(values, where, f"pandas dtype {dtype} is not supported; convert the column with "
                                          ".astype(object), .astype(str) or to a numpy dtype first")
    return {"__extarray__": payload}


_INDEX_TYPES = (pd.Index, pd.DatetimeIndex, pd.TimedeltaIndex, pd.CategoricalIndex)


def _encode_index(obj: pd.Index, where: str, active: set[int]) -> Any:
    if type(obj) is pd.RangeIndex:
        return {"__rangeindex__": {"start": obj.start, "stop": obj.stop, "step": obj.step,
                                   "name": _encode(obj.name, f"{where}.name", active)}}
    if type(obj) not in _INDEX_TYPES:
        raise _unsupported(obj, where, "MultiIndex, PeriodIndex and IntervalIndex are not supported; "
                                       "use .reset_index() or .to_flat_index() first")
    freq = getattr(obj, "freqstr", None)
    return {"__index__": {"values": _encode_values(obj.array if not isinstance(obj.dtype, np.dtype) else obj.to_numpy(),
                                                   where, active),
                          "name": _encode(obj.name, f"{where}.name", active), "freq": freq}}


def _encode_series(obj: pd.Series, where: str, active: set[int]) -> Any:
    values = obj.to_numpy() if isinstance(obj.dtype, np.dtype) else obj.array
    return {"__series__": {"values": _encode_values(values, where, active),
                           "index": _encode_index(obj.index, f"{where}.index", active),
                           "name": _encode(obj.name, f"{where}.name", active)}}


def _encode_dataframe(obj: pd.DataFrame, where: str, active: set[int]) -> Any:
    columns = []
    for i in range(obj.shape[1]):
        col = obj.iloc[:, i]
        values = col.to_numpy() if isinstance(col.dtype, np.dtype) else col.array
        columns.append(_encode_values(values, f"{where}[{obj.columns[i]!r}]", active))
    return {"__dataframe__": {"columns": _encode_index(obj.columns, f"{where}.columns", active),
                              "index": _encode_index(obj.index, f"{where}.index", active),
                              "data": columns}}


def _encode_timestamp(obj: pd.Timestamp, where: str, active: set[int]) -> Any:
    tz = None if obj.tz is None else _tz_spec(obj.tz, obj.utcoffset(), obj, where)
    value = int(obj.to_datetime64().astype(np.int64))  # UTC-based when aware
    return {"__timestamp__": {"value": value, "unit": obj.unit, "tz": tz}}


def _encode_pd_timedelta(obj: pd.Timedelta, where: str, active: set[int]) -> Any:
    return {"__pdtimedelta__": {"value": int(obj.to_timedelta64().astype(np.int64)), "unit": obj.unit}}


_EXACT_ENCODERS: dict[type, Callable[[Any, str, set[int]], Any]] = {
    type(None): lambda obj, where, active: None,
    bool: lambda obj, where, active: obj,
    str: lambda obj, where, active: obj,
    int: _encode_int,
    float: _encode_float,
    complex: _encode_complex,
    list: _encode_list,
    tuple: _encode_tuple,
    dict: _encode_dict,
    set: _encode_set,
    frozenset: _encode_set,
    bytes: _encode_bytes,
    dt.datetime: _encode_datetime,
    dt.date: lambda obj, where, active: {"__date__": obj.isoformat()},
    dt.time: _encode_time,
    dt.timedelta: _encode_timedelta,
    decimal.Decimal: lambda obj, where, active: {"__decimal__": str(obj)},
    uuid.UUID: lambda obj, where, active: {"__uuid__": str(obj)},
    np.ndarray: _encode_ndarray,
    pd.Series: _encode_series,
    pd.DataFrame: _encode_dataframe,
    **{cls: _encode_index for cls in (*_INDEX_TYPES, pd.RangeIndex)},
    pd.Timestamp: _encode_timestamp,
    pd.Timedelta: _encode_pd_timedelta,
    type(pd.NaT): lambda obj, where, active: {"__nat__": None},
    type(pd.NA): lambda obj, where, active: {"__na__": None},
}
