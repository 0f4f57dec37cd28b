"""Spans and boxes in and out: CoNLL, spaCy JSON Lines, COCO, YOLO and Label Studio, on SQLite and PostgreSQL.

Each export is read back the way its users read it (CoNLL token by token, COCO with pycocotools, the ZIP's images
with Pillow, YOLO's numbers by hand); Label Studio tasks go out and come back into a fresh project equal to the
character and to the pixel; malformed files are refused with a message and import nothing.
"""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa
from PIL import Image
from pycocotools.coco import COCO

from superintendent import export, importing, ingest, queue
from superintendent.auth import ensure_user
from superintendent.export.spans import tagged_tokens
from superintendent.queue import Action
from superintendent.queue.transfer import external_item_ids
from superintendent.store import Annotation, Item, Role, session_scope
from superintendent.validation import ValidationError

TEXTS = {"t1": "Ada Lovelace met Charles Babbage in London.",
         "t2": "Paris is big.\nRome is old.",
         "t3": "Nothing here.",
         "t4": "Not labelled yet."}
NER = ["PER", "LOC"]
T1 = [{"start": 0, "end": 12, "label": "PER"}, {"start": 17, "end": 32, "label": "PER"}, {"start": 36, "end": 42, "label": "LOC"}]
T2 = [{"start": 0, "end": 5, "label": "LOC"}, {"start": 14, "end": 18, "label": "LOC"}]


def submit(engine, project, user: str, external_id: str, value) -> None:
    """``user`` submits ``value`` for the item ``external_id`` through the queue (checked as the Label page's are)."""
    with session_scope(engine) as s:
        uid = ensure_user(s, user, role=Role.labeller)
        item_id = external_item_ids(s, project, [external_id])[external_id]
        queue.act(s, project, uid, Action.submit, item_id=item_id, value=value)


@pytest.fixture
def ner(engine):
    with session_scope(engine) as s:
        project = queue.create_project(s, "ner", label_mode="spans", options=NER, data_type="text")
        queue.add_items(s, project, list(TEXTS.values()), external_ids=list(TEXTS))
    submit(engine, project, "alice", "t1", T1)
    submit(engine, project, "alice", "t2", T2)
    submit(engine, project, "alice", "t3", [])
    return project


def test_bio_tags_give_a_token_partly_inside_a_span_to_that_span():
    text = "Lovelace's engine, NewYork"
    assert tagged_tokens(text, [{"start": 2, "end": 5, "label": "PER"}]) == [  # starts and ends inside "Lovelace": the whole token
        ("Lovelace", "B-PER"), ("'", "O"), ("s", "O"), ("engine", "O"), (",", "O"), ("NewYork", "O")]
    assert tagged_tokens(text, [{"start": 0, "end": 9, "label": "PER"}, {"start": 19, "end": 22, "label": "LOC"},
                           {"start": 22, "end": 26, "label": "PER"}])[:3] == [("Lovelace", "B-PER"), ("'", "I-PER"), ("s", "O")]
    # two spans inside one token: the token takes the first
    assert tagged_tokens(text, [{"start": 19, "end": 22, "label": "LOC"}, {"start": 22, "end": 26, "label": "PER"}])[-1] == ("NewYork", "B-LOC")


def _conll_documents(data: bytes) -> list[list[list[tuple[str, str]]]]:
    """A CoNLL file read as a CoNLL reader does: documents of sentences of (token, tag)."""
    docs: list[list[list[tuple[str, str]]]] = []
    sentence: list[tuple[str, str]] = []
    for line in data.decode("utf-8").split("\n"):
        if line.startswith("-DOCSTART-"):
            assert line == "-DOCSTART- O"
            docs.append([])
            continue
        if not line:
            if sentence:
                docs[-1].append(sentence)
                sentence = []
            continue
        token, tag = line.split(" ")
        sentence.append((token, tag))
    assert not sentence, "the file must end with a blank line"
    return docs


