"""Figures people compare, as pandas frames: labels over time, per user, per class, per hour. No Streamlit."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import pandas as pd
from sqlalchemy.engine import Engine

from superintendent.export.tables import annotations_frame as _annotations
from superintendent.store import ModelRun, Project


def annotations_frame(engine: Engine, project: Project, *, user_id: int | None = None) -> pd.DataFrame:
    """One row per human annotation, oldest first: user, label (as text, ``a;b`` for several), created_at (UTC), time_taken_s."""
    frame = _annotations(engine, project, user_id=user_id, include_import=False)
    out = frame[["user", "label", "created_at", "time_taken_s"]].copy()
    out["label"] = [";".join(map(str, v)) if isinstance(v, list) else str(v) for v in frame["label"]]
    return out


def per_user(frame: pd.DataFrame) -> pd.DataFrame:
    """Labels, labels per hour (over each user's active span, at least one minute) and median seconds per label."""
    if frame.empty:
        return pd.DataFrame(columns=["user", "labels", "labels_per_hour", "median_seconds"])
    grouped = frame.groupby("user")
    span_h = (grouped["created_at"].max() - grouped["created_at"].min()).dt.total_seconds().clip(lower=60) / 3600
    out = pd.DataFrame({"labels": grouped.size(), "labels_per_hour": (grouped.size() / span_h).round(1),
                        "median_seconds": grouped["time_taken_s"].median().round(2)})
    return out.reset_index().sort_values("labels", ascending=False)


def timeline(frame: pd.DataFrame, freq: str = "min") -> pd.DataFrame:
    """Cumulative labels per user over time (bins of ``freq``)."""
    if frame.empty:
        return pd.DataFrame(columns=["created_at", "user", "labels"])
    counts = frame.groupby([pd.Grouper(key="created_at", freq=freq), "user"]).size().rename("n").reset_index()
    counts["labels"] = counts.groupby("user")["n"].cumsum()
    return counts[["created_at", "user", "labels"]]


def readable_time(when: dt.datetime | None, timezone: str | None = None) -> str:
    """``2026-11-30 14:05:09`` in ``timezone`` (an IANA name such as the browser's; UTC when None or unknown); "" for None."""
    if when is None:
        return ""
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.timezone.utc)
    try:
        zone = ZoneInfo(timezone) if timezone else dt.timezone.utc
    except (ZoneInfoNotFoundError, ValueError):
        zone = dt.timezone.utc
    return when.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S")


def runs_frame(runs: list[ModelRun], numbers: dict[int, int] | None = None, timezone: str | None = None) -> pd.DataFrame:
    """Model runs, oldest first: number within the project (``numbers``, by run id), when (readable, in ``timezone``),
    status, labels used, score and spread, duration, message."""
    numbers = numbers or {}
    return pd.DataFrame([{
        "run": numbers.get(r.id, r.id), "started": readable_time(r.started_at, timezone), "status": r.status, "labels": r.n_labels, "score": r.score_mean,
        "spread": r.score_std, "ranked": r.n_ranked,
        "seconds": None if r.finished_at is None else round((r.finished_at - r.started_at).total_seconds(), 2),
        "acquisition": r.acquisition_function, "message": (r.message or "").split("\n\n")[0],
    } for r in reversed(runs)], columns=["run", "started", "status", "labels", "score", "spread", "ranked", "seconds", "acquisition", "message"])
