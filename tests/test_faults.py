"""Faults: processes killed with SIGKILL at the worst moments, a busy SQLite file, a PostgreSQL restart.

Each test checks the same promises afterwards: labelling goes on, no
annotation is lost or doubled, and every unlabelled item can still be
claimed (a fresh user claims them all). Figures are printed (``pytest -s``);
docs/reliability.md has the ones measured.

The PostgreSQL restart test is marked ``destructive``: it restarts the server
the other tests share, so the default run leaves it out and
``pytest -m destructive`` runs it on its own.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa
from sklearn.linear_model import LogisticRegression
from sqlalchemy import event
from sqlalchemy.pool import NullPool

from conftest import IN_CI, postgres_base_url
from labelling_logs import held_at_once, replay, start_labellers
from superintendent import queue
from superintendent.queue import priorities
from superintendent.auth import ensure_user
from superintendent.learning import RetrainOptions
from superintendent.orchestration import retrain_project
from superintendent.retrain_lock import lock_namespace
from superintendent.store import Annotation, ModelRun, Role, RunStatus, User, init_db, make_engine, session_scope
from superintendent.store.db import CommitUnknownError, is_disconnect, run_transaction
from superintendent.store.models import RetrainLock
from superintendent.validation import ValidationError

# --------------------------------------------------------------------------- helpers


def wait_for(predicate, timeout: float, what: str, interval: float = 0.05):
    """Poll ``predicate`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


def start_script(tmp_path: Path, name: str, code: str, *args: str) -> subprocess.Popen:
    script = tmp_path / f"{name}.py"
    script.write_text(textwrap.dedent(code))
    return subprocess.Popen([sys.executable, str(script), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def kill9(proc: subprocess.Popen) -> float:
    """SIGKILL and reap (an unreaped child is a zombie: its pid still 'exists' for os.kill(pid, 0)); returns when."""
    killed_at = time.monotonic()
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    assert proc.returncode == -signal.SIGKILL
    return killed_at


def ensure_dead(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.kill()
        proc.wait(timeout=10)


def tagged(url: str, app_name: str) -> str:
    """On PostgreSQL, name the connections of a child process (to see when the server has dropped them)."""
    if not url.startswith("postgresql"):
        return url
    return f"{url}{'&' if '?' in url else '?'}application_name={app_name}"


def backends_gone(engine: sa.Engine, app_name: str, since: float | None = None, timeout: float = 15.0) -> float:
    """Seconds (from ``since``, a time.monotonic()) until the server has no connection named ``app_name`` left (0 on SQLite)."""
    if engine.dialect.name != "postgresql":
        return 0.0
    t0 = time.monotonic() if since is None else since

    def gone() -> bool:
        with engine.connect() as conn:
            return conn.execute(sa.text("SELECT count(*) FROM pg_stat_activity WHERE application_name = :a"), {"a": app_name}).scalar_one() == 0

    wait_for(gone, timeout, f"the server to drop the connections of {app_name}")
    return time.monotonic() - t0


def claim_everything(engine: sa.Engine, project, username: str = "checker") -> int:
    """A fresh user claims (and labels) every item still open; returns how many it got."""
    with session_scope(engine) as s:
        uid = ensure_user(s, username, role=Role.labeller)
        n = 0
        while (task := queue.claim_next(s, project, uid, resume=False)) is not None:
            queue.submit(s, project, uid, task.item_id, project.options[0])
            n += 1
    return n


def remaining(engine: sa.Engine, project) -> int:
    with session_scope(engine, write=False) as s:
        return queue.progress(s, project).remaining


def db_annotations(engine: sa.Engine, project) -> list[tuple[str, int, object]]:
    with session_scope(engine, write=False) as s:
        rows = s.execute(sa.select(User.username, Annotation.item_id, Annotation.value).join(User, User.id == Annotation.user_id)
                         .where(Annotation.project_id == project.id, User.username != "_import")).all()
    return [(u, i, json.loads(v)) for u, i, v in rows]


def check_annotations_match_logs(engine: sa.Engine, project, results: list[dict]) -> int:
    expected: dict[tuple[str, int], object] = {}
    for r in results:
        expected.update(replay(r))
    stored = db_annotations(engine, project)
    doubled = [k for k, n in Counter((u, i) for u, i, _ in stored).items() if n > 1]
    assert not doubled, f"annotations stored twice: {doubled[:10]}"
    got = {(u, i): v for u, i, v in stored}
    missing = set(expected) - set(got)
    extra = set(got) - set(expected)
    assert not missing, f"{len(missing)} submitted labels are not in the database: {sorted(missing)[:10]}"
    assert not extra, f"{len(extra)} annotations nobody submitted (or that were undone): {sorted(extra)[:10]}"
    assert got == expected, "stored labels differ from the submitted ones"
    return len(expected)


def numeric_project(engine: sa.Engine, name: str, n_items: int, n_labelled: int, **settings):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n_items, 2)).round(6)
    labels = ["a" if row[0] < 0 else "b" for row in x[:n_labelled]] + [None] * (n_items - n_labelled)
    with session_scope(engine) as s:
        project = queue.create_project(s, name, options=["a", "b"], **settings)
        queue.add_items(s, project, [row.tolist() for row in x], labels=labels)
    return project


def label_one(engine: sa.Engine, project, username: str) -> int:
    """Claim and submit one item as ``username`` (labelling goes on); returns the item id."""
    with session_scope(engine) as s:
        uid = ensure_user(s, username, role=Role.labeller)
        task = queue.claim_next(s, project, uid)
        assert task is not None, f"{username} got nothing to label"
    with session_scope(engine) as s:
        queue.submit(s, project, uid, task.item_id, "b")
    return task.item_id


# --------------------------------------------------------------------------- 1. an orchestrator killed mid-retrain

SLOW_RETRAIN = """
    import pathlib, sys, time
    from sklearn.linear_model import LogisticRegression
    from superintendent.learning import RetrainOptions
    from superintendent.orchestration import retrain_project
    from superintendent.store import make_engine

    class SlowModel(LogisticRegression):
        def fit(self, x, y):
            pathlib.Path(sys.argv[2]).write_text("fitting")
            time.sleep(600)  # killed long before
            return super().fit(x, y)

    engine = make_engine(sys.argv[1])
    retrain_project(engine, "slow", RetrainOptions(model=SlowModel(), eval_method=lambda m, x, y: [1.0], worker="doomed"))
"""


def advisory_lock_holders(engine: sa.Engine, project_id: int) -> int:
    with engine.connect() as conn:
        return conn.execute(sa.text("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted AND classid = :ns "
                                    "AND objid = :p AND objsubid = 2"), {"ns": lock_namespace(conn), "p": project_id}).scalar_one()


def test_orchestrator_killed_mid_retrain(engine, db_url, tmp_path):
    project = numeric_project(engine, "slow", n_items=400, n_labelled=40)
    app_name = f"sp-doomed-{uuid.uuid4().hex[:6]}"
    marker = tmp_path / "fitting"
    proc = start_script(tmp_path, "slow_retrain", SLOW_RETRAIN, tagged(db_url, app_name), str(marker))
    try:
        wait_for(lambda: marker.exists() or proc.poll() is not None, 60, "the slow retrain to start fitting")
        assert proc.poll() is None, proc.communicate()[1]
        # it holds the lock: a second retrain steps aside, and labelling goes on meanwhile
        assert retrain_project(engine, project, RetrainOptions(model=LogisticRegression())) is None
        if engine.dialect.name == "postgresql":
            assert advisory_lock_holders(engine, project.id) == 1
        label_one(engine, project, "alice")
        killed_at = kill9(proc)
    finally:
        ensure_dead(proc)

    label_one(engine, project, "alice")  # labelling goes on after the kill
    with session_scope(engine, write=False) as s:
        abandoned = s.execute(sa.select(ModelRun).where(ModelRun.project_id == project.id, ModelRun.worker == "doomed")).scalar_one()
        assert abandoned.status == RunStatus.running.value  # nobody has looked yet
        lock_row = s.get(RetrainLock, project.id)
    if engine.dialect.name == "postgresql":
        released_after = backends_gone(engine, app_name, since=killed_at)  # the advisory lock dies with the connection
        assert advisory_lock_holders(engine, project.id) == 0
        assert lock_row is None
    else:
        released_after = 0.0
        assert lock_row is not None and lock_row.holder.split(":")[1] == str(proc.pid), "the lock row names the dead process"

    t0 = time.perf_counter()
    run = retrain_project(engine, project, RetrainOptions(model=LogisticRegression(), worker="next"))
    retrain_seconds = time.perf_counter() - t0
    assert run is not None, "the lock of the dead orchestrator was not released / taken over"
    assert run.status == RunStatus.succeeded.value, run.message
    with session_scope(engine, write=False) as s:
        abandoned = s.get(ModelRun, abandoned.id)
        assert s.get(RetrainLock, project.id) is None
    assert abandoned.status == RunStatus.failed.value and abandoned.message.startswith("abandoned")
    if engine.dialect.name == "postgresql":
        assert advisory_lock_holders(engine, project.id) == 0

    left = remaining(engine, project)
    assert left == 400 - 40 - 2
    assert claim_everything(engine, project) == left
    assert remaining(engine, project) == 0
    how = (f"advisory lock freed {released_after:.2f} s after the kill" if engine.dialect.name == "postgresql"
           else "lock row naming the dead pid taken over")
    print(f"\n[{engine.dialect.name}] orchestrator killed mid-fit: {how}, abandoned run marked failed, "
          f"next retrain succeeded in {retrain_seconds:.2f} s ranking {run.n_ranked} items; {left} items all claimable")


REPRIORITISE = """
    import contextlib, pathlib, sys, time
    import numpy as np
    import sqlalchemy as sa
    from superintendent import queue
    from superintendent.queue import priorities
    from superintendent.store import Item, make_engine, session_scope

    url, progress = sys.argv[1], pathlib.Path(sys.argv[2])
    engine = make_engine(url)
    real_scope = priorities.session_scope  # the rewrite's own transactions (queue/priorities.py)
    chunks = 0

    @contextlib.contextmanager
    def slow_scope(engine, **kw):
        # each chunk's rows are written, then the transaction stays open a moment before COMMIT:
        # the kill lands inside a chunk transaction most of the time
        global chunks
        with real_scope(engine, **kw) as s:
            yield s
            time.sleep(0.03)
        chunks += 1
        progress.write_text(str(chunks))

    priorities.session_scope = slow_scope
    with session_scope(engine, write=False) as s:
        project = queue.get_project(s, "rewrite")
        ids = np.array(s.execute(sa.select(Item.id).where(Item.project_id == project.id).order_by(Item.id)).scalars().all())
    order = np.random.default_rng(1).permutation(len(ids))
    queue.reprioritise(engine, project, ids[order], -1.0 - np.arange(len(ids)), chunk_size=50)  # new priorities are < 0
    progress.write_text("done")
"""


def test_killed_during_priority_rewrite(engine, db_url, tmp_path):
    n_items = 1000
    with session_scope(engine) as s:
        project = queue.create_project(s, "rewrite", options=["a", "b"])
        queue.add_items(s, project, [f"text {i}" for i in range(n_items)])
    progress = tmp_path / "chunks"
    app_name = f"sp-rewrite-{uuid.uuid4().hex[:6]}"
    proc = start_script(tmp_path, "rewrite", REPRIORITISE, tagged(db_url, app_name), str(progress))

    def chunks_done() -> int:
        text = progress.read_text() if progress.exists() else ""
        return int(text) if text.isdigit() else 0

    try:
        wait_for(lambda: chunks_done() >= 3 or proc.poll() is not None, 60, "the first chunks of the rewrite to commit", interval=0.005)
        assert proc.poll() is None, f"the rewrite ended before the kill: {proc.communicate()[1]}"
        killed_at = kill9(proc)
    finally:
        ensure_dead(proc)
    gone = backends_gone(engine, app_name, since=killed_at)
    committed = chunks_done()
    with session_scope(engine, write=False) as s:
        rewritten = s.execute(sa.select(sa.func.count()).select_from(queue.Item)
                              .where(queue.Item.project_id == project.id, queue.Item.priority < 0)).scalar_one()
    # chunks are atomic: the one under way when the process died is rolled back whole
    assert rewritten % 50 == 0 and rewritten in (50 * committed, 50 * (committed + 1)), (rewritten, committed)
    assert 150 <= rewritten < n_items, "the kill landed part-way through the rewrite"
    label_one(engine, project, "alice")
    assert claim_everything(engine, project) == n_items - 1, "every item is reachable after an interrupted rewrite"
    print(f"\n[{engine.dialect.name}] rewrite killed after {committed} committed chunks: {rewritten} of {n_items} priorities new, "
          f"rest old; connection gone after {gone:.2f} s; all {n_items - 1} open items claimable")


@pytest.mark.postgres
@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_claim_during_a_priority_rewrite_finds_the_free_items(engine, db_url, monkeypatch):
    with session_scope(engine) as s:
        project = queue.create_project(s, "rewrite-claim", options=["a", "b"])
        queue.add_items(s, project, [f"text {i}" for i in range(200)])
        uid = ensure_user(s, "alice", role=Role.labeller)
        ids = np.array(s.execute(sa.select(queue.Item.id).where(queue.Item.project_id == project.id)).scalars().all())
    written, release = threading.Event(), threading.Event()
    real_scope = priorities.session_scope  # the rewrite's own transactions (queue/priorities.py)

    @contextlib.contextmanager
    def paused_scope(eng, **kw):  # the chunk's rows are written; COMMIT waits for the test
        with real_scope(eng, **kw) as s:
            yield s
            written.set()
            release.wait(30)

    monkeypatch.setattr(priorities, "session_scope", paused_scope)
    rewrite = threading.Thread(target=queue.reprioritise, args=(engine, project, ids, np.arange(len(ids), dtype=float)))
    rewrite.start()
    try:
        assert written.wait(30)
        with session_scope(engine) as s:
            task = queue.claim_next(s, project, uid)
    finally:
        release.set()
        rewrite.join(30)
    assert task is not None, "200 free items, and the claim found none while the rewrite's chunk was open"


# --------------------------------------------------------------------------- 2. the app killed between claim and submit

APP = """
    import json, pathlib, sys, time
    from superintendent import queue
    from superintendent.auth import ensure_user
    from superintendent.store import Role, make_engine, session_scope

    engine = make_engine(sys.argv[1])
    with session_scope(engine) as s:
        project = queue.get_project(s, "leases")
        uid = ensure_user(s, "app-user", role=Role.labeller)
    with session_scope(engine) as s:
        first = queue.claim_next(s, project, uid)
    with session_scope(engine) as s:  # a label the user saw confirmed, and the next item handed out
        held = queue.submit_and_claim_next(s, project, uid, first.item_id, "a")
    with session_scope(engine) as s:  # a submit under way: written, not yet committed, when the process dies
        queue.submit(s, project, uid, held.item_id, "b")
        pathlib.Path(sys.argv[2]).write_text(json.dumps({"submitted": first.item_id, "held": held.item_id}))
        time.sleep(600)
"""


def test_app_killed_between_claim_and_submit(engine, db_url, tmp_path):
    with session_scope(engine) as s:
        project = queue.create_project(s, "leases", options=["a", "b"], lease_seconds=5)
        queue.add_items(s, project, ["one", "two", "three"])
    marker = tmp_path / "app.json"
    app_name = f"sp-app-{uuid.uuid4().hex[:6]}"
    proc = start_script(tmp_path, "app", APP, tagged(db_url, app_name), str(marker))
    try:
        wait_for(lambda: marker.exists() or proc.poll() is not None, 60, "the app to claim and submit")
        assert proc.poll() is None, proc.communicate()[1]
        ids = json.loads(marker.read_text())
        killed_at = kill9(proc)
    finally:
        ensure_dead(proc)
    backends_gone(engine, app_name)

    with session_scope(engine) as s:
        bob = ensure_user(s, "bob", role=Role.labeller)
        task = queue.claim_next(s, project, bob)
    assert task is not None and task.item_id not in (ids["submitted"], ids["held"]), "bob gets the one free item"
    with session_scope(engine) as s:
        assert queue.submit_and_claim_next(s, project, bob, task.item_id, "b") is None, "the dead app's item is still leased"

    def bob_claims():
        with session_scope(engine) as s:
            return queue.claim_next(s, project, bob)

    served = wait_for(bob_claims, 15, "the dead app's lease to expire", interval=0.1)
    waited = time.monotonic() - killed_at
    assert served.item_id == ids["held"]
    assert waited >= 3.5, f"served {waited:.1f} s after the kill: before the 5 s lease ran out"
    with session_scope(engine) as s:
        queue.submit(s, project, bob, served.item_id, "a")

    stored = sorted(db_annotations(engine, project))
    assert stored == sorted([("app-user", ids["submitted"], "a"), ("bob", task.item_id, "b"), ("bob", ids["held"], "a")]), \
        "the confirmed submit is there exactly once; the one in flight at the kill is not"
    assert remaining(engine, project) == 0
    print(f"\n[{engine.dialect.name}] app killed holding item {ids['held']}: served to bob {waited:.2f} s after the kill "
          f"(lease 5 s); annotations {len(stored)}, none lost or doubled")


# --------------------------------------------------------------------------- 3. SQLite: "database is locked" never reaches the user


def finish(procs, timeout: float = 120) -> tuple[list[dict], list[str]]:
    results, errors = [], []
    try:
        for proc, out in procs:
            _, err = proc.communicate(timeout=timeout)
            errors.append(err)
            assert proc.returncode == 0, err
            loaded = json.loads(out.read_text())
            results.extend(loaded if isinstance(loaded, list) else [loaded])
    finally:
        for proc, _ in procs:
            ensure_dead(proc)
    return results, errors


def test_sqlite_busy_never_reaches_labellers(tmp_path):
    url = f"sqlite:///{tmp_path / 'busy.db'}"
    engine = make_engine(url)
    init_db(engine)
    n_items = 6000
    with session_scope(engine) as s:
        project = queue.create_project(s, "busy", options=["a", "b", "c"])
        queue.add_items(s, project, [f"text {i}" for i in range(n_items)])
    with session_scope(engine, write=False) as s:
        ids = np.array(s.execute(sa.select(queue.Item.id).where(queue.Item.project_id == project.id)).scalars().all())
    procs = start_labellers(url, "busy", 8, tmp_path, duration=8, skip_prob=0.05, undo_prob=0.05)
    rng = np.random.default_rng(0)
    rewrites, rewrite_seconds = 0, []
    try:
        while any(p.poll() is None for p, _ in procs):
            t0 = time.perf_counter()
            queue.reprioritise(engine, project, ids, rng.permutation(len(ids)).astype(float), chunk_size=500)
            rewrite_seconds.append(time.perf_counter() - t0)
            rewrites += 1
            time.sleep(0.05)
    finally:
        results, errors = finish(procs)
    assert not [e for e in errors if "database is locked" in e or "OperationalError" in e]
    assert rewrites >= 5, "the rewrite loop ran while labellers worked"
    n_kept = check_annotations_match_logs(engine, project, results)
    assert held_at_once(results) == []
    left = remaining(engine, project)
    assert claim_everything(engine, project) == left
    latencies = [x for r in results for x in r["latencies"]]
    n_tx = len(latencies)
    span = max(r["finished"] for r in results) - min(r["started"] for r in results)
    print(f"\n[sqlite] 8 labeller processes for {span:.1f} s + rewrite loop: {n_tx} labeller transactions, {rewrites} full rewrites "
          f"(max {max(rewrite_seconds):.2f} s), {n_kept} labels kept, 0 'database is locked'; "
          f"labeller latency p50 {np.median(latencies) * 1000:.1f} ms, max {max(latencies) * 1000:.0f} ms")
    engine.dispose()


# --------------------------------------------------------------------------- 4. run_transaction, and a PostgreSQL restart


def _fake_disconnect() -> sa.exc.OperationalError:
    return sa.exc.OperationalError("SELECT 1", {}, Exception("server closed the connection unexpectedly"), connection_invalidated=True)


def _terminate(engine: sa.Engine, pid: int) -> None:
    admin = sa.create_engine(engine.url, poolclass=NullPool)
    with admin.connect() as conn:
        conn.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        conn.commit()
        wait_for(lambda: conn.execute(sa.text("SELECT count(*) FROM pg_stat_activity WHERE pid = :pid"), {"pid": pid}).scalar_one() == 0,
                 10, "the terminated backend to exit")
    admin.dispose()


def _drop_connection(engine: sa.Engine, session) -> None:
    """Lose the session's connection: really (PostgreSQL terminates its backend) or as SQLAlchemy reports it (SQLite)."""
    if engine.dialect.name == "postgresql":
        _terminate(engine, session.execute(sa.text("SELECT pg_backend_pid()")).scalar_one())
        session.execute(sa.text("SELECT 1"))  # raises: the connection is gone
    raise _fake_disconnect()


def test_run_transaction_retries_a_lost_connection(engine):
    calls, retried = [], []

    def work(s):
        calls.append(1)
        uid = ensure_user(s, "rt-user", role=Role.labeller)
        if len(calls) == 1:
            _drop_connection(engine, s)  # the first try dies before COMMIT: rolled back
        return uid

    uid = run_transaction(engine, work, on_retry=lambda n, exc: retried.append(is_disconnect(exc)))
    assert len(calls) == 2 and retried == [True]
    with session_scope(engine, write=False) as s:
        assert s.execute(sa.select(sa.func.count()).select_from(User).where(User.username == "rt-user")).scalar_one() == 1
        assert s.execute(sa.select(User.id).where(User.username == "rt-user")).scalar_one() == uid


def test_run_transaction_only_retries_disconnects(engine):
    calls = []

    def invalid(s):
        calls.append(1)
        raise ValidationError("not a database problem")

    with pytest.raises(ValidationError):
        run_transaction(engine, invalid)
    assert len(calls) == 1

    def duplicate(s):
        calls.append(1)
        s.execute(sa.insert(User).values(username="dup", role="labeller", display_name="", email="", active=True, failed_logins=0,
                                         created_at=queue.utcnow()))
        s.execute(sa.insert(User).values(username="dup", role="labeller", display_name="", email="", active=True, failed_logins=0,
                                         created_at=queue.utcnow()))

    with pytest.raises(sa.exc.IntegrityError) as err:
        run_transaction(engine, duplicate)
    assert len(calls) == 2 and not is_disconnect(err.value)

    def always_down(s):
        calls.append(1)
        raise _fake_disconnect()

    t0 = time.perf_counter()
    with pytest.raises(sa.exc.OperationalError):
        run_transaction(engine, always_down, retries=3, backoff_seconds=0.01)
    assert len(calls) == 2 + 4, "one try and three retries"
    assert time.perf_counter() - t0 < 1.0


@pytest.fixture
def break_first_commit(engine):
    """Make the next COMMIT on ``engine`` lose its connection (PostgreSQL: the backend is terminated first)."""
    state = {"armed": True, "pid": None}

    def on_commit(conn):
        if not state["armed"]:
            return
        state["armed"] = False
        if engine.dialect.name == "postgresql":
            _terminate(engine, state["pid"])
        else:
            raise _fake_disconnect()

    event.listen(engine, "commit", on_commit)
    yield state
    event.remove(engine, "commit", on_commit)


@pytest.mark.parametrize("idempotent", [False, True])
def test_run_transaction_when_commit_loses_the_connection(engine, break_first_commit, idempotent):
    calls = []

    def work(s):
        calls.append(1)
        if engine.dialect.name == "postgresql":
            break_first_commit["pid"] = s.execute(sa.text("SELECT pg_backend_pid()")).scalar_one()
        return ensure_user(s, "committed", role=Role.labeller)

    if idempotent:
        run_transaction(engine, work, idempotent=True)
        assert len(calls) == 2
    else:
        with pytest.raises(CommitUnknownError, match="may or may not"):
            run_transaction(engine, work)
        assert len(calls) == 1
    with session_scope(engine, write=False) as s:
        n = s.execute(sa.select(sa.func.count()).select_from(User).where(User.username == "committed")).scalar_one()
    assert n == (1 if idempotent else 0)  # (here the COMMIT never reached the server; the client could not know)


def _pg_ctlcluster_or_skip() -> list[str]:
    missing = []
    if shutil.which("pg_ctlcluster") is None or not Path("/etc/postgresql").is_dir():
        missing.append("pg_ctlcluster (postgresql-common) and /etc/postgresql are not here")
    if os.geteuid() != 0:
        missing.append("restarting the server needs root")
    if missing:
        reason = "PostgreSQL restart test: " + "; ".join(missing)
        if IN_CI:
            pytest.fail(f"{reason} (CI=true: this test must run)")
        pytest.skip(reason)
    version = sorted(os.listdir("/etc/postgresql"))[-1]
    # the cluster serving SUPERINTENDENT_TEST_POSTGRES_URL; another one (e.g. on port 5433) lets a restart test run
    # while other tests use the main server
    return ["pg_ctlcluster", "--skip-systemctl-redirect", version, os.environ.get("SUPERINTENDENT_TEST_PG_CLUSTER", "main")]


def _pg_ready(timeout: float) -> bool:
    port = sa.engine.make_url(postgres_base_url()).port or 5432
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if subprocess.run(["pg_isready", "-h", "127.0.0.1", "-p", str(port), "-t", "1"], capture_output=True).returncode == 0:
            return True
        time.sleep(0.1)
    return False


@pytest.fixture
def restartable_pg_url():
    """A fresh schema on the local PostgreSQL (created and dropped over NullPool engines, which a restart does not stale)."""
    cluster = _pg_ctlcluster_or_skip()
    base = postgres_base_url()
    host = sa.engine.make_url(base).host
    if host not in ("127.0.0.1", "localhost", "::1", socket.gethostname()):
        pytest.skip(f"{base} is not the local server that pg_ctlcluster restarts")
    schema = f"test_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(base, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    with admin.connect() as conn:
        conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
    try:
        yield cluster, f"{base}{'&' if '?' in base else '?'}options=-csearch_path%3D{schema}"
    finally:
        _pg_ready(60)
        with admin.connect() as conn:
            conn.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")
        admin.dispose()


@pytest.mark.destructive  # restarts the server every other test uses: not in the default run (`pytest -m destructive`)
@pytest.mark.postgres
@pytest.mark.timeout(120)
def test_postgres_restart_while_labellers_work(restartable_pg_url, tmp_path):
    cluster, url = restartable_pg_url
    engine = sa.create_engine(url, poolclass=NullPool)  # the test's own reads: a new connection each time
    init_db(engine)
    with session_scope(engine) as s:
        project = queue.create_project(s, "restart", options=["a", "b", "c"])
        queue.add_items(s, project, [f"text {i}" for i in range(3000)])
    # 8 labellers: 2 processes of 4 threads (each process one engine, one pool)
    procs = []
    for p in range(2):
        out = tmp_path / f"proc{p}.json"
        args = [sys.executable, "-m", "superintendent.simulate", url, "restart", f"lab{p}", "--threads", "4", "--duration", "14",
                "--think-seconds", "0.02", "--skip-prob", "0.05", "--undo-prob", "0.05", "--seed", str(p),
                "--barrier", str(tmp_path / "ready"), "8", "--out", str(out)]
        procs.append((subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True), out))

    def n_annotations() -> int:
        with session_scope(engine, write=False) as s:
            return s.execute(sa.select(sa.func.count()).select_from(Annotation)).scalar_one()

    restart: dict[str, float] = {}
    refused: list[float] = []  # when a probe could not connect: the outage as a client sees it
    probing = threading.Event()

    def probe() -> None:
        while not probing.is_set():
            try:
                with engine.connect() as conn:
                    conn.exec_driver_sql("SELECT 1")
            except sa.exc.OperationalError:
                refused.append(time.time())
            time.sleep(0.02)

    prober = threading.Thread(target=probe, daemon=True)
    try:
        wait_for(lambda: n_annotations() >= 50 or any(p.poll() is not None for p, _ in procs), 60, "labelling to get going", interval=0.2)
        assert all(p.poll() is None for p, _ in procs), "a labeller stopped before the restart"
        before = n_annotations()
        prober.start()
        restart["start"] = time.time()
        done = subprocess.run([*cluster, "restart"], capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        assert _pg_ready(30), "PostgreSQL did not come back"
        restart["end"] = time.time()
    finally:
        probing.set()
        if prober.is_alive():
            prober.join(5)
        if not _pg_ready(5):  # never leave the server down
            subprocess.run([*cluster, "start"], capture_output=True, timeout=60)
            _pg_ready(60)
        results, errors = finish(procs, timeout=90)

    n_retries = sum(r["retries"] for r in results)
    assert n_retries >= 1, "no labeller noticed the restart"
    after_restart = sum(1 for r in results for kind, _, _, t in r["log"] if kind == "submit" and t > restart["end"])
    assert after_restart > 0, "labelling went on after the restart"
    n_kept = check_annotations_match_logs(engine, project, results)
    assert held_at_once(results) == []
    left = remaining(engine, project)
    assert claim_everything(engine, project) == left
    assert remaining(engine, project) == 0
    assert refused, "the probe never saw the server down"
    outage = refused[-1] - refused[0]
    submit_times = sorted(t for r in results for kind, _, _, t in r["log"] if kind == "submit")
    gap = max(b - a for a, b in zip(submit_times, submit_times[1:]))
    assert gap >= outage * 0.5, "labels went on while the server was down?"
    reasons = Counter(line.split("(", 1)[1].rsplit(")", 1)[0] for err in errors for line in err.splitlines()
                      if "retry" in line and "(" in line)
    print(f"\n[postgresql] errors retried: {dict(reasons.most_common(6))}")
    print(f"\n[postgresql] restart command took {restart['end'] - restart['start']:.2f} s, server refused connections for "
          f"{outage:.2f} s, {before} labels in before; 8 labellers: {n_retries} transactions retried, longest pause between "
          f"labels {gap:.2f} s, {after_restart} labels after the restart, {n_kept} kept, all in the database once")
    engine.dispose()
