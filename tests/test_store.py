"""Schema creation and upgrades (Alembic), engines, the settings that name them, and the command that runs them."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import timeit
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlmodel import SQLModel

from superintendent.config import Settings, get_settings
from superintendent.store import Item, Project, db, init_db, make_engine, session_scope
from superintendent.store.db import _alembic_config, current_revision


def head_revision() -> str:
    """The newest revision of the migrations shipped with the package, read by Alembic itself."""
    return ScriptDirectory(str(Path(db.__file__).with_name("migrations"))).get_current_head()


def test_init_creates_the_schema_the_models_describe(db_url):
    engine = make_engine(db_url)
    assert init_db(engine) == head_revision()
    assert init_db(engine) == head_revision()  # a second run is a no-op
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), SQLModel.metadata)
    assert diff == [], "models and migrations disagree: add an Alembic revision"
    engine.dispose()


def test_sqlite_pragmas(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'x.db'}")
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30_000


def test_opening_a_rollback_journal_file_while_another_connection_writes_waits_for_the_switch_to_wal(tmp_path):
    """Switching a file to WAL needs its exclusive lock, and SQLite does not run the busy handler for it: six processes
    opening one new database on a loaded machine got "database is locked" (CI). The switch waits as a writer would."""
    import sqlite3
    import threading

    path = tmp_path / "old.db"
    writer = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    writer.execute("CREATE TABLE t (x)")
    writer.execute("BEGIN IMMEDIATE")  # holds the write lock for half a second, as another process's migration would
    threading.Timer(0.5, lambda: writer.execute("COMMIT")).start()
    engine = make_engine(f"sqlite:///{path}", busy_timeout_seconds=10)
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    engine.dispose()
    writer.close()


def test_times_come_back_aware_utc_and_naive_times_are_refused(engine):
    with session_scope(engine) as s:
        s.add(Project(name="p"))
    with session_scope(engine, write=False) as s:
        created = s.execute(sa.select(Project.created_at)).scalar_one()
    assert created.tzinfo is not None and created.utcoffset() == dt.timedelta(0)
    with pytest.raises(sa.exc.StatementError, match="naive datetime"):
        with session_scope(engine) as s:
            s.add(Project(name="q", created_at=dt.datetime(2020, 1, 1)))


def test_foreign_keys_are_enforced(engine):
    with pytest.raises(sa.exc.IntegrityError):
        with session_scope(engine) as s:
            s.add(Item(project_id=12345, external_id="x", data="1"))


def test_cli_init(tmp_path):
    db = tmp_path / "cli.db"
    out = subprocess.run([sys.executable, "-m", "superintendent.cli", "init", "--database-url", f"sqlite:///{db}"],
                         capture_output=True, text=True, check=True)
    assert f"at schema revision {head_revision()}" in out.stdout
    engine = make_engine(f"sqlite:///{db}")
    with engine.connect() as conn:
        assert current_revision(conn) == head_revision()


def test_cli_reports_an_unreachable_database(tmp_path):
    out = subprocess.run([sys.executable, "-m", "superintendent.cli", "init", "--database-url", "postgresql+psycopg2://x@127.0.0.1:1/y"],
                         capture_output=True, text=True)
    assert out.returncode == 2
    assert out.stderr.startswith("error: cannot connect to postgresql+psycopg2://x@127.0.0.1:1/y")
    assert "Traceback" not in out.stderr


def test_a_database_made_at_the_first_revision_upgrades_and_keeps_its_data(db_url):
    engine = make_engine(db_url)
    with engine.connect() as conn:
        with conn.begin():
            command.upgrade(_alembic_config(conn), "0001")
        with conn.begin():
            for name, settings in (("old", "{}"), ("rows", OLD_SETTINGS)):
                conn.execute(OLD_PROJECT, {"name": name, "settings": settings})
        assert current_revision(conn) == "0001"
    assert init_db(engine) == head_revision() != "0001"
    with session_scope(engine, write=False) as s:
        assert s.execute(sa.select(Project.name).order_by(Project.name)).scalars().all() == ["old", "rows"]
        assert "hint" in {c["name"] for c in sa.inspect(s.connection()).get_columns("sp_item")}
        old, rows = (s.execute(sa.select(Project).where(Project.name == n)).scalar_one() for n in ("old", "rows"))
        assert (old.display_columns, old.model_columns, old.diversity_window) == (None, None, None)
        assert (rows.display_columns, rows.model_columns, rows.diversity_window) == (["title"], ["title", "n"], 4)
    engine.dispose()


def test_an_upgrade_from_0003_keeps_every_annotation(db_url):
    """Migration 0004 rebuilds sp_item on SQLite (copy, drop, rename): with foreign keys on, dropping the old
    table cascaded to sp_annotation and every label was lost. Upgrades now run with the checks off, then verify them."""
    engine = make_engine(db_url)
    with engine.connect() as conn:
        with conn.begin():
            command.upgrade(_alembic_config(conn), "0003")
        with conn.begin():
            conn.execute(OLD_PROJECT.bindparams(name="rows", settings="{}"))
            conn.execute(sa.text("INSERT INTO sp_user (username, display_name, email, role, active, failed_logins, created_at) "
                                 "VALUES ('ann', '', '', 'labeller', true, 0, CURRENT_TIMESTAMP)"))
            conn.execute(sa.text("INSERT INTO sp_item (project_id, external_id, data, priority, created_at) "
                                 "SELECT id, 'a', '1', 0, CURRENT_TIMESTAMP FROM sp_project"))
            conn.execute(sa.text("INSERT INTO sp_annotation (project_id, item_id, user_id, value, created_at) "
                                 "SELECT project_id, sp_item.id, sp_user.id, '\"cat\"', CURRENT_TIMESTAMP FROM sp_item, sp_user"))
    init_db(engine)
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM sp_annotation")).scalar_one() == 1
        assert conn.execute(sa.text("SELECT count(*) FROM sp_item")).scalar_one() == 1
    if engine.dialect.name == "sqlite":  # and the checks are back on for everyone after the upgrade
        with engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar_one() == 1
    engine.dispose()


OLD_PROJECT = sa.text("INSERT INTO sp_project (name, data_type, label_mode, options, allow_free_text, acquisition_function, shuffle_prop, "
                      "retrain_interval_n_labels, annotations_per_item, lease_seconds, show_hints, settings, created_at) "
                      "VALUES (:name, 'text', 'single', '[]', false, 'margin', 0.1, 0, 1, 300, false, :settings, CURRENT_TIMESTAMP)")
OLD_SETTINGS = '{"display_columns": ["title"], "model_columns": ["title", "n"], "diversity_window": 4}'


def test_the_settings_json_becomes_columns_and_nothing_else_is_lost(db_url, caplog):
    """0005 -> 0006 -> 0005 -> 0006: values move both ways; the project's items, annotations and runs stay (no table copy on SQLite)."""
    engine = make_engine(db_url)
    with engine.connect() as conn:
        with conn.begin():
            command.upgrade(_alembic_config(conn), "0005")
        with conn.begin():
            conn.execute(OLD_PROJECT, {"name": "rows", "settings": OLD_SETTINGS})
            conn.execute(OLD_PROJECT, {"name": "odd", "settings": '{"diversity_window": "eight", "colour": "red"}'})
            conn.execute(sa.text("INSERT INTO sp_user (username, display_name, email, role, active, failed_logins, created_at) "
                                 "VALUES ('ann', '', '', 'labeller', true, 0, CURRENT_TIMESTAMP)"))
            conn.execute(sa.text("INSERT INTO sp_item (project_id, external_id, data, priority, created_at) "
                                 "SELECT id, 'a', '1', 0, CURRENT_TIMESTAMP FROM sp_project WHERE name = 'rows'"))
            conn.execute(sa.text("INSERT INTO sp_annotation (project_id, item_id, user_id, value, created_at) "
                                 "SELECT project_id, sp_item.id, sp_user.id, '\"cat\"', CURRENT_TIMESTAMP FROM sp_item, sp_user"))
            conn.execute(sa.text("INSERT INTO sp_model_run (project_id, status, started_at, n_labels, n_ranked, scores, per_class, confusion, "
                                 "acquisition_function, phase_seconds, signals, worker) SELECT id, 'succeeded', CURRENT_TIMESTAMP, 1, 1, "
                                 "'[]', '{}', '{}', 'margin', '{}', '{}', '' FROM sp_project WHERE name = 'rows'"))

        def counts() -> list[int]:
            return [conn.execute(sa.text(f"SELECT count(*) FROM {t}")).scalar_one() for t in ("sp_item", "sp_annotation", "sp_model_run")]

        def moved() -> list[tuple]:
            project = sa.table("sp_project", sa.column("name"), sa.column("display_columns", sa.JSON()), sa.column("model_columns", sa.JSON()),
                               sa.column("diversity_window"))
            return conn.execute(sa.select(project).order_by(project.c.name)).all()

        with conn.begin():
            command.upgrade(_alembic_config(conn), "0006")
        assert counts() == [1, 1, 1]
        assert moved() == [("odd", None, None, None), ("rows", ["title"], ["title", "n"], 4)]
        assert "setting diversity_window='eight' dropped" in caplog.text and "setting colour='red' dropped" in caplog.text
        assert "settings" not in {c["name"] for c in sa.inspect(conn).get_columns("sp_project")}
        conn.commit()
        with conn.begin():
            command.downgrade(_alembic_config(conn), "0005")
        settings = dict(conn.execute(sa.select(sa.table("sp_project", sa.column("name"), sa.column("settings", sa.JSON())))).all())
        assert settings == {"odd": {}, "rows": {"display_columns": ["title"], "model_columns": ["title", "n"], "diversity_window": 4}}
        assert counts() == [1, 1, 1]
        conn.commit()
    assert init_db(engine) == head_revision()
    with session_scope(engine, write=False) as s:
        rows = s.execute(sa.select(Project).where(Project.name == "rows")).scalar_one()
        assert (rows.display_columns, rows.model_columns, rows.diversity_window) == (["title"], ["title", "n"], 4)
    engine.dispose()


