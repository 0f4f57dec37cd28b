"""A retrain killed at random moments, and items added while a retrain runs (issue 14), on SQLite and PostgreSQL.

1. A real retrain (``orchestration.retrain_project``: the lock, then ``run_retrain`` with logistic regression on
   digits) runs in a child process and is killed with SIGKILL at moments drawn from a seeded generator: eight spread
   over the duration of an unkilled run, two inside its write of the head of the order (which spans several chunk
   transactions), and more there until one has landed in it. After each kill: no label changed, every unlabelled item is claimable (four labellers claim
   concurrently; each item is handed out exactly once and they get them all), and the next retrain succeeds,
   closes the dead one's run and ranks every open item.
2. Items added while a retrain runs (as its final fit begins, part-way through its predictions, as its write begins,
   between two chunks of the write): none is lost or doubled, labels are as they were, every open item is claimable,
   the head the retrain wrote is served first in the model's order and every other item after it in its earlier
   order, the new ones last (unless the retrain read them in time to rank them), and the next retrain ranks the new
   items with the rest.
3. The same within rank_write_limit, once every open item has been in a head of the order (priorities below zero):
   the retrain writes its whole order as 0, 1, 2, ... and the items added meanwhile (max open priority + 1, below
   zero) are served before it. This one fails: a defect reported in the notes of the change that added it.

What each kill hit is printed (``pytest -s``): the phase under way, the chunks of the write committed, the run left
``running``.
"""

from __future__ import annotations

import contextlib
import functools
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa
from sklearn.linear_model import LogisticRegression
from threadpoolctl import threadpool_limits

from superintendent import queue
from superintendent.acquisition_functions import margin
from superintendent.auth import ensure_user
from superintendent.learning import RetrainOptions
from superintendent.learning.retrain import RetrainProgress
from superintendent.orchestration import retrain_project
from superintendent.queue import priorities as queue_priorities
from superintendent.store import Annotation, ModelRun, Role, RunStatus, session_scope

from test_faults import backends_gone, ensure_dead, tagged
from test_learning import DIGITS, digits_project, flatten

N_ITEMS, N_LABELLED = 400, 100  # 300 open items: more than the head written (HEAD), in several predict batches
HEAD, BATCH, CHUNK = 200, 50, 20  # rank_write_limit, predict_batch_size, the child's reprioritise chunk: 10 chunks
N_CLAIMERS = 4
MAX_KILLS = 14


@pytest.fixture
def small_batches(monkeypatch):
    """The settings a retrain reads (here and in the child, which inherits the environment): a head of HEAD items,
    predictions BATCH at a time."""
    monkeypatch.setenv("SUPERINTENDENT_RANK_WRITE_LIMIT", str(HEAD))
    monkeypatch.setenv("SUPERINTENDENT_PREDICT_BATCH_SIZE", str(BATCH))


def own_project_ids(engine) -> None:
    """PostgreSQL: the retrain lock is an advisory lock keyed by project id, and advisory locks belong to the database,
    not to a schema. Every test schema numbers its projects from 1, so a test retraining its project 1 at the same moment
    (another person's run on the shared server) would hold "our" lock: this schema's project ids start at a random
    large number instead."""
    if engine.dialect.name == "postgresql":
        with engine.begin() as conn:
            sequence = conn.execute(sa.text("SELECT pg_get_serial_sequence('sp_project', 'id')")).scalar_one()
            conn.execute(sa.text(f"ALTER SEQUENCE {sequence} RESTART WITH {1_000_000 + uuid.uuid4().int % 2_000_000_000}"))


def retrain_options(**kw) -> RetrainOptions:
    return RetrainOptions(**{"model": LogisticRegression(max_iter=2000), "model_preprocess": flatten, "acquisition_function": "margin",
                             "shuffle_prop": 0.0, **kw})


# --------------------------------------------------------------------------- what must hold after anything


def open_priorities(engine, project) -> dict[int, float]:
    with session_scope(engine, write=False) as s:
        rows = s.execute(sa.select(queue.Item.id, queue.Item.priority)
                         .where(queue.Item.project_id == project.id, queue.Item.done.is_(False))).all()
    return {int(i): float(p) for i, p in rows}


