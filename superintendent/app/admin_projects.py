"""Admin, Projects tab: create a project or change one (every setting is checked by ``ProjectSettings``),
its members, archive or restore it, delete it (typed confirmation).

The form's widgets are keyed, and their values are loaded from the project
picked (:func:`_load_form`) whenever the pick changes and after a successful
create, so the form always shows what it edits: never the last project's
values, never a box ticked on another project's form.
"""

from __future__ import annotations

import re
from typing import Any

import streamlit as st
from sqlmodel import Session

from superintendent import audit, auth, queue
from superintendent.app import render
from superintendent.app.guard import Note, guarded_action
from superintendent.app.login import CurrentUser
from superintendent.app.resources import engine
from superintendent.app.widgets import all_projects
from superintendent.learning import MODEL_PRESETS, make_preset, preset_description
from superintendent.project_settings import default_model_preset
from superintendent.store import Project, Role, session_scope
from superintendent.validation import ACQUISITION_NAMES, DATA_TYPES, DEFAULT_ACQUISITION, NotFoundError, SuperintendentError

# A project's kind is its label_mode (superintendent.marks for spans and boxes); ProjectSettings refuses wrong combinations.
KINDS = {"single": "Classification: one label per item", "multi": "Classification: several labels per item",
         "spans": "Text spans (mark parts of a text)", "boxes": "Image boxes (draw boxes on an image)"}
NEW = "+ New project"  # no emoji: it renders as a box where no emoji font exists
BY_DATA_TYPE = "(by data type)"  # the model preset that suits the data type (see project_settings.default_model_preset)
PICK = "admin-project-pick"
FLASH = "admin-project-flash"
FLASH_WARNING = "admin-project-flash-warning"  # said after FLASH: what a saved change left behind (options removed but in use)
NEXT_PICK = "admin-project-next-pick"  # set after an action: the project to edit on the next run (None: a new one), form reloaded
K = {name: f"admin-project-{name}" for name in ("name", "data_type", "label_mode", "options", "descriptions", "guidelines", "allow_free_text",
                                                "model", "acquisition", "shuffle", "overlap", "every", "n_labels", "lease", "hints")}


def _parse_options(text: str) -> list:
    """One option per line or comma; whole numbers become ints (so digits can be labelled 0-9)."""
    parts = [p.strip() for p in re.split(r"[\n,]", text) if p.strip()]
    return [int(p) if re.fullmatch(r"-?\d+", p) else p for p in parts]


def _parse_descriptions(text: str) -> dict[str, str]:
    """``option: description``, one per line (lines without a colon are ignored)."""
    out = {}
    for line in text.splitlines():
        option, colon, description = line.partition(":")
        if colon and option.strip():
            out[option.strip()] = description.strip()
    return out


def _form_values(project: Project | None) -> dict[str, Any]:
    if project is None:
        return {"name": "", "data_type": DATA_TYPES[0], "label_mode": "single", "options": "", "descriptions": "", "guidelines": "",
                "allow_free_text": False, "model": BY_DATA_TYPE, "acquisition": DEFAULT_ACQUISITION, "shuffle": 0.1, "overlap": 1, "every": 60,
                "n_labels": 10, "lease": 300, "hints": False}
    return {"name": project.name, "data_type": project.data_type if project.data_type in DATA_TYPES else DATA_TYPES[-1],
            "label_mode": project.label_mode, "options": "\n".join(map(str, project.options)),
            "descriptions": "\n".join(f"{o}: {d}" for o, d in project.option_descriptions.items()), "guidelines": project.guidelines,
            "allow_free_text": bool(project.allow_free_text),
            "model": project.model_preset if project.model_preset in MODEL_PRESETS else "",
            "acquisition": project.acquisition_function, "shuffle": float(project.shuffle_prop), "overlap": project.annotations_per_item,
            "every": int(project.retrain_interval_seconds or 0), "n_labels": project.retrain_interval_n_labels, "lease": project.lease_seconds,
            "hints": bool(project.show_hints)}


def _load_form(project: Project | None) -> None:
    for name, value in _form_values(project).items():
        st.session_state[K[name]] = value


def _on_pick(projects: dict[str, Project]) -> None:
    _load_form(projects.get(st.session_state[PICK]))


def _model_label(key: str) -> str:
    if key == BY_DATA_TYPE:
        return "a model suited to the kind and data type (text spans, images, text, tables)"
    return preset_description(key) if key in MODEL_PRESETS else "no model (no active learning)"


