"""The Progress page's body: how far a project is, per label, per labeller, over time, and how far labellers agree.

The agreement figures come from :mod:`superintendent.agreement` (the
statistics: :mod:`superintendent.al.agreement`); this module only lays them
out. Only admins and reviewers see it: a labeller who could watch an
agreement figure move while changing one of their own labels would learn
what the others said about that item, so labellers see none of it.
"""

from __future__ import annotations

import pandas as pd
import plotly.express as px
import plotly.graph_objects as go
import streamlit as st
from sqlalchemy.engine import Engine

from superintendent import agreement, queue, reports
from superintendent.al.agreement import ALPHA, describe
from superintendent.app import charts, render, resources
from superintendent.app.login import CurrentUser
from superintendent.app.widgets import project_picker
from superintendent.store import Project, session_scope

DISAGREEMENT_ROWS = 20


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
    b.metric("Labelled", f"{progress.labelled:,} ({progress.fraction:.0%})", help="items with all their labels, and their share of all items")
    c.metric("Annotations", f"{progress.n_annotations:,}")
    users = reports.per_user(frame)
    d.metric("Your labels" if not everyone else "Labellers", f"{len(frame):,}" if not everyone else f"{len(users):,}")
    st.progress(progress.fraction, text=f"{progress.labelled:,} of {progress.total:,} items have all their labels")
    if progress.per_class:
        st.plotly_chart(charts.per_class_bar(progress.per_class), width="stretch", key="progress-per-class")
    if frame.empty:
        st.info("No labels yet." if everyone else "You have no labels in this project yet.")
    else:
        st.subheader("Labellers" if everyone else "Your pace")
        left, right = st.columns([1, 1])
        left.dataframe(users, hide_index=True, width="stretch",
                       column_config={"labels_per_hour": "labels / hour", "median_seconds": "median s / label"})
        right.plotly_chart(charts.per_user_bar(users), width="stretch", key="progress-per-user")
        st.plotly_chart(charts.timeline_chart(reports.timeline(frame), timezone=st.context.timezone), width="stretch", key="progress-timeline")
    agreement_section(engine, project, user)


# --------------------------------------------------------------------------- agreement


def _figure(value: float | None) -> str:
    return "undefined" if value is None else f"{value:.3f}"


def agreement_section(engine: Engine, project: Project, user: CurrentUser) -> None:
    """The "Agreement" section (admins and reviewers), shown once two labellers have labelled the same item."""
    if not user.can("review"):
        if project.annotations_per_item > 1:
            st.caption("Agreement between labellers is shown to admins and reviewers only, so that nobody's labels "
                       "can sway anyone else's.")
        return
    with st.spinner("Computing agreement..."):
        report = agreement.project_agreement(engine, project, top=DISAGREEMENT_ROWS)
    if report is None:
        if project.annotations_per_item > 1:
            st.caption(f"Each item gets {project.annotations_per_item} labellers: agreement between them shows here "
                       "once two have labelled the same item.")
        return
    score = report.overall
    st.subheader("Agreement")
    a, b, c = st.columns(3)
    a.metric(score.statistic, _figure(score.value), help="1 = perfect agreement, 0 = no better than chance, below 0 = worse than chance")
    b.metric("Items compared", f"{score.n_items:,}", help="items labelled by two or more labellers")
    c.metric("Labellers compared", f"{score.n_labellers:,}")
    notes = [describe(score).capitalize() + "."]
    if score.statistic != ALPHA and report.alpha.value is not None:
        notes.append(f"Krippendorff's alpha on the same labels: {report.alpha.value:.3f}.")
    if project.label_mode == "multi":
        notes.append("Multi-label: each option is compared as a yes/no question, over every item and option.")
    st.caption(" ".join(notes) + " See docs/agreement.md for how to read these figures.")
    left, right = st.columns(2)
    left.plotly_chart(per_labeller_chart(report.per_labeller), width="stretch", key="progress-agreement-labellers")
    right.plotly_chart(per_class_chart(report.per_class, score.statistic), width="stretch", key="progress-agreement-classes")
    if report.pairwise["user_a"].nunique() >= 2:
        st.plotly_chart(pairwise_heatmap(report.pairwise), width="stretch", key="progress-agreement-pairs")
    _disagreement_table(engine, project, report.disagreements)


