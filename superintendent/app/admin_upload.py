"""Admin, Upload data tab: pick a project, drop a file, check the preview, import in one transaction."""

from __future__ import annotations

import hashlib

import streamlit as st
from sqlalchemy.engine import Engine

from superintendent import audit, auth, importing, ingest, queue
from superintendent.app import render, resources
from superintendent.app.guard import Note, guarded_engine_action
from superintendent.app.login import CurrentUser
from superintendent.app.widgets import all_projects
from superintendent.store import session_scope
from superintendent.validation import SuperintendentError

READ_AS = {"csv": "CSV table", "parquet": "Parquet table", "json": "JSON table", "jsonl": "JSON Lines table", "npy": ".npy array",
           "npz": ".npz arrays", "zip": "ZIP of images", "label-studio": "Label Studio tasks", "items-jsonl": "exported items (JSON Lines)"}


ID_NAMES = ("external_id", "id")  # a column of these names is offered as the id column
LABEL_NAMES = ("label", "labels")  # and of these as the label column
PARSED = "admin-upload-parsed"  # session state: (content hash, format) -> the table read from the upload, read once per file
MAP_SHOWN = 60  # annotators offered in the mapping table; the others keep their import-only accounts (the CLI maps any)


def _guess(columns: list[str], names: tuple[str, ...]) -> int:
    """The index in ``[None] + columns`` of the first column named one of ``names`` (any case), else 0 (none)."""
    lower = {c.lower(): i for i, c in reversed(list(enumerate(columns, 1))) if isinstance(c, str)}
    return next((lower[n] for n in names if n in lower), 0)


def _table(data: bytes, digest: str, fmt: str, limits: ingest.ImportLimits, name: str):
    """The upload read as a table, once per file and format: kept in session state by content hash (only the latest)."""
    cached = st.session_state.get(PARSED)
    if cached is not None and cached[0] == (digest, fmt):
        return cached[1]
    frame = ingest.read_table(data, fmt, limits, name=name)
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


def _annotator_map(named: list[importing.Annotator], digest: str) -> dict[str, str]:
    """The annotators of a task file and whom each becomes: their import-only account (nobody signs in as it) unless the
    admin picks an existing user. Returns the picks, {name in the file: user name}."""
    with session_scope(resources.engine(), write=False) as s:
        people = [u.username for u in auth.list_users(s)]
    st.write(f"**Annotators in the file** ({len(named):,})")
    st.caption("Each annotator's labels go to an import-only account `_import:<name>`, which nobody can sign in as, unless you "
               "pick an existing user for them here. A review is kept only when its reviewer is mapped to a user who may review.")
    picks: dict[str, str] = {}
    columns = st.columns(3)
    for i, a in enumerate(named[:MAP_SHOWN]):
        done = ", ".join(f"{n:,} {what}{'s' if n != 1 else ''}" for n, what in ((a.labels, "label"), (a.reviews, "review")) if n)
        cell = columns[i % 3]
        cell.markdown(f"{render.text(a.name)} ({done})")  # the name as text
        # a collapsed label is still Markdown in the page (an image in it is fetched): through render.text too
        choice = cell.selectbox(render.text(f"{a.name} ({done})"), [None, *people], key=f"admin-upload-map-{i}-{digest}", label_visibility="collapsed",
                                required=True,
                                format_func=lambda u, a=a: f"import-only: {a.identity}" if u is None else u)
        if choice is not None:
            picks[a.name] = choice
    if len(named) > MAP_SHOWN:
        st.caption(f"The other {len(named) - MAP_SHOWN:,} annotators keep their import-only accounts; map them with "
                   "`superintendent import --map-user ANNOTATOR=USER`.")
    unmapped = [a.name for a in named if a.reviews and a.name not in picks]
    if unmapped:
        st.warning(f"{', '.join(render.text(repr(n)) for n in unmapped[:5])} reviewed items in this file: pick a user who may "
                   "review for them, or the import is refused (remove the reviews from the file to import without them).")
    return picks


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
    limits = ingest.ImportLimits.from_settings(resources.settings())
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
            plan = _table_plan(_table(data, digest, fmt, limits, upload.name), digest)
        prepared = ingest.prepare_upload(upload.name, data, plan=plan, options=project.options, label_mode=project.label_mode,
                                            limits=limits, upload_dir=resources.settings().upload_dir, fmt=fmt,
                                            allow_free_text=project.allow_free_text, data_key=data_key, from_name=from_name)
    except SuperintendentError as exc:
        st.error(f"This file cannot be imported: {render.text(exc)}")
        return
    st.write(f"**Preview** ({prepared.n_rows:,} items" + (f", {sum(v is not None for v in prepared.labels):,} with labels" if prepared.labels else "") + ")")
    st.dataframe(prepared.preview, width="stretch", hide_index=True)
    named = importing.annotators(prepared)
    user_map = _annotator_map(named, digest) if named else {}
    if st.button(f"Import {prepared.n_rows:,} items into {render.text(repr(project.name))}", key="admin-upload-import", type="primary"):
        bar = st.progress(0.0, text="Importing...")

        def run_import(engine: Engine) -> queue.AddResult:
            return importing.import_prepared(engine, project, prepared, progress=lambda f: bar.progress(min(1.0, f), text="Importing..."),
                                             user_map=user_map)

        def note(r: queue.AddResult) -> Note:
            return Note(audit.AuditAction.data_import, project.name,
                        {"file": upload.name, "added": r.added, "already_present": r.already_present, "labelled": r.labelled,
                         "labels_new": r.labels_new, "labels_changed": r.labels_changed, "labels_same": r.labels_same,
                         **({"user_map": user_map, "import_only_accounts": len(named) - len(user_map)} if named else {})})

        try:
            result = guarded_engine_action(user, "upload", run_import, audit=note)
        except SuperintendentError as exc:
            st.error(f"Nothing was imported: {render.text(exc)}")
            return
        bar.progress(1.0, text="Done")
        st.success(f"Imported {result.describe()}.")
