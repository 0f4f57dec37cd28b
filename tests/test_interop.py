"""Interop: Label Studio tasks and JSON Lines of items, out and back in without loss, on SQLite and PostgreSQL.

Round trips go export -> import into a fresh project -> compare what the
database holds (items, each annotator's label and time, the queue's
consensus). Bad files raise ValidationError naming the task and import nothing.
"""

from __future__ import annotations

import base64
import datetime as dt
import io
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa
from PIL import Image
from streamlit.testing.v1 import AppTest

from superintendent import auth, export, importing, ingest, queue, reports, serialization
from superintendent.store import Annotation, Item, User, session_scope
from superintendent.validation import ValidationError

APP = str(Path(__file__).resolve().parents[1] / "streamlit_app.py")
PASSWORD = "correct horse battery"
T0 = dt.datetime(2024, 5, 1, 10, 0, 0, 123456, tzinfo=dt.UTC)


# --------------------------------------------------------------------------- helpers


def new_project(engine, name, **settings):
    with session_scope(engine) as s:
        return queue.create_project(s, name, **settings)


def item_ids(engine, project):
    with session_scope(engine, write=False) as s:
        return dict(s.execute(sa.select(Item.external_id, Item.id).where(Item.project_id == project.id)).all())


def label(engine, project, user, external_id, value, minute, seconds=2.5):
    """``user`` (created as a labeller if new) labels an item at T0 + minute."""
    with session_scope(engine) as s:
        try:
            uid = auth.get_user(s, user).id
        except Exception:  # noqa: BLE001 - a new user
            uid = auth.create_user(s, user, PASSWORD).id
        proj = queue.get_project(s, project.id)
        queue.submit(s, proj, uid, item_ids(engine, project)[external_id], value, time_taken=seconds,
                     now=T0 + dt.timedelta(minutes=minute))


def state(engine, project):
    """(items by external id, each annotator's (label, time, seconds), consensus (label, tie) per finished item)."""
    with session_scope(engine, write=False) as s:
        rows = s.execute(sa.select(Item.id, Item.external_id, Item.data).where(Item.project_id == project.id)).all()
        log = queue.annotation_log(s, project)
        done = queue.labelled_data(s, project)
    ext = {r.id: r.external_id for r in rows}
    items = {r.external_id: serialization.loads(r.data) for r in rows}
    annotations = {(a.external_id, a.username): (a.label, a.created_at, a.time_taken) for a in log}
    consensus = {ext[i]: (lab, i in done.ties) for i, lab in zip(done.item_ids, done.labels)}
    return items, annotations, consensus


def n_items(engine, project=None):
    with session_scope(engine, write=False) as s:
        stmt = sa.select(sa.func.count()).select_from(Item)
        if project is not None:
            stmt = stmt.where(Item.project_id == project.id)
        return s.execute(stmt).scalar_one()


def usernames(engine):
    with session_scope(engine, write=False) as s:
        return set(s.execute(sa.select(User.username)).scalars())


def import_file(engine, project, filename, data, upload_dir, user_map=None, **kwargs):
    with session_scope(engine, write=False) as s:
        proj = queue.get_project(s, project.id)
    prepared = ingest.prepare_upload(filename, data, options=proj.options, label_mode=proj.label_mode, upload_dir=upload_dir,
                                     allow_free_text=proj.allow_free_text, **kwargs)
    return importing.import_prepared(engine, proj, prepared, user_map=user_map)


# A copy on the same server: the admin maps the file's annotators to their own accounts (unmapped, they would get
# import-only accounts "_import:<name>").
SAME = {u: u for u in ("alice", "bob", "carol")}


def png(colour, size=(6, 4)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, colour).save(buf, format="PNG")
    return buf.getvalue()