def _disagreement_table(engine: Engine, project: Project, table: pd.DataFrame) -> None:
    st.markdown("**Items with most disagreement**")
    top = table[(table["disagreement"] > 0) | table["tie"]]
    k = max(2, project.annotations_per_item)
    if top.empty:
        st.success(f"Labellers agree on every item with all its {k} labels." if len(table) else
                   f"No item has all its {k} labels yet.")
        return
    previews = agreement.item_previews(engine, project, top["item_id"])
    shown = pd.DataFrame({
        "item": top["item_id"], "external id": top["external_id"],
        "data": [previews.get(int(i), "") for i in top["item_id"]],
        "votes": [" · ".join(f"{label} {n}" for label, n in votes.items()) for votes in top["votes"]],
        "consensus": top["consensus"], "tie": top["tie"], "disagreement": top["disagreement"],
    })
    st.dataframe(shown, hide_index=True, width="stretch", key="progress-agreement-items",
                 column_config={"disagreement": st.column_config.ProgressColumn("against majority", format="percent", min_value=0, max_value=1),
                                "tie": st.column_config.CheckboxColumn("tie")})
    st.caption(f"Only items with all their {k} labels are listed, so nobody still labelling an item sees its votes. "
               "A tie goes to the label given first. Training and export use the consensus, unless a reviewer "
               "corrected the item.")


def per_labeller_chart(table: pd.DataFrame) -> go.Figure:
    shown = table.assign(kappa=table["kappa"].astype(float), note=table["reason"].where(table["kappa"].isna(), ""),
                         user=table["user"].map(render.chart_text))
    fig = px.bar(shown, x="user", y="kappa", hover_data={"items": True, "agreement": ":.0%", "note": True},
                 title="Each labeller vs the others' majority (Cohen's kappa)")
    lowest = shown["kappa"].min()  # NaN when every kappa is undefined
    bottom = min(-0.1, lowest) if pd.notna(lowest) else -0.1
    charts.categorical(fig, "x")
    return fig.update_layout(height=340, margin={"t": 40, "b": 10}, yaxis_range=[bottom - 0.05, 1.05])


def per_class_chart(table: pd.DataFrame, statistic: str) -> go.Figure:
    long = table.melt(id_vars=["label", "votes"], value_vars=["value", "specific_agreement"], var_name="figure", value_name="score")
    long["score"] = long["score"].astype(float)
    long["figure"] = long["figure"].map({"value": f"{statistic} (this class vs the rest)", "specific_agreement": "specific agreement"})
    long["label"] = long["label"].map(render.chart_text)
    fig = px.bar(long, x="label", y="score", color="figure", barmode="group", hover_data=["votes"], title="Agreement per class")
    charts.categorical(fig, "x")
    return fig.update_layout(height=340, margin={"t": 40, "b": 10}, legend_title_text="", legend={"orientation": "h", "y": -0.2})


def pairwise_heatmap(pairs: pd.DataFrame) -> go.Figure:
    both = pd.concat([pairs, pairs.rename(columns={"user_a": "user_b", "user_b": "user_a"})])
    both = both.assign(user_a=both["user_a"].map(render.chart_text), user_b=both["user_b"].map(render.chart_text))
    matrix = both.pivot(index="user_a", columns="user_b", values="kappa").astype(float)
    fig = px.imshow(matrix, text_auto=".2f", zmin=-1, zmax=1, color_continuous_scale="RdBu",
                    labels={"x": "labeller", "y": "labeller", "color": "kappa"}, title="Cohen's kappa for each pair of labellers")
    charts.categorical(fig, "x")
    charts.categorical(fig, "y")
    return fig.update_layout(height=360, margin={"t": 40, "b": 10})
