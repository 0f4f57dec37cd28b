"""Reading serialised data back: :func:`loads` and :func:`decode` (see :mod:`superintendent.serialization`).

Also the few definitions both directions share (the supported types, the tag rule, type names, time zones).
Only JSON is read: nothing here can run code from the data.
"""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import json
import math
import pathlib
import re
import uuid
import zoneinfo
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd



SUPPORTED_TYPES = (
    "None, bool, int, float, complex, str, bytes, list, tuple, dict, set, frozenset, "
    "datetime.datetime/date/time/timedelta, decimal.Decimal, uuid.UUID, pathlib.Path, "
    "numpy arrays and scalars (bool, int8-64, uint8-64, float16-64, complex64/128, str, bytes, "
    "datetime64, timedelta64, object arrays of supported values), "
    "pandas Series, DataFrame, Index, RangeIndex, DatetimeIndex, TimedeltaIndex, CategoricalIndex, "
    "Timestamp, Timedelta, NaT and NA"
)

_NUMERIC_DTYPES = frozenset(
    ["bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
     "float16", "float32", "float64", "complex64", "complex128"]
)
_SPECIAL_FLOATS = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1

_MASKED_ARRAYS: dict[str, Callable[[np.ndarray, np.ndarray], Any]] = {
    **{name: pd.arrays.IntegerArray for name in ("Int8", "Int16", "Int32", "Int64", "UInt8", "UInt16", "UInt32", "UInt64")},
    "Float32": pd.arrays.FloatingArray,
    "Float64": pd.arrays.FloatingArray,
    "boolean": pd.arrays.BooleanArray,
}


class _DecodeError(ValueError):
    """Bad serialised data; raised once and passed through enclosing tags unchanged."""


def _is_tag_key(key: str) -> bool:
    return len(key) >= 4 and key.startswith("__") and key.endswith("__")


def _type_name(obj: Any) -> str:
    cls = type(obj)
    return f"{cls.__module__}.{cls.__qualname__}"


def _unsupported(obj: Any, where: str, reason: str = "no JSON encoding is defined for it") -> TypeError:
    at = f" at {where}" if where else ""
    return TypeError(f"cannot serialise object of type {_type_name(obj)}{at}: {reason}; supported types are {SUPPORTED_TYPES}")




def _tz_from_spec(spec: str) -> dt.tzinfo:
    if spec[:1] in "+-":
        tz = dt.datetime.fromisoformat("2000-01-01T00:00:00" + spec).tzinfo
        if tz is None:
            raise _DecodeError(f"bad UTC offset {spec!r}")
        return tz
    return zoneinfo.ZoneInfo(spec)


def loads(s: str | bytes) -> Any:
    """Read text written by :func:`dumps` back into the original object.

    Raises
    ------
    ValueError
        For text that is not JSON, or JSON that is not valid serialised data
        (unknown tag, malformed payload).
    """
    if not isinstance(s, (str, bytes, bytearray)):
        raise TypeError(f"loads expects the str written by dumps; got {_type_name(s)}")

    def reject_constant(name: str) -> Any:
        raise ValueError(f"bare {name} is not allowed (dumps writes it as a tagged object)")

    try:
        structure = json.loads(s, parse_constant=reject_constant)
    except ValueError as exc:  # json.JSONDecodeError is a ValueError
        preview = s[:80] if isinstance(s, str) else bytes(s[:80])
        raise ValueError(f"cannot load serialised data: not valid JSON ({exc}); got {preview!r}; "
                         "pass text written by superintendent.serialization.dumps") from exc
    return decode(structure)


# One numeric array per row, as :func:`dumps` writes it: the common case of image and vector items, read in bulk.
_ARRAY_TEXT = re.compile(r'\{"__ndarray__":\{"dtype":"([a-z0-9]+)","shape":\[([0-9,]*)\],"data":"([A-Za-z0-9+/]*={0,2})"\}\}')


