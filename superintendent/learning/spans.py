"""The span model of a ``spans`` project: a CRF over tokens (BIO tags), its marginals, its predicted spans, its doubt.

Texts are cut into tokens by the one tokeniser (:mod:`superintendent.tokenize`); each token gets a dict of
features (the word, its shape, affixes, its neighbours); a span value becomes BIO tags on those tokens
(:func:`superintendent.tokenize.bio_tags`). :class:`SpanModel` fits a linear-chain CRF (``sklearn-crfsuite``,
L-BFGS with elastic-net penalties) on them and gives, per text:

* the predicted spans (the most likely tag sequence, decoded), each with a ``score``: the lowest marginal
  probability of its tag over its tokens (how sure the model is of that span, boundaries included);
* the probability of that whole sequence (how sure it is that *all* its marks are right: the hint's confidence);
* an uncertainty per text, aggregated over its tokens (:data:`AGGREGATIONS`).

The uncertainty that orders a spans project's queue is :data:`DEFAULT_AGGREGATION`; ``bench/span_learning.py``
compares the aggregations (docs/benchmarks.md, "Spans: learning").
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.model_selection import KFold

from superintendent.marks import item_text
from superintendent.tokenize import bio_tags, token_offsets
from superintendent.validation import ValidationError

__all__ = ["AGGREGATIONS", "DEFAULT_AGGREGATION", "SpanModel", "cross_validated_f1", "decode", "entity_f1", "features",
           "item_uncertainty", "per_label_f1", "texts_of"]

# How a text's doubt is one number (each a function of its tokens' tag marginals and the best sequence's probability):
#   mean_entropy: the mean over tokens of each token's tag entropy (long and short texts on one scale);
#   max_entropy: the most doubtful token's entropy (one hard token is enough);
#   total_entropy: the sum over tokens (long texts first: more to learn, more to read);
#   least_confidence: 1 - P(most likely tag sequence) (Culotta & McCallum 2005; grows with length as well).
AGGREGATIONS = ("mean_entropy", "max_entropy", "total_entropy", "least_confidence")
# Chosen by bench/span_learning.py (docs/benchmarks.md, "Spans: learning"): with least confidence, the fewest labels to the
# target entity F1 (median over 10 seeds: 30 against random's 70), and the steadier of the two (every seed within 50
# labels; least confidence up to 80). 1 - P(sequence) also saturates at 1 for long texts, which then tie; a sum of token
# entropies keeps ranking them. Its cost: it favours long texts (more to read per label).
DEFAULT_AGGREGATION = "total_entropy"


# --------------------------------------------------------------------------- features


def _shape(word: str) -> str:
    """``Xxxx`` -> ``Xx``, ``1999`` -> ``d``, ``C-3PO`` -> ``X-dX``: letter case and digits, runs collapsed."""
    out: list[str] = []
    for ch in word:
        c = "X" if ch.isupper() else "x" if ch.isalpha() else "d" if ch.isdigit() else ch
        if not out or out[-1] != c:
            out.append(c)
    return "".join(out)


def _word(text: str, offsets: Sequence[tuple[int, int]], k: int) -> str:
    start, end = offsets[k]
    return text[start:end]


def features(text: str, offsets: Sequence[tuple[int, int]] | None = None) -> list[dict[str, Any]]:
    """One feature dict per token of ``text``: the word and its neighbours (two each side), shape, affixes, case,
    and whether it touches its neighbours without a space (``Saint-Laurent`` reads as one name)."""
    offsets = token_offsets(text) if offsets is None else offsets
    words = [_word(text, offsets, k) for k in range(len(offsets))]
    out = []
    for k, w in enumerate(words):
        low = w.lower()
        f: dict[str, Any] = {
            "bias": 1.0, "w": low, "suf3": low[-3:], "suf2": low[-2:], "pre3": low[:3], "shape": _shape(w),
            "title": w[:1].isupper(), "upper": w.isupper() and len(w) > 1, "digit": w.isdigit(), "alpha": w.isalpha(),
            "len": min(len(w), 8),
        }
        for d in (-2, -1, 1, 2):
            j = k + d
            if 0 <= j < len(words):
                f[f"{d}:w"] = words[j].lower()
                f[f"{d}:title"] = words[j][:1].isupper()
                f[f"{d}:shape"] = _shape(words[j])
            elif abs(d) == 1:
                f["BOS" if d < 0 else "EOS"] = True
        f["glued_left"] = k > 0 and offsets[k - 1][1] == offsets[k][0]
        f["glued_right"] = k + 1 < len(offsets) and offsets[k][1] == offsets[k + 1][0]
        out.append(f)
    return out


def texts_of(items: Sequence[Any]) -> list[str]:
    """The texts of a spans project's items (strings, or rows with a ``text`` field: :func:`superintendent.marks.item_text`)."""
    return [item_text(item) for item in items]


