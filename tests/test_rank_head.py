"""A retrain writes the new order of the head of the queue only (``rank_write_limit``), on SQLite and PostgreSQL.

Issue 14: rewriting the priority of every open item made a retrain of a 1M-item project spend 84 s writing
(and leave a million dead row versions). Now the items labellers reach first get their new places, below every
other open item's priority, and the rest keep their earlier order behind them.
"""

from __future__ import annotations

import numpy as np
import sqlalchemy as sa
from sklearn.linear_model import LogisticRegression

from superintendent import queue
from superintendent.acquisition_functions import margin
from superintendent.learning import RetrainOptions
from superintendent.orchestration import retrain_project
from superintendent.store import RunStatus, session_scope

from labelling_logs import people_label
from test_learning import DIGITS, claim_order, digits_project, flatten


def priorities(engine, project) -> dict[int, float]:
    with session_scope(engine, write=False) as s:
        rows = s.execute(sa.select(queue.Item.id, queue.Item.priority)
                         .where(queue.Item.project_id == project.id, queue.Item.done.is_(False))).all()
    return {int(i): float(p) for i, p in rows}


def retrain(engine, project, n_labelled: int):
    model = LogisticRegression(max_iter=2000)
    run = retrain_project(engine, project, RetrainOptions(model=model, model_preprocess=flatten, acquisition_function="margin",
                                                          shuffle_prop=0.0))
    assert run.status == RunStatus.succeeded.value, run.message
    return run


def expected_head(engine, project, n_labelled: int, k: int) -> list[int]:
    model = LogisticRegression(max_iter=2000).fit(DIGITS.data[:n_labelled], DIGITS.target[:n_labelled])
    with session_scope(engine, write=False) as s:
        ids = s.execute(sa.select(queue.Item.id).where(queue.Item.project_id == project.id).order_by(queue.Item.id)).scalars().all()
    proba = model.predict_proba(DIGITS.data[n_labelled:len(ids)])
    return [ids[n_labelled + i] for i in margin(proba)[:k]]


def test_only_the_head_of_the_order_is_written_and_served_first(engine, monkeypatch):
    project = digits_project(engine, n_items=300, n_labelled=100)
    monkeypatch.setenv("SUPERINTENDENT_RANK_WRITE_LIMIT", "20")
    before = priorities(engine, project)
    run = retrain(engine, project, 100)
    after = priorities(engine, project)
    assert run.n_ranked == 200  # every open item was predicted and ranked ...
    moved = {i for i in after if after[i] != before[i]}
    assert len(moved) == 20  # ... and only the head of the order written
    head = expected_head(engine, project, 100, 20)
    assert moved == set(head)
    assert max(after[i] for i in head) < min(p for i, p in after.items() if i not in moved)  # below every other open item
    assert claim_order(engine, project, 20) == head  # served first, in the model's order
    with session_scope(engine, write=False) as s:
        hinted = s.execute(sa.select(sa.func.count()).select_from(queue.Item)
                           .where(queue.Item.project_id == project.id, queue.Item.hint.is_not(None))).scalar_one()
    assert hinted == 20  # guesses are written where they will be shown


def test_a_second_partial_retrain_goes_in_front_of_the_first(engine, monkeypatch):
    project = digits_project(engine, n_items=300, n_labelled=100)
    monkeypatch.setenv("SUPERINTENDENT_RANK_WRITE_LIMIT", "20")
    retrain(engine, project, 100)
    first = priorities(engine, project)
    first_head = sorted(first, key=first.get)[:20]
    # a different model's head: relabel nothing, but rank by certainty instead of margin
    run = retrain_project(engine, project, RetrainOptions(model=LogisticRegression(max_iter=2000), model_preprocess=flatten,
                                                          acquisition_function="certainty", shuffle_prop=0.0))
    assert run.status == RunStatus.succeeded.value
    second = priorities(engine, project)
    second_head = sorted(second, key=second.get)[:20]
    assert set(second_head) != set(first_head)
    rest_of_first = [i for i in first_head if i not in second_head]
    assert rest_of_first, "the two heads should differ"
    # the new head first, then what is left of the old head in its old order, then everything else
    assert max(second[i] for i in second_head) < min(second[i] for i in rest_of_first)
    assert sorted(rest_of_first, key=second.get) == [i for i in first_head if i in rest_of_first]
    others = [i for i in second if i not in second_head and i not in first_head]
    assert max(second[i] for i in rest_of_first) < min(second[i] for i in others)


def test_a_project_within_the_limit_gets_its_whole_order_from_zero(engine):
    project = digits_project(engine, n_items=300, n_labelled=100)
    retrain(engine, project, 100)
    after = priorities(engine, project)
    assert sorted(after.values()) == [float(i) for i in range(200)]
    assert claim_order(engine, project, 10) == expected_head(engine, project, 100, 10)


