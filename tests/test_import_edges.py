"""Uploads at the edges (issue 13, items 6 and 8), on SQLite and PostgreSQL.

* Item 6: JSON nested hundreds of levels deep, and NUL characters / lone
  surrogates (``\\u0000``, ``\\ud800``) in ids, text, labels, annotator names
  and data keys, ended in a traceback (a RecursionError; on PostgreSQL
  ``CharacterNotInRepertoire`` from COPY and "A string literal cannot contain
  NUL" from creating the annotator). Now each is a ValidationError naming the
  field and the row, and nothing is stored; other control characters are
  imported exactly.
* Item 8: every path an upload names (an items JSONL ``file_path`` or
  ``data.image_path``, a Label Studio table row's ``image_path``, a table's
  ``image_path`` column, a tagged path) must be a file inside the upload
  folder; a retrain used to read images from anywhere on the server.
"""

from __future__ import annotations

import io
import json
import os

import pandas as pd
import pytest
import sqlalchemy as sa
from PIL import Image

from superintendent import importing, ingest, queue, serialization
from superintendent.store import Annotation, Item, Project, User, session_scope
from superintendent.validation import ValidationError


MAX_JSON_DEPTH = 100  # the documented limit (docs/admin.md); ingest.checks.MAX_JSON_DEPTH


def new_project(engine, name="p", **settings):
    with session_scope(engine) as s:
        return queue.create_project(s, name, **settings)


def stored(engine):
    """What the database holds that an import could add: items, annotations, users, each project's table settings."""
    with session_scope(engine, write=False) as s:
        return (s.execute(sa.select(sa.func.count()).select_from(Item)).scalar_one(),
                s.execute(sa.select(sa.func.count()).select_from(Annotation)).scalar_one(),
                sorted(s.execute(sa.select(User.username)).scalars()),
                sorted(s.execute(sa.select(Project.name, Project.display_columns)).all(), key=str))


def upload(engine, project, filename, data, upload_dir=None, **kwargs):
    with session_scope(engine, write=False) as s:
        proj = queue.get_project(s, project.id)
    prepared = ingest.prepare_upload(filename, data, options=proj.options, label_mode=proj.label_mode, upload_dir=upload_dir,
                                     allow_free_text=proj.allow_free_text, **kwargs)
    return importing.import_prepared(engine, proj, prepared)


def refused(engine, project, filename, data, fragment, upload_dir=None, **kwargs):
    """The upload raises a ValidationError matching ``fragment`` (no other exception) and stores nothing."""
    before = stored(engine)
    with pytest.raises(ValidationError, match=fragment):
        upload(engine, project, filename, data, upload_dir, **kwargs)
    assert stored(engine) == before


def choice(*c):
    return [{"type": "choices", "from_name": "c", "to_name": "text", "value": {"choices": list(c)}}]


def ls(task_id=1, text="a text", user="ann@lab.org", label="cat", key="text"):
    return json.dumps([{"id": task_id, "data": {key: text}, "annotations": [{"completed_by": user, "result": choice(label)}]}]).encode()


def jl(external_id="a", data="a text", user="ann", value="cat", **extra):
    return (json.dumps({"external_id": external_id, "data": data, "annotations": [{"user": user, "value": value}], **extra}) + "\n").encode()


def nested(depth, leaf="x"):
    return "[" * depth + json.dumps(leaf) + "]" * depth


# --------------------------------------------------------------------------- item 6: deep nesting

DEEP = [
    ("label-studio text", "t.json", lambda d: f'[{{"id": 1, "data": {{"text": {nested(d)}}}}}]', r"task 1, at \[\"data\"\]\[\"text\"\]"),
    ("label-studio row", "t.json", lambda d: f'[{{"id": 1, "data": {{"a": {nested(d)}, "b": 1}}}}]', r"task 1, at \[\"data\"\]\[\"a\"\]"),
    ("items jsonl", "i.jsonl", lambda d: f'{{"external_id": "a", "data": {nested(d)}, "annotations": []}}\n', r"line 1: at \[\"data\"\]"),
    ("json table", "t.json", lambda d: f'[{{"text": {nested(d)}, "n": 1}}]', r"at \[0\]\[\"text\"\]"),
    ("jsonl table", "t.jsonl", lambda d: f'{{"text": {nested(d)}, "n": 1}}\n', r"column 'text', data row 1"),  # the table's cell check
]