def annotations(engine, project) -> list[tuple[int, int, str]]:
    with session_scope(engine, write=False) as s:
        return sorted(s.execute(sa.select(Annotation.item_id, Annotation.user_id, Annotation.value)
                                .where(Annotation.project_id == project.id)).all())


def claim_all_at_once(engine, project, n_users: int = N_CLAIMERS) -> dict[str, int]:
    """``n_users`` labellers claim concurrently (one thread each, a transaction per claim) until nothing is left;
    checks that every open item was handed out exactly once, then gives every lease back. Returns claims per user."""
    expected = set(open_priorities(engine, project))
    with session_scope(engine) as s:
        users = {f"claimer{k}": ensure_user(s, f"claimer{k}", role=Role.labeller) for k in range(n_users)}
    got: dict[str, list[int]] = {name: [] for name in users}
    errors: list[BaseException] = []
    start = threading.Barrier(n_users)

    def claim(name: str) -> None:
        try:
            start.wait(30)
            while len(got[name]) <= len(expected):  # more than there are: the queue hands out items it handed out already
                with session_scope(engine) as s:
                    task = queue.claim_next(s, project, users[name], resume=False)
                if task is None:
                    return
                got[name].append(task.item_id)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=claim, args=(name,), daemon=True) for name in users]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    try:
        assert not any(t.is_alive() for t in threads), "a claimer hung"
        assert not errors, errors
        handed = Counter(i for ids in got.values() for i in ids)
        twice = sorted(i for i, n in handed.items() if n > 1)
        assert not twice, f"{len(twice)} items handed out twice: {twice[:10]}"
        missing, foreign = expected - set(handed), set(handed) - expected
        assert not missing, f"{len(missing)} open items nobody could claim: {sorted(missing)[:10]}"
        assert not foreign, f"{len(foreign)} items handed out that are not open: {sorted(foreign)[:10]}"
        assert sum(handed.values()) == len(expected)
    finally:
        with session_scope(engine) as s:
            for uid in users.values():
                queue.release(s, project, uid)
    return {name: len(ids) for name, ids in got.items()}


def runs_of(engine, project, worker: str) -> list[ModelRun]:
    with session_scope(engine, write=False) as s:
        return list(s.execute(sa.select(ModelRun).where(ModelRun.project_id == project.id, ModelRun.worker == worker)).scalars())


# --------------------------------------------------------------------------- 1. a retrain killed at random moments

# The retrain of a child process: the real one (the lock, then run_retrain, logistic regression on the digits). A
# fork server imports everything once and forks one process per retrain (a fresh interpreter for each kill would
# spend seconds importing on a busy machine); the test kills that process, the server reaps it (a zombie's pid would
# still "exist" for the SQLite lock's check) and says how it ended. Each retrain reports on stdout, as
# "<pid> <seconds since it started> <words>", each phase it begins (RetrainOptions.progress) and each chunk of the write
# it commits. The write goes in chunks of CHUNK rows (reprioritise's chunk_size, not a setting), each transaction
# kept open a moment before COMMIT, so that a kill in the write lands inside one most of the time.
FORK_SERVER = """
    import contextlib, functools, gc, os, sys, time, traceback
    import numpy as np
    from sklearn.linear_model import LogisticRegression
    from superintendent import queue
    from superintendent.queue import priorities
    from superintendent.learning import RetrainOptions
    from superintendent.orchestration import retrain_project
    from superintendent.store import make_engine

    project, chunk = sys.argv[1], int(sys.argv[2])
    t0, chunks = time.monotonic(), 0

    def say(*parts):  # one write(2) of less than PIPE_BUF: whole, whenever the process is killed (print() may write in pieces)
        os.write(1, " ".join(map(str, (os.getpid(), f"{time.monotonic() - t0:.4f}", *parts))).encode() + b"\\n")

    real_scope = priorities.session_scope

    @contextlib.contextmanager
    def chunk_scope(engine, **kw):
        global chunks
        say("chunk-begins", chunks + 1)
        with real_scope(engine, **kw) as s:
            yield s
            time.sleep(0.02)
        chunks += 1
        say("chunk", chunks)

    priorities.session_scope = chunk_scope
    queue.reprioritise = functools.partial(priorities.reprioritise, chunk_size=chunk)

    def flatten(x, y):
        return np.asarray(x).reshape(len(x), -1), y

    def retrain(url, worker):
        global t0
        t0 = time.monotonic()
        engine = make_engine(url)
        options = RetrainOptions(model=LogisticRegression(max_iter=2000), model_preprocess=flatten, acquisition_function="margin",
                                 shuffle_prop=0.0, worker=worker, progress=lambda p: say("phase", p.phase, p.done, p.total))
        run = retrain_project(engine, project, options)
        say("done", run.status if run is not None else "locked")

    gc.freeze()  # what was imported stays out of the children's collections (each would otherwise copy the whole heap)
    say("ready")
    for line in sys.stdin:
        url, worker = line.split()
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                retrain(url, worker)
                code = 0
            except BaseException:
                traceback.print_exc()
            finally:
                sys.stderr.flush()
                os._exit(code)
        say("forked", pid)
        _, status = os.waitpid(pid, 0)
        say("exited", pid, os.waitstatus_to_exitcode(status))
"""


