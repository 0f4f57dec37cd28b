"""JSON serialisation round-trips types, dtypes, shapes and values exactly, and never executes data."""

from __future__ import annotations

import datetime as dt
import decimal
import json
import math
import pathlib
import uuid
import zoneinfo
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from superintendent import serialization
from superintendent.serialization import decode, dumps, encode, loads

PARIS = zoneinfo.ZoneInfo("Europe/Paris")


def assert_same(result: Any, expected: Any) -> None:
    """Same type and same value, recursively; NaN equals NaN; dtypes must match exactly."""
    assert type(result) is type(expected), f"{type(result)} is not {type(expected)}"
    if expected is pd.NaT or expected is pd.NA:  # NaT is a datetime subclass: check it first
        assert result is expected
    elif isinstance(expected, pd.DataFrame):
        pd.testing.assert_frame_equal(result, expected, check_exact=True, check_index_type=True,
                                      check_column_type=True, check_freq=True)
        for column in range(expected.shape[1]):
            assert_same(result.iloc[:, column], expected.iloc[:, column])
    elif isinstance(expected, pd.Series):
        pd.testing.assert_series_equal(result, expected, check_exact=True, check_index_type=True, check_freq=True)
        assert_same(result.index, expected.index)
        if expected.dtype == object:
            for r, e in zip(result.tolist(), expected.tolist(), strict=True):
                assert_same(r, e)
    elif isinstance(expected, pd.Index):
        pd.testing.assert_index_equal(result, expected, exact=True, check_exact=True)
        assert result.name == expected.name
        assert getattr(result, "freq", None) == getattr(expected, "freq", None)
    elif isinstance(expected, np.ndarray):
        assert result.dtype == expected.dtype
        assert result.shape == expected.shape
        assert result.flags.writeable
        if expected.dtype == object:
            for r, e in zip(result.ravel(), expected.ravel(), strict=True):
                assert_same(r, e)
        else:
            assert np.ascontiguousarray(result).tobytes() == np.ascontiguousarray(expected).tobytes()
    elif isinstance(expected, np.generic):
        assert result.dtype == expected.dtype
        assert np.asarray(result).tobytes() == np.asarray(expected).tobytes()
    elif isinstance(expected, float):
        assert (math.isnan(result) and math.isnan(expected)) or (
            result == expected and math.copysign(1, result) == math.copysign(1, expected))
    elif isinstance(expected, complex):
        assert_same(result.real, expected.real)
        assert_same(result.imag, expected.imag)
    elif isinstance(expected, (list, tuple)):
        assert len(result) == len(expected)
        for r, e in zip(result, expected, strict=True):
            assert_same(r, e)
    elif isinstance(expected, dict):
        assert list(result) == list(expected)
        for (rk, rv), (ek, ev) in zip(result.items(), expected.items(), strict=True):
            assert_same(rk, ek)
            assert_same(rv, ev)
    elif isinstance(expected, decimal.Decimal):
        assert str(result) == str(expected)
    elif isinstance(expected, (dt.datetime, dt.time)):
        assert result == expected
        assert result.isoformat() == expected.isoformat()  # same wall time and UTC offset
        assert (result.tzinfo is None) == (expected.tzinfo is None)
        if isinstance(expected, pd.Timestamp):
            assert result.unit == expected.unit
            assert str(result.tz) == str(expected.tz)
        elif isinstance(expected.tzinfo, zoneinfo.ZoneInfo):
            assert result.tzinfo is expected.tzinfo
    elif isinstance(expected, pd.Timedelta):
        assert result == expected
        assert result.unit == expected.unit
    else:
        assert result == expected


def roundtrip(obj: Any) -> Any:
    text = dumps(obj)
    assert isinstance(text, str)
    json.loads(text, parse_constant=pytest.fail)  # strict JSON: no NaN / Infinity tokens
    return loads(text)


def _object_2d() -> np.ndarray:
    arr = np.empty((2, 2), dtype=object)
    arr[0, 0], arr[0, 1], arr[1, 0], arr[1, 1] = [1, 2], "x", None, np.arange(3)
    return arr