def test_conll_holds_the_finished_items_token_by_token(engine, ner):
    docs = _conll_documents(export.export_labels(engine, ner, "conll"))
    assert len(docs) == 3  # t4 is not finished: left out
    assert docs[0] == [[("Ada", "B-PER"), ("Lovelace", "I-PER"), ("met", "O"), ("Charles", "B-PER"), ("Babbage", "I-PER"),
                        ("in", "O"), ("London", "B-LOC"), (".", "O")]]
    assert docs[1] == [[("Paris", "B-LOC"), ("is", "O"), ("big", "O"), (".", "O")],  # each line of the text is a sentence
                       [("Rome", "B-LOC"), ("is", "O"), ("old", "O"), (".", "O")]]
    assert docs[2] == [[("Nothing", "O"), ("here", "O"), (".", "O")]]  # "nothing to mark": every token O


def test_spacy_jsonl_holds_text_spans_and_id(engine, ner):
    lines = [json.loads(line) for line in export.export_labels(engine, ner, "spacy").decode().splitlines()]
    assert lines == [{"text": TEXTS["t1"], "spans": T1, "id": "t1"}, {"text": TEXTS["t2"], "spans": T2, "id": "t2"},
                     {"text": TEXTS["t3"], "spans": [], "id": "t3"}]
    assert [TEXTS["t1"][s["start"]:s["end"]] for s in lines[0]["spans"]] == ["Ada Lovelace", "Charles Babbage", "London"]


def test_the_exports_use_the_final_value_a_majority_of_marks(engine):
    with session_scope(engine) as s:
        project = queue.create_project(s, "ner3", label_mode="spans", options=NER, data_type="text", annotations_per_item=3)
        queue.add_items(s, project, [TEXTS["t1"]], external_ids=["t1"])
    submit(engine, project, "a", "t1", T1)
    submit(engine, project, "b", "t1", T1[:1])
    submit(engine, project, "c", "t1", T1[:2])
    (line,) = export.export_labels(engine, project, "spacy").decode().splitlines()
    assert json.loads(line)["spans"] == T1[:2]  # London was marked by one of three: not in the final value


def test_kind_formats_are_refused_for_the_other_kinds(engine, ner):
    with pytest.raises(ValidationError, match="coco is an export of boxes projects; project 'ner' is a spans project: export it as conll"):
        export.export_labels(engine, ner, "coco")
    with session_scope(engine) as s:
        pets = queue.create_project(s, "pets", options=["cat", "dog"])
    with pytest.raises(ValidationError, match="conll is an export of spans projects"):
        export.export_labels(engine, pets, "conll")
    assert export.formats_for("spans")[:2] == ["conll", "spacy"] and "coco" not in export.formats_for("spans")
    assert export.formats_for("single") == ["csv", "json", "parquet", "jsonl", "label-studio"]


def test_csv_of_a_spans_project_holds_the_spans_as_json(engine, ner):
    import pandas as pd

    frame = pd.read_csv(io.BytesIO(export.export_labels(engine, ner, "csv")))
    assert [json.loads(v) for v in frame["label"]] == [T1, T2, []]


# --------------------------------------------------------------------------- boxes


def _image(path: Path, size: tuple[int, int], fmt: str = "PNG") -> dict:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, (200, 30, 30)).save(path, format=fmt)
    return {"image_path": str(path), "name": path.name, "width": size[0], "height": size[1]}


B1 = [{"x": 10, "y": 5, "width": 20, "height": 10, "label": "cat"}, {"x": 0.5, "y": 20.25, "width": 7, "height": 3, "label": "dog"}]
B2 = [{"x": 7, "y": 11, "width": 13, "height": 17, "label": "dog"}]


