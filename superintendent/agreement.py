"""Agreement between labellers: how far several people who label the same items agree, beyond chance.

Everything here but the two readers at the bottom is a pure function of
plain data. The usual input is a long frame with one row per annotation:
``item_id``, ``user``, ``value`` (the JSON-decoded label: a string or a
number, or a list of them in a multi-label project), optionally
``external_id``. The importer's system user (``_import``) is left out: an
imported label is not a labeller's judgement.

Which statistic
---------------
* **Cohen's kappa** when exactly two labellers labelled the items compared;
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
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from superintendent import queue, serialization
from superintendent.auth import IMPORT_USER
from superintendent.store import Item, Project, session_scope
from superintendent.validation import ValidationError

COHEN = "Cohen's kappa"
FLEISS = "Fleiss' kappa"
ALPHA = "Krippendorff's alpha"

NO_OVERLAP = "no item has labels from two different labellers yet"
_EPS = 1e-12

__all__ = [
    "ALPHA", "COHEN", "FLEISS", "AgreementReport", "Score", "agreement_report", "annotations_long", "cohen_kappa",
    "describe", "disagreements", "fleiss_kappa", "has_overlap", "item_previews", "krippendorff_alpha", "overall",
    "pairwise", "per_class", "per_labeller", "preview",
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


def _label_key(value: Any) -> str:
    """A hashable key for a label (JSON text, as :func:`superintendent.queue.consensus` compares them)."""
    return serialization.dumps(value)


def _label_keys(values: Iterable[Any]) -> list[str]:
    """:func:`_label_key` of many labels, encoding each distinct scalar once."""
    cache: dict[tuple[type, Any], str] = {}
    keys = []
    for v in values:
        if isinstance(v, (str, int, float, bool)) or v is None:
            key = cache.get((type(v), v))
            if key is None:
                key = cache[(type(v), v)] = _label_key(v)
            keys.append(key)
        else:
            keys.append(_label_key(v))
    return keys


def _one_class_reason(only: str | None) -> str:
    what = f"every label is {only}" if only is not None else "only one class was used"
    return f"{what}: chance agreement is already 100%, so agreement beyond chance is undefined"


def _pairable(unit: np.ndarray) -> np.ndarray:
    """Mask of the rows whose unit has two or more values."""
    _, inverse, counts = np.unique(unit, return_inverse=True, return_counts=True)
    return counts[inverse] >= 2


def _unit_class_counts(unit: np.ndarray, code: np.ndarray) -> pd.Series:
    return pd.Series(1, index=pd.MultiIndex.from_arrays([unit, code], names=["unit", "code"])).groupby(level=[0, 1]).sum()


def _alpha_codes(unit: np.ndarray, code: np.ndarray) -> tuple[float | None, str]:
    """Krippendorff's alpha (nominal) from one row per value: the unit it belongs to and its class code."""
    keep = _pairable(unit)
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
    keep = _pairable(unit)
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
    """Cohen's kappa of two aligned code arrays (one entry per item both labelled)."""
    if len(a) == 0:
        return None, "the two labellers have no item in common"
    size = int(max(a.max(), b.max())) + 1
    p_a = np.bincount(a, minlength=size) / len(a)
    p_b = np.bincount(b, minlength=size) / len(b)
    p_e = float(p_a @ p_b)
    if p_e >= 1 - _EPS:
        return None, _one_class_reason(None)
    p_o = float(np.mean(a == b))
    return (p_o - p_e) / (1 - p_e), ""


# --------------------------------------------------------------------------- the statistics on labels


def _codes(values: Iterable[Any]) -> tuple[np.ndarray, list[Any]]:
    keys = _label_keys(values)
    codes, uniques = pd.factorize(pd.Series(keys, dtype="object"))
    return codes.astype(np.int64), [serialization.loads(k) for k in uniques]


def cohen_kappa(labels_a: Sequence[Any], labels_b: Sequence[Any]) -> Score:
    """Cohen's kappa of two labellers: ``labels_a[i]`` and ``labels_b[i]`` are their labels of item ``i``."""
    if len(labels_a) != len(labels_b):
        raise ValidationError(f"cohen_kappa needs one label per item from each labeller; got {len(labels_a)} and {len(labels_b)} labels")
    codes, uniques = _codes([*labels_a, *labels_b])
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
    codes, uniques = _codes(values)
    unit = np.asarray(unit_ids, dtype=np.int64)
    value, reason = _alpha_codes(unit, codes)
    n_items = len(np.unique(unit[_pairable(unit)])) if len(unit) else 0
    if value is None and n_items and len(set(codes[_pairable(unit)].tolist())) == 1:
        reason = _one_class_reason(repr(uniques[int(codes[_pairable(unit)][0])]))
    most = int(np.bincount(unit).max()) if len(unit) else 0
    return Score(ALPHA, value, n_items, most if n_items else 0, reason)