MIXED_FRAME = pd.DataFrame({
    "int64": np.array([1, -2, 3], dtype=np.int64),
    "float64_nan": [1.5, np.nan, -np.inf],
    "object_str": pd.Series(["a", None, "c"], dtype=object),
    "str": ["x", "y", None],
    "bool": [True, False, True],
    "datetime64_ns": pd.to_datetime(["2020-01-01 00:00:00", "NaT", "2021-06-30 12:00:00.000000001"], format="ISO8601").as_unit("ns"),
    "category": pd.Categorical(["u", "v", "u"], categories=["v", "u", "w"], ordered=True),
    "nullable_int": pd.array([1, None, 3], dtype="Int64"),
    "tz": pd.date_range("2020-03-29", periods=3, freq="h", tz="Europe/Paris"),
}, index=pd.Index([10, 20, 30], name="id"))

CASES: list[tuple[str, Any]] = [
    # python scalars
    ("none", None), ("true", True), ("false", False),
    ("int-zero", 0), ("int-negative", -7), ("int-int64-max", 2**63 - 1), ("int-int64-min", -(2**63)),
    ("int-big", 2**64), ("int-negative-big", -(3**200)), ("int-over-4300-digits", 10**5000),
    ("float", 0.1), ("float-tiny", 5e-324), ("float-negative-zero", -0.0),
    ("float-nan", math.nan), ("float-inf", math.inf), ("float-minus-inf", -math.inf),
    ("complex", complex(1.5, -math.inf)),
    ("str", "héllo ✓ \x00 \ud800 \"quoted\""), ("str-empty", ""), ("str-looks-like-tag", "__ndarray__"),
    ("bytes", b"\x00\xff binary"), ("bytes-empty", b""),
    # containers
    ("list-nested", [1, [2.5, [None, "a"]], []]),
    ("tuple", (1, "a", None)), ("tuple-empty", ()), ("tuple-nested", ([1, (2, 3)], ((),))),
    ("dict-str-keys", {"b": 1, "a": [1, 2], "c": {"d": None}}),
    ("dict-empty", {}),
    ("dict-int-and-tuple-keys", {1: "one", (2, 3): "pair", None: 0, 2.5: "x"}),
    ("dict-tag-like-key", {"__ndarray__": 1}),
    ("dict-tag-like-nested", {"a": {"__float__": "nan", "b": 2}}),
    ("dict-numpy-str-key", {np.str_("k"): 1}),
    ("set", {3, 1, 2}), ("set-mixed", {1, "a", (2, 3), None}), ("set-empty", set()),
    ("frozenset", frozenset({"b", "a"})), ("set-of-frozensets", {frozenset({1}), frozenset()}),
    # stdlib
    ("datetime-naive", dt.datetime(2020, 1, 2, 3, 4, 5, 678901)),
    ("datetime-utc", dt.datetime(2020, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc)),
    ("datetime-offset", dt.datetime(2020, 1, 2, 3, 4, tzinfo=dt.timezone(dt.timedelta(hours=5, minutes=30)))),
    ("datetime-offset-seconds", dt.datetime(2020, 1, 2, tzinfo=dt.timezone(dt.timedelta(seconds=-3601, microseconds=5)))),
    ("datetime-zoneinfo", dt.datetime(2020, 7, 1, 12, tzinfo=PARIS)),
    ("datetime-zoneinfo-fold", dt.datetime(2021, 10, 31, 2, 30, fold=1, tzinfo=PARIS)),
    ("date", dt.date(1999, 12, 31)),
    ("time", dt.time(23, 59, 59, 999999)),
    ("time-offset", dt.time(1, 2, tzinfo=dt.timezone(dt.timedelta(hours=-3)))),
    ("timedelta", dt.timedelta(days=-3, seconds=5, microseconds=7)),
    ("decimal", decimal.Decimal("1.10")), ("decimal-exponent", decimal.Decimal("-1E+5")),
    ("decimal-nan", decimal.Decimal("NaN")), ("decimal-inf", decimal.Decimal("-Infinity")),
    ("uuid", uuid.UUID("12345678-1234-5678-1234-567812345678")),
    ("path", pathlib.Path("/data/images/cat 1.png")), ("path-relative", pathlib.Path("a/b")),
    # numpy arrays
    *[(f"ndarray-{name}", np.array([0, 1, 2, 3], dtype=name).reshape(2, 2))
      for name in ["int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64"]],
    ("ndarray-uint64-max", np.array([2**64 - 1], dtype=np.uint64)),
    ("ndarray-bool", np.array([[True, False]])),
    *[(f"ndarray-{name}-special", np.array([0.1, -0.0, np.nan, np.inf, -np.inf, 65504], dtype=name))
      for name in ["float16", "float32", "float64"]],
    ("ndarray-complex64", np.array([1 + 2j, complex(np.nan, np.inf)], dtype=np.complex64)),
    ("ndarray-complex128", np.array([[1 - 2j]], dtype=np.complex128)),
    ("ndarray-0d", np.array(3.5)),
    ("ndarray-empty-2d", np.empty((0, 3), dtype=np.float32)),
    ("ndarray-empty-3d", np.zeros((2, 0, 4), dtype=np.int16)),
    ("ndarray-3d", np.arange(24, dtype=np.float64).reshape(2, 3, 4)),
    ("ndarray-8x8-float32", np.random.default_rng(0).random((8, 8), dtype=np.float32)),
    ("ndarray-fortran-order", np.asfortranarray(np.arange(6).reshape(2, 3))),
    ("ndarray-non-contiguous", np.arange(20)[::3]),
    ("ndarray-transposed", np.arange(6, dtype=np.uint8).reshape(2, 3).T),
    ("ndarray-str", np.array([["a", "bcd"], ["", "é\x00x"]])),
    ("ndarray-str-empty", np.array([], dtype="<U4")),
    ("ndarray-bytes", np.array([b"x", b"\x00yz"])),
    ("ndarray-datetime64-ns", np.array(["2020-01-01T00:00:00.000000001", "NaT"], dtype="datetime64[ns]")),
    ("ndarray-datetime64-D", np.array(["1970-01-01", "2262-04-12"], dtype="datetime64[D]")),
    ("ndarray-timedelta64-s", np.array([1, -5, np.timedelta64("NaT")], dtype="timedelta64[s]")),
    ("ndarray-object-mixed", np.array([1, "a", None, np.float32(2), (1, 2)], dtype=object)),
    ("ndarray-object-2d-with-lists", _object_2d()),
    # numpy scalars
    ("np-int64", np.int64(-5)), ("np-int8", np.int8(-128)), ("np-uint64-max", np.uint64(2**64 - 1)),
    ("np-uint8", np.uint8(255)), ("np-float16", np.float16(0.1)), ("np-float32", np.float32(1.1)),
    ("np-float64-nan", np.float64(np.nan)), ("np-float64", np.float64(0.1)),
    ("np-complex64", np.complex64(1 + 2j)), ("np-complex128", np.complex128(-1j)),
    ("np-bool-true", np.bool_(True)), ("np-bool-false", np.bool_(False)),
    ("np-str", np.str_("abc")), ("np-bytes", np.bytes_(b"ab")),
    ("np-datetime64-ns", np.datetime64("2020-01-01T12:00:00.000000001", "ns")),
    ("np-datetime64-nat", np.datetime64("NaT")), ("np-datetime64-D", np.datetime64("2020-02-29")),
    ("np-timedelta64-ms", np.timedelta64(5, "ms")),
    ("list-of-np-scalars", [np.int64(1), np.float32(2.5), np.bool_(False)]),
    # pandas
    ("series-int64", pd.Series([1, 2, 3], name="n")),
    ("series-float-nan", pd.Series([1.5, np.nan], index=["a", "b"])),
    ("series-object-str", pd.Series(["a", None, "c"], dtype=object)),
    ("series-str", pd.Series(["a", None, "c"])),
    ("series-string-na", pd.Series(["a", None], dtype="string")),
    ("series-bool", pd.Series([True, False])),
    ("series-datetime64-ns", pd.Series(pd.to_datetime(["2020-01-01", None]).as_unit("ns"))),
    ("series-datetime-tz", pd.Series(pd.date_range("2020-01-01", periods=3, tz="Europe/Paris"))),
    ("series-datetime-utc", pd.Series(pd.date_range("2020-01-01", periods=2, tz="UTC"))),
    ("series-timedelta", pd.Series(pd.to_timedelta([1, 2], unit="s"))),
    ("series-category", pd.Series(pd.Categorical(["b", "a", None, "b"]))),
    ("series-category-ordered-int", pd.Series(pd.Categorical([3, 1], categories=[3, 2, 1], ordered=True))),
    ("series-nullable-int", pd.Series([1, None], dtype="Int64")),
    ("series-nullable-uint8", pd.Series([1, None], dtype="UInt8")),
    ("series-nullable-float", pd.Series([1.5, None], dtype="Float32")),
    ("series-nullable-boolean", pd.Series([True, None], dtype="boolean")),
    ("series-tuple-name", pd.Series([1], name=("a", 1))),
    ("series-empty", pd.Series([], dtype=np.float32)),
    ("series-datetime-index-freq", pd.Series([1.0, 2.0], index=pd.date_range("2020", periods=2, freq="D"))),
    ("series-duplicate-index", pd.Series([1, 2], index=["a", "a"])),
    ("dataframe-mixed", MIXED_FRAME),
    ("dataframe-row", MIXED_FRAME.iloc[1]),
    ("dataframe-row-simple", pd.DataFrame({"a": [1, 2], "b": ["x", "y"]}).iloc[0]),
    ("dataframe-duplicate-columns", pd.DataFrame([[1, 2.5]], columns=["a", "a"])),
    ("dataframe-int-columns", pd.DataFrame(np.eye(2))),
    ("dataframe-empty", pd.DataFrame()),
    ("dataframe-no-rows", pd.DataFrame({"a": pd.Series([], dtype=np.int8), "b": pd.Series([], dtype=object)})),
    ("dataframe-no-columns", pd.DataFrame(index=["r1", "r2"])),
    ("dataframe-in-dict", {"features": pd.DataFrame({"a": [1]}), "label": "cat"}),
    ("index", pd.Index(["a", "b"], name="letters")),
    ("index-object", pd.Index([1, "a"], dtype=object)),
    ("range-index", pd.RangeIndex(2, 20, 3, name="r")),
    ("datetime-index", pd.date_range("2020-01-01", periods=3, freq="2h", name="t")),
    ("timedelta-index", pd.timedelta_range(0, periods=3, freq="s")),
    ("categorical-index", pd.CategoricalIndex(["a", "b", "a"])),
    ("timestamp", pd.Timestamp("2020-01-01 12:00:00.123456789")),
    ("timestamp-us", pd.Timestamp("2020-01-01 12:00")),
    ("timestamp-tz", pd.Timestamp("2020-06-01 12:00:00.000000001", tz="Europe/Paris")),
    ("timestamp-utc", pd.Timestamp("2020-06-01", tz="UTC")),
    ("timestamp-offset", pd.Timestamp(dt.datetime(2020, 1, 1, tzinfo=dt.timezone(dt.timedelta(hours=-2))))),
    ("timedelta-pd", pd.Timedelta(5, "ms")),
    ("timedelta-pd-ns", pd.Timedelta(1, "ns")),
    ("nat", pd.NaT),
    ("na", pd.NA),
    # everything at once
    ("nested-everything", {"id": uuid.UUID(int=1), "x": np.arange(3.0), "when": dt.date(2020, 1, 1),
                           "tags": {"b", "a"}, 5: [np.int64(1), (b"raw", None)]}),
]