def projects_tab(user: CurrentUser) -> None:
    projects = {p.name: p for p in all_projects()}
    if (flash := st.session_state.pop(FLASH, None)) is not None:
        st.success(flash)  # written with the project's name through render.text
    if (warning := st.session_state.pop(FLASH_WARNING, None)) is not None:
        st.warning(warning)
    if NEXT_PICK in st.session_state:  # before the widgets exist: their state may be set only now
        st.session_state[PICK] = pick = st.session_state.pop(NEXT_PICK) or NEW
        _load_form(projects.get(pick))
    choice = st.selectbox("Project to edit", [NEW, *projects], key=PICK, on_change=_on_pick, args=(projects,),
                          format_func=lambda n: f"{n} (archived)" if n in projects and projects[n].archived else n)
    project = projects.get(choice)
    if K["name"] not in st.session_state:
        _load_form(project)
    _settings_form(user, project)
    if project is not None:
        _members(user, project)
        _archive_and_delete(user, project)


def _settings_form(user: CurrentUser, project: Project | None) -> None:
    with st.form("admin-project-form"):
        name = st.text_input("Name", key=K["name"])
        c1, c2 = st.columns(2)
        data_type = c1.selectbox("Data type", DATA_TYPES, key=K["data_type"])
        label_mode = c2.selectbox("Kind", tuple(KINDS), key=K["label_mode"], format_func=KINDS.get,
                                  help="Classification gives each item one label or several. Text spans: labellers mark "
                                       "stretches of a text (data type text). Image boxes: labellers draw boxes on an image "
                                       "(data type image). The options are what a mark can be, e.g. PER, LOC.")
        options = st.text_area("Label options (one per line or comma-separated)", key=K["options"])
        descriptions = st.text_area("Option descriptions (optional, one per line: option: what it means)", key=K["descriptions"],
                                    help="Shown to labellers as the help of each option's button.")
        guidelines = st.text_area("Guidelines for labellers (Markdown; HTML and images are shown as text)", key=K["guidelines"],
                                  help="Shown on the Label page above each item, in a box labellers can open and close.")
        allow_free_text = st.checkbox("Allow a free-text label too", key=K["allow_free_text"])
        preset = st.selectbox("Model", [BY_DATA_TYPE, *MODEL_PRESETS, ""], key=K["model"], format_func=_model_label)
        c1, c2, c3 = st.columns(3)
        acquisition = c1.selectbox("Acquisition function", ACQUISITION_NAMES, key=K["acquisition"],
                                   help="A name ending in _diverse keeps the items labelled before the model next learns (by everyone, "
                                        "between two retrains) free of near-duplicates. Measured: fewer labels needed for text embeddings "
                                        "and images, no gain on small tables (docs: concepts.md, batch-aware acquisition).")
        shuffle = c2.slider("Shuffle proportion", 0.0, 1.0, step=0.05, key=K["shuffle"])
        overlap = c3.number_input("Annotations per item", 1, 100, key=K["overlap"])
        c1, c2, c3 = st.columns(3)
        every = c1.number_input("Retrain every (seconds, 0 = off)", 0, 86_400, key=K["every"])
        n_labels = c2.number_input("...and after (new labels)", 0, 1_000_000, key=K["n_labels"])
        lease = c3.number_input("Lease length (seconds)", 5, 86_400, key=K["lease"])
        hints = st.checkbox("Show the model's guess as a hint", key=K["hints"],
                            help="Off by default: a guess nudges labellers towards the model's answer. Keep it off where "
                                 "several people label each item and their agreement matters.")
        saved = st.form_submit_button("Save project" if project else "Create project", type="primary")
    if not saved:
        return
    settings = dict(options=_parse_options(options), label_mode=label_mode, data_type=data_type, allow_free_text=allow_free_text,
                    model_preset=default_model_preset(data_type, label_mode) if preset == BY_DATA_TYPE else preset or None,
                    acquisition_function=acquisition, shuffle_prop=float(shuffle), annotations_per_item=int(overlap),
                    retrain_interval_seconds=float(every) or None, retrain_interval_n_labels=int(n_labels), lease_seconds=int(lease),
                    show_hints=hints, guidelines=guidelines, option_descriptions=_parse_descriptions(descriptions))

    def update(s: Session) -> tuple[Project, dict[str, list], dict[str, int]]:
        current = s.get(Project, project.id)
        if current is None:
            raise NotFoundError(f"project {project.name!r} was deleted meanwhile")
        before = {"name": current.name, **{k: getattr(current, k) for k in settings}}
        kept = {str(o) for o in settings["options"]}
        # options taken out while others remain (no options at all: any label goes, so every label given still fits)
        removed = [o for o in current.options if str(o) not in kept] if kept else []
        in_use = queue.options_in_use(s, current, removed)
        stored = queue.update_project(s, current, name=name, **settings)
        return stored, {k: [old, getattr(stored, k)] for k, old in before.items() if getattr(stored, k) != old}, in_use

    try:
        if settings["model_preset"] and (project is None or settings["model_preset"] != project.model_preset):
            make_preset(settings["model_preset"])  # a preset this server cannot run (its optional extra missing): say what to install
        if project is None:
            guarded_action(user, "manage_projects", lambda s: queue.create_project(s, name, **settings),
                           audit=lambda stored: Note(audit.AuditAction.project_create, stored.name, settings))
        else:
            stored, _, in_use = guarded_action(user, "manage_projects", update,
                                               audit=lambda done: Note(audit.AuditAction.project_update, done[0].name, {"changed": done[1]}))
            if in_use:
                st.session_state[FLASH_WARNING] = _removed_in_use(in_use)
    except SuperintendentError as exc:
        st.error(render.text(exc))
        return
    st.session_state[FLASH] = f"Project {render.text(repr(name.strip()))} saved."
    st.session_state[NEXT_PICK] = None if project is None else stored.name  # after a create: a fresh form for the next project
    st.rerun()


