"""What the task-file readers (Label Studio, items JSON Lines) share: ids, times, durations and tagged values."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from typing import Any

from superintendent import serialization
from superintendent.ingest.common import MAX_ID_CHARS
from superintendent.labels import content_ids
from superintendent.validation import ValidationError


def parse_time(value: Any, where: str) -> dt.datetime | None:
    """An ISO 8601 date-time (UTC when it names no zone) or None for none given."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ValidationError(f"{where}: created_at must be a date-time text such as '2024-05-01T12:00:00Z'; got {value!r}")
    try:
        stamp = dt.datetime.fromisoformat(value.strip())
    except ValueError:
        raise ValidationError(f"{where}: created_at {value!r} is not an ISO 8601 date-time such as '2024-05-01T12:00:00Z'") from None
    return stamp.replace(tzinfo=dt.UTC) if stamp.tzinfo is None else stamp.astimezone(dt.UTC)


def parse_seconds(value: Any, where: str, key: str) -> float | None:
    """A duration in seconds (0 or more), or None for none given."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise ValidationError(f"{where}: {key} must be a number of seconds (0 or more); got {value!r}")
    return float(value)


def decoded(value: Any, where: str) -> Any:
    """Task data as a Python value: tagged values (arrays, ...) written by our own export become what they were."""
    try:
        return serialization.decode(value)
    except (TypeError, ValueError) as exc:
        raise ValidationError(f"{where}: cannot read the value ({exc})") from None


def check_ids(ids: Sequence[str | None], where: Sequence[str]) -> None:
    """Every given id has 1 to 300 characters and belongs to one task only."""
    seen: dict[str, str] = {}
    for ext, place in zip(ids, where):
        if ext is None:
            continue
        if not ext or len(ext) > MAX_ID_CHARS:
            raise ValidationError(f"{place}: the id {ext!r} must have 1 to {MAX_ID_CHARS} characters")
        if ext in seen:
            raise ValidationError(f"{place} has the id {ext!r} of {seen[ext]}; every task needs its own id")
        seen[ext] = place


def fill_ids(items: Sequence[Any], ids: Sequence[str | None]) -> list[str]:
    """Ids for tasks without one: the content ids ``add_items`` would give them (the n-th repeat gets '#n')."""
    taken = {e for e in ids if e is not None}
    made = iter(content_ids(serialization.dumps(item) for item, ext in zip(items, ids) if ext is None))
    out = []
    for ext in ids:
        if ext is None:
            ext = next(made)
            if ext in taken:
                raise ValidationError(f"the content id {ext!r} of an item without an id is also the id of another task; "
                                      "give every task an id")
        out.append(ext)
    return out


def short_item(x: Any) -> str:
    """An item for a preview table: an image by its name, anything else as text of at most 80 characters."""
    text = x.get("name", x.get("image_path")) if isinstance(x, dict) and "image_path" in x else x
    text = str(text)
    return text if len(text) <= 80 else text[:77] + "..."