@pytest.mark.parametrize("obj", [c[1] for c in CASES], ids=[c[0] for c in CASES])
def test_roundtrip(obj):
    assert_same(roundtrip(obj), obj)
    assert_same(decode(encode(obj)), obj)


def test_case_ids_are_unique():
    ids = [c[0] for c in CASES]
    assert len(ids) == len(set(ids))


def test_ndarray_tag_format_is_compact_base64():
    arr = np.arange(64, dtype=np.float32).reshape(8, 8)
    structure = encode(arr)
    assert list(structure) == ["__ndarray__"]
    payload = structure["__ndarray__"]
    assert payload["dtype"] == "float32"
    assert payload["shape"] == [8, 8]
    assert isinstance(payload["data"], str)
    assert len(dumps(arr)) < 64 * 4 * 1.4 + 100
    assert dumps(arr) == json.dumps(structure, separators=(",", ":"))


def test_plain_json_values_stay_plain():
    value = {"a": [1, 2.5, "x", None, True], "b": {}}
    assert encode(value) == value
    assert dumps(value) == '{"a":[1,2.5,"x",null,true],"b":{}}'


def test_big_endian_array_comes_back_native_with_same_values():
    arr = np.array([[1.5, np.nan], [-np.inf, 2]], dtype=">f8")
    result = roundtrip(arr)
    assert result.dtype == np.dtype("float64") and result.dtype.isnative
    np.testing.assert_array_equal(result, arr)
    assert roundtrip(np.array([1, 2], dtype=">i4")).dtype == np.dtype("int32")


