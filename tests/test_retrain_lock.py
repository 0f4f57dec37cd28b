"""The retrain lock across hosts: a holder that went away (a restarted container) blocks retraining only briefly.

On SQLite the lock is a row that the holder renews on a heartbeat while it
retrains; a row not renewed for ``retrain_lock_stale_seconds`` is taken
over, whichever host wrote it. Another host is played by a child process
whose ``socket.gethostname()`` answers "old-container" (so the "is its pid
alive?" shortcut, which only works on one host, does not apply). PostgreSQL
keeps its advisory lock, which dies with the holder's connection.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pydantic
import pytest
import sqlalchemy as sa

from superintendent import queue
from superintendent.config import Settings
from superintendent.orchestration import retrain_lock
from superintendent.store import session_scope, utcnow
from superintendent.store.models import RetrainLock

STALE, BEAT = 2.0, 0.3  # seconds: short, so the tests wait little

# Takes the project's retrain lock as if on another host, says so in a marker file, then holds it for argv[4] seconds.
HOLDER = """
    import pathlib, socket, sys, time
    socket.gethostname = lambda: "old-container"
    from superintendent.orchestration import retrain_lock
    from superintendent.store import make_engine

    engine = make_engine(sys.argv[1])
    with retrain_lock(engine, int(sys.argv[2])) as got:
        pathlib.Path(sys.argv[3]).write_text("held" if got else "refused")
        time.sleep(float(sys.argv[4]))