# --------------------------------------------------------------------------- tags back to spans


def decode(offsets: Sequence[tuple[int, int]], tags: Sequence[str], marginals: Sequence[Mapping[str, float]] | None = None
           ) -> list[dict[str, Any]]:
    """Spans from BIO ``tags`` on tokens at ``offsets``: ``B-X`` opens a span, ``I-X`` continues an open ``X`` span
    (or opens one: a lenient reading), anything else closes it. With ``marginals`` each span has a ``score``: the lowest
    marginal probability of its tokens' tags."""
    spans: list[dict[str, Any]] = []
    open_span: dict[str, Any] | None = None
    for k, tag in enumerate(tags):
        prefix, _, label = tag.partition("-")
        if prefix == "I" and open_span is not None and open_span["label"] == label:
            open_span["end"] = offsets[k][1]
        elif prefix in ("B", "I") and label:
            open_span = {"start": offsets[k][0], "end": offsets[k][1], "label": label}
            spans.append(open_span)
        else:
            open_span = None
            continue
        if marginals is not None:
            p = float(marginals[k].get(tag, 0.0))
            open_span["score"] = min(open_span.get("score", 1.0), p)
    return spans


# --------------------------------------------------------------------------- the model


def _entropy(marginals: Sequence[Mapping[str, float]]) -> np.ndarray:
    """Each token's tag entropy (nats)."""
    if not marginals:
        return np.empty(0)
    p = np.array([list(m.values()) for m in marginals], dtype=float)
    p = np.clip(p, 1e-12, 1.0)
    return -(p * np.log(p)).sum(axis=1)


def item_uncertainty(marginals: Sequence[Mapping[str, float]], sequence_probability: float, aggregation: str) -> float:
    """One text's doubt from its tokens' tag ``marginals`` and the best sequence's probability (see :data:`AGGREGATIONS`).
    A text without tokens has none (0)."""
    if aggregation not in AGGREGATIONS:
        raise ValidationError(f"unknown span uncertainty {aggregation!r}; choose one of: {', '.join(AGGREGATIONS)}")
    if aggregation == "least_confidence":
        return float(1.0 - sequence_probability) if marginals else 0.0
    h = _entropy(marginals)
    if h.size == 0:
        return 0.0
    return float({"mean_entropy": h.mean, "max_entropy": h.max, "total_entropy": h.sum}[aggregation]())


class SpanModel(BaseEstimator):
    """A linear-chain CRF over tokens for a spans project (``fit`` on texts and span values, then ``predict_marks``).

    ``c1`` / ``c2``: L1 / L2 penalties; ``aggregation``: how :meth:`uncertainty` turns token doubt into one number.
    Fitted attributes: ``crf_`` (the ``sklearn_crfsuite.CRF``), ``labels_`` (the span labels it has seen).
    The model is kept in memory only (crfsuite's own file format in a temporary file while fitting; never pickled).
    """

    def __init__(self, c1: float = 0.05, c2: float = 0.05, max_iterations: int = 100, aggregation: str = DEFAULT_AGGREGATION) -> None:
        self.c1 = c1
        self.c2 = c2
        self.max_iterations = max_iterations
        self.aggregation = aggregation

    def fit(self, texts: Sequence[str], values: Sequence[Sequence[Mapping[str, Any]]]) -> SpanModel:
        import sklearn_crfsuite

        if len(texts) != len(values):
            raise ValidationError(f"need one span value per text; got {len(texts)} texts and {len(values)} values")
        x, y = [], []
        for text, value in zip(texts, values):
            offsets = token_offsets(text)
            if offsets:
                x.append(features(text, offsets))
                y.append(bio_tags(offsets, value))
        if not x:
            raise ValidationError("the labelled texts have no tokens (no word or symbol): nothing to learn from")
        self.crf_ = sklearn_crfsuite.CRF(algorithm="lbfgs", c1=self.c1, c2=self.c2, max_iterations=self.max_iterations,
                                         all_possible_transitions=True)
        self.crf_.fit(x, y)
        self.labels_ = sorted({tag[2:] for tags in y for tag in tags if tag != "O"})
        return self

    def _tag(self, text: str) -> tuple[list[tuple[int, int]], list[str], list[dict[str, float]], float]:
        """Offsets, the most likely tags, the tag marginals per token and that sequence's probability."""
        offsets = token_offsets(text)
        if not offsets:
            return offsets, [], [], 1.0
        tagger = self.crf_.tagger_
        tagger.set(features(text, offsets))
        tags = list(tagger.tag())
        probability = float(tagger.probability(tags))
        marginals = [{t: float(tagger.marginal(t, k)) for t in tagger.labels()} for k in range(len(offsets))]
        return offsets, tags, marginals, probability

    def analyse(self, texts: Sequence[str]) -> list[tuple[list[dict[str, Any]], float, float]]:
        """Per text: (predicted spans with their ``score``, the whole sequence's probability, the uncertainty)."""
        out = []
        for text in texts:
            offsets, tags, marginals, probability = self._tag(text)
            out.append((decode(offsets, tags, marginals), probability, item_uncertainty(marginals, probability, self.aggregation)))
        return out

    def predict_marks(self, texts: Sequence[str]) -> list[list[dict[str, Any]]]:
        """Per text, the predicted spans (``{start, end, label, score}``, sorted by start)."""
        return [spans for spans, _, _ in self.analyse(texts)]

    def predict(self, texts: Sequence[str]) -> list[list[dict[str, Any]]]:
        """Per text, the predicted span value (``{start, end, label}``): what a labeller would store."""
        return [[{k: s[k] for k in ("start", "end", "label")} for s in spans] for spans in self.predict_marks(texts)]

    def uncertainty(self, texts: Sequence[str]) -> np.ndarray:
        """Per text, the model's doubt (:attr:`aggregation`): higher first in the queue."""
        return np.array([u for _, _, u in self.analyse(texts)], dtype=float)