def test_cli_round_trip(tmp_path):
    """create-user (password on stdin), demo, import with columns, export, orchestrate --all once."""
    env = {**os.environ, "SUPERINTENDENT_DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}",
           "SUPERINTENDENT_DATA_DIR": str(tmp_path / "data")}

    def cli(*args, stdin=""):
        return subprocess.run([sys.executable, "-m", "superintendent.cli", *args], input=stdin, capture_output=True, text=True, env=env)

    assert cli("create-user", "Ann", "--role", "admin", stdin="long enough pw\n").stdout.strip() == "created admin 'ann'"
    assert "at least 8 characters" in cli("create-user", "bo", "--role", "labeller", stdin="short\n").stderr
    assert cli("create-user", "Rita", "--role", "reviewer", stdin="long enough pw\n").stdout.strip() == "created reviewer 'rita'"
    assert cli("demo").returncode == 0
    (tmp_path / "words.csv").write_text("id,word,label\nw1,lovely,positive\nw2,dreadful,negative\nw3,sunny,\n")
    out = cli("import", "Demo: word sentiment", str(tmp_path / "words.csv"), "--id-column", "id", "--label-column", "label")
    assert out.returncode == 0 and "3 new items, 0 already there; labels: 2 new, 0 changed, 0 already there" in out.stdout
    bad = cli("import", "Demo: word sentiment", str(tmp_path / "words.csv"), "--label-column", "nope")
    assert bad.returncode == 2 and bad.stderr.startswith("error: ") and "Traceback" not in bad.stderr
    assert cli("export", "Demo: word sentiment", "--format", "csv", "-o", str(tmp_path / "out.csv")).returncode == 0
    rows = (tmp_path / "out.csv").read_text().splitlines()
    assert rows[0].startswith("item_id,external_id,") and "label" in rows[0].split(",") and len(rows) == 3  # the columns: tests/test_export_roundtrip.py
    assert cli("export", "Demo: word sentiment", "--format", "csv", "--individual", "-o", str(tmp_path / "each.csv")).returncode == 0
    each = (tmp_path / "each.csv").read_text().splitlines()
    assert each[0].startswith("item_id,external_id,user,label,created_at") and len(each) == 3
    out = cli("orchestrate", "--all", "--interval-n-labels", "1", "--max-runs", "1", "--interval-seconds", "0.5")
    assert out.returncode == 0 and "1 run(s) done" in out.stdout
    out = cli("create-project", "birds", "--options", "robin,wren", "--model-preset", "tfidf_logistic_regression")
    assert out.returncode == 0 and "created project 'birds' (options: robin, wren)" in out.stdout
    bad = cli("create-project", "fish", "--model-preset", "deep_magic")
    assert bad.returncode == 2 and "unknown model preset 'deep_magic'" in bad.stderr
    for name in ("init", "create-user", "create-project", "import", "export", "orchestrate", "demo"):
        assert cli(name, "--help").returncode == 0


