"""What the readers share: the wording of errors, text decoding, JSON without duplicate keys, plain values.

Internal to :mod:`superintendent.ingest`. Every problem becomes a
:class:`ValidationError` that names the file, what was expected, what came
and the fix; no parser's traceback reaches the user.
"""

from __future__ import annotations

import codecs
import json
import math
import re
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np
import pandas as pd

from superintendent.ingest.checks import json_place, json_problem
from superintendent.ingest.prepared import MB
from superintendent.validation import ValidationError

NUMERIC_KINDS = "biufc"
MAX_ID_CHARS = 300  # queue.add_items' limit on external ids


def mb(n: int) -> str:
    return f"{n / MB:,.1f} MB ({n:,} bytes)"


_INTERNALS = re.compile(r"\s*<[^<>]* (?:object )?at 0x[0-9a-fA-F]+>|Error tokenizing data\.\s*|C error:\s*")


def reason(exc: BaseException) -> str:
    """The first line of an exception's message without parser internals (object addresses, "C error"), at most 300
    characters."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    text = _INTERNALS.sub("", lines[0]).strip() if lines else type(exc).__name__
    text = text or type(exc).__name__
    return text if len(text) <= 300 else text[:297] + "..."


_MAGIC = {b"\x89PNG": "a PNG image", b"\xff\xd8\xff": "a JPEG image", b"GIF8": "a GIF image", b"PK\x03\x04": "a ZIP archive",
          b"PAR1": "a Parquet file", b"%PDF": "a PDF document", b"\x93NUMPY": "a .npy array"}
_CONTROL = bytes(b for b in range(32) if b not in (9, 10, 11, 12, 13)) + b"\x7f"


def binary_kind(data: bytes) -> str | None:
    """What a file that is not text looks like ("a PNG image", "a binary file"), or None for text: a known signature,
    a NUL byte, or more than one in ten control characters in its first 4 KB."""
    for magic, kind in _MAGIC.items():
        if data.startswith(magic):
            return kind
    head = data[:4096]
    if b"\x00" in head or (head and sum(head.count(bytes([c])) for c in _CONTROL) > len(head) / 10):
        return "a binary file"
    return None


@contextmanager
def reading(what: str, hint: str) -> Iterator[None]:
    """Turn any error of a parser into a ValidationError naming ``what`` and the fix."""
    try:
        yield
    except ValidationError:
        raise
    except MemoryError:
        raise ValidationError(f"cannot read {what}: it needs more memory than is available; split it into smaller files") from None
    except Exception as exc:  # noqa: BLE001 - parsers raise anything on bad input; the user gets one clear message
        raise ValidationError(f"cannot read {what}: {reason(exc)}. {hint}") from None


def as_bytes(data: object, what: str) -> bytes:
    if isinstance(data, bytes):
        return data
    if isinstance(data, (bytearray, memoryview)):
        return bytes(data)
    raise ValidationError(f"{what}: expected the file's content as bytes; got {type(data).__name__}")


def file_name(name: str | None) -> str:
    """How messages name an upload: its name quoted, or "the file"."""
    return repr(name) if name else "the file"


def too_many_rows(what: str, n: int | str, max_rows: int) -> ValidationError:
    shown = f"{n:,}" if isinstance(n, int) else n
    return ValidationError(f"{what} has {shown} rows; the limit is {max_rows:,} (SUPERINTENDENT_MAX_UPLOAD_ROWS). Split it into "
                           "several files")


def row_list(rows: Sequence[int]) -> str:
    """Row numbers for a message: the first five, then how many more."""
    shown = ", ".join(str(r) for r in rows[:5])
    return shown + (f" and {len(rows) - 5} more" if len(rows) > 5 else "")


def plain(v: Any) -> Any:
    """A value as plain Python (numpy scalars unwrapped, NaN / NA / NaT as None) that serialises cleanly. A table's cells
    are checked for depth before they come here (:func:`~superintendent.ingest.checks.cell_depth_problem`)."""
    if v is None or v is pd.NA or v is pd.NaT:
        return None
    if isinstance(v, (np.datetime64, np.timedelta64)):
        if np.isnat(v):
            return None
        return pd.Timestamp(v) if isinstance(v, np.datetime64) else pd.Timedelta(v)
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and math.isnan(v):
        return None
    if isinstance(v, np.ndarray):
        return v if v.dtype.kind in NUMERIC_KINDS else [plain(x) for x in v.tolist()]
    if isinstance(v, (list, tuple)):
        return [plain(x) for x in v]
    if isinstance(v, dict):
        return {k: plain(x) for k, x in v.items()}
    return v


def is_missing(v: Any) -> bool:
    return v is None or (isinstance(v, str) and not v.strip())


def strip_bom(data: bytes) -> bytes:
    return data[3:] if data.startswith(b"\xef\xbb\xbf") else data


_UTF8_CHUNK = 8 * MB
_NOT_SPACE = re.compile(rb"[^ \t\n\r\x0b\x0c]")


def _utf8_error(data: bytes) -> int | None:
    """The position of the first byte that is not UTF-8, or None: decoded a chunk at a time, keeping none of the text."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    view = memoryview(data)
    for start in range(0, len(data), _UTF8_CHUNK):
        pending = len(decoder.getstate()[0])  # bytes of a character cut by the previous chunk, decoded with this one
        try:
            decoder.decode(view[start:start + _UTF8_CHUNK], final=start + _UTF8_CHUNK >= len(data))
        except UnicodeDecodeError as exc:
            return start - pending + exc.start
    return None


