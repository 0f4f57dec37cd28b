"""The Admin page's body: projects, uploads, users, exports, the audit log.

Every action goes through :mod:`superintendent.app.guard`: the account is
re-read and checked when the action happens, and the action is written to
the audit log (:mod:`superintendent.audit`), in the action's own
transaction where it has one (projects, users), in a small one right after
success otherwise (import, export). The page itself is shown only after
``login.require("admin")`` (in ``pages/admin.py``) re-read the account.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable

import pandas as pd
import streamlit as st
from sqlalchemy.engine import Engine
from sqlmodel import Session

from superintendent import audit, auth, exporting, importers, queue
from superintendent.app import resources
from superintendent.app.guard import Note, guarded_action, guarded_engine_action
from superintendent.app.login import CurrentUser
from superintendent.learning import MODEL_PRESETS
from superintendent.store import Project, session_scope
from superintendent.validation import ACQUISITION_NAMES, NotFoundError, SuperintendentError

DATA_TYPES = ("image", "text", "tabular", "any")
NEW = "➕ New project"
AUDIT_ROWS = 200
READ_AS = {"csv": "CSV table", "parquet": "Parquet table", "json": "JSON table", "jsonl": "JSON Lines table", "npy": ".npy array",
           "npz": ".npz arrays", "zip": "ZIP of images", "label-studio": "Label Studio tasks", "items-jsonl": "exported items (JSON Lines)"}
EXPORT_AS = {"csv": "CSV", "json": "JSON", "parquet": "Parquet", "jsonl": "JSON Lines (items)", "label-studio": "Label Studio JSON"}


def _parse_options(text: str) -> list:
    """One option per line or comma; whole numbers become ints (so digits can be labelled 0-9)."""
    parts = [p.strip() for p in re.split(r"[\n,]", text) if p.strip()]
    return [int(p) if re.fullmatch(r"-?\d+", p) else p for p in parts]


def _projects() -> list[Project]:
    with session_scope(resources.engine(), write=False) as s:
        return queue.list_projects(s)


def projects_tab(user: CurrentUser) -> None:
    projects = _projects()
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


def upload_tab(user: CurrentUser) -> None:
    projects = _projects()
    if not projects:
        st.info("Create a project first.")
        return
    project = st.selectbox("Into project", projects, format_func=lambda p: p.name, key="admin-upload-project")
    limit_mb = resources.settings().max_upload_mb
    st.caption(f"CSV, Parquet, JSON / JSON Lines (text and table rows), .npy / .npz arrays, a ZIP of PNG / JPEG images, "
               f"Label Studio tasks (JSON, or a ZIP of the JSON and its images) or an exported items JSON Lines; at most {limit_mb} MB.")
    upload = st.file_uploader("Data file", type=["csv", "parquet", "json", "jsonl", "ndjson", "npy", "npz", "zip"], key="admin-upload-file")
    if upload is None:
        return
    data = upload.getvalue()
    limits = importers.ImportLimits(max_bytes=limit_mb * 1024 * 1024)
    plan = None
    data_key = from_name = None
    try:
        by_name = importers.detect_format(upload.name)
        choices = list(dict.fromkeys([importers.detect_format(upload.name, data), by_name]
                                     + (["label-studio"] if by_name in ("json", "zip") else [])))
        fmt = st.selectbox("Read as", choices, key="admin-upload-format", format_func=lambda f: READ_AS.get(f, f))
        if fmt == "label-studio":
            c1, c2 = st.columns(2)
            data_key = c1.text_input("Data key (optional)", key="admin-upload-data-key",
                                     help="The key of each task's data that holds the item; default: the only key") or None
            from_name = c2.text_input("Choices control (optional)", key="admin-upload-from-name",
                                      help="The from_name whose choices are the labels; default: the only one") or None
        if fmt in ("csv", "parquet", "json", "jsonl"):
            frame = importers.read_table(data, fmt, limits)
            columns = list(frame.columns)
            c1, c2 = st.columns(2)
            display = c1.multiselect("Columns to show", columns, default=columns, key="admin-upload-display")
            model = c2.multiselect("Columns for the model", columns, default=display, key="admin-upload-model")
            c1, c2 = st.columns(2)
            label_col = c1.selectbox("Column of existing labels (optional)", [None] + columns, key="admin-upload-label")
            id_col = c2.selectbox("Column of item ids (optional)", [None] + columns, key="admin-upload-id")
            plan = importers.TablePlan(display_columns=[c for c in display if c not in (label_col, id_col)],
                                       model_columns=[c for c in model if c not in (label_col, id_col)], label_column=label_col, id_column=id_col)
        prepared = importers.prepare_upload(upload.name, data, plan=plan, options=project.options, label_mode=project.label_mode,
                                            limits=limits, upload_dir=resources.settings().upload_dir, fmt=fmt,
                                            allow_free_text=project.allow_free_text, data_key=data_key, from_name=from_name)
    except SuperintendentError as exc:
        st.error(f"Nothing was imported: {exc}")
        return
    st.write(f"**Preview** ({prepared.n_rows:,} items" + (f", {sum(v is not None for v in prepared.labels):,} with labels" if prepared.labels else "") + ")")
    st.dataframe(prepared.preview, width="stretch", hide_index=True)
    if st.button(f"Import {prepared.n_rows:,} items into {project.name!r}", key="admin-upload-import", type="primary"):
        bar = st.progress(0.0, text="Importing...")

        def run_import(engine: Engine) -> queue.AddResult:
            return importers.import_prepared(engine, project, prepared, progress=lambda f: bar.progress(min(1.0, f), text="Importing..."))

        def note(r: queue.AddResult) -> Note:
            return Note(audit.AuditAction.data_import, project.name,
                        {"file": upload.name, "added": r.added, "already_present": r.already_present, "labelled": r.labelled})

        try:
            result = guarded_engine_action(user, "upload", run_import, audit=note)
        except SuperintendentError as exc:
            st.error(f"Nothing was imported: {exc}")
            return
        bar.progress(1.0, text="Done")
        st.success(f"Imported {result.added:,} new items ({result.already_present:,} were there already, {result.labelled:,} labels).")


def users_tab(user: CurrentUser) -> None:
    with session_scope(resources.engine(), write=False) as s:
        users = auth.list_users(s)
    st.dataframe(pd.DataFrame([{"user": u.username, "name": u.display_name, "role": u.role, "active": u.active,
                                "locked until": u.locked_until} for u in users]), hide_index=True, width="stretch")
    left, right = st.columns(2)
    with left.form("admin-user-create", clear_on_submit=True):
        st.write("**New user**")
        username = st.text_input("User name", key="admin-new-username")
        display = st.text_input("Display name", key="admin-new-display")
        password = st.text_input("Password", type="password", key="admin-new-password", help=f"At least {auth.MIN_PASSWORD_LENGTH} characters")
        role = st.selectbox("Role", auth.HUMAN_ROLES, index=auth.HUMAN_ROLES.index("labeller"), key="admin-new-role")
        if st.form_submit_button("Create user"):
            def create(s: Session) -> list[Note]:
                new = auth.create_user(s, username, password, role, display_name=display)
                return [Note(audit.AuditAction.user_create, new.username, {"role": new.role, "display_name": new.display_name})]
            _user_action(user, create, f"User {username!r} created.")
    with right:
        st.write("**Change a user**")
        # Picked outside the form, so Role and Active start from this user's values (Apply sets all of them).
        target = st.selectbox("User", [u.username for u in users], key="admin-edit-user", on_change=_forget_user_edits)
    chosen = next((u for u in users if u.username == target), None)
    with right.form("admin-user-edit"):
        new_role = st.selectbox("Role", auth.HUMAN_ROLES, key="admin-edit-role",
                                index=auth.HUMAN_ROLES.index(chosen.role if chosen and chosen.role in auth.HUMAN_ROLES else "labeller"))
        new_password = st.text_input("New password (leave empty to keep)", type="password", key="admin-edit-password")
        active = st.checkbox("Active (may log in)", value=chosen.active if chosen else True, key="admin-edit-active")
        if st.form_submit_button("Apply"):
            def change(s: Session) -> list[Note]:
                before = auth.get_user(s, target)
                old_role, old_active = before.role, before.active
                auth.set_role(s, target, new_role)
                auth.set_active(s, target, active)
                notes = []
                if new_role != old_role:
                    notes.append(Note(audit.AuditAction.user_role, target, {"before": old_role, "after": new_role}))
                if active != old_active:
                    notes.append(Note(audit.AuditAction.user_active, target, {"before": old_active, "after": active}))
                if new_password:
                    auth.reset_password(s, target, new_password)
                    notes.append(Note(audit.AuditAction.user_password_reset, target))
                return notes
            _user_action(user, change, f"User {target!r} updated.")


def _forget_user_edits() -> None:
    """Another user was picked: Role, Active and New password start again from that user's values."""
    for key in ("admin-edit-role", "admin-edit-active", "admin-edit-password"):
        st.session_state.pop(key, None)


