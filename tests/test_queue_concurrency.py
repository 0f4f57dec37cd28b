"""Several OS processes on one queue: no item handed to two labellers at once, no label lost."""

from __future__ import annotations

import json
import time
from collections import Counter

import numpy as np
import pytest
import sqlalchemy as sa

from labelling_logs import held_at_once, replay, start_labellers
from superintendent import queue
from superintendent.auth import ensure_user
from superintendent.store import Annotation, Role, User, session_scope


def finish(procs, timeout=180):
    results = []
    for proc, out in procs:
        _, err = proc.communicate(timeout=timeout)
        assert proc.returncode == 0, err
        results.append(json.loads(out.read_text()))
    return results


def db_annotations(engine, project):
    with session_scope(engine, write=False) as s:
        rows = s.execute(
            sa.select(User.username, Annotation.item_id, Annotation.value)
            .join(User, User.id == Annotation.user_id).where(Annotation.project_id == project.id)
        ).all()
    return {(u, i): json.loads(v) for u, i, v in rows}


def test_concurrent_processes_never_claim_the_same_item(engine, db_url, tmp_path):
    n_items, n_procs = 400, 4
    with session_scope(engine) as s:
        project = queue.create_project(s, "race", options=["a", "b"])
        queue.add_items(s, project, list(range(n_items)))
    results = finish(start_labellers(db_url, "race", n_procs, tmp_path, think_seconds=0.001))

    claims = Counter(item for r in results for kind, item, _, _ in r["log"] if kind == "claim")
    assert len(claims) == n_items, "every item was handed out"
    assert max(claims.values()) == 1, f"items handed out twice: {[i for i, c in claims.items() if c > 1][:10]}"
    # (SQLite's lock is not fair: under a tight loop one writer can starve the others for a while)
    assert sum(1 for r in results if r["log"]) >= 2, "the processes really labelled side by side"
    expected = {(r["user"], item): label for r in results for kind, item, label, _ in r["log"] if kind == "submit"}
    assert db_annotations(engine, project) == expected
    with session_scope(engine, write=False) as s:
        assert queue.progress(s, project).labelled == n_items


def test_labelling_with_skips_undos_and_reprioritising_loses_nothing(engine, db_url, tmp_path):
    n_items = 300
    with session_scope(engine) as s:
        project = queue.create_project(s, "busy", options=["a", "b", "c"])
        queue.add_items(s, project, [f"text {i}" for i in range(n_items)])
    with session_scope(engine, write=False) as s:
        ids = np.array(s.execute(sa.select(queue.Item.id).where(queue.Item.project_id == project.id)).scalars().all())
    procs = start_labellers(db_url, "busy", 4, tmp_path, skip_prob=0.05, undo_prob=0.05)
    rng = np.random.default_rng(0)
    rewrites = 0
    while any(p.poll() is None for p, _ in procs):
        queue.reprioritise(engine, project, ids, rng.permutation(len(ids)).astype(float), chunk_size=50)
        rewrites += 1
        time.sleep(0.01)
    results = finish(procs)
    assert rewrites >= 2, "the rewrite ran while labellers worked"

    expected = {}
    for r in results:
        expected.update(replay(r))
    assert db_annotations(engine, project) == expected, "every kept label is stored, exactly once"
    assert held_at_once(results) == []

    # whatever is left unlabelled (skipped by whoever met it) is still reachable by someone
    with session_scope(engine) as s:
        checker = ensure_user(s, "checker", role=Role.labeller)
        remaining = queue.progress(s, project).remaining
    reached = 0
    while True:
        with session_scope(engine) as s:
            task = queue.claim_next(s, project, checker)
            if task is None:
                break
            queue.submit(s, project, checker, task.item_id, "a")
            reached += 1
    assert reached == remaining
    with session_scope(engine, write=False) as s:
        assert queue.progress(s, project).remaining == 0


@pytest.mark.parametrize("n_items", [100_000])
def test_bulk_add_and_claim_uses_the_index(engine, n_items):
    """100k items go in with one multi-row insert per chunk; the claim plan seeks the queue index."""
    with session_scope(engine) as s:
        project = queue.create_project(s, "big", options=["x"])
        t0 = time.perf_counter()
        result = queue.add_items(s, project, np.arange(n_items))
        elapsed = time.perf_counter() - t0
    assert result.added == n_items
    print(f"added {n_items} items in {elapsed:.2f} s on {engine.dialect.name}")
    with session_scope(engine) as s:
        user = ensure_user(s, "u", role=Role.labeller)
        task = queue.claim_next(s, project, user)
        assert task.data == 0
        plan = queue.explain_claim(s, project, user)
    assert "ix_item_queue" in plan, plan
