"""The Model page's body: every run, the latest figures, the schedule, and "Retrain now" for admins.

The account is re-read from the database on every draw and again on "Retrain now" (a browser
session's role may be stale); a retrain is written to the audit log.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from superintendent import audit, auth, reports
from superintendent.app import charts, resources
from superintendent.app.login import CurrentUser
from superintendent.app.widgets import project_picker
from superintendent.learning import MODEL_PRESETS, latest_runs, model_for_project
from superintendent.orchestration import project_schedule, retrain_project
from superintendent.store import session_scope
from superintendent.validation import SuperintendentError

REFUSED = "your account may not do this any more"


def _allowed(user: CurrentUser, action: str) -> bool:
    with session_scope(resources.engine(), write=False) as s:
        return auth.allowed(s, user.username, action)


def render_page(user: CurrentUser) -> None:
    if not _allowed(user, "view_model"):
        st.error(REFUSED)
        return
    project = project_picker("model-project")
    if project is None:
        return
    engine = resources.engine()
    schedule = project_schedule(engine, project)
    model_name = project.model_factory or MODEL_PRESETS.get(project.model_preset or "", "none set")
    st.markdown(f"**Model:** {model_name}  \n**Acquisition function:** {project.acquisition_function} "
                f"(shuffle {project.shuffle_prop:.0%})  \n**Schedule:** {schedule.description}")
    if user.can("retrain"):
        if st.button("Retrain now", key="model-retrain", type="primary"):
            with st.spinner("Retraining: labellers keep working meanwhile..."):
                try:
                    if not _allowed(user, "retrain"):
                        raise SuperintendentError(REFUSED)
                    model_for_project(project)  # a bad preset or factory is reported here, before the run
                    run = retrain_project(engine, project)
                except SuperintendentError as exc:
                    st.error(str(exc))
                    run = None
                else:
                    if run is None:
                        st.info("Another retrain of this project is running; its result appears below when it ends.")
            if run is not None:
                with session_scope(engine) as s:
                    audit.record(s, user.username, audit.AuditAction.model_retrain, project.name, run_id=run.id, status=run.status,
                                 n_labels=run.n_labels)
                (st.success if run.status == "succeeded" else st.warning)(f"Retrain {run.status}" + (f": score {run.score_mean:.3f}" if run.score_mean is not None else ""))
    runs = latest_runs(engine, project)
    if not runs:
        st.info("No model runs yet.")
        return
    table = reports.runs_frame(runs)
    latest = runs[0]
    if latest.status == "failed":
        st.error(f"The latest run failed:\n\n```\n{latest.message}\n```")
    if table["score"].notna().any():
        st.plotly_chart(charts.score_chart(table), width="stretch", key="model-score")
    st.dataframe(table, hide_index=True, width="stretch")
    scored = next((r for r in runs if r.per_class), None)
    if scored is not None:
        st.subheader(f"Latest per-class figures (run {scored.id}, {scored.n_labels} labels)")
        left, right = st.columns(2)
        left.dataframe(pd.DataFrame(scored.per_class).T.round(3), width="stretch")
        right.plotly_chart(charts.confusion_heatmap(scored.confusion), width="stretch", key="model-confusion")
