"""Admin, Export labels and Audit log tabs."""

from __future__ import annotations

import json
import re
import tempfile

import pandas as pd
import streamlit as st

from superintendent import audit, export
from superintendent.app import render, resources
from superintendent.app.guard import Note, guarded_engine_action
from superintendent.app.login import CurrentUser
from superintendent.app.widgets import all_projects
from superintendent.store import session_scope
from superintendent.validation import SuperintendentError

AUDIT_ROWS = 200
SPOOL_BYTES = 64 * 1024 * 1024  # an export larger than this is written to a temporary file while it is made
EXPORT_AS = {"csv": "CSV", "json": "JSON", "parquet": "Parquet", "jsonl": "JSON Lines (items)", "label-studio": "Label Studio JSON",
             "conll": "CoNLL-2003 (BIO)", "spacy": "spaCy JSON Lines", "coco": "COCO (ZIP with images)",
             "yolo": "YOLO (ZIP with images)"}

FORMAT_NOTES = {  # what the formats of spans and boxes projects hold (docs/spans-and-boxes.md has them in full)
    "conll": "One token per line with its BIO tag (B-PER, I-PER, O), a -DOCSTART- line before each item, a blank line "
             "after each sentence. Finished items only, with their final spans.",
    "spacy": "One line per finished item: its text, its spans (start, end, label) and its id.",
    "coco": "A ZIP: annotations.json (images, boxes as [x, y, width, height] in pixels, categories from the options) and "
            "every image under images/. Finished items only; an item with nothing marked is an image without boxes.",
    "yolo": "A ZIP: images/, labels/ (one line per box: class, centre x and y, width, height as fractions of the image), "
            "classes.txt and data.yaml. Finished items only; an item with nothing marked gets an empty labels file.",
}


def export_tab(user: CurrentUser) -> None:
    projects = all_projects()
    if not projects:
        st.info("No projects yet.")
        return
    project = st.selectbox("Project", projects, format_func=lambda p: p.name, key="admin-export-project")
    formats = export.formats_for(project.label_mode)  # a spans project's CoNLL, a boxes project's COCO, ...: only what fits
    kind = project.label_mode if project.label_mode in export.KIND_FORMATS else ""  # one choice kept per list of formats
    fmt = st.radio("Format", formats, horizontal=True, key="-".join(filter(None, ("admin-export-format", kind))),
                   format_func=lambda f: EXPORT_AS.get(f, f))
    if fmt in FORMAT_NOTES:
        st.caption(render.text(FORMAT_NOTES[fmt]))
    individual = False
    ls_options: dict = {}
    if fmt in export.TABLE_FORMATS:
        individual = st.checkbox("Every individual annotation (one row per annotation, beside the consensus)", key="admin-export-individual")
    elif fmt == "label-studio":
        c1, c2, c3 = st.columns(3)
        control = {"spans": "Labels control", "boxes": "RectangleLabels control"}.get(project.label_mode, "Choices control")
        ls_options = {"from_name": c1.text_input(f"{control} (from_name)", value="label", key="admin-export-from-name") or "label",
                      "to_name": c2.text_input("Object (to_name; default: text or image)", key="admin-export-to-name") or None,
                      "image_value": c3.selectbox("Images as", ["path", "name"], key="admin-export-image-value",
                                                  format_func={"path": "file path on this server", "name": "original file name"}.get)}
    if st.button("Prepare export", key="admin-export-prepare"):
        bar = st.progress(0.0, text="Collecting labels...")

        def write(engine) -> bytes:  # read and written a batch of items at a time, the bar moving after each batch
            with tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES) as out:
                export.write_labels(engine, project, fmt, out, individual=individual,
                                    progress=lambda f: bar.progress(f, text=f"Writing the export: {f:.0%} of the items"), **ls_options)
                out.seek(0)
                return out.read()

        try:
            data = guarded_engine_action(
                user, "export", write,
                audit=lambda exported: Note(audit.AuditAction.labels_export, project.name,
                                            {"format": fmt, "individual": individual, "bytes": len(exported)}))
        except SuperintendentError as exc:
            bar.empty()
            st.error(render.text(exc))
        else:
            empty = " (no finished items yet)" if fmt in ("conll", "spacy") and not data else ""
            bar.progress(1.0, text=f"Export ready: {len(data):,} bytes{empty}")
            st.session_state["admin-export-bytes"] = (project.id, (fmt, individual, sorted(ls_options.items())), data)
    ready = st.session_state.get("admin-export-bytes")
    if ready and ready[0] == project.id and ready[1] == (fmt, individual, sorted(ls_options.items())):
        slug = re.sub(r"[^A-Za-z0-9]+", "-", project.name).strip("-").lower() or "labels"
        suffix = {"label-studio": "-label-studio", "jsonl": "-items", "coco": "-coco", "yolo": "-yolo", "spacy": "-spacy"}.get(
            fmt, "-annotations" if individual else "-labels")
        st.download_button(f"Download {EXPORT_AS.get(fmt, fmt)}", ready[2], file_name=f"{slug}{suffix}.{export.EXTENSIONS[fmt]}",
                           mime=export.FORMATS[fmt], key="admin-export-download")


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