class Retrain:
    """One retrain the fork server started: its pid, what it said ((seconds since it started, words)), how it ended."""

    def __init__(self, pid: int, app_name: str, sent_at: float) -> None:
        self.pid, self.app_name, self.sent_at = pid, app_name, sent_at
        self.lines: list[tuple[float, list[str]]] = []
        self.exit_code: int | None = None
        self.exited = threading.Event()

    def phase(self) -> str:
        """The last phase it began ("finished" if it got to the end; before the first: taking the lock, recording the run)."""
        if self.started("done") is not None:
            return "finished"
        phases = [w[1] for _, w in self.lines if w[0] == "phase"]
        if phases and phases[-1] == "write":  # first the guesses for the head, then its chunks
            chunk = max([int(w[1]) for _, w in self.lines if w[0] == "chunk-begins"], default=0)
            return f"write chunk {chunk}" if chunk else "write guesses"
        return phases[-1] if phases else "lock/start_run"

    def chunks(self) -> int:
        return max([int(w[1]) for _, w in self.lines if w[0] == "chunk"], default=0)

    def phase_starts(self) -> dict[str, float]:
        starts: dict[str, float] = {}
        for at, w in self.lines:
            if w[0] == "phase":
                starts.setdefault(w[1], at)
        return starts

    def started(self, what: str, value: str | None = None) -> float | None:
        return next((at for at, w in self.lines if w[0] == what and (value is None or w[1] == value)), None)