def check_text_bytes(data: bytes, what: str, kind: str = "a text file") -> None:
    """Refuse content that is not UTF-8 text (binary, badly encoded, NUL characters, only whitespace) with the fix,
    without making a copy of it as text. ``kind`` names the format expected in the message ("a CSV", "JSON")."""
    found = binary_kind(bytes(data[:4096]))
    if found is not None:
        also = "" if found == "a binary file" else f" (it starts like {found})"
        raise ValidationError(f"{what}: this looks like a binary file, not {kind}{also}; upload the file itself, or give it "
                              "the extension of its real format")
    bad = _utf8_error(data)
    if bad is not None:
        line = data.count(b"\n", 0, bad) + 1
        raise ValidationError(
            f"{what} is not UTF-8 text: byte 0x{data[bad:bad + 1].hex()} at position {bad} (line {line}) "
            "cannot be decoded. Save the file as UTF-8 (in Excel: 'CSV UTF-8'), or convert it, e.g. "
            "`iconv -f latin1 -t utf-8 in.csv > out.csv`"
        )
    if b"\x00" in data:
        raise ValidationError(f"{what} contains NUL characters, so it is a binary file, not text; upload a text file, "
                              "or give the file the extension of its real format")
    if _NOT_SPACE.search(data, 3 if data.startswith(b"\xef\xbb\xbf") else 0) is None:
        raise ValidationError(f"{what} contains only whitespace; expected a header row and at least one data row")


def decode_text(data: bytes, what: str, kind: str = "a text file") -> str:
    """UTF-8 text (a byte-order mark is dropped); binary or blank content is refused with the fix
    (:func:`check_text_bytes`)."""
    check_text_bytes(data, what, kind)
    text = data.decode("utf-8-sig")
    if not text.strip():  # other Unicode spaces only
        raise ValidationError(f"{what} contains only whitespace; expected a header row and at least one data row")
    return text


def no_duplicate_keys(what: str) -> Callable[[list[tuple[str, Any]]], dict[str, Any]]:
    """A ``json.loads`` hook refusing an object with the same key twice (JSON would keep the last silently)."""
    def hook(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        out = dict(pairs)
        if len(out) != len(pairs):
            dupes = [k for k, c in Counter(k for k, _ in pairs).items() if c > 1]
            raise ValidationError(f"{what} has an object with the key {dupes[0]!r} twice; every key of an object must be distinct")
        return out
    return hook


def load_json(text: str | bytes, what: str, hint: str, unit: str | None = None) -> Any:
    """Parsed JSON, or a ValidationError saying where it breaks and what was expected (``hint``). JSON nested too deep
    or holding text no database stores is refused too (:func:`~superintendent.ingest.checks.json_problem`); ``unit``
    names the elements of a top-level list in that message ("task 3")."""
    try:
        value = json.loads(text, object_pairs_hook=no_duplicate_keys(what))
        problem = json_problem(value, text)
        if problem is not None:
            raise ValidationError(f"{what}: {json_place(problem[0], unit)} {problem[1]}; fix the file and upload it again")
        return value
    except json.JSONDecodeError as exc:
        raise ValidationError(f"{what} is not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}. {hint}") from None
    except ValidationError:
        raise
    except Exception as exc:  # noqa: BLE001 - e.g. RecursionError past about 1,000 levels, too many digits
        raise ValidationError(f"cannot read {what} as JSON: {reason(exc)}. {hint}") from None
