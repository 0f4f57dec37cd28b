"""Small files that would be huge to read are refused before the expensive step (issue 13, item 4).

Each of the five measured blow-ups is generated here (at full size where that is cheap, else scaled down with a
lower limit) and must be refused with a message naming the limit, within a bounded time and a bounded rise of the
process's peak memory: the refusal comes from the header, the metadata or a scan of the bytes, not from reading.
"""

from __future__ import annotations

import io
import json
import re
import time
import tracemalloc
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from superintendent import cli, ingest
from superintendent.config import Settings
from superintendent.ingest import ImportLimits, sizes
from superintendent.validation import ValidationError

MB = 1024 * 1024
_CLEAR_REFS = Path("/proc/self/clear_refs")


def _rss_mb(field: str) -> float:
    found = re.search(rf"^{field}:\s+(\d+) kB", Path("/proc/self/status").read_text(), re.M)
    assert found is not None
    return int(found.group(1)) / 1024


def refused(fn: Callable[[], Any]) -> tuple[str, float, float]:
    """Run ``fn``, which must raise ValidationError: (message, seconds, rise of peak memory in MB).

    The peak is the process's resident high-water mark (reset first through /proc/self/clear_refs, so memory taken by
    pandas and pyarrow outside Python's allocator counts too); without that file, tracemalloc's peak.
    """
    use_rss = _CLEAR_REFS.exists()
    if use_rss:
        _CLEAR_REFS.write_text("5")
        before = _rss_mb("VmRSS")
    else:
        tracemalloc.start()
    start = time.perf_counter()
    try:
        with pytest.raises(ValidationError) as info:
            fn()
    finally:
        seconds = time.perf_counter() - start
        if use_rss:
            peak = _rss_mb("VmHWM") - before
        else:
            peak = tracemalloc.get_traced_memory()[1] / MB
            tracemalloc.stop()
    return str(info.value), seconds, peak


# --------------------------------------------------------------------------- 1. a CSV header of very many columns


def wide_csv(n_columns: int, quoted: bool = False) -> bytes:
    names = [f'"c,{i}"' if quoted else f"c{i}" for i in range(n_columns)]
    return (",".join(names) + "\n" + ",".join("1" for _ in range(n_columns)) + "\n").encode()


def test_a_csv_header_of_too_many_columns_is_refused_from_its_first_line():
    data = wide_csv(20_001)  # 0.17 MB; before: read in 4 s (1,000,000 columns: over 60 s and 3 GB)
    message, seconds, peak = refused(lambda: ingest.prepare_upload("wide.csv", data))
    assert "'wide.csv' has 20,001 columns; the limit is 10,000" in message
    assert "SUPERINTENDENT_MAX_UPLOAD_COLUMNS" in message
    assert seconds < 1.0 and peak < 20


@pytest.mark.parametrize("quoted", [False, True], ids=["plain", "quoted-names-with-commas"])
def test_the_column_count_reads_quoted_names(quoted):
    limits = ImportLimits(max_columns=3)
    assert ingest.read_table(wide_csv(3, quoted), "csv", limits).shape == (1, 3)
    counted = "more than 3" if quoted else "4"  # quoted names are parsed one by one, up to the limit
    with pytest.raises(ValidationError, match=f"has {counted} columns; the limit is 3"):
        ingest.read_table(wide_csv(4, quoted), "csv", limits)


@pytest.mark.parametrize("fmt", ["json", "jsonl"])
def test_json_rows_of_too_many_keys_are_refused(fmt):
    rows = [{"a": 1}, {"b": 2, "c": 3}, {"d": 4}]
    data = (b"[" + b",".join(map(_json, rows)) + b"]") if fmt == "json" else b"\n".join(map(_json, rows))
    with pytest.raises(ValidationError, match="has 4 columns; the limit is 3"):
        ingest.read_table(data, fmt, ImportLimits(max_columns=3))


def _json(obj: Any) -> bytes:
    return json.dumps(obj).encode()


def test_rows_times_columns_are_bounded_before_the_items_are_built():
    data = b"a,b,c\n" + b"1,2,3\n" * 4
    assert ingest.read_table(data, "csv", ImportLimits(max_cells=12)).shape == (4, 3)
    with pytest.raises(ValidationError, match=r"more than 12 cells \(rows x columns\); the limit is 12"):
        ingest.read_table(data + b"4,5,6\n", "csv", ImportLimits(max_cells=12))
    table = pa.table({"a": list(range(5)), "b": list(range(5)), "c": list(range(5))})
    with pytest.raises(ValidationError, match=r"15 cells \(5 rows x 3 columns\); the limit is 12"):
        ingest.read_table(parquet(table), "parquet", ImportLimits(max_cells=12))


# --------------------------------------------------------------------------- 2. Parquet declaring (or decoding to) too much


def parquet(table: pa.Table, **options: Any) -> bytes:
    buf = io.BytesIO()
    pq.write_table(table, buf, **options)
    return buf.getvalue()


