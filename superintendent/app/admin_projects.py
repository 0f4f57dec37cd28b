"""Admin, Projects tab: create a project or change one (every setting is checked by ``ProjectSettings``)."""

from __future__ import annotations

import re

import streamlit as st
from sqlmodel import Session

from superintendent import audit, queue
from superintendent.app.guard import Note, guarded_action
from superintendent.app.login import CurrentUser
from superintendent.app.widgets import all_projects
from superintendent.learning import MODEL_PRESETS
from superintendent.store import Project
from superintendent.validation import ACQUISITION_NAMES, DATA_TYPES, NotFoundError, SuperintendentError

NEW = "➕ New project"


def _parse_options(text: str) -> list:
    """One option per line or comma; whole numbers become ints (so digits can be labelled 0-9)."""
    parts = [p.strip() for p in re.split(r"[\n,]", text) if p.strip()]
    return [int(p) if re.fullmatch(r"-?\d+", p) else p for p in parts]


def projects_tab(user: CurrentUser) -> None:
    projects = all_projects()
    names = [NEW] + [p.name for p in projects]
    choice = st.selectbox("Project to edit", names, key="admin-project-pick")
    project = next((p for p in projects if p.name == choice), None)
    with st.form("admin-project-form"):
        name = st.text_input("Name", value=project.name if project else "", key="admin-project-name")
        c1, c2 = st.columns(2)
        data_type = c1.selectbox("Data type", DATA_TYPES, index=DATA_TYPES.index(project.data_type) if project and project.data_type in DATA_TYPES else 0)
        label_mode = c2.selectbox("Labels per item", ("single", "multi"), index=1 if project and project.label_mode == "multi" else 0,
                                  format_func={"single": "one label (single)", "multi": "several labels (multi)"}.get)
        options = st.text_area("Label options (one per line or comma-separated)", value="\n".join(map(str, project.options)) if project else "",
                               key="admin-project-options")
        allow_free_text = st.checkbox("Allow a free-text label too", value=bool(project and project.allow_free_text))
        presets = [""] + list(MODEL_PRESETS)
        preset = st.selectbox("Model", presets, index=presets.index(project.model_preset) if project and project.model_preset in presets else 0,
                              format_func=lambda k: MODEL_PRESETS.get(k, "no model (no active learning)"))
        c1, c2, c3 = st.columns(3)
        acquisition = c1.selectbox("Acquisition function", ACQUISITION_NAMES,
                                   index=ACQUISITION_NAMES.index(project.acquisition_function) if project else ACQUISITION_NAMES.index("margin"),
                                   help="A name ending in _diverse keeps the top of the queue free of near-duplicates when several "
                                        "labellers claim at once (docs: concepts.md, batch-aware acquisition).")
        shuffle = c2.slider("Shuffle proportion", 0.0, 1.0, value=float(project.shuffle_prop) if project else 0.1, step=0.05)
        overlap = c3.number_input("Annotations per item", 1, 100, value=project.annotations_per_item if project else 1)
        c1, c2, c3 = st.columns(3)
        every = c1.number_input("Retrain every (seconds, 0 = off)", 0, 86_400, value=int(project.retrain_interval_seconds or 0) if project else 60)
        n_labels = c2.number_input("...and after (new labels)", 0, 1_000_000, value=project.retrain_interval_n_labels if project else 10)
        lease = c3.number_input("Lease length (seconds)", 5, 86_400, value=project.lease_seconds if project else 300)
        hints = st.checkbox("Show the model's guess as a hint", value=bool(project and project.show_hints),
                            help="Off by default: a guess nudges labellers towards the model's answer. Keep it off where "
                                 "several people label each item and their agreement matters.")
        saved = st.form_submit_button("Save project" if project else "Create project", type="primary")
    if not saved:
        return
    settings = dict(options=_parse_options(options), label_mode=label_mode, data_type=data_type, allow_free_text=allow_free_text,
                    model_preset=preset or None, acquisition_function=acquisition, shuffle_prop=float(shuffle),
                    annotations_per_item=int(overlap), retrain_interval_seconds=float(every) or None,
                    retrain_interval_n_labels=int(n_labels), lease_seconds=int(lease), show_hints=hints)

    def update(s: Session) -> tuple[Project, dict[str, list]]:
        current = s.get(Project, project.id)
        if current is None:
            raise NotFoundError(f"project {project.name!r} was deleted meanwhile")
        before = {"name": current.name, **{k: getattr(current, k) for k in settings}}
        stored = queue.update_project(s, current, name=name, **settings)
        return stored, {k: [old, getattr(stored, k)] for k, old in before.items() if getattr(stored, k) != old}

    try:
        if project is None:
            guarded_action(user, "manage_projects", lambda s: queue.create_project(s, name, **settings),
                           audit=lambda stored: Note(audit.AuditAction.project_create, stored.name, settings))
        else:
            guarded_action(user, "manage_projects", update,
                           audit=lambda done: Note(audit.AuditAction.project_update, done[0].name, {"changed": done[1]}))
    except SuperintendentError as exc:
        st.error(str(exc))
        return
    st.success(f"Project {name.strip()!r} saved.")
