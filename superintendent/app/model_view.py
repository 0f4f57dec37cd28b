"""The Model page's body: every run, the latest figures, the stopping signal, the schedule, and "Retrain now" for admins.

The account is re-read from the database on every draw (``login.require("view_model")`` in
``pages/model.py``) and again on "Retrain now" (:func:`superintendent.app.guard.guarded_engine_action`;
a browser session's role may be stale). "Retrain now" returns at once: the retrain runs in the background
(:mod:`superintendent.retrain_requests`), a fragment shows its phase and progress while the rest of the page
stays usable, and the page redraws with the result when it ends; it is written to the audit log then.
"""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
import streamlit as st
from plotly.subplots import make_subplots
from sqlalchemy.engine import Engine

from superintendent import reports
from superintendent.al import stopping
from superintendent.al.acquisition import split_name
from superintendent.app import charts, render, resources, state
from superintendent.app.guard import guarded_engine_action
from superintendent.app.login import CurrentUser
from superintendent.app.widgets import project_picker
from superintendent.learning.presets import MODEL_PRESETS, preset_description
from superintendent.learning.retrain import PHASES, RetrainProgress
from superintendent.learning.runs import latest_runs, run_numbers
from superintendent.marks import is_marks
from superintendent.orchestration import project_schedule
from superintendent.retrain_requests import RetrainJob, RetrainRequest, RunningRetrain, fraction_done, request_retrain, running_retrain
from superintendent.store import ModelRun, Project
from superintendent.validation import SuperintendentError

PROGRESS_EVERY = 1.0  # seconds between two looks at a running retrain
PHASE_TEXT = {  # RetrainProgress.phase, as the progress bar says it
    "read_labelled": "reading the labelled items", "preprocess": "preparing the features",
    "evaluate": "evaluating the model (cross-validation)", "fit": "fitting the model", "predict": "scoring the unlabelled items",
    "rank": "ranking the unlabelled items", "write": "writing the new order of the queue",
    "signals": "working out whether more labels still help",
}


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
    return charts.label_count_axis(fig, frame["labels"])


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


def _retrain_now(user: CurrentUser, project: Project) -> RetrainRequest:
    """Check the account now, then start a retrain in the background (a bad preset or factory is reported here,
    before it starts); the worker writes the audit entry when it ends."""
    def request(engine: Engine) -> RetrainRequest:
        return request_retrain(engine, project, requested_by=user.username, scheduler=resources.ensure_scheduler())

    return guarded_engine_action(user, "retrain", request)


def _clock(when) -> str:  # noqa: ANN001 - a datetime
    """HH:MM in the browser's time zone."""
    return reports.readable_time(when, st.context.timezone)[11:16]


def _started(running: RunningRetrain) -> str:
    """"started 07:12 by boss", as Markdown (the name shown as it is)."""
    by = f" by {render.text(running.by)}" if running.by else ""
    return ("started a moment ago" if running.started_at is None else f"started {_clock(running.started_at)}") + by


def _phase_text(progress: RetrainProgress | None) -> str:
    """"Retraining, step 5 of 8: scoring the unlabelled items (10,000 of 49,700)"."""
    if progress is None:
        return "Retraining: waiting for a free worker"
    step = f"step {PHASES.index(progress.phase) + 1} of {len(PHASES)}: " if progress.phase in PHASES else ""
    counts = f" ({progress.done:,} of {progress.total:,})" if progress.total else ""
    return f"Retraining, {step}{PHASE_TEXT.get(progress.phase, progress.phase)}{counts}"


@st.fragment(run_every=PROGRESS_EVERY)
def _retrain_progress(project: Project, phase_seconds: dict[str, float]) -> None:
    """The running retrain's phase and progress, looked at every PROGRESS_EVERY seconds; when it ends, the whole page again."""
    running = running_retrain(resources.engine(), project.id)
    if running is None:
        st.rerun()  # the whole page: the result, the new run in the table and charts
    if running.job is None:
        st.info(f"A retrain of this project is running in another process ({_started(running)}); this page shows its result "
                "when it ends.", icon=":material/progress_activity:")
        return
    progress = running.job.progress
    st.progress(fraction_done(progress, phase_seconds), text=_phase_text(progress))
    st.caption(f"This retrain {_started(running)}. Labelling goes on meanwhile, and this page stays usable.")


