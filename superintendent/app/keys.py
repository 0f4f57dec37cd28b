"""The Label page's keys, one owner: which key picks which option (buttons, the span and box widgets), Skip, Undo."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

SKIP_KEY, UNDO_KEY = "S", "U"
RESERVED_KEYS = {"C", "R", SKIP_KEY, UNDO_KEY}  # C and R are Streamlit's own


def number_keys(n: int) -> list[str | None]:
    """1..9, then 0, for the first ten of ``n`` options; later options have no key (their button still picks them)."""
    return [str(i + 1) if i < 9 else "0" if i == 9 else None for i in range(n)]


def option_shortcuts(options: Sequence[Any]) -> list[str | None]:
    """A key per option: the option itself when every option is one distinct letter or digit
    (digits 0-9 are typed as themselves), otherwise :func:`number_keys`."""
    keys = [str(o).upper() for o in options]
    if keys and all(len(k) == 1 and k.isalnum() for k in keys) and len(set(keys)) == len(keys) and not RESERVED_KEYS & set(keys):
        return keys
    return number_keys(len(options))
