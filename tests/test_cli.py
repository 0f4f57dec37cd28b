"""The ``superintendent`` command as a person uses it: what it accepts, what it says, which database it touches.

The commands run in this process (``cli.main``), with the settings taken
from environment variables pointed at a temporary folder.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from superintendent import cli, queue
from superintendent.al.acquisition import ACQUISITION_NAMES
from superintendent.store import make_engine, session_scope


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No settings at all: HOME is a temporary folder, so the default database is a file under it."""
    for name in ("SUPERINTENDENT_DATABASE_URL", "SUPERINTENDENT_DATA_DIR", "XDG_DATA_HOME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    return tmp_path / "home"


@pytest.fixture
def db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, home: Path) -> str:  # noqa: ARG001 - no other settings
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    monkeypatch.setenv("SUPERINTENDENT_DATABASE_URL", url)
    monkeypatch.setenv("SUPERINTENDENT_DATA_DIR", str(tmp_path / "data"))
    return url


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = cli.main(list(args))
    out, err = capsys.readouterr()
    return code, out.strip(), err.strip()


def test_create_project_accepts_every_acquisition_function_the_web_form_offers(db, capsys):
    for name in ACQUISITION_NAMES:
        assert run(capsys, "create-project", f"p-{name}", "--options", "a,b", "--acquisition-function", name)[0] == 0
    with session_scope(make_engine(db), write=False) as s:
        stored = {p.name: p.acquisition_function for p in queue.list_projects(s)}
    assert stored == {f"p-{name}": name for name in ACQUISITION_NAMES}
    assert "margin_diverse" in ACQUISITION_NAMES


def test_import_says_what_was_added_and_what_was_there_for_items_and_labels(db, capsys, tmp_path):
    assert run(capsys, "create-project", "words", "--options", "positive,negative", "--data-type", "text")[0] == 0
    data = tmp_path / "words.csv"
    data.write_text("id,word,label\nw1,lovely,positive\nw2,dreadful,negative\nw3,sunny,\n")
    args = ("import", "words", str(data), "--id-column", "id", "--label-column", "label")
    assert run(capsys, *args)[:2] == (0, "imported into 'words': 3 new items, 0 already there; labels: 2 new, 0 changed, 0 already there")
    assert run(capsys, *args)[:2] == (0, "imported into 'words': 0 new items, 3 already there; labels: 0 new, 0 changed, 2 already there")
    data.write_text("id,word,label\nw1,lovely,negative\nw2,dreadful,negative\nw3,sunny,positive\nw4,grey,\n")
    assert run(capsys, *args)[:2] == (0, "imported into 'words': 1 new item, 3 already there; labels: 1 new, 1 changed, 1 already there")
    plain = tmp_path / "more.csv"
    plain.write_text("word\nbreezy\n")
    assert run(capsys, "import", "words", str(plain))[:2] == (0, "imported into 'words': 1 new item, 0 already there; no labels")


@pytest.mark.parametrize("args", [
    ("export", "pets", "--format", "csv", "-o", "out.csv"),
    ("import", "pets", "pets.csv"),
    ("orchestrate", "--project", "pets"),
    ("orchestrate", "--all", "--max-runs", "1"),
], ids=lambda a: " ".join(a[:2]))
def test_commands_that_need_data_never_create_a_database(args, home, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "pets.csv").write_text("name\nrex\n")
    default = home / ".local" / "share" / "superintendent" / "superintendent.db"
    code, out, err = run(capsys, *args)
    assert code == 2 and out == ""
    assert err.startswith(f"error: no database: the SQLite file '{default}' does not exist"), err
    assert "superintendent init" in err and "Traceback" not in err
    assert not default.parent.exists()  # not even the folder
    missing = tmp_path / "elsewhere" / "labels.db"
    code, _, err = run(capsys, *args, "--database-url", f"sqlite:///{missing}")
    assert code == 2 and f"'{missing}' does not exist" in err and not missing.parent.exists()


def test_a_missing_project_names_the_database_in_use(db, capsys):
    assert run(capsys, "create-project", "birds", "--options", "robin,wren")[0] == 0
    code, _, err = run(capsys, "export", "fish", "--format", "csv", "-o", "out.csv")
    assert code == 2 and err == f"error: no project 'fish'; projects: birds (database {db})"


def test_database_urls_are_shown_without_their_password():
    assert cli.shown_url("postgresql+psycopg2://bob:s3cret@db.lab:5432/labels") == "postgresql+psycopg2://bob:***@db.lab:5432/labels"
    assert "s3cret" not in cli.shown_url("not a url bob:s3cret@")


def test_every_help_names_the_database_it_will_use(home, capsys, monkeypatch):
    default = home / ".local" / "share" / "superintendent" / "superintendent.db"
    commands = ["init", "create-user", "create-project", "import", "export", "orchestrate", "demo"]
    for command in [*commands, None]:
        with pytest.raises(SystemExit):
            cli.main([command, "--help"] if command else ["--help"])
        text = capsys.readouterr().out
        assert f"database: sqlite:///{default}\n  (the home folder's default SQLite file" in text, (command, text)
    monkeypatch.setenv("SUPERINTENDENT_DATABASE_URL", "postgresql+psycopg2://bob:s3cret@db.lab/labels")
    with pytest.raises(SystemExit):
        cli.main(["export", "--help"])
    text = capsys.readouterr().out
    assert "database: postgresql+psycopg2://bob:***@db.lab/labels\n  (from $SUPERINTENDENT_DATABASE_URL;" in text
    assert "s3cret" not in text
    assert not default.parent.exists()


def test_orchestrate_prints_project_names_and_why_a_run_was_skipped(db, capsys, tmp_path):
    assert run(capsys, "create-project", "reviews", "--options", "good,bad", "--data-type", "text",
               "--model-preset", "tfidf_logistic_regression")[0] == 0
    data = tmp_path / "reviews.csv"
    data.write_text("text,label\nsplendid,good\nsuperb,good\nawful,\n")
    assert run(capsys, "import", "reviews", str(data), "--label-column", "label")[0] == 0
    code, out, _ = run(capsys, "orchestrate", "--project", "reviews")
    first, last = out.splitlines()
    assert code == 0 and last == "1 run(s) done"
    assert first.startswith("'reviews': skipped labels=2: need labels of at least two classes"), first