# --------------------------------------------------------------------------- how good it is


def _as_set(values: Sequence[Sequence[Mapping[str, Any]]]) -> set[tuple[int, int, int, str]]:
    return {(i, int(s["start"]), int(s["end"]), str(s["label"])) for i, value in enumerate(values) for s in value}


def entity_f1(true: Sequence[Sequence[Mapping[str, Any]]], predicted: Sequence[Sequence[Mapping[str, Any]]]) -> dict[str, float]:
    """Entity-level precision, recall and F1 (micro, over all texts): a predicted span counts when its start, end and
    label are exactly those of a true span of the same text (CoNLL's rule). No spans on either side: F1 is 1."""
    t, p = _as_set(true), _as_set(predicted)
    hit = len(t & p)
    precision = hit / len(p) if p else 1.0
    recall = hit / len(t) if t else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1 if (t or p) else 1.0}


def per_label_f1(true: Sequence[Sequence[Mapping[str, Any]]], predicted: Sequence[Sequence[Mapping[str, Any]]]) -> dict[str, dict[str, float]]:
    """:func:`entity_f1` per label, with the label's number of true spans (``support``)."""
    labels = sorted({str(s["label"]) for value in (*true, *predicted) for s in value})
    out = {}
    for label in labels:
        def only(values: Sequence[Sequence[Mapping[str, Any]]], label: str = label) -> list[list[Mapping[str, Any]]]:
            return [[s for s in value if str(s["label"]) == label] for value in values]
        figures = entity_f1(only(true), only(predicted))
        figures["support"] = float(sum(len(v) for v in only(true)))
        out[label] = figures
    return out


def cross_validated_f1(model: SpanModel, texts: Sequence[str], values: Sequence[Sequence[Mapping[str, Any]]], *,
                       folds: int = 3, seed: int = 0) -> tuple[list[float], list[list[dict[str, Any]]], str | None]:
    """Entity F1 per fold (up to ``folds``, each fitted on the other folds), the out-of-fold predictions in the texts'
    order, and a message when there are too few texts to cross-validate (then no scores)."""
    n = len(texts)
    if n < 2 * folds and n < 4:
        return [], [], f"cross-validation needs at least 4 labelled items; have {n}"
    cv = KFold(n_splits=min(folds, n // 2), shuffle=True, random_state=seed)
    predicted: list[list[dict[str, Any]]] = [[] for _ in range(n)]
    scores = []
    for train, test in cv.split(np.zeros(n)):
        fold = SpanModel(**model.get_params()).fit([texts[i] for i in train], [values[i] for i in train])
        guesses = fold.predict([texts[i] for i in test])
        for i, guess in zip(test, guesses):
            predicted[i] = guess
        scores.append(entity_f1([values[i] for i in test], guesses)["f1"])
    return scores, predicted, None
