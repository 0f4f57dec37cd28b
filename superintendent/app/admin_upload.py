"""Admin, Upload data tab: pick a project, drop a file, check the preview, import in one transaction."""

from __future__ import annotations

import hashlib

import streamlit as st
from sqlalchemy.engine import Engine

from superintendent import audit, importing, ingest, queue
from superintendent.app import resources
from superintendent.app.guard import Note, guarded_engine_action
from superintendent.app.login import CurrentUser
from superintendent.app.widgets import all_projects
from superintendent.validation import SuperintendentError

READ_AS = {"csv": "CSV table", "parquet": "Parquet table", "json": "JSON table", "jsonl": "JSON Lines table", "npy": ".npy array",
           "npz": ".npz arrays", "zip": "ZIP of images", "label-studio": "Label Studio tasks", "items-jsonl": "exported items (JSON Lines)"}


ID_NAMES = ("external_id", "id")  # a column of these names is offered as the id column
LABEL_NAMES = ("label", "labels")  # and of these as the label column
PARSED = "admin-upload-parsed"  # session state: (content hash, format) -> the table read from the upload, read once per file


def _guess(columns: list[str], names: tuple[str, ...]) -> int:
    """The index in ``[None] + columns`` of the first column named one of ``names`` (any case), else 0 (none)."""
    lower = {c.lower(): i for i, c in reversed(list(enumerate(columns, 1))) if isinstance(c, str)}
    return next((lower[n] for n in names if n in lower), 0)


def _table(data: bytes, digest: str, fmt: str, limits: ingest.ImportLimits):
    """The upload read as a table, once per file and format: kept in session state by content hash (only the latest)."""
    cached = st.session_state.get(PARSED)
    if cached is not None and cached[0] == (digest, fmt):
        return cached[1]
    frame = ingest.read_table(data, fmt, limits)
    st.session_state[PARSED] = ((digest, fmt), frame)
    return frame


def _table_plan(frame, digest: str) -> ingest.TablePlan:
    """The column pickers, keyed to the file's content hash so a new file starts from its own columns. The id and label
    columns are offered first (guessed from their names) and are never among the columns shown or given to the model."""
    columns = list(frame.columns)
    c1, c2 = st.columns(2)
    label_col = c1.selectbox("Column of existing labels (optional)", [None] + columns, index=_guess(columns, LABEL_NAMES),
                             key=f"admin-upload-label-{digest}")
    id_col = c2.selectbox("Column of item ids (optional)", [None] + columns, index=_guess(columns, ID_NAMES),
                          key=f"admin-upload-id-{digest}", help="Without one, an item's id is its row number in this file")
    rest = [c for c in columns if c not in (label_col, id_col)]
    c1, c2 = st.columns(2)
    display = c1.multiselect("Columns to show", rest, default=rest, key=f"admin-upload-display-{digest}-{label_col}-{id_col}")
    model = c2.multiselect("Columns for the model", rest, default=display, key=f"admin-upload-model-{digest}-{label_col}-{id_col}")
    return ingest.TablePlan(display_columns=display, model_columns=model, label_column=label_col, id_column=id_col)


def upload_tab(user: CurrentUser) -> None:
    projects = all_projects()
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
    digest = hashlib.sha256(data).hexdigest()[:16]
    limits = ingest.ImportLimits(max_bytes=limit_mb * 1024 * 1024)
    plan = None
    data_key = from_name = None
    try:
        by_name = ingest.detect_format(upload.name)
        choices = list(dict.fromkeys([ingest.detect_format(upload.name, data), by_name]
                                     + (["label-studio"] if by_name in ("json", "zip") else [])))
        fmt = st.selectbox("Read as", choices, key="admin-upload-format", format_func=lambda f: READ_AS.get(f, f))
        if fmt == "label-studio":
            c1, c2 = st.columns(2)
            data_key = c1.text_input("Data key (optional)", key="admin-upload-data-key",
                                     help="The key of each task's data that holds the item; default: the only key") or None
            from_name = c2.text_input("Choices control (optional)", key="admin-upload-from-name",
                                      help="The from_name whose choices are the labels; default: the only one") or None
        if fmt in ("csv", "parquet", "json", "jsonl"):
            plan = _table_plan(_table(data, digest, fmt, limits), digest)
        prepared = ingest.prepare_upload(upload.name, data, plan=plan, options=project.options, label_mode=project.label_mode,
                                            limits=limits, upload_dir=resources.settings().upload_dir, fmt=fmt,
                                            allow_free_text=project.allow_free_text, data_key=data_key, from_name=from_name)
    except SuperintendentError as exc:
        st.error(f"This file cannot be imported: {exc}")
        return
    st.write(f"**Preview** ({prepared.n_rows:,} items" + (f", {sum(v is not None for v in prepared.labels):,} with labels" if prepared.labels else "") + ")")
    st.dataframe(prepared.preview, width="stretch", hide_index=True)
    if st.button(f"Import {prepared.n_rows:,} items into {project.name!r}", key="admin-upload-import", type="primary"):
        bar = st.progress(0.0, text="Importing...")

        def run_import(engine: Engine) -> queue.AddResult:
            return importing.import_prepared(engine, project, prepared, progress=lambda f: bar.progress(min(1.0, f), text="Importing..."))

        def note(r: queue.AddResult) -> Note:
            return Note(audit.AuditAction.data_import, project.name,
                        {"file": upload.name, "added": r.added, "already_present": r.already_present, "labelled": r.labelled,
                         "labels_new": r.labels_new, "labels_changed": r.labels_changed, "labels_same": r.labels_same})

        try:
            result = guarded_engine_action(user, "upload", run_import, audit=note)
        except SuperintendentError as exc:
            st.error(f"Nothing was imported: {exc}")
            return
        bar.progress(1.0, text="Done")
        st.success(f"Imported {result.describe()}.")