"""


@pytest.fixture
def short_lock(monkeypatch):
    monkeypatch.setenv("SUPERINTENDENT_RETRAIN_LOCK_STALE_SECONDS", str(STALE))
    monkeypatch.setenv("SUPERINTENDENT_RETRAIN_LOCK_HEARTBEAT_SECONDS", str(BEAT))


def start_holder(tmp_path: Path, url: str, project_id: int, hold_seconds: float) -> tuple[subprocess.Popen, Path]:
    script, marker = tmp_path / "holder.py", tmp_path / f"holder-{time.monotonic_ns()}"
    script.write_text(textwrap.dedent(HOLDER))
    proc = subprocess.Popen([sys.executable, str(script), url, str(project_id), str(marker), str(hold_seconds)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=os.environ.copy())
    deadline = time.monotonic() + 60
    while not marker.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"the holder did not start: {proc.communicate()[1][-2000:]}")
        time.sleep(0.05)
    assert marker.read_text() == "held"
    return proc, marker


def try_lock(engine, project_id: int) -> bool:
    with retrain_lock(engine, project_id) as got:
        return got


def lock_row(engine, project_id: int) -> RetrainLock | None:
    with session_scope(engine, write=False) as s:
        return s.get(RetrainLock, project_id)


def new_project(engine, name: str = "p"):
    with session_scope(engine) as s:
        return queue.create_project(s, name, options=["a", "b"])


def test_a_lock_left_by_a_killed_process_on_another_host_is_taken_over_after_the_stale_time(engine, db_url, tmp_path, short_lock):
    project = new_project(engine)
    proc, _ = start_holder(tmp_path, db_url, project.id, hold_seconds=600)
    try:
        assert not try_lock(engine, project.id), "a live holder's lock was taken"
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        killed_at = time.monotonic()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
    if engine.dialect.name == "sqlite":
        row = lock_row(engine, project.id)
        assert row is not None and row.holder.startswith("old-container:"), "the dead holder's row is left behind"
    while not try_lock(engine, project.id):
        assert time.monotonic() - killed_at < STALE + 10, f"the lock of a process killed on another host still blocks after {STALE + 10} s"
        time.sleep(0.1)
    waited = time.monotonic() - killed_at
    # PostgreSQL's advisory lock dies with the connection; SQLite's row after at most the stale time since the last beat
    assert waited < STALE + 2 * BEAT + 1.5
    assert lock_row(engine, project.id) is None, "the new holder removed its row when done"
    print(f"\n[{engine.dialect.name}] lock of a killed holder on another host taken over {waited:.2f} s after the kill (stale {STALE} s)")


def test_a_live_holder_on_another_host_keeps_its_lock_by_renewing_it(tmp_path, short_lock):
    from superintendent.store import init_db, make_engine

    url = f"sqlite:///{tmp_path / 'lock.db'}"
    engine = make_engine(url)
    init_db(engine)
    project = new_project(engine)
    hold = 3 * STALE
    proc, _ = start_holder(tmp_path, url, project.id, hold_seconds=hold)
    try:
        started, deadlines = time.monotonic(), []
        while time.monotonic() - started < hold - 1.0:
            assert not try_lock(engine, project.id), f"a live holder's lock was taken after {time.monotonic() - started:.1f} s"
            deadlines.append(lock_row(engine, project.id).expires_at)
            time.sleep(0.25)
        assert proc.wait(timeout=30) == 0, proc.communicate()[1][-2000:]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
    # the heartbeat pushed the deadline forward while it held the lock, never more than the stale time ahead
    assert deadlines[-1] > deadlines[0] + dt.timedelta(seconds=STALE)
    assert len(set(deadlines)) >= 3
    assert lock_row(engine, project.id) is None, "the holder removed its row when done"
    assert try_lock(engine, project.id)
    engine.dispose()


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # PostgreSQL keeps no lock row: its advisory lock dies with the connection
def test_a_lock_row_of_an_older_version_on_another_host_does_not_block_for_an_hour(engine, short_lock):
    """Rows written before the heartbeat existed (holder ``host:pid:nonce``, deadline an hour ahead) are never renewed."""
    project = new_project(engine)
    with session_scope(engine) as s:
        s.add(RetrainLock(project_id=project.id, holder="old-container:1:0a1b2c3d", expires_at=utcnow() + dt.timedelta(seconds=3600)))
    assert try_lock(engine, project.id)
    assert lock_row(engine, project.id) is None


def test_a_renewed_lock_row_is_never_more_than_the_stale_time_ahead(tmp_path, short_lock):
    from superintendent.store import init_db, make_engine

    engine = make_engine(f"sqlite:///{tmp_path / 'lock.db'}")
    init_db(engine)
    project = new_project(engine)
    with retrain_lock(engine, project.id) as got:
        assert got
        for _ in range(4):
            time.sleep(BEAT)
            ahead = (lock_row(engine, project.id).expires_at - utcnow()).total_seconds()
            assert STALE - 2 * BEAT - 0.5 < ahead <= STALE
    assert lock_row(engine, project.id) is None
    engine.dispose()


def test_the_heartbeat_must_be_shorter_than_the_stale_time():
    with pytest.raises(pydantic.ValidationError, match="retrain_lock_heartbeat_seconds .* must be less than"):
        Settings(retrain_lock_stale_seconds=10, retrain_lock_heartbeat_seconds=10)
    assert Settings().retrain_lock_stale_seconds == 60 and Settings().retrain_lock_heartbeat_seconds == 10


@pytest.mark.parametrize("db_url", [pytest.param("postgresql", marks=pytest.mark.postgres)], indirect=True)  # SQLite has none
def test_postgresql_keeps_its_advisory_lock(engine):
    from superintendent.retrain_lock import lock_namespace

    project = new_project(engine)
    with retrain_lock(engine, project.id) as got:
        assert got
        with engine.connect() as conn:
            held = conn.execute(sa.text("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted AND classid = :ns "
                                        "AND objid = :p AND objsubid = 2"), {"ns": lock_namespace(conn), "p": project.id}).scalar_one()
        assert held == 1
        assert lock_row(engine, project.id) is None  # no row, no heartbeat
        assert not try_lock(engine, project.id)


@pytest.mark.parametrize("db_url", [pytest.param("postgresql", marks=pytest.mark.postgres)], indirect=True)  # SQLite: a file each
def test_two_schemas_of_one_database_retrain_their_own_project_1_at_once(engine):
    """Advisory locks belong to the database, project ids start at 1 in each schema: each schema's lock is its own."""
    from conftest import _postgres_schema_url

    from superintendent.retrain_lock import retrain_lock_held
    from superintendent.store import init_db, make_engine

    urls = _postgres_schema_url()
    other = make_engine(next(urls))
    try:
        init_db(other)
        first, second = new_project(engine), new_project(other)
        assert first.id == second.id == 1
        with retrain_lock(engine, first.id) as got:
            assert got and retrain_lock_held(engine, first.id)
            assert not retrain_lock_held(other, second.id)  # the other deployment's project 1 is free
            with retrain_lock(other, second.id) as got_too:
                assert got_too
                assert not try_lock(engine, first.id) and not try_lock(other, second.id)  # each still held once
    finally:
        other.dispose()
        urls.close()