def _user_action(user: CurrentUser, action: Callable[[Session], list[Note]], done: str) -> None:
    """Check, act and audit (the notes ``action`` returns) in one transaction: a refused or failed action changes nothing."""
    try:
        guarded_action(user, "manage_users", action, audit=lambda notes: notes)
    except SuperintendentError as exc:
        st.error(str(exc))
        return
    st.success(done)


def export_tab(user: CurrentUser) -> None:
    projects = _projects()
    if not projects:
        st.info("No projects yet.")
        return
    project = st.selectbox("Project", projects, format_func=lambda p: p.name, key="admin-export-project")
    fmt = st.radio("Format", list(exporting.FORMATS), horizontal=True, key="admin-export-format", format_func=lambda f: EXPORT_AS.get(f, f))
    individual = False
    ls_options: dict = {}
    if fmt in exporting.TABLE_FORMATS:
        individual = st.checkbox("Every individual annotation (one row per annotation, beside the consensus)", key="admin-export-individual")
    elif fmt == "label-studio":
        c1, c2, c3 = st.columns(3)
        ls_options = {"from_name": c1.text_input("Choices control (from_name)", value="label", key="admin-export-from-name") or "label",
                      "to_name": c2.text_input("Object (to_name; default: text or image)", key="admin-export-to-name") or None,
                      "image_value": c3.selectbox("Images as", ["path", "name"], key="admin-export-image-value",
                                                  format_func={"path": "file path on this server", "name": "original file name"}.get)}
    if st.button("Prepare export", key="admin-export-prepare"):
        try:
            with st.spinner("Collecting labels..."):
                data = guarded_engine_action(
                    user, "export", lambda engine: exporting.export_labels(engine, project, fmt, individual=individual, **ls_options),
                    audit=lambda exported: Note(audit.AuditAction.labels_export, project.name,
                                                {"format": fmt, "individual": individual, "bytes": len(exported)}))
        except SuperintendentError as exc:
            st.error(str(exc))
        else:
            st.session_state["admin-export-bytes"] = (project.id, (fmt, individual, sorted(ls_options.items())), data)
    ready = st.session_state.get("admin-export-bytes")
    if ready and ready[0] == project.id and ready[1] == (fmt, individual, sorted(ls_options.items())):
        slug = re.sub(r"[^A-Za-z0-9]+", "-", project.name).strip("-").lower() or "labels"
        suffix = {"label-studio": "-label-studio", "jsonl": "-items"}.get(fmt, "-annotations" if individual else "-labels")
        st.download_button(f"Download {EXPORT_AS.get(fmt, fmt)}", ready[2], file_name=f"{slug}{suffix}.{exporting.EXTENSIONS[fmt]}",
                           mime=exporting.FORMATS[fmt], key="admin-export-download")


def audit_tab() -> None:
    with session_scope(resources.engine(), write=False) as s:
        entries = audit.recent(s, AUDIT_ROWS)
    if not entries:
        st.info("No admin actions recorded yet.")
        return
    st.caption(f"The latest {len(entries)} admin actions, newest first.")
    st.dataframe(pd.DataFrame([{"when (UTC)": e.created_at, "who": e.actor, "action": e.action, "target": e.target,
                                "details": json.dumps(e.details, sort_keys=True) if e.details else ""} for e in entries]),
                 hide_index=True, width="stretch")


def render_page(user: CurrentUser) -> None:
    """The page's tabs, for a user ``login.require("admin")`` has just checked against the database."""
    projects, upload, users, export, log = st.tabs(["Projects", "Upload data", "Users", "Export labels", "Audit log"])
    with projects:
        projects_tab(user)
    with upload:
        upload_tab(user)
    with users:
        users_tab(user)
    with export:
        export_tab(user)
    with log:
        audit_tab()
