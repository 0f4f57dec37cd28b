"""Imports off the page's thread: one worker thread per import, its progress, its result or error, and a cancel.

:func:`start_import` runs :func:`superintendent.importing.import_prepared`
in a thread of its own and returns an :class:`ImportJob` at once; the page
asks it for a :class:`JobStatus` (the fraction done, the phase, the items
written so far) as often as it likes, and may :meth:`ImportJob.cancel` it.

Cancelling imports nothing: ``import_prepared`` writes in ONE transaction
and calls ``progress(fraction)`` between its chunks, so the job's progress
callback raises :class:`Cancelled` there and the transaction is rolled
back. Once the last chunk is written (the named annotators' labels and the
commit remain) the import can no longer be stopped and ends as it would.

``guard`` wraps the work on the worker thread, so whatever it checks
happens when the import starts (the page re-checks the account there and
writes the audit entry when the import has succeeded:
:func:`superintendent.app.guard.guarded_engine_action`).

Jobs live in this server process only (an admin's websocket stays on one
replica); finished jobs are forgotten :data:`KEEP_FINISHED_SECONDS` after
they end. No streamlit here.
"""

from __future__ import annotations

import enum
import math
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy.engine import Engine

from superintendent import importing, queue
from superintendent.ingest.prepared import PreparedImport
from superintendent.store.models import Project
from superintendent.validation import SuperintendentError

__all__ = ["Act", "Cancelled", "Guard", "ImportJob", "JobState", "JobStatus", "Phase", "get_job", "start_import"]

KEEP_FINISHED_SECONDS = 3600.0  # a finished job's outcome stays readable this long (the admin may come back to the tab)
ROWS_PER_CHUNK = 5000  # the import reports progress (and can be cancelled) about this often
MAX_CHUNKS = 200

Act = Callable[[Engine], queue.AddResult]
Guard = Callable[[Act], queue.AddResult]  # runs ``act(engine)`` (after its checks) and returns what it returned


class Cancelled(SuperintendentError):
    """The import was cancelled before its last chunk: its transaction was rolled back and nothing was imported."""


class JobState(str, enum.Enum):
    running = "running"
    done = "done"
    cancelled = "cancelled"
    failed = "failed"


class Phase(str, enum.Enum):
    checking = "checking"  # the account (guard), then the labels against the project's settings, before the first chunk
    importing = "importing"
    finishing = "saving"  # the last chunk is written: annotations and the commit remain, no cancel any more
    ended = "ended"


@dataclass(frozen=True)
class JobStatus:
    """A snapshot of an import: ``done_items`` of ``total_items`` written so far (in its open transaction)."""

    job_id: str
    state: JobState
    phase: Phase
    fraction: float
    done_items: int
    total_items: int
    cancel_requested: bool
    result: queue.AddResult | None = None
    error: str | None = None
    seconds: float = 0.0

    @property
    def running(self) -> bool:
        return self.state is JobState.running


