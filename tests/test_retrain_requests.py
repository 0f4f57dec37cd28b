""""Retrain now" in the background (superintendent.retrain_requests), on SQLite and PostgreSQL.

A request returns at once and the retrain runs on a worker thread (or the scheduler's executor); a second request
while it runs, from this process or another one, starts nothing and says who runs it since when; its progress is
readable while it runs; a failing model ends as a failed run with its message; the audit entry is written when it ends.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
import time

import numpy as np
import pytest
import sqlalchemy as sa
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression

from superintendent import audit, queue
from superintendent.learning.retrain import PHASES, RetrainOptions, RetrainProgress, run_retrain
from superintendent.learning.runs import ABANDONED
from superintendent.orchestration import start_background_scheduler
from superintendent.retrain_lock import retrain_lock_held
from superintendent.retrain_requests import fraction_done, request_retrain, running_retrain
from superintendent.store import ModelRun, RunStatus, session_scope
from superintendent.store.models import AuditEntry
from superintendent.validation import SuperintendentError

DIGITS = load_digits()
WAIT = 60  # seconds: at most, for a retrain of a few hundred items


def digits_project(engine, n_items=300, n_labelled=100, name="digits", **settings):
    labels = [int(v) for v in DIGITS.target[:n_labelled]] + [None] * (n_items - n_labelled)
    with session_scope(engine) as s:
        project = queue.create_project(s, name, options=list(range(10)), **settings)
        queue.add_items(s, project, [DIGITS.data[i] for i in range(n_items)], labels=labels,
                        external_ids=[f"d{i}" for i in range(n_items)])
    return project


class GatedModel(LogisticRegression):
    """Fits only once its gate opens: a retrain that runs exactly as long as a test wants."""

    def __init__(self, gate: threading.Event | None = None, max_iter: int = 2000) -> None:
        super().__init__(max_iter=max_iter)
        self.gate = gate

    def fit(self, x, y):  # noqa: ANN001, ANN201
        if self.gate is not None:
            assert self.gate.wait(WAIT), "the test never opened the gate"
        return super().fit(x, y)


class Exploding(LogisticRegression):
    def fit(self, x, y):  # noqa: ANN001, ANN201
        raise RuntimeError("the model blew up on purpose")


def model_runs(engine) -> list[ModelRun]:
    with session_scope(engine, write=False) as s:
        return list(s.execute(sa.select(ModelRun).order_by(ModelRun.id)).scalars())


def retrain_entries(engine) -> list[AuditEntry]:
    with session_scope(engine, write=False) as s:
        return [e for e in audit.recent(s) if e.action == audit.AuditAction.model_retrain.value]


def gated(gate: threading.Event) -> RetrainOptions:
    return RetrainOptions(model=GatedModel(gate), eval_method=lambda m, x, y: [1.0])


def test_two_requests_start_one_retrain_and_the_second_says_who_runs_it(engine):
    project = digits_project(engine)
    gate = threading.Event()
    started = time.monotonic()
    first = request_retrain(engine, project, requested_by="boss", options=gated(gate))
    took = time.monotonic() - started
    try:
        assert first.started and took < 5, f"the request took {took:.1f} s: it must return before the retrain ends"
        second = request_retrain(engine, project, requested_by="eve", options=gated(gate))
        assert not second.started and second.job is None
        assert second.running.by == "boss" and second.running.started_at == first.job.started_at
        assert second.running.job is first.job  # this process's retrain: its progress is known
        running = running_retrain(engine, project.id)
        assert running is not None and running.job is first.job
        assert not first.job.finished
    finally:
        gate.set()
    assert first.job.wait(WAIT)
    assert first.job.error is None
    runs = model_runs(engine)
    assert len(runs) == 1 and runs[0].status == RunStatus.succeeded.value, runs[0].message
    assert runs[0].worker == "boss" and first.job.run.id == runs[0].id
    assert running_retrain(engine, project.id) is None and not retrain_lock_held(engine, project.id)
    [entry] = retrain_entries(engine)
    assert (entry.actor, entry.target) == ("boss", "digits")
    assert entry.details == {"run_id": runs[0].id, "status": "succeeded", "n_labels": 100}
    third = request_retrain(engine, project, requested_by="eve", options=RetrainOptions(model=LogisticRegression(max_iter=2000)))
    assert third.started and third.job.wait(WAIT)  # once it ended, the next request starts the next retrain
    assert len(model_runs(engine)) == 2


SECOND_PROCESS = """
    import sys
    from superintendent.retrain_requests import request_retrain
    from superintendent.store import make_engine

    engine = make_engine(sys.argv[1])
    request = request_retrain(engine, "digits", requested_by="eve")
    running = request.running
    print(request.started, running.by, running.started_at.isoformat() if running.started_at else None, running.job is None)
