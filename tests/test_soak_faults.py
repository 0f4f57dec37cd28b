"""Soak under faults: labellers in several processes, retrains every few seconds, labeller processes killed
with SIGKILL and replaced, and the PostgreSQL server restarted in the middle, all in one run.

The other soak (test_soak.py) has no faults; test_faults.py injects each fault alone. Here they come together,
as in a bad afternoon on a team server. Every labeller streams its event log to a file as it goes
(``simulate.py --stream``), so a killed one leaves what it had done. Afterwards:

- a surviving labeller's kept labels are in the database exactly once, and nothing else of theirs;
- a killed labeller's stored labels match its streamed log except for the one action it was inside when it died
  (a submit that committed before the kill but was not yet written down, or an undo likewise): at most one
  difference per labeller, about that item;
- no item was held by two labellers at the same moment, and no item (one annotation wanted) was labelled by two;
- retrains went on after the restart, and none is left "running";
- once the dead labellers' leases ran out, a fresh user reaches every item still open.

Marked ``destructive`` (it restarts the shared PostgreSQL server): runs in CI's destructive part.
Knobs (environment): ``SOAK_FAULTS_SECONDS`` (30), ``SOAK_FAULTS_PROCESSES`` (4), ``SOAK_FAULTS_THREADS`` (4).
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
import sqlalchemy as sa
from sklearn.linear_model import LogisticRegression
from sqlalchemy.pool import NullPool

from labelling_logs import held_at_once, read_stream, replay
from test_faults import (_pg_ready, claim_everything, db_annotations, ensure_dead, kill9, numeric_project, remaining,
                         restartable_pg_url)  # noqa: F401 - restartable_pg_url is a fixture used by name
from superintendent.learning import RetrainOptions
from superintendent.orchestration import retrain_project
from superintendent.store import ModelRun, RunStatus, init_db, session_scope

SECONDS = float(os.environ.get("SOAK_FAULTS_SECONDS", 30))
PROCESSES = int(os.environ.get("SOAK_FAULTS_PROCESSES", 4))
THREADS = int(os.environ.get("SOAK_FAULTS_THREADS", 4))
LEASE_SECONDS = 5
KILL_EVERY = 6.0


class Labellers:
    """Labeller processes (``simulate.py --threads --stream``): started, killed, replaced; what each left behind."""

    def __init__(self, url: str, project: str, folder: Path, end: float) -> None:
        self.url, self.project, self.folder, self.end = url, project, folder, end
        self.procs: dict[str, tuple[subprocess.Popen, Path]] = {}
        self.killed: dict[str, float] = {}  # process name -> time.time() of the kill
        self.n = 0

    def start(self) -> str:
        name = f"g{self.n}"
        self.n += 1
        out = self.folder / f"{name}.json"
        args = [sys.executable, "-m", "superintendent.simulate", self.url, self.project, name, "--threads", str(THREADS),
                "--duration", f"{max(1.0, self.end - time.monotonic()):.1f}", "--think-seconds", "0.05",
                "--skip-prob", "0.05", "--undo-prob", "0.05", "--retry-empty", "3", "--retries", "40", "--seed", str(self.n),
                "--max-labels", "100000", "--stream", str(self.folder / "streams"), "--out", str(out)]
        self.procs[name] = (subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True), out)
        return name

    def kill_one(self, rng: random.Random) -> str | None:
        alive = [name for name, (proc, _) in self.procs.items() if proc.poll() is None and name not in self.killed]
        if not alive:
            return None
        name = rng.choice(alive)
        kill9(self.procs[name][0])
        self.killed[name] = time.time()
        return name

    def streamed(self, name: str) -> list[dict]:
        """What the threads of a killed process had logged, as simulate's results."""
        return [read_stream(self.folder / "streams" / f"{name}-{k}.jsonl", f"{name}-{k}", self.killed[name])
                for k in range(THREADS)]

    def finish(self) -> tuple[list[dict], list[dict], list[str]]:
        """(results of the processes that ran to the end, streamed logs of the killed ones, stderr of all)."""
        survivors, killed, errors = [], [], []
        for name, (proc, out) in self.procs.items():
            try:
                _, err = proc.communicate(timeout=SECONDS + 120)
            finally:
                ensure_dead(proc)
            errors.append(err)
            if name in self.killed:
                killed.extend(self.streamed(name))
                continue
            assert proc.returncode == 0, err
            survivors.extend(json.loads(out.read_text()))
        return survivors, killed, errors


