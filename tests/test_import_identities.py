"""Whom an import's annotators become (issue 13, item 7), on SQLite and PostgreSQL.

A name in a file proves nothing: Label Studio's ``completed_by`` and an
items JSONL's ``annotations[].user`` / ``review.by`` used to attach labels
and reviews to the existing account of that name, the admin's included.
Now every annotator gets an import-only account ``_import:<name>`` (system
role, no password, never signs in) unless the importing admin maps the name
to a person: ``user_map`` in Python, ``--map-user`` on the command line, the
annotators table in the Admin upload preview (audited). A review is kept
only when its reviewer is mapped to a person who may review.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import sqlalchemy as sa
from streamlit.testing.v1 import AppTest

from browser_helpers import VIEWPORT, screenshots_into, settle, sign_in
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from superintendent import audit, auth, cli, export, importing, ingest, queue
from superintendent.store import Annotation, Item, User, init_db, make_engine, session_scope
from superintendent.validation import ValidationError
from tests.test_browser import browser, server

__all__ = ["browser", "server"]  # fixtures of tests/test_browser.py, used here

APP = str(Path(__file__).resolve().parents[1] / "streamlit_app.py")
PASSWORD = "correct horse battery"


def people(engine):
    """boss (admin), rita (reviewer), bob (labeller)."""
    with session_scope(engine) as s:
        for name, role in (("boss", "admin"), ("rita", "reviewer"), ("bob", "labeller")):
            auth.create_user(s, name, PASSWORD, role)


def new_project(engine, name="p", **settings):
    with session_scope(engine) as s:
        return queue.create_project(s, name, **{"options": ["cat", "dog"], **settings})


def upload(engine, project, filename, data, user_map=None, tmp_path=None):
    prepared = ingest.prepare_upload(filename, data, options=["cat", "dog"], upload_dir=tmp_path)
    return importing.import_prepared(engine, project.name, prepared, **({} if user_map is None else {"user_map": user_map}))


def by_user(engine, project):
    """{(external id, user name): label} of the project."""
    with session_scope(engine, write=False) as s:
        return {(a.external_id, a.username): a.label for a in queue.annotation_log(s, queue.get_project(s, project.id))}


def reviews(engine, project):
    with session_scope(engine, write=False) as s:
        return [(f.external_id, f.label, f.reviewed_by) for f in queue.final_labels(s, queue.get_project(s, project.id))
                if f.source == "review"]


def stored(engine):
    with session_scope(engine, write=False) as s:
        return (s.execute(sa.select(sa.func.count()).select_from(Item)).scalar_one(),
                s.execute(sa.select(sa.func.count()).select_from(Annotation)).scalar_one(),
                sorted(s.execute(sa.select(User.username)).scalars()))


def choice(c):
    return [{"type": "choices", "from_name": "c", "to_name": "text", "value": {"choices": [c]}}]


def ls_file(*annotators):
    """One task, one annotation per annotator (``completed_by`` as Label Studio writes it)."""
    return json.dumps([{"id": 1, "data": {"text": "purrs"},
                        "annotations": [{"completed_by": who, "result": choice("cat")} for who in annotators]}]).encode()


def jl_file(*annotators, review_by=None, external_id="a"):
    line = {"external_id": external_id, "data": "purrs", "annotations": [{"user": u, "value": "cat"} for u in annotators]}
    if review_by is not None:
        line["review"] = {"value": "dog", "by": review_by}
    return (json.dumps(line) + "\n").encode()


FILES = {
    "label-studio": ("t.json", ls_file({"id": 1, "username": "boss", "email": "boss@lab.org"}, {"username": "Bob"})),
    "jsonl": ("i.jsonl", jl_file("boss", "bob")),
}


@pytest.mark.parametrize("fmt", list(FILES))
def test_a_file_naming_existing_accounts_does_not_label_as_them(engine, fmt):
    people(engine)
    project = new_project(engine, annotations_per_item=2)
    filename, data = FILES[fmt]
    assert upload(engine, project, filename, data).labelled == 2
    assert by_user(engine, project) == {("1" if fmt == "label-studio" else "a", "_import:boss"): "cat",
                                        ("1" if fmt == "label-studio" else "a", "_import:bob"): "cat"}
    with session_scope(engine, write=False) as s:
        for name in ("_import:boss", "_import:bob"):
            account = auth.get_user(s, name)
            assert account.role == "system" and account.password_hash is None and not auth.may_log_in(account)
        assert [u.username for u in auth.list_users(s)] == ["bob", "boss", "rita"]  # not offered as people anywhere
    assert not auth.authenticate(engine, "_import:boss", PASSWORD).ok
    with pytest.raises(ValidationError, match="may not start with '_'"):
        auth.normalise_username("_import:someone")  # no person can take an import-only name


def test_a_review_from_a_file_is_kept_only_when_its_reviewer_is_mapped_to_someone_who_may_review(engine):
    people(engine)
    project = new_project(engine)
    data = jl_file("ann", review_by="boss")
    before = stored(engine)
    with pytest.raises(ValidationError, match=r"item 'a', review by 'boss': a review is kept only when its reviewer is mapped.*"
                                              r"--map-user boss=NAME.*nothing was imported"):
        upload(engine, project, "i.jsonl", data)
    assert stored(engine) == before
    with pytest.raises(ValidationError, match=r"item 'a', review by 'boss':.*review.*nothing was imported"):
        upload(engine, project, "i.jsonl", data, user_map={"boss": "bob"})  # bob labels, he may not review
    assert stored(engine) == before
    upload(engine, project, "i.jsonl", data, user_map={"boss": "rita"})
    assert reviews(engine, project) == [("a", "dog", "rita")]
    assert by_user(engine, project) == {("a", "_import:ann"): "cat"}


def test_a_user_map_gives_an_annotators_labels_to_a_person(engine):
    people(engine)
    project = new_project(engine, annotations_per_item=3)
    result = upload(engine, project, "t.json", ls_file({"email": "Ann@Lab.org"}, 7, None), user_map={"ann@lab.org": "BOB"})
    assert result.labelled == 3
    assert by_user(engine, project) == {("1", "bob"): "cat", ("1", "_import:ls-7"): "cat", ("1", "_import"): "cat"}
    assert [a.name for a in importing.annotators(ingest.prepare_upload("t.json", ls_file({"email": "a@b"}, 7), options=["cat"]))] == \
        ["a@b", "ls-7"]


BAD_MAPS = [
    ("not in the file", {"zed": "bob"}, r"the user map names 'zed', who annotated nothing in this upload; its annotators are 'ann', 'cid'"),
    ("no such user", {"ann": "nobody"}, r"gives 'ann' the user 'nobody', who is not a person's account here"),
    ("a system account", {"ann": "_import:cid"}, r"gives 'ann' the user '_import:cid'.*may not start with '_'"),
    ("two names, one person, one item", {"ann": "bob", "cid": "Bob"}, r"item 'a': the annotators 'ann' and 'cid' are mapped to the same user"),
]


@pytest.mark.parametrize("user_map, fragment", [b[1:] for b in BAD_MAPS], ids=[b[0] for b in BAD_MAPS])
def test_a_bad_user_map_is_refused_and_imports_nothing(engine, user_map, fragment):
    people(engine)
    project = new_project(engine, annotations_per_item=2)
    upload(engine, project, "i.jsonl", jl_file("cid", external_id="z"))  # _import:cid exists now
    before = stored(engine)
    with pytest.raises(ValidationError, match=fragment):
        upload(engine, project, "i.jsonl", jl_file("ann", "cid"), user_map=user_map)
    assert stored(engine) == before


def test_import_only_accounts_travel_back_under_the_annotators_own_names(engine, tmp_path):
    project = new_project(engine, annotations_per_item=2)
    upload(engine, project, "t.json", ls_file({"email": "ann@lab.org"}, 7))
    # items JSON Lines keep the account: imported again, the labels stay with the same import-only accounts
    copy = new_project(engine, "copy", annotations_per_item=2)
    upload(engine, copy, "items.jsonl", export.export_labels(engine, project, "jsonl"))
    assert set(by_user(engine, copy)) == {("1", "_import:ann@lab.org"), ("1", "_import:ls-7")}
    # Label Studio gets the annotators as they were in its own file
    tasks = json.loads(export.export_labels(engine, project, "label-studio"))
    assert sorted(str(a["completed_by"]) for a in tasks[0]["annotations"]) == \
        ["7", str({"email": "ann@lab.org", "username": "ann@lab.org"})]


# --------------------------------------------------------------------------- command line


@pytest.fixture
def cli_db(tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("SUPERINTENDENT_DATABASE_URL", url)
    monkeypatch.setenv("SUPERINTENDENT_DATA_DIR", str(tmp_path / "data"))
    return url


def test_the_command_line_maps_annotators_with_map_user(cli_db, capsys, tmp_path):
    assert cli.main(["create-project", "pets", "--options", "cat,dog", "--annotations-per-item", "2"]) == 0
    engine = make_engine(cli_db)
    people(engine)
    (tmp_path / "t.json").write_bytes(ls_file({"email": "ann@lab.org"}, {"username": "a=b"}))
    capsys.readouterr()
    assert cli.main(["import", "pets", str(tmp_path / "t.json"), "--map-user", "ann@lab.org=bob"]) == 0
    out = capsys.readouterr().out
    assert "annotators: ann@lab.org -> bob; 1 as import-only accounts (_import:a=b)" in out
    with session_scope(engine, write=False) as s:
        project = queue.get_project(s, "pets")
    assert by_user(engine, project) == {("1", "bob"): "cat", ("1", "_import:a=b"): "cat"}
    assert cli.main(["import", "pets", str(tmp_path / "t.json"), "--map-user", "a=b=rita"]) == 0  # split at the last '='
    assert ("1", "rita") in by_user(engine, project)
    for bad, message in (("bob", "--map-user takes ANNOTATOR=USER"), ("zed=bob", "the user map names 'zed'")):
        assert cli.main(["import", "pets", str(tmp_path / "t.json"), "--map-user", bad]) == 2
        assert message in capsys.readouterr().err


# --------------------------------------------------------------------------- the Admin upload preview


@pytest.fixture
def app_env(db_url, tmp_path, monkeypatch, engine):
    monkeypatch.setenv("SUPERINTENDENT_DATABASE_URL", db_url)
    monkeypatch.setenv("SUPERINTENDENT_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("SUPERINTENDENT_RUN_SCHEDULER", "false")
    return engine


def admin_upload(tasks: bytes) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60).run()
    at.text_input[0].input("boss")
    at.text_input[1].input(PASSWORD)
    at.button[0].click().run()
    at.run()
    at.switch_page("pages/admin.py").run()
    at.file_uploader(key="admin-upload-file").set_value(("tasks.json", tasks, "application/json"))
    return at.run()


def mapping(at):
    """The annotators table: {label: selectbox} of the selects whose key starts with admin-upload-map-."""
    return {box.label.replace("\\", "").replace("\u2060", ""): box for box in at.selectbox if str(box.key).startswith("admin-upload-map-")}


def test_the_admin_maps_annotators_in_the_preview_and_the_audit_log_records_it(app_env):
    people(app_env)
    project = new_project(app_env, annotations_per_item=3)
    at = admin_upload(ls_file({"email": "ann@lab.org"}, {"username": "boss"}, 7))
    assert not at.exception and [e.value for e in at.error] == []
    boxes = mapping(at)
    assert list(boxes) == ["ann@lab.org (1 label)", "boss (1 label)", "ls-7 (1 label)"]
    assert all(box.value is None for box in boxes.values())  # default: the import-only account
    assert boxes["boss (1 label)"].format_func(None) == "import-only: _import:boss"
    assert boxes["boss (1 label)"].options == ["import-only: _import:boss", "bob", "boss", "rita"]
    boxes["ann@lab.org (1 label)"].set_value("bob").run()
    at.button(key="admin-upload-import").click().run()
    assert [e.value for e in at.error] == [] and at.success
    assert by_user(app_env, project) == {("1", "bob"): "cat", ("1", "_import:boss"): "cat", ("1", "_import:ls-7"): "cat"}
    with session_scope(app_env, write=False) as s:
        (entry,) = [e for e in audit.recent(s) if e.action == "data.import"]
    assert entry.actor == "boss" and entry.details["user_map"] == {"ann@lab.org": "bob"}
    assert entry.details["import_only_accounts"] == 2


def test_the_preview_warns_about_reviews_nobody_is_mapped_to(app_env):
    people(app_env)
    new_project(app_env)
    at = admin_upload(ls_file())  # no annotators: no table
    assert mapping(at) == {}
    at.file_uploader(key="admin-upload-file").set_value(("items.jsonl", jl_file("ann", review_by="rita"), "application/json")).run()
    boxes = mapping(at)
    assert list(boxes) == ["ann (1 label)", "rita (1 review)"]
    assert any("'rita' reviewed items in this file" in w.value for w in at.warning)
    boxes["rita (1 review)"].set_value("rita").run()
    assert not any("reviewed items" in w.value for w in at.warning)
    at.button(key="admin-upload-import").click().run()
    assert [e.value for e in at.error] == [] and at.success


# --------------------------------------------------------------------------- the same in Chromium


def mapped(page, i):
    """The select of the i-th annotator of the file (its key starts admin-upload-map-<i>-)."""
    return page.locator(f'[class*="st-key-admin-upload-map-{i}-"] input')


def test_the_annotators_table_in_the_browser(server, browser, tmp_path, monkeypatch):
    """The preview's annotators table as an admin sees it: each annotator on its import-only account until a user is picked."""
    monkeypatch.setenv("STREAMLIT_SERVER_FILE_WATCHER_TYPE", "none")
    base, db_url = server
    tasks = tmp_path / "tasks.json"
    tasks.write_bytes(json.dumps([{"id": i, "data": {"text": f"text {i}"}, "annotations": [
        {"completed_by": who, "result": choice("cat" if i % 2 else "dog")} for who in ({"email": "ann@lab.org"}, {"username": "boss"}, 7)]}
        for i in range(1, 4)] + [{"id": 4, "data": {"text": "text 4"}, "annotations": [{"completed_by": None, "result": choice("cat")}]}]).encode())
    shoot = screenshots_into(tmp_path / "shots")
    engine = make_engine(db_url)
    init_db(engine)
    people(engine)
    project = new_project(engine, "pets", annotations_per_item=3)
    page = browser.new_page(viewport=VIEWPORT)
    sign_in(page, base, "boss")
    page.get_by_role("link", name="Admin").click()
    settle(page)
    page.get_by_role("tab", name="Upload data").click()
    page.locator('[data-testid="stFileUploaderDropzoneInput"]').set_input_files(str(tasks))
    settle(page)
    page.get_by_text("Annotators in the file (4)").wait_for(timeout=30_000)
    assert [mapped(page, i).input_value() for i in range(4)] == [
        "import-only: _import:ann@lab.org", "import-only: _import:boss", "import-only: _import:ls-7", "import-only: _import"]
    page.get_by_role("button", name="Import 4 items into 'pets'").scroll_into_view_if_needed()
    shoot(page, "annotators-default")
    for _ in range(5):  # a rerun that redraws the box closes its list: try again then
        settle(page)
        mapped(page, 0).click()
        try:
            page.get_by_role("option", name="bob", exact=True).click(timeout=5_000)
        except PlaywrightTimeout:
            continue
        settle(page)
        if mapped(page, 0).input_value() == "bob":
            break
    assert mapped(page, 0).input_value() == "bob"
    page.get_by_role("button", name="Import 4 items into 'pets'").scroll_into_view_if_needed()
    shoot(page, "annotators-mapped")
    page.get_by_role("button", name="Import 4 items into 'pets'").click()
    settle(page)
    page.get_by_text("Imported 4 new items").first.wait_for(timeout=30_000)
    page.get_by_text("Imported 4 new items").first.scroll_into_view_if_needed()
    shoot(page, "annotators-imported")
    assert {user for _, user in by_user(engine, project)} == {"bob", "_import:boss", "_import:ls-7", "_import"}
    engine.dispose()
