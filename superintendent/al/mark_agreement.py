"""Agreement on spans and boxes: F1 between labellers' marks. Pure functions of plain data (no database).

Kappa does not apply to marks (there is no fixed set of "items x classes" to count chance agreement on: a labeller
can mark anything anywhere), so agreement on marks is measured the way span and detection results are scored:

* two labellers' marks of one item are paired one-to-one by :func:`superintendent.al.matching.match` (same label;
  spans **exact** (same start and end) or by **overlap** (any shared character, most overlap first); boxes at
  intersection over union 0.5 or more);
* **precision** of labeller A against B is the share of A's marks that B also made, **recall** the share of B's
  marks that A also made; **F1** is their harmonic mean, ``2 * matched / (marks of A + marks of B)``, the same
  whichever of the two is taken as the reference;
* **per label**: the same with only the marks of that label (a mark matched across labels does not count);
* **overall**: *micro* F1 over every pair of labellers on every item both labelled: ``2 * sum(matched) /
  sum(marks of both)``. Pooling the counts (rather than averaging each pair's F1) weighs a pair by how many marks
  it compared, so a pair that shared one item with one mark cannot swing the figure, and it stays defined when
  some pair marked nothing at all. Each pair's own F1 is in :func:`pairwise`;
* **items where both marked nothing** (``[]`` from both) add no marks, so they move F1 neither way: F1 is about
  the marks made. They are counted among the items compared, and as items in full agreement
  (``MarkScore.items_agreeing``: every pair of labellers of the item matched every mark). When nobody marked
  anything on any item compared, F1 is undefined (``value=None``) with the reason.

The input is the long frame of :mod:`superintendent.al.ratings` (``item_id``, ``user``, ``value``, optionally
``external_id``), ``value`` a list of marks as :mod:`superintendent.marks` checks them; the importer's labels are
left out.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import combinations
from typing import Any

import pandas as pd

from superintendent.al.matching import BOXES, MARK_MODES, SPANS, marks_consensus, match
from superintendent.al.ratings import human_annotations
from superintendent.marks import item_text
from superintendent.validation import ValidationError

__all__ = ["EXACT", "F1", "HOWS", "MARK_MODES", "OVERLAP", "MarkAgreementReport", "MarkComparison", "MarkScore", "compare", "statistic_name",
           "describe", "disagreements", "f1", "mark_agreement_report", "marks_text", "match_how", "overall", "pairwise",
           "per_label", "per_labeller"]

F1 = "F1"
EXACT = "exact"
OVERLAP = "overlap"
HOWS = (EXACT, OVERLAP)

_PAIR_COLUMNS = ["item_id", "user_a", "user_b", "matched", "located", "marks_a", "marks_b"]
_LABEL_COLUMNS = ["item_id", "user_a", "user_b", "label", "matched", "marks_a", "marks_b"]


def match_how(label_mode: str, how: str = EXACT) -> str:
    """The :func:`superintendent.al.matching.match` mode for ``how`` ("exact" or "overlap"; boxes always by IoU)."""
    if label_mode not in MARK_MODES:
        raise ValidationError(f"F1 agreement is for spans and boxes projects; this project's label mode is {label_mode!r}")
    if how not in HOWS:
        raise ValidationError(f"spans are matched 'exact' or by 'overlap'; got {how!r}")
    return "overlap" if label_mode == SPANS and how == OVERLAP else "default"


def statistic_name(label_mode: str, how: str = EXACT) -> str:
    """What the F1 figure is, in a few words: "F1 (spans matched exactly)", "F1 (boxes at IoU >= 0.5)"."""
    if match_how(label_mode, how) == "overlap":
        return "F1 (spans matched by overlap)"
    return "F1 (spans matched exactly)" if label_mode == SPANS else "F1 (boxes at IoU ≥ 0.5)"


def f1(matched: float, marks_a: float, marks_b: float) -> float | None:
    """``2 * matched / (marks_a + marks_b)``; None when neither made a mark (nothing to score)."""
    total = marks_a + marks_b
    return None if total <= 0 else 2.0 * matched / total


def _share(part: float, whole: float) -> float | None:
    return None if whole <= 0 else part / whole


@dataclass(frozen=True)
class MarkScore:
    """The overall F1 of a spans or boxes project, with what it rests on (``value`` None when undefined, and why).

    Same first fields as :class:`superintendent.al.agreement.Score`. ``matched``: marks paired, summed over every
    pair of labellers on every item; ``marks``: both sides' marks, summed the same way; ``located``: marks paired
    whatever their labels (``location_f1`` is F1 on those: how far labellers mark the same places);
    ``items_agreeing``: items on which every pair of labellers matched every mark (items where all marked nothing
    count); ``items_empty``: items on which every labeller marked nothing.
    """

    statistic: str
    value: float | None
    n_items: int
    n_labellers: int
    reason: str = ""
    matched: int = 0
    marks: int = 0
    located: int = 0
    items_agreeing: int = 0
    items_empty: int = 0

    @property
    def defined(self) -> bool:
        return self.value is not None

    @property
    def location_f1(self) -> float | None:
        return None if self.marks <= 0 else 2.0 * self.located / self.marks


@dataclass(frozen=True)
class MarkComparison:
    """Every pair of labellers on every item both labelled: ``pairs`` one row per (item, pair) with ``matched``,
    ``located`` (paired ignoring labels), ``marks_a``, ``marks_b``; ``labels`` the same per label (rows only for
    labels either of the two used). ``user_a < user_b``."""

    label_mode: str
    how: str
    pairs: pd.DataFrame
    labels: pd.DataFrame


def _marks(value: Any, item_id: Any, user: Any) -> list[Mapping[str, Any]]:
    if value is None:
        return []
    if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, Sequence) or not all(isinstance(m, Mapping) for m in value):
        raise ValidationError(f"{user}'s annotation of item {item_id} is not a list of marks ({value!r:.80}); "
                              "F1 agreement needs the values of a spans or boxes project")
    return list(value)


def compare(frame: pd.DataFrame, label_mode: str, how: str = EXACT) -> MarkComparison:
    """Match the marks of every pair of labellers of every item labelled by two or more (see the module docstring)."""
    mode = match_how(label_mode, how)
    human = human_annotations(frame)
    pair_rows: list[tuple[Any, ...]] = []
    label_rows: list[tuple[Any, ...]] = []
    for item_id, part in human.groupby("item_id", sort=True):
        if len(part) < 2:
            continue
        given = sorted(((str(u), _marks(v, item_id, u)) for u, v in zip(part["user"], part["value"])), key=lambda uv: uv[0])
        for (user_a, a), (user_b, b) in combinations(given, 2):
            pairs = match(a, b, label_mode, mode)
            located = len(match(a, b, label_mode, mode, same_label=False))
            pair_rows.append((item_id, user_a, user_b, len(pairs), located, len(a), len(b)))
            count_a = Counter(str(m["label"]) for m in a)
            count_b = Counter(str(m["label"]) for m in b)
            matched = Counter(str(a[i]["label"]) for i, _ in pairs)
            for label in sorted(count_a.keys() | count_b.keys()):
                label_rows.append((item_id, user_a, user_b, label, matched[label], count_a[label], count_b[label]))
    return MarkComparison(label_mode, how, pd.DataFrame(pair_rows, columns=_PAIR_COLUMNS),
                          pd.DataFrame(label_rows, columns=_LABEL_COLUMNS))


# --------------------------------------------------------------------------- figures from a comparison


def _overall(c: MarkComparison) -> MarkScore:
    name = statistic_name(c.label_mode, c.how)
    p = c.pairs
    if p.empty:
        return MarkScore(name, None, 0, 0, "no item has marks from two different labellers yet")
    matched, located = int(p["matched"].sum()), int(p["located"].sum())
    marks = int(p["marks_a"].sum() + p["marks_b"].sum())
    full = (p["matched"] == p["marks_a"]) & (p["matched"] == p["marks_b"])
    empty = (p["marks_a"] == 0) & (p["marks_b"] == 0)
    n_items = int(p["item_id"].nunique())
    agreeing = int(full.groupby(p["item_id"]).all().sum())
    n_empty = int(empty.groupby(p["item_id"]).all().sum())
    n_labellers = len(set(p["user_a"]) | set(p["user_b"]))
    value = f1(matched, marks, 0)
    reason = "" if value is not None else (
        f"nobody marked anything on the {n_items:,} item{'s' if n_items != 1 else ''} compared: they agree there is "
        "nothing to mark, and F1 has no marks to score")
    return MarkScore(name, value, n_items, n_labellers, reason, matched, marks, located, agreeing, n_empty)


def _pairwise(c: MarkComparison, max_labellers: int = 30) -> pd.DataFrame:
    columns = ["user_a", "user_b", "items", "marks_a", "marks_b", "matched", "precision", "recall", "f1"]
    p = c.pairs
    if p.empty:
        return pd.DataFrame(columns=columns)
    busiest = pd.concat([p[["item_id", "user_a"]].set_axis(["item_id", "user"], axis=1),
                         p[["item_id", "user_b"]].set_axis(["item_id", "user"], axis=1)])
    keep = set(busiest.drop_duplicates().groupby("user").size().sort_values(ascending=False, kind="stable").head(max_labellers).index)
    p = p[p["user_a"].isin(keep) & p["user_b"].isin(keep)]
    g = p.groupby(["user_a", "user_b"], sort=True).agg(items=("item_id", "nunique"), marks_a=("marks_a", "sum"),
                                                       marks_b=("marks_b", "sum"), matched=("matched", "sum")).reset_index()
    g["precision"] = [_share(m, a) for m, a in zip(g["matched"], g["marks_a"])]
    g["recall"] = [_share(m, b) for m, b in zip(g["matched"], g["marks_b"])]
    g["f1"] = [f1(m, a, b) for m, a, b in zip(g["matched"], g["marks_a"], g["marks_b"])]
    return g[columns].astype({"items": int, "marks_a": int, "marks_b": int, "matched": int})


def _per_label(c: MarkComparison, options: Sequence[Any] | None = None) -> pd.DataFrame:
    """One row per label: ``marks`` (both sides, over every pair), ``matched``, ``f1``; the most marked first."""
    columns = ["label", "marks", "matched", "f1"]
    lab = c.labels
    g = (lab.assign(marks=lab["marks_a"] + lab["marks_b"]).groupby("label", sort=False)[["marks", "matched"]].sum()
         if not lab.empty else pd.DataFrame(columns=["marks", "matched"]))
    order = list(dict.fromkeys([*(str(o) for o in options or []), *g.index]))
    rows = []
    for label in order:
        if label not in g.index:
            continue  # an option nobody marked on the items compared: nothing to score
        marks, matched = int(g.loc[label, "marks"]), int(g.loc[label, "matched"])
        rows.append({"label": label, "marks": marks, "matched": matched, "f1": f1(matched, marks, 0)})
    table = pd.DataFrame(rows, columns=columns)
    return table.sort_values("marks", ascending=False, kind="stable").reset_index(drop=True)


def _per_labeller(c: MarkComparison) -> pd.DataFrame:
    """Each labeller against everyone who labelled the same items: ``precision`` (share of their marks another made
    too), ``recall`` (share of the others' marks they made too), ``f1``; sorted from the lowest F1."""
    columns = ["user", "items", "marks", "others_marks", "matched", "precision", "recall", "f1"]
    p = c.pairs
    if p.empty:
        return pd.DataFrame(columns=columns)
    side_a = pd.DataFrame({"user": p["user_a"], "item_id": p["item_id"], "own": p["marks_a"], "other": p["marks_b"], "matched": p["matched"]})
    side_b = pd.DataFrame({"user": p["user_b"], "item_id": p["item_id"], "own": p["marks_b"], "other": p["marks_a"], "matched": p["matched"]})
    both = pd.concat([side_a, side_b])
    rows = []
    for user, part in both.groupby("user", sort=True):
        own, other, matched = int(part["own"].sum()), int(part["other"].sum()), int(part["matched"].sum())
        rows.append({"user": user, "items": int(part["item_id"].nunique()), "marks": own, "others_marks": other, "matched": matched,
                     "precision": _share(matched, own), "recall": _share(matched, other), "f1": f1(matched, own, other)})
    table = pd.DataFrame(rows, columns=columns)
    return table.sort_values(["f1", "user"], na_position="last", kind="stable").reset_index(drop=True)


def _disagreements(c: MarkComparison, human: pd.DataFrame, min_labels: int = 2, top: int | None = None) -> pd.DataFrame:
    """Items with marks from ``min_labels`` or more labellers, least agreement first: ``labels`` (labellers),
    ``marks`` (how many each made, by labeller), ``consensus`` (the marks a majority made, matched as the review
    and the exports match them), ``tie``, ``f1`` (the item's F1 over its pairs; None when nobody marked anything),
    ``disagreement`` (1 - F1; 0 when nobody marked anything)."""
    with_external = "external_id" in human.columns
    columns = ["item_id", *(["external_id"] if with_external else []), "labels", "marks", "consensus", "tie", "f1", "disagreement"]
    p = c.pairs
    if p.empty:
        return pd.DataFrame(columns=columns)
    per_item = p.groupby("item_id").agg(matched=("matched", "sum"), marks_a=("marks_a", "sum"), marks_b=("marks_b", "sum"))
    rows = []
    for item_id, part in human.groupby("item_id", sort=True):
        if len(part) < max(2, min_labels) or item_id not in per_item.index:
            continue
        values = [_marks(v, item_id, u) for u, v in zip(part["user"], part["value"])]
        agreed, tie = marks_consensus(values, c.label_mode)
        counts = per_item.loc[item_id]
        score = f1(counts["matched"], counts["marks_a"], counts["marks_b"])
        row = {"item_id": item_id, "labels": len(part), "marks": {str(u): len(v) for u, v in zip(part["user"], values)},
               "consensus": agreed, "tie": bool(tie), "f1": score, "disagreement": 0.0 if score is None else 1.0 - score}
        if with_external:
            row["external_id"] = part["external_id"].iloc[0]
        rows.append(row)
    table = pd.DataFrame(rows, columns=columns)
    table = table.sort_values(["disagreement", "tie", "item_id"], ascending=[False, False, True], kind="stable").reset_index(drop=True)
    return table if top is None else table.head(top)


# --------------------------------------------------------------------------- the same from a frame of annotations


def overall(frame: pd.DataFrame, label_mode: str, how: str = EXACT) -> MarkScore:
    """The project's F1 (micro over every pair of labellers on every item both labelled)."""
    return _overall(compare(frame, label_mode, how))


def pairwise(frame: pd.DataFrame, label_mode: str, how: str = EXACT, *, max_labellers: int = 30) -> pd.DataFrame:
    """Each pair of labellers (the ``max_labellers`` busiest) on the items both labelled: ``user_a``, ``user_b``,
    ``items``, ``marks_a``, ``marks_b``, ``matched``, ``precision`` (of a against b), ``recall``, ``f1``."""
    return _pairwise(compare(frame, label_mode, how), max_labellers)


def per_label(frame: pd.DataFrame, label_mode: str, how: str = EXACT, options: Sequence[Any] | None = None) -> pd.DataFrame:
    """F1 of each label (only that label's marks, pooled over every pair): ``label``, ``marks``, ``matched``, ``f1``."""
    return _per_label(compare(frame, label_mode, how), options)


def per_labeller(frame: pd.DataFrame, label_mode: str, how: str = EXACT) -> pd.DataFrame:
    """Each labeller against the others of the same items (see :func:`_per_labeller`)."""
    return _per_labeller(compare(frame, label_mode, how))


def disagreements(frame: pd.DataFrame, label_mode: str, how: str = EXACT, *, min_labels: int = 2, top: int | None = None) -> pd.DataFrame:
    """Items least agreed on first, with their consensus and tie flag (see :func:`_disagreements`)."""
    return _disagreements(compare(frame, label_mode, how), human_annotations(frame), min_labels, top)


@dataclass(frozen=True)
class MarkAgreementReport:
    """What the Progress page shows about agreement in a spans or boxes project."""

    overall: MarkScore
    per_labeller: pd.DataFrame
    per_label: pd.DataFrame
    pairwise: pd.DataFrame
    disagreements: pd.DataFrame
    how: str = EXACT


def mark_agreement_report(frame: pd.DataFrame, label_mode: str, options: Sequence[Any] | None = None, *, how: str = EXACT,
                          min_labels: int = 2, top: int | None = None) -> MarkAgreementReport:
    """Every F1 figure of a spans or boxes project's annotations, from one matching of its marks."""
    c = compare(frame, label_mode, how)
    return MarkAgreementReport(_overall(c), _per_labeller(c), _per_label(c, options), _pairwise(c),
                               _disagreements(c, human_annotations(frame), min_labels, top), how)


def describe(score: MarkScore) -> str:
    """A reading of an F1 figure in words."""
    if score.value is None:
        return f"undefined: {score.reason}"
    share = f"{score.value:.0%}"
    text = f"on average {share} of one labeller's marks are matched by the other's (F1 {score.value:.3f})"
    loc = score.location_f1
    if loc is not None and loc - score.value >= 0.05:
        text += f"; {loc:.0%} ignoring labels, so some marks are in the same place with different labels"
    return text


# --------------------------------------------------------------------------- marks as text


def _number(v: Any) -> str:
    return f"{v:g}" if isinstance(v, float) else str(v)


def _covered_text(data: Any) -> str | None:
    try:
        return item_text(data)
    except ValidationError:
        return None  # not a text item: spans are shown by their offsets


def marks_text(marks: Iterable[Mapping[str, Any]], label_mode: str, data: Any = None, *, width: int = 24,
               empty: str = "nothing marked") -> str:
    """Marks in one line for a table: spans as ``PER “Ada Lovelace”`` (the covered text of the item ``data``; by
    offsets without it), boxes as ``cat 20×30 at (5, 10)``; ``empty`` for none."""
    text = _covered_text(data) if label_mode == SPANS and data is not None else None
    parts = []
    for m in marks:
        if label_mode == BOXES:
            parts.append(f"{m['label']} {_number(m['width'])}×{_number(m['height'])} at ({_number(m['x'])}, {_number(m['y'])})")
        elif text is not None:
            covered = " ".join(text[m["start"]:m["end"]].split())
            covered = covered if len(covered) <= width else covered[: width - 1] + "…"
            parts.append(f"{m['label']} “{covered}”")
        else:
            parts.append(f"{m['label']} {m['start']}–{m['end']}")
    return " · ".join(parts) if parts else empty
