"""Exports carry the data (issue 12, item 10): every format holds the external id as uploaded, the shown fields, the final
label, who labelled and when; a CSV export joins back to the uploaded file and imports again into the same items.

Real data: scikit-learn's wine table as CSV (with an id column and without), jokes from ``pyjokes`` as text, a ZIP of
PNG tiles made with Pillow. On SQLite and PostgreSQL.
"""

from __future__ import annotations

import io
import json
import zipfile

import pandas as pd
import pytest
from PIL import Image
from sklearn.datasets import load_wine

from superintendent import auth, export, importing, ingest, queue
from superintendent.store import session_scope

CLASSES = ["class_0", "class_1", "class_2"]
SHOWN = ["alcohol", "malic_acid", "color_intensity"]


def wine(with_id: bool) -> pd.DataFrame:
    frame = load_wine(as_frame=True).frame
    frame["target"] = [CLASSES[t] if i % 3 == 0 else None for i, t in enumerate(frame["target"])]  # a third labelled
    if with_id:
        frame.insert(0, "wine_id", [f"w-{i:03d}" for i in range(len(frame))])
    return frame


def new_project(engine, name, **settings):
    with session_scope(engine) as s:
        return queue.create_project(s, name, **settings)


def import_bytes(engine, project, filename, data, tmp_path, plan=None):
    with session_scope(engine, write=False) as s:
        proj = queue.get_project(s, project.id)
    prepared = ingest.prepare_upload(filename, data, plan=plan, options=proj.options, label_mode=proj.label_mode,
                                     upload_dir=tmp_path / "uploads")
    return importing.import_prepared(engine, proj, prepared)


def label_some(engine, project, username, n, value):
    with session_scope(engine) as s:
        uid = auth.create_user(s, username, "correct horse battery").id
    with session_scope(engine) as s:
        proj = queue.get_project(s, project.id)
        for _ in range(n):
            item = queue.claim_next(s, proj, uid)
            queue.submit(s, proj, uid, item.item_id, value)


@pytest.mark.parametrize("with_id", [True, False], ids=["id-column", "row-numbers"])
def test_a_csv_export_joins_back_to_the_uploaded_wine_table_and_imports_again(engine, tmp_path, with_id):
    frame = wine(with_id)
    upload = frame.to_csv(index=False).encode()
    project = new_project(engine, "wine", options=CLASSES)
    plan = ingest.TablePlan(display_columns=SHOWN, model_columns=SHOWN, label_column="target",
                            id_column="wine_id" if with_id else None)
    assert import_bytes(engine, project, "wine.csv", upload, tmp_path, plan).added == len(frame)
    assert import_bytes(engine, project, "wine.csv", upload, tmp_path, plan).added == 0  # the same file again adds nothing
    label_some(engine, project, "ann", 5, "class_2")

    out = pd.read_csv(io.BytesIO(export.export_labels(engine, project, "csv")), dtype={"external_id": str})
    assert list(out.columns) == ["item_id", "external_id", *SHOWN, "label", "tie", "n_annotations", "labelled_by", "labelled_at",
                                 "reviewed_by"]
    assert len(out) == 60 + 5
    key = frame["wine_id"] if with_id else pd.Series([str(i) for i in range(1, len(frame) + 1)])  # data row numbers
    joined = out.merge(frame.assign(key=key.to_numpy()), left_on="external_id", right_on="key", suffixes=("", "_up"))
    assert len(joined) == len(out)
    for col in SHOWN:
        assert joined[col].tolist() == pytest.approx(joined[f"{col}_up"].tolist())
    by_import = joined[joined["labelled_by"] != "ann"]
    assert (by_import["label"] == by_import["target"]).all() and len(by_import) == 60
    by_ann = out[out["labelled_by"] == "ann"]
    assert set(by_ann["label"]) == {"class_2"} and by_ann["labelled_at"].str.endswith("Z").all()

    again = new_project(engine, "wine again", options=CLASSES)
    back = ingest.TablePlan(display_columns=SHOWN, model_columns=SHOWN, label_column="label", id_column="external_id")
    raw = out.drop(columns=["item_id"]).to_csv(index=False).encode()
    assert import_bytes(engine, again, "export.csv", raw, tmp_path, back).added == len(out)
    second = pd.read_csv(io.BytesIO(export.export_labels(engine, again, "csv")), dtype={"external_id": str})
    pairs = lambda f: sorted(zip(f["external_id"], f["label"], f["alcohol"]))  # noqa: E731
    assert pairs(second) == pairs(out)


def png(colour) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), colour).save(buf, format="PNG")
    return buf.getvalue()


