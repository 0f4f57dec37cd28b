"""Agreement between labellers: how far several people who label the same items agree, beyond chance.

Pure functions of plain data (no database): the usual input is the long
frame of annotations :mod:`superintendent.al.ratings` describes, one row per
annotation (``item_id``, ``user``, ``value``, optionally ``external_id``);
the importer's labels are left out. :mod:`superintendent.agreement` reads
that frame from a project.

Which statistic
---------------
* **Cohen's kappa** when exactly two labellers labelled the items compared
  (:func:`sklearn.metrics.cohen_kappa_score`);
* **Fleiss' kappa** when more labellers take part and every item compared
  has the same number of labels;
* **Krippendorff's alpha** (nominal) otherwise: any number of labellers,
  items with different numbers of labels (e.g. a project still in progress).

Only items with labels from two or more labellers count. Multi-label
projects are compared per option, as a yes/no question (did this labeller
tick it?); the overall figure pools every (item, option) pair.

Undefined cases (fewer than two labellers on any item, or one class only,
where chance agreement is already 100%) give ``value=None`` and a
``reason`` to show, never an error or a division by zero.

Spans and boxes projects: kappa does not apply (a labeller may mark
anything anywhere: there are no fixed classes per item to count chance
agreement on). :func:`agreement_report`, :func:`overall`, :func:`per_class`,
:func:`per_labeller` and :func:`pairwise` hand them to
:mod:`superintendent.al.mark_agreement` (F1 of matched marks), with ``how``
("exact" or "overlap") choosing how spans match.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import cohen_kappa_score

from superintendent.al import mark_agreement
from superintendent.al.disagreement import disagreement_table, disagreements
from superintendent.al.mark_agreement import MARK_MODES, MarkAgreementReport, MarkScore
from superintendent.al.ratings import Ratings, compared, human_annotations, label_codes, pairable, ratings_of
from superintendent.validation import ValidationError

COHEN = "Cohen's kappa"
FLEISS = "Fleiss' kappa"
ALPHA = "Krippendorff's alpha"

NO_OVERLAP = "no item has labels from two different labellers yet"
_EPS = 1e-12

__all__ = [
    "ALPHA", "COHEN", "FLEISS", "NO_OVERLAP", "AgreementReport", "Score", "agreement_report", "cohen_kappa", "describe",
    "disagreements", "fleiss_kappa", "has_overlap", "krippendorff_alpha", "overall", "pairwise", "per_class", "per_labeller",
]

@dataclass(frozen=True)
class Score:
    """One agreement figure: which statistic, its value (None when undefined, with the reason) and what it rests on.

    ``n_items`` counts the items compared (items, not (item, option) pairs, in
    a multi-label project); ``n_labellers`` the different labellers among
    them (from :func:`fleiss_kappa` and :func:`krippendorff_alpha`, which do
    not know who gave which label: the most labels one item has).
    """

    statistic: str
    value: float | None
    n_items: int
    n_labellers: int
    reason: str = ""

    @property
    def defined(self) -> bool:
        return self.value is not None


# --------------------------------------------------------------------------- the statistics on codes


def _one_class_reason(only: str | None) -> str:
    what = f"every label is {only}" if only is not None else "only one class was used"
    return f"{what}: chance agreement is already 100%, so agreement beyond chance is undefined"


def _unit_class_counts(unit: np.ndarray, code: np.ndarray) -> pd.Series:
    return pd.Series(1, index=pd.MultiIndex.from_arrays([unit, code], names=["unit", "code"])).groupby(level=[0, 1]).sum()


def _alpha_codes(unit: np.ndarray, code: np.ndarray) -> tuple[float | None, str]:
    """Krippendorff's alpha (nominal) from one row per value: the unit it belongs to and its class code."""
    keep = pairable(unit)
    unit, code = unit[keep], code[keep]
    if len(unit) == 0:
        return None, NO_OVERLAP
    counts = _unit_class_counts(unit, code)
    m = counts.groupby(level="unit").sum()
    sum_sq = (counts ** 2).groupby(level="unit").sum()
    observed = float(((m ** 2 - sum_sq) / (m - 1)).sum())  # sum over c != k of the coincidences o_ck
    n_c = counts.groupby(level="code").sum().to_numpy(dtype=float)
    n = float(n_c.sum())
    expected = n * n - float((n_c ** 2).sum())  # sum over c != k of n_c * n_k
    if expected <= _EPS:
        return None, _one_class_reason(None)
    return 1.0 - (n - 1.0) * observed / expected, ""


