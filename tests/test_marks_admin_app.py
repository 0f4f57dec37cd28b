"""The Admin page for spans and boxes projects (Streamlit's AppTest, SQLite and PostgreSQL): create one by its kind, be
told what is wrong with a wrong combination, and be offered the kind's export formats only."""

from __future__ import annotations

from test_app import add_user, errors, logged_in

from superintendent import queue
from superintendent.store import session_scope


def _create(at, name: str, kind: str, data_type: str, options: str):
    at.text_input(key="admin-project-name").input(name)
    at.selectbox(key="admin-project-label_mode").set_value(kind)
    at.selectbox(key="admin-project-data_type").set_value(data_type)
    at.text_area(key="admin-project-options").input(options)
    next(b for b in at.button if b.label == "Create project").click().run()
    return at


def test_an_admin_creates_a_spans_project_and_sees_its_export_formats(app_env):
    add_user(app_env, "boss", role="admin")
    at = logged_in("boss")
    at.switch_page("pages/admin.py").run()
    kinds = at.selectbox(key="admin-project-label_mode")
    assert kinds.options == ["Classification: one label per item", "Classification: several labels per item",
                             "Text spans (mark parts of a text)", "Image boxes (draw boxes on an image)"]
    _create(at, "boxes-on-text", "boxes", "text", "cat")
    shown = [e.replace("\\", "") for e in errors(at)]  # the message is escaped for Markdown (render.text)
    assert any("a boxes project labels image items: its data type (data_type) must be 'image'" in e for e in shown), shown
    _create(at, "ner", "spans", "text", "PER, LOC\nORG")
    assert errors(at) == []
    assert any("Project 'ner' saved." in s.value for s in at.success)
    with session_scope(app_env, write=False) as s:
        assert [(p.name, p.label_mode, p.options) for p in queue.list_projects(s)] == [("ner", "spans", ["PER", "LOC", "ORG"])]
        project = queue.get_project(s, "ner")
        queue.add_items(s, project, ["Ada met Bob."])
    at.run()
    assert at.selectbox(key="admin-export-project").value.name == "ner"
    assert at.radio(key="admin-export-format-spans").options == ["CoNLL-2003 (BIO)", "spaCy JSON Lines", "CSV", "JSON", "Parquet",
                                                           "JSON Lines (items)", "Label Studio JSON"]
    at.radio(key="admin-export-format-spans").set_value("conll").run()
    at.button(key="admin-export-prepare").click().run()
    assert errors(at) == []
    assert at.get("download_button")