class ImportJob:
    """One import in its worker thread. Thread-safe: the page's thread reads and cancels, the worker writes."""

    def __init__(self, job_id: str, total_items: int, on_progress: Callable[[float], object] | None = None) -> None:
        self.job_id = job_id
        self.total_items = total_items
        self._on_progress = on_progress
        self._lock = threading.Lock()
        self._cancel = threading.Event()
        self._finished = threading.Event()
        self._state = JobState.running
        self._phase = Phase.checking
        self._fraction = 0.0
        self._result: queue.AddResult | None = None
        self._error: str | None = None
        self._started = time.monotonic()
        self._ended: float | None = None
        self._thread: threading.Thread | None = None

    def status(self) -> JobStatus:
        with self._lock:
            end = self._ended if self._ended is not None else time.monotonic()
            return JobStatus(self.job_id, self._state, self._phase, self._fraction, round(self._fraction * self.total_items),
                             self.total_items, self._cancel.is_set(), self._result, self._error, end - self._started)

    def cancel(self) -> None:
        """Ask the import to stop at its next chunk (nothing is imported); no effect once it is saving or has ended."""
        self._cancel.set()

    def wait(self, timeout: float | None = None) -> JobStatus:
        """The status once the job has ended (or ``timeout`` seconds have passed)."""
        self._finished.wait(timeout)
        return self.status()

    def _progress(self, fraction: float) -> None:
        """``import_prepared``'s progress callback, between chunks, inside its transaction: raising rolls it back."""
        if self._cancel.is_set():
            raise Cancelled("the import was cancelled; nothing was imported")
        with self._lock:
            self._fraction = min(1.0, max(self._fraction, float(fraction)))
            self._phase = Phase.finishing if fraction >= 1.0 else Phase.importing
        if self._on_progress is not None:
            self._on_progress(fraction)

    def _run(self, work: Callable[[], queue.AddResult]) -> None:
        state, result, error = JobState.failed, None, None
        try:
            if self._cancel.is_set():
                raise Cancelled("the import was cancelled before it started; nothing was imported")
            result, state = work(), JobState.done
        except Cancelled:
            state = JobState.cancelled
        except SuperintendentError as exc:
            error = str(exc)
        except Exception as exc:  # noqa: BLE001 - the worker's last word: a message for the page, never a silent thread death
            error = f"the import failed unexpectedly ({type(exc).__name__}: {str(exc)[:300]}); nothing was imported"
        with self._lock:
            self._state, self._result, self._error = state, result, error
            self._phase = Phase.ended
            if state is JobState.done:
                self._fraction = 1.0
            self._ended = time.monotonic()
        self._finished.set()


_jobs: dict[str, ImportJob] = {}
_jobs_lock = threading.Lock()


def _forget_old(now: float) -> None:
    """Drop jobs that ended more than KEEP_FINISHED_SECONDS ago (called with the registry's lock held)."""
    for job_id, job in list(_jobs.items()):
        ended = job._ended
        if ended is not None and now - ended > KEEP_FINISHED_SECONDS:
            del _jobs[job_id]


def get_job(job_id: str | None) -> ImportJob | None:
    """The job of that id in this server process, or None (never started here, or finished and forgotten)."""
    with _jobs_lock:
        _forget_old(time.monotonic())
        return _jobs.get(job_id) if job_id is not None else None


def start_import(engine: Engine, project: Project | str | int, prepared: PreparedImport, *, user_map: importing.UserMap | None = None,
                 guard: Guard | None = None, on_progress: Callable[[float], object] | None = None) -> ImportJob:
    """Start importing ``prepared`` into ``project`` in a new worker thread; returns its :class:`ImportJob` at once.

    The import is :func:`superintendent.importing.import_prepared` (one
    transaction, ``user_map`` as there), reporting progress about every
    :data:`ROWS_PER_CHUNK` items. ``guard(act)``, if given, is called on the
    worker thread and must call ``act(engine)`` after its own checks and
    return its result (see the module's docstring). ``on_progress(fraction)``
    is called on the worker thread after each chunk (e.g. to print progress).
    """
    n = prepared.n_rows
    n_chunks = min(MAX_CHUNKS, max(1, math.ceil(n / ROWS_PER_CHUNK)))

    def act(eng: Engine) -> queue.AddResult:
        return importing.import_prepared(eng, project, prepared, progress=job._progress, n_chunks=n_chunks, user_map=user_map)

    def work() -> queue.AddResult:
        return guard(act) if guard is not None else act(engine)

    with _jobs_lock:
        _forget_old(time.monotonic())
        job = ImportJob(f"import-{uuid.uuid4().hex[:16]}", n, on_progress)
        _jobs[job.job_id] = job
    thread = threading.Thread(target=job._run, args=(work,), name=f"superintendent-{job.job_id}", daemon=True)
    job._thread = thread
    thread.start()
    return job