@pytest.mark.parametrize("depth", [150, 600, 5000])
@pytest.mark.parametrize("filename, make, where", [d[1:] for d in DEEP], ids=[d[0] for d in DEEP])
def test_deeply_nested_json_is_refused_with_a_message(engine, tmp_path, make, filename, where, depth):
    """A 3.6 KB file nested 600 levels deep gave a RecursionError after parsing (decoding tagged values, the table plan);
    now it is refused, naming the task / line / row, and nothing is stored."""
    project = new_project(engine, options=["cat"])
    data = make(depth).encode()
    assert depth != 600 or len(data) < 4000
    if depth > 900:  # past what json.loads itself can parse: refused while parsing, the message naming the file
        refused(engine, project, filename, data, "nested more than 100 levels|maximum recursion depth exceeded", tmp_path)
    else:
        refused(engine, project, filename, data, f"{where}.*nested more than 100 levels", tmp_path)


def test_nesting_up_to_the_limit_is_imported_exactly(engine, tmp_path):
    project = new_project(engine, options=["cat"])
    value = json.loads(nested(MAX_JSON_DEPTH - 1))  # inside the line's object: 100 levels in all
    assert upload(engine, project, "i.jsonl", jl(data=value), tmp_path).added == 1
    with session_scope(engine, write=False) as s:
        (data,) = s.execute(sa.select(Item.data)).scalars()
    assert serialization.loads(data) == value
    refused(engine, project, "i.jsonl", jl(external_id="b", data=[value]), "nested more than 100 levels", tmp_path)


# --------------------------------------------------------------------------- item 6: NUL and lone surrogates

BAD_TEXT = {"\x00": r"a NUL character \(\\u0000\)", "\ud800": r"a lone surrogate \(\\ud800\)"}
FIELDS = [
    ("label-studio id", "t.json", lambda t: ls(task_id=t), r"task 1, at \[\"id\"\]"),
    ("label-studio annotator", "t.json", lambda t: ls(user=t), r"task 1, at \[\"annotations\"\]\[0\]\[\"completed_by\"\]"),
    ("label-studio text", "t.json", lambda t: ls(text=t), r"task 1, at \[\"data\"\]\[\"text\"\]"),
    ("label-studio label", "t.json", lambda t: ls(label=t), r"task 1, at \[\"annotations\"\]\[0\]\[\"result\"\]"),
    ("label-studio data key", "t.json", lambda t: ls(key=t), r"task 1, at \[\"data\"\] has the key"),
    ("jsonl id", "i.jsonl", lambda t: jl(external_id=t), r"line 1: at \[\"external_id\"\]"),
    ("jsonl annotator", "i.jsonl", lambda t: jl(user=t), r"line 1: at \[\"annotations\"\]\[0\]\[\"user\"\]"),
    ("jsonl reviewer", "i.jsonl", lambda t: jl(review={"value": "cat", "by": t}), r"line 1: at \[\"review\"\]\[\"by\"\]"),
    ("jsonl text", "i.jsonl", lambda t: jl(data=t), r"line 1: at \[\"data\"\]"),
    ("jsonl data key", "i.jsonl", lambda t: jl(data={t: "x", "b": "y"}), r"line 1: at \[\"data\"\] has the key"),
    ("jsonl label", "i.jsonl", lambda t: jl(value=t), r"line 1: at \[\"annotations\"\]\[0\]\[\"value\"\]"),
    ("jsonl file path", "i.jsonl", lambda t: jl(file_path=t), r"line 1: at \[\"file_path\"\]"),
    ("json table id", "t.json", lambda t: json.dumps([{"id": t, "text": "x"}, {"id": "b", "text": "y"}]).encode(), r"at \[0\]\[\"id\"\]"),
]
TABLES = {"json table id": {"plan": ingest.TablePlan(["text"], ["text"], id_column="id")}}