# --------------------------------------------------------------------------- from annotations to ratings


@dataclass(frozen=True)
class _Ratings:
    """One row per value compared: ``unit`` (an item, or an (item, option) pair), ``item_id``, ``user``, ``code``.

    ``classes[code]`` is the class as text; for multi-label ratings ``option``
    names the option of each row and the codes are 0 (not ticked) / 1 (ticked).
    """

    rows: pd.DataFrame
    classes: list[str]
    multi: bool


def _human(frame: pd.DataFrame) -> pd.DataFrame:
    """The labellers' annotations: the importer's left out, one per (item, user) (the last)."""
    needed = {"item_id", "user", "value"}
    if missing := needed - set(frame.columns):
        raise ValidationError(f"annotations need the columns item_id, user, value; missing: {', '.join(sorted(missing))}")
    out = frame[frame["user"] != IMPORT_USER]
    return out.drop_duplicates(["item_id", "user"], keep="last").reset_index(drop=True)


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple, set)) else [value]


def _ratings(frame: pd.DataFrame, label_mode: str = "single", options: Sequence[Any] | None = None) -> _Ratings:
    human = _human(frame)
    multi = label_mode == "multi"
    if not multi:
        codes, uniques = _codes(human["value"])
        rows = pd.DataFrame({"unit": human["item_id"].to_numpy(dtype=np.int64), "item_id": human["item_id"].to_numpy(dtype=np.int64),
                             "user": human["user"].to_numpy(dtype=object), "code": codes})
        return _Ratings(rows, [_text(u) for u in uniques], False)
    lists = [_as_list(value) for value in human["value"]]
    flat = iter(_label_keys([v for one in lists for v in one]))
    chosen = [[next(flat) for _ in one] for one in lists]
    keys = list(dict.fromkeys([*_label_keys(options or []), *(k for c in chosen for k in c)]))
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
        "option": np.tile(np.array([_text(serialization.loads(k)) for k in keys], dtype=object), len(human)),
        "code": ticked.reshape(-1),
    })
    return _Ratings(rows, ["no", "yes"], True)


def _text(value: Any) -> str:
    return ", ".join(map(str, value)) if isinstance(value, list) else str(value)


def _compared(r: pd.DataFrame) -> pd.DataFrame:
    """The rows of units with two or more labels."""
    return r[_pairable(r["unit"].to_numpy())] if len(r) else r


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
    human = _human(frame)
    return bool(len(human)) and bool((human.groupby("item_id")["user"].nunique() >= 2).any())


def overall(frame: pd.DataFrame, label_mode: str = "single", options: Sequence[Any] | None = None, *,
            statistic: str | None = None) -> Score:
    """The project's agreement figure (statistic chosen as the module docstring says, unless ``statistic`` is given)."""
    return _overall(_ratings(frame, label_mode, options), statistic)


def _overall(ratings: _Ratings, statistic: str | None = None) -> Score:
    r = _compared(ratings.rows)
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
              *, max_classes: int = 50) -> pd.DataFrame:
    """Agreement on each class (the ``max_classes`` most chosen), as a yes/no question: is it this class?

    Columns: ``label``, ``votes`` (labels given, on compared items),
    ``specific_agreement`` (when a labeller chose it, the share of other
    labellers of that item who chose it too), ``statistic``, ``value``
    (the overall statistic on the yes/no ratings), ``reason``.
    """
    return _per_class(_ratings(frame, label_mode, options), max_classes)


def _per_class(ratings: _Ratings, max_classes: int = 50) -> pd.DataFrame:
    columns = ["label", "votes", "specific_agreement", "statistic", "value", "reason"]
    r = _compared(ratings.rows)
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


def per_labeller(frame: pd.DataFrame, label_mode: str = "single", options: Sequence[Any] | None = None) -> pd.DataFrame:
    """Each labeller against the others, on the items they share.

    Columns: ``user``, ``items`` (items they labelled that someone else
    labelled too), ``agreement`` (share of the other labels of those items
    that match theirs), ``kappa`` (Cohen's kappa of their labels against the
    majority of the other labellers, items where the others tie left out),
    ``reason`` (why ``kappa`` is undefined). Sorted from lowest kappa.
    """
    return _per_labeller(_ratings(frame, label_mode, options))


