"""The Progress page's body: how far a project is, per label, per labeller, over time."""

from __future__ import annotations

import streamlit as st

from superintendent import queue, reports
from superintendent.app import charts, resources
from superintendent.app.login import CurrentUser
from superintendent.app.widgets import project_picker
from superintendent.store import session_scope


def render_page(user: CurrentUser) -> None:
    project = project_picker("progress-project")
    if project is None:
        return
    engine = resources.engine()
    with session_scope(engine, write=False) as s:
        progress = queue.progress(s, project)
    everyone = user.can("admin")
    frame = reports.annotations_frame(engine, project, user_id=None if everyone else user.id)
    a, b, c, d = st.columns(4)
    a.metric("Items", f"{progress.total:,}")
    b.metric("Labelled", f"{progress.labelled:,}", f"{progress.fraction:.0%}", delta_color="off")
    c.metric("Annotations", f"{progress.n_annotations:,}")
    users = reports.per_user(frame)
    d.metric("Your labels" if not everyone else "Labellers", f"{len(frame):,}" if not everyone else f"{len(users):,}")
    st.progress(progress.fraction, text=f"{progress.labelled:,} of {progress.total:,} items have all their labels")
    if progress.per_class:
        st.plotly_chart(charts.per_class_bar(progress.per_class), width="stretch", key="progress-per-class")
    if frame.empty:
        st.info("No labels yet.")
        return
    st.subheader("Labellers" if everyone else "Your pace")
    left, right = st.columns([1, 1])
    left.dataframe(users, hide_index=True, width="stretch",
                   column_config={"labels_per_hour": "labels / hour", "median_seconds": "median s / label"})
    right.plotly_chart(charts.per_user_bar(users), width="stretch", key="progress-per-user")
    st.plotly_chart(charts.timeline_chart(reports.timeline(frame)), width="stretch", key="progress-timeline")