@pytest.mark.parametrize("bad", list(BAD_TEXT), ids=["nul", "lone-surrogate"])
@pytest.mark.parametrize("field, filename, make, where", FIELDS, ids=[f[0] for f in FIELDS])
def test_nul_and_lone_surrogates_are_refused_naming_the_field_and_row(engine, tmp_path, field, make, filename, where, bad):
    """PostgreSQL cannot store NUL in text (COPY failed with CharacterNotInRepertoire, creating the annotator with "A string
    literal cannot contain NUL"); a lone surrogate is no text (UnicodeEncodeError on both). Both databases now refuse alike."""
    project = new_project(engine, options=["cat"], allow_free_text=True)
    data = make(f"a{bad}b")
    assert b"\\u0000" in data or b"\\ud800" in data  # an escape in the file: the raw bytes hold no NUL
    refused(engine, project, filename, data, f"{where}.*{BAD_TEXT[bad]}", tmp_path, **TABLES.get(field, {}))


def test_nul_in_the_ids_of_any_format_is_refused_by_the_importer(engine, tmp_path):
    """A Parquet table's id column with a NUL passed every reader: COPY failed on PostgreSQL, SQLite stored it."""
    project = new_project(engine, options=["cat"])
    buf = io.BytesIO()
    pd.DataFrame({"id": ["ok", "bad\x00id"], "text": ["one", "two"]}).to_parquet(buf)
    plan = ingest.TablePlan(["text"], ["text"], id_column="id")
    refused(engine, project, "t.parquet", buf.getvalue(), r"item 2 \(id 'bad\\x00id'\): its id holds a NUL character", plan=plan)


CONTROL = "\x01\x08\t\n\r\x1b\x1f\x7f\x85\u2028"


def test_other_control_characters_are_imported_exactly(engine, tmp_path):
    project = new_project(engine, options=["cat", f"c{CONTROL}t"], annotations_per_item=2)
    line = {"external_id": f"id{CONTROL}", "data": {f"k{CONTROL}": f"text{CONTROL}", "b": 1},
            "annotations": [{"user": f"u{CONTROL}v", "value": f"c{CONTROL}t"}, {"user": "plain", "value": "cat"}]}
    assert upload(engine, project, "i.jsonl", (json.dumps(line) + "\n").encode(), tmp_path).labelled == 2
    with session_scope(engine, write=False) as s:
        (item,) = s.execute(sa.select(Item.external_id, Item.data)).all()
        log = {(a.username, a.label) for a in queue.annotation_log(s, queue.get_project(s, project.id))}
    assert item.external_id == f"id{CONTROL}" and serialization.loads(item.data) == line["data"]
    # the JSONL reader strips a name's surrounding whitespace (\x85 and \u2028 are whitespace): the inner characters stay
    assert log == {(f"_import:u{CONTROL}v", f"c{CONTROL}t"), ("_import:plain", "cat")}


@pytest.mark.parametrize("external_id", ["a\rb", "\r", "a\r\nb", "a\n"])
def test_an_id_with_a_carriage_return_is_imported_exactly(engine, tmp_path, external_id):
    """Found by the fuzz test: on PostgreSQL the items' COPY ended a row at a bare carriage return ("missing data for column")."""
    project = new_project(engine, options=["cat"])
    assert upload(engine, project, "i.jsonl", jl(external_id=external_id), tmp_path).added == 1
    with session_scope(engine, write=False) as s:
        assert s.execute(sa.select(Item.external_id)).scalar_one() == external_id


def test_an_annotator_name_must_fit_its_import_only_account(engine, tmp_path):
    project = new_project(engine, options=["cat"])
    refused(engine, project, "i.jsonl", jl(user="x" * 143), "has 143 characters; the limit is 142", tmp_path)
    assert upload(engine, project, "i.jsonl", jl(user="x" * 142), tmp_path).labelled == 1
    with session_scope(engine, write=False) as s:
        assert s.execute(sa.select(User.username).where(User.username.like("_import:%"))).scalar_one() == "_import:" + "x" * 142


# --------------------------------------------------------------------------- item 8: paths inside the upload folder


def png(path, colour=(200, 10, 10)):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (4, 4), colour).save(path, format="PNG")
    return path


@pytest.fixture
def folders(tmp_path):
    """(the upload folder with one image in it, an image elsewhere on the server)."""
    uploads = tmp_path / "uploads"
    png(uploads / "images" / "inside.png")
    return uploads, png(tmp_path / "elsewhere" / "secret.png", (1, 2, 3))