def _per_labeller(ratings: _Ratings) -> pd.DataFrame:
    columns = ["user", "items", "agreement", "kappa", "reason"]
    r = _compared(ratings.rows).reset_index(drop=True)
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
             *, max_labellers: int = 30) -> pd.DataFrame:
    """Cohen's kappa of every pair of labellers on the items both labelled (the ``max_labellers`` busiest).

    Columns: ``user_a``, ``user_b``, ``items``, ``kappa`` (None when undefined
    or when they share no item). Each pair appears once (``user_a < user_b``).
    """
    return _pairwise(_ratings(frame, label_mode, options), max_labellers)


def _pairwise(ratings: _Ratings, max_labellers: int = 30) -> pd.DataFrame:
    columns = ["user_a", "user_b", "items", "kappa"]
    r = _compared(ratings.rows)
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


# --------------------------------------------------------------------------- items people disagree on


def disagreements(frame: pd.DataFrame, label_mode: str = "single", *, min_labels: int = 2,
                  top: int | None = None) -> pd.DataFrame:
    """Items with labels from ``min_labels`` or more labellers, most disagreement first (the first ``top``, or all).

    Columns: ``item_id`` (and ``external_id`` if the frame has it),
    ``labels`` (how many), ``votes`` ({label: count}, most first, equal
    counts in the order given; for multi-label: {option: labellers who ticked
    it}), ``consensus`` (the label training and export use,
    :func:`superintendent.queue.consensus`), ``tie``, ``disagreement`` (share
    of votes against the majority, 0 = all agree; for multi-label, averaged
    over the options someone ticked) and ``entropy`` (of the votes, in bits;
    summed over options for multi-label). Ties sort above non-ties of equal
    disagreement.
    """
    return _disagreements(_ratings(frame, label_mode), _human(frame), min_labels, top)


def _disagreement_scores(ratings: _Ratings, min_labels: int) -> pd.DataFrame:
    """Per item with enough labels: labels, tie, disagreement, entropy (vectorised over the whole project)."""
    r = ratings.rows
    n = r.groupby("item_id")["user"].nunique()
    n = n[n >= max(2, min_labels)]
    r = r[r["item_id"].isin(n.index)]
    if r.empty:
        return pd.DataFrame(columns=["labels", "tie", "disagreement", "entropy"])
    if ratings.multi:
        yes = r.groupby(["item_id", "option"], sort=False)["code"].sum()
        yes = yes[yes > 0]
        total = n.reindex(yes.index.get_level_values(0)).to_numpy(dtype=float)
        p = yes.to_numpy(dtype=float) / total
        with np.errstate(divide="ignore", invalid="ignore"):
            bits = -np.nan_to_num(p * np.log2(p)) - np.nan_to_num((1 - p) * np.log2(1 - p))
        per = pd.DataFrame({"against": np.minimum(yes.to_numpy(), total - yes.to_numpy()) / total, "bits": bits,
                            "half": yes.to_numpy() * 2 == total}, index=yes.index.get_level_values(0))
        grouped = per.groupby(level=0)
        scores = pd.DataFrame({"tie": grouped["half"].any(), "disagreement": grouped["against"].mean(),
                               "entropy": grouped["bits"].sum()}).reindex(n.index)
        scores = scores.fillna({"tie": False, "disagreement": 0.0, "entropy": 0.0})
    else:
        counts = r.groupby(["item_id", "code"], sort=False).size()
        item_of = counts.index.get_level_values(0)
        best = counts.groupby(level=0).max()
        p = counts.to_numpy(dtype=float) / n.reindex(item_of).to_numpy(dtype=float)
        scores = pd.DataFrame({
            "tie": (counts.to_numpy() == best.reindex(item_of).to_numpy()).astype(int),
            "entropy": -p * np.log2(p),
        }, index=item_of).groupby(level=0).sum()
        scores["tie"] = scores["tie"] > 1
        scores["disagreement"] = 1.0 - best / n
    scores["labels"] = n
    return scores.astype({"tie": bool, "disagreement": float, "entropy": float, "labels": int})