"""


def test_a_request_from_another_process_while_one_runs_starts_nothing(engine, db_url, tmp_path):
    project = digits_project(engine, model_preset="logistic_regression")
    gate = threading.Event()
    first = request_retrain(engine, project, requested_by="boss", options=gated(gate))
    try:
        deadline = time.monotonic() + WAIT
        while not model_runs(engine):  # the worker records its run as it begins
            assert time.monotonic() < deadline
            time.sleep(0.05)
        script = tmp_path / "second.py"
        script.write_text(textwrap.dedent(SECOND_PROCESS))
        out = subprocess.run([sys.executable, str(script), db_url], capture_output=True, text=True, timeout=WAIT, env=os.environ.copy())
        assert out.returncode == 0, out.stderr[-3000:]
    finally:
        gate.set()
    started, by, since, no_job = out.stdout.split()
    assert (started, by, no_job) == ("False", "boss", "True")  # told from the database: who, since when
    [run] = model_runs(engine)
    assert since == run.started_at.isoformat()
    assert first.job.wait(WAIT) and len(model_runs(engine)) == 1


def test_a_failing_model_ends_as_a_failed_run_with_its_message(engine):
    project = digits_project(engine)
    request = request_retrain(engine, project, requested_by="boss", options=RetrainOptions(model=Exploding(), eval_method=lambda m, x, y: [1.0]))
    assert request.started and request.job.wait(WAIT)
    run = request.job.run
    assert run.status == RunStatus.failed.value and "the model blew up on purpose" in run.message
    assert request.job.error is None
    [entry] = retrain_entries(engine)
    assert entry.details["status"] == "failed" and entry.details["run_id"] == run.id
    assert not retrain_lock_held(engine, project.id)


def test_a_bad_preset_is_the_requesters_error_and_starts_nothing(engine):
    project = digits_project(engine)
    with session_scope(engine) as s:  # a preset an older version knew, say: stored, but unknown now
        s.execute(sa.update(type(project)).where(type(project).id == project.id).values(model_preset="no_such_preset"))
    with pytest.raises(SuperintendentError, match="no_such_preset"):
        request_retrain(engine, project, requested_by="boss")
    assert model_runs(engine) == [] and retrain_entries(engine) == []
    assert not retrain_lock_held(engine, project.id) and running_retrain(engine, project.id) is None


def test_progress_names_each_phase_in_order_and_counts_the_predicted_items(engine):
    project = digits_project(engine, n_items=500, n_labelled=100)
    seen: list[RetrainProgress] = []
    run = run_retrain(engine, project, RetrainOptions(model=LogisticRegression(max_iter=2000), batch_size=64, progress=seen.append))
    assert run.status == RunStatus.succeeded.value, run.message
    phases = list(dict.fromkeys(p.phase for p in seen))
    assert phases == list(PHASES)
    predicted = [(p.done, p.total) for p in seen if p.phase == "predict" and p.done]
    assert [d for d, _ in predicted] == [64 * i for i in range(1, 7)] + [400]  # 400 unlabelled items, in batches of 64
    assert {t for _, t in predicted} == {400}
    fractions = [fraction_done(p, run.phase_seconds) for p in seen]
    assert fractions == sorted(fractions) and fractions[0] == 0.0 and 0.9 < fractions[-1] < 1.0


def test_on_the_schedulers_executor(engine):
    project = digits_project(engine)
    threads = []
    scheduler = start_background_scheduler(engine, tick_seconds=3600)
    try:
        options = RetrainOptions(model=LogisticRegression(max_iter=2000), progress=lambda p: threads.append(threading.current_thread().name))
        request = request_retrain(engine, project, requested_by="boss", options=options, scheduler=scheduler)
        assert request.started and request.job.wait(WAIT)
    finally:
        scheduler.shutdown(wait=True)
    assert request.job.run.status == RunStatus.succeeded.value
    assert threads and all(name.startswith("ThreadPoolExecutor") for name in threads), set(threads)  # APScheduler's pool


def test_a_running_run_left_by_a_dead_process_is_not_shown_as_running(engine):
    project = digits_project(engine, n_items=20, n_labelled=20)
    with session_scope(engine) as s:
        s.add(ModelRun(project_id=project.id, worker="dead@host"))  # 'running', and nobody holds the lock
    assert running_retrain(engine, project.id) is None
    request = request_retrain(engine, project, requested_by="boss", options=RetrainOptions(model=LogisticRegression(max_iter=2000)))
    assert request.started and request.job.wait(WAIT)
    assert [r.message for r in model_runs(engine)][0] == ABANDONED


@pytest.mark.parametrize("progress, weights, expected", [
    (None, None, 0.0),
    (RetrainProgress("read_labelled"), None, 0.0),
    (RetrainProgress("predict", 50, 100), None, 4.5 / 8),
    (RetrainProgress("predict", 50, 100), {"evaluate": 1.0, "predict": 3.0}, 2.5 / 4),
    (RetrainProgress("signals"), {"predict": 3.0}, 1.0),
], ids=["not begun", "first phase", "half the items, equal weights", "weighted by an earlier run", "last phase, weight 0"])
def test_fraction_done(progress, weights, expected):
    assert fraction_done(progress, weights) == pytest.approx(expected)
    assert np.isfinite(fraction_done(progress, weights))