def _removed_in_use(in_use: dict[str, int]) -> str:
    """What a saved edit left behind: removed options that labels still use, with counts, and what to do about them."""
    n = sum(in_use.values())
    used = ", ".join(f"{render.text(repr(o))} ({c:,})" for o, c in in_use.items())
    return (f"{n:,} label{'s' if n != 1 else ''} given earlier still use{'s' if n == 1 else ''} "
            f"{'an option' if len(in_use) == 1 else 'options'} you removed: {used}. They stay as they were given "
            "(exports keep them). Add the option back, or change those labels on the Review page.")


def _members(user: CurrentUser, project: Project) -> None:
    st.subheader("Members", anchor=False)
    with session_scope(engine(), write=False) as s:
        people = [u for u in auth.list_users(s) if u.role != Role.admin.value]
        members = set(queue.member_ids(s, project.id))
    if not people:
        st.caption("No labellers or reviewers yet: create them on the Users tab. Admins work in every project.")
        return
    by_id = {u.id: u for u in people}
    picked = st.multiselect("Labellers and reviewers who work in this project (admins see every project)", list(by_id),
                            default=[i for i in by_id if i in members], key=f"admin-project-members-{project.id}",
                            format_func=lambda i: f"{by_id[i].username} ({by_id[i].role}{'' if by_id[i].active else ', inactive'})")
    if not st.button("Save members", key=f"admin-project-members-save-{project.id}"):
        return

    def change(s: Session) -> tuple[list[int], list[int]]:
        return queue.add_members(s, project.id, picked), queue.remove_members(s, project.id, set(by_id) - set(picked))

    def note(done: tuple[list[int], list[int]]) -> Note | None:
        added, removed = ([by_id[i].username for i in ids] for ids in done)
        return Note(audit.AuditAction.project_members, project.name, {"added": added, "removed": removed}) if added or removed else None

    try:
        added, removed = guarded_action(user, "manage_projects", change, audit=note)
    except SuperintendentError as exc:
        st.error(render.text(exc))
        return
    st.success(f"Members saved: {len(added)} added, {len(removed)} removed.")


def _archive_and_delete(user: CurrentUser, project: Project) -> None:
    st.subheader("Archive or delete", anchor=False)
    if project.archived:
        st.caption("Archived: labellers and reviewers do not see it; every item and label is kept.")
    else:
        st.caption("Archiving hides the project from labellers and reviewers and keeps every item and label; you can restore it.")
    action = audit.AuditAction.project_restore if project.archived else audit.AuditAction.project_archive
    if st.button("Restore project" if project.archived else "Archive project", key=f"admin-project-archive-{project.id}"):
        try:
            guarded_action(user, "manage_projects", lambda s: queue.set_archived(s, s.get(Project, project.id), not project.archived),
                           audit=lambda stored: Note(action, stored.name, {}))
        except SuperintendentError as exc:
            st.error(render.text(exc))
            return
        st.session_state[FLASH] = f"Project {render.text(repr(project.name))} {'restored' if project.archived else 'archived'}."
        st.rerun()
    typed = st.text_input(f"To delete it with all its items, labels and model runs, type its name: {render.text(project.name)}",
                          key=f"admin-project-delete-name-{project.id}")
    if st.button("Delete project", key=f"admin-project-delete-{project.id}", disabled=typed.strip() != project.name):
        try:
            guarded_action(user, "manage_projects", lambda s: queue.delete_project(s, s.get(Project, project.id), typed),
                           audit=lambda _: Note(audit.AuditAction.project_delete, project.name, {"id": project.id}))
        except SuperintendentError as exc:
            st.error(render.text(exc))
            return
        st.session_state[FLASH] = f"Project {render.text(repr(project.name))} deleted."
        st.session_state[NEXT_PICK] = None
        st.rerun()
