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

__all__ = ["dumps", "loads", "encode", "decode", "SUPPORTED_TYPES"]

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


def _encode_dict(obj: dict[Any, Any], where: str, active: set[int]) -> Any:
    _enter(obj, where, active)
    if all(type(k) is str and not _is_tag_key(k) for k in obj):
        out: Any = {k: _encode(v, f"{where}[{k!r}]", active) for k, v in obj.items()}
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


def _tz_from_spec(spec: str) -> dt.tzinfo:
    if spec[:1] in "+-":
        tz = dt.datetime.fromisoformat("2000-01-01T00:00:00" + spec).tzinfo
        if tz is None:
            raise _DecodeError(f"bad UTC offset {spec!r}")
        return tz
    return zoneinfo.ZoneInfo(spec)


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


_MASKED_ARRAYS: dict[str, Callable[[np.ndarray, np.ndarray], Any]] = {
    **{name: pd.arrays.IntegerArray for name in ("Int8", "Int16", "Int32", "Int64", "UInt8", "UInt16", "UInt32", "UInt64")},
    "Float32": pd.arrays.FloatingArray,
    "Float64": pd.arrays.FloatingArray,
    "boolean": pd.arrays.BooleanArray,
}
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


# --------------------------------------------------------------------------- decoding


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