@pytest.fixture
def pets(engine, tmp_path):
    uploads = tmp_path / "uploads"
    items = [_image(uploads / "a" / "cat.png", (64, 48)), _image(uploads / "b" / "cat.png", (300, 200)),
             _image(uploads / "c" / "empty.jpg", (40, 40), "JPEG"), _image(uploads / "d" / "todo.png", (10, 10))]
    with session_scope(engine) as s:
        project = queue.create_project(s, "pets", label_mode="boxes", options=["cat", "dog"], data_type="image")
        queue.add_items(s, project, items, external_ids=["p1", "p2", "p3", "p4"], file_paths=[i["image_path"] for i in items])
    submit(engine, project, "alice", "p1", B1)
    submit(engine, project, "alice", "p2", B2)
    submit(engine, project, "alice", "p3", [])
    return project


def test_coco_zip_holds_every_image_and_pycocotools_reads_the_boxes(engine, pets, tmp_path):
    data = export.export_labels(engine, pets, "coco")
    folder = tmp_path / "coco"
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        zf.extractall(folder)
        names = sorted(zf.namelist())
    assert names == ["annotations.json", "images/cat-2.png", "images/cat.png", "images/empty.jpg"]  # two cat.png: both kept
    coco = COCO(str(folder / "annotations.json"))
    assert [c["name"] for c in coco.loadCats(coco.getCatIds())] == ["cat", "dog"] and coco.getCatIds() == [1, 2]
    images = {img["file_name"]: img for img in coco.loadImgs(coco.getImgIds())}
    assert set(images) == {"images/cat.png", "images/cat-2.png", "images/empty.jpg"}  # p4 is not finished: left out
    for file_name, img in images.items():
        with Image.open(folder / file_name) as opened:  # file_name points at the image, relative to annotations.json
            assert opened.size == (img["width"], img["height"])
    first = images["images/cat.png"]
    anns = coco.loadAnns(coco.getAnnIds(imgIds=[first["id"]]))
    assert [(a["bbox"], a["category_id"], a["area"]) for a in anns] == [([10, 5, 20, 10], 1, 200), ([0.5, 20.25, 7, 3], 2, 21)]
    assert [a["bbox"] for a in coco.loadAnns(coco.getAnnIds(imgIds=[images["images/cat-2.png"]["id"]]))] == [[7, 11, 13, 17]]
    assert coco.getAnnIds(imgIds=[images["images/empty.jpg"]["id"]]) == []  # nothing to mark: listed, no annotations
    assert coco.getAnnIds(catIds=[2]) and len(coco.getAnnIds(catIds=[2])) == 2


def test_yolo_zip_holds_images_normalised_boxes_and_the_classes(engine, pets):
    with zipfile.ZipFile(io.BytesIO(export.export_labels(engine, pets, "yolo"))) as zf:
        names = set(zf.namelist())
        assert names == {"images/cat.png", "images/cat-2.png", "images/empty.jpg", "labels/cat.txt", "labels/cat-2.txt",
                         "labels/empty.txt", "classes.txt", "data.yaml"}
        rows = [line.split() for line in zf.read("labels/cat.txt").decode().splitlines()]
        assert zf.read("labels/empty.txt") == b""  # a background image: an empty label file
        assert zf.read("classes.txt").decode() == "cat\ndog\n"
        yaml_text = zf.read("data.yaml").decode()
        with Image.open(io.BytesIO(zf.read("images/cat-2.png"))) as opened:
            assert opened.size == (300, 200)
        (row2,) = [line.split() for line in zf.read("labels/cat-2.txt").decode().splitlines()]
    assert rows[0] == ["0", f"{20 / 64:.6f}", f"{10 / 48:.6f}", f"{20 / 64:.6f}", f"{10 / 48:.6f}"]
    cls, cx, cy, w, h = rows[1]
    assert cls == "1" and float(cx) == pytest.approx(4 / 64, abs=1e-6) and float(cy) == pytest.approx(21.75 / 48, abs=1e-6)
    assert float(w) == pytest.approx(7 / 64, abs=1e-6) and float(h) == pytest.approx(3 / 48, abs=1e-6)
    assert [float(v) for v in row2[1:]] == pytest.approx([13.5 / 300, 19.5 / 200, 13 / 300, 17 / 200], abs=1e-6)
    import yaml

    assert yaml.safe_load(yaml_text) == {"path": ".", "train": "images", "val": "images", "nc": 2, "names": ["cat", "dog"]}