def strings_parquet(n_rows: int, chars: int, *, dictionary: bool, rows_per_group: int = 100) -> bytes:
    """``n_rows`` copies of one string of ``chars`` characters, written a row group at a time (little memory)."""
    buf = io.BytesIO()
    group = pa.table({"text": pa.array(["a" * chars] * rows_per_group, pa.string())})
    with pq.ParquetWriter(buf, group.schema, compression="zstd", use_dictionary=dictionary) as writer:
        for _ in range(n_rows // rows_per_group):
            writer.write_table(group)
    return buf.getvalue()


def test_a_parquet_file_declaring_more_than_the_unpacked_limit_is_refused_from_its_metadata():
    data = strings_parquet(3_000, 100_000, dictionary=False)  # 300 MB of text in a file of about 0.1 MB
    assert len(data) < MB
    message, seconds, peak = refused(lambda: ingest.prepare_upload("strings.parquet", data))
    assert "'strings.parquet' unpacks to 286.1 MB (300,012,990 bytes) of column data; the limit is 256.0 MB" in message
    assert "SUPERINTENDENT_MAX_UNCOMPRESSED_MB" in message
    assert seconds < 1.0 and peak < 20


def test_a_dictionary_encoded_parquet_file_is_measured_as_it_decodes():
    """Dictionary encoding declares one copy of a repeated string: the size that counts is the decoded one."""
    data = strings_parquet(3_000, 100_000, dictionary=True)
    message, seconds, peak = refused(lambda: ingest.prepare_upload("strings.parquet", data))
    assert "'strings.parquet' decodes to more than 256.0 MB" in message and "the limit is 256.0 MB" in message
    assert seconds < 2.0 and peak < 40


def test_a_parquet_string_longer_than_the_field_limit_is_refused_before_decoding():
    data = strings_parquet(4_800, 200_000, dictionary=True)  # the measured case, dictionary-encoded: 960 MB decoded
    message, seconds, peak = refused(lambda: ingest.prepare_upload("strings.parquet", data))
    assert "'strings.parquet': the value in column 'text', data row 1 is 200,000 characters long; the limit is 100,000" in message
    assert seconds < 2.0 and peak < 40


def test_parquet_lists_are_measured_as_they_decode():
    table = pa.table({"tags": pa.array([["x" * 1_000] * 100] * 50)})  # 5 MB of text from one dictionary entry
    with pytest.raises(ValidationError, match="decodes to more than 1.0 MB"):
        ingest.read_table(parquet(table), "parquet", ImportLimits(max_unpacked_bytes=MB))
    assert len(ingest.read_table(parquet(table), "parquet", ImportLimits())) == 50


def test_parquet_strings_inside_structs_maps_and_lists_are_measured_before_decoding():
    table = pa.table({"s": pa.array([{"a": "x" * 10, "b": 1}, {"a": "yy", "b": 2}]),
                      "m": pa.array([[("k", "v")], [("k2", "v" * 20)]], pa.map_(pa.string(), pa.string())),
                      "l": pa.array([["a"], ["b", "c" * 12]])})
    data = parquet(table)
    assert len(ingest.read_table(data, "parquet")) == 2
    with pytest.raises(ValidationError, match=r"the value in column 'm', data row 2 is 20 characters long; the limit is 15"):
        ingest.read_table(data, "parquet", ImportLimits(max_field_chars=15))
    with pytest.raises(ValidationError, match=r"the value in column 'l', data row 2 is 12 characters long; the limit is 11"):
        ingest.read_table(parquet(table.drop_columns(["m"])), "parquet", ImportLimits(max_field_chars=11))


# --------------------------------------------------------------------------- 3. an .npz that inflates far beyond its size


def streamed_npz(shape: tuple[int, ...], dtype: str = "<f4", *, chunk: int = 4 * MB, declared: tuple[int, ...] | None = None) -> bytes:
    """An .npz of zeros written a chunk at a time; ``declared`` puts another shape in the .npy header."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        with zf.open("x.npy", "w", force_zip64=True) as f:
            np.lib.format.write_array_header_1_0(f, {"descr": dtype, "fortran_order": False, "shape": declared or shape})
            left = int(np.prod(shape)) * np.dtype(dtype).itemsize
            zeros = bytes(chunk)
            while left > 0:
                f.write(zeros[: min(chunk, left)])
                left -= chunk
    return buf.getvalue()


def test_an_npz_that_unpacks_beyond_the_limit_is_refused_before_unpacking():
    data = streamed_npz((2_000_000, 60))  # the measured case: 0.47 MB, 458 MB unpacked
    assert len(data) < MB
    message, seconds, peak = refused(lambda: ingest.prepare_upload("zeros.npz", data))
    assert "'zeros.npz' unpacks to 457.8 MB (480,000,128 bytes); the limit is 256.0 MB" in message
    assert "SUPERINTENDENT_MAX_UNCOMPRESSED_MB" in message
    assert seconds < 1.0 and peak < 20


def test_an_npz_array_header_is_checked_before_its_data_is_read():
    data = streamed_npz((1_000, 4), declared=(3_000_000, 4))
    with pytest.raises(ValidationError, match=r"array 'x' of 'h.npz' has 3,000,000 rows; the limit is 2,000,000"):
        ingest.prepare_upload("h.npz", data)
    data = streamed_npz((1_000, 4), declared=(2_000, 4))
    with pytest.raises(ValidationError, match=r"array 'x' of 'h.npz' is damaged: its header declares shape \(2000, 4\)"):
        ingest.prepare_upload("h.npz", data)


# --------------------------------------------------------------------------- 4. items with nothing in them


def npy(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, arr)
    return buf.getvalue()


@pytest.mark.parametrize("shape", [(1_999_999, 0), (5, 2, 0)], ids=["rows-of-nothing", "rows-of-empty-matrices"])
def test_an_array_whose_items_hold_no_values_is_refused(shape):
    data = npy(np.zeros(shape, np.float32))
    assert len(data) == 128
    message, seconds, peak = refused(lambda: ingest.prepare_upload("empty.npy", data))
    assert f"'empty.npy' has shape {shape}: its {shape[0]:,} items hold no values" in message
    assert seconds < 0.5 and peak < 10
    with pytest.raises(ValidationError, match=r"array 'x' of 'e.npz' has shape \(3, 0\): its 3 items hold no values"):
        ingest.prepare_upload("e.npz", streamed_npz((3, 0)))


# --------------------------------------------------------------------------- 5. one enormous field


def test_a_field_longer_than_the_limit_is_found_by_scanning_the_bytes():
    data = b"text\n" + b"a" * (20 * MB) + b"\n"  # the measured case was 200 MB: refused after using about 2 GB
    message, seconds, peak = refused(lambda: ingest.prepare_upload("one_line.csv", data))
    assert "'one_line.csv': the value in column 'text', data row 1 is 20,971,520 characters long; the limit is 100,000" in message
    assert seconds < 1.0 and peak < 30


@pytest.mark.parametrize("field", [
    b'"' + b"a" * 10 + b'"',  # quotes are not characters of the field
    b"\xc3\xa9" * 10,  # characters, not bytes
    b'"a""b""c""d""ef"',  # a doubled quote is one character
    b'ab"cdefghi"',  # a quote inside an unquoted field is a character
    b"a" * 11,
    b'"' + b"a" * 11 + b'"',
    b"\xc3\xa9" * 11,
    b'"a""b""c""d""efg"',
], ids=["quoted-at-limit", "utf8-at-limit", "escaped-quotes-at-limit", "stray-quotes-at-limit", "plain-over", "quoted-over",
        "utf8-over", "escaped-quotes-over"])
def test_the_field_scan_counts_characters_as_the_reader_does(field):
    data = b"id,text\n1,short\n2," + field + b"\n"
    chars = len(ingest.read_table(data, "csv")["text"][1])  # what the reader makes of it
    assert chars in (10, 11)
    found = sizes.csv_long_field(data, 10)
    assert (found.chars, found.line, found.column, found.row) == (11, 3, "text", 2) if chars == 11 else found is None
    if chars == 10:
        assert len(ingest.read_table(data, "csv", ImportLimits(max_field_chars=10))) == 2
    else:
        with pytest.raises(ValidationError, match=r"the value in column 'text', data row 2 is 11 characters long; the limit is 10"):
            ingest.read_table(data, "csv", ImportLimits(max_field_chars=10))


def test_a_long_field_after_quoted_line_breaks_is_named_by_its_line():
    data = b'text,note\n"two\nlines",x\nok,' + b"y" * 11 + b"\n"
    with pytest.raises(ValidationError, match=r"the value on line 4 is 11 characters long; the limit is 10"):
        ingest.read_table(data, "csv", ImportLimits(max_field_chars=10))


# --------------------------------------------------------------------------- the limits come from the settings


def test_the_limits_come_from_the_settings():
    settings = Settings(max_upload_mb=7, max_upload_rows=11, max_upload_columns=12, max_upload_cells=13, max_field_chars=14,
                        max_uncompressed_mb=15)
    limits = ImportLimits.from_settings(settings)
    assert (limits.max_bytes, limits.max_rows, limits.max_columns, limits.max_cells, limits.max_field_chars,
            limits.max_unpacked_bytes) == (7 * MB, 11, 12, 13, 14, 15 * MB)
    assert ImportLimits.from_settings(Settings()) == ImportLimits()


def test_the_command_line_import_uses_the_settings(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("SUPERINTENDENT_DATABASE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    monkeypatch.setenv("SUPERINTENDENT_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("SUPERINTENDENT_MAX_UPLOAD_COLUMNS", "3")
    assert cli.main(["create-project", "rows", "--data-type", "tabular"]) == 0
    data = tmp_path / "rows.csv"
    data.write_text("a,b,c,d\n1,2,3,4\n")
    assert cli.main(["import", "rows", str(data)]) == 2
    assert "'rows.csv' has 4 columns; the limit is 3" in capsys.readouterr().err
