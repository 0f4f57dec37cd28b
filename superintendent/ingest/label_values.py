"""Label values read from a file, turned into the project's labels (one rule: :func:`superintendent.labels.match_option`).

* :func:`labels_from_values`: a column of a table (or the ``y`` of a
  ``.npz``): empty cells are unlabelled, several labels of a multi-label
  project are separated by ``;``;
* :class:`LabelChecker`: the chosen values of annotations in task files
  (Label Studio, items JSON Lines), collecting the unknown ones so that
  one message lists them all.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from superintendent.ingest.common import is_missing, plain
from superintendent.labels import NO_MATCH, match_option
from superintendent.validation import ValidationError, check_label


def labels_from_values(values: Sequence[Any], options: Sequence[Any], label_mode: str, where: str) -> list[Any]:
    """Labels of an upload in canonical form: None for unlabelled, an option (single) or a list of options (multi)."""
    raw = [v.strip() if isinstance(v, str) else v for v in map(plain, values)]
    present = [v for v in raw if not is_missing(v)]
    if present and all(isinstance(v, float) for v in present) and all(v.is_integer() for v in present):
        raw = [int(v) if isinstance(v, float) else v for v in raw]  # an int column with gaps is read as float
    out: list[Any] = []
    bad: list[tuple[int, Any]] = []
    for row, v in enumerate(raw, 1):
        if is_missing(v):
            out.append(None)
            continue
        if label_mode == "multi":
            parts = [p.strip() for p in v.split(";")] if isinstance(v, str) else (list(v) if isinstance(v, (list, tuple, np.ndarray)) else [v])
            chosen: list[Any] = []
            for part in parts:
                if is_missing(part):
                    continue
                m = match_option(plain(part), options)
                if m is NO_MATCH:
                    bad.append((row, part))
                elif m not in chosen:
                    chosen.append(m)
            out.append(chosen)
        else:
            if isinstance(v, (list, dict)):
                bad.append((row, v))
                continue
            m = match_option(v, options)
            if m is NO_MATCH:
                bad.append((row, v))
            out.append(m)
    if bad:
        shown = "; ".join(f"{v!r} (data row {r})" for r, v in bad[:5]) + (f"; and {len(bad) - 5} more" if len(bad) > 5 else "")
        if options:
            expected = f"one of the project's options ({', '.join(map(str, list(options)[:20]))})"
        else:
            expected = "a finite number or a non-empty string"
        multi = " (several labels per item are separated by ';')" if label_mode == "multi" else ""
        raise ValidationError(f"{len(bad):,} label value(s) in {where} are not {expected}{multi}: {shown}. "
                              "Fix those values, add them as options, or leave the cells empty to import the items unlabelled")
    return out


class LabelChecker:
    """Turns label values from a file into the project's canonical labels, collecting unknown ones."""

    def __init__(self, options: Sequence[Any], label_mode: str, allow_free_text: bool) -> None:
        self.options = list(options)
        self.label_mode = label_mode
        self.allow_free_text = allow_free_text
        self.unknown: list[str] = []

    def one(self, value: Any, where: str) -> Any:
        """One value as an option (or free text where allowed); None, noted as unknown, when it is neither."""
        matched = match_option(value, self.options) if self.options else value
        if matched is NO_MATCH:
            if self.allow_free_text and isinstance(value, str) and value.strip():
                return value.strip()
            self.unknown.append(f"{where}: {value!r}")
            return None
        try:
            return check_label(matched, options=self.options, label_mode="single", allow_free_text=self.allow_free_text)
        except ValidationError as exc:
            self.unknown.append(f"{where}: {value!r} ({exc})")
            return None

    def value(self, values: list[Any], where: str) -> Any:
        """A single label or a list (multi-label) from the chosen values; None when nothing is usable."""
        labels = [self.one(v, where) for v in values]
        if self.label_mode == "multi":
            return check_label([x for x in labels if x is not None], options=self.options, label_mode="multi",
                               allow_free_text=self.allow_free_text)
        return labels[0] if labels else None

    def raise_unknown(self, what: str) -> None:
        """Raise one ValidationError listing every unknown value met, if any."""
        if not self.unknown:
            return
        shown = "; ".join(self.unknown[:5]) + (f"; and {len(self.unknown) - 5} more" if len(self.unknown) > 5 else "")
        options = ", ".join(map(str, self.options[:20])) or "none"
        raise ValidationError(f"{what}: {len(self.unknown):,} label(s) are not options of the project (options: {options}): {shown}. "
                              "Add them as options on the Admin page, or fix the file; nothing was imported")
