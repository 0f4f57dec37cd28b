"""Pure rules about labels, one copy each: consensus, the final label, option matching, content ids.

No database and no I/O: the queue, the importers, the exports and the
agreement statistics all call these, so each rule is written once.
"""

from __future__ import annotations

import enum
import hashlib
import math
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

from superintendent import serialization
from superintendent.al.matching import marks_consensus

# The account name imported labels are stored under when the file names no labeller (a system account: it never signs in).
IMPORT_USER = "_import"
# An annotator named in an uploaded file gets an import-only account "_import:<name>" (system role, never signs in; a
# person's name cannot start with "_"), unless the importing admin maps the name to a person explicitly.
IMPORT_PREFIX = IMPORT_USER + ":"


def import_identity(name: str) -> str:
    """The import-only account of annotator ``name`` of a file; a name that is one already stays as it is."""
    return name if name == IMPORT_USER or name.startswith(IMPORT_PREFIX) else IMPORT_PREFIX + name


def file_annotator(username: str) -> str:
    """The annotator name an import-only account stands for (what an export to another tool writes); others unchanged."""
    return username[len(IMPORT_PREFIX):] if username.startswith(IMPORT_PREFIX) else username


def content_id(payload: str) -> str:
    """The default external id of an item: a hash of its serialised content."""
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:32]


def consensus(values: Sequence[Any], label_mode: str = "single") -> tuple[Any, bool]:
    """The majority label of several annotations, and whether there was a tie.

    Single-label: the most frequent label; a tie goes to the label given
    first. Multi-label: every label chosen by more than half of the
    annotators (a label chosen by exactly half counts as a tie and is left out).
    """
    if label_mode in ("spans", "boxes"):
        return marks_consensus(values, label_mode)
    if label_mode == "multi":
        counts: Counter[Any] = Counter(lab for v in values for lab in v)
        half = len(values) / 2
        chosen = [lab for lab in dict.fromkeys(lab for v in values for lab in v) if counts[lab] > half]
        return chosen, any(counts[lab] == half for lab in counts)
    keys = [serialization.dumps(v) for v in values]
    counts = Counter(keys)
    best = max(counts.values())
    winners = [k for k in dict.fromkeys(keys) if counts[k] == best]
    return serialization.loads(winners[0]), len(winners) > 1


def final_label(review_value: str | None, values: Sequence[Any], label_mode: str = "single") -> tuple[Any, bool]:
    """An item's label for training and export, and whether it is a tie.

    A reviewer's correction (``review_value``, JSON text) wins and is never a
    tie; otherwise the :func:`consensus` of the annotations (None, no tie, if
    there are none).
    """
    if review_value is not None:
        return serialization.loads(review_value), False
    if not values:
        return None, False
    return consensus(values, label_mode)


def content_ids(payloads: Iterable[str]) -> list[str]:
    """Default external ids of items from their serialised payloads: :func:`content_id`, with ``#n``
    appended to the n-th repeat of the same content (so adding the same data twice adds it once)."""
    seen: Counter[str] = Counter()
    ids: list[str] = []
    for payload in payloads:
        h = content_id(payload)
        seen[h] += 1
        ids.append(h if seen[h] == 1 else f"{h}#{seen[h]}")
    return ids


class _NoMatch(enum.Enum):
    NO_MATCH = "no match"


NO_MATCH = _NoMatch.NO_MATCH
"""What :func:`match_option` returns for a value that names no option (``None`` is a value, so it cannot mean that)."""


def match_option(value: Any, options: Sequence[Any], *, by_text: bool = True) -> Any:
    """The option that ``value`` stands for, or :data:`NO_MATCH`.

    An equal value matches (but a bool never matches a number: ``True`` is
    not the option ``1``); with ``by_text`` also the option whose text is the
    value's text without surrounding spaces (``"1"`` names the option ``1``,
    ``" cat "`` names ``"cat"``), as labels read from files are text. NaN and
    infinities are never labels. With no options every other value stands
    for itself.
    """
    if isinstance(value, float) and not math.isfinite(value):
        return NO_MATCH
    if not options:
        return value
    for option in options:
        if value == option and type(value) is not bool:
            return option
    if by_text:
        text = str(value).strip()
        for option in options:
            if str(option) == text:
                return option
    return NO_MATCH
