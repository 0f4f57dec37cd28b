"""Spans out: CoNLL-2003 BIO tags (a token per line) and spaCy-style JSON Lines, from each finished item's final spans.

Both formats hold the finished items of a ``spans`` project (in item order), each with its final value
(:func:`superintendent.labels.final_label`: a reviewer's correction, else the labellers' majority of marks); an item
whose final value is ``[]`` ("nothing to mark") is written with no spans (all ``O`` in CoNLL). Unfinished items are
left out: a text nobody has marked yet is not a text without entities.

CoNLL
    Tokens are those of :mod:`superintendent.tokenize` (the one tokeniser, which the span model uses too:
    ``\\w+|[^\\w\\s]``, runs of letters, digits and underscores, and every other non-space character on its own), so
    ``"Lovelace's"`` is ``Lovelace``, ``'``, ``s``. A token that shares at least one character with a span belongs to
    it (:func:`superintendent.tokenize.bio_tags`): the first such token is ``B-<label>``, the following ones
    ``I-<label>``; a span that ends or starts inside a token therefore takes the whole token (a token touched by
    two spans takes the first). Other tokens are ``O``. Each item is a document: a ``-DOCSTART- O`` line and a
    blank line, then one ``token TAG`` line per token (a space between them); each line of the item's text is a
    sentence, followed by a blank line (CoNLL-2003's layout, with the token and NER columns only).
spaCy JSON Lines
    One object per item: ``{"text": ..., "spans": [{"start", "end", "label"}], "id": external_id}``, character
    offsets, end exclusive (what ``Doc.char_span`` takes).
"""

from __future__ import annotations

import bisect
import json
from collections.abc import Callable, Iterator, Sequence
from typing import IO, Any

from sqlalchemy.engine import Engine

from superintendent.marks import item_text
from superintendent.queue.transfer import ItemRecord, count_items, iter_snapshot
from superintendent.store.db import session_scope
from superintendent.store.models import Project
from superintendent.tokenize import bio_tags, token_offsets

__all__ = ["DOCSTART", "conll_lines", "finished_marks", "tagged_tokens", "write_conll", "write_spacy"]

DOCSTART = "-DOCSTART- O"


def tagged_tokens(text: str, spans: Sequence[dict[str, Any]]) -> list[tuple[str, str]]:
    """(token, BIO tag) for every token of ``text`` (:func:`superintendent.tokenize.bio_tags` of checked ``spans``)."""
    offsets = token_offsets(text)
    ordered = sorted(spans, key=lambda s: (s["start"], s["end"]))
    return [(text[start:end], tag) for (start, end), tag in zip(offsets, bio_tags(offsets, ordered))]


def conll_lines(text: str, spans: Sequence[dict[str, Any]]) -> list[str]:
    """One document in CoNLL: ``-DOCSTART- O``, a blank line, then ``token TAG`` lines, a blank line after each sentence
    (a line of the text holding at least one token)."""
    lines = [DOCSTART, ""]
    tagged = tagged_tokens(text, spans)
    breaks = [i for i, c in enumerate(text) if c == "\n"]
    line_of = [bisect.bisect(breaks, start) for start, _ in token_offsets(text)]  # the line each token is on
    for i, ((token, tag), line) in enumerate(zip(tagged, line_of)):
        lines.append(f"{token} {tag}")
        if i + 1 == len(tagged) or line_of[i + 1] != line:
            lines.append("")
    return lines


def finished_marks(engine: Engine, project: Project,
                   progress: Callable[[float], Any] | None = None) -> Iterator[tuple[ItemRecord, list[dict[str, Any]]]]:
    """Each finished item of the project (one read-only snapshot, a batch at a time) with its final marks."""
    with session_scope(engine, write=False) as s:
        total = max(1, count_items(s, project))
        seen = 0
        for batch in iter_snapshot(s, project):
            for rec in batch:
                if rec.done and isinstance(rec.label, list):
                    yield rec, rec.label
            seen += len(batch)
            if progress is not None:
                progress(min(1.0, seen / total))


def write_conll(engine: Engine, project: Project, out: IO[bytes], *, progress: Callable[[float], Any] | None = None) -> None:
    """The finished items as one CoNLL-2003 file (see the module's docstring), UTF-8, ``\\n`` line ends."""
    for rec, spans in finished_marks(engine, project, progress):
        out.write(("\n".join(conll_lines(item_text(rec.data), spans)) + "\n").encode("utf-8"))


def write_spacy(engine: Engine, project: Project, out: IO[bytes], *, progress: Callable[[float], Any] | None = None) -> None:
    """The finished items as spaCy-style JSON Lines: ``{"text", "spans": [{"start", "end", "label"}], "id"}`` per line."""
    for rec, spans in finished_marks(engine, project, progress):
        line = {"text": item_text(rec.data),
                "spans": [{"start": m["start"], "end": m["end"], "label": m["label"]} for m in spans],
                "id": rec.external_id}
        out.write((json.dumps(line, ensure_ascii=False) + "\n").encode("utf-8"))
