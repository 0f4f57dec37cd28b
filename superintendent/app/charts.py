"""Plotly figures for the pages (numbers people compare are plotted)."""

from __future__ import annotations

import pandas as pd
import plotly.express as px
import plotly.graph_objects as go


def per_class_bar(per_class: dict[str, int]) -> go.Figure:
    frame = pd.DataFrame({"label": list(per_class), "annotations": list(per_class.values())})
    fig = px.bar(frame, x="label", y="annotations", title="Annotations per label")
    return fig.update_layout(height=320, margin=dict(t=40, b=10))


def per_user_bar(users: pd.DataFrame) -> go.Figure:
    fig = px.bar(users, x="user", y="labels", hover_data=["labels_per_hour", "median_seconds"], title="Labels per labeller")
    return fig.update_layout(height=320, margin=dict(t=40, b=10))


def timeline_chart(timeline: pd.DataFrame) -> go.Figure:
    fig = px.line(timeline, x="created_at", y="labels", color="user", markers=True, title="Labels over time", line_shape="hv")
    return fig.update_layout(height=340, margin=dict(t=40, b=10), xaxis_title="time (UTC)")


def score_chart(runs: pd.DataFrame) -> go.Figure:
    ok = runs[runs["score"].notna()]
    fig = go.Figure(go.Scatter(x=ok["labels"], y=ok["score"], error_y=dict(type="data", array=ok["spread"].fillna(0)),
                               mode="lines+markers", name="cross-validated accuracy"))
    return fig.update_layout(title="Model score vs labels", xaxis_title="labels used", yaxis_title="score (mean ± sd over folds)",
                             height=340, margin=dict(t=40, b=10), yaxis_range=[0, 1.05])


def confusion_heatmap(confusion: dict) -> go.Figure:
    labels = confusion.get("labels", [])
    fig = px.imshow(confusion.get("matrix", []), x=labels, y=labels, text_auto=True, color_continuous_scale="Blues",
                    labels=dict(x="predicted", y="true", color="items"), title="Confusion matrix (cross-validation)")
    return fig.update_layout(height=380, margin=dict(t=40, b=10))