def _disagreements(ratings: _Ratings, human: pd.DataFrame, min_labels: int, top: int | None) -> pd.DataFrame:
    with_external = "external_id" in human.columns
    columns = ["item_id", *(["external_id"] if with_external else []), "labels", "votes", "consensus", "tie", "disagreement", "entropy"]
    scores = _disagreement_scores(ratings, min_labels)
    if scores.empty:
        return pd.DataFrame(columns=columns)
    scores = scores.rename_axis("item_id").reset_index()
    scores["entropy"] = scores["entropy"].clip(lower=0.0) + 0.0  # -0.0 for unanimous items
    scores = scores.sort_values(["disagreement", "tie", "entropy", "labels", "item_id"],
                                ascending=[False, False, False, False, True], kind="stable")
    if top is not None:
        scores = scores.head(top)
    scores = scores.reset_index(drop=True)
    mode = "multi" if ratings.multi else "single"
    shown = human[human["item_id"].isin(scores["item_id"])]
    values_of: dict[int, list[Any]] = {}
    for item_id, value in zip(shown["item_id"].tolist(), shown["value"].tolist()):  # in the order given
        values_of.setdefault(item_id, []).append(value)
    if with_external:
        external_of = dict(zip(shown["item_id"].tolist(), shown["external_id"].tolist()))
    votes, consensus, external = [], [], []
    for item_id in scores["item_id"].tolist():
        values = values_of[item_id]
        label, _ = queue.consensus(values, mode)
        if ratings.multi:
            votes.append(dict(Counter(o for v in values for o in dict.fromkeys(_text(x) for x in _as_list(v))).most_common()))
        else:
            votes.append(dict(Counter(_text(v) for v in values).most_common()))  # equal counts: first given first
        consensus.append(_text(label))
        if with_external:
            external.append(external_of[item_id])
    scores["votes"], scores["consensus"] = votes, consensus
    if with_external:
        scores["external_id"] = external
    return scores[columns]


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
                     min_labels: int = 2, top: int | None = None) -> AgreementReport:
    """Every agreement figure of a project's annotations; ``min_labels`` and ``top`` limit the disagreement table."""
    ratings = _ratings(frame, label_mode, options)
    main = _overall(ratings)
    alpha = main if main.statistic == ALPHA else _overall(ratings, ALPHA)
    return AgreementReport(main, alpha, _per_labeller(ratings), _per_class(ratings), _pairwise(ratings),
                           _disagreements(ratings, _human(frame), min_labels, top))


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


# --------------------------------------------------------------------------- reading a project (read-only)


def annotations_long(engine: Engine, project: Project) -> pd.DataFrame:
    """The labellers' annotations of a project, oldest first: item_id, external_id, user, value, created_at.

    The importer's labels are left out. The order is the one
    :func:`superintendent.queue.consensus` breaks ties by.
    """
    with session_scope(engine, write=False) as s:
        rows = queue.annotation_log(s, project, include_import=False)
    return pd.DataFrame({
        "item_id": pd.Series([r.item_id for r in rows], dtype="int64"),
        "external_id": pd.Series([r.external_id for r in rows], dtype="object"),
        "user": pd.Series([r.username for r in rows], dtype="object"),
        "value": pd.Series([r.label for r in rows], dtype="object"),
        "created_at": pd.to_datetime(pd.Series([r.created_at for r in rows], dtype="object"), utc=True),
    })


def preview(data: Any, width: int = 60) -> str:
    """An item's data in one short line: text cut to ``width``, a table row as key=value, an array by shape."""
    if isinstance(data, np.ndarray):
        text = f"array {' x '.join(map(str, data.shape))}"
    elif isinstance(data, dict) and "image_path" in data:
        text = f"image {data.get('name') or str(data['image_path']).rsplit('/', 1)[-1]}"
    elif isinstance(data, (dict, pd.Series)):
        row = data.to_dict() if isinstance(data, pd.Series) else data
        text = ", ".join(f"{k}={v}" for k, v in row.items())
    else:
        text = str(data)
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def item_previews(engine: Engine, project: Project, item_ids: Sequence[int], width: int = 60) -> dict[int, str]:
    """Short previews of some items' data (read-only), by item id."""
    ids = [int(i) for i in item_ids]
    if not ids:
        return {}
    table = Item.__table__
    with session_scope(engine, write=False) as s:
        rows = s.execute(sa.select(table.c.id, table.c.data).where(table.c.project_id == project.id, table.c.id.in_(ids))).all()
    return {int(i): preview(serialization.loads(data), width) for i, data in rows}
