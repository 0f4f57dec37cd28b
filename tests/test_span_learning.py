"""Active learning for spans and boxes projects: the token model, the retrain of a marks project, outside predictions.

* the token model (``learning/spans.py``) learns a span set whose entities are known by construction (plotly's
  bundled names in template sentences, test names unseen in training) to an entity F1 over a bar;
* a retrain of a spans project (both databases) fits it on the labelled items' final values, stores its entity F1 as
  the run's score (per label too), writes the queue order (most doubtful first, as the model says) and stores the
  predicted spans as hints on the head, which a labeller is handed, checked against the item;
* a spans project with a classification preset, and a boxes project without a model factory, get a skipped run whose
  message says what to do; a boxes project with a model factory is ordered by its lowest box score;
* predictions for a boxes project (the HTTP API's handler) are checked against the item, order the queue by lowest
  box confidence, and a bad one stores nothing;
* the bench's ``--quick`` variant runs (``-m bench``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa
from sklearn.linear_model import LogisticRegression

from superintendent import queue
from superintendent.api.predictions import Predictions, store_predictions
from superintendent.auth import ensure_user
from superintendent.hints import hint_caption
from superintendent.learning import RetrainOptions, run_retrain
from superintendent.learning.marks_retrain import NO_BOX_MODEL
from superintendent.learning.presets import has_in_app_model, preset_misfit
from superintendent.learning.span_data import LABELS, make_span_set
from superintendent.learning.spans import SpanModel, decode, entity_f1
from superintendent.marks import check_boxes, check_spans
from superintendent.project_settings import default_model_preset
from superintendent.store import Item, ModelRun, Role, session_scope
from superintendent.tokenize import bio_tags, token_offsets
from superintendent.tokens import TokenUser
from superintendent.validation import ValidationError

ROOT = Path(__file__).resolve().parent.parent


# --------------------------------------------------------------------------- the pure parts


def test_tokens_tags_and_spans_back():
    text = "Côte-des-Neiges, le 3 mai 🙂!"
    offsets = token_offsets(text)
    assert [text[a:b] for a, b in offsets] == ["Côte", "-", "des", "-", "Neiges", ",", "le", "3", "mai", "🙂", "!"]
    spans = [{"start": 0, "end": 15, "label": "DISTRICT"}, {"start": 23, "end": 25, "label": "DAY"}]  # "ai": part of a token
    tags = bio_tags(offsets, spans)
    assert tags == ["B-DISTRICT", "I-DISTRICT", "I-DISTRICT", "I-DISTRICT", "I-DISTRICT", "O", "O", "O", "B-DAY", "O", "O"]
    assert decode(offsets, tags) == [{"start": 0, "end": 15, "label": "DISTRICT"}, {"start": 22, "end": 25, "label": "DAY"}]
    # entity F1 is exact: a span cut short counts as a miss and a false mark
    assert entity_f1([spans], [spans])["f1"] == 1.0
    assert entity_f1([spans], [[spans[0], {"start": 22, "end": 25, "label": "DAY"}]])["f1"] == pytest.approx(0.5)


def test_the_token_model_learns_a_construction_known_set():
    pool = make_span_set(300, part="pool", seed=3)
    test = make_span_set(300, part="test", seed=4)  # names the pool never shows
    for text, value in zip(pool.texts, pool.values):  # true spans by construction: valid values of a spans project
        assert check_spans(value, text, LABELS) == value
    model = SpanModel().fit(pool.texts, pool.values)
    predicted = model.predict_marks(test.texts)
    assert entity_f1(test.values, predicted)["f1"] > 0.8
    assert all(0 <= s["score"] <= 1 for spans in predicted for s in spans)
    few = SpanModel().fit(pool.texts[:5], pool.values[:5])
    assert entity_f1(test.values, few.predict(test.texts))["f1"] < entity_f1(test.values, predicted)["f1"]
    doubt = model.uncertainty(test.texts)
    assert doubt.shape == (300,) and np.all(doubt >= 0)
    least = SpanModel(aggregation="least_confidence").fit(pool.texts, pool.values).uncertainty(test.texts[:20])
    assert np.all((least >= 0) & (least <= 1))  # 1 - P(best sequence)
    with pytest.raises(ValidationError, match="unknown span uncertainty 'median'"):
        SpanModel(aggregation="median").fit(pool.texts[:5], pool.values[:5]).uncertainty(test.texts[:1])


def test_presets_by_kind():
    assert default_model_preset("text", "spans") == "token_crf" and default_model_preset("any", "spans") == "token_crf"
    assert default_model_preset("image", "boxes") is None
    assert default_model_preset("text") == "tfidf_logistic_regression"
    assert "choose 'token_crf'" in preset_misfit("tfidf_logistic_regression", "spans")
    assert "no in-app model for boxes" in preset_misfit("logistic_regression", "boxes")
    assert "'token_crf' marks spans" in preset_misfit("token_crf", "single")
    assert preset_misfit("token_crf", "spans") is None


# --------------------------------------------------------------------------- a spans project's retrain


def _spans_project(engine, n_items: int = 60, n_labelled: int = 24, **settings):
    data = make_span_set(n_items, part="pool", seed=11)
    with session_scope(engine) as s:
        project = queue.create_project(s, "ner", label_mode="spans", options=list(LABELS), data_type="text", show_hints=True,
                                       shuffle_prop=0.0, **settings)
        queue.add_items(s, project, data.texts, labels=[v if i < n_labelled else None for i, v in enumerate(data.values)])
    return project, data


def _priorities(engine, project) -> dict[int, float]:
    with session_scope(engine, write=False) as s:
        rows = s.execute(sa.select(Item.id, Item.priority).where(Item.project_id == project.id, sa.not_(Item.done))).all()
    return dict(rows)


def test_a_spans_retrain_scores_orders_and_hints(engine):
    project, data = _spans_project(engine, model_preset="token_crf")
    before = _priorities(engine, project)
    progress = []
    run = run_retrain(engine, project, RetrainOptions(progress=progress.append, batch_size=10))
    assert run.status == "succeeded", run.message
    assert run.n_labels == 24 and run.n_ranked == 36
    assert [(p.done, p.total) for p in progress if p.phase == "predict" and p.done] == [(10, 36), (20, 36), (30, 36), (36, 36)]
    assert set(run.phase_seconds) == {"read_labelled", "preprocess", "evaluate", "fit", "predict", "rank", "write", "signals"}
    assert len(run.scores) == 3 and 0 < run.score_mean <= 1  # entity F1 per fold
    assert set(run.per_class) <= set(LABELS) and all("f1" in v for v in run.per_class.values())
    assert run.acquisition_function == "span total_entropy" and run.signals["uncertainty"] == "total_entropy"

    # the order written is the model's doubt, most doubtful first (the same model fitted on the same final values)
    after = _priorities(engine, project)
    assert after != before and len(after) == 36
    model = SpanModel().fit(data.texts[:24], data.values[:24])
    with session_scope(engine, write=False) as s:
        texts = dict(s.execute(sa.select(Item.id, Item.data).where(Item.project_id == project.id)).all())
    ids = sorted(after)
    doubt = model.uncertainty([json.loads(texts[i]) for i in ids])
    assert [ids[k] for k in np.argsort(-doubt, kind="stable")] == sorted(after, key=after.get)

    # the head carries the predicted spans as hints: a labeller gets them, valid for the item, with a caption
    with session_scope(engine) as s:
        uid = ensure_user(s, "lena", role=Role.labeller)
        task = queue.act(s, project, uid, queue.Action.claim).task
    assert task.item_id == ids[int(np.argmax(doubt))]
    assert isinstance(task.hint, list) and check_spans(task.hint, task.data, LABELS) == task.hint
    assert 0 <= task.hint_confidence <= 1 and len(task.hint_top) == len(task.hint)
    caption = hint_caption(project, task)
    assert caption.startswith("Model's suggestion, pre-filled:") and "%" in caption
    with session_scope(engine) as s:  # accepting the hint as it is stores it
        queue.act(s, project, uid, queue.Action.submit, item_id=task.item_id, value=task.hint)

    again = run_retrain(engine, project)  # a second run compares its guesses with the first's: the stopping signal
    assert again.status == "succeeded" and again.n_labels == 25
    assert again.signals["n_compared"] > 0


def test_a_spans_project_with_a_classification_preset_or_no_spans_is_skipped_with_a_message(engine):
    project, _ = _spans_project(engine, model_preset="tfidf_logistic_regression")
    before = _priorities(engine, project)
    run = run_retrain(engine, project)
    assert run.status == "skipped" and "a spans project cannot use it: choose 'token_crf'" in run.message
    assert _priorities(engine, project) == before
    assert not has_in_app_model(project)
    live = run_retrain(engine, project, RetrainOptions(model=LogisticRegression()))  # Superintendent(model=...) from Python
    assert live.status == "skipped" and "needs a model of marks" in live.message and "got LogisticRegression" in live.message
    with session_scope(engine) as s:
        empty = queue.create_project(s, "empty", label_mode="spans", options=list(LABELS), model_preset="token_crf")
        queue.add_items(s, empty, ["nothing here", "nor here", "still nothing"], labels=[[], [], None])
    run = run_retrain(engine, empty)
    assert run.status == "skipped" and "at least one marked span" in run.message


# --------------------------------------------------------------------------- boxes


class _Detector:
    """A model factory's detector for the boxes tests: one box per image, its score the image's mean brightness."""

    def fit(self, items, values):
        self.n_fitted_ = len(values)
        return self

    def predict_marks(self, items):
        return [[{"x": 1, "y": 1, "width": 4, "height": 4, "label": "cat", "score": float(np.mean(im)) / 255}] for im in items]


def box_detector() -> _Detector:
    return _Detector()


def _boxes_project(engine, **settings):
    brightness = [200, 40, 120, 90, 250]
    with session_scope(engine) as s:
        project = queue.create_project(s, "boxes", label_mode="boxes", options=["cat", "dog"], data_type="image", show_hints=True,
                                       shuffle_prop=0.0, **settings)
        queue.add_items(s, project, [np.full((20, 30), b, dtype=np.uint8) for b in brightness], external_ids=list("abcde"))
        ids = dict(s.execute(sa.select(Item.external_id, Item.id).where(Item.project_id == project.id)).all())
    return project, ids


def test_a_boxes_retrain_without_a_model_factory_says_so_and_with_one_follows_the_lowest_box_score(engine):
    project, ids = _boxes_project(engine, model_preset="logistic_regression")  # a classification preset is no box model
    run = run_retrain(engine, project)
    assert run.status == "skipped" and run.message == NO_BOX_MODEL and "predictions" in run.message
    with session_scope(engine) as s:
        project = queue.update_project(s, project, model_factory="test_span_learning:box_detector")
    run = run_retrain(engine, project)
    assert run.status == "succeeded", run.message
    after = _priorities(engine, project)
    assert sorted("abcde", key=lambda k: after[ids[k]]) == list("bdcae")  # darkest first
    with session_scope(engine) as s:
        uid = ensure_user(s, "lena", role=Role.labeller)
        task = queue.act(s, project, uid, queue.Action.claim).task
    assert task.external_id == "b" and task.hint == [{"x": 1, "y": 1, "width": 4, "height": 4, "label": "cat"}]
    assert task.hint_confidence == pytest.approx(40 / 255)


def test_box_predictions_are_checked_and_order_the_queue_by_the_lowest_box(engine):
    project, ids = _boxes_project(engine)
    with session_scope(engine) as s:
        admin = ensure_user(s, "boss", role=Role.admin)
    boss = TokenUser(token_id=0, user_id=admin, username="boss", role="admin")

    def box(score, label="cat", **where):
        return {"x": 2, "y": 2, "width": 10, "height": 8, "label": label, "score": score, **where}

    good = Predictions(model="detector", predictions=[
        {"external_id": "a", "marks": [box(0.9), box(0.3, "dog")]},  # lowest box 0.3: asked first
        {"external_id": "b", "marks": [box(0.8)]},
        {"item_id": ids["c"], "marks": []},  # nothing found: sure, last
        {"external_id": "d", "marks": [box(0.5, x=25, width=20)]},  # clipped to the 30 px wide image
    ])
    before = _priorities(engine, project)
    bad_label = good.model_copy(update={"predictions": [*good.predictions[:3], Predictions.model_validate(
        {"model": "m", "predictions": [{"external_id": "d", "marks": [box(0.5, "cow")]}]}).predictions[0]]})
    with pytest.raises(ValidationError, match=r"prediction 4 \(item 'd'\): box 1 has label 'cow'.*nothing was stored"):
        store_predictions(engine, boss, project.id, bad_label)
    outside = Predictions.model_validate({"model": "m", "predictions": [{"external_id": "e", "marks": [box(0.5, x=40)]}]})
    with pytest.raises(ValidationError, match="lies outside the 30 x 20 image"):
        store_predictions(engine, boss, project.id, outside)
    labels = Predictions.model_validate({"model": "m", "predictions": [{"external_id": "e", "label": "cat"}]})
    with pytest.raises(ValidationError, match="boxes project: send marks"):
        store_predictions(engine, boss, project.id, labels)
    with pytest.raises(ValueError, match="score"):
        Predictions.model_validate({"model": "m", "predictions": [{"external_id": "e", "marks": [box(1.5)]}]})
    assert _priorities(engine, project) == before  # nothing stored by any of these

    stored = store_predictions(engine, boss, project.id, good)
    assert (stored.stored, stored.reordered) == (4, True)
    after = _priorities(engine, project)
    assert sorted("abcd", key=lambda k: after[ids[k]]) == list("adbc") and after[ids["e"]] > max(after[ids[k]] for k in "abcd")
    with session_scope(engine) as s:
        uid = ensure_user(s, "lena", role=Role.labeller)
        first = queue.act(s, project, uid, queue.Action.claim).task
        queue.act(s, project, uid, queue.Action.skip, item_id=first.item_id)
        second = queue.act(s, project, uid, queue.Action.claim).task
    assert first.external_id == "a" and first.hint_confidence == pytest.approx(0.3)
    assert first.hint == check_boxes(first.hint, 30, 20, ["cat", "dog"]) and first.hint_top == [("cat", 0.9), ("dog", 0.3)]
    assert second.external_id == "d" and second.hint[0]["width"] == 5  # clipped at the image's edge
    assert "2 boxes (30% sure): **cat** 90%, **dog** 30%" in hint_caption(project, first)


def test_span_predictions_through_the_handler_keep_each_score_with_its_span(engine):
    project, data = _spans_project(engine, n_items=6, n_labelled=0, model_preset="token_crf")
    with session_scope(engine) as s:
        admin = ensure_user(s, "boss", role=Role.admin)
        item_id = s.execute(sa.select(Item.id).where(Item.project_id == project.id).order_by(Item.id)).scalars().first()
    text, (first, *rest) = data.texts[0], data.values[0]
    marks = [{**s, "score": 0.4} for s in rest] + [{**first, "score": 0.9, "text": text[first["start"]:first["end"]]}]  # not sorted
    body = Predictions.model_validate({"model": "m", "predictions": [{"item_id": item_id, "marks": marks}]})
    stored = store_predictions(engine, TokenUser(0, admin, "boss", "admin"), project.id, body)
    assert stored.reordered is False  # the project's own model (token_crf by default for spans) orders its queue
    with session_scope(engine, write=False) as s:
        hint, top = s.execute(sa.select(Item.hint, Item.hint_top).where(Item.id == item_id)).one()
    assert json.loads(hint) == data.values[0]
    assert [p for _, p in json.loads(top)] == [0.9] + [0.4] * len(rest)


# --------------------------------------------------------------------------- the bench


@pytest.mark.bench
@pytest.mark.timeout(600)
def test_span_learning_bench_quick(tmp_path):
    out = tmp_path / "span.json"
    env = {**os.environ, "SUPERINTENDENT_BENCH_RESULTS": str(tmp_path / "results")}
    done = subprocess.run([sys.executable, str(ROOT / "bench" / "span_learning.py"), "--quick", "--no-plots", "--json", str(out)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=550)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(out.read_text())
    assert set(report["results"]) == {"random", "mean_entropy", "max_entropy", "total_entropy", "least_confidence"}
    for r in report["results"].values():
        assert r["sizes"][0] == 10 and r["sizes"][-1] == 60 and len(r["per_seed_f1"]) == 2
        assert all(0 <= f <= 1 for f in r["mean_f1"])
