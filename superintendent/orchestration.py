"""Retraining on a schedule, with at most one retrain per project at a time across processes.

* :func:`retrain_lock` (:mod:`superintendent.retrain_lock`): PostgreSQL holds a
  session advisory lock (freed by the server if the process dies); SQLite
  writes a lock row that a heartbeat renews while the retrain runs, taken
  over once its holder has been silent for ``retrain_lock_stale_seconds``
  (any host) or its process is gone (this host).
* :func:`retrain_project`: lock, then :func:`superintendent.learning.run_retrain`. "Retrain now" in the
  background (the Model page) is :mod:`superintendent.retrain_requests`.
* :func:`orchestrate`: the loop of the original ``Superintendent.orchestrate``,
  driven by APScheduler; every ``interval_seconds`` it retrains if at least
  ``interval_n_labels`` labels came in since the last run. Stops after
  ``max_runs`` runs, on :meth:`Orchestrator.stop`, or on SIGTERM / SIGINT.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import signal
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy.engine import Engine

from superintendent import queue
from superintendent.learning import cold_start, runs
from superintendent.learning.presets import has_in_app_model, preset_misfit
from superintendent.learning.retrain import RetrainOptions, run_retrain
from superintendent.store import ModelRun, Project, session_scope, utcnow
from superintendent.retrain_lock import retrain_lock
from superintendent.validation import NotFoundError
from superintendent.webhooks.delivery import add_delivery_job

log = logging.getLogger(__name__)
SCHEDULER_WORKER = "scheduler@"  # + the host name: the worker of the scheduler's retrains


def current_project(engine: Engine, project: Project | int | str) -> Project:
    """The project as stored now (by object, id or name); :class:`NotFoundError` if it was deleted meanwhile."""
    with session_scope(engine, write=False) as s:
        if isinstance(project, Project):
            current = s.get(Project, project.id)
            if current is None:
                raise NotFoundError(f"project {project.name!r} no longer exists: it was deleted after it was opened; nothing to retrain")
            return current
        return queue.get_project(s, project)


def retrain_while_locked(engine: Engine, project: Project, options: RetrainOptions | None = None) -> ModelRun:
    """The retrain itself, for a caller that holds the project's :func:`retrain_lock`."""
    runs.close_abandoned_runs(engine, project.id)  # left 'running' by a process that died: none is live while we hold the lock
    return run_retrain(engine, project, options)


def retrain_project(engine: Engine, project: Project | int | str, options: RetrainOptions | None = None) -> ModelRun | None:
    """One retrain of one project, unless another process is retraining it (then None).

    :class:`NotFoundError` if the project does not exist (e.g. it was deleted after ``project`` was read).
    """
    project = current_project(engine, project)
    with retrain_lock(engine, project.id) as got:
        if not got:
            log.info("project %r: another retrain is running; skipped", project.name)
            return None
        return retrain_while_locked(engine, project, options)


def labels_since_last_run(engine: Engine, project: Project) -> tuple[int, int | None]:
    """(labelled items now, labelled items the last finished run used, or None if there was none)."""
    with session_scope(engine, write=False) as s:
        now = queue.count_labelled(s, project)
        last = runs.last_finished_n_labels(s, project)
    return now, last


def retrain_if_due(engine: Engine, project_id: int, interval_n_labels: int, options: RetrainOptions | None = None) -> ModelRun | None:
    """The scheduled job: retrain when ``interval_n_labels`` labels arrived since the last run."""
    with session_scope(engine, write=False) as s:
        project = s.get(Project, project_id)
    if project is None:
        return None
    now, last = labels_since_last_run(engine, project)
    if last is not None and now - last < interval_n_labels:
        return None
    return retrain_project(engine, project, options)


@dataclass
class Orchestrator:
    """A running retrain loop: every ``interval_seconds`` it calls ``job`` (which returns the runs it made)."""

    job: Callable[[], list[ModelRun]]
    interval_seconds: float
    max_runs: float = math.inf
    on_run: Callable[[ModelRun], None] | None = None
    deliver_webhooks_of: Engine | None = None  # also send this database's due webhook deliveries (`orchestrate --all`)
    runs: list[ModelRun] = field(default_factory=list)
    _stopped: threading.Event = field(default_factory=threading.Event)

    def tick(self) -> None:
        if self._stopped.is_set():
            return
        for run in self.job():
            self.runs.append(run)
            if self.on_run is not None:
                self.on_run(run)
            if len(self.runs) >= self.max_runs:
                self._stopped.set()
                return

    def stop(self) -> None:
        self._stopped.set()

    def run(self) -> list[ModelRun]:
        """Run until stopped or ``max_runs`` runs are done (blocks the calling thread)."""
        from apscheduler.schedulers.background import BackgroundScheduler
        from apscheduler.triggers.interval import IntervalTrigger

        scheduler = BackgroundScheduler(timezone=dt.timezone.utc)
        scheduler.add_job(_tick, IntervalTrigger(seconds=self.interval_seconds), args=[self], id="retrain-loop",
                          next_run_time=dt.datetime.now(dt.timezone.utc), coalesce=True, max_instances=1, replace_existing=True)
        if self.deliver_webhooks_of is not None:
            add_delivery_job(scheduler, self.deliver_webhooks_of)
        restore = _stop_on_signals(self.stop)
        scheduler.start()
        try:
            while not self._stopped.wait(0.2):
                pass
        finally:
            scheduler.shutdown(wait=True)  # a retrain under way finishes; its lock is released
            restore()
        return self.runs


def _tick(orchestrator: Orchestrator) -> None:
    """APScheduler's job: a module-level function, as APScheduler wants."""
    orchestrator.tick()


