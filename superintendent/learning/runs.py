"""Every query on model runs (:class:`~superintendent.store.ModelRun`), in one place.

A run is recorded ``running`` when a retrain starts (:func:`start_run`) and
ends ``succeeded``, ``skipped`` or ``failed`` (:func:`finish_run`); runs a
dead process left ``running`` are closed by :func:`close_abandoned_runs`.

Functions taking an ``engine`` are one transaction each; those taking a
``session`` join the caller's transaction (e.g. the scheduler reads a
project's label count and its last run in one snapshot).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session

from superintendent.store import ModelRun, Project, RunStatus, session_scope, utcnow
from superintendent.webhooks import events as webhook_events

__all__ = ["close_abandoned_runs", "earlier_successes", "finish_run", "last_finished_n_labels", "last_success_started", "latest_run",
           "latest_runs", "run_numbers", "running_run", "start_run"]

ABANDONED = "abandoned: the process running it stopped"


def _newest_first(query: sa.Select) -> sa.Select:
    return query.order_by(ModelRun.started_at.desc(), ModelRun.id.desc())


def start_run(engine: Engine, project: Project, *, worker: str = "", acquisition_function: str = "") -> int:
    """Record a new ``running`` run of the project; returns its id."""
    with session_scope(engine) as s:
        run = ModelRun(project_id=project.id, worker=worker, acquisition_function=acquisition_function)
        s.add(run)
        s.flush()
        return run.id


def finish_run(engine: Engine, run_id: int, **fields: Any) -> ModelRun:
    """Set a run's fields (its status, figures, message, ...) and its finishing time; returns the run."""
    with session_scope(engine) as s:
        run = s.get(ModelRun, run_id)
        for key, value in fields.items():
            setattr(run, key, value)
        run.finished_at = utcnow()
        s.add(run)
        if run.status != RunStatus.running.value:  # announced to the project's webhooks in the same transaction
            webhook_events.enqueue_run_finished(s, run)
    return run


def close_abandoned_runs(engine: Engine, project_id: int) -> None:
    """Mark the project's ``running`` runs failed: call it only while holding the project's retrain lock, so none is live."""
    with session_scope(engine) as s:
        s.execute(
            sa.update(ModelRun).where(ModelRun.project_id == project_id, ModelRun.status == RunStatus.running.value)
            .values(status=RunStatus.failed.value, finished_at=utcnow(), message=ABANDONED)
        )


def latest_runs(engine: Engine, project: Project, limit: int = 100) -> list[ModelRun]:
    """The project's runs, newest first (the Model page, ``Superintendent.model_runs``)."""
    with session_scope(engine, write=False) as s:
        return list(s.execute(_newest_first(sa.select(ModelRun).where(ModelRun.project_id == project.id)).limit(limit)).scalars())


def run_numbers(engine: Engine, project: Project) -> dict[int, int]:
    """Each run's number within its project (1 for its first run, 2 for the next...), by run id: what pages show."""
    number = sa.func.row_number().over(order_by=(ModelRun.started_at, ModelRun.id))
    with session_scope(engine, write=False) as s:
        return {int(i): int(n) for i, n in s.execute(sa.select(ModelRun.id, number).where(ModelRun.project_id == project.id))}


def latest_run(session: Session, project: Project) -> ModelRun | None:
    """The project's newest run, whatever its status, or None."""
    return session.execute(_newest_first(sa.select(ModelRun).where(ModelRun.project_id == project.id)).limit(1)).scalar_one_or_none()


def running_run(session: Session, project_id: int) -> ModelRun | None:
    """The project's newest ``running`` run, or None. A dead process may have left one behind: whether a retrain
    really runs is the retrain lock's answer (:func:`superintendent.retrain_lock.retrain_lock_held`)."""
    return session.execute(_newest_first(
        sa.select(ModelRun).where(ModelRun.project_id == project_id, ModelRun.status == RunStatus.running.value)).limit(1)
    ).scalar_one_or_none()


def last_finished_n_labels(session: Session, project: Project) -> int | None:
    """How many labels the project's newest finished (not ``running``) run used, or None if there is none."""
    return session.execute(
        _newest_first(sa.select(ModelRun.n_labels).where(ModelRun.project_id == project.id, ModelRun.status != RunStatus.running.value))
        .limit(1)
    ).scalar_one_or_none()


def last_success_started(session: Session, project: Project) -> dt.datetime | None:
    """When the project's newest successful run started, or None (a running retrain is not one yet)."""
    return session.execute(_newest_first(
        sa.select(ModelRun.started_at).where(ModelRun.project_id == project.id, ModelRun.status == RunStatus.succeeded.value)).limit(1)
    ).scalar_one_or_none()


def earlier_successes(engine: Engine, project: Project, run_id: int, limit: int = 20) -> list[dict[str, Any]]:
    """The project's latest successful runs other than ``run_id``, oldest first, as the stopping signal needs them."""
    with session_scope(engine, write=False) as s:
        rows = s.execute(_newest_first(
            sa.select(ModelRun.n_labels, ModelRun.score_mean, ModelRun.signals)
            .where(ModelRun.project_id == project.id, ModelRun.id != run_id, ModelRun.status == RunStatus.succeeded.value)
        ).limit(limit)).all()
    return [{"n_labels": n, "score": score, "changed_fraction": (signals or {}).get("changed_fraction")}
            for n, score, signals in reversed(rows)]
