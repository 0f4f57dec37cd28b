"""The Model page's body: every run, the latest figures, the stopping signal, the schedule, and "Retrain now" for admins.

The account is re-read from the database on every draw (``login.require("view_model")`` in
``pages/model.py``) and again on "Retrain now" (:func:`superintendent.app.guard.guarded_engine_action`;
a browser session's role may be stale); a retrain is written to the audit log.
"""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
import streamlit as st
from plotly.subplots import make_subplots
from sqlalchemy.engine import Engine

from superintendent import audit, reports
from superintendent.al import stopping
from superintendent.app import charts, render, resources
from superintendent.app.guard import Note, guarded_engine_action
from superintendent.app.login import CurrentUser
from superintendent.app.widgets import project_picker
from superintendent.learning.presets import MODEL_PRESETS, model_for_project
from superintendent.learning.runs import latest_runs, run_numbers
from superintendent.orchestration import project_schedule, retrain_project
from superintendent.store import ModelRun, Project
from superintendent.validation import SuperintendentError


def signals_frame(runs: list[ModelRun], numbers: dict[int, int] | None = None) -> pd.DataFrame:
    """Successful runs, oldest first (numbered within the project by ``numbers``), with the stopping-signal figures each recorded."""
    numbers = numbers or {}
    rows = []
    for r in reversed(runs):
        if r.status != "succeeded":
            continue
        sig = r.signals or {}
        changed = sig.get("changed_fraction")
        rows.append({"run": numbers.get(r.id, r.id), "labels": r.n_labels, "score": r.score_mean,
                     "changed %": None if changed is None else round(100 * changed, 2),
                     "slope (points / 100 labels)": None if sig.get("slope_per_100_labels") is None else round(sig["slope_per_100_labels"], 2),
                     "verdict": sig.get("verdict", "")})
    return pd.DataFrame(rows, columns=["run", "labels", "score", "changed %", "slope (points / 100 labels)", "verdict"])


def stopping_chart(frame: pd.DataFrame) -> go.Figure:
    """Score and changed predictions against labels, on two axes."""
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    scored = frame[frame["score"].notna()]
    fig.add_trace(go.Scatter(x=scored["labels"], y=scored["score"], mode="lines+markers", name="score (cross-validated)"), secondary_y=False)
    changed = frame[frame["changed %"].notna()]
    fig.add_trace(go.Scatter(x=changed["labels"], y=changed["changed %"], mode="lines+markers", name="predictions changed (%)",
                             line={"dash": "dot"}), secondary_y=True)
    fig.add_hline(y=100 * stopping.STABLE_CHANGED, line_dash="dash", line_color="grey", secondary_y=True,
                  annotation_text=f"stable: at most {stopping.STABLE_CHANGED:.0%} changed", annotation_position="top left")
    fig.update_layout(title="Do more labels still help?", height=360, margin={"t": 40, "b": 10}, xaxis_title="labels used",
                      legend={"orientation": "h", "y": -0.25})
    fig.update_yaxes(title_text="score", range=[0, 1.05], secondary_y=False)
    fig.update_yaxes(title_text="predictions changed since previous run (%)", rangemode="tozero", secondary_y=True)
    return fig


def _shown(table: pd.DataFrame) -> pd.DataFrame:
    """A table as people read it: an empty cell, never "None" or "NaN", where a figure is missing."""
    return table.astype(object).where(table.notna(), "")


