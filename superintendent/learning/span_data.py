"""A span set whose entities are known by construction, from data that ships with plotly: for the span model's tests
and ``bench/span_learning.py``.

Sentences are made from templates whose slots take names from plotly's bundled data sets: ``COUNTRY`` (gapminder's
142 countries, some of several words or with commas: ``Korea, Dem. Rep.``), ``DISTRICT`` (the 58 Montreal districts
of plotly's election data: ``Côte-des-Neiges``, ``La Pointe-aux-Prairies``, ``Ouest``) and ``DAY`` (the tips data's
days, written in full or short). Each slot's character offsets are recorded as the sentence is written, so the true
spans are exact. What makes it need labels:

* names are split in two by a seeded draw: the pool's sentences use one part, the test sentences the other, so the
  test measures what the model learnt from context and shape, not names it memorised;
* some templates put countries, districts and unmarked look-alikes in the same slot (``lives in ...`` with a
  country, a district or a continent; ``bought ... shares`` with a stock ticker), so context alone is not enough;
* templates are drawn with Zipf-like weights: common ones are learnt from a few random labels, the rare ones
  (the hard ones among them) are seldom drawn at random.

Pure: no database. Returns ``(texts, values)``: a value is a list of ``{start, end, label}`` spans.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["LABELS", "SpanSet", "make_span_set"]

LABELS = ("COUNTRY", "DISTRICT", "DAY")
_DAYS = {"Thur": "Thursday", "Fri": "Friday", "Sat": "Saturday", "Sun": "Sunday"}

# Slots: {C} country, {D} district, {W} day (marked); {N} continent, {T} stock ticker, {S} iris species, {M} meal,
# {P} a person (an election candidate), {I} a wind direction (not marked: look-alikes).
# Most common first; weights fall off as 1 / rank.
_TEMPLATES = (
    "We flew to {C} on {W}.",
    "The office in {D} opens on {W}.",
    "Exports from {C} rose again this year.",
    "She lives in {C}.",
    "The bus to {D} leaves every hour.",
    "On {W} the team met in {D}.",
    "Coffee from {C} and tea from {C} were on the menu.",
    "{P} won the vote in {D}.",
    "He lives in {D}.",
    "They live in {N} now.",
    "Analysts at {T} expect growth in {C}.",
    "{C} and {C} signed the treaty on {W}.",
    "The wind turned {I} over {D} by {M}.",
    "A {S} iris was found near {D}.",
    "{N} sent more aid to {C} than anyone.",
    "I bought {T} shares on {W} at {M}.",
    "Born in {D}, raised in {C}, she moved to {N}.",
    "Nobody from {P}'s office came to {D} on {W}.",
    "The {M} in {C} was late.",
    "{W}: rain over {D}, sun over {C}.",
    "The mayor of {D} visited {C} on {W}.",
    "Prices of {T} fell in {C}.",
    "Residents of {D} voted for {P}.",
    "The embassy of {C} is in {D}.",
    "{S} flowers grow wild in {C}.",
    "{M} in {D}, dinner in {C}.",
    "A report on {N} and {C} came out on {W}.",
    "Snow fell on {D} and {D}.",
    "The {C} team beat {C} on {W}.",
    "Go to {D}, then ask for {P}.",
    "Trade between {N} and {C} grew.",
    "Is {C} bigger than {C}?",
    "Nothing happened on {W} in {D}.",
    "Everyone in {D} knows {P}.",
    "Her cousin from {C} lives in {D} now.",
    "Why did {T} open an office in {D}?",
    "{I} winds hit {D} early on {W}.",
    "Flights from {D} to {C} were cancelled.",
)


@dataclass(frozen=True)
class SpanSet:
    """Texts, their true span values, and the template each was made from (its index in the template list)."""

    texts: list[str]
    values: list[list[dict[str, Any]]]
    templates: list[int]


def _names() -> dict[str, list[str]]:
    import plotly.data

    gapminder = plotly.data.gapminder()
    tips = plotly.data.tips()
    districts = [re.sub(r"^\d+-", "", d) for d in plotly.data.election()["district"].tolist()]
    return {
        "C": sorted(set(gapminder["country"].tolist())),
        "D": sorted(set(districts)),
        "W": sorted({d for short in tips["day"].unique().tolist() for d in (short, _DAYS.get(short, short))}),
        "N": sorted(set(gapminder["continent"].tolist())),
        "T": [c for c in plotly.data.stocks().columns if c != "date"],
        "S": sorted(set(plotly.data.iris()["species"].tolist())),
        "M": sorted(set(tips["time"].tolist())),
        "P": [c for c in plotly.data.election().columns if c[:1].isupper()],
        "I": sorted(set(plotly.data.wind()["direction"].tolist())),
    }


_MARKED = {"C": "COUNTRY", "D": "DISTRICT", "W": "DAY"}


def _fill(template: str, names: dict[str, list[str]], rng: np.random.Generator) -> tuple[str, list[dict[str, Any]]]:
    text, spans, last = "", [], 0
    for m in re.finditer(r"\{(\w)\}", template):
        text += template[last:m.start()]
        slot = m.group(1)
        pool = names[slot]
        name = str(pool[int(rng.integers(len(pool)))])
        if slot in _MARKED:
            spans.append({"start": len(text), "end": len(text) + len(name), "label": _MARKED[slot]})
        text += name
        last = m.end()
    return text + template[last:], spans


def make_span_set(n: int, *, part: str = "pool", seed: int = 0, split_seed: int = 0, max_templates: int | None = None) -> SpanSet:
    """``n`` sentences (1 or 2 templates each) with names from one ``part`` of the names ("pool" or "test": the two
    halves of a seeded split, ``split_seed``, the same for both), drawn with ``seed``."""
    if part not in ("pool", "test"):
        raise ValueError(f"part must be 'pool' or 'test'; got {part!r}")
    names = _names()
    split = np.random.default_rng(split_seed)
    halves: dict[str, list[str]] = {}
    for slot, pool in names.items():
        if slot in ("C", "D"):  # marked names with many values: unseen ones in the test part
            order = split.permutation(len(pool))
            cut = int(round(len(pool) * 0.6))
            halves[slot] = [pool[i] for i in sorted(order[:cut] if part == "pool" else order[cut:])]
        else:
            halves[slot] = pool
    templates = _TEMPLATES[:max_templates] if max_templates else _TEMPLATES
    weights = 1.0 / np.arange(1, len(templates) + 1)
    weights /= weights.sum()
    rng = np.random.default_rng(seed)
    texts, values, used = [], [], []
    for _ in range(n):
        picks = rng.choice(len(templates), size=1 + int(rng.random() < 0.3), p=weights)
        text, spans = "", []
        for k in picks:
            part_text, part_spans = _fill(templates[int(k)], halves, rng)
            offset = len(text) + (1 if text else 0)
            text = f"{text} {part_text}" if text else part_text
            spans.extend({**s, "start": s["start"] + offset, "end": s["end"] + offset} for s in part_spans)
        texts.append(text)
        values.append(spans)
        used.append(int(picks[0]))
    return SpanSet(texts, values, used)