def test_unranked_new_items_come_after_the_ranked_head(engine, monkeypatch):
    project = digits_project(engine, n_items=300, n_labelled=100)
    monkeypatch.setenv("SUPERINTENDENT_RANK_WRITE_LIMIT", "20")
    retrain(engine, project, 100)
    head = expected_head(engine, project, 100, 20)
    with session_scope(engine) as s:
        queue.add_items(s, project, list(DIGITS.images[300:310]))
    assert claim_order(engine, project, 20) == head
    assert np.isfinite(list(priorities(engine, project).values())).all()


# --------------------------------------------------------------------------- how long the head is

def _schedule(engine, project, **settings):
    with session_scope(engine) as s:
        return queue.update_project(s, queue.get_project(s, project.id), **settings)


def _people_label(engine, project, n: int) -> None:
    people_label(engine, project, n, lambda task, k: int(DIGITS.target[task.item_id % len(DIGITS.target)]))


def test_a_project_retrained_by_hand_expects_the_gap_before_this_retrain_again(engine, monkeypatch):
    """No interval: the next retrain comes when someone asks. The labels people gave since the last successful retrain
    started (since the project was created, before the first) are the estimate; twice that, within the minimum and the
    limit, and the retrain writes exactly that many."""
    from superintendent.learning import writing

    monkeypatch.setattr(writing, "HEAD_MIN", 30)
    monkeypatch.setenv("SUPERINTENDENT_RANK_WRITE_LIMIT", "150")
    project = digits_project(engine, n_items=400, n_labelled=100)  # 100 labels imported: not people labelling
    assert writing.head_length(engine, project) == 30  # nobody labelled yet: the minimum
    _people_label(engine, project, 20)
    assert writing.head_length(engine, project) == 40  # 20 labels since the project was created: 2 x 20
    _people_label(engine, project, 40)
    assert writing.head_length(engine, project) == 120

    before = priorities(engine, project)
    retrain(engine, project, 160)
    after = priorities(engine, project)
    assert sum(after[i] != before[i] for i in after) == 120  # what the retrain writes
    assert writing.head_length(engine, project) == 30  # a retrain since, and no label after it: the minimum again
    _people_label(engine, project, 25)
    assert writing.head_length(engine, project) == 50  # only the labels since that retrain started count
    _people_label(engine, project, 60)
    assert writing.head_length(engine, project) == 150  # never past the limit


def test_a_scheduled_retrain_writes_what_labellers_reach_before_the_next(engine, monkeypatch):
    """Every 10 labels, nobody labelling lately: the minimum head (imported labels are not people labelling); with
    people labelling at a rate that reaches further before the next retrain: a longer head, never past the limit. The
    retrain writes exactly that many."""
    from superintendent.learning import writing

    monkeypatch.setattr(writing, "HEAD_MIN", 30)
    monkeypatch.setenv("SUPERINTENDENT_RANK_WRITE_LIMIT", "150")
    project = digits_project(engine, n_items=300, n_labelled=100)  # 100 labels imported just now
    project = _schedule(engine, project, retrain_interval_n_labels=10)
    assert writing.head_length(engine, project) == 30  # 2 x 10 labels, raised to the minimum

    _people_label(engine, project, 30)  # 30 labels in the last 10 minutes: 0.05 a second
    project = _schedule(engine, project, retrain_interval_seconds=60.0)
    assert writing.head_length(engine, project) == 50  # 2 x (max(10, 0.05 x 60) + 0.05 x 300)
    project = _schedule(engine, project, retrain_interval_seconds=1200.0)  # the rate over 20 minutes: 0.025 a second
    assert writing.head_length(engine, project) == 75  # 2 x (max(10, 30) + 7.5)
    monkeypatch.setenv("SUPERINTENDENT_RANK_WRITE_LIMIT", "60")
    assert writing.head_length(engine, project) == 60  # never past the limit
    later = queue.utcnow() + __import__("datetime").timedelta(hours=2)
    assert writing.head_length(engine, project, now=later) == 30  # nobody labelled in the last 20 minutes: 2 x 10 -> 30

    monkeypatch.setattr(writing, "RATE_WINDOW_SECONDS", 1e-3)  # nobody labelled in the last millisecond: the minimum ...
    project = _schedule(engine, project, retrain_interval_seconds=None)
    before = priorities(engine, project)
    retrain(engine, project, 130)
    after = priorities(engine, project)
    assert sum(after[i] != before[i] for i in after) == 30  # ... is what the retrain writes