class RetrainLoop(threading.Thread):
    """An orchestrator that retrains every ``every`` seconds and, unlike a test's, rides out a database restart."""

    def __init__(self, url: str, project, every: float) -> None:
        super().__init__(daemon=True, name="retrain-loop")
        self.engine = sa.create_engine(url, poolclass=NullPool)
        self.project, self.every = project, every
        self.stopped = threading.Event()
        self.runs: list[tuple[float, str]] = []  # (time.time() at the end, status or the error's class)

    def run(self) -> None:
        while not self.stopped.wait(self.every):
            try:
                run = retrain_project(self.engine, self.project, RetrainOptions(model=LogisticRegression(), worker="soak-faults"))
                status = "locked" if run is None else run.status
            except Exception as exc:  # noqa: BLE001 - the restart: counted, and the loop goes on as an orchestrator does
                status = type(exc).__name__
            self.runs.append((time.time(), status))


def _killed_differences(stored: dict[tuple[str, int], object], killed: list[dict]) -> list[str]:
    """What a killed labeller's stored labels may differ from its log by: only the action it died in. Returns problems."""
    problems = []
    for r in killed:
        user = r["user"]
        expected = replay(r)
        got = {k: v for k, v in stored.items() if k[0] == user}
        extra, missing = set(got) - set(expected), set(expected) - set(got)
        changed = [k for k in set(got) & set(expected) if got[k] != expected[k]]
        if changed or len(extra) + len(missing) > 1:
            problems.append(f"{user}: extra {sorted(extra)}, missing {sorted(missing)}, changed {changed}")
            continue
        log = r["log"]
        if extra:  # a submit committed, the kill came before it was written down: it was for the item last claimed
            (_, item), = extra
            claims = [row[1] for row in log if row[0] == "claim"]
            if not claims or claims[-1] != item or (log and log[-1][0] != "claim"):
                problems.append(f"{user}: label for item {item}, which was not the item it held when killed")
        if missing:  # an undo committed, unwritten: it takes back the most recent kept label
            (_, item), = missing
            kept_order = [row[1] for row in log if row[0] == "submit" and (user, row[1]) in expected]
            if not kept_order or kept_order[-1] != item:
                problems.append(f"{user}: label for item {item} gone, which was not its most recent")
    return problems