def loads_rows(texts: Sequence[str]) -> list[Any]:
    """:func:`loads` of each text, in bulk where it can: rows that are all numeric arrays of one dtype and shape are
    decoded together (their base64 read as one grid of bytes by numpy, then one ``np.frombuffer``: about 20x faster
    than one :func:`loads` each); anything else, or anything the fast path is unsure of, goes through :func:`loads`
    row by row (same result, same errors). Returns one array (a view of one block) per row.
    """
    first = _ARRAY_TEXT.fullmatch(texts[0]) if texts and isinstance(texts[0], str) else None
    if first is None or first.group(1) not in _NUMERIC_DTYPES:
        return [loads(t) for t in texts]
    dtype_name, shape_text = first.group(1), first.group(2)
    try:
        shape = tuple(int(n) for n in shape_text.split(",")) if shape_text else ()
    except ValueError:
        return [loads(t) for t in texts]
    dtype = np.dtype(dtype_name)
    n_bytes = math.prod(shape) * dtype.itemsize
    if n_bytes == 0 or len(first.group(3)) != 4 * ((n_bytes + 2) // 3):
        return [loads(t) for t in texts]
    raw = _base64_grid(texts, first.start(3), first.end(3), n_bytes)
    if raw is None:
        return [loads(t) for t in texts]
    block = np.frombuffer(raw, dtype=dtype.newbyteorder("<")).astype(dtype).reshape((len(texts), *shape))
    return list(block)


_B64_VALUES = np.full(256, 255, dtype=np.uint8)
_B64_VALUES[np.frombuffer(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/", dtype=np.uint8)] = np.arange(64, dtype=np.uint8)
_B64_PAD = 64
_B64_VALUES[ord("=")] = _B64_PAD


def _base64_grid(texts: Sequence[str], start: int, end: int, n_bytes: int) -> bytes | None:
    """The decoded bytes of every row's base64 (all rows laid out as the first: the same text before ``start`` and
    after ``end``, one length), ``n_bytes`` a row, one after the other; None when any row differs in the least (then
    the caller decodes row by row, which names the problem)."""
    width = len(texts[0])
    if any(type(t) is not str or len(t) != width for t in texts):
        return None
    try:
        grid = np.frombuffer("".join(texts).encode("ascii"), dtype=np.uint8).reshape(len(texts), width)
    except UnicodeEncodeError:
        return None
    if not (np.array_equal(grid[:, :start], np.broadcast_to(grid[0, :start], (len(texts), start)))
            and np.array_equal(grid[:, end:], np.broadcast_to(grid[0, end:], (len(texts), width - end)))):
        return None
    values = _B64_VALUES[grid[:, start:end]]
    n_pad = (end - start) * 3 // 4 - n_bytes  # "=" at the end of each row's base64: 0, 1 or 2
    body = values[:, :values.shape[1] - n_pad]
    if (body >= _B64_PAD).any() or (n_pad and not (values[:, values.shape[1] - n_pad:] == _B64_PAD).all()):
        return None
    if n_pad:
        values[:, values.shape[1] - n_pad:] = 0
    quads = values.reshape(len(texts), -1, 4)  # 4 characters of 6 bits: 3 bytes
    a, b, c, d = quads[..., 0], quads[..., 1], quads[..., 2], quads[..., 3]
    out = np.empty((*a.shape, 3), dtype=np.uint8)
    out[..., 0] = (a << 2) | (b >> 4)
    out[..., 1] = (b << 4) | (c >> 2)
    out[..., 2] = (c << 6) | d
    return out.reshape(len(texts), -1)[:, :n_bytes].tobytes()


def decode(structure: Any) -> Any:
    """Turn a structure made by :func:`encode` (or parsed from :func:`dumps` text) back into the object.

    Raises
    ------
    ValueError
        For an unknown tag or a malformed tagged payload.
    """
    return _decode(structure)


def _decode(x: Any) -> Any:
    kind = type(x)
    if x is None or kind in (bool, int, float, str):
        return x
    if kind is list:
        return [_decode(v) for v in x]
    if kind is dict:
        if not any(_is_tag_key(k) for k in x):
            return {k: _decode(v) for k, v in x.items()}
        if len(x) != 1:
            raise _DecodeError(f"malformed serialised data: a tagged object must have exactly one key; got keys {sorted(x)}")
        ((tag, payload),) = x.items()
        decoder = _DECODERS.get(tag)
        if decoder is None:
            raise _DecodeError(f"unknown tag {tag!r} in serialised data; known tags: {', '.join(sorted(_DECODERS))} "
                               "(was it written by a newer version of superintendent, or corrupted?)")
        try:
            return decoder(payload)
        except _DecodeError:
            raise
        except (KeyError, IndexError, TypeError, ValueError, AttributeError, ArithmeticError, NotImplementedError) as exc:
            raise _DecodeError(f"malformed {tag} payload in serialised data: {type(exc).__name__}: {exc}") from exc
    raise TypeError(f"decode expects JSON-compatible data (dict, list, str, int, float, bool, None); got {_type_name(x)}")


def _expect(value: Any, kind: type | tuple[type, ...], what: str) -> Any:
    """Return ``value`` if it has the JSON type a payload needs, else raise a clear error."""
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
        raise _DecodeError(f"malformed serialised data: {what} must be {' or '.join(k.__name__ for k in kinds)}; "
                           f"got {type(value).__name__} {value!r:.80}")
    return value


def _decode_float_part(x: Any) -> float:
    value = _decode(x)
    return float(_expect(value, (float, int), "a complex part"))


def _decode_complex(payload: Any) -> complex:
    real, imag = _expect(payload, list, "__complex__")
    return complex(_decode_float_part(real), _decode_float_part(imag))


def _decode_datetime(payload: Any) -> dt.datetime:
    text = _expect(payload, str, "__datetime__")
    if text.endswith("]"):
        iso, _, zone = text[:-1].partition("[")
        aware = dt.datetime.fromisoformat(iso)
        if aware.tzinfo is None:
            raise _DecodeError(f"malformed serialised data: datetime {text!r} names a zone but has no UTC offset")
        return aware.astimezone(zoneinfo.ZoneInfo(zone))
    return dt.datetime.fromisoformat(text)


def _decode_timedelta(payload: Any) -> dt.timedelta:
    days, seconds, microseconds = (_expect(v, int, "a __timedelta__ field") for v in _expect(payload, list, "__timedelta__"))
    return dt.timedelta(days=days, seconds=seconds, microseconds=microseconds)


def _decode_dict(payload: Any) -> dict[Any, Any]:
    out = {}
    for pair in _expect(payload, list, "__dict__"):
        key, value = _expect(pair, list, "a __dict__ entry")
        out[_decode(key)] = _decode(value)
    return out


def _check_dtype(name: Any) -> np.dtype:
    _expect(name, str, "an array dtype")
    dtype = np.dtype(name)
    if not (name in _NUMERIC_DTYPES or name == "object" or dtype.kind in "USmM"):
        raise _DecodeError(f"malformed serialised data: unsupported array dtype {name!r}")
    return dtype


def _decode_ndarray(payload: Any) -> np.ndarray:
    _expect(payload, dict, "__ndarray__")
    dtype = _check_dtype(payload["dtype"])
    shape = tuple(_expect(n, int, "an array dimension") for n in _expect(payload["shape"], list, "an array shape"))
    if any(n < 0 for n in shape):
        raise _DecodeError(f"malformed serialised data: negative array dimension in shape {shape}")
    size = math.prod(shape)
    data = payload["data"]
    if dtype.kind in "OU":
        items = _expect(data, list, f"the data of a {dtype} array")
        if len(items) != size:
            raise _DecodeError(f"malformed serialised data: array of shape {shape} needs {size} elements; got {len(items)}")
        if dtype.kind == "U":
            return np.array([_expect(v, str, "a str array element") for v in items], dtype=dtype).reshape(shape)
        arr = np.empty(size, dtype=object)
        for i, v in enumerate(items):
            arr[i] = _decode(v)
        return arr.reshape(shape)
    raw = base64.b64decode(_expect(data, str, "array data (base64)"), validate=True)
    if len(raw) != size * dtype.itemsize:
        raise _DecodeError(f"malformed serialised data: {dtype} array of shape {shape} needs {size * dtype.itemsize} "
                           f"bytes; got {len(raw)}")
    if size == 0 or dtype.itemsize == 0:
        return np.zeros(shape, dtype=dtype)
    return np.frombuffer(raw, dtype=dtype.newbyteorder("<")).astype(dtype).reshape(shape)


def _decode_npscalar(payload: Any) -> np.generic:
    arr = _decode_ndarray(payload)
    if arr.shape != () or arr.dtype == object:
        raise _DecodeError(f"malformed serialised data: a numpy scalar needs shape [] and a non-object dtype; got {arr.shape}")
    return arr[()]


def _decode_values(x: Any) -> Any:
    values = _decode(x)
    if not isinstance(values, (np.ndarray, pd.api.extensions.ExtensionArray)):
        raise _DecodeError(f"malformed serialised data: pandas values must be an array; got {type(values).__name__}")
    return values


def _decode_extarray(payload: Any) -> pd.api.extensions.ExtensionArray:
    kind = _expect(payload, dict, "__extarray__")["kind"]
    if kind == "category":
        dtype = pd.CategoricalDtype(_decode(payload["categories"]), ordered=_expect(payload["ordered"], bool, "ordered"))
        return pd.Categorical.from_codes(_decode_values(payload["codes"]), dtype=dtype)
    if kind == "string":
        na_value = {"NA": pd.NA, "nan": np.nan}[payload["na"]]
        dtype = pd.StringDtype(storage=payload["storage"], na_value=na_value)
        return pd.array(_expect(payload["values"], list, "string values"), dtype=dtype)
    if kind == "datetimetz":
        utc = pd.DatetimeIndex(_decode_values(payload["utc"])).tz_localize("UTC")
        return utc.tz_convert(_tz_from_spec(_expect(payload["tz"], str, "a time zone"))).array
    if kind == "masked":
        make = _MASKED_ARRAYS[payload["dtype"]]
        return make(_decode_values(payload["data"]), _decode_values(payload["mask"]))
    raise _DecodeError(f"malformed serialised data: unknown pandas array kind {kind!r}")


def _decode_index(payload: Any) -> pd.Index:
    _expect(payload, dict, "__index__")
    values = _decode_values(payload["values"])
    index = pd.Index(values, dtype=values.dtype, name=_decode(payload["name"]), copy=False)
    freq = payload.get("freq")
    if freq is not None:
        index = type(index)(index, freq=_expect(freq, str, "an index freq"))
    return index


def _decode_rangeindex(payload: Any) -> pd.RangeIndex:
    _expect(payload, dict, "__rangeindex__")
    start, stop, step = (_expect(payload[k], int, f"RangeIndex {k}") for k in ("start", "stop", "step"))
    return pd.RangeIndex(start, stop, step, name=_decode(payload["name"]))


def _as_index(x: Any, what: str) -> pd.Index:
    index = _decode(x)
    if not isinstance(index, pd.Index):
        raise _DecodeError(f"malformed serialised data: {what} must be an index; got {type(index).__name__}")
    return index


def _decode_series(payload: Any) -> pd.Series:
    _expect(payload, dict, "__series__")
    values = _decode_values(payload["values"])
    return pd.Series(values, index=_as_index(payload["index"], "a Series index"), name=_decode(payload["name"]),
                     dtype=values.dtype, copy=False)


def _decode_dataframe(payload: Any) -> pd.DataFrame:
    _expect(payload, dict, "__dataframe__")
    columns = _as_index(payload["columns"], "DataFrame columns")
    index = _as_index(payload["index"], "a DataFrame index")
    arrays = [_decode_values(v) for v in _expect(payload["data"], list, "DataFrame data")]
    if len(arrays) != len(columns):
        raise _DecodeError(f"malformed serialised data: {len(columns)} DataFrame columns but {len(arrays)} data arrays")
    # Explicit dtypes everywhere: pandas would otherwise re-infer object columns of str as the str dtype.
    frame = pd.DataFrame({i: pd.Series(a, dtype=a.dtype, copy=False) for i, a in enumerate(arrays)},
                         index=None if arrays else index)
    frame.index = index
    frame.columns = columns
    return frame


def _decode_timestamp(payload: Any) -> pd.Timestamp:
    _expect(payload, dict, "__timestamp__")
    unit = _expect(payload["unit"], str, "a Timestamp unit")
    ts = pd.Timestamp(np.datetime64(_expect(payload["value"], int, "a Timestamp value"), unit)).as_unit(unit)
    tz = payload["tz"]
    if tz is not None:
        ts = ts.tz_localize("UTC").tz_convert(_tz_from_spec(_expect(tz, str, "a time zone")))
    return ts


def _decode_pd_timedelta(payload: Any) -> pd.Timedelta:
    _expect(payload, dict, "__pdtimedelta__")
    unit = _expect(payload["unit"], str, "a Timedelta unit")
    return pd.Timedelta(np.timedelta64(_expect(payload["value"], int, "a Timedelta value"), unit)).as_unit(unit)


def _decode_null(value: Any) -> Callable[[Any], Any]:
    def decoder(payload: Any) -> Any:
        if payload is not None:
            raise _DecodeError(f"malformed serialised data: the payload of {value!r} must be null")
        return value
    return decoder


_DECODERS: dict[str, Callable[[Any], Any]] = {
    "__float__": lambda p: _SPECIAL_FLOATS[_expect(p, str, "__float__")],
    "__int__": lambda p: int(_expect(p, str, "__int__"), 16),
    "__complex__": _decode_complex,
    "__tuple__": lambda p: tuple(_decode(v) for v in _expect(p, list, "__tuple__")),
    "__set__": lambda p: {_decode(v) for v in _expect(p, list, "__set__")},
    "__frozenset__": lambda p: frozenset(_decode(v) for v in _expect(p, list, "__frozenset__")),
    "__dict__": _decode_dict,
    "__bytes__": lambda p: base64.b64decode(_expect(p, str, "__bytes__"), validate=True),
    "__datetime__": _decode_datetime,
    "__date__": lambda p: dt.date.fromisoformat(_expect(p, str, "__date__")),
    "__time__": lambda p: dt.time.fromisoformat(_expect(p, str, "__time__")),
    "__timedelta__": _decode_timedelta,
    "__decimal__": lambda p: decimal.Decimal(_expect(p, str, "__decimal__")),
    "__uuid__": lambda p: uuid.UUID(_expect(p, str, "__uuid__")),
    "__path__": lambda p: pathlib.Path(_expect(p, str, "__path__")),
    "__ndarray__": _decode_ndarray,
    "__npscalar__": _decode_npscalar,
    "__extarray__": _decode_extarray,
    "__index__": _decode_index,
    "__rangeindex__": _decode_rangeindex,
    "__series__": _decode_series,
    "__dataframe__": _decode_dataframe,
    "__timestamp__": _decode_timestamp,
    "__pdtimedelta__": _decode_pd_timedelta,
    "__nat__": _decode_null(pd.NaT),
    "__na__": _decode_null(pd.NA),
}