def _stop_on_signals(stop: Callable[[], None]) -> Callable[[], None]:
    """Make SIGTERM / SIGINT call ``stop`` (main thread only); returns a function that restores the old handlers."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    old = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    for sig in old:
        signal.signal(sig, lambda *_: stop())

    def restore() -> None:
        for sig, handler in old.items():
            signal.signal(sig, handler)

    return restore


def orchestrate(engine: Engine, project: Project, options: RetrainOptions | None = None, *, interval_seconds: float | None = None,
                interval_n_labels: int = 0, max_runs: float = math.inf, on_run: Callable[[ModelRun], None] | None = None) -> list[ModelRun]:
    """Retrain once (``interval_seconds=None``) or every ``interval_seconds`` until stopped; returns the runs made."""
    options = options or RetrainOptions()
    if interval_seconds is None:
        run = retrain_project(engine, project, options)
        if run is not None and on_run is not None:
            on_run(run)
        return [] if run is None else [run]
    if interval_seconds <= 0:
        raise ValueError(f"interval_seconds must be positive or None; got {interval_seconds!r}")

    def job() -> list[ModelRun]:
        run = retrain_if_due(engine, project.id, interval_n_labels, options)
        return [] if run is None else [run]

    return Orchestrator(job, interval_seconds, max_runs, on_run).run()


def orchestrate_all(engine: Engine, *, tick_seconds: float = 5.0, interval_n_labels: int | None = None, max_runs: float = math.inf,
                    on_run: Callable[[ModelRun], None] | None = None) -> list[ModelRun]:
    """Every ``tick_seconds``, retrain each project that is due by its own schedule (or, with
    ``interval_n_labels``, each project with a model and that many new labels); until stopped."""
    if tick_seconds <= 0:
        raise ValueError(f"tick_seconds must be positive; got {tick_seconds!r}")
    return Orchestrator(lambda: retrain_due_projects(engine, interval_n_labels), tick_seconds, max_runs, on_run,
                        deliver_webhooks_of=engine).run()


# --------------------------------------------------------------------------- the projects' own schedules (web app, `orchestrate --all`)


@dataclass(frozen=True)
class Schedule:
    """When a project's next automatic retrain happens, in words and figures."""

    enabled: bool
    due: bool
    next_at: dt.datetime | None
    labels_needed: int
    description: str


def project_schedule(engine: Engine, project: Project, now: dt.datetime | None = None) -> Schedule:
    """A project retrains by itself when ``retrain_interval_seconds`` passed since its last run
    and ``retrain_interval_n_labels`` (at least 1) new labels came in; it needs a model of its own (a preset that suits its
    kind, or a factory: :func:`~superintendent.learning.presets.has_in_app_model`)."""
    now = now or utcnow()
    every, n_needed = project.retrain_interval_seconds, max(1, project.retrain_interval_n_labels)
    if not has_in_app_model(project):
        misfit = project.model_preset and preset_misfit(project.model_preset, project.label_mode)
        why = misfit or "the project has no model (choose one on the Admin page)"
        return Schedule(False, False, None, 0, f"no automatic retraining: {why}")
    if every is None and project.retrain_interval_n_labels == 0:
        return Schedule(False, False, None, 0, "only when an admin presses Retrain now (no retrain interval is set on the Admin page)")
    with session_scope(engine, write=False) as s:
        labelled = queue.count_labelled(s, project)
        last = runs.latest_run(s, project)
        cold = cold_start.pending(s, project, last)  # items to order for coverage before any label: due without waiting for labels
    new_labels = labelled - (last.n_labels if last is not None else 0)
    missing = max(0, n_needed - new_labels)
    next_at = None if every is None or last is None else last.started_at + dt.timedelta(seconds=every)
    time_ok = next_at is None or next_at <= now
    due = time_ok and (missing == 0 or cold)
    parts = []
    if next_at is not None and not time_ok:
        parts.append(f"at {next_at:%H:%M:%S} UTC")
    if missing and not cold:
        parts.append(f"after {missing} more label{'s' if missing != 1 else ''}")
    return Schedule(True, due, next_at, missing, "due now" if due else "next retrain " + " and ".join(parts))


def retrain_due_projects(engine: Engine, interval_n_labels: int | None = None) -> list[ModelRun]:
    """The scheduler's job: retrain every project whose own schedule says it is due (or, with
    ``interval_n_labels``, every project with a model that got that many new labels)."""
    with session_scope(engine, write=False) as s:
        projects = queue.list_projects(s)
    runs = []
    options = RetrainOptions(worker=f"{SCHEDULER_WORKER}{socket.gethostname()}")
    for project in projects:
        if interval_n_labels is None:
            run = retrain_project(engine, project, options) if project_schedule(engine, project).due else None
        elif has_in_app_model(project):
            run = retrain_if_due(engine, project.id, interval_n_labels, options)
        else:
            run = None
        if run is not None:
            runs.append(run)
    return runs


def start_background_scheduler(engine: Engine, tick_seconds: float = 5.0):  # noqa: ANN201 - apscheduler's BackgroundScheduler
    """One scheduler per server process, checking every ``tick_seconds`` which projects are due."""
    from apscheduler.schedulers.background import BackgroundScheduler
    from apscheduler.triggers.interval import IntervalTrigger

    scheduler = BackgroundScheduler(timezone=dt.timezone.utc)
    scheduler.add_job(retrain_due_projects, IntervalTrigger(seconds=tick_seconds), args=[engine], id="retrain-due-projects",
                      coalesce=True, max_instances=1, replace_existing=True)
    add_delivery_job(scheduler, engine)  # webhooks: send the outbox's due deliveries every webhook_tick_seconds
    scheduler.start()
    return scheduler