def _fleiss_codes(unit: np.ndarray, code: np.ndarray) -> tuple[float | None, str]:
    """Fleiss' kappa from one row per value; every unit with two or more values must have as many."""
    keep = pairable(unit)
    unit, code = unit[keep], code[keep]
    if len(unit) == 0:
        return None, NO_OVERLAP
    counts = _unit_class_counts(unit, code)
    m = counts.groupby(level="unit").sum()
    if m.nunique() != 1:
        raise ValidationError("Fleiss' kappa needs the same number of labels on every item; use krippendorff_alpha for unequal numbers")
    n = float(m.iloc[0])
    n_items = len(m)
    p_i = ((counts ** 2).groupby(level="unit").sum() - n) / (n * (n - 1))
    p_j = counts.groupby(level="code").sum().to_numpy(dtype=float) / (n_items * n)
    p_e = float((p_j ** 2).sum())
    if p_e >= 1 - _EPS:
        return None, _one_class_reason(None)
    return (float(p_i.mean()) - p_e) / (1 - p_e), ""


def _cohen_codes(a: np.ndarray, b: np.ndarray) -> tuple[float | None, str]:
    """Cohen's kappa of two aligned code arrays (one entry per item both labelled).

    Undefined (None, with the reason) when they share no item, or when both
    used the same single class: chance agreement is then already 100%.
    """
    if len(a) == 0:
        return None, "the two labellers have no item in common"
    if (a == a[0]).all() and (b == a[0]).all():
        return None, _one_class_reason(None)
    return float(cohen_kappa_score(a, b)), ""


# --------------------------------------------------------------------------- the statistics on labels


def cohen_kappa(labels_a: Sequence[Any], labels_b: Sequence[Any]) -> Score:
    """Cohen's kappa of two labellers: ``labels_a[i]`` and ``labels_b[i]`` are their labels of item ``i``."""
    if len(labels_a) != len(labels_b):
        raise ValidationError(f"cohen_kappa needs one label per item from each labeller; got {len(labels_a)} and {len(labels_b)} labels")
    codes, uniques = label_codes([*labels_a, *labels_b])
    n = len(labels_a)
    value, reason = _cohen_codes(codes[:n], codes[n:])
    if value is None and len(uniques) == 1:
        reason = _one_class_reason(repr(uniques[0]))
    return Score(COHEN, value, n, 2 if n else 0, reason)


def fleiss_kappa(counts: Any) -> Score:
    """Fleiss' kappa of a count table: ``counts[i][j]`` labellers put item ``i`` in class ``j``.

    Every row must add up to the same number of labels (two or more).
    """
    table = np.asarray(counts, dtype=float)
    if table.ndim != 2:
        raise ValidationError(f"fleiss_kappa needs a table of items x classes; got an array of shape {table.shape}")
    if table.size and (not np.isfinite(table).all() or (table < 0).any() or (table != np.round(table)).any()):
        raise ValidationError("fleiss_kappa needs counts: whole numbers, zero or more")
    if table.shape[0] == 0:
        return Score(FLEISS, None, 0, 0, NO_OVERLAP)
    totals = table.sum(axis=1)
    if (totals != totals[0]).any():
        raise ValidationError("fleiss_kappa needs the same number of labels on every item (rows add up to "
                              f"{sorted(set(totals.astype(int).tolist()))[:5]}); use krippendorff_alpha for unequal numbers")
    n = int(totals[0])
    if n < 2:
        return Score(FLEISS, None, 0, n, NO_OVERLAP)
    rows, cols = np.nonzero(table)
    repeats = table[rows, cols].astype(np.int64)
    value, reason = _fleiss_codes(np.repeat(rows, repeats), np.repeat(cols, repeats))
    return Score(FLEISS, value, table.shape[0], n, reason)


