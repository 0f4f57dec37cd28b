"""Spans and boxes projects from the command line and from Python: create, import Label Studio tasks, export each format.

The commands run in this process (``cli.main``), as in tests/test_cli.py, against a temporary SQLite file.
"""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import pytest
from PIL import Image

from superintendent import Superintendent, cli, export, queue
from superintendent.queue import Action
from superintendent.store import make_engine, session_scope


@pytest.fixture
def db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    for name in ("SUPERINTENDENT_DATABASE_URL", "SUPERINTENDENT_DATA_DIR", "XDG_DATA_HOME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    monkeypatch.setenv("SUPERINTENDENT_DATABASE_URL", url)
    monkeypatch.setenv("SUPERINTENDENT_DATA_DIR", str(tmp_path / "data"))
    return url


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = cli.main(list(args))
    out, err = capsys.readouterr()
    return code, out.strip(), err.strip()


def test_a_spans_project_from_create_to_conll(db, capsys, tmp_path):
    assert run(capsys, "create-project", "ner", "--kind", "spans", "--options", "PER,LOC") == (
        0, "created project 'ner' (text spans, options: PER, LOC)", "")
    with session_scope(make_engine(db), write=False) as s:
        project = queue.get_project(s, "ner")
    assert (project.label_mode, project.data_type) == ("spans", "text")  # the data type follows the kind
    tasks = [{"id": 1, "data": {"text": "Ada met Bob in Rome."}, "annotations": [{"completed_by": {"email": "ann@example.org"}, "result": [
        {"type": "labels", "from_name": "label", "to_name": "text", "value": {"start": 0, "end": 3, "text": "Ada", "labels": ["PER"]}},
        {"type": "labels", "from_name": "label", "to_name": "text", "value": {"start": 15, "end": 19, "text": "Rome", "labels": ["LOC"]}}]}]}]
    (tmp_path / "tasks.json").write_text(json.dumps(tasks))
    code, out, _ = run(capsys, "import", "ner", str(tmp_path / "tasks.json"))
    assert code == 0 and "1 new item" in out and "labels: 1 new" in out
    assert run(capsys, "export", "ner", "--format", "conll", "-o", str(tmp_path / "ner.conll"))[0] == 0
    assert (tmp_path / "ner.conll").read_text() == "-DOCSTART- O\n\nAda B-PER\nmet O\nBob O\nin O\nRome B-LOC\n. O\n\n"
    assert run(capsys, "export", "ner", "--format", "spacy", "-o", str(tmp_path / "ner.jsonl"))[0] == 0
    assert json.loads((tmp_path / "ner.jsonl").read_text()) == {
        "text": "Ada met Bob in Rome.", "spans": [{"start": 0, "end": 3, "label": "PER"}, {"start": 15, "end": 19, "label": "LOC"}], "id": "1"}
    code, _, err = run(capsys, "export", "ner", "--format", "yolo", "-o", str(tmp_path / "x.zip"))
    assert code == 2 and "yolo is an export of boxes projects; project 'ner' is a spans project: export it as conll, spacy" in err
    assert not (tmp_path / "x.zip").exists()


def test_a_boxes_project_from_a_label_studio_zip_to_yolo(db, capsys, tmp_path):
    assert run(capsys, "create-project", "pets", "--kind", "boxes", "--options", "cat,dog")[0] == 0
    image = io.BytesIO()
    Image.new("RGB", (200, 100), "white").save(image, format="PNG")
    task = {"data": {"image": "photos/a.png"}, "annotations": [{"result": [{
        "type": "rectanglelabels", "from_name": "label", "to_name": "image", "original_width": 200, "original_height": 100,
        "value": {"x": 25, "y": 10, "width": 50, "height": 40, "rotation": 0, "rectanglelabels": ["dog"]}}]}]}
    with zipfile.ZipFile(tmp_path / "tasks.zip", "w") as zf:
        zf.writestr("photos/a.png", image.getvalue())
        zf.writestr("tasks.json", json.dumps([task]))
    assert run(capsys, "import", "pets", str(tmp_path / "tasks.zip"), "--format", "label-studio")[0] == 0
    assert run(capsys, "export", "pets", "--format", "yolo", "-o", str(tmp_path / "pets.zip"))[0] == 0
    with zipfile.ZipFile(tmp_path / "pets.zip") as zf:
        assert sorted(zf.namelist()) == ["classes.txt", "data.yaml", "images/a.png", "labels/a.txt"]  # the name from the ZIP
        assert zf.read("labels/a.txt").decode() == "1 0.500000 0.300000 0.500000 0.400000\n"  # pixels 50, 10, 100 x 40 of 200 x 100
        with Image.open(io.BytesIO(zf.read("images/a.png"))) as opened:
            assert opened.size == (200, 100)
    assert run(capsys, "export", "pets", "--format", "coco", "-o", str(tmp_path / "coco.zip"))[0] == 0
    with zipfile.ZipFile(tmp_path / "coco.zip") as zf:
        assert json.loads(zf.read("annotations.json"))["annotations"][0]["bbox"] == [50, 10, 100, 40]


@pytest.mark.parametrize("args, message", [
    (("--kind", "spans"), "a spans project needs its options"),
    (("--kind", "boxes", "--options", "cat", "--data-type", "text"), "a boxes project labels image items: its data type (data_type) must be 'image'"),
    (("--kind", "spans", "--options", "PER", "--allow-free-text"), "allow_free_text must be off"),
], ids=["no-options", "wrong-data-type", "free-text"])
def test_wrong_combinations_are_refused_with_the_settings_message(db, capsys, args, message):
    code, _, err = run(capsys, "create-project", "bad", *args)
    assert code == 2 and message in err
    with session_scope(make_engine(db), write=False) as s:
        assert queue.list_projects(s) == []


def test_superintendent_takes_spans_as_its_label_mode():
    widget = Superintendent(features=["Ada met Bob.", "Rome."], options=["PER", "LOC"], label_mode="spans")
    assert widget.project.label_mode == "spans"
    with session_scope(widget.engine) as s:
        task = queue.act(s, widget.project, widget.queue.user_id, Action.claim).task
        queue.act(s, widget.project, widget.queue.user_id, Action.submit, item_id=task.item_id,
                  value=[{"start": 0, "end": 3, "label": "PER"}] if task.data.startswith("Ada") else [])
    lines = export.export_labels(widget.engine, widget.project, "spacy").decode().splitlines()
    assert len(lines) == 1 and json.loads(lines[0])["spans"] in ([{"start": 0, "end": 3, "label": "PER"}], [])
