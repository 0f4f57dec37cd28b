"""What a table upload will cost, judged before it is read: a small file must not make a huge table.

Internal to :mod:`superintendent.ingest.tables`; each check runs before the
expensive step it guards and keeps its own memory small:

* :func:`csv_columns`: the fields of a CSV's header line, counted from the
  bytes (pandas takes seconds and gigabytes over a million columns);
* :func:`csv_long_field`: a CSV field longer than the limit, found by a
  scan of the bytes a few megabytes at a time (pandas would first copy it
  several times over);
* :func:`check_parquet`: a Parquet file's rows, columns and declared
  unpacked size from its metadata, then its strings measured as they decode,
  kept dictionary-encoded (a string stored once and repeated a million times
  is a few bytes in the file and in its metadata).
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from typing import Any

import numpy as np

from superintendent.ingest.common import mb, too_many_rows
from superintendent.ingest.prepared import MB, ImportLimits
from superintendent.validation import ValidationError

__all__ = ["LongField", "check_parquet", "csv_columns", "csv_long_field", "long_value", "too_many_cells", "too_many_columns"]

_SCAN_CHUNK = 4 * MB
_COMMA, _LF, _CR, _QUOTE = 44, 10, 13, 34
# one field of a CSV line and what ends it: a quoted field ("" is a quote inside it), or an unquoted one
_FIELD = re.compile(rb'(?:"[^"]*(?:""[^"]*)*"[^,\r\n]*|[^,\r\n"][^,\r\n]*|)(,|\r\n|\r|\n|\Z)')
SETTING_HINT = "SUPERINTENDENT_{}"  # named after the limit: the setting that changes it


def too_many_columns(what: str, n: int | str, limit: int) -> ValidationError:
    shown = f"{n:,}" if isinstance(n, int) else n
    return ValidationError(f"{what} has {shown} columns; the limit is {limit:,} ({SETTING_HINT.format('MAX_UPLOAD_COLUMNS')}). "
                           "Keep the columns you need, or save wide numeric data as a .npy array, one row per item")


def _header_start(data: bytes) -> int:
    start = 3 if data.startswith(b"\xef\xbb\xbf") else 0
    while start < len(data) and data[start] in (_LF, _CR):  # blank lines before the header are skipped, as pandas does
        start += 1
    return start


def csv_columns(data: bytes, limit: int) -> int | str | None:
    """How many fields the header line of CSV ``data`` has: a number, "more than N" once past ``limit`` (counting stops
    there), or None when the line cannot be parsed (the CSV reader then says why)."""
    start = _header_start(data)
    end = min((i for i in (data.find(b"\n", start), data.find(b"\r", start)) if i >= 0), default=len(data))
    if data.find(b'"', start, end) < 0:
        return data.count(b",", start, end) + 1  # no quotes: every comma separates two fields
    n, pos = 0, start
    while True:
        m = _FIELD.match(data, pos)
        if m is None:
            return None
        n += 1
        if n > limit:
            return f"more than {limit:,}"
        if m.group(1) != b",":
            return n
        pos = m.end()


def _header_field(data: bytes, index: int) -> str | None:
    """The name of column ``index`` (from 0) as the CSV reader will give it, or None."""
    pos = _header_start(data)
    for _ in range(index + 1):
        m = _FIELD.match(data, pos)
        if m is None or (m.group(1) != b"," and _ < index):
            return None
        pos, field = m.end(), m.group(0)[: m.start(1) - m.start(0)]
    if field.startswith(b'"') and field.endswith(b'"') and len(field) >= 2:
        field = field[1:-1].replace(b'""', b'"')
    return field.decode("utf-8", errors="replace").removeprefix("\ufeff")


@dataclass(frozen=True)
class LongField:
    """Where a CSV field over the limit is: its physical line, and its column name and data row when the bytes before it
    tell them for certain (no quotes, blank lines or lone carriage returns before it); its length in characters."""

    line: int
    chars: int
    column: str | None
    row: int | None


def _place(data: bytes, start: int, chars: int) -> LongField:
    line = data.count(b"\n", 0, start) + 1
    plain = (data.count(b'"', 0, start) == 0 and data.count(b"\n\n", 0, start) == data.count(b"\n\r\n", 0, start) == 0
             and data.count(b"\r", 0, start) == data.count(b"\r\n", 0, start) and data[:1] not in (b"\n", b"\r"))
    if not plain or line == 1:
        return LongField(line, chars, None, None)
    index = data.count(b",", data.rfind(b"\n", 0, start) + 1, start)
    return LongField(line, chars, _header_field(data, index), line - 1)


def _field_chars(data: bytes, start: int, end: int) -> int:
    """Characters of the CSV field in ``data[start:end]`` (a stretch holding no comma or line break), as the reader will
    give them: UTF-8 continuation bytes and the quotes of a quoted field ("" is one quote) do not count. Never more
    than the field holds, so a refusal is never wrong."""
    chars, quotes = end - start, 0
    for at in range(start, end, _SCAN_CHUNK):  # a few megabytes at a time: the field may be hundreds of them
        view = np.frombuffer(data, np.uint8, count=min(_SCAN_CHUNK, end - at), offset=at)
        chars -= int(np.count_nonzero((view & 0xC0) == 0x80))
        quotes += int(np.count_nonzero(view == _QUOTE))
    if data[start] != _QUOTE:
        return chars  # a quote inside an unquoted field is an ordinary character
    if data[end - 1] == _QUOTE and quotes >= 2:
        return chars - 2 - (quotes - 2) // 2  # the enclosing quotes, and one of each doubled quote
    return chars - quotes  # a quoted field that goes on past a comma or line break: at least this long


def csv_long_field(data: bytes, limit: int) -> LongField | None:
    """The first field of CSV ``data`` longer than ``limit`` characters (:class:`LongField`), or None.

    Scans the bytes for commas and line breaks a few megabytes at a time; a
    stretch between two of them longer than ``limit`` bytes is measured in
    characters (:func:`_field_chars`). A quoted field holding commas or line
    breaks is met in pieces and is left to the check after reading.
    """
    last = 2 if data.startswith(b"\xef\xbb\xbf") else -1  # the last separator seen (a byte-order mark is no character)
    for start in range(0, len(data), _SCAN_CHUNK):
        chunk = np.frombuffer(data, np.uint8, count=min(_SCAN_CHUNK, len(data) - start), offset=start)
        seps = np.flatnonzero((chunk == _COMMA) | (chunk == _LF) | (chunk == _CR)) + start
        if not len(seps):
            continue
        bounds = np.concatenate(([last], seps))
        for i in np.flatnonzero(np.diff(bounds) - 1 > limit):
            found = _measure(data, int(bounds[i]) + 1, int(bounds[i + 1]), limit)
            if found is not None:
                return found
        last = int(seps[-1])
    return _measure(data, last + 1, len(data), limit) if len(data) - last - 1 > limit else None


def _measure(data: bytes, start: int, end: int, limit: int) -> LongField | None:
    chars = _field_chars(data, start, end)
    return _place(data, start, chars) if chars > limit else None


# --------------------------------------------------------------------------- Parquet

_FIXED_WIDTH = {"BOOLEAN": 1, "INT32": 4, "FLOAT": 4, "INT64": 8, "DOUBLE": 8, "INT96": 12}


def check_parquet(data: bytes, limits: ImportLimits, what: str) -> None:
    """Refuse a Parquet file whose rows, columns, cells or unpacked size are over the limits, or that holds a string
    longer than ``limits.max_field_chars``, before any column is read into a table."""
    import pyarrow.parquet as pq

    parquet = pq.ParquetFile(io.BytesIO(data))
    meta = parquet.metadata
    n_columns = len(parquet.schema_arrow.names)
    if meta.num_rows > limits.max_rows:
        raise too_many_rows(what, meta.num_rows, limits.max_rows)
    if n_columns > limits.max_columns:
        raise too_many_columns(what, n_columns, limits.max_columns)
    if meta.num_rows * n_columns > limits.max_cells:
        raise too_many_cells(what, f"{meta.num_rows * n_columns:,} cells ({meta.num_rows:,} rows x {n_columns:,} columns)", limits.max_cells)
    limit = limits.max_in_memory
    chunks = [meta.row_group(g).column(c) for g in range(meta.num_row_groups) for c in range(meta.num_columns)]
    declared = sum(chunk.total_uncompressed_size for chunk in chunks)
    if declared > limit:
        raise ValidationError(f"{what} unpacks to {mb(declared)} of column data; the limit is {mb(limit)} "
                              f"({SETTING_HINT.format('MAX_UNCOMPRESSED_MB')}). Split it into smaller files")
    # fixed-width values take their width whatever their encoding; strings are measured below
    schema = parquet.schema
    widths = [_FIXED_WIDTH.get(schema.column(c).physical_type, schema.column(c).length or 0) for c in range(meta.num_columns)]
    decoded = sum(chunk.num_values * widths[i % meta.num_columns] for i, chunk in enumerate(chunks))
    if decoded > limit:
        raise _decodes_to_more(what, limit)
    strings = [schema.column(c).path for c in range(meta.num_columns) if schema.column(c).physical_type == "BYTE_ARRAY"]
    if not strings:
        return
    tops = list(dict.fromkeys(p.split(".")[0] for p in strings))
    as_dictionary = pq.ParquetFile(io.BytesIO(data), read_dictionary=strings)
    row = 0
    for batch in as_dictionary.iter_batches(batch_size=8192, columns=tops, use_threads=False):
        for name, column in zip(batch.schema.names, batch.columns):
            size, longest, where = _string_sizes(column)
            decoded += size
            if longest > limits.max_field_chars:
                raise long_value(what, f"in column {name!r}, data row {row + where + 1:,}", longest, limits)
        if decoded > limit:
            raise _decodes_to_more(what, limit)
        row += batch.num_rows


def long_value(what: str, where: str, chars: int, limits: ImportLimits) -> ValidationError:
    """The one wording of a cell over ``limits.max_field_chars`` (CSV bytes, Parquet strings, any table once read)."""
    return ValidationError(f"{what}: the value {where} is {chars:,} characters long; the limit is {limits.max_field_chars:,} "
                           f"({SETTING_HINT.format('MAX_FIELD_CHARS')}). Shorten it (or store long documents as files)")


def too_many_cells(what: str, n: str, limit: int) -> ValidationError:
    return ValidationError(f"{what} has {n}; the limit is {limit:,} ({SETTING_HINT.format('MAX_UPLOAD_CELLS')}). Split it "
                           "into several files, or keep the columns you need")


def _decodes_to_more(what: str, limit: int) -> ValidationError:
    return ValidationError(f"{what} decodes to more than {mb(limit)} in memory (a value stored once in the file and repeated "
                           f"row after row counts every time); the limit is {mb(limit)} ({SETTING_HINT.format('MAX_UNCOMPRESSED_MB')}). "
                           "Split it into smaller files")


def _string_sizes(arr: Any) -> tuple[int, int, int]:
    """(bytes of text, longest text in characters, its row or -1) of an Arrow array as it will decode: dictionary
    values counted once per use, lists and structs looked into."""
    import pyarrow as pa
    import pyarrow.compute as pc

    kind = arr.type
    if pa.types.is_dictionary(kind):
        values = arr.dictionary
        if not (pa.types.is_string(values.type) or pa.types.is_large_string(values.type) or pa.types.is_binary(values.type)
                or pa.types.is_large_binary(values.type)):
            return 0, 0, -1
        size = pc.binary_length(values).take(arr.indices)
        chars = pc.utf8_length(values).take(arr.indices) if pa.types.is_string(values.type) or pa.types.is_large_string(values.type) else size
        return _totals(size, chars, len(arr))
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        size = pc.binary_length(arr)
        return _totals(size, pc.utf8_length(arr), len(arr))
    if pa.types.is_binary(kind) or pa.types.is_large_binary(kind):
        size = pc.binary_length(arr)
        return _totals(size, size, len(arr))
    if pa.types.is_map(kind):  # keys and values, each a list of the same shape
        offsets = arr.offsets.to_numpy(zero_copy_only=False)
        first, n = int(offsets[0]), int(offsets[-1] - offsets[0])
        parts = [_string_sizes(child.slice(first, n)) for child in (arr.keys, arr.items)]
        longest, where = max((p[1], p[2]) for p in parts)
        row = int(np.searchsorted(offsets, first + where, side="right")) - 1 if where >= 0 else -1
        return sum(p[0] for p in parts) + 4 * len(arr), longest, row
    if pa.types.is_list(kind) or pa.types.is_large_list(kind) or pa.types.is_fixed_size_list(kind):
        size, longest, where = _string_sizes(arr.flatten())
        if where >= 0:
            where = int(pc.list_parent_indices(arr)[where].as_py())
        return size + 4 * len(arr), longest, where
    if pa.types.is_struct(kind):
        parts = [_string_sizes(child) for child in arr.flatten()]
        size = sum(p[0] for p in parts)
        longest, where = max(((p[1], p[2]) for p in parts), default=(0, -1))
        return size, longest, where
    return 0, 0, -1


def _totals(size: Any, chars: Any, n: int) -> tuple[int, int, int]:
    import pyarrow.compute as pc

    total = pc.sum(size).as_py() or 0
    longest = pc.max(chars).as_py() or 0
    where = int(pc.index(chars, longest).as_py()) if longest else -1
    return total + 4 * n, longest, where
