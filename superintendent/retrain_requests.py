"""Retrain now, in the background: :func:`request_retrain` starts a retrain of a project and returns at once.

* The request takes the project's retrain lock (:mod:`superintendent.retrain_lock`) on the caller's thread and
  hands it to the worker, which frees it when the retrain ends. Two requests at once, from this process or any
  other (another replica, ``superintendent orchestrate``, the scheduler), start one retrain; the second starts
  nothing and is told who runs it and since when.
* The work runs on the in-app scheduler's executor when one is given (APScheduler's thread pool: at most its size
  at once, the rest wait their turn), else on a thread of its own.
* While it runs, its :class:`RetrainJob` holds the phase under way and, while predicting, how many items are done
  (:class:`~superintendent.learning.retrain.RetrainProgress`). :func:`running_retrain` answers a page that polls:
  a retrain of this process with its progress, or one of another process from the lock and its ``running`` run in
  the database (when it started and who started it, no progress).
* When it ends, the audit log gets ``model.retrain`` for the user who asked.

Jobs live in this process only; a request's job stays known until the project's next request here.
"""

from __future__ import annotations

import datetime as dt
import logging
import socket
import threading
from collections.abc import Mapping
from contextlib import ExitStack
from dataclasses import dataclass, field, replace
from typing import Any

from sqlalchemy.engine import Engine

from superintendent import audit
from superintendent.learning import runs
from superintendent.learning.presets import model_for_project
from superintendent.learning.retrain import PHASES, RetrainOptions, RetrainProgress
from superintendent.orchestration import SCHEDULER_WORKER, current_project, retrain_while_locked
from superintendent.retrain_lock import retrain_lock, retrain_lock_held
from superintendent.store import ModelRun, Project, session_scope, utcnow

__all__ = ["RetrainJob", "RetrainRequest", "RunningRetrain", "fraction_done", "request_retrain", "running_retrain", "wait_for_retrains"]

log = logging.getLogger(__name__)