def test_pure_posix_path_comes_back_as_path():
    result = roundtrip(pathlib.PurePosixPath("/a/b.txt"))
    assert type(result) is type(pathlib.Path())
    assert result == pathlib.Path("/a/b.txt")


def test_numpy_scalars_are_never_stored_as_null():
    for value in (np.int64(3), np.float32(0.5), np.bool_(False), np.str_("")):
        assert "null" not in dumps(value)
        assert loads(dumps(value)) == value


def test_sets_serialise_deterministically():
    a = {"x", "y", "z", 1, (2, 3)}
    b = set(reversed(list(a)))
    assert dumps(a) == dumps(b)
    assert dumps(frozenset(a)) == dumps(frozenset(b))


def test_dict_order_is_kept():
    assert list(roundtrip({"b": 1, "a": 2})) == ["b", "a"]
    assert list(roundtrip({2: "b", 1: "a"})) == [2, 1]


def test_decoded_arrays_are_independent_and_writable():
    arr = roundtrip(np.zeros(3))
    arr[0] = 1.0
    assert arr.tolist() == [1.0, 0.0, 0.0]


# --------------------------------------------------------------------------- property tests

ARRAY_DTYPES = st.sampled_from(
    ["bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64", "float16", "float32",
     "float64", "complex64", "complex128", ">f4", ">i8", "datetime64[ns]", "datetime64[D]", "timedelta64[us]",
     "U3", "S2"]
)