def krippendorff_alpha(units: Iterable[Sequence[Any]]) -> Score:
    """Krippendorff's alpha (nominal): ``units`` holds, per item, the labels it got (any number; None = missing).

    Items with fewer than two labels cannot be compared and are left out.
    """
    unit_ids: list[int] = []
    values: list[Any] = []
    for i, labels in enumerate(units):
        for v in labels:
            if v is not None and not (isinstance(v, float) and math.isnan(v)):
                unit_ids.append(i)
                values.append(v)
    codes, uniques = label_codes(values)
    unit = np.asarray(unit_ids, dtype=np.int64)
    value, reason = _alpha_codes(unit, codes)
    n_items = len(np.unique(unit[pairable(unit)])) if len(unit) else 0
    if value is None and n_items and len(set(codes[pairable(unit)].tolist())) == 1:
        reason = _one_class_reason(repr(uniques[int(codes[pairable(unit)][0])]))
    most = int(np.bincount(unit).max()) if len(unit) else 0
    return Score(ALPHA, value, n_items, most if n_items else 0, reason)


# --------------------------------------------------------------------------- a project's figure


def _statistic(r: pd.DataFrame) -> str:
    """Which statistic fits these (compared) ratings."""
    if r["user"].nunique() == 2:
        return COHEN
    per_unit = r.groupby("unit").size()
    return FLEISS if per_unit.nunique() == 1 else ALPHA


def _compute(kind: str, r: pd.DataFrame) -> tuple[float | None, str]:
    if r.empty:
        return None, NO_OVERLAP
    unit, code = r["unit"].to_numpy(), r["code"].to_numpy()
    if kind == FLEISS:
        return _fleiss_codes(unit, code)
    if kind == ALPHA:
        return _alpha_codes(unit, code)
    first, second = sorted(r["user"].unique())
    wide = r.pivot(index="unit", columns="user", values="code").dropna()
    return _cohen_codes(wide[first].to_numpy(dtype=np.int64), wide[second].to_numpy(dtype=np.int64))


def _score(kind: str, r: pd.DataFrame, classes: list[str]) -> Score:
    value, reason = _compute(kind, r)
    if value is None and not r.empty and r["code"].nunique() == 1:
        reason = _one_class_reason(f"'{classes[int(r['code'].iloc[0])]}'")
    return Score(kind, value, int(r["item_id"].nunique()), int(r["user"].nunique()), reason)


def has_overlap(frame: pd.DataFrame) -> bool:
    """Whether any item has labels from two or more different labellers (the importer not counted)."""
    human = human_annotations(frame)
    return bool(len(human)) and bool((human.groupby("item_id")["user"].nunique() >= 2).any())


def overall(frame: pd.DataFrame, label_mode: str = "single", options: Sequence[Any] | None = None, *,
            statistic: str | None = None, how: str = mark_agreement.EXACT) -> Score | MarkScore:
    """The project's agreement figure (statistic chosen as the module docstring says, unless ``statistic`` is given;
    spans and boxes: F1, spans matched as ``how`` says)."""
    if label_mode in MARK_MODES:
        if statistic is not None and statistic != mark_agreement.F1:
            raise ValidationError(f"{statistic} does not apply to {label_mode}: their agreement is F1 of matched marks")
        return mark_agreement.overall(frame, label_mode, how)
    return _overall(ratings_of(frame, label_mode, options), statistic)