def render_stopping(runs: list[ModelRun], numbers: dict[int, int] | None = None) -> None:
    """The verdict of the latest successful run, the figures behind it, and their history."""
    latest = next((r for r in runs if r.status == "succeeded" and (r.signals or {}).get("verdict")), None)
    st.subheader("Do more labels still help?")
    if latest is None:
        st.info("No stopping signal yet: it is computed by each successful retrain.")
        return
    sig = latest.signals
    show = {stopping.LEVELLING_OFF: st.success, stopping.MORE_HELP: st.info}.get(sig["verdict"], st.warning)
    show(f"**{sig['verdict'].capitalize()}** (run {(numbers or {}).get(latest.id, latest.id)}, {latest.n_labels} labels)")
    if sig.get("verdict_reason"):
        st.caption(sig["verdict_reason"])
    a, b, c = st.columns(3)
    changed = sig.get("changed_fraction")
    a.metric("Predictions changed since previous run", "-" if changed is None else f"{changed:.1%}",
             help=f"{sig.get('n_changed', 0)} of {sig.get('n_compared', 0)} unlabelled items got a different predicted label"
                  + ("" if sig.get("labels_since_previous") is None else f", after {sig['labels_since_previous']} new labels"))
    slope = sig.get("slope_per_100_labels")
    b.metric("Score gain per 100 labels", "-" if slope is None else f"{slope:+.1f} points",
             help=f"least-squares line through the latest {sig.get('slope_runs', 0)} scored runs")
    c.metric("Labels used", f"{latest.n_labels}")
    frame = signals_frame(runs, numbers)
    if len(frame) >= 1:
        st.plotly_chart(stopping_chart(frame), width="stretch", key="model-stopping")
    st.caption(f"Levelling off means: at most {stopping.STABLE_CHANGED:.0%} of predictions changed in each of the last two runs and the "
               f"score gains less than {stopping.FLAT_SLOPE:g} point per 100 labels (fitted over the last {stopping.SLOPE_RUNS} runs); "
               f"the slope needs {stopping.MIN_SCORED_RUNS} scored runs. Cross-validated scores on actively chosen labels run low, "
               "so both figures must agree.")


def _retrain_now(user: CurrentUser, project: Project) -> ModelRun | None:
    """Check the account, build the model (a bad preset or factory is reported here, before the run), retrain, audit."""
    def retrain(engine: Engine) -> ModelRun | None:
        model_for_project(project)
        return retrain_project(engine, project)

    def note(run: ModelRun | None) -> Note | None:
        if run is None:
            return None
        return Note(audit.AuditAction.model_retrain, project.name, {"run_id": run.id, "status": run.status, "n_labels": run.n_labels})

    return guarded_engine_action(user, "retrain", retrain, audit=note)


def render_page(user: CurrentUser) -> None:
    """The page, for a user ``login.require("view_model")`` has just checked against the database."""
    project = project_picker("model-project")
    if project is None:
        return
    engine = resources.engine()
    schedule = project_schedule(engine, project)
    model_name = project.model_factory or MODEL_PRESETS.get(project.model_preset or "", "none set")
    st.markdown(f"**Model:** {render.text(model_name)}  \n**Acquisition function:** {render.text(project.acquisition_function)} "
                f"(shuffle {project.shuffle_prop:.0%})  \n**Schedule:** {schedule.description}")
    if user.can("retrain"):
        if st.button("Retrain now", key="model-retrain", type="primary"):
            with st.spinner("Retraining: labellers keep working meanwhile..."):
                try:
                    run = _retrain_now(user, project)
                except SuperintendentError as exc:
                    st.error(render.text(exc))
                    run = None
                else:
                    if run is None:
                        st.info("Another retrain of this project is running; its result appears below when it ends.")
            if run is not None:
                (st.success if run.status == "succeeded" else st.warning)(f"Retrain {run.status}" + (f": score {run.score_mean:.3f}" if run.score_mean is not None else ""))
    runs = latest_runs(engine, project)
    if not runs:
        st.info("No model runs yet.")
        return
    numbers = run_numbers(engine, project)
    table = reports.runs_frame(runs, numbers, timezone=st.context.timezone)
    latest = runs[0]
    if latest.status == "failed":
        st.error("The latest run failed:")
        st.code(latest.message or "", language=None, wrap_lines=True)  # the error as it came, shown as plain text
    if table["score"].notna().any():
        st.plotly_chart(charts.score_chart(table), width="stretch", key="model-score")
    render_stopping(runs, numbers)
    st.subheader("Runs")
    zone = st.context.timezone or "UTC"
    st.dataframe(_shown(table).rename(columns={"started": f"started ({zone})"}), hide_index=True, width="stretch")
    scored = next((r for r in runs if r.per_class), None)
    if scored is not None:
        st.subheader(f"Latest per-class figures (run {numbers.get(scored.id, scored.id)}, {scored.n_labels} labels)")
        left, right = st.columns(2)
        left.dataframe(_shown(pd.DataFrame(scored.per_class).T.round(3)), width="stretch")
        right.plotly_chart(charts.confusion_heatmap(scored.confusion), width="stretch", key="model-confusion")
