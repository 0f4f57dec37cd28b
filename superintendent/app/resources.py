"""Per-process resources: the engine and the retrain scheduler (``st.cache_resource``), settings."""

from __future__ import annotations

import time

import streamlit as st
from sqlalchemy.engine import Engine

from superintendent import queue
from superintendent.config import Settings, get_settings
from superintendent.orchestration import start_background_scheduler
from superintendent.store import init_db, make_engine, session_scope


def settings() -> Settings:
    return get_settings()


@st.cache_resource(show_spinner=False)
def get_engine(url: str) -> Engine:
    """One engine (connection pool) per server process and URL; the schema is created or upgraded once."""
    engine = make_engine(url, busy_timeout_seconds=settings().sqlite_busy_timeout_seconds)
    init_db(engine)
    return engine


def engine() -> Engine:
    return get_engine(settings().resolved_database_url())


# How old the Label page's progress counts may be. Counting a project's items on every click cost ~80-115 ms at
# 100k items under load (bench/browser.py); one count per project every few seconds serves every labeller.
PROGRESS_SECONDS = 3.0


@st.cache_resource(ttl=PROGRESS_SECONDS, show_spinner=False, max_entries=1000)  # kept as the object: no pickling
def _progress_counts(url: str, project_id: int) -> tuple[int, int, float]:
    with session_scope(get_engine(url), write=False) as s:
        total, labelled = queue.progress_counts(s, project_id)
    return total, labelled, time.time()


def progress_counts(project_id: int) -> tuple[int, int, float]:
    """(items, finished items, when counted): shared by all sessions of this process, at most PROGRESS_SECONDS old."""
    return _progress_counts(settings().resolved_database_url(), project_id)


def _stop_scheduler(scheduler) -> None:  # noqa: ANN001
    scheduler.shutdown(wait=False)


@st.cache_resource(show_spinner=False, on_release=_stop_scheduler)
def get_scheduler(url: str, tick_seconds: float):  # noqa: ANN201
    """One retrain scheduler per server process; the cross-process lock keeps retrains one per project."""
    return start_background_scheduler(get_engine(url), tick_seconds)


def ensure_scheduler():  # noqa: ANN201 - this process's scheduler, or None when settings turn it off
    s = settings()
    if s.run_scheduler:
        return get_scheduler(s.resolved_database_url(), s.scheduler_tick_seconds)
    return None
