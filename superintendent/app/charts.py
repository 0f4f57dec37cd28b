"""Plotly figures for the pages (numbers people compare are plotted).

Two rules for every axis: a categorical axis (labels such as the digits
0-9, user names, a confusion matrix's classes) shows every category, each
as itself (``type="category"``: "3" is a class, not a number between 2
and 4); a count axis ticks at whole numbers only (no 3.86 labels).
"""

from __future__ import annotations

from collections.abc import Iterable

import pandas as pd
import plotly.express as px
import plotly.graph_objects as go

from superintendent.app.render import chart_text

_MAX_UNIT_TICKS = 10  # up to this many, a count axis ticks at every whole number


def categorical(fig: go.Figure, axis: str = "x") -> go.Figure:
    """Every category on ``axis`` ("x" or "y") labelled, as text, in the order given."""
    update = fig.update_xaxes if axis == "x" else fig.update_yaxes
    return update(type="category", tickmode="linear", dtick=1, automargin=True)


def whole_numbers(fig: go.Figure, values: Iterable[float], axis: str = "y") -> go.Figure:
    """A count axis: ticks at whole numbers only (every one while the largest count is small), from zero."""
    top = max((float(v) for v in values if pd.notna(v)), default=0.0)
    update = fig.update_yaxes if axis == "y" else fig.update_xaxes
    if top <= _MAX_UNIT_TICKS:
        return update(tickmode="linear", tick0=0, dtick=1, tickformat=",d", rangemode="tozero")
    return update(tickformat=",d", rangemode="tozero")  # plotly's own ticks, at round numbers; ",d" drops any fraction


def label_count_axis(fig: go.Figure, values: Iterable[float]) -> go.Figure:
    """The "labels used" axis of run charts: while the runs sit at a few label counts, a tick at each of them (with
    plotly's own ticks, one run at 300 labels read "299, 300, 300, 301": fractions rounded by ",d"); else round numbers."""
    counts = sorted({int(v) for v in values if pd.notna(v)})
    if len(counts) <= _MAX_UNIT_TICKS:
        return fig.update_xaxes(tickmode="array", tickvals=counts, ticktext=[f"{c:,}" for c in counts])
    return fig.update_xaxes(tickformat=",d")


def per_class_bar(per_class: dict[str, int], *, options: Iterable[object] = (), marks: bool = False) -> go.Figure:
    """Annotations per label; in a spans or boxes project (``marks``) the spans or boxes given each label.

    The project's ``options`` come first, in their order, each with its bar even at 0 (an option nobody has used yet is
    shown, not left out as if it were gone); labels that are no option (free text) follow, in ``per_class``'s order.
    """
    counts = {str(o): 0 for o in options}
    counts.update((str(k), v) for k, v in per_class.items())
    frame = pd.DataFrame({"label": [chart_text(k) for k in counts], "annotations": list(counts.values())})
    fig = px.bar(frame, x="label", y="annotations", title="Marks per label" if marks else "Annotations per label",
                 labels={"annotations": "marks"} if marks else None)
    categorical(fig, "x")
    whole_numbers(fig, frame["annotations"])
    return fig.update_layout(height=320, margin=dict(t=40, b=10))


def per_user_bar(users: pd.DataFrame) -> go.Figure:
    fig = px.bar(users.assign(user=users["user"].map(chart_text)), x="user", y="labels",
                 hover_data=["labels_per_hour", "median_seconds"], title="Labels per labeller")
    categorical(fig, "x")
    whole_numbers(fig, users["labels"])
    return fig.update_layout(height=320, margin=dict(t=40, b=10))


def timeline_chart(timeline: pd.DataFrame, timezone: str | None = None) -> go.Figure:
    """Cumulative labels per user; times shown in ``timezone`` (an IANA name, e.g. the browser's), else UTC."""
    shown = timeline
    if timezone and not timeline.empty and isinstance(timeline["created_at"].dtype, pd.DatetimeTZDtype):
        try:
            shown = timeline.assign(created_at=timeline["created_at"].dt.tz_convert(timezone))
        except (KeyError, ValueError):  # an unknown zone name: stay in UTC
            timezone = None
    shown = shown.assign(user=shown["user"].map(chart_text))
    fig = px.line(shown, x="created_at", y="labels", color="user", markers=True, title="Labels over time", line_shape="hv")
    whole_numbers(fig, timeline["labels"])
    fig.update_xaxes(tickformat="%H:%M\n%b %d", hoverformat="%Y-%m-%d %H:%M")
    return fig.update_layout(height=340, margin=dict(t=40, b=10), xaxis_title=f"time ({timezone or 'UTC'})")


def score_chart(runs: pd.DataFrame) -> go.Figure:
    """Each scored run's cross-validated score against its labels, with its spread over folds (mean +- sd, cut at 0 and
    1: a score of 0.83 +- 0.24 over few labels reaches 1, not 1.07, which no score can be)."""
    ok = runs[runs["score"].notna()]
    spread = ok["spread"].fillna(0)
    fig = go.Figure(go.Scatter(x=ok["labels"], y=ok["score"], mode="lines+markers", name="cross-validated accuracy",
                               error_y=dict(type="data", symmetric=False, array=spread.clip(upper=1 - ok["score"]).clip(lower=0),
                                            arrayminus=spread.clip(upper=ok["score"]).clip(lower=0))))
    label_count_axis(fig, ok["labels"])
    return fig.update_layout(title="Model score vs labels", xaxis_title="labels used", yaxis_title="score (mean ± sd over folds)",
                             height=340, margin=dict(t=40, b=10), yaxis_range=[0, 1.05])


def confusion_heatmap(confusion: dict) -> go.Figure:
    labels = [chart_text(label) for label in confusion.get("labels", [])]
    fig = px.imshow(confusion.get("matrix", []), x=labels, y=labels, text_auto=True, color_continuous_scale="Blues",
                    labels=dict(x="predicted", y="true", color="items"), title="Confusion matrix (cross-validation)")
    categorical(fig, "x")
    categorical(fig, "y")
    return fig.update_layout(height=380, margin=dict(t=40, b=10))