def _overall(ratings: Ratings, statistic: str | None = None) -> Score:
    r = compared(ratings.rows)
    if r.empty:
        return Score(statistic or ALPHA, None, 0, 0, NO_OVERLAP)
    kind = statistic or _statistic(r)
    if kind == COHEN and r["user"].nunique() != 2:
        raise ValidationError(f"Cohen's kappa compares exactly two labellers; these items have {r['user'].nunique()}")
    if kind == FLEISS and r.groupby("unit").size().nunique() != 1:
        raise ValidationError("Fleiss' kappa needs the same number of labels on every item; use Krippendorff's alpha")
    return _score(kind, r, ratings.classes)


# --------------------------------------------------------------------------- per class, per labeller, per pair


def per_class(frame: pd.DataFrame, label_mode: str = "single", options: Sequence[Any] | None = None,
              *, max_classes: int = 50, how: str = mark_agreement.EXACT) -> pd.DataFrame:
    """Agreement on each class (the ``max_classes`` most chosen), as a yes/no question: is it this class?

    Columns: ``label``, ``votes`` (labels given, on compared items),
    ``specific_agreement`` (when a labeller chose it, the share of other
    labellers of that item who chose it too), ``statistic``, ``value``
    (the overall statistic on the yes/no ratings), ``reason``.
    Spans and boxes: F1 per label (:func:`superintendent.al.mark_agreement.per_label`).
    """
    if label_mode in MARK_MODES:
        return mark_agreement.per_label(frame, label_mode, how, options).head(max_classes)
    return _per_class(ratings_of(frame, label_mode, options), max_classes)


def _per_class(ratings: Ratings, max_classes: int = 50) -> pd.DataFrame:
    columns = ["label", "votes", "specific_agreement", "statistic", "value", "reason"]
    r = compared(ratings.rows)
    if r.empty:
        return pd.DataFrame(columns=columns)
    kind = _statistic(r)
    if ratings.multi:  # codes are already yes (1) / no (0) per option
        groups = list(r.groupby("option", sort=False))
    else:
        chosen = r["code"].value_counts().head(max_classes).index
        groups = [(ratings.classes[c], r.assign(code=(r["code"] == c).astype(np.int64))) for c in sorted(chosen)]
    out = []
    for label, part in groups:
        votes = int(part["code"].sum())
        value, reason = _compute(kind, part)
        if value is None and part["code"].nunique() == 1:
            reason = ("nobody chose it on the items compared" if votes == 0 else
                      "every labeller chose it on every item compared") + ": agreement beyond chance is undefined"
        out.append({"label": label, "votes": votes, "specific_agreement": _specific_agreement(part, 1),
                    "statistic": kind, "value": value, "reason": reason})
    table = pd.DataFrame(out, columns=columns).sort_values("votes", ascending=False, kind="stable")
    return table.head(max_classes).reset_index(drop=True)


def _specific_agreement(r: pd.DataFrame, code: int) -> float | None:
    """Of every (labeller who chose ``code``, other labeller of that item) pair, the share where the other chose it too."""
    m = r.groupby("unit").size()
    n_c = r[r["code"] == code].groupby("unit").size()
    if n_c.empty:
        return None
    m = m.loc[n_c.index]
    pairs = float((n_c * (m - 1)).sum())
    return float((n_c * (n_c - 1)).sum()) / pairs if pairs else None


def _others_majority(r: pd.DataFrame) -> pd.DataFrame:
    """For each rating: how many other labellers of its unit agree, how many there are, and their majority (None on a tie)."""
    counts = r.groupby(["unit", "code"]).size().rename("n").reset_index().rename(columns={"code": "other"})
    rows = r[["unit", "code"]].reset_index(names="row")
    joined = rows.merge(counts, on="unit")
    joined["n"] = joined["n"] - (joined["other"] == joined["code"]).astype(np.int64)
    joined = joined[joined["n"] > 0]
    best = joined.groupby("row")["n"].transform("max")
    top = joined[joined["n"] == best]
    n_top = top.groupby("row").size()
    majority = top.groupby("row")["other"].first().where(n_top == 1)
    own = joined[joined["other"] == joined["code"]].set_index("row")["n"]
    m = r.groupby("unit")["unit"].transform("size")
    return pd.DataFrame({"agree": own.reindex(r.index, fill_value=0).to_numpy(), "others": (m - 1).to_numpy(),
                         "majority": majority.reindex(r.index).to_numpy()}, index=r.index)