def test_image_arrays_are_written_as_png(engine):
    digits = np.arange(8 * 12, dtype=float).reshape(8, 12)
    with session_scope(engine) as s:
        project = queue.create_project(s, "arr", label_mode="boxes", options=["blob"], data_type="image")
        queue.add_items(s, project, [digits], external_ids=["d1"])
    submit(engine, project, "alice", "d1", [{"x": 1, "y": 2, "width": 3, "height": 4, "label": "blob"}])
    with zipfile.ZipFile(io.BytesIO(export.export_labels(engine, project, "coco"))) as zf:
        coco = json.loads(zf.read("annotations.json"))
        with Image.open(io.BytesIO(zf.read("images/d1.png"))) as opened:
            assert opened.format == "PNG" and opened.size == (12, 8)
    assert coco["images"][0] | {"id": 0} == {"id": 0, "file_name": "images/d1.png", "width": 12, "height": 8, "external_id": "d1"}


def test_a_missing_image_file_stops_the_export_with_a_message(engine, pets):
    with session_scope(engine, write=False) as s:
        path = s.execute(sa.select(Item.file_path).where(Item.external_id == "p2")).scalar_one()
    Path(path).unlink()
    with pytest.raises(ValidationError, match="the image of item 'p2' .* cannot be read"):
        export.export_labels(engine, pets, "yolo")


# --------------------------------------------------------------------------- Label Studio, out and back in


def _values(engine, project) -> dict[tuple[str, str], object]:
    """{(external id, annotator): value} of the project's annotations."""
    with session_scope(engine, write=False) as s:
        rows = queue.annotation_log(s, project)
    return {(r.external_id, r.username.removeprefix("_import:")): r.label for r in rows}


def test_label_studio_spans_go_out_and_come_back_to_the_character(engine, ner, tmp_path):
    submit(engine, ner, "bob", "t1", T1[1:])
    tasks = json.loads(export.export_labels(engine, ner, "label-studio"))
    result = tasks[0]["annotations"][0]["result"]
    assert [(r["type"], r["value"]) for r in result] == [
        ("labels", {"start": 0, "end": 12, "text": "Ada Lovelace", "labels": ["PER"]}),
        ("labels", {"start": 17, "end": 32, "text": "Charles Babbage", "labels": ["PER"]}),
        ("labels", {"start": 36, "end": 42, "text": "London", "labels": ["LOC"]})]
    assert {r["from_name"] for r in result} == {"label"} and {r["to_name"] for r in result} == {"text"}
    assert tasks[2]["annotations"][0]["result"] == []
    with session_scope(engine) as s:
        fresh = queue.create_project(s, "ner-again", label_mode="spans", options=NER, data_type="text")
    prepared = ingest.prepare_upload("tasks.json", json.dumps(tasks).encode(), options=NER, label_mode="spans",
                                     upload_dir=tmp_path / "up")
    importing.import_prepared(engine, fresh, prepared)
    assert _values(engine, fresh) == {(k, user.split("@")[0]): v for (k, user), v in _values(engine, ner).items()}
    assert _values(engine, fresh)[("t3", "alice")] == []  # nothing to mark comes back as nothing to mark