@pytest.mark.fuzz
@given(hnp.arrays(dtype=ARRAY_DTYPES.map(np.dtype), shape=hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=5)))
def test_arrays_roundtrip_bit_exact(arr):
    result = loads(dumps(arr))
    assert type(result) is np.ndarray
    assert result.dtype == arr.dtype.newbyteorder("=")
    assert result.shape == arr.shape
    expected = np.ascontiguousarray(arr, dtype=arr.dtype.newbyteorder("="))
    assert result.tobytes() == expected.tobytes()


@pytest.mark.fuzz
@given(hnp.arrays(dtype=ARRAY_DTYPES.map(np.dtype), shape=()))
def test_numpy_scalars_roundtrip_bit_exact(arr):
    scalar = arr.astype(arr.dtype.newbyteorder("="))[()]
    result = loads(dumps(scalar))
    assert type(result) is type(scalar)
    assert result.dtype == scalar.dtype
    assert np.asarray(result).tobytes() == np.asarray(scalar).tobytes()


HASHABLE = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5) | st.binary(max_size=5),
    lambda inner: st.tuples(inner, inner) | st.frozensets(inner, max_size=3),
    max_leaves=5,
)
JSON_LIKE = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text() | st.binary(max_size=8)
    | st.complex_numbers() | st.decimals() | st.dates() | st.datetimes()
    | st.timedeltas() | st.uuids(),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.lists(inner, max_size=3).map(tuple)
        | st.dictionaries(st.text(max_size=8), inner, max_size=4)
        | st.dictionaries(HASHABLE, inner, max_size=3)
        | st.sets(HASHABLE, max_size=4)
    ),
    max_leaves=20,
)


@pytest.mark.fuzz
@given(JSON_LIKE)
def test_nested_python_values_roundtrip(value):
    assert_same(roundtrip(value), value)
    assert dumps(loads(dumps(value))) == dumps(value)


# --------------------------------------------------------------------------- errors


class Custom:
    pass


@pytest.mark.parametrize(
    ("obj", "type_name", "where"),
    [
        (lambda x: x, "builtins.function", ""),
        (object(), "builtins.object", ""),
        (Custom(), "test_serialization.Custom", ""),
        ([1, 2, 3, {"a": object()}], "builtins.object", "at [3]['a']"),
        ({"k": (1, [Custom()])}, "test_serialization.Custom", "at ['k'][1][0]"),
        ({1: {2, Custom()}}, "test_serialization.Custom", "at [1]<set element>"),
        (np.array([1, Custom()], dtype=object), "test_serialization.Custom", "at .flat[1]"),
        (pd.Series([Custom()], dtype=object), "test_serialization.Custom", ".flat[0]"),
        (slice(1, 2), "builtins.slice", ""),
        (bytearray(b"x"), "builtins.bytearray", ""),
    ],
    ids=["lambda", "object", "custom-class", "nested-in-dict", "nested-in-tuple", "nested-in-set",
         "in-object-array", "in-series", "slice", "bytearray"],
)
def test_unsupported_objects_raise_type_error_naming_type_and_place(obj, type_name, where):
    with pytest.raises(TypeError) as info:
        dumps(obj)
    message = str(info.value)
    assert f"cannot serialise object of type {type_name}" in message
    assert where in message
    assert "supported types are" in message


def test_open_file_is_rejected(tmp_path):
    with open(tmp_path / "f.txt", "w") as handle:
        with pytest.raises(TypeError, match=r"cannot serialise object of type _io\.TextIOWrapper"):
            dumps({"file": handle})