class ForkServer:
    """The fork server process and the retrains it starts, its stdout read as it comes."""

    def __init__(self, tmp_path: Path, url: str, project: str) -> None:
        script = tmp_path / "retrain_fork_server.py"
        script.write_text(textwrap.dedent(FORK_SERVER))
        self.url = url
        self.proc = subprocess.Popen([sys.executable, str(script), project, str(CHUNK)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)
        self.ready, self.forked = threading.Event(), threading.Event()
        self.runs: dict[int, Retrain] = {}
        self.lines_of: defaultdict[int, list[tuple[float, list[str]]]] = defaultdict(list)
        self._pending: Retrain | None = None
        self.strays: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        if not self.ready.wait(120):
            self.close()
            pytest.fail(f"the fork server never got ready: {self.proc.stderr.read()}")

    def _read(self) -> None:
        server = self.proc.pid
        for line in self.proc.stdout:
            try:
                pid, at, *words = line.split()
                int(pid), float(at)
            except ValueError:  # not one of say()'s lines: keep it for the message of a failure
                self.strays.append(line)
                continue
            if int(pid) != server:  # a retrain's line may come before the server's "forked"
                self.lines_of[int(pid)].append((float(at), words))
            elif words[0] == "ready":
                self.ready.set()
            elif words[0] == "forked":
                self.runs[int(words[1])] = self._pending
                self._pending.pid = int(words[1])
                self._pending.lines = self.lines_of[int(words[1])]
                self.forked.set()
            elif words[0] == "exited":
                self.runs[int(words[1])].exit_code = int(words[2])
                self.runs[int(words[1])].exited.set()

    def start(self, worker: str) -> Retrain:
        """Start one retrain (its own process, its connections named on PostgreSQL); returns once it runs."""
        app_name = f"sp-kill-{uuid.uuid4().hex[:6]}"
        self._pending = Retrain(0, app_name, time.monotonic())
        self.forked.clear()
        self.proc.stdin.write(f"{tagged(self.url, app_name)} {worker}\n")
        self.proc.stdin.flush()
        if not self.forked.wait(30):
            pytest.fail(f"the fork server did not start a retrain: {self.proc.stderr.read() if self.proc.poll() is not None else ''}")
        return self._pending

    def kill(self, run: Retrain) -> bool:
        """SIGKILL the retrain unless it has ended; wait until the server has reaped it. Whether it was killed."""
        if not run.exited.is_set():
            with contextlib.suppress(ProcessLookupError):  # it ended this instant
                os.kill(run.pid, signal.SIGKILL)
        assert run.exited.wait(30), f"the fork server did not reap its retrain; other output: {self.strays[:5]}"
        return run.exit_code == -signal.SIGKILL

    def wait(self, run: Retrain) -> int:
        assert run.exited.wait(120), "the unkilled retrain did not end"
        return run.exit_code

    def close(self) -> str:
        with contextlib.suppress(OSError):
            self.proc.stdin.close()
        try:
            self.proc.wait(30)
        finally:
            ensure_dead(self.proc)
        self._reader.join(10)
        return self.proc.stderr.read()


def spread_moments(reference: Retrain, rng: np.random.Generator, n: int = 8) -> list[float]:
    """Seconds after a retrain starts: one at a random place in each of ``n`` equal slices of an unkilled run."""
    duration = reference.started("done")
    assert duration is not None, reference.lines
    return ((np.arange(n) + rng.random(n)) / n * duration).tolist()


def write_moments(reference: Retrain, rng: np.random.Generator, n: int) -> list[float]:
    """Seconds after a retrain starts: ``n`` random moments of an unkilled run's chunk writes."""
    write_from, write_to = reference.started("chunk-begins"), reference.started("phase", "signals")
    assert None not in (write_from, write_to), reference.lines
    return (write_from + rng.random(n) * (write_to - write_from)).tolist()


@pytest.fixture
def fork_server(db_url, tmp_path):
    servers: list[ForkServer] = []

    def start(project: str) -> ForkServer:
        servers.append(ForkServer(tmp_path, db_url, project))
        return servers[-1]

    yield start
    for server in servers:
        errors = server.close()
        assert "Traceback" not in errors, errors
        assert not server.strays, server.strays


@pytest.mark.timeout(240)
def test_a_retrain_killed_at_random_moments_leaves_the_queue_whole(engine, fork_server, small_batches):
    own_project_ids(engine)
    project = digits_project(engine, n_items=N_ITEMS, n_labelled=N_LABELLED, name="killed")
    n_open = N_ITEMS - N_LABELLED
    labels = annotations(engine, project)
    t_start = time.monotonic()
    server = fork_server(project.name)

    reference = server.start("reference")  # an unkilled run: how long each phase takes
    assert server.wait(reference) == 0
    assert reference.lines[-1][1] == ["done", RunStatus.succeeded.value], reference.lines
    assert reference.chunks() == HEAD // CHUNK, "the write of the head spans several chunks"
    rng = np.random.default_rng(14)
    moments = spread_moments(reference, rng) + write_moments(reference, rng, 2)  # and more in the write, until one hits it
    starts = ", ".join(f"{phase} {at:.2f}" for phase, at in reference.phase_starts().items())
    print(f"\n[{engine.dialect.name}] fork server ready after {reference.sent_at - t_start:.2f} s; unkilled retrain "
          f"{reference.started('done'):.2f} s, phases began at {starts}; load average {os.getloadavg()[0]:.2f}")

    hits: Counter[str] = Counter()
    k = 0
    while k < len(moments):
        moment = moments[k]
        before = open_priorities(engine, project)
        worker = f"doomed-{k}"
        doomed = server.start(worker)
        time.sleep(max(0.0, doomed.sent_at + moment - time.monotonic()))
        killed = server.kill(doomed)
        phase, chunks = doomed.phase(), doomed.chunks()
        assert killed or phase == "finished", (doomed.exit_code, doomed.lines)
        hits[phase] += 1

        # what the kill left: labels as they were, the order part old part new (whole chunks), every open item claimable
        t0 = time.perf_counter()
        assert annotations(engine, project) == labels, "a killed retrain changed labels"
        after = open_priorities(engine, project)
        assert set(after) == set(before), "a killed retrain changed which items are open"
        moved = sum(after[i] != before[i] for i in before)
        if killed:  # a chunk is written whole or not at all (the one under way at the kill: either)
            assert moved in (CHUNK * chunks, CHUNK * (chunks + 1)), (moved, chunks)
        claimed = claim_all_at_once(engine, project)
        assert sum(claimed.values()) == n_open
        check_seconds = time.perf_counter() - t0
        recorded = runs_of(engine, project, worker)
        left = recorded[0].status if recorded else "no run recorded"
        gone = backends_gone(engine, doomed.app_name)  # PostgreSQL: the dead retrain's advisory lock is freed with its connection

        # the next retrain: succeeds, closes the dead run, ranks every open item, changes no label
        t0 = time.perf_counter()
        run = retrain_project(engine, project, retrain_options(worker=f"next-{k}"))
        next_seconds = time.perf_counter() - t0
        assert run is not None, "the dead retrain's lock was not freed / taken over"
        assert run.status == RunStatus.succeeded.value, run.message
        assert run.n_ranked == n_open and run.n_labels == N_LABELLED
        for closed in runs_of(engine, project, worker):
            assert closed.status != RunStatus.running.value, "the killed run is still 'running' after the next retrain"
            if left == RunStatus.running.value:
                assert closed.status == RunStatus.failed.value and closed.message.startswith("abandoned")
        assert annotations(engine, project) == labels
        print(f"  kill {k}: {moment:4.2f} s in, during {phase:<15} {chunks:2d} chunks committed, {moved:3d} priorities new, "
              f"run left {left!r}; {n_open} items claimed once each {sorted(claimed.values())} ({check_seconds:.2f} s); "
              f"connections gone after {gone:.2f} s; next retrain {next_seconds:.2f} s")
        k += 1
        if k == len(moments) and k < MAX_KILLS and not any(phase.startswith("write chunk") for phase in hits):
            moments += write_moments(reference, rng, 1)  # a run is a little slower or faster than the reference

    claimed = claim_all_at_once(engine, project)  # and after the last successful retrain
    assert sum(claimed.values()) == n_open
    assert any(phase.startswith("write chunk") for phase in hits), f"no kill landed in the write of the head: {dict(hits)}"
    print(f"  kills by phase: {dict(hits)}; {time.monotonic() - t_start:.1f} s in all; load average {os.getloadavg()[0]:.2f}")


# --------------------------------------------------------------------------- 2. items added while a retrain runs

N_NEW = 40  # unlabelled digits added while the retrain runs: DIGITS[N_ITEMS:N_ITEMS + N_NEW]


class PauseAt:
    """A retrain's progress callback that stops it once, at ``moment``, until the test has added its items.

    ``fit``: the final fit begins (after evaluating); ``predict``: after the first batch of predictions; ``write``:
    the write of the head begins (every unlabelled item has been predicted and ranked). ``write chunk``, between the
    first and the second chunk of the write, is a chunk transaction's end instead (see the test).
    """

    def __init__(self, moment: str) -> None:
        self.moment, self.paused, self.resume, self.hit = moment, threading.Event(), threading.Event(), False

    def pause(self) -> None:
        if not self.hit:
            self.hit = True
            self.paused.set()
            assert self.resume.wait(60), "the test never let the retrain go on"

    def __call__(self, p: RetrainProgress) -> None:
        if ((self.moment == "fit" and p.phase == "fit") or (self.moment == "predict" and p.phase == "predict" and p.done == BATCH)
                or (self.moment == "write" and p.phase == "write")):
            self.pause()


def expected_head(engine, project, predicted: list[int]) -> list[int]:
    """The head of the order a retrain on the labelled digits gives ``predicted`` (item ids): margin, smallest first.
    Items were added in digit order, so the n-th item of the project (by id) is DIGITS[n]."""
    with session_scope(engine, write=False) as s:
        ids = s.execute(sa.select(queue.Item.id).where(queue.Item.project_id == project.id).order_by(queue.Item.id)).scalars().all()
    position = {item: n for n, item in enumerate(ids)}
    with threadpool_limits(limits=1):  # as a retrain's model (the model_threads setting): one BLAS thread on a busy machine
        model = LogisticRegression(max_iter=2000).fit(DIGITS.data[:N_LABELLED], DIGITS.target[:N_LABELLED])
        proba = model.predict_proba(DIGITS.data[[position[i] for i in predicted]])
    return [predicted[k] for k in margin(proba)[:HEAD]]


def serve_order(engine, project) -> list[int]:
    """The order one labeller is served every open item in (claimed one by one, then given back)."""
    with session_scope(engine) as s:
        uid = ensure_user(s, "reader", role=Role.labeller)
    order, n_open = [], len(open_priorities(engine, project))
    while len(order) <= n_open:  # more than there are: the queue hands out items it handed out already
        with session_scope(engine) as s:
            task = queue.claim_next(s, project, uid, resume=False)
        if task is None:
            break
        order.append(task.item_id)
    with session_scope(engine) as s:
        queue.release(s, project, uid)
    return order


def item_rows(engine, project) -> list[tuple[int, str]]:
    with session_scope(engine, write=False) as s:
        return sorted(s.execute(sa.select(queue.Item.id, queue.Item.external_id).where(queue.Item.project_id == project.id)).all())


@pytest.mark.parametrize("moment", ["fit", "predict", "write", "write chunk"])
def test_items_added_during_a_retrain_are_served_and_ranked_next_time(engine, moment, small_batches, monkeypatch):
    own_project_ids(engine)
    project = digits_project(engine, n_items=N_ITEMS, n_labelled=N_LABELLED, name="growing")
    labels, n_open = annotations(engine, project), N_ITEMS - N_LABELLED
    old_open = sorted(open_priorities(engine, project))
    pause = PauseAt(moment)
    if moment == "write chunk":  # the write in chunks of CHUNK rows; the retrain stops after the first one commits
        real_scope = queue_priorities.session_scope

        @contextlib.contextmanager
        def chunk_scope(eng, **kw):
            with real_scope(eng, **kw) as s:
                yield s
            pause.pause()

        monkeypatch.setattr(queue_priorities, "session_scope", chunk_scope)
        monkeypatch.setattr(queue, "reprioritise", functools.partial(queue_priorities.reprioritise, chunk_size=CHUNK))

    outcome: dict[str, object] = {}

    def retrain() -> None:
        try:
            outcome["run"] = retrain_project(engine, project, retrain_options(progress=pause))
        except BaseException as exc:  # noqa: BLE001 - reported below
            outcome["error"] = exc
        finally:
            pause.paused.set()  # never leave the test waiting

    thread = threading.Thread(target=retrain)
    thread.start()
    try:
        assert pause.paused.wait(60), "the retrain never reached the moment"
        assert pause.hit and "error" not in outcome, f"the retrain ended before its {moment}: {outcome}"
        with session_scope(engine) as s:
            added = queue.add_items(s, project, list(DIGITS.images[N_ITEMS:N_ITEMS + N_NEW]))
    finally:
        pause.resume.set()
        thread.join(60)
    assert not thread.is_alive() and "error" not in outcome, outcome.get("error")
    run = outcome["run"]
    assert run is not None and run.status == RunStatus.succeeded.value, run and run.message
    assert added.added == N_NEW

    # nothing lost or doubled; labels as they were
    rows = item_rows(engine, project)
    assert len(rows) == N_ITEMS + N_NEW and len({e for _, e in rows}) == len(rows)
    new = sorted(set(open_priorities(engine, project)) - set(old_open))
    assert len(new) == N_NEW and min(new) > max(old_open)
    assert annotations(engine, project) == labels

    # which items this retrain ranked: those it read (the new ones too when they came before its reads were done)
    ranked_new = run.n_ranked == n_open + N_NEW
    assert run.n_ranked in (n_open, n_open + N_NEW)
    if moment == "fit":
        assert ranked_new, "items added before the predictions began were not predicted"
    if moment.startswith("write"):
        assert not ranked_new
    head = expected_head(engine, project, old_open + new if ranked_new else old_open)

    # served: this run's head first, in the model's order; then every other item in its earlier order, the new ones last
    order = serve_order(engine, project)
    rest = [i for i in old_open + new if i not in head]
    assert order == head + rest, (f"head served first: {order[:HEAD] == head}; then the rest in earlier order: "
                                  f"{order[HEAD:] == rest}")
    claimed = claim_all_at_once(engine, project)
    assert sum(claimed.values()) == n_open + N_NEW

    # the next retrain ranks the new items with the rest
    second = retrain_project(engine, project, retrain_options(worker="next"))
    assert second.status == RunStatus.succeeded.value, second.message
    assert second.n_ranked == n_open + N_NEW
    head2 = expected_head(engine, project, old_open + new)
    assert serve_order(engine, project)[:HEAD] == head2
    assert set(new) & set(head2), "the test's data should put some new items in the head"
    assert annotations(engine, project) == labels
    print(f"\n[{engine.dialect.name}] {N_NEW} items added during the retrain's {moment}: ranked by it: {ranked_new}; "
          f"{len(set(new) & set(head))} of them in its head; all {n_open + N_NEW} open items served once "
          f"{sorted(claimed.values())}; the next retrain put {len(set(new) & set(head2))} of them in its head of {HEAD}")


def test_items_added_during_a_retrain_within_the_limit_come_after_its_order(engine, small_batches):
    """docs/queue.md: "new items go after every ranked item". A retrain of a project within rank_write_limit writes its
    whole order as 0, 1, 2, ...; an item added meanwhile got the highest open priority + 1 when it was added. Once every
    open item has had its turn in a head of the order (priorities below zero) that is not after the order: the new items
    are served before the items the retrain ranked. (Fails today: see the notes of the change that added it.)"""
    own_project_ids(engine)
    project = digits_project(engine, n_items=N_ITEMS, n_labelled=N_LABELLED, name="shrinking")
    run = retrain_project(engine, project, retrain_options())  # 300 open items: a head of 200 goes below zero
    assert run.status == RunStatus.succeeded.value, run.message
    before = open_priorities(engine, project)
    unranked = sorted(i for i, p in before.items() if p >= 0)
    assert len(unranked) == len(before) - HEAD

    def unranked_first(proba: np.ndarray) -> np.ndarray:  # the next head: the 100 items no head held yet, then 100 others
        rows = sorted(before)  # a retrain predicts the open items in id order
        first = [k for k, i in enumerate(rows) if i in unranked]
        return np.array(first + [k for k in range(len(rows)) if rows[k] not in unranked])

    run = retrain_project(engine, project, retrain_options(acquisition_function=unranked_first))
    assert run.status == RunStatus.succeeded.value, run.message
    assert max(open_priorities(engine, project).values()) < 0, "every open item has been in a head"

    # labellers label the first 100 items they are served: 200 open items are left, within rank_write_limit
    with session_scope(engine, write=False) as s:
        position = {i: n for n, i in enumerate(s.execute(sa.select(queue.Item.id).where(queue.Item.project_id == project.id)
                                                         .order_by(queue.Item.id)).scalars())}
    with session_scope(engine) as s:
        uid = ensure_user(s, "labeller", role=Role.labeller)
    for _ in range(100):
        with session_scope(engine) as s:
            task = queue.claim_next(s, project, uid)
            queue.submit(s, project, uid, task.item_id, int(DIGITS.target[position[task.item_id]]))
    ranked = sorted(open_priorities(engine, project))
    assert len(ranked) == HEAD

    pause = PauseAt("write")  # every open item predicted and ranked; now items come in
    outcome: dict[str, object] = {}
    thread = threading.Thread(target=lambda: outcome.update(run=retrain_project(engine, project, retrain_options(progress=pause))))
    thread.start()
    try:
        assert pause.paused.wait(60), "the retrain never reached its write"
        with session_scope(engine) as s:
            queue.add_items(s, project, list(DIGITS.images[N_ITEMS:N_ITEMS + N_NEW]))
    finally:
        pause.resume.set()
        thread.join(60)
    run = outcome["run"]
    assert run.status == RunStatus.succeeded.value and run.n_ranked == HEAD, run.message
    after = open_priorities(engine, project)
    new = sorted(set(after) - set(ranked))
    order = serve_order(engine, project)
    assert len(order) == HEAD + N_NEW and set(order[:HEAD]) == set(ranked), (
        f"items added during the retrain (priorities {min(after[i] for i in new):.0f}..{max(after[i] for i in new):.0f}) "
        f"are served before {sum(after[r] > min(after[i] for i in new) for r in ranked)} of the {HEAD} items it ranked "
        f"(priorities {min(after[i] for i in ranked):.0f}..{max(after[i] for i in ranked):.0f}); the first new one is served "
        f"at position {min(order.index(i) for i in new) + 1}")