def per_labeller(frame: pd.DataFrame, label_mode: str = "single", options: Sequence[Any] | None = None, *,
                 how: str = mark_agreement.EXACT) -> pd.DataFrame:
    """Each labeller against the others, on the items they share.

    Columns: ``user``, ``items`` (items they labelled that someone else
    labelled too), ``agreement`` (share of the other labels of those items
    that match theirs), ``kappa`` (Cohen's kappa of their labels against the
    majority of the other labellers, items where the others tie left out),
    ``reason`` (why ``kappa`` is undefined). Sorted from lowest kappa.
    Spans and boxes: F1 against the others (:func:`superintendent.al.mark_agreement.per_labeller`).
    """
    if label_mode in MARK_MODES:
        return mark_agreement.per_labeller(frame, label_mode, how)
    return _per_labeller(ratings_of(frame, label_mode, options))


def _per_labeller(ratings: Ratings) -> pd.DataFrame:
    columns = ["user", "items", "agreement", "kappa", "reason"]
    r = compared(ratings.rows).reset_index(drop=True)
    if r.empty:
        return pd.DataFrame(columns=columns)
    r = pd.concat([r, _others_majority(r)], axis=1)
    out = []
    for user, part in r.groupby("user", sort=True):
        voted = part[part["majority"].notna()]
        value, reason = _cohen_codes(voted["code"].to_numpy(dtype=np.int64), voted["majority"].to_numpy(dtype=np.int64))
        if len(voted) == 0:
            reason = "the other labellers tie on every item they share"
        elif value is None:
            reason = "they and the others used one class only on these items: agreement beyond chance is undefined"
        out.append({"user": user, "items": int(part["item_id"].nunique()),
                    "agreement": float(part["agree"].sum() / part["others"].sum()), "kappa": value, "reason": reason})
    table = pd.DataFrame(out, columns=columns)
    return table.sort_values(["kappa", "user"], na_position="last", kind="stable").reset_index(drop=True)


def pairwise(frame: pd.DataFrame, label_mode: str = "single", options: Sequence[Any] | None = None,
             *, max_labellers: int = 30, how: str = mark_agreement.EXACT) -> pd.DataFrame:
    """Cohen's kappa of every pair of labellers on the items both labelled (the ``max_labellers`` busiest).

    Columns: ``user_a``, ``user_b``, ``items``, ``kappa`` (None when undefined
    or when they share no item). Each pair appears once (``user_a < user_b``).
    Spans and boxes: F1 of each pair (:func:`superintendent.al.mark_agreement.pairwise`).
    """
    if label_mode in MARK_MODES:
        return mark_agreement.pairwise(frame, label_mode, how, max_labellers=max_labellers)
    return _pairwise(ratings_of(frame, label_mode, options), max_labellers)