def test_label_studio_boxes_go_out_in_percent_and_come_back_to_the_pixel(engine, pets, tmp_path):
    tasks = json.loads(export.export_labels(engine, pets, "label-studio", image_value="name"))
    first = tasks[0]["annotations"][0]["result"]
    assert first[0]["type"] == "rectanglelabels" and (first[0]["original_width"], first[0]["original_height"]) == (64, 48)
    assert first[0]["value"] == {"x": 100 * 10 / 64, "y": 100 * 5 / 48, "width": 100 * 20 / 64, "height": 100 * 10 / 48,
                                 "rotation": 0, "rectanglelabels": ["cat"]}
    with session_scope(engine, write=False) as s:
        paths = dict(s.execute(sa.select(Item.external_id, Item.file_path)).all())
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:  # the tasks and their images, as a person would send them
        for task in tasks:
            task["data"]["image"] = f"pics/{task['meta']['external_id']}-{task['data']['image']}"
            zf.write(paths[task["meta"]["external_id"]], task["data"]["image"])
        zf.writestr("tasks.json", json.dumps(tasks))
    with session_scope(engine) as s:
        fresh = queue.create_project(s, "pets-again", label_mode="boxes", options=["cat", "dog"], data_type="image")
    prepared = ingest.prepare_upload("tasks.zip", buffer.getvalue(), options=["cat", "dog"], label_mode="boxes", fmt="label-studio",
                                     upload_dir=tmp_path / "up")
    importing.import_prepared(engine, fresh, prepared)
    back = _values(engine, fresh)
    assert back == {("p1", "alice"): B1, ("p2", "alice"): B2, ("p3", "alice"): []}
    with session_scope(engine, write=False) as s:
        items = {e: d for e, d in s.execute(sa.select(Item.external_id, Item.data).where(Item.project_id == fresh.id)).all()}
    assert json.loads(items["p2"])["width"] == 300  # the image's size is kept with the item


@pytest.mark.parametrize("fmt", ["jsonl", "label-studio"])
def test_jsonl_and_label_studio_with_server_paths_come_back_whole(engine, pets, tmp_path, fmt):
    """The items JSON Lines, and Label Studio tasks naming the images by their path on this server (files already in
    the upload folder), into a fresh project: the same boxes."""
    submit(engine, pets, "bob", "p1", B1[:1])
    data = export.export_labels(engine, pets, fmt)
    with session_scope(engine) as s:
        fresh = queue.create_project(s, "pets-again", label_mode="boxes", options=["cat", "dog"], data_type="image")
    prepared = ingest.prepare_upload(f"back.{'jsonl' if fmt == 'jsonl' else 'json'}", data, options=["cat", "dog"], label_mode="boxes",
                                     fmt="items-jsonl" if fmt == "jsonl" else fmt, upload_dir=tmp_path / "uploads")
    importing.import_prepared(engine, fresh, prepared)
    assert _values(engine, fresh) == {(k, u.split("@")[0]): v for (k, u), v in _values(engine, pets).items()}
    assert len(_values(engine, fresh)) == 4


def test_jsonl_of_spans_comes_back_and_a_bad_span_is_refused(engine, ner, tmp_path):
    data = export.export_labels(engine, ner, "jsonl")
    with session_scope(engine) as s:
        fresh = queue.create_project(s, "ner-again", label_mode="spans", options=NER, data_type="text")
    importing.import_prepared(engine, fresh, ingest.prepare_upload("x.jsonl", data, options=NER, label_mode="spans", fmt="items-jsonl"))
    assert _values(engine, fresh) == _values(engine, ner)
    bad = data.replace(b'"end": 42', b'"end": 420')
    with pytest.raises(ValidationError, match=r"line 1 \(external_id 't1'\), annotation 1: span 3 runs from 36 to 420"):
        ingest.prepare_upload("x.jsonl", bad, options=NER, label_mode="spans", fmt="items-jsonl")


SPAN_TASK = {"id": 1, "data": {"text": "Ada met Bob."}, "annotations": [{"completed_by": {"email": "x@y.z"}, "result": []}]}


def _region(**value):
    return {"type": "labels", "from_name": "label", "to_name": "text", "value": {"start": 0, "end": 3, "text": "Ada", "labels": ["PER"], **value}}


