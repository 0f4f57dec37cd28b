"""The one tokeniser of span projects: where a text's tokens start and end. Pure: no database, no I/O.

One rule: a token is a run of word characters (letters, digits, underscore;
any script, accents included) or a single other non-space character
(punctuation, symbols, an emoji). ``"Saint-Laurent, 1st!"`` gives
``Saint`` ``-`` ``Laurent`` ``,`` ``1st`` ``!``. Offsets are Python string
offsets (code points), the same as a span value's ``start`` / ``end``.

The span model (:mod:`superintendent.learning.spans`) tags these tokens;
a CoNLL export must write the same tokens, so that what a model learnt from
an export and what the app predicts line up.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["TOKEN", "bio_tags", "token_offsets", "tokens"]

TOKEN = re.compile(r"\w+|[^\w\s]")


def token_offsets(text: str) -> list[tuple[int, int]]:
    """``(start, end)`` of each token of ``text``, in order (end exclusive)."""
    return [m.span() for m in TOKEN.finditer(text)]


def tokens(text: str) -> list[str]:
    """The tokens of ``text``, in order."""
    return TOKEN.findall(text)


def bio_tags(offsets: Sequence[tuple[int, int]], spans: Sequence[Mapping[str, Any]]) -> list[str]:
    """BIO tags of tokens at ``offsets`` for checked, non-overlapping ``spans``: a token inside or partly inside a span is
    tagged with its label (``B-`` on the span's first such token, ``I-`` after); every other token is ``O``."""
    tags = ["O"] * len(offsets)
    for span in spans:
        first = True
        for k, (start, end) in enumerate(offsets):
            if start < span["end"] and end > span["start"] and tags[k] == "O":
                tags[k] = ("B-" if first else "I-") + str(span["label"])
                first = False
    return tags
