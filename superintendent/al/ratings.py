"""From annotations to ratings: the shape every agreement figure is computed on. Pure functions of plain data.

The input is a long frame with one row per annotation: ``item_id``,
``user``, ``value`` (the JSON-decoded label: a string or a number, or a list
of them in a multi-label project), optionally ``external_id``. The
importer's system user (``_import``) is left out: an imported label is not
a labeller's judgement.

A single-label rating is one row per annotation, its label as an integer
code; a multi-label one is one row per (annotation, option), the code 1 if
the labeller ticked the option and 0 if not.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from superintendent import serialization
from superintendent.labels import IMPORT_USER
from superintendent.validation import ValidationError

__all__ = ["Ratings", "as_list", "compared", "human_annotations", "label_codes", "label_key", "label_keys", "label_text",
           "pairable", "ratings_of"]


def label_key(value: Any) -> str:
    """A hashable key for a label (JSON text, as :func:`superintendent.labels.consensus` compares them)."""
    return serialization.dumps(value)


def label_keys(values: Iterable[Any]) -> list[str]:
    """:func:`label_key` of many labels, encoding each distinct scalar once."""
    cache: dict[tuple[type, Any], str] = {}
    keys = []
    for v in values:
        if isinstance(v, (str, int, float, bool)) or v is None:
            key = cache.get((type(v), v))
            if key is None:
                key = cache[(type(v), v)] = label_key(v)
            keys.append(key)
        else:
            keys.append(label_key(v))
    return keys


def label_codes(values: Iterable[Any]) -> tuple[np.ndarray, list[Any]]:
    """An integer code per label (in order of first appearance) and the distinct labels, code by code."""
    keys = label_keys(values)
    codes, uniques = pd.factorize(pd.Series(keys, dtype="object"))
    return codes.astype(np.int64), [serialization.loads(k) for k in uniques]


def label_text(value: Any) -> str:
    """A label as text: a multi-label value's labels joined by commas."""
    return ", ".join(map(str, value)) if isinstance(value, list) else str(value)


def as_list(value: Any) -> list[Any]:
    """A multi-label value as a list (None: no label ticked; a single label: a list of one)."""
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple, set)) else [value]


def pairable(unit: np.ndarray) -> np.ndarray:
    """Mask of the rows whose unit has two or more values."""
    _, inverse, counts = np.unique(unit, return_inverse=True, return_counts=True)
    return counts[inverse] >= 2


@dataclass(frozen=True)
class Ratings:
    """One row per value compared: ``unit`` (an item, or an (item, option) pair), ``item_id``, ``user``, ``code``.

    ``classes[code]`` is the class as text; for multi-label ratings ``option``
    names the option of each row and the codes are 0 (not ticked) / 1 (ticked).
    """

    rows: pd.DataFrame
    classes: list[str]
    multi: bool


def human_annotations(frame: pd.DataFrame) -> pd.DataFrame:
    """The labellers' annotations: the importer's left out, one per (item, user) (the last)."""
    needed = {"item_id", "user", "value"}
    if missing := needed - set(frame.columns):
        raise ValidationError(f"annotations need the columns item_id, user, value; missing: {', '.join(sorted(missing))}")
    out = frame[frame["user"] != IMPORT_USER]
    return out.drop_duplicates(["item_id", "user"], keep="last").reset_index(drop=True)


def ratings_of(frame: pd.DataFrame, label_mode: str = "single", options: Sequence[Any] | None = None) -> Ratings:
    """The ratings of a long frame of annotations (see the module docstring)."""
    human = human_annotations(frame)
    multi = label_mode == "multi"
    if not multi:
        codes, uniques = label_codes(human["value"])
        rows = pd.DataFrame({"unit": human["item_id"].to_numpy(dtype=np.int64), "item_id": human["item_id"].to_numpy(dtype=np.int64),
                             "user": human["user"].to_numpy(dtype=object), "code": codes})
        return Ratings(rows, [label_text(u) for u in uniques], False)
    lists = [as_list(value) for value in human["value"]]
    flat = iter(label_keys([v for one in lists for v in one]))
    chosen = [[next(flat) for _ in one] for one in lists]
    keys = list(dict.fromkeys([*label_keys(options or []), *(k for c in chosen for k in c)]))
    n_opt = len(keys)
    items = human["item_id"].to_numpy(dtype=np.int64)
    ticked = np.zeros((len(human), n_opt), dtype=np.int64)
    position = {k: j for j, k in enumerate(keys)}
    for i, c in enumerate(chosen):
        for k in c:
            ticked[i, position[k]] = 1
    item_pos, _ = pd.factorize(items)
    rows = pd.DataFrame({
        "unit": (np.repeat(item_pos.astype(np.int64), n_opt) * max(n_opt, 1) + np.tile(np.arange(n_opt), len(human))),
        "item_id": np.repeat(items, n_opt),
        "user": np.repeat(human["user"].to_numpy(dtype=object), n_opt),
        "option": np.tile(np.array([label_text(serialization.loads(k)) for k in keys], dtype=object), len(human)),
        "code": ticked.reshape(-1),
    })
    return Ratings(rows, ["no", "yes"], True)


def compared(rows: pd.DataFrame) -> pd.DataFrame:
    """The rows of units with two or more labels."""
    return rows[pairable(rows["unit"].to_numpy())] if len(rows) else rows
