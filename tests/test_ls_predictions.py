"""Label Studio predictions in an imported task file become the items' hints (issue 15: they were dropped).

A task's first prediction with a choice gives the item's hint (the label, checked against the project's options
as annotations are) and, when the prediction has a score from 0 to 1, the hint's confidence. The Label page shows
hints where the project turns them on; the project's own model replaces them at its next retrain.
"""

from __future__ import annotations

import json

import pytest

from superintendent import ingest, queue
from superintendent.auth import ensure_user
from superintendent.orchestration import retrain_project
from superintendent.store import Role, session_scope
from superintendent.validation import ValidationError
from test_interop import import_file, n_items, new_project


def choice(*c, from_name="sentiment"):
    return [{"type": "choices", "from_name": from_name, "to_name": "text", "value": {"choices": list(c)}}]


TASKS = [
    {"id": 1, "data": {"text": "what a lovely day"}, "predictions": [{"model_version": "bert-3", "score": 0.87, "result": choice("good")}]},
    {"id": 2, "data": {"text": "it broke at once"}, "predictions": [{"result": choice("bad")}]},  # no score
    {"id": 3, "data": {"text": "fine I guess"}, "predictions": [{"score": 0.6, "result": []}, {"score": 0.55, "result": choice("good")}]},
    {"id": 4, "data": {"text": "no guess here"}},
    {"id": 5, "data": {"text": "labelled already"}, "predictions": [{"score": 0.7, "result": choice("bad")}],
     "annotations": [{"completed_by": 3, "result": choice("good")}]},
]


def shown(engine, project, who: str = "lena") -> dict[str, tuple]:
    """What a labeller is handed, per item: (hint, confidence, top guesses); they skip each one."""
    out = {}
    with session_scope(engine) as s:
        user = ensure_user(s, who, role=Role.labeller)
        while (task := queue.claim_next(s, project, user, resume=False)) is not None:
            out[task.external_id] = (task.hint, task.hint_confidence, task.hint_top)
            queue.skip(s, project, user, task.item_id)
    return out


def test_predictions_become_hints_with_their_scores(engine, tmp_path):
    project = new_project(engine, "ls", options=["good", "bad"], show_hints=True)
    prepared = ingest.prepare_upload("tasks.json", json.dumps(TASKS).encode(), options=["good", "bad"])
    assert list(prepared.preview["model's guess"]) == ["good (87%)", "bad", "good (55%)", "", "bad (70%)"]
    result = import_file(engine, project, "tasks.json", json.dumps(TASKS).encode(), tmp_path / "up")
    assert (result.added, result.labelled) == (5, 1)
    assert shown(engine, project) == {
        "1": ("good", 0.87, [("good", 0.87)]),
        "2": ("bad", None, None),
        "3": ("good", 0.55, [("good", 0.55)]),
        "4": (None, None, None),
    }


def test_multi_label_predictions_and_unknown_choices(engine, tmp_path):
    project = new_project(engine, "tags", options=["red", "round", "sweet"], label_mode="multi", show_hints=True)
    tasks = [{"id": 1, "data": {"text": "apple"}, "predictions": [{"score": 0.8, "result": choice("red", "round", from_name="tags")}]}]
    import_file(engine, project, "tasks.json", json.dumps(tasks).encode(), tmp_path / "up")
    assert shown(engine, project) == {"1": (["red", "round"], 0.8, None)}

    bad = [{"id": 9, "data": {"text": "pear"}, "predictions": [{"result": choice("green", from_name="tags")}]}]
    with pytest.raises(ValidationError, match=r"task 1 \(id 9\), prediction 1: 'green'"):
        import_file(engine, project, "more.json", json.dumps(bad).encode(), tmp_path / "up")
    assert n_items(engine, project) == 1  # nothing of the bad file


def test_a_retrain_replaces_imported_hints_on_the_items_it_ranks(engine, tmp_path):
    rows = [{"id": i, "data": {"text": f"{'nice' if i % 2 else 'awful'} thing {i}"},
             "predictions": [{"score": 0.51, "result": choice("bad")}],
             **({"annotations": [{"completed_by": 1, "result": choice("good" if i % 2 else "bad")}]} if i < 12 else {})}
            for i in range(20)]
    project = new_project(engine, "mix", options=["good", "bad"], show_hints=True, data_type="text",
                          model_preset="tfidf_logistic_regression")
    import_file(engine, project, "tasks.json", json.dumps(rows).encode(), tmp_path / "up")
    assert {h for h, _, _ in shown(engine, project).values()} == {"bad"}
    run = retrain_project(engine, project)
    assert run.status == "succeeded", run.message
    after = shown(engine, project, "max")
    assert len(after) == 8 and all(conf != 0.51 for _, conf, _ in after.values())
