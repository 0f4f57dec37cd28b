"""Schema creation and upgrades (Alembic), engines, and the command that runs them."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlmodel import SQLModel

from superintendent.store import Item, Project, init_db, make_engine, session_scope
from superintendent.store.db import current_revision, head_revision


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
    from alembic import command

    from superintendent.store.db import _alembic_config

    engine = make_engine(db_url)
    with engine.connect() as conn:
        with conn.begin():
            command.upgrade(_alembic_config(conn), "0001")
        with conn.begin():
            conn.execute(sa.text("INSERT INTO sp_project (name, data_type, label_mode, options, allow_free_text, acquisition_function, "
                                 "shuffle_prop, retrain_interval_n_labels, annotations_per_item, lease_seconds, show_hints, settings, created_at) "
                                 "VALUES ('old', 'text', 'single', '[]', false, 'margin', 0.1, 0, 1, 300, false, '{}', CURRENT_TIMESTAMP)"))
        assert current_revision(conn) == "0001"
    assert init_db(engine) == head_revision() != "0001"
    with session_scope(engine, write=False) as s:
        assert s.execute(sa.select(Project.name)).scalars().all() == ["old"]
        assert "hint" in {c["name"] for c in sa.inspect(s.connection()).get_columns("sp_item")}
    engine.dispose()


def test_cli_round_trip(tmp_path):
    """create-user (password on stdin), demo, import with columns, export, orchestrate --all once."""
    env = {**__import__("os").environ, "SUPERINTENDENT_DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}",
           "SUPERINTENDENT_DATA_DIR": str(tmp_path / "data")}

    def cli(*args, stdin=""):
        return subprocess.run([sys.executable, "-m", "superintendent.cli", *args], input=stdin, capture_output=True, text=True, env=env)

    assert cli("create-user", "Ann", "--role", "admin", stdin="long enough pw\n").stdout.strip() == "created admin 'ann'"
    assert "at least 8 characters" in cli("create-user", "bo", "--role", "labeller", stdin="short\n").stderr
    assert cli("create-user", "Rita", "--role", "reviewer", stdin="long enough pw\n").stdout.strip() == "created reviewer 'rita'"
    assert cli("demo").returncode == 0
    (tmp_path / "words.csv").write_text("id,word,label\nw1,lovely,positive\nw2,dreadful,negative\nw3,sunny,\n")
    out = cli("import", "Demo: word sentiment", str(tmp_path / "words.csv"), "--id-column", "id", "--label-column", "label")
    assert out.returncode == 0 and "imported 3 new items" in out.stdout and "2 labels" in out.stdout
    bad = cli("import", "Demo: word sentiment", str(tmp_path / "words.csv"), "--label-column", "nope")
    assert bad.returncode == 2 and bad.stderr.startswith("error: ") and "Traceback" not in bad.stderr
    assert cli("export", "Demo: word sentiment", "--format", "csv", "-o", str(tmp_path / "out.csv")).returncode == 0
    rows = (tmp_path / "out.csv").read_text().splitlines()
    assert rows[0] == "item_id,external_id,label,tie,n_annotations,reviewed_by" and len(rows) == 3
    assert cli("export", "Demo: word sentiment", "--format", "csv", "--individual", "-o", str(tmp_path / "each.csv")).returncode == 0
    each = (tmp_path / "each.csv").read_text().splitlines()
    assert each[0].startswith("item_id,external_id,user,label,created_at") and len(each) == 3
    out = cli("orchestrate", "--all", "--interval-n-labels", "1", "--max-runs", "1", "--interval-seconds", "0.5")
    assert out.returncode == 0 and "1 run(s) done" in out.stdout
    out = cli("create-project", "birds", "--options", "robin,wren", "--model-preset", "tfidf_logistic_regression")
    assert out.returncode == 0 and "created project 'birds' (options: robin, wren)" in out.stdout
    bad = cli("create-project", "fish", "--model-preset", "deep_magic")
    assert bad.returncode == 2 and "unknown model preset 'deep_magic'" in bad.stderr
    for command in ("init", "create-user", "create-project", "import", "export", "orchestrate", "demo"):
        assert cli(command, "--help").returncode == 0
