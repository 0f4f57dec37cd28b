"""The Progress page's body: how far a project is, per label, per labeller, over time, and how far labellers agree.

The agreement figures come from :mod:`superintendent.agreement` (the
statistics: :mod:`superintendent.al.agreement`; spans and boxes projects:
F1 of matched marks, :mod:`superintendent.al.mark_agreement`); this module
only lays them out. Only admins and reviewers see it: a labeller who could watch an
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
from superintendent.al import mark_agreement
from superintendent.al.agreement import ALPHA, describe
from superintendent.al.disagreement import preview
from superintendent.al.mark_agreement import MARK_MODES, MarkAgreementReport
from superintendent.app import charts, render, resources
from superintendent.app.login import CurrentUser
from superintendent.app.widgets import project_picker
from superintendent.store import Project, session_scope

DISAGREEMENT_ROWS = 20
SPAN_MATCH_KEY = "progress-agreement-match"
SPAN_MATCH = {mark_agreement.EXACT: "cover the same characters", mark_agreement.OVERLAP: "overlap"}


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
        st.plotly_chart(charts.per_class_bar(progress.per_class, options=project.options, marks=project.label_mode in MARK_MODES),
                        width="stretch", key="progress-per-class")
    if frame.empty:
        if not everyone:
            st.info("You have no labels in this project yet.")
        elif progress.n_annotations:  # the labels here came with the data (an import): nobody has labelled here yet
            n = progress.n_annotations
            st.info(f"No labels from labellers yet: the {n:,} annotation{'s' if n != 1 else ''} above "
                    f"{'were' if n != 1 else 'was'} imported with the data.")
        else:
            st.info("No labels yet.")
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
    # The spans' match mode is chosen below the heading; a widget's value is in the session state before it is drawn.
    how = st.session_state.get(SPAN_MATCH_KEY) or mark_agreement.EXACT
    with st.spinner("Computing agreement..."):
        report = agreement.project_agreement(engine, project, top=DISAGREEMENT_ROWS, how=how)
    if report is None:
        if project.annotations_per_item > 1:
            st.caption(f"Each item gets {project.annotations_per_item} labellers: agreement between them shows here "
                       "once two have labelled the same item.")
        return
    if isinstance(report, MarkAgreementReport):
        marks_agreement_section(engine, project, report)
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


# --------------------------------------------------------------------------- agreement on spans and boxes


def _percent(value: float | None) -> str:
    return "undefined" if value is None else f"{value:.0%}"


def marks_agreement_section(engine: Engine, project: Project, report: MarkAgreementReport) -> None:
    """F1 of matched marks (spans and boxes projects): kappa does not apply to marks."""
    score = report.overall
    spans = project.label_mode == mark_agreement.SPANS
    st.subheader("Agreement")
    if spans:
        st.segmented_control("Two labellers marked the same span when their spans", list(mark_agreement.HOWS),
                             default=mark_agreement.EXACT, format_func=SPAN_MATCH.get, key=SPAN_MATCH_KEY)
    a, b, c, d = st.columns(4)
    a.metric("F1", _figure(score.value), help="the share of marks two labellers of an item both made: 2 × matched ÷ "
             "(marks of one + marks of the other), over every pair of labellers on every item; 1 = the same marks")
    b.metric("Items compared", f"{score.n_items:,}", help="items marked by two or more labellers")
    c.metric("Labellers compared", f"{score.n_labellers:,}")
    d.metric("Items in full agreement", f"{score.items_agreeing:,} of {score.n_items:,}",
             help="every labeller of the item made the same marks (marking nothing, alike, counts)")
    rule = ("spans match when they cover the same characters" if report.how == mark_agreement.EXACT else
            "spans match when they overlap (each span pairs with at most one)") if spans else \
        "boxes match when they overlap by half or more (intersection over union at least 0.5)"
    said = mark_agreement.describe(score)
    notes = [said[:1].upper() + said[1:] + ".", f"Marks count as the same when their labels are equal and {rule}.",
             "Kappa does not apply here: labellers may mark anything anywhere, so there is no chance agreement to "
             "correct for."]
    if score.items_empty:
        notes.append(f"Everyone marked nothing on {score.items_empty:,} of the items: they add no marks to F1, and "
                     "count as items in full agreement.")
    st.caption(" ".join(notes) + " See docs/agreement.md.")
    left, right = st.columns(2)
    left.plotly_chart(marks_per_labeller_chart(report.per_labeller), width="stretch", key="progress-agreement-labellers")
    right.plotly_chart(marks_per_label_chart(report.per_label), width="stretch", key="progress-agreement-classes")
    if report.pairwise["user_a"].nunique() >= 2:
        st.plotly_chart(marks_pairwise_heatmap(report.pairwise), width="stretch", key="progress-agreement-pairs")
    _marks_disagreement_table(engine, project, report.disagreements)


def _marks_disagreement_table(engine: Engine, project: Project, table: pd.DataFrame) -> None:
    st.markdown("**Items with most disagreement**")
    top = table[(table["disagreement"] > 0) | table["tie"]]
    k = max(2, project.annotations_per_item)
    if top.empty:
        st.success(f"Labellers made the same marks on every item with all its {k} labels." if len(table) else
                   f"No item has all its {k} labels yet.")
        return
    data = agreement.item_data(engine, project, top["item_id"])
    shown = pd.DataFrame({
        "item": top["item_id"], "external id": top["external_id"],
        "data": [preview(data.get(int(i)), 60) for i in top["item_id"]],
        "marks": [" · ".join(f"{user} {n}" for user, n in marks.items()) for marks in top["marks"]],
        "consensus": [mark_agreement.marks_text(m, project.label_mode, data.get(int(i)), empty="no mark has a majority")
                      for i, m in zip(top["item_id"], top["consensus"])],
        "tie": top["tie"], "f1": top["f1"].astype(float),
    })
    st.dataframe(shown, hide_index=True, width="stretch", key="progress-agreement-items",
                 column_config={"item": st.column_config.NumberColumn("item", width=45),
                                "external id": st.column_config.TextColumn("external id", width=75),
                                "data": st.column_config.TextColumn("data", width=170),
                                "marks": st.column_config.TextColumn("marks per labeller", width=130),
                                "consensus": st.column_config.TextColumn("consensus", width=250),
                                "tie": st.column_config.CheckboxColumn("tie", width=40),
                                "f1": st.column_config.ProgressColumn("item F1", format="%.2f", min_value=0, max_value=1, width=90)})
    st.caption(f"Only items with all their {k} labels are listed, so nobody still labelling an item sees its marks. "
               "The consensus is every mark more than half of the item's labellers made (spans matched exactly, boxes "
               "at IoU 0.5); a mark made by exactly half is a tie, left out, and the item is listed under \"Only ties\" "
               "on the Review page. Training and export use the consensus, unless a reviewer corrected the item.")


def marks_per_labeller_chart(table: pd.DataFrame) -> go.Figure:
    shown = table.assign(f1=table["f1"].astype(float), user=table["user"].map(render.chart_text),
                         precision=table["precision"].astype(float), recall=table["recall"].astype(float))
    fig = px.bar(shown, x="user", y="f1", hover_data={"items": True, "marks": True, "precision": ":.0%", "recall": ":.0%"},
                 labels={"f1": "F1", "user": "labeller", "precision": "their marks the others made too",
                         "recall": "the others' marks they made too"},
                 title="Each labeller vs the others (F1)", text_auto=".2f")
    charts.categorical(fig, "x")
    fig.update_traces(textposition="outside", cliponaxis=False)  # a value of 0 shows "0.00", not an empty column
    return fig.update_layout(height=340, margin={"t": 40, "b": 10}, yaxis_range=[0, 1.1])


def marks_per_label_chart(table: pd.DataFrame) -> go.Figure:
    shown = table.assign(f1=table["f1"].astype(float), label=table["label"].map(render.chart_text))
    fig = px.bar(shown, x="label", y="f1", hover_data={"marks": True, "matched": True},
                 labels={"f1": "F1", "marks": "marks compared", "matched": "marks matched"}, title="F1 per label", text_auto=".2f")
    charts.categorical(fig, "x")
    fig.update_traces(textposition="outside", cliponaxis=False)  # a value of 0 shows "0.00", not an empty column
    return fig.update_layout(height=340, margin={"t": 40, "b": 10}, yaxis_range=[0, 1.1])


def marks_pairwise_heatmap(pairs: pd.DataFrame) -> go.Figure:
    both = pd.concat([pairs, pairs.rename(columns={"user_a": "user_b", "user_b": "user_a"})])
    both = both.assign(user_a=both["user_a"].map(render.chart_text), user_b=both["user_b"].map(render.chart_text))
    matrix = both.pivot(index="user_a", columns="user_b", values="f1").astype(float)
    fig = px.imshow(matrix, text_auto=".2f", zmin=0, zmax=1, color_continuous_scale="RdBu",
                    labels={"x": "labeller", "y": "labeller", "color": "F1"}, title="F1 for each pair of labellers")
    charts.categorical(fig, "x")
    charts.categorical(fig, "y")
    return fig.update_layout(height=360, margin={"t": 40, "b": 10})