@pytest.mark.destructive  # restarts the server every other test uses: runs in its own part (`pytest -m destructive`)
@pytest.mark.postgres
@pytest.mark.timeout(300)
def test_soak_with_kills_and_a_database_restart(restartable_pg_url, tmp_path):
    cluster, url = restartable_pg_url
    engine = sa.create_engine(url, poolclass=NullPool)
    init_db(engine)
    project = numeric_project(engine, "soak-faults", n_items=6000, n_labelled=20, lease_seconds=LEASE_SECONDS)
    first = retrain_project(engine, project, RetrainOptions(model=LogisticRegression(), worker="soak-faults"))
    assert first is not None and first.status == RunStatus.succeeded.value

    rng = random.Random(7)
    t0 = time.monotonic()
    labellers = Labellers(url, "soak-faults", tmp_path, end=t0 + SECONDS)
    for _ in range(PROCESSES):
        labellers.start()
    loop = RetrainLoop(url, project, every=3.0)
    loop.start()
    restart: dict[str, float] = {}
    kills = 0
    try:
        next_kill, restart_at = t0 + KILL_EVERY, t0 + SECONDS / 2
        while time.monotonic() < t0 + SECONDS - 3:
            if not restart and time.monotonic() >= restart_at:
                restart["start"] = time.time()
                done = subprocess.run([*cluster, "restart"], capture_output=True, text=True, timeout=60)
                assert done.returncode == 0, done.stderr
                assert _pg_ready(30), "PostgreSQL did not come back"
                restart["end"] = time.time()
            if time.monotonic() >= next_kill:
                if labellers.kill_one(rng) is not None:
                    kills += 1
                    labellers.start()  # a replacement, as a labeller reopens the page
                next_kill += KILL_EVERY
            time.sleep(0.1)
    finally:
        if not _pg_ready(5):  # never leave the server down
            subprocess.run([*cluster, "start"], capture_output=True, timeout=60)
            _pg_ready(60)
        survivors, killed, errors = labellers.finish()
        loop.stopped.set()
        loop.join(120)

    assert restart, "the soak ended before the restart"
    assert kills >= 3, f"only {kills} labeller processes were killed"
    stored_rows = db_annotations(engine, project)
    doubled = [k for k, n in Counter((u, i) for u, i, _ in stored_rows).items() if n > 1]
    assert not doubled, f"annotations stored twice: {doubled[:10]}"
    stored = {(u, i): v for u, i, v in stored_rows}

    # survivors: exactly their kept labels
    expected: dict[tuple[str, int], object] = {}
    for r in survivors:
        expected.update(replay(r))
    theirs = {k: v for k, v in stored.items() if k[0] in {r["user"] for r in survivors}}
    assert set(expected) - set(theirs) == set(), "submitted labels missing from the database"
    assert set(theirs) - set(expected) == set(), "annotations nobody kept"
    assert theirs == expected
    # the killed: their log, give or take the one action they died in
    assert _killed_differences(stored, killed) == []
    # nobody else wrote anything
    users = {r["user"] for r in survivors} | {r["user"] for r in killed}
    assert {u for u, _ in stored} <= users

    assert held_at_once(survivors + killed, LEASE_SECONDS) == [], "an item was held by two labellers at once"
    labelled_twice = [i for i, n in Counter(i for _, i in stored).items() if n > 1]
    assert labelled_twice == [], "an item finished by one labeller was handed to another"
    after_restart = sum(1 for r in survivors + killed for kind, _, _, t in r["log"] if kind == "submit" and t > restart["end"])
    assert after_restart > 0, "labelling went on after the restart"

    statuses = Counter(status for _, status in loop.runs)
    assert any(t > restart["end"] and status == RunStatus.succeeded.value for t, status in loop.runs), \
        f"no retrain succeeded after the restart: {loop.runs}"
    with session_scope(engine, write=False) as s:
        left_running = s.execute(sa.select(sa.func.count()).select_from(ModelRun)
                                 .where(ModelRun.project_id == project.id, ModelRun.status == RunStatus.running.value)).scalar_one()
    assert left_running == 0, "a retrain is still marked running"

    time.sleep(LEASE_SECONDS + 0.5)  # the dead labellers' leases run out
    left = remaining(engine, project)
    assert claim_everything(engine, project) == left
    assert remaining(engine, project) == 0

    n_submits = sum(1 for r in survivors + killed for row in r["log"] if row[0] == "submit")
    died_in = Counter()  # what the killed labellers were inside when they died, going by the database
    for r in killed:
        got = {k for k in stored if k[0] == r["user"]}
        died_in["a committed submit"] += len(got - set(replay(r)))
        died_in["a committed undo"] += len(set(replay(r)) - got)
    retries = sum(r.get("retries", 0) for r in survivors)
    print(f"\n[soak-faults] {labellers.n} labeller processes x {THREADS} threads over {SECONDS:.0f} s, {kills} killed with SIGKILL "
          f"and replaced, PostgreSQL restarted once ({restart['end'] - restart['start']:.1f} s): {n_submits} submits logged, "
          f"{len(stored)} labels stored, none lost or doubled; of {len(killed)} killed labellers, {dict(died_in)} not yet logged; "
          f"{retries} transactions retried by survivors; retrains {dict(statuses)}; a fresh user reached all {left} open items")
    engine.dispose()
    loop.engine.dispose()