def _pairwise(ratings: Ratings, max_labellers: int = 30) -> pd.DataFrame:
    columns = ["user_a", "user_b", "items", "kappa"]
    r = compared(ratings.rows)
    if r.empty:
        return pd.DataFrame(columns=columns)
    busiest = r.groupby("user")["item_id"].nunique().sort_values(ascending=False, kind="stable").head(max_labellers)
    users = sorted(busiest.index)
    r = r[r["user"].isin(users)]
    # Every pair of labels on one unit from two labellers (a < b): sum over units of m^2 rows, not users^2 x units.
    side = pd.DataFrame({"unit": r["unit"].to_numpy(), "item_id": r["item_id"].to_numpy(),
                         "who": pd.Index(users).get_indexer(r["user"]), "code": r["code"].to_numpy()})
    pairs = side.merge(side[["unit", "who", "code"]], on="unit", suffixes=("_a", "_b"))
    pairs = pairs[pairs["who_a"] < pairs["who_b"]]
    pair = ["who_a", "who_b"]
    n = pairs.groupby(pair).size()
    agree = pairs[pairs["code_a"] == pairs["code_b"]].groupby(pair).size().reindex(n.index, fill_value=0)
    margin_a = pairs.groupby([*pair, "code_a"]).size().rename_axis([*pair, "code"])
    margin_b = pairs.groupby([*pair, "code_b"]).size().rename_axis([*pair, "code"])
    chance = (margin_a * margin_b).dropna().groupby(level=pair).sum().reindex(n.index, fill_value=0)
    # Cohen's kappa of every pair at once (what cohen_kappa_score gives pair by pair, without users^2 calls).
    p_o, p_e = agree / n, chance / n ** 2
    shared = pairs.groupby(pair)["item_id"].nunique()
    out = []
    for i, a in enumerate(users):
        for j in range(i + 1, len(users)):
            if (i, j) not in n.index:
                out.append({"user_a": a, "user_b": users[j], "items": 0, "kappa": None})
                continue
            pe = float(p_e.loc[(i, j)])
            value = None if pe >= 1 - _EPS else (float(p_o.loc[(i, j)]) - pe) / (1 - pe)
            out.append({"user_a": a, "user_b": users[j], "items": int(shared.loc[(i, j)]), "kappa": value})
    return pd.DataFrame(out, columns=columns)


# --------------------------------------------------------------------------- the whole report


@dataclass(frozen=True)
class AgreementReport:
    """What the Progress page shows about agreement (see the functions of the same names)."""

    overall: Score
    alpha: Score  # Krippendorff's alpha on the same data, for comparison across projects
    per_labeller: pd.DataFrame
    per_class: pd.DataFrame
    pairwise: pd.DataFrame
    disagreements: pd.DataFrame


def agreement_report(frame: pd.DataFrame, label_mode: str = "single", options: Sequence[Any] | None = None, *,
                     min_labels: int = 2, top: int | None = None, how: str = mark_agreement.EXACT) -> AgreementReport | MarkAgreementReport:
    """Every agreement figure of a project's annotations; ``min_labels`` and ``top`` limit the disagreement table.
    Spans and boxes: :func:`superintendent.al.mark_agreement.mark_agreement_report` (F1; ``how`` matches spans)."""
    if label_mode in MARK_MODES:
        return mark_agreement.mark_agreement_report(frame, label_mode, options, how=how, min_labels=min_labels, top=top)
    ratings = ratings_of(frame, label_mode, options)
    main = _overall(ratings)
    alpha = main if main.statistic == ALPHA else _overall(ratings, ALPHA)
    return AgreementReport(main, alpha, _per_labeller(ratings), _per_class(ratings), _pairwise(ratings),
                           disagreement_table(ratings, human_annotations(frame), min_labels, top))


_KAPPA_WORDS = [(0.2, "slight"), (0.4, "fair"), (0.6, "moderate"), (0.8, "substantial")]


def describe(score: Score) -> str:
    """A reading of a figure in words (Landis & Koch's bands for kappa; Krippendorff's thresholds for alpha)."""
    if score.value is None:
        return f"undefined: {score.reason}"
    v = score.value
    if score.statistic == ALPHA:
        return ("reliable (alpha at least 0.8)" if v >= 0.8 else "tentative only (alpha from 0.667 to 0.8)" if v >= 0.667
                else "unreliable (alpha below 0.667): check the guidelines and the items labellers disagree on")
    if v < 0:
        return "poor agreement (less than chance)"
    word = next((name for upper, name in _KAPPA_WORDS if v <= upper), "almost perfect")
    return f"{word} agreement"