@dataclass(eq=False)
class RetrainJob:
    """One requested retrain running (or done) in this process."""

    project_id: int
    project_name: str
    requested_by: str
    started_at: dt.datetime
    progress: RetrainProgress | None = None  # the latest the retrain reported; None until it begins
    run: ModelRun | None = None  # the recorded run, once it ended (succeeded, skipped or failed)
    error: str | None = None  # why it stopped without recording its end (e.g. the database went away)
    _done: threading.Event = field(default_factory=threading.Event, repr=False)

    @property
    def finished(self) -> bool:
        return self._done.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the retrain ended (True) or ``timeout`` seconds passed (False)."""
        return self._done.wait(timeout)


@dataclass(frozen=True)
class RunningRetrain:
    """A retrain under way, as far as this process can tell."""

    started_at: dt.datetime | None  # None: it holds the lock but has not recorded its run yet
    by: str  # who or what started it, in words ("" if unknown)
    job: RetrainJob | None = None  # set when it runs in this process: then its progress is known


@dataclass(frozen=True)
class RetrainRequest:
    """What :func:`request_retrain` did: started ``job``, or found ``running`` and started nothing."""

    job: RetrainJob | None
    running: RunningRetrain | None = None

    @property
    def started(self) -> bool:
        return self.job is not None


_jobs: dict[tuple[str, int], RetrainJob] = {}  # (database URL, project id): the latest requested here
_jobs_lock = threading.Lock()


def _key(engine: Engine, project_id: int) -> tuple[str, int]:
    return str(engine.url), project_id


def request_retrain(engine: Engine, project: Project | int | str, *, requested_by: str, options: RetrainOptions | None = None,
                    scheduler: Any = None) -> RetrainRequest:
    """Start a retrain of ``project`` in the background and return at once.

    ``requested_by`` (a user name) is recorded as the run's worker (unless ``options.worker`` names one) and as the
    actor of its audit entry. ``scheduler``: a running APScheduler scheduler whose executor runs the retrain; None
    (or a stopped one) runs it on a thread of its own. A bad model preset or factory raises here
    (:class:`~superintendent.validation.SuperintendentError`), before anything starts; so does a deleted project.
    """
    project = current_project(engine, project)
    opts = options or RetrainOptions()
    if opts.model is None:
        model_for_project(project)  # builds the model once, so a bad preset or factory is the requester's error
    held = ExitStack()
    if not held.enter_context(retrain_lock(engine, project.id)):
        held.close()
        return RetrainRequest(None, running_retrain(engine, project.id) or RunningRetrain(None, ""))
    job = RetrainJob(project.id, project.name, requested_by, utcnow())
    run_options = replace(opts, worker=opts.worker or requested_by, progress=_reporter(job, opts))
    key = _key(engine, project.id)
    with _jobs_lock:
        _jobs[key] = job
    lock = held.pop_all()  # from here on the worker frees the lock
    try:
        _start(scheduler, f"retrain-now-{project.id}", (engine, project, run_options, job, lock))
    except BaseException:
        lock.close()
        with _jobs_lock:
            _jobs.pop(key, None)
        raise
    log.info("project %r: retrain requested by %s", project.name, requested_by)
    return RetrainRequest(job)


def _reporter(job: RetrainJob, opts: RetrainOptions):  # noqa: ANN202 - a progress callback
    def report(progress: RetrainProgress) -> None:
        job.progress = progress
        if opts.progress is not None:
            opts.progress(progress)

    return report


def _start(scheduler: Any, name: str, args: tuple) -> None:
    if scheduler is not None and scheduler.running:
        # no trigger: once, now; never dropped as "misfired" however busy the executor is (the lock waits on it)
        scheduler.add_job(_run_job, args=list(args), name=name, misfire_grace_time=None)
    else:
        threading.Thread(target=_run_job, args=args, name=name, daemon=True).start()


def _run_job(engine: Engine, project: Project, options: RetrainOptions, job: RetrainJob, lock: ExitStack) -> None:
    """The worker: the retrain under the lock the request took, the lock freed, then the audit entry."""
    try:
        with lock:
            job.run = retrain_while_locked(engine, project, options)
        with session_scope(engine) as s:
            audit.record(s, job.requested_by, audit.AuditAction.model_retrain, project.name, run_id=job.run.id, status=job.run.status,
                         n_labels=job.run.n_labels)
    except Exception as exc:  # a worker thread: whoever waits is told, and the log has the traceback
        log.exception("project %r: the retrain requested by %s stopped", project.name, job.requested_by)
        job.error = f"{type(exc).__name__}: {exc}"
    finally:
        job._done.set()


def running_retrain(engine: Engine, project_id: int) -> RunningRetrain | None:
    """The retrain of ``project_id`` under way in any process, or None: this process's job with its progress, else
    the lock's holder with its ``running`` run (a ``running`` run nobody holds the lock for was left by a dead process)."""
    with _jobs_lock:
        job = _jobs.get(_key(engine, project_id))
    if job is not None and not job.finished:
        return RunningRetrain(job.started_at, job.requested_by, job)
    if not retrain_lock_held(engine, project_id):
        return None
    with session_scope(engine, write=False) as s:
        run = runs.running_run(s, project_id)
    if run is None:
        return RunningRetrain(None, "")
    return RunningRetrain(run.started_at, _worker_in_words(run.worker))


def _worker_in_words(worker: str) -> str:
    if worker.startswith(SCHEDULER_WORKER):
        host = worker[len(SCHEDULER_WORKER):]
        return "the scheduler" + ("" if host == socket.gethostname() else f" on {host}")
    return worker


def wait_for_retrains(timeout: float | None = None) -> bool:
    """Wait until every retrain requested in this process has ended (True), or ``timeout`` seconds passed (False)."""
    with _jobs_lock:
        jobs = list(_jobs.values())
    deadline = None if timeout is None else utcnow() + dt.timedelta(seconds=timeout)
    for job in jobs:
        left = None if deadline is None else max(0.0, (deadline - utcnow()).total_seconds())
        if not job.wait(left):
            return False
    return True


def fraction_done(progress: RetrainProgress | None, phase_seconds: Mapping[str, float] | None = None) -> float:
    """How far a retrain is, from 0 to 1: the phases behind it, each weighted by how long it took in an earlier run
    (``phase_seconds``; equal weights without one), and the share of the items predicted so far."""
    if progress is None or progress.phase not in PHASES:
        return 0.0
    weights = [max(float((phase_seconds or {}).get(p) or 0.0), 0.0) for p in PHASES]
    if sum(weights) <= 0:
        weights = [1.0] * len(PHASES)
    at = PHASES.index(progress.phase)
    within = min(1.0, progress.done / progress.total) if progress.total > 0 else 0.0
    return min(1.0, (sum(weights[:at]) + weights[at] * within) / sum(weights))