def _show_result(project: Project) -> None:
    """The result of the retrain this session started for ``project``, once it ended (shown once)."""
    mine: dict[int, RetrainJob] = st.session_state.setdefault(state.RETRAINS, {})
    job = mine.get(project.id)
    if job is None or not job.finished:
        return
    del mine[project.id]
    run = job.run
    if run is None:
        st.error(render.text(f"The retrain stopped before its end ({job.error}). Try again; if it keeps failing, the server's log "
                             "says why."))
        return
    if run.status == "skipped":
        return  # the page says why, under "The latest run was skipped"
    (st.success if run.status == "succeeded" else st.warning)(f"Retrain {run.status}" + (f": score {run.score_mean:.3f}" if run.score_mean is not None else ""))


ROUND_SOURCES = {"set": "set for the project", "expected": "the labels expected before the next retrain",
                 "default": "the default: no recent labels to size them by"}


def _rounds(project: Project, runs: list[ModelRun]) -> str:
    """For a diverse order, the round size its latest successful retrain used and where it came from; else nothing."""
    if not split_name(project.acquisition_function)[1]:
        return ""
    signals = next((r.signals or {} for r in runs if r.status == "succeeded"), {})
    window = signals.get("diversity_window")
    if window is None:
        return ""
    source = ROUND_SOURCES.get(signals.get("diversity_window_source", ""))
    return f", in rounds of {window} item{'s' if window != 1 else ''}" + (f" ({source})" if source else "")


def render_page(user: CurrentUser) -> None:
    """The page, for a user ``login.require("view_model")`` has just checked against the database."""
    project = project_picker("model-project")
    if project is None:
        return
    engine = resources.engine()
    schedule = project_schedule(engine, project)
    model_name = project.model_factory or (preset_description(project.model_preset) if project.model_preset in MODEL_PRESETS
                                           else "none set")
    if project.label_mode == "spans":  # the acquisition function is a classification setting: spans have their own order
        order = "the model's doubt per text (its words' tag entropy, added up); score: entity F1"
    elif project.label_mode == "boxes":
        order = "the lowest score among an item's predicted boxes, least sure first"
    else:
        order = f"{render.text(project.acquisition_function)} (shuffle {project.shuffle_prop:.0%})"
    header = st.empty()  # filled once the runs are read below (a diverse order's rounds come from the latest run)
    if user.can("retrain"):
        if st.button("Retrain now", key="model-retrain", type="primary"):
            try:
                request = _retrain_now(user, project)
            except SuperintendentError as exc:
                st.error(render.text(exc))
            else:
                if request.started:
                    st.session_state.setdefault(state.RETRAINS, {})[project.id] = request.job
                else:
                    st.info(f"A retrain of this project is already running ({_started(request.running)}); "
                            "its result appears below when it ends.")
        _show_result(project)
    runs = latest_runs(engine, project)  # read after a press of Retrain now: a run it started is in the table
    if not is_marks(project.label_mode):  # spans and boxes have an order of their own, without rounds
        order += _rounds(project, runs)
    header.markdown(f"**Model:** {render.text(model_name)}  \n**Queue order:** {order}  \n**Schedule:** {render.text(schedule.description)}")
    if running_retrain(engine, project.id) is not None:
        earlier = next((r for r in runs if r.status == "succeeded"), None)
        _retrain_progress(project, dict(earlier.phase_seconds) if earlier is not None else {})
    if not runs:
        st.info("No model runs yet.")
        return
    numbers = run_numbers(engine, project)
    table = reports.runs_frame(runs, numbers, timezone=st.context.timezone)
    latest = runs[0]
    if latest.status == "failed":
        st.error("The latest run failed:")
        st.code(latest.message or "", language=None, wrap_lines=True)  # the error as it came, shown as plain text
    elif latest.status == "skipped":  # the table cuts the message short: why nothing was learnt, in full
        st.warning(render.text(f"The latest run was skipped: {(latest.message or 'no reason was recorded').rstrip('.')}."))
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
