"""Admin, Upload data tab: pick a project, drop a file, check the preview, import in one transaction."""

from __future__ import annotations

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
            frame = ingest.read_table(data, fmt, limits)
            columns = list(frame.columns)
            c1, c2 = st.columns(2)
            display = c1.multiselect("Columns to show", columns, default=columns, key="admin-upload-display")
            model = c2.multiselect("Columns for the model", columns, default=display, key="admin-upload-model")
            c1, c2 = st.columns(2)
            label_col = c1.selectbox("Column of existing labels (optional)", [None] + columns, key="admin-upload-label")
            id_col = c2.selectbox("Column of item ids (optional)", [None] + columns, key="admin-upload-id")
            plan = ingest.TablePlan(display_columns=[c for c in display if c not in (label_col, id_col)],
                                       model_columns=[c for c in model if c not in (label_col, id_col)], label_column=label_col, id_column=id_col)
        prepared = ingest.prepare_upload(upload.name, data, plan=plan, options=project.options, label_mode=project.label_mode,
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
            return importing.import_prepared(engine, project, prepared, progress=lambda f: bar.progress(min(1.0, f), text="Importing..."))

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