def image_item(path):
    return {"image_path": str(path), "name": "x.png"}


OUTSIDE = [
    ("jsonl data.image_path", "i.jsonl", lambda p: jl(data=image_item(p)), r"line 1 \(external_id 'a'\), data, field 'image_path'"),
    ("jsonl file_path", "i.jsonl", lambda p: jl(file_path=str(p)), r"line 1 \(external_id 'a'\), file_path"),
    ("jsonl tagged path", "i.jsonl", lambda p: jl(data={"__path__": str(p)}), r"line 1 \(external_id 'a'\), data"),
    ("jsonl tagged path in a row", "i.jsonl", lambda p: jl(data={"photo": {"__path__": str(p)}, "n": 1}), "field 'photo'"),
    ("label-studio row image_path", "t.json",
     lambda p: json.dumps([{"id": 1, "data": {"image_path": str(p), "name": "x.png"}}]).encode(), r"task 1 \(id 1\), data, field 'image_path'"),
    ("csv image_path column", "t.csv", lambda p: f"image_path,name\n{p},x.png\n".encode(), r"data row 1, field 'image_path'"),
]


@pytest.mark.parametrize("how", ["absolute", "relative", "symlink"])
@pytest.mark.parametrize("filename, make, where", [o[1:] for o in OUTSIDE], ids=[o[0] for o in OUTSIDE])
def test_a_path_outside_the_upload_folder_is_refused(engine, folders, make, filename, where, how):
    """An items JSONL data.image_path was never checked (only file_path was): a retrain read images from elsewhere on the
    server. Every path field now goes through one check, whichever way the path leaves the folder."""
    uploads, secret = folders
    if how == "relative":
        path = os.path.relpath(secret, uploads)  # ../elsewhere/secret.png, taken inside the upload folder
    elif how == "symlink":
        (uploads / "link.png").symlink_to(secret)
        path = uploads / "link.png"
    else:
        path = secret
    project = new_project(engine, options=["cat"])
    refused(engine, project, filename, make(path), f"{where}.*not a file in this server's upload folder", uploads)


@pytest.mark.parametrize("filename, make, where", [o[1:] for o in OUTSIDE], ids=[o[0] for o in OUTSIDE])
def test_a_path_inside_the_upload_folder_is_imported_resolved(engine, folders, make, filename, where):
    uploads, _ = folders
    project = new_project(engine, options=["cat"])
    assert upload(engine, project, filename, make("images/inside.png"), uploads).added == 1  # relative: inside the folder
    with session_scope(engine, write=False) as s:
        (row,) = s.execute(sa.select(Item.data, Item.file_path)).all()
    resolved = str((uploads / "images" / "inside.png").resolve())
    data = serialization.loads(row.data)
    found = row.file_path if "file_path" in where else data.get("image_path", data.get("photo", data)) if isinstance(data, dict) else data
    assert str(found) == resolved


def test_a_path_needs_an_upload_folder_and_an_existing_file(engine, folders):
    uploads, _ = folders
    project = new_project(engine, options=["cat"])
    refused(engine, project, "i.jsonl", jl(data=image_item("images/inside.png")), "importing paths needs an upload folder", None)
    refused(engine, project, "i.jsonl", jl(data=image_item("images/gone.png")), "not a file in this server's upload folder", uploads)
    refused(engine, project, "i.jsonl", jl(data=image_item("images")), "not a file in this server's upload folder", uploads)
    refused(engine, project, "i.jsonl", jl(data={"image_path": 7, "name": "x"}), "a file path must be non-empty text", uploads)
    refused(engine, project, "i.jsonl", jl(data=image_item("x" * 5000)), "not a file in this server's upload folder", uploads)


@pytest.mark.parametrize("name,data,unit", [("rows.json", b"[[1, 2], [3, 4]]", "element"), ("rows.jsonl", b"[1, 2]\n[3, 4]\n", "line")])
def test_rows_that_are_lists_are_refused_with_one_clear_sentence(name, data, unit):
    with pytest.raises(ValidationError) as refused:
        ingest.prepare_upload(name, data, options=["a"])
    assert str(refused.value) == (f"'{name}': {unit} 1 is a list; give every {unit} an object such as "
                                  '{"text": "..."} (or a plain value)')  # it said "line 1 is a list but line 1 is a list"