@pytest.mark.parametrize("result, message", [
    ([_region(labels=["PER", "LOC"])], "exactly one label in value.labels.*give each label its own region"),
    ([_region(text="Bob")], "says it covers 'Bob'"),
    ([_region(labels=["ORG"])], "not options of the project"),
    ([_region(end=99, text="Ada met Bob.")], "runs from 0 to 99"),
    ([_region(), _region(start=1, text="da")], "may not overlap"),
    ([{"type": "choices", "from_name": "c", "to_name": "text", "value": {"choices": ["PER"]}}], "imports 'labels' regions only"),
    ([{"type": "labels", "from_name": "label", "to_name": "text", "value": {"labels": ["PER"], "startOffset": 0}}], "XPath"),
], ids=["two-labels", "wrong-text", "unknown-label", "out-of-range", "overlap", "choices", "hypertext"])
def test_malformed_span_tasks_are_refused_and_nothing_is_imported(engine, result, message, tmp_path):
    with session_scope(engine) as s:
        project = queue.create_project(s, "ner", label_mode="spans", options=NER, data_type="text")
    task = json.loads(json.dumps(SPAN_TASK))
    task["annotations"][0]["result"] = result
    with pytest.raises(ValidationError, match=message):
        prepared = ingest.prepare_upload("t.json", json.dumps([task]).encode(), options=NER, label_mode="spans", upload_dir=tmp_path)
        importing.import_prepared(engine, project, prepared)
    with session_scope(engine, write=False) as s:
        assert s.execute(sa.select(sa.func.count()).select_from(Item)).scalar_one() == 0
        assert s.execute(sa.select(sa.func.count()).select_from(Annotation)).scalar_one() == 0


@pytest.mark.parametrize("value, message", [
    ({"x": 10, "y": 10, "width": 5, "height": 5, "rotation": 30}, "rotated by 30 degrees"),
    ({"x": 120, "y": 10, "width": 5, "height": 5}, "lies outside the 20 x 10 image"),
    ({"x": "ten", "y": 10, "width": 5, "height": 5}, "must be numbers"),
    ({"x": 1, "y": 10, "width": 5}, "has no height"),
], ids=["rotated", "outside", "text", "missing"])
def test_malformed_box_tasks_are_refused(engine, value, message, tmp_path):
    buffer = io.BytesIO()
    Image.new("RGB", (20, 10)).save(buffer, format="PNG")
    task = {"data": {"image": "a.png"}, "annotations": [{"result": [
        {"type": "rectanglelabels", "from_name": "box", "to_name": "image", "value": {**value, "rectanglelabels": ["cat"]}}]}]}
    upload = io.BytesIO()
    with zipfile.ZipFile(upload, "w") as zf:
        zf.writestr("a.png", buffer.getvalue())
        zf.writestr("tasks.json", json.dumps([task]))
    with pytest.raises(ValidationError, match=message):
        ingest.prepare_upload("t.zip", upload.getvalue(), options=["cat"], label_mode="boxes", fmt="label-studio", upload_dir=tmp_path)


def test_a_span_refused_by_the_database_check_names_its_item_and_annotator(engine):
    """Marks in a prepared import are checked again against the items in the database, inside the one transaction."""
    with session_scope(engine) as s:
        project = queue.create_project(s, "ner", label_mode="spans", options=NER, data_type="text")
    prepared = ingest.PreparedImport(items=["Ada."], external_ids=["a"], labels=None, preview=None, n_rows=1,
                                     annotations=[[ingest.ImportedAnnotation("x", [{"start": 0, "end": 9, "label": "PER"}])]])
    with pytest.raises(ValidationError, match=r"item 'a', annotation by 'x': span 1 runs from 0 to 9.*nothing was imported"):
        importing.import_prepared(engine, project, prepared)
    with session_scope(engine, write=False) as s:
        assert s.execute(sa.select(sa.func.count()).select_from(Item)).scalar_one() == 0
