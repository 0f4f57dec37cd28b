"""Figures people compare, as pandas frames: labels over time, per user, per class, per hour. No Streamlit."""

from __future__ import annotations

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


def runs_frame(runs: list[ModelRun]) -> pd.DataFrame:
    """Model runs, oldest first: when, status, labels used, score and spread, duration, message."""
    return pd.DataFrame([{
        "run": r.id, "started_at": r.started_at, "status": r.status, "labels": r.n_labels, "score": r.score_mean,
        "spread": r.score_std, "ranked": r.n_ranked,
        "seconds": None if r.finished_at is None else round((r.finished_at - r.started_at).total_seconds(), 2),
        "acquisition": r.acquisition_function, "message": (r.message or "").split("\n\n")[0],
    } for r in reversed(runs)], columns=["run", "started_at", "status", "labels", "score", "spread", "ranked", "seconds", "acquisition", "message"])