def zip_of(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, raw in files.items():
            zf.writestr(name, raw)
    return buf.getvalue()


COLOURS = {"red.png": (255, 0, 0), "green.png": (0, 255, 0), "blue.png": (0, 0, 255), "grey.png": (90, 90, 90)}


def filled_project(engine, tmp_path, name, kind, label_mode):
    """A project with 4 items, 2 annotations wanted, and: an agreed item, a tie, a half-done item, an unlabelled one."""
    multi = label_mode == "multi"
    options = ["cat", "dog", "bird"]
    project = new_project(engine, name, options=options, label_mode=label_mode, annotations_per_item=2, data_type=kind)
    if kind == "text":
        items = ["purrs on the sofa", "barks at the post", "sings at dawn", "sleeps all day"]
        with session_scope(engine) as s:
            queue.add_items(s, queue.get_project(s, project.id), items, external_ids=["10", "11", "t-12", "13"])
        ids = ["10", "11", "t-12", "13"]
    else:
        import_file(engine, project, "pets.zip", zip_of({n: png(c) for n, c in COLOURS.items()}), tmp_path / "uploads")
        ids = list(item_ids(engine, project))
    a, b = (["cat", "bird"], ["dog"]) if multi else ("cat", "dog")
    label(engine, project, "alice", ids[0], a, 1)
    label(engine, project, "bob", ids[0], a, 2, seconds=4.0)
    label(engine, project, "alice", ids[1], a, 3)
    label(engine, project, "bob", ids[1], b, 4)  # a tie
    label(engine, project, "carol", ids[2], b, 5, seconds=None)  # half done
    return project


# --------------------------------------------------------------------------- round trips


@pytest.mark.parametrize("label_mode", ["single", "multi"])
@pytest.mark.parametrize("kind", ["text", "image"])
@pytest.mark.parametrize("fmt", ["label-studio", "jsonl"])
def test_export_then_import_into_a_fresh_project_keeps_everything(engine, tmp_path, fmt, kind, label_mode):
    source = filled_project(engine, tmp_path, "source", kind, label_mode)
    data = export.export_labels(engine, source, fmt)
    assert ingest.detect_format(f"out.{export.EXTENSIONS[fmt]}", data) == ("label-studio" if fmt == "label-studio" else "items-jsonl")
    copy = new_project(engine, "copy", options=["cat", "dog", "bird"], label_mode=label_mode, annotations_per_item=2)
    result = import_file(engine, copy, f"out.{export.EXTENSIONS[fmt]}", data, tmp_path / "uploads", user_map=SAME)
    assert (result.added, result.labelled) == (4, 5)
    before, after = state(engine, source), state(engine, copy)
    assert after == before
    items, annotations, consensus = after
    assert len(items) == 4 and len(annotations) == 5 and len(consensus) == 2
    assert sorted(tie for _, tie in consensus.values()) == [False, True]
    # importing the same file again changes nothing
    again = import_file(engine, copy, f"out.{export.EXTENSIONS[fmt]}", data, tmp_path / "uploads", user_map=SAME)
    assert again.added == 0 and state(engine, copy) == before


def test_image_project_travels_as_a_label_studio_zip_to_another_server(engine, tmp_path):
    source = filled_project(engine, tmp_path, "source", "image", "single")
    tasks = json.loads(export.export_labels(engine, source, "label-studio", image_value="name"))
    assert sorted(t["data"]["image"] for t in tasks) == sorted(COLOURS)
    # Label Studio's own upload URLs name files by /data/upload/<project>/<file>; the ZIP holds them by file name
    for t in tasks:
        t["data"]["image"] = f"/data/upload/3/{t['data']['image']}"
    bundle = zip_of({"export/tasks.json": json.dumps(tasks).encode(), **{f"imgs/{n}": png(c) for n, c in COLOURS.items()}})
    assert ingest.detect_format("bundle.zip", bundle) == "label-studio"
    copy = new_project(engine, "copy", options=["cat", "dog", "bird"], annotations_per_item=2)
    other_server = tmp_path / "elsewhere"
    assert import_file(engine, copy, "bundle.zip", bundle, other_server, user_map=SAME).added == 4
    items_before, ann_before, cons_before = state(engine, source)
    items_after, ann_after, cons_after = state(engine, copy)
    assert ann_after == ann_before and cons_after == cons_before
    for ext, item in items_after.items():
        assert item["name"] == items_before[ext]["name"]
        assert Path(item["image_path"]).is_relative_to(other_server.resolve())
        assert Path(item["image_path"]).read_bytes() == Path(items_before[ext]["image_path"]).read_bytes()
    with session_scope(engine, write=False) as s:
        paths = s.execute(sa.select(Item.file_path).where(Item.project_id == copy.id)).scalars().all()
    assert all(Path(p).is_file() for p in paths)


def test_label_studio_to_us_to_label_studio_keeps_the_fields_we_carry(engine, tmp_path):
    choice = lambda *c: [{"id": "r1", "type": "choices", "from_name": "sentiment", "to_name": "text",
                          "value": {"choices": list(c)}}]
    tasks = [
        {"id": 11, "data": {"text": "purrs"}, "annotations": [
            {"completed_by": {"id": 1, "email": "ann@lab.org", "first_name": "Ann"}, "result": choice("cat"),
             "created_at": "2024-05-01T10:00:00.123456Z", "lead_time": 3.25},
            {"completed_by": 7, "result": choice("dog"), "created_at": "2024-05-01T10:05:00Z", "lead_time": 1.0},
            {"completed_by": 8, "result": [], "was_cancelled": True}],
         "predictions": [{"model_version": "m1", "score": 0.9, "result": choice("dog")}]},
        {"id": 12, "data": {"text": "barks"}, "annotations": [
            {"completed_by": {"email": "ann@lab.org"}, "result": choice("dog"), "created_at": "2024-05-02T08:00:00Z", "lead_time": 2.0}]},
        {"id": 13, "data": {"text": "tweets"}},
    ]
    project = new_project(engine, "ls", options=["cat", "dog"], annotations_per_item=2)
    result = import_file(engine, project, "tasks.json", json.dumps(tasks).encode(), tmp_path / "up")
    assert (result.added, result.labelled) == (3, 3)
    items, annotations, consensus = state(engine, project)
    assert items == {"11": "purrs", "12": "barks", "13": "tweets"}
    assert set(annotations) == {("11", "_import:ann@lab.org"), ("11", "_import:ls-7"), ("12", "_import:ann@lab.org")}
    assert consensus == {"11": ("cat", True)}  # a tie goes to the label given first
    with session_scope(engine, write=False) as s:
        assert auth.get_user(s, "_import:ls-7").password_hash is None  # annotators cannot log in

    back = json.loads(export.export_labels(engine, project, "label-studio", from_name="sentiment"))

    def carried(task_list):
        out = {}
        for t in task_list:
            anns = []
            for a in t.get("annotations", []):
                if a.get("was_cancelled"):
                    continue
                who = a["completed_by"]["email"] if isinstance(a["completed_by"], dict) else a["completed_by"]
                stamp = dt.datetime.fromisoformat(a["created_at"])
                anns.append((who, [r["value"]["choices"] for r in a["result"]], [(r["from_name"], r["to_name"]) for r in a["result"]],
                             stamp, a["lead_time"]))
            out[t["id"]] = (t["data"], sorted(anns, key=str))
        return out

    assert carried(back) == carried(tasks)


def test_data_uri_images_and_a_named_data_key(engine, tmp_path):
    tasks = [{"data": {"caption": "a red one", "photo": "data:image/png;base64," + base64.b64encode(png((255, 0, 0))).decode()},
              "annotations": [{"completed_by": "Zed@Lab.org", "result": [{"type": "choices", "from_name": "c", "to_name": "photo",
                                                                           "value": {"choices": ["cat"]}}]}]}]
    project = new_project(engine, "uri", options=["cat", "dog"])
    assert import_file(engine, project, "t.json", json.dumps(tasks).encode(), tmp_path / "up", data_key="photo").added == 1
    items, annotations, consensus = state(engine, project)
    (item,) = items.values()
    assert Image.open(item["image_path"]).getpixel((0, 0)) == (255, 0, 0)
    assert [user for _, user in annotations] == ["_import:zed@lab.org"] and list(consensus.values()) == [("cat", False)]


def test_tasks_with_several_data_keys_become_table_rows(engine, tmp_path):
    tasks = [{"id": 1, "data": {"title": "A", "body": "x"}}, {"id": 2, "data": {"title": "B", "body": "y"}}]
    project = new_project(engine, "rows", options=["cat"])
    import_file(engine, project, "t.json", json.dumps(tasks).encode(), tmp_path / "up")
    assert state(engine, project)[0] == {"1": {"title": "A", "body": "x"}, "2": {"title": "B", "body": "y"}}
    with session_scope(engine, write=False) as s:
        assert queue.get_project(s, "rows").display_columns == ["title", "body"]


def test_free_text_project_takes_unknown_choices(engine, tmp_path):
    tasks = [{"id": 1, "data": {"text": "x"}, "annotations": [{"result": [{"type": "choices", "from_name": "c", "to_name": "text",
                                                                          "value": {"choices": ["ferret"]}}]}]}]
    project = new_project(engine, "free", options=["cat"], allow_free_text=True)
    import_file(engine, project, "t.json", json.dumps(tasks).encode(), tmp_path / "up")
    (((key, (value, _, seconds)),)) = state(engine, project)[1].items()
    assert (key, value, seconds) == (("1", "_import"), "ferret", None)  # no completed_by: the importer's system user


def final(engine, project):
    with session_scope(engine, write=False) as s:
        return [(f.external_id, f.label, f.source, f.tie, f.reviewed_by, f.reviewed_at) for f in queue.final_labels(s, project)]


def test_a_reviewers_correction_travels_in_json_lines(engine, tmp_path):
    source = filled_project(engine, tmp_path, "source", "text", "single")
    with session_scope(engine) as s:
        rita = auth.create_user(s, "rita", PASSWORD, "reviewer").id
        queue.set_review(s, queue.get_project(s, source.id), rita, item_ids(engine, source)["11"], "cat", now=T0 + dt.timedelta(hours=1))
    data = export.export_labels(engine, source, "jsonl")
    line = next(json.loads(x) for x in data.decode().splitlines() if json.loads(x)["external_id"] == "11")
    assert line["review"] == {"value": "cat", "by": "rita", "at": "2024-05-01T11:00:00.123456Z"} and line["label"] == "cat"
    per_item = pd.read_csv(io.BytesIO(export.export_labels(engine, source, "csv")), dtype=str, keep_default_na=False)
    assert per_item.set_index("external_id")["reviewed_by"].to_dict() == {"10": "", "11": "rita"}

    copy = new_project(engine, "copy", options=["cat", "dog", "bird"], annotations_per_item=2)
    import_file(engine, copy, "items.jsonl", data, tmp_path / "up", user_map={**SAME, "rita": "rita"})
    assert final(engine, copy) == final(engine, source)
    assert [row[2] for row in final(engine, copy)] == ["consensus", "review"]
    assert state(engine, copy) == state(engine, source)

    # on a server without that reviewer, the import says so and imports nothing
    with session_scope(engine) as s:
        auth.set_role(s, "rita", "labeller")
    other = new_project(engine, "other", options=["cat", "dog", "bird"], annotations_per_item=2)
    with pytest.raises(ValidationError, match="item '11', review by 'rita'.*nothing was imported"):
        import_file(engine, other, "items.jsonl", data, tmp_path / "up")
    assert n_items(engine, other) == 0


# --------------------------------------------------------------------------- exports as tables


def test_tables_give_the_consensus_or_every_annotation(engine, tmp_path):
    project = filled_project(engine, tmp_path, "p", "text", "multi")
    per_item = pd.read_parquet(io.BytesIO(export.export_labels(engine, project, "parquet")))
    assert list(per_item.columns) == ["item_id", "external_id", "text", "label", "tie", "n_annotations", "labelled_by", "labelled_at",
                                      "reviewed_by"]
    assert per_item.set_index("external_id")["tie"].to_dict() == {"10": False, "11": True}
    assert [list(v) for v in per_item["label"]] == [["cat", "bird"], []]  # multi-label: only labels chosen by a majority

    every = pd.read_csv(io.BytesIO(export.export_labels(engine, project, "csv", individual=True)), dtype=str, keep_default_na=False)
    assert list(every.columns) == ["item_id", "external_id", "user", "label", "created_at", "time_taken_s", "consensus", "tie"]
    assert list(zip(every["external_id"], every["user"], every["label"], every["consensus"])) == [
        ("10", "alice", "cat;bird", "cat;bird"), ("10", "bob", "cat;bird", "cat;bird"), ("11", "alice", "cat;bird", ""),
        ("11", "bob", "dog", ""), ("t-12", "carol", "dog", "")]
    rows = json.loads(export.export_labels(engine, project, "json", individual=True))
    assert rows[-1]["time_taken_s"] is None and rows[0]["time_taken_s"] == 2.5
    assert dt.datetime.fromisoformat(rows[0]["created_at"]) == T0 + dt.timedelta(minutes=1)
    with pytest.raises(ValidationError, match="always holds every annotation"):
        export.export_labels(engine, project, "jsonl", individual=True)


def test_one_annotations_frame_for_exports_and_the_progress_page(engine, tmp_path):
    project = filled_project(engine, tmp_path, "p", "text", "multi")
    with session_scope(engine) as s:  # the importer's labels are annotations too, but not a labeller's
        queue.add_items(s, queue.get_project(s, project.id), ["naps"], external_ids=["14"], labels=[["dog"]])
    frame = export.annotations_frame(engine, project)
    assert list(frame.columns) == ["item_id", "external_id", "user", "label", "created_at", "time_taken_s"]
    assert list(frame["user"]) == ["alice", "bob", "alice", "bob", "carol", "_import"]
    every = export.labels_frame(engine, project, individual=True)
    pd.testing.assert_frame_equal(every[list(frame.columns)], frame)
    people = export.annotations_frame(engine, project, include_import=False)
    shown = reports.annotations_frame(engine, project)
    assert list(shown.columns) == ["user", "label", "created_at", "time_taken_s"]
    assert list(shown["user"]) == list(people["user"]) and list(shown["label"])[:2] == ["cat;bird", "cat;bird"]


# --------------------------------------------------------------------------- bad input imports nothing


def ls_task(i, choices=("cat",), **extra):
    return {"id": i, "data": {"text": f"text {i}"}, "annotations": [
        {"completed_by": {"email": f"u{i}@x.org"}, "result": [{"type": "choices", "from_name": "c", "to_name": "text",
                                                               "value": {"choices": list(choices)}}]}], **extra}


def as_json(tasks):
    return json.dumps(tasks).encode()


BAD = [
    ("unknown choice", "t.json", as_json([ls_task(1), ls_task(2, ["hamster"])]), {}, r"task 2 \(id 2\).*'hamster'"),
    ("several choices, single project", "t.json", as_json([ls_task(1, ["cat", "dog"])]), {}, "multi-label project"),
    ("not choices", "t.json", as_json([{"id": 1, "data": {"image": "x.png"}, "annotations": [
        {"result": [{"type": "rectanglelabels", "value": {}}]}]}]), {"fmt": "label-studio"}, r"\(type 'choices'\) only"),
    ("url image", "t.json", as_json([{"id": 1, "data": {"image": "https://example.com/a.png"}}]), {}, "never fetches files from the network"),
    ("missing in zip", "b.zip", zip_of({"t.json": as_json([{"id": 1, "data": {"image": "/data/upload/1/gone.png"}}]),
                                       "other.png": png((1, 2, 3))}), {}, "not in the ZIP"),
    ("two json files", "b.zip", zip_of({"a.json": as_json([ls_task(1)]), "b.json": as_json([ls_task(2)])}), {}, "exactly one .json"),
    ("unsafe entry", "b.zip", zip_of({"t.json": as_json([ls_task(1)]), "../evil.png": png((0, 0, 0))}), {}, "unsafe names"),
    ("not an image", "b.zip", zip_of({"t.json": as_json([{"id": 1, "data": {"image": "a.png"}}]), "a.png": b"not a png"}), {},
     r"a.png is not an image \(PNG or JPEG expected\)"),
    ("bad base64", "t.json", as_json([{"id": 1, "data": {"image": "data:image/png;base64,@@@"}}]), {}, r"is not an image \(PNG or JPEG expected\)|base64"),
    ("duplicate ids", "t.json", as_json([ls_task(1), ls_task(1)]), {}, "has the id '1' of task 1"),
    ("same annotator twice", "t.json", as_json([{**ls_task(1), "annotations": ls_task(1)["annotations"] * 2}]), {}, "two annotations by"),
    ("two controls", "t.json", as_json([ls_task(1), {**ls_task(2), "annotations": [{"result": [
        {"type": "choices", "from_name": "other", "to_name": "text", "value": {"choices": ["cat"]}}]}]}]), {}, "several controls"),
    ("unknown control", "t.json", as_json([ls_task(1)]), {"from_name": "nope"}, "no choices from the control 'nope'"),
    ("missing data key", "t.json", as_json([ls_task(1)]), {"data_key": "body"}, "no data key 'body'"),
    ("not a list", "t.json", b'{"tasks": []}', {"fmt": "label-studio"}, "Label Studio tasks"),
    ("broken json", "t.json", b'[{"data": {"text": "a"}', {"fmt": "label-studio"}, "not valid JSON"),
    ("task without data", "t.json", as_json([ls_task(1), {"id": 2}]), {"fmt": "label-studio"}, "task 2.*no \"data\" object"),
    ("bad created_at", "t.json", as_json([{**ls_task(1), "annotations": [{**ls_task(1)["annotations"][0], "created_at": "yesterday"}]}]),
     {}, "not an ISO 8601"),
    ("jsonl unknown label", "i.jsonl", b'{"external_id": "a", "data": "x", "annotations": [{"user": "u", "value": "yak"}]}\n', {},
     "'yak'"),
    ("jsonl foreign file", "i.jsonl", b'{"external_id": "a", "data": "x", "file_path": "/etc/passwd", "annotations": []}\n', {},
     "not a file in this server's upload folder"),
]


@pytest.mark.parametrize("filename, data, kwargs, fragment", [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_files_say_what_is_wrong_and_import_nothing(engine, tmp_path, filename, data, kwargs, fragment):
    project = new_project(engine, "p", options=["cat", "dog"])
    users = usernames(engine)
    with pytest.raises(ValidationError, match=fragment):
        import_file(engine, project, filename, data, tmp_path / "up", **kwargs)
    assert n_items(engine) == 0 and usernames(engine) == users
    leftovers = [p for p in (tmp_path / "up").rglob("*") if p.is_file()] if (tmp_path / "up").exists() else []
    assert leftovers == []


def test_limits_apply_to_tasks(engine, tmp_path):
    project = new_project(engine, "p", options=["cat"])
    data = as_json([ls_task(i) for i in range(5)])
    with pytest.raises(ValidationError, match="5 tasks; the limit is 4"):
        ingest.prepare_upload("t.json", data, options=["cat"], limits=ingest.ImportLimits(max_rows=4))
    with pytest.raises(ValidationError, match="the limit is"):
        ingest.prepare_upload("t.json", data, options=["cat"], limits=ingest.ImportLimits(max_bytes=100))
    assert n_items(engine, project) == 0


def test_a_label_dropped_from_the_options_after_the_check_rolls_the_whole_import_back(engine, tmp_path):
    project = new_project(engine, "p", options=["cat", "dog"])
    prepared = ingest.prepare_upload("t.json", as_json([ls_task(1), ls_task(2, ["dog"])]), options=["cat", "dog"])
    with session_scope(engine) as s:
        queue.update_project(s, queue.get_project(s, "p"), options=["cat"])
    with pytest.raises(ValidationError, match="nothing was imported"):
        importing.import_prepared(engine, project, prepared)
    assert n_items(engine) == 0
    with session_scope(engine, write=False) as s:
        assert s.execute(sa.select(sa.func.count()).select_from(Annotation)).scalar_one() == 0


def test_sniffing_keeps_ordinary_tables_as_tables():
    assert ingest.detect_format("t.json", b'[{"text": "a", "label": "cat"}]') == "json"
    assert ingest.detect_format("t.json", b'[{"data": "not an object"}]') == "json"
    assert ingest.detect_format("t.json", as_json([ls_task(1)])) == "label-studio"
    assert ingest.detect_format("t.jsonl", b'{"text": "a"}\n') == "jsonl"
    assert ingest.detect_format("t.zip", zip_of({"a.png": png((0, 0, 0))})) == "zip"
    assert ingest.detect_format("t.json") == "json"


# --------------------------------------------------------------------------- command line and Admin page


def test_cli_imports_and_exports_label_studio_and_jsonl(db_url, tmp_path):
    env = {**os.environ, "SUPERINTENDENT_DATABASE_URL": db_url, "SUPERINTENDENT_DATA_DIR": str(tmp_path / "data")}

    def cli(*args):
        return subprocess.run([sys.executable, "-m", "superintendent.cli", *args], capture_output=True, text=True, env=env, timeout=120, check=False)

    for name in ("pets", "copy"):
        assert cli("create-project", name, "--options", "cat,dog", "--annotations-per-item", "2").returncode == 0
    tasks = [ls_task(1), {**ls_task(2, ["dog"]), "annotations": ls_task(2, ["dog"])["annotations"] + ls_task(3)["annotations"]}]
    (tmp_path / "tasks.json").write_bytes(as_json(tasks))
    out = cli("import", "pets", str(tmp_path / "tasks.json"), "--format", "label-studio", "--from-name", "c")
    assert out.returncode == 0, out.stderr
    assert "2 new items" in out.stdout and ("3 labels" in out.stdout or "labels: 3 new" in out.stdout)

    assert cli("export", "pets", "--format", "jsonl", "-o", str(tmp_path / "items.jsonl")).returncode == 0
    assert cli("import", "copy", str(tmp_path / "items.jsonl")).returncode == 0
    assert cli("export", "copy", "--format", "jsonl", "-o", str(tmp_path / "again.jsonl")).returncode == 0
    strip = lambda path: [{k: v for k, v in json.loads(line).items() if k != "id"} for line in path.read_text().splitlines()]
    assert strip(tmp_path / "again.jsonl") == strip(tmp_path / "items.jsonl")
    assert [line["tie"] for line in strip(tmp_path / "items.jsonl")] == [False, True]

    assert cli("export", "pets", "--format", "label-studio", "--from-name", "sentiment", "-o", str(tmp_path / "ls.json")).returncode == 0
    back = json.loads((tmp_path / "ls.json").read_text())
    assert [len(t["annotations"]) for t in back] == [1, 2]
    assert back[1]["annotations"][0]["result"][0]["from_name"] == "sentiment"
    assert cli("export", "pets", "--format", "csv", "--individual", "-o", str(tmp_path / "all.csv")).returncode == 0
    assert (tmp_path / "all.csv").read_text().splitlines()[0] == "item_id,external_id,user,label,created_at,time_taken_s,consensus,tie"

    bad = cli("export", "pets", "--format", "jsonl", "--individual", "-o", str(tmp_path / "x"))
    assert bad.returncode == 2 and "always holds every annotation" in bad.stderr
    (tmp_path / "bad.json").write_bytes(as_json([ls_task(7, ["hamster"])]))
    bad = cli("import", "copy", str(tmp_path / "bad.json"))
    assert bad.returncode == 2 and bad.stderr.startswith("error: ") and "'hamster'" in bad.stderr and "task 1 (id 7)" in bad.stderr
    assert "Traceback" not in bad.stderr
    cli("export", "copy", "--format", "csv", "--individual", "-o", str(tmp_path / "copy.csv"))
    assert "text 7" not in (tmp_path / "copy.csv").read_text() and len((tmp_path / "copy.csv").read_text().splitlines()) == 4


@pytest.fixture
def app_env(db_url, tmp_path, monkeypatch, engine):
    monkeypatch.setenv("SUPERINTENDENT_DATABASE_URL", db_url)
    monkeypatch.setenv("SUPERINTENDENT_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("SUPERINTENDENT_RUN_SCHEDULER", "false")
    return engine


def admin_page():
    at = AppTest.from_file(APP, default_timeout=60).run()
    at.text_input[0].input("boss")
    at.text_input[1].input(PASSWORD)
    at.button[0].click().run()
    at.run()
    at.switch_page("pages/admin.py").run()
    return at


def test_admin_uploads_label_studio_tasks_and_exports_them(app_env, tmp_path):
    with session_scope(app_env) as s:
        auth.create_user(s, "boss", PASSWORD, "admin")
    project = new_project(app_env, "pets", options=["cat", "dog"])
    at = admin_page()
    at.file_uploader(key="admin-upload-file").set_value(("tasks.json", as_json([ls_task(1), ls_task(2, ["dog"])]), "application/json"))
    at.run()
    assert not at.exception and [e.value for e in at.error] == []
    assert at.selectbox(key="admin-upload-format").value == "label-studio"
    at.button(key="admin-upload-import").click().run()
    assert [e.value for e in at.error] == []
    assert state(app_env, project)[2] == {"1": ("cat", False), "2": ("dog", False)}

    at.file_uploader(key="admin-upload-file").set_value(("bad.json", as_json([ls_task(3, ["yak"])]), "application/json"))
    at.run()
    assert any("This file cannot be imported" in e.value and "'yak'" in e.value for e in at.error)
    assert n_items(app_env, project) == 2
    at.file_uploader(key="admin-upload-file").set_value(None)

    at.radio(key="admin-export-format").set_value("label-studio").run()
    at.text_input(key="admin-export-from-name").input("sentiment").run()
    at.button(key="admin-export-prepare").click().run()
    (download,) = at.get("download_button")
    assert not at.exception and download.proto.label == "Download Label Studio JSON"
    exported = at.session_state["admin-export-bytes"][2]
    assert {r["from_name"] for t in json.loads(exported) for a in t["annotations"] for r in a["result"]} == {"sentiment"}
    at.radio(key="admin-export-format").set_value("csv").run()
    at.checkbox(key="admin-export-individual").check().run()
    at.button(key="admin-export-prepare").click().run()
    assert at.get("download_button") and [e.value for e in at.error] == []
