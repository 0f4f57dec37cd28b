"""Uploads: good files of every format round-trip; bad files raise ValidationError and import nothing."""

from __future__ import annotations

import io
import json
import os
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from PIL import Image

from superintendent import importing, ingest, queue, serialization
from superintendent.ingest import ImportLimits, PreparedImport, TablePlan, prepare_upload
from superintendent.labels import NO_MATCH, match_option
from superintendent.store import Item, init_db, make_engine, session_scope
from superintendent.validation import ValidationError

# --------------------------------------------------------------------------- fixtures and file makers


@pytest.fixture
def engine(tmp_path):
    eng = make_engine(f"sqlite:///{tmp_path / 't.db'}")
    init_db(eng)
    yield eng
    eng.dispose()


def new_project(engine, name="p", **settings):
    with session_scope(engine) as s:
        return queue.create_project(s, name, **settings)


def stored(engine, project):
    """(external_id, item, file_path) of the project's items, in order, and their labels."""
    with session_scope(engine, write=False) as s:
        rows = s.execute(sa.select(Item.external_id, Item.data, Item.file_path).where(Item.project_id == project.id)
                         .order_by(Item.id)).all()
        labels = queue.all_labels(s, project)
    return [(r.external_id, serialization.loads(r.data), r.file_path) for r in rows], labels


def n_items(engine, project):
    with session_scope(engine, write=False) as s:
        return s.execute(sa.select(sa.func.count()).select_from(Item).where(Item.project_id == project.id)).scalar_one()


def parquet_bytes(df: pd.DataFrame) -> bytes:
    buf = io.BytesIO()
    df.to_parquet(buf)
    return buf.getvalue()


def npy_bytes(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, arr, allow_pickle=True)
    return buf.getvalue()


def npz_bytes(**arrays: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def image_bytes(fmt: str = "PNG", size: tuple[int, int] = (8, 6), colour: int = 0) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, (colour, 100, 200)).save(buf, format=fmt)
    return buf.getvalue()


def zip_bytes(entries: dict[str, bytes], compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=compression) as zf:
        for name, content in entries.items():
            zf.writestr(name, content)
    return buf.getvalue()


