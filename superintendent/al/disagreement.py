"""Items labellers disagree on, most disagreement first, and a one-line preview of an item. Pure functions of plain data.

The input is the long frame of annotations :mod:`superintendent.al.ratings`
describes (one row per annotation: ``item_id``, ``user``, ``value``,
optionally ``external_id``).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np
import pandas as pd

from superintendent.al.ratings import Ratings, as_list, human_annotations, label_text, ratings_of
from superintendent.labels import consensus

__all__ = ["disagreement_table", "disagreements", "preview"]


def disagreements(frame: pd.DataFrame, label_mode: str = "single", *, min_labels: int = 2,
                  top: int | None = None) -> pd.DataFrame:
    """Items with labels from ``min_labels`` or more labellers, most disagreement first (the first ``top``, or all).

    Columns: ``item_id`` (and ``external_id`` if the frame has it),
    ``labels`` (how many), ``votes`` ({label: count}, most first, equal
    counts in the order given; for multi-label: {option: labellers who ticked
    it}), ``consensus`` (the label training and export use,
    :func:`superintendent.labels.consensus`), ``tie``, ``disagreement`` (share
    of votes against the majority, 0 = all agree; for multi-label, averaged
    over the options someone ticked) and ``entropy`` (of the votes, in bits;
    summed over options for multi-label). Ties sort above non-ties of equal
    disagreement.
    """
    return disagreement_table(ratings_of(frame, label_mode), human_annotations(frame), min_labels, top)


def _disagreement_scores(ratings: Ratings, min_labels: int) -> pd.DataFrame:
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


def disagreement_table(ratings: Ratings, human: pd.DataFrame, min_labels: int = 2, top: int | None = None) -> pd.DataFrame:
    """:func:`disagreements` of ratings already made (``human``: the annotations they were made from)."""
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
    votes, agreed, external = [], [], []
    for item_id in scores["item_id"].tolist():
        values = values_of[item_id]
        label, _ = consensus(values, mode)
        if ratings.multi:
            votes.append(dict(Counter(o for v in values for o in dict.fromkeys(label_text(x) for x in as_list(v))).most_common()))
        else:
            votes.append(dict(Counter(label_text(v) for v in values).most_common()))  # equal counts: first given first
        agreed.append(label_text(label))
        if with_external:
            external.append(external_of[item_id])
    scores["votes"], scores["consensus"] = votes, agreed
    if with_external:
        scores["external_id"] = external
    return scores[columns]


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
