"""Admin, Upload data tab: pick a project, drop a file, check the preview, import in one transaction.

The import runs in a worker thread (:mod:`superintendent.import_jobs`): a
fragment redrawn every :data:`POLL_SECONDS` shows its progress and a
"Cancel import" button (a cancelled import imports nothing), then its
outcome. The account is re-checked when the import starts and the audit
entry written when it has succeeded (:func:`guarded_engine_action`, run on
the worker thread).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import streamlit as st

from superintendent import audit, auth, import_jobs, importing, ingest, queue
from superintendent.app import render, resources
from superintendent.app.guard import Note, guarded_engine_action
from superintendent.app.login import CurrentUser
from superintendent.app.widgets import all_projects
from superintendent.store import Project, session_scope
from superintendent.validation import SuperintendentError

READ_AS = {"csv": "CSV table", "parquet": "Parquet table", "json": "JSON table", "jsonl": "JSON Lines table", "npy": ".npy array",
           "npz": ".npz arrays", "zip": "ZIP of images", "label-studio": "Label Studio tasks", "items-jsonl": "exported items (JSON Lines)"}


ID_NAMES = ("external_id", "id")  # a column of these names is offered as the id column
LABEL_NAMES = ("label", "labels")  # and of these as the label column
PARSED = "admin-upload-parsed"  # session state: (content hash, format) -> the table read from the upload, read once per file
MAP_SHOWN = 60  # annotators offered in the mapping table; the others keep their import-only accounts (the CLI maps any)
PREPARED = "admin-upload-prepared"  # session state: (what it was prepared from) -> the PreparedImport, prepared once
JOB = "admin-upload-job"  # session state: this session's latest import, a Started
POLL_SECONDS = 0.5  # how often the progress fragment asks the running import how far it is
QUICK_SECONDS = 1.5  # the click's run waits this long for the import to end before it shows its progress instead


@dataclass(frozen=True)
class Started:
    """An import this session started: its job id (in this server process), the file and the project, for the outcome."""

    job_id: str
    file: str
    project: str


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
    _upload_form(user)
    _import_panel()


def _prepare(name: str, data: bytes, digest: str, project: Project, fmt: str, plan: ingest.TablePlan | None,
             limits: ingest.ImportLimits, data_key: str | None, from_name: str | None) -> ingest.PreparedImport:
    """``ingest.prepare_upload`` once per file, project settings and plan: kept in session state (only the latest), so
    the tab's reruns do not read a large file again."""
    key = (name, digest, fmt, repr(plan), project.id, tuple(map(repr, project.options or ())), project.label_mode,
           project.allow_free_text, data_key, from_name, limits)
    cached = st.session_state.get(PREPARED)
    if cached is not None and cached[0] == key:
        return cached[1]
    prepared = ingest.prepare_upload(name, data, plan=plan, options=project.options, label_mode=project.label_mode,
                                     limits=limits, upload_dir=resources.settings().upload_dir, fmt=fmt,
                                     allow_free_text=project.allow_free_text, data_key=data_key, from_name=from_name)
    st.session_state[PREPARED] = (key, prepared)
    return prepared


def _upload_form(user: CurrentUser) -> None:
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
        prepared = _prepare(upload.name, data, digest, project, fmt, plan, limits, data_key, from_name)
    except SuperintendentError as exc:
        st.error(f"This file cannot be imported: {render.text(exc)}")
        return
    st.write(f"**Preview** ({prepared.n_rows:,} items" + (f", {sum(v is not None for v in prepared.labels):,} with labels" if prepared.labels else "") + ")")
    st.dataframe(prepared.preview, width="stretch", hide_index=True)
    named = importing.annotators(prepared)
    user_map = _annotator_map(named, digest) if named else {}
    if not st.button(f"Import {prepared.n_rows:,} items into {render.text(repr(project.name))}", key="admin-upload-import", type="primary"):
        return
    running = _current_job()
    if running is not None and running.status().running:
        st.warning("An import started here is still running: wait for it to end (its progress is below) or cancel it, "
                   "then press Import again.")
        return

    def note(r: queue.AddResult) -> Note:
        return Note(audit.AuditAction.data_import, project.name,
                    {"file": upload.name, "added": r.added, "already_present": r.already_present, "labelled": r.labelled,
                     "labels_new": r.labels_new, "labels_changed": r.labels_changed, "labels_same": r.labels_same,
                     **({"user_map": user_map, "import_only_accounts": len(named) - len(user_map)} if named else {})})

    def guard(act: import_jobs.Act) -> queue.AddResult:  # on the worker thread: the account checked as the import starts,
        return guarded_engine_action(user, "upload", act, audit=note)  # the audit entry written once it has succeeded

    job = import_jobs.start_import(resources.engine(), project, prepared, user_map=user_map, guard=guard)
    st.session_state[JOB] = Started(job.job_id, upload.name, project.name)
    job.wait(QUICK_SECONDS)  # a small file is imported by now: its outcome is drawn at once, without a progress bar


def _current_job() -> import_jobs.ImportJob | None:
    started = st.session_state.get(JOB)
    return import_jobs.get_job(started.job_id) if started is not None else None


def _import_panel() -> None:
    """This session's latest import: its progress while it runs (a fragment polling it), then how it ended."""
    job = _current_job()
    if job is None:
        return
    if job.status().running:
        _import_progress()
    else:
        _outcome(job.status())


@st.fragment(run_every=POLL_SECONDS)
def _import_progress() -> None:
    job = _current_job()
    if job is None:
        return
    status = job.status()
    if not status.running:
        st.rerun()  # the whole tab once more: the outcome is drawn outside this fragment, which then stops polling
    started: Started = st.session_state[JOB]
    st.write(f"**Importing {render.text(started.file)}** into {render.text(repr(started.project))}")
    st.progress(status.fraction, text=_progress_text(status))
    st.button("Cancel import", key="admin-upload-cancel", on_click=job.cancel,
              disabled=status.cancel_requested or status.phase is import_jobs.Phase.finishing,
              help="Stops the import at its next chunk and rolls it back: nothing is imported")


def _progress_text(status: import_jobs.JobStatus) -> str:
    if status.cancel_requested and status.phase is not import_jobs.Phase.finishing:
        return "Cancelling: rolling the import back..."
    if status.phase is import_jobs.Phase.checking:
        return f"Checking your account and the file's labels before importing {status.total_items:,} items..."
    if status.phase is import_jobs.Phase.finishing:
        return f"Saving {status.total_items:,} items (this last step cannot be cancelled)..."
    return f"Importing {status.done_items:,} of {status.total_items:,} items"


def _outcome(status: import_jobs.JobStatus) -> None:
    started: Started = st.session_state[JOB]
    st.caption(f"Import of {render.text(started.file)} into {render.text(repr(started.project))}, {status.seconds:.1f} s")
    if status.state is import_jobs.JobState.done:
        st.success(f"Imported {status.result.describe()}.")
    elif status.state is import_jobs.JobState.cancelled:
        st.info("Import cancelled: nothing was imported.")
    else:
        st.error(f"Nothing was imported: {render.text(status.error)}")