def test_settings_are_built_once_per_environment_and_follow_its_changes(monkeypatch, tmp_path):
    monkeypatch.setenv("SUPERINTENDENT_MAX_UPLOAD_MB", "5")
    first = get_settings()
    assert first.max_upload_mb == 5 and get_settings() is first  # asked on every click: built once
    monkeypatch.setenv("SUPERINTENDENT_MAX_UPLOAD_MB", "7")
    assert get_settings().max_upload_mb == 7  # a changed variable is seen at once, no cache to clear
    monkeypatch.delenv("SUPERINTENDENT_MAX_UPLOAD_MB")
    assert get_settings().max_upload_mb == Settings.model_fields["max_upload_mb"].default
    monkeypatch.delenv("SUPERINTENDENT_DATA_DIR", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    assert get_settings().data_dir == tmp_path / "superintendent"  # the default's own inputs count too
    with pytest.raises(Exception, match="frozen"):
        get_settings().max_upload_mb = 1  # shared, so never changed in place
    cached = min(timeit.repeat(get_settings, number=200, repeat=3)) / 200
    built = min(timeit.repeat(Settings, number=20, repeat=3)) / 20
    assert cached < built / 5, f"get_settings() took {cached * 1e6:.0f} us, building Settings {built * 1e6:.0f} us"
