"""The checks every value of an upload passes, one function each: text a database can hold, how deep JSON nests,
paths inside the upload folder, annotator names.

* :func:`text_problem`: a NUL character or a lone surrogate (``\\u0000``,
  ``\\ud800`` escapes of JSON) is refused wherever it is, with the field and
  the row: PostgreSQL cannot store NUL in text, and a lone surrogate is no
  text at all, so refusing both keeps SQLite and PostgreSQL alike.
* :func:`json_problem`: parsed JSON nested more than :data:`MAX_JSON_DEPTH`
  levels is refused before any recursive code (decoding tagged values,
  serialising, hashing) meets it. A table's cells pass the same check
  (:func:`cell_depth_problem`, naming the column and the data row).
* :func:`upload_file`: the one rule for a path an upload names (an items
  JSONL ``file_path`` or ``data.image_path``, a Label Studio image already on
  this server, a table's ``image_path`` column, a tagged path in item data):
  resolved inside the upload folder and an existing file, or refused.
  :func:`item_paths` applies it to every path field of an item.
* :func:`check_annotator`: an annotator's name fits its import-only account
  (``_import:<name>``, see :func:`superintendent.labels.import_identity`).

Nothing here touches the database.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Sequence
from pathlib import Path, PurePath
from typing import Any

import numpy as np
import pandas as pd

from superintendent.labels import IMPORT_PREFIX, import_identity
from superintendent.validation import ValidationError

__all__ = ["MAX_ANNOTATOR_CHARS", "MAX_JSON_DEPTH", "MAX_PATH_CHARS", "cell_depth_problem", "check_annotator", "check_text",
           "first_text_problem", "item_paths", "json_problem", "text_problem", "upload_file"]

MAX_JSON_DEPTH = 100  # levels of lists and objects in one JSON document (a Label Studio file's own structure takes 5)
MAX_USERNAME_CHARS = 150  # the user table's limit
MAX_ANNOTATOR_CHARS = MAX_USERNAME_CHARS - len(IMPORT_PREFIX)  # an annotator's name with "_import:" in front must still fit
MAX_PATH_CHARS = 1000  # the item table's file_path column

_BAD_CHAR = re.compile("[\x00\ud800-\udfff]")
# JSON escapes that decode to one of those (raw NUL bytes are refused when the file is decoded; UTF-8 has no surrogates)
_BAD_ESCAPE = re.compile(r"\\u(?:0000|[dD][89abAB][0-9a-fA-F]{2}|[dD][c-fC-F][0-9a-fA-F]{2})")
_BAD_ESCAPE_BYTES = re.compile(_BAD_ESCAPE.pattern.encode())


def text_problem(text: str) -> str | None:
    """What makes ``text`` unstorable (a NUL character, a lone surrogate), or None."""
    found = _BAD_CHAR.search(text)
    if found is None:
        return None
    if found.group() == "\x00":
        return "a NUL character (\\u0000)"
    return f"a lone surrogate (\\u{ord(found.group()):04x}), which is not a character"


def check_text(text: str, where: str, field: str) -> str:
    """``text`` if it can be stored, else a ValidationError naming ``where`` and ``field``."""
    problem = text_problem(text)
    if problem is not None:
        raise ValidationError(f"{where}: the {field} {_short(text)} holds {problem}; remove it from the file and upload it again")
    return text


def _short(text: str) -> str:
    return repr(text) if len(text) <= 60 else repr(text[:57]) + "..."


# What nests: JSON's objects and lists, and in a table's cells also tuples and arrays (Parquet lists arrive as arrays).
_SEQUENCES = (list, tuple, np.ndarray)
_CONTAINERS = (dict, *_SEQUENCES)


def _children(value: dict | list | tuple | np.ndarray) -> Iterator[tuple[Any, Any]]:
    if isinstance(value, dict):
        return iter(value.items())
    if isinstance(value, np.ndarray):  # numbers (or text) only: nothing nests further inside
        return enumerate(value.reshape(-1) if value.dtype == object else ())
    return enumerate(value)


def json_problem(value: Any, raw: str | bytes | None = None, *, text: bool = True) -> tuple[tuple[Any, ...], str] | None:
    """The first place (keys and indexes from the top) where parsed JSON nests deeper than :data:`MAX_JSON_DEPTH` or
    holds unstorable text, and what is wrong there; None when there is none.

    ``raw``, the text it was parsed from, lets the text check be skipped when no escape in it could have made such a
    character; ``text=False`` skips it always (the depth only). Iterative (no recursion), in file order.
    """
    strings = text and (raw is None or (_BAD_ESCAPE.search(raw) if isinstance(raw, str) else _BAD_ESCAPE_BYTES.search(raw)) is not None)
    if _fine(value, strings):
        return None
    if isinstance(value, str):
        problem = text_problem(value) if strings else None
        return ((), f"holds {problem}") if problem else None
    if not isinstance(value, _CONTAINERS):
        return None
    stack: list[tuple[tuple[Any, ...], Iterator[tuple[Any, Any]]]] = [((), _children(value))]
    while stack:
        path, children = stack[-1]
        nxt = next(children, None)
        if nxt is None:
            stack.pop()
            continue
        key, child = nxt
        if strings and isinstance(key, str) and (problem := text_problem(key)) is not None:
            return path, f"has the key {_short(key)}, which holds {problem}"
        if isinstance(child, _CONTAINERS):
            if len(stack) >= MAX_JSON_DEPTH:
                return path + (key,), f"is nested more than {MAX_JSON_DEPTH} levels deep (lists or objects inside each other)"
            stack.append((path + (key,), _children(child)))
        elif strings and isinstance(child, str) and (problem := text_problem(child)) is not None:
            return path + (key,), f"holds {problem}"
    return None


def _fine(value: Any, strings: bool) -> bool:
    """Whether parsed JSON is within the depth limit and (with ``strings``) holds only storable text: the quick pass
    every upload takes (no paths kept; :func:`json_problem` looks for the place only when this says no)."""
    search = _BAD_CHAR.search
    if type(value) is str:
        return not strings or search(value) is None
    stack = [(value, 1)]
    pop, push = stack.pop, stack.append
    while stack:
        node, depth = pop()
        if depth > MAX_JSON_DEPTH:
            return False
        kind = type(node)
        if kind is dict:
            if strings and any(search(k) is not None for k in node):
                return False
            children = node.values()
        elif kind is list or kind is tuple:
            children = node
        elif kind is np.ndarray and node.dtype == object:
            children = node.reshape(-1)
        else:
            continue
        for child in children:
            kind = type(child)
            if kind is dict or kind is list or kind is tuple or kind is np.ndarray:
                push((child, depth + 1))
            elif strings and kind is str and search(child) is not None:
                return False
    return True


def cell_depth_problem(column: pd.Series) -> tuple[int, str] | None:
    """The first cell of a table's column that nests deeper than :data:`MAX_JSON_DEPTH` (its 0-based position) and what
    is wrong with it, or None: the table readers' form of :func:`json_problem`'s depth rule, one look at each cell."""
    if column.dtype != object:
        return None
    for row, value in enumerate(column.to_numpy(dtype=object)):
        if isinstance(value, _CONTAINERS):
            found = json_problem(value, text=False)
            if found is not None:
                return row, found[1]
    return None


def json_place(path: Sequence[Any], unit: str | None = None) -> str:
    """A place in a JSON document for a message: ``task 3, at ["data"]["text"]`` (the first index named by ``unit``)."""
    head = ""
    if unit is not None and path and isinstance(path[0], int):
        head, path = f"{unit} {path[0] + 1}", path[1:]
    shown = "".join(f"[{p}]" if isinstance(p, int) else f"[{json.dumps(str(p)[:60])}]" for p in path[:6]) + ("..." if len(path) > 6 else "")
    if not shown:
        return head or "the top level"
    return f"{head}, at {shown}" if head else f"at {shown}"


def upload_file(path: Any, root: Path | str | None, where: str) -> str:
    """The one rule for a path an upload names: resolved inside the upload folder ``root`` (a relative path is taken
    inside it; symbolic links are followed) and an existing file there; returns the resolved path, else refuses."""
    fix = ("put the file into this server's upload folder, or upload the images themselves (a ZIP of images, or Label "
           "Studio tasks in a ZIP with their images)")
    if isinstance(path, PurePath):
        path = str(path)
    if not isinstance(path, str) or not path.strip():
        raise ValidationError(f"{where}: a file path must be non-empty text; got {path!r}")
    check_text(path, where, "file path")
    if root is None:
        raise ValidationError(f"{where} names the file {_short(path)}; importing paths needs an upload folder (upload_dir)")
    try:
        base = Path(root).resolve()
        resolved = (base / path).resolve()
        inside = resolved.is_relative_to(base) and resolved.is_file()
    except (OSError, RuntimeError, ValueError):  # a name too long, a symbolic link loop
        inside = False
    if not inside:
        raise ValidationError(f"{where} names the file {_short(path)}, which is not a file in this server's upload folder; {fix}")
    if len(str(resolved)) > MAX_PATH_CHARS:
        raise ValidationError(f"{where}: the file path {_short(path)} is longer than {MAX_PATH_CHARS} characters once resolved")
    return str(resolved)


def item_paths(item: Any, root: Path | str | None, where: str) -> Any:
    """``item`` with every path it names checked by :func:`upload_file` and replaced by the resolved one: a tagged path
    (the item itself, or a value of a table row) and a row's ``"image_path"`` (the field retrains read images from)."""
    if isinstance(item, PurePath):
        return Path(upload_file(item, root, where))
    if not isinstance(item, dict):
        return item
    out = None
    for key, value in item.items():
        if key == "image_path" or isinstance(value, PurePath):
            resolved: Any = upload_file(value, root, f"{where}, field {_short(str(key))}")
            resolved = Path(resolved) if isinstance(value, PurePath) else resolved
            if resolved != value:
                out = dict(item) if out is None else out
                out[key] = resolved
    return item if out is None else out


def check_annotator(name: str, where: str) -> str:
    """An annotator's name as read (non-empty, storable, short enough for its import-only account ``_import:<name>``)."""
    if not name:
        raise ValidationError(f"{where}: the annotator's name is empty; give every annotation its annotator")
    check_text(name, where, "annotator name")
    if len(import_identity(name)) > MAX_USERNAME_CHARS:
        raise ValidationError(f"{where}: the annotator name {_short(name)} has {len(name)} characters; the limit is "
                              f"{MAX_ANNOTATOR_CHARS}")
    return name


def first_text_problem(texts: Sequence[str | None]) -> tuple[int, str] | None:
    """The index of the first text that cannot be stored and what is wrong with it (None entries are skipped), or None.
    One search over all of them when none is bad (ids and paths of a whole upload)."""
    present = [t for t in texts if t is not None]
    if not present or _BAD_CHAR.search("".join(present)) is None:
        return None
    for i, text in enumerate(texts):
        problem = None if text is None else text_problem(text)
        if problem is not None:
            return i, problem
    return None