def tree(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*")) if folder.exists() else []


# --------------------------------------------------------------------------- good files

TEXTS = ["a cat", "a dog", "two cats"]

GOOD = [
    pytest.param("t.csv", b"text\na cat\na dog\ntwo cats\n", {}, TEXTS, None, id="csv-one-text-column"),
    pytest.param("t.csv", "\ufefftext,label\na cat,cat\na dog,\ntwo cats,cat\n".encode(), dict(plan=TablePlan(["text"], ["text"], "label")),
                 TEXTS, ["cat", None, "cat"], id="csv-bom-with-labels"),
    pytest.param("t.csv", b"id,text,n\n007,a cat,1\n008,a dog,2\n009,two cats,\n", dict(plan=TablePlan(["text"], ["n"], None, "id")),
                 [{"text": "a cat", "n": 1.0}, {"text": "a dog", "n": 2.0}, {"text": "two cats", "n": None}], None,
                 id="csv-dict-items-id-column-keeps-zeros"),
    pytest.param("t.csv", b"text,tags\na cat,cat;fluffy\na dog,dog\ntwo cats,\n", dict(plan=TablePlan(["text"], ["text"], "tags"),
                 options=["cat", "dog", "fluffy"], label_mode="multi"), TEXTS, [["cat", "fluffy"], ["dog"], None], id="csv-multi-label"),
    pytest.param("t.csv", b"text,label\na cat,0\na dog,1\ntwo cats,0\n", dict(plan=TablePlan(["text"], ["text"], "label"),
                 options=["0", "1"]), TEXTS, ["0", "1", "0"], id="csv-numeric-labels-match-text-options"),
    pytest.param("t.parquet", parquet_bytes(pd.DataFrame({"text": TEXTS, "x": [1, 2, 3], "label": ["cat", "dog", None]})),
                 dict(plan=TablePlan(["text", "x"], ["x"], "label"), options=["cat", "dog"]),
                 [{"text": t, "x": i} for t, i in zip(TEXTS, [1, 2, 3])], ["cat", "dog", None], id="parquet"),
    pytest.param("t.parquet", parquet_bytes(pd.DataFrame({"id": ["a", "b", "c"], "text": TEXTS}).set_index("id")),
                 dict(plan=TablePlan(["text"], ["text"], None, "id")), TEXTS, None, id="parquet-named-index-becomes-column"),
    pytest.param("t.json", json.dumps([{"text": t, "label": lab} for t, lab in zip(TEXTS, ["cat", "dog", None])]).encode(),
                 dict(plan=TablePlan(["text"], ["text"], "label"), options=["cat", "dog"]), TEXTS, ["cat", "dog", None],
                 id="json-array-of-objects"),
    pytest.param("t.json", json.dumps(TEXTS).encode(), {}, TEXTS, None, id="json-array-of-strings"),
    pytest.param("t.json", json.dumps({"text": TEXTS}).encode(), {}, TEXTS, None, id="json-pandas-columns-layout"),
    pytest.param("t.JSONL", b'{"text": "a cat", "meta": {"k": [1, 2]}}\n\n{"text": "a dog"}\n{"text": "two cats"}\n',
                 dict(plan=TablePlan(["text", "meta"], ["text"])),
                 [{"text": "a cat", "meta": {"k": [1, 2]}}, {"text": "a dog", "meta": None}, {"text": "two cats", "meta": None}], None,
                 id="jsonl-nested"),
    pytest.param("t.ndjson", b'{"text": "a cat"}\n{"text": "a dog"}\n{"text": "two cats"}', {}, TEXTS, None, id="ndjson"),
    pytest.param("x.npy", npy_bytes(np.arange(6, dtype=np.float32).reshape(3, 2)), {},
                 [np.array([0, 1], np.float32), np.array([2, 3], np.float32), np.array([4, 5], np.float32)], None, id="npy-rows"),
    pytest.param("x.npy", npy_bytes(np.array([1, 2, 3])), {}, [1, 2, 3], None, id="npy-1d"),
    pytest.param("x.npz", npz_bytes(x=np.eye(3, dtype=bool), y=np.array([0.0, np.nan, 1.0])), dict(options=[0, 1]),
                 list(np.eye(3, dtype=bool)), [0, None, 1], id="npz-bool-with-labels"),
    pytest.param("x.npz", npz_bytes(features=np.zeros((3, 2, 2)), labels=np.array(["cat", "dog", ""])), dict(options=["cat", "dog"]),
                 [np.zeros((2, 2))] * 3, ["cat", "dog", None], id="npz-features-text-labels"),
]


def _same(a, b) -> bool:
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return isinstance(a, np.ndarray) and isinstance(b, np.ndarray) and a.dtype == b.dtype and np.array_equal(a, b)
    return a == b and type(a) is type(b)


@pytest.mark.parametrize("filename, data, kwargs, items, labels", GOOD)
def test_good_files_round_trip(engine, tmp_path, filename, data, kwargs, items, labels):
    project = new_project(engine, options=kwargs.get("options"), label_mode=kwargs.get("label_mode", "single"))
    prepared = prepare_upload(filename, data, upload_dir=tmp_path / "up", **kwargs)
    assert prepared.n_rows == len(items) == len(prepared.items)
    assert all(_same(a, b) for a, b in zip(prepared.items, items)), prepared.items
    assert prepared.labels == labels
    assert isinstance(prepared.preview, pd.DataFrame) and 0 < len(prepared.preview) <= 20
    fractions = []
    result = importing.import_prepared(engine, project, prepared, progress=fractions.append)
    assert (result.added, result.already_present, result.labelled) == (len(items), 0, sum(v is not None for v in labels or []))
    assert fractions[0] == 0.0 and fractions[-1] == 1.0 and fractions == sorted(fractions)
    rows, got_labels = stored(engine, project)
    assert all(_same(got, want) for (_, got, _), want in zip(rows, items))
    assert got_labels == (labels or [None] * len(items))
    if prepared.external_ids:
        assert [r[0] for r in rows] == prepared.external_ids
    again = importing.import_prepared(engine, project, prepare_upload(filename, data, upload_dir=tmp_path / "up", **kwargs))
    assert (again.added, again.already_present) == (0, len(items))
    assert not (tmp_path / "up").exists()  # only ZIPs of images write files


def test_id_column_keeps_leading_zeros(engine):
    prepared = prepare_upload("t.csv", b"id,text\n007,a\n008,b\n", plan=TablePlan(["text"], ["text"], None, "id"))
    assert prepared.external_ids == ["007", "008"]


def test_zip_of_images_round_trips(engine, tmp_path):
    upload_dir = tmp_path / "uploads"
    data = zip_bytes({"imgs/a.png": image_bytes("PNG", (8, 6)), "imgs/b.JPG": image_bytes("JPEG", (5, 4), 50),
                      "imgs/": b"", "__MACOSX/imgs/._a.png": b"junk", "imgs/.DS_Store": b"junk", "./c.jpeg": image_bytes("PNG", (3, 3), 9)})
    project = new_project(engine)
    prepared = prepare_upload("pics.zip", data, upload_dir=upload_dir)
    assert prepared.n_rows == 3
    assert [i["name"] for i in prepared.items] == ["imgs/a.png", "imgs/b.JPG", "./c.jpeg"]
    paths = [Path(i["image_path"]) for i in prepared.items]
    assert all(p.is_absolute() and p.is_file() and p.resolve().is_relative_to(upload_dir.resolve()) for p in paths)
    assert [p.suffix for p in paths] == [".png", ".jpg", ".png"]  # the real format decides the extension
    sizes = []
    for p in paths:
        with Image.open(p) as im:
            sizes.append(im.size)
    assert sizes == [(8, 6), (5, 4), (3, 3)]
    assert list(prepared.preview["width"]) == [8, 5, 3]
    assert len({p.parent for p in paths}) == 1 and not [p for p in upload_dir.iterdir() if p.name.startswith(".")]
    importing.import_prepared(engine, project, prepared)
    rows, _ = stored(engine, project)
    assert [r[1] for r in rows] == prepared.items and [r[2] for r in rows] == [str(p) for p in paths]
    # the same ZIP again reuses its folder
    assert prepare_upload("pics.zip", data, upload_dir=upload_dir).items == prepared.items
    assert len(list(upload_dir.iterdir())) == 1


def test_read_image_zip_reports_sizes(tmp_path):
    images = ingest.read_image_zip(zip_bytes({"x.png": image_bytes(size=(7, 2))}), ImportLimits(), tmp_path / "u")
    assert [(i.original_name, i.width, i.height, i.path.suffix) for i in images] == [("x.png", 7, 2, ".png")]


def test_detect_format():
    assert [ingest.detect_format(n) for n in ("a.CSV", "b.parquet", "c.json", "d.jsonl", "e.ndjson", "f.npy", "g.npz", "h.zip")] == \
        ["csv", "parquet", "json", "jsonl", "jsonl", "npy", "npz", "zip"]
    with pytest.raises(ValidationError, match=r"accepted extensions: .csv"):
        ingest.detect_format("data.xlsx")
    with pytest.raises(ValidationError, match="no extension"):
        ingest.detect_format("README")


MATCHES = [
    pytest.param("cat", ["cat", "dog"], True, "cat", id="equal-text"),
    pytest.param(" cat ", ["cat", "dog"], True, "cat", id="text-stripped"),
    pytest.param(" cat ", ["cat", "dog"], False, NO_MATCH, id="exact-only"),
    pytest.param("1", [1, 2], True, 1, id="text-names-a-number"),
    pytest.param(1.0, [1, 2], True, 1, id="equal-number"),
    pytest.param(True, [1, 2], True, NO_MATCH, id="bool-is-not-a-number"),
    pytest.param(float("nan"), [], True, NO_MATCH, id="nan-never"),
    pytest.param("yak", [], True, "yak", id="no-options-anything"),
    pytest.param("yak", ["cat"], True, NO_MATCH, id="unknown"),
]


@pytest.mark.parametrize("value, options, by_text, expected", MATCHES)
def test_match_option_is_the_one_rule_for_labels_from_files(value, options, by_text, expected):
    got = match_option(value, options, by_text=by_text)
    assert got is expected if expected is NO_MATCH else (got == expected and type(got) is type(expected))


# --------------------------------------------------------------------------- bad files

RANDOM = bytes(np.random.default_rng(0).integers(0, 256, 3000, dtype=np.uint8))
GOOD_PARQUET = parquet_bytes(pd.DataFrame({"text": TEXTS * 50}))
SMALL = dict(limits=ImportLimits(max_bytes=50))
BOMB = zip_bytes({"big.png": b"\0" * 5_000_000})

BAD = [
    pytest.param("e.csv", b"", {}, "is empty", id="empty-csv"),
    pytest.param("e.parquet", b"", {}, "is empty", id="empty-parquet"),
    pytest.param("e.csv", b"  \n\n", {}, "only whitespace", id="blank-csv"),
    pytest.param("r.csv", RANDOM, {}, "this looks like a binary file, not a CSV", id="random-csv"),
    pytest.param("p.csv", image_bytes(), {}, "this looks like a binary file, not a CSV", id="png-renamed-csv"),
    pytest.param("p.csv", GOOD_PARQUET, {}, "this looks like a binary file, not a CSV", id="parquet-renamed-csv"),
    pytest.param("p.json", image_bytes(), {}, "this looks like a binary file, not JSON", id="png-renamed-json"),
    pytest.param("r.parquet", RANDOM, {}, "cannot read 'r.parquet' as Parquet", id="random-parquet"),
    pytest.param("r.npy", RANDOM, {}, "as a .npy array", id="random-npy"),
    pytest.param("r.npz", RANDOM, {}, "as a .npz archive", id="random-npz"),
    pytest.param("r.zip", RANDOM, {}, "not a readable ZIP", id="random-zip"),
    pytest.param("r.json", RANDOM[:40].hex().encode(), {}, "not valid JSON", id="random-json"),
    pytest.param("t.parquet", GOOD_PARQUET[:len(GOOD_PARQUET) // 2], {}, "complete Parquet file", id="truncated-parquet"),
    pytest.param("l.csv", "name\ncafé\n".encode("latin-1"), {}, r"byte 0xe9 at position 8 \(line 2\)", id="latin1-csv"),
    pytest.param("n.csv", b"a,b\n1,\x002\n", {}, "this looks like a binary file, not a CSV", id="binary-csv"),
    pytest.param("g.csv", b"a,b\n1,2\n3,4,5\n", {}, r"line 3: 3 fields where the header has 2", id="ragged-csv"),
    pytest.param("g.csv", b"a,b\n1,2,3\n4,5,6\n", {}, r"line 2: 3 fields where the header has 2", id="ragged-first-row-csv"),
    pytest.param("q.csv", b'a,b\n"1,2\n', {}, "line 2: a quoted field is not closed", id="unclosed-quote-csv"),
    pytest.param("q.csv", b'a,b\n1,2\n"3,4\n5,6\n', {}, "line 3: a quoted field is not closed", id="unclosed-quote-line-3-csv"),
    pytest.param("h.csv", b"a,b\n", {}, "no rows", id="header-only-csv"),
    pytest.param("d.csv", b"a,b,a\n1,2,3\n", {}, "duplicate column names: 'a'", id="duplicate-columns-csv"),
    pytest.param("d.json", b'[{"a": 1, "a": 2}]', {}, "key 'a' twice", id="duplicate-keys-json"),
    pytest.param("e.json", b"[]", {}, "no rows", id="empty-json-array"),
    pytest.param("s.json", b"42", {}, "single JSON int", id="scalar-json"),
    pytest.param("m.json", b'[{"a": 1}, [1]]', {}, "element 2 is a list", id="mixed-json"),
    pytest.param("b.jsonl", b'{"a": 1}\n{"a": \n', {}, "line 2 is not valid JSON", id="bad-jsonl-line"),
    pytest.param("i.csv", b"id,text\n1,a\n2,b\n1,c\n", dict(plan=TablePlan(["text"], ["text"], None, "id")),
                 r"'1' \(data rows 1, 3\)", id="duplicate-ids"),
    pytest.param("i.csv", b"id,text\n1,a\n,b\n", dict(plan=TablePlan(["text"], ["text"], None, "id")),
                 r"empty in data row\(s\) 2", id="empty-id"),
    pytest.param("u.csv", b"text,label\na,cat\nb,cta\nc,dgo\n", dict(plan=TablePlan(["text"], ["text"], "label"), options=["cat", "dog"]),
                 r"2 label value\(s\) in column 'label' are not one of the project's options \(cat, dog\).*'cta' \(data row 2\); 'dgo' "
                 r"\(data row 3\)", id="unknown-label"),
    pytest.param("c.csv", b"text\na\n", dict(plan=TablePlan(["txt"], ["txt"])), "no column 'txt'", id="missing-column"),
    pytest.param("c.csv", b"text,label\na,cat\n", dict(plan=TablePlan(["text"], ["label"], "label")), "given the answer",
                 id="label-column-as-model-column"),
    pytest.param("t.csv", b"text,x\na,1\n,2\n", dict(plan=TablePlan(["text"], ["text"])), r"empty in data row\(s\) 2", id="empty-text"),
    pytest.param("o.npy", npy_bytes(np.array([{"a": 1}, None], dtype=object)), {}, "would need pickle", id="object-npy"),
    pytest.param("s.npy", npy_bytes(np.array(["a", "b"])), {}, "expected numbers, booleans", id="text-npy"),
    pytest.param("n.npy", npy_bytes(np.array([[1.0, np.nan], [np.inf, np.nan]])), {}, r"2 NaN and 1 infinite value\(s\) \(first in row 1\)",
                 id="nan-npy"),
    pytest.param("t.npy", npy_bytes(np.zeros((100, 3)))[:-8], {}, "damaged", id="truncated-npy"),
    pytest.param("z.npy", npy_bytes(np.float64(3.0)), {}, "single number", id="scalar-npy"),
    pytest.param("n.npz", npz_bytes(a=np.zeros(3), b=np.ones(3)), {}, "expected the items under 'x'", id="npz-no-items-key"),
    pytest.param("n.npz", npz_bytes(x=np.zeros((3, 2)), y=np.zeros(2)), {}, r"expected one label per item, shape \(3,\)", id="npz-label-length"),
    pytest.param("n.npz", npz_bytes(x=np.zeros(3), y=np.array(["a", "b", "zz"])), dict(options=["a", "b"]), r"'zz' \(data row 3\)",
                 id="npz-unknown-label"),
    pytest.param("d.json", b"[" * 100_000 + b"]" * 100_000, {}, "maximum recursion depth", id="deeply-nested-json"),
    pytest.param("h.npy", npy_bytes(np.zeros(2)).replace(b"(2,)", str((10**13,)).encode()), {}, "declares an array of",
                 id="npy-header-claims-huge-array"),
    pytest.param("b.npz", npz_bytes(x=np.zeros(1_000_000)), dict(limits=ImportLimits(max_zip_total_uncompressed=1_000_000)),
                 "unpacks to", id="npz-too-large-unpacked"),
    pytest.param("b.csv", b"text\n" + b"x\n" * 100, SMALL, r"is 0.0 MB \(205 bytes\); the limit is 0.0 MB \(50 bytes\)", id="oversize"),
    pytest.param("r.csv", b"text\na\nb\nc\n", dict(limits=ImportLimits(max_rows=2)), "more than 2 rows; the limit is 2", id="too-many-rows-csv"),
    pytest.param("r.jsonl", b'{"a":1}\n' * 3, dict(limits=ImportLimits(max_rows=2)), "the limit is 2", id="too-many-rows-jsonl"),
    pytest.param("r.parquet", GOOD_PARQUET, dict(limits=ImportLimits(max_rows=2)), "has 150 rows; the limit is 2", id="too-many-rows-parquet"),
    pytest.param("r.npy", npy_bytes(np.zeros((3, 2))), dict(limits=ImportLimits(max_rows=2)), "has 3 rows", id="too-many-rows-npy"),
    pytest.param("f.csv", b"text\nshort\n" + b"y" * 50 + b"\n", dict(limits=ImportLimits(max_field_chars=10)),
                 "column 'text', data row 2 is 50 characters long; the limit is 10", id="huge-field"),
    pytest.param("f.json", json.dumps([{"a": {"k": "v" * 50}}]).encode(), dict(limits=ImportLimits(max_field_chars=10)),
                 "characters long", id="huge-nested-field"),
    pytest.param("e.zip", zip_bytes({}), {}, "holds no images", id="empty-zip"),
    pytest.param("t.zip", zip_bytes({"a.png": image_bytes(), "notes.txt": b"hi"}), {}, "not .png, .jpg or .jpeg: 'notes.txt'",
                 id="zip-with-text-file"),
    pytest.param("f.zip", zip_bytes({"a.png": image_bytes(), "fake.png": b"not an image at all" * 5}), {},
                 r"entry fake.png is not an image \(PNG or JPEG expected\)", id="zip-fake-png"),
    pytest.param("f.zip", zip_bytes({"photos/a.png": b"\x89PNG broken"}), {}, r"entry photos/a.png is not an image \(PNG or JPEG expected\)",
                 id="zip-broken-png-in-folder"),
    pytest.param("g.zip", zip_bytes({"a.png": image_bytes("GIF")}), {}, r"entry a.png is a GIF image \(PNG or JPEG expected\)", id="zip-gif-named-png"),
    pytest.param("p.zip", zip_bytes({"a.png": image_bytes(size=(20, 20))}), dict(limits=ImportLimits(max_image_pixels=100)),
                 "400 pixels; the limit is 100", id="zip-too-many-pixels"),
    pytest.param("b.zip", BOMB, {}, "more than 100x", id="zip-bomb-ratio"),
    pytest.param("b.zip", zip_bytes({"a.png": image_bytes(), "b.png": image_bytes(colour=1)}, zipfile.ZIP_STORED),
                 dict(limits=ImportLimits(max_zip_total_uncompressed=100)), "unpacks to", id="zip-total-size"),
    pytest.param("n.zip", zip_bytes({f"{i}.png": image_bytes(colour=i) for i in range(4)}), dict(limits=ImportLimits(max_zip_entries=3)),
                 "has 4 entries; the limit is 3", id="zip-too-many-entries"),
    pytest.param("x.zip", zip_bytes({"ok.png": image_bytes(), "../evil.png": image_bytes()}), {}, r"'\.\./evil.png' \(a '\.\.' path",
                 id="zip-dotdot"),
    pytest.param("x.zip", zip_bytes({"ok.png": image_bytes(), "a\\..\\..\\evil.png": image_bytes()}), {}, "'..' path component",
                 id="zip-backslash-dotdot"),
    pytest.param("x.zip", zip_bytes({"ok.png": image_bytes(), "C:/evil.png": image_bytes()}), {}, "an absolute path", id="zip-drive"),
    pytest.param("x.zip", zip_bytes({"ok.png": image_bytes()}), dict(plan=TablePlan(["a"], ["a"])), "only applies to tables",
                 id="plan-for-zip"),
    pytest.param("x.txt", b"hello", {}, "accepted extensions", id="unknown-extension"),
    pytest.param("t.csv", b"text\na\n", dict(label_mode="many"), "label_mode must be one of", id="bad-label-mode"),
]


@pytest.mark.parametrize("filename, data, kwargs, fragment", BAD)
def test_bad_files_raise_and_import_nothing(engine, tmp_path, filename, data, kwargs, fragment):
    project = new_project(engine)
    upload_dir = tmp_path / "uploads"
    upload_dir.mkdir()
    with pytest.raises(ValidationError, match=fragment) as info:
        prepared = prepare_upload(filename, data, upload_dir=upload_dir, **kwargs)
        importing.import_prepared(engine, project, prepared)
    assert "Traceback" not in str(info.value) and info.value.__cause__ is None
    for internal in ("C error", "tokenizing", "<_io.", " object at 0x"):  # plain words, no parser internals
        assert internal not in str(info.value)
    assert n_items(engine, project) == 0
    assert tree(upload_dir) == []
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith("t.db")) == ["uploads"]


def test_zip_with_absolute_entry_writes_nothing_anywhere(tmp_path):
    target = tmp_path / "outside" / "evil.png"
    upload_dir = tmp_path / "uploads"
    upload_dir.mkdir()
    data = zip_bytes({"ok.png": image_bytes(), str(target): image_bytes(), "../escape.png": image_bytes()})
    with pytest.raises(ValidationError, match=r"outside the upload folder: .*absolute path.*'\.\.' path component"):
        prepare_upload("abs.zip", data, upload_dir=upload_dir)
    assert not target.exists() and not (tmp_path / "escape.png").exists()
    assert tree(tmp_path) == ["uploads"]


def test_zip_without_upload_dir_is_refused():
    with pytest.raises(ValidationError, match="needs an upload folder"):
        prepare_upload("a.zip", zip_bytes({"a.png": image_bytes()}))


def test_object_npy_is_never_unpickled(monkeypatch):
    import pickle

    def boom(*args, **kwargs):
        raise AssertionError("pickle must not be used")

    monkeypatch.setattr(pickle, "load", boom)
    monkeypatch.setattr(pickle, "loads", boom)
    with pytest.raises(ValidationError, match="would need pickle"):
        prepare_upload("o.npz", npz_bytes(x=np.array([[1]], dtype=object)))


def test_oversize_is_checked_before_parsing(monkeypatch):
    monkeypatch.setattr(ingest.tables, "read_table", lambda *a, **k: pytest.fail("parsed an oversize file"))
    with pytest.raises(ValidationError, match=r"the limit is 0.0 MB \(10 bytes\)"):
        prepare_upload("a.csv", b"text\nhello world\n", limits=ImportLimits(max_bytes=10))


# --------------------------------------------------------------------------- any bytes: ValidationError or a result

SEEDS = {
    "csv": b"text,label\na,b\n", "parquet": GOOD_PARQUET, "json": b'[{"a": 1}]', "jsonl": b'{"a": 1}\n',
    "npy": npy_bytes(np.zeros((2, 2))), "npz": npz_bytes(x=np.zeros((2, 2)), y=np.zeros(2)),
    "zip": zip_bytes({"a.png": image_bytes()}),
}
EXTENSIONS = {"csv": ".csv", "parquet": ".parquet", "json": ".json", "jsonl": ".jsonl", "npy": ".npy", "npz": ".npz", "zip": ".zip"}


@st.composite
def upload_bytes(draw):
    fmt = draw(st.sampled_from(sorted(SEEDS)))
    kind = draw(st.sampled_from(["random", "text", "mutated", "truncated"]))
    seed = SEEDS[fmt]
    if kind == "random":
        data = draw(st.binary(max_size=600))
    elif kind == "text":
        data = draw(st.text(max_size=200)).encode("utf-8")
    elif kind == "truncated":
        data = seed[:draw(st.integers(0, len(seed)))]
    else:
        data = bytearray(seed)
        for _ in range(draw(st.integers(1, 4))):
            pos = draw(st.integers(0, len(data) - 1))
            data[pos] = draw(st.integers(0, 255))
        data = bytes(data)
    return fmt, data


@pytest.mark.fuzz
@settings(suppress_health_check=[HealthCheck.too_slow])
@given(upload_bytes())
@example(
    case=('zip',
     b'PK\x03\x04\x14\x00\x00\x00\x08\x00<Sx]gU\x94hI\x00\x00\x00M\x00\x00\x00\x05\x00\x00\x00a.png\xeb\x0c\xf0s\xe7\xe5\x92\xe2b``\xe0\xf5\xf4p\t\x02\xd2\x1c@\xcc\xc6\xc1\x04$\x0b\xd3=\xd6\x00)\x11O\x17\xc7\x90\x8a9\xc9)\x1e\x96\x07\x1bx\r\x12E\x97Nfa\xd8p\x88\xd1\xe2\xd7\xb3\xad\xad@y\x06OW?\x97uN\tM\x00PK\x01\x02\x14\x03@\x00\x00\x00\x08\x00<Sx]gU\x94hI\x00\x00\x00M\x00\x00\x00\x05\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x80\x01\x00\x00\x00\x00a.pngPK\x05\x06\x00\x00\x00\x00\x01\x00\x01\x003\x00\x00\x00l\x00\x00\x00\x00\x00'),
)  # a ZIP 'version 6.4' entry: zipfile raises NotImplementedError
def test_any_bytes_give_validation_error_or_prepared_import(case):
    fmt, data = case
    with tempfile.TemporaryDirectory() as tmp:
        upload_dir = Path(tmp) / "uploads"
        limits = ImportLimits(max_zip_total_uncompressed=10 * 1024 * 1024, max_image_pixels=1_000_000)
        try:
            result = prepare_upload("f" + EXTENSIONS[fmt], data, upload_dir=upload_dir, limits=limits)
        except ValidationError:
            assert not upload_dir.exists() or tree(upload_dir) == []
            return
        assert isinstance(result, PreparedImport) and result.n_rows == len(result.items) > 0
        for item in result.items:
            serialization.dumps(item)
        assert not os.listdir(tmp) or set(os.listdir(tmp)) == {"uploads"}


# --------------------------------------------------------------------------- one transaction


def test_label_rejected_by_project_imports_nothing(engine):
    project = new_project(engine, options=["cat", "dog"])
    prepared = PreparedImport(items=[f"t{i}" for i in range(100)], external_ids=None,
                              labels=["cat"] * 99 + ["horse"], preview=pd.DataFrame(), n_rows=100)
    with pytest.raises(ValidationError, match=r"item 100: label 'horse' is not an option"):
        importing.import_prepared(engine, project, prepared)
    assert n_items(engine, project) == 0


def test_failure_after_first_chunk_rolls_back_everything(engine, monkeypatch):
    project = new_project(engine)
    prepared = prepare_upload("t.csv", ("text\n" + "\n".join(f"row {i}" for i in range(200))).encode())
    real = queue.add_items
    calls = []

    def failing(*args, **kwargs):
        calls.append(len(args[2]))
        if len(calls) == 2:
            raise RuntimeError("disk on fire")
        return real(*args, **kwargs)

    monkeypatch.setattr(queue, "add_items", failing)
    with pytest.raises(RuntimeError, match="disk on fire"):
        importing.import_prepared(engine, project, prepared)
    assert calls == [10, 10]
    assert n_items(engine, project) == 0
    monkeypatch.setattr(queue, "add_items", real)
    fractions = []
    result = importing.import_prepared(engine, project, prepared, progress=fractions.append)
    assert result.added == 200 and n_items(engine, project) == 200
    assert len(fractions) == 21 and fractions[-1] == 1.0


def test_repeated_content_across_chunks_is_kept(engine):
    project = new_project(engine)
    prepared = prepare_upload("t.json", json.dumps(["same"] * 45).encode())
    assert importing.import_prepared(engine, project, prepared).added == 45


def test_import_by_project_name_uses_fresh_settings(engine):
    project = new_project(engine, name="pets", options=["cat"])
    prepared = prepare_upload("t.csv", b"text,label\na,cat\n", plan=TablePlan(["text"], ["text"], "label"), options=["cat"])
    with session_scope(engine) as s:
        queue.update_project(s, queue.get_project(s, "pets"), options=["dog"])
    with pytest.raises(ValidationError, match="not an option"):
        importing.import_prepared(engine, "pets", prepared)
    assert n_items(engine, project) == 0


def test_display_and_model_columns_are_kept_apart(tmp_path):
    """Labellers see the display columns; the model is given only the model columns."""
    import pandas as pd

    from superintendent import learning, queue as q
    from superintendent.store import init_db, make_engine, session_scope

    engine = make_engine(f"sqlite:///{tmp_path / 'cols.db'}")
    init_db(engine)
    with session_scope(engine) as s:
        project = q.create_project(s, "rows", options=["a", "b"])
    frame = pd.DataFrame({"shown": ["x", "y", "z", "w"], "feature": [1.0, 2.0, 3.0, 4.0], "label": ["a", "b", "a", None]})
    data = frame.to_csv(index=False).encode()
    plan = ingest.TablePlan(display_columns=["shown"], model_columns=["feature"], label_column="label")
    prepared = ingest.prepare_upload("rows.csv", data, plan=plan, options=["a", "b"])
    importing.import_prepared(engine, project, prepared)
    with session_scope(engine, write=False) as s:
        project = q.get_project(s, "rows")
        features = q.labelled_data(s, project).features
    assert (project.display_columns, project.model_columns) == (["shown"], ["feature"])
    x = learning.model_view(learning.stack_features(features), project)
    assert list(x.columns) == ["feature"]


def test_repeated_ids_of_a_table_are_named_with_their_rows():
    data = b"id,text\na,one\nb,two\na,three\nc,four\nb,five\nb,six\n"
    with pytest.raises(ValidationError) as caught:
        ingest.prepare_upload("t.csv", data, plan=TablePlan(["text"], ["text"], None, "id"))
    assert str(caught.value) == ("the id column 'id' must hold a different id in every row; 2 id(s) repeat: "
                                 "'a' (data rows 1, 3); 'b' (data rows 2, 5, 6)")
    assert len(ingest.prepare_upload("t.csv", b"id,text\na,one\nb,two\n", plan=TablePlan(["text"], ["text"], None, "id")).items) == 2