@pytest.mark.parametrize(
    ("obj", "match"),
    [
        (np.zeros(2, dtype=[("a", "i4")]), "numpy dtype .* is not supported"),
        (pd.Series(pd.period_range("2020", periods=2, freq="D")), r"pandas dtype period\[D\] is not supported"),
        (pd.DataFrame({"a": [1]}, index=pd.MultiIndex.from_tuples([(1, 2)])), "MultiIndex"),
        (pd.MultiIndex.from_tuples([(1, 2)]), "MultiIndex, PeriodIndex and IntervalIndex are not supported"),
        (np.ma.masked_array([1, 2]), "subclasses of numpy.ndarray"),
        (__import__("collections").OrderedDict(a=1), r"subclasses of builtins\.dict .* dict\(x\)"),
        (dt.time(1, tzinfo=PARIS), "fixed UTC offset"),
    ],
    ids=["structured-array", "period-dtype", "multiindex", "multiindex-alone", "masked-array", "ordered-dict", "time-with-zone"],
)
def test_unsupported_variants_explain_how_to_convert(obj, match):
    with pytest.raises(TypeError, match=match):
        dumps(obj)


@pytest.mark.skipif(not hasattr(np, "float128"), reason="no extended precision on this platform")
def test_extended_precision_is_rejected():
    with pytest.raises(TypeError, match="float128"):
        dumps(np.zeros(2, dtype=np.float128))


def test_circular_containers_raise_value_error():
    loop: list[Any] = [1]
    loop.append(loop)
    with pytest.raises(ValueError, match=r"contains itself \(at \[1\]\)"):
        dumps(loop)
    shared = [1]
    assert loads(dumps([shared, shared])) == [[1], [1]]  # shared, not circular


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("not json", "not valid JSON"),
        ("", "not valid JSON"),
        ("[NaN]", "not valid JSON"),
        ('{"__bogus__": 1}', "unknown tag '__bogus__'"),
        ('{"__ndarray__": 1, "x": 2}', "exactly one key"),
        ('{"__ndarray__": {"dtype": "float64", "shape": [3], "data": "AAAA"}}', "needs 24 bytes; got 3"),
        ('{"__ndarray__": {"dtype": "float64", "shape": [1], "data": "!!!"}}', "malformed __ndarray__"),
        ('{"__ndarray__": {"dtype": "V8", "shape": [1], "data": ""}}', "unsupported array dtype"),
        ('{"__ndarray__": {"dtype": "object", "shape": [2], "data": [1]}}', "needs 2 elements; got 1"),
        ('{"__ndarray__": {"shape": [1], "data": ""}}', "malformed __ndarray__ payload.*KeyError"),
        ('{"__float__": "big"}', "malformed __float__"),
        ('{"__int__": 5}', "__int__ must be str; got int 5"),
        ('{"__timedelta__": [1, true, 0]}', "must be int; got bool"),
        ('{"__datetime__": "2020-01-01T00:00:00[Europe/Paris]"}', "names a zone but has no UTC offset"),
        ('{"__decimal__": "one"}', "malformed __decimal__"),
        ('{"__datetime__": "yesterday"}', "malformed __datetime__"),
        ('{"__datetime__": "2020-01-01T00:00:00+00:00[Nowhere/Atlantis]"}', "malformed __datetime__"),
        ('{"__tuple__": [{"__bogus__": 1}]}', "^unknown tag '__bogus__'"),
        ('{"__nat__": 1}', "must be null"),
        ('{"__series__": {"values": [1], "index": null, "name": null}}', "must be an array"),
    ],
    ids=["not-json", "empty", "nan-literal", "unknown-tag", "tag-with-extra-keys", "short-data", "bad-base64",
         "void-dtype", "object-length", "missing-key", "bad-float", "int-not-str", "timedelta-bool", "zone-without-offset", "bad-decimal", "bad-datetime",
         "bad-zone", "nested-unknown-tag-not-rewrapped", "nat-payload", "series-values"],
)
def test_loads_rejects_bad_input_with_value_error(text, match):
    with pytest.raises(ValueError, match=match):
        loads(text)


def test_loads_rejects_non_text():
    with pytest.raises(TypeError, match="loads expects the str written by dumps; got builtins.int"):
        loads(5)  # type: ignore[arg-type]
    assert loads(b'{"__tuple__":[1]}') == (1,)


def test_module_never_uses_pickle():
    source = pathlib.Path(serialization.__file__).read_text(encoding="utf-8")
    assert "pickle" not in source.lower()
    assert "marshal" not in source and "eval(" not in source