@pytest.mark.parametrize("fmt", ["csv", "json", "parquet", "jsonl", "label-studio"])
def test_every_format_holds_the_id_as_uploaded_the_shown_fields_the_label_who_and_when(engine, tmp_path, fmt):
    pyjokes = pytest.importorskip("pyjokes")
    jokes = pyjokes.get_jokes(language="en", category="neutral")[:6]
    texts = new_project(engine, "jokes", options=["funny", "meh"])
    import_bytes(engine, texts, "jokes.csv", pd.DataFrame({"joke": jokes}).to_csv(index=False).encode(), tmp_path)
    label_some(engine, texts, "ann", 2, "funny")
    tiles = new_project(engine, "tiles", data_type="image", options=["red", "blue"])
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, colour in [("photos/a.png", "red"), ("photos/b.png", "blue"), ("c.png", "green")]:
            zf.writestr(name, png(colour))
    import_bytes(engine, tiles, "tiles.zip", buf.getvalue(), tmp_path)
    label_some(engine, tiles, "bea", 2, "red")

    def parsed(project):
        data = export.export_labels(engine, project, fmt)
        if fmt == "csv":
            return pd.read_csv(io.BytesIO(data), dtype={"external_id": str}).to_dict(orient="records")
        if fmt == "parquet":
            return pd.read_parquet(io.BytesIO(data)).to_dict(orient="records")
        if fmt == "jsonl":
            return [json.loads(line) for line in data.decode().splitlines()]
        return json.loads(data)

    def flat(row):  # one shape for the tables, the JSON Lines items and the Label Studio tasks
        if "annotations" not in row:
            return row
        anns = row["annotations"]
        users = [a.get("user") or a["completed_by"]["username"] for a in anns]
        return {"external_id": row.get("external_id") or row["meta"]["external_id"], "labelled_by": ";".join(users),
                "file_name": row.get("meta", {}).get("name") or (row["data"].get("name") if isinstance(row["data"], dict) else None),
                "text": row["data"] if isinstance(row["data"], str) else row["data"].get("text"),
                "labelled_at": anns[-1]["created_at"] if anns else None, "data": row["data"],
                "label": row.get("label") or (anns[0]["result"][0]["value"]["choices"][0] if anns else None)}

    jokes_out = [flat(r) for r in parsed(texts) if flat(r)["labelled_by"]]
    assert len(jokes_out) == 2
    for row in jokes_out:
        assert row["external_id"] in {"1", "2", "3", "4", "5", "6"}
        assert row["text"] == jokes[int(row["external_id"]) - 1]
        assert row["label"] == "funny" and row["labelled_by"] == "ann" and row["labelled_at"].endswith("Z")
    tiles_out = [flat(r) for r in parsed(tiles) if flat(r)["labelled_by"]]
    assert len(tiles_out) == 2
    for row in tiles_out:
        assert row["external_id"] in {"photos/a.png", "photos/b.png", "c.png"}
        assert row["file_name"] == row["external_id"]
        assert row["label"] == "red" and row["labelled_by"] == "bea"


def test_a_large_csv_export_streams_in_batches_with_progress(engine, tmp_path, monkeypatch):
    project = new_project(engine, "many", options=["a", "b"])
    n = 6000
    with session_scope(engine) as s:
        queue.add_items(s, queue.get_project(s, project.id), [f"text number {i}" for i in range(n)],
                        external_ids=[str(i) for i in range(n)], labels=["a" if i % 2 else "b" for i in range(n)])
    seen: list[float] = []
    writes: list[int] = []

    class Sink(io.BytesIO):
        def write(self, b):
            writes.append(len(b))
            return super().write(b)

    sink = Sink()
    export.write_labels(engine, project, "csv", sink, progress=seen.append)
    assert len(writes) >= 3  # one write per batch of 2,000 items, not one for the whole file
    assert seen[-1] == 1.0 and seen == sorted(seen) and len(seen) >= 3
    out = pd.read_csv(io.BytesIO(sink.getvalue()))
    assert len(out) == n and list(out["text"][:2]) == ["text number 0", "text number 1"]


def test_label_studio_export_of_table_rows_is_one_row_object_and_round_trips(engine, tmp_path):
    """Each task's data is {"row": {column: value}} with every result's to_name "row", the shape a Label Studio
    config <Table name="row" value="$row"/> <Choices name="label" toName="row"> shows (not the first column)."""
    frame = wine(True)
    project = new_project(engine, "wine", options=CLASSES)
    plan = ingest.TablePlan(display_columns=SHOWN, model_columns=SHOWN, label_column="target", id_column="wine_id")
    import_bytes(engine, project, "wine.csv", frame.to_csv(index=False).encode(), tmp_path, plan)
    tasks = json.loads(export.export_labels(engine, project, "label-studio"))
    assert len(tasks) == len(frame)
    assert all(list(task["data"]) == ["row"] and list(task["data"]["row"]) == SHOWN for task in tasks)
    results = [r for task in tasks for a in task["annotations"] for r in a["result"]]
    assert len(results) == 60 and {(r["from_name"], r["to_name"]) for r in results} == {("label", "row")}

    again = new_project(engine, "wine-again", options=CLASSES)
    assert import_bytes(engine, again, "wine-label-studio.json", json.dumps(tasks).encode(), tmp_path).added == len(frame)
    back = pd.read_csv(io.BytesIO(export.export_labels(engine, again, "csv")), dtype={"external_id": str})
    first = pd.read_csv(io.BytesIO(export.export_labels(engine, project, "csv")), dtype={"external_id": str})
    columns = ["external_id", *SHOWN, "label"]
    pd.testing.assert_frame_equal(back[columns].sort_values("external_id").reset_index(drop=True),
                                  first[columns].sort_values("external_id").reset_index(drop=True))
