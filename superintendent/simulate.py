"""A simulated labeller, for load tests and benchmarks.

Run one per OS process::

    python -m superintendent.simulate URL PROJECT USER --max-labels 500 --out events.json

or several per process, one thread each, sharing one engine (its pool) like
the threads of a web server::

    python -m superintendent.simulate URL PROJECT USER --threads 10 --duration 25 --out events.json

(the threads label as ``USER-0`` ... ``USER-9``; ``--out`` then holds a JSON
list, one entry per thread).

It claims, "thinks", and submits (or sometimes skips or undoes) through
:func:`superintendent.queue.act`, as the Label page and the notebook widget
do, one transaction per label, and writes what it did as JSON: every
hand-out with its time, every label, every latency.

Each transaction runs through :func:`superintendent.store.db.run_transaction`:
if the connection is lost (a database restart), or PostgreSQL rolls it back
as a deadlock, it is run again on a new connection, a few times with a
growing pause (``--retries``). Every transaction is safe to run twice even
when the connection dropped during ``COMMIT``: a retried claim, submit or
skip resumes the item the first try leased instead of leasing another (a
submit's first try leaves that look out: it holds nothing else); a retried
undo first asks whether the annotation it took back is already gone
(:func:`superintendent.queue.last_annotation_id`,
:func:`superintendent.queue.annotation_exists`). ``retries`` in the output
counts them.
"""

from __future__ import annotations

import argparse
import json
import random
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from superintendent import queue
from superintendent.auth import ensure_user
from superintendent.queue import Action
from superintendent.store import Role, make_engine
from superintendent.store.db import is_rolled_back_conflict, run_transaction
from superintendent.validation import ConflictError

EMPTY_POLL_SECONDS = 0.2


@dataclass
class Events:
    """What one labeller did, in order: ``log`` rows are (kind, item id, label, time.time())
    with kind ``claim``, ``submit``, ``skip`` or ``undo`` (the item handed back).

    A row's time is taken once the action is done (after its transaction
    committed). ``begun[i]`` is when the action of ``log[i]`` began (its
    transaction started; a skip is logged as it begins): a claim at row ``i``
    surely held the item from ``log[i]``'s time to ``begun[i + 1]`` (or to
    ``stopped``), whatever the delays between a commit and the clock read.
    """

    user: str
    log: list[tuple[str, int, object, float]] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)  # seconds per transaction
    started: float = 0.0
    finished: float = 0.0
    stopped: float = 0.0  # labelling stopped (before releasing the item still held)
    begun: list[float] = field(default_factory=list)
    n_submits: int = 0
    retries: int = 0  # transactions run again after a lost connection (or a deadlock)
    deadlocks: int = 0  # of which: rolled back by PostgreSQL as a deadlock or serialization failure
    empty_claims: int = 0  # claims that found nothing although (with --retry-empty) a later one found an item
    conflicts: int = 0  # undos refused because someone else held the item

    def add(self, kind: str, item_id: int, label: object = None, begun: float | None = None) -> None:
        now = time.time()
        self.log.append((kind, item_id, label, now))
        self.begun.append(now if begun is None else begun)
        self.n_submits += kind == "submit"
        sink = getattr(self, "sink", None)  # --stream: each row also written at once, so a killed process leaves its log
        if sink is not None:
            sink.write(json.dumps([kind, item_id, label, now, self.begun[-1]]) + "\n")

    def beginning(self, when: float) -> None:
        """A transaction begins at ``when``. Streamed as ``{"begun": when}``: a process killed inside it (its row
        never logged) leaves when it stopped surely holding the item it had claimed last (an undo or a submit
        that committed before the kill has handed that item back)."""
        sink = getattr(self, "sink", None)
        if sink is not None:
            sink.write(json.dumps({"begun": when}) + "\n")


def read_stream(path: Path) -> list[list | dict]:
    """What ``--stream`` wrote to ``path`` so far, in order: log rows ``[kind, item, label, time, begun]`` and the
    starts of transactions ``{"begun": time}``. A last line cut short by a kill is left out (every line written
    whole ends with a newline)."""
    text = path.read_text() if path.exists() else ""
    return [json.loads(line) for line in text.split("\n")[:-1]]


def _wait_at_barrier(folder: str, n: int, name: str, timeout: float = 120.0) -> None:
    path = Path(folder)
    path.mkdir(parents=True, exist_ok=True)
    (path / name).touch()
    deadline = time.monotonic() + timeout
    while sum(1 for _ in path.iterdir()) < n:
        if time.monotonic() > deadline:
            raise TimeoutError(f"only {sum(1 for _ in path.iterdir())} of {n} labellers reached the start line in {timeout} s")
        time.sleep(0.01)


def run_labeller(url: str, project_name: str, username: str, *, max_labels: int = 1000, duration: float | None = None,
                 think_seconds: float = 0.0, skip_prob: float = 0.0, undo_prob: float = 0.0, seed: int = 0,
                 barrier: tuple[str, int] | None = None, retries: int = 10, retry_empty: float = 0.0,
                 engine: sa.Engine | None = None, stream: str | None = None) -> Events:
    """Label until the queue is empty, ``max_labels`` are given, or ``duration`` seconds pass.

    ``barrier`` = (folder, n) lines n processes up to start together: each
    writes a file there and waits until n files exist. ``retries``: how many
    times a transaction is run again after a lost connection (waits of 0.1 s,
    doubling, at most 1 s: 10 retries ride out about 7 s of outage).
    ``retry_empty``: when a claim finds nothing before ``duration`` is up, look
    again every 0.2 s for up to this many seconds (a user reloading the page)
    instead of stopping. ``engine``: share one (its pool) between threads;
    by default the labeller makes its own and disposes of it at the end.
    ``stream``: a folder; every log row is also appended to ``<folder>/<user>.jsonl``
    as ``[kind, item, label, time, begun]`` the moment it is logged, and each
    transaction's start as ``{"begun": time}`` as it starts (for tests that
    kill the process: what it had logged survives it).
    """
    rng = random.Random(seed)
    own_engine = engine is None
    engine = make_engine(url) if engine is None else engine
    events = Events(user=username)
    if stream is not None:
        Path(stream).mkdir(parents=True, exist_ok=True)
        events.sink = open(Path(stream) / f"{username}.jsonl", "a", buffering=1)  # line-buffered: one write per row

    def on_retry(_attempt: int, exc: BaseException) -> None:
        events.retries += 1
        events.deadlocks += is_rolled_back_conflict(exc)

    def tx(fn):  # noqa: ANN001, ANN202 - one whole transaction, run again after a lost connection
        return run_transaction(engine, fn, retries=retries, idempotent=True, backoff_seconds=0.1, max_backoff_seconds=1.0,
                               on_retry=on_retry)

    project, user_id = tx(lambda s: (queue.get_project(s, project_name), ensure_user(s, username, role=Role.labeller)))
    options = project.options or ["label"]
    if barrier is not None:
        _wait_at_barrier(*barrier, username)
    deadline = None if duration is None else time.monotonic() + duration
    events.started = time.time()

    tx_began = [0.0]  # when the latest transaction started (time.time())

    def timed(fn):  # noqa: ANN001, ANN202
        tx_began[0] = time.time()
        events.beginning(tx_began[0])
        t0 = time.perf_counter()
        result = tx(fn)
        events.latencies.append(time.perf_counter() - t0)
        return result

    def claim(s):  # noqa: ANN001, ANN202 - resumes the item held already: a retry after a lost COMMIT gets the same item
        return queue.act(s, project, user_id, Action.claim).task

    def submit_fn(item_id: int, label: object):  # noqa: ANN202
        tries = [0]

        def run(s):  # noqa: ANN001, ANN202
            tries[0] += 1
            # The first try holds only item_id, so its claim need not look for a held item (one statement less).
            # A retry may follow a first try that committed (and leased the next item): the submit is an upsert
            # per (item, user), and the resuming claim hands back the item this user holds already.
            return queue.act(s, project, user_id, Action.submit, item_id=item_id, value=label, resume=tries[0] > 1).task
        return run

    def undo_fn():  # noqa: ANN202
        """An undo's transaction. An undo run twice would take back two labels, so each try first checks
        whether an earlier one committed (its annotation is gone) and then only hands back the item."""
        target: list[int] = []

        def run(s):  # noqa: ANN001, ANN202
            if target and not queue.annotation_exists(s, target[0]):
                return queue.Outcome(queue.current_task(s, project, user_id), undone=True)  # the item is ours again
            last = queue.last_annotation_id(s, project, user_id)
            target[:] = [] if last is None else [last]
            return queue.act(s, project, user_id, Action.undo)
        return run

    def or_wait(task):  # noqa: ANN001, ANN202
        """With ``retry_empty``: an empty answer before the deadline is asked again for a while."""
        if task is not None or not retry_empty or deadline is None:
            return task
        give_up = min(deadline, time.monotonic() + retry_empty)
        while task is None and time.monotonic() < give_up:
            time.sleep(EMPTY_POLL_SECONDS)
            task = timed(claim)
        events.empty_claims += task is not None
        return task

    task = or_wait(timed(claim))
    while task is not None and events.n_submits < max_labels and (deadline is None or time.monotonic() < deadline):
        events.add("claim", task.item_id, begun=tx_began[0])
        if think_seconds:
            time.sleep(rng.uniform(0, 2 * think_seconds))
        roll = rng.random()
        if roll < skip_prob:
            events.add("skip", task.item_id)
            task = timed(lambda s, t=task: queue.act(s, project, user_id, Action.skip, item_id=t.item_id).task)
        elif roll < skip_prob + undo_prob and events.n_submits:
            try:
                outcome = timed(undo_fn())
            except ConflictError:  # someone else holds that item now (several annotations per item)
                events.conflicts += 1
                outcome = queue.Outcome(None)
            if outcome.undone and outcome.task is not None:
                events.add("undo", outcome.task.item_id, begun=tx_began[0])
            task = outcome.task or timed(claim)
        else:
            label = rng.choice(options)
            item_id = task.item_id
            task = timed(submit_fn(item_id, label))
            events.add("submit", item_id, label, begun=tx_began[0])
        task = or_wait(task)
    events.stopped = time.time()
    if task is not None:
        tx(lambda s: queue.act(s, project, user_id, Action.release))
    events.finished = time.time()
    if stream is not None:
        events.sink.close()
    if own_engine:
        engine.dispose()
    return events


def run_labellers(url: str, project_name: str, username: str, n_threads: int, *, seed: int = 0,
                  barrier: tuple[str, int] | None = None, **options: Any) -> list[Events]:
    """``n_threads`` labellers ``username-0`` ... in this process, one thread each, sharing one engine.

    A labeller that fails makes this raise (after all threads ended).
    """
    engine = make_engine(url)  # a thread holds a pooled connection only while in a transaction
    try:
        with ThreadPoolExecutor(max_workers=n_threads, thread_name_prefix=username) as pool:
            futures = [pool.submit(run_labeller, url, project_name, f"{username}-{k}", seed=seed * 1000 + k, barrier=barrier,
                                   engine=engine, **options) for k in range(n_threads)]
            return [f.result() for f in futures]
    finally:
        engine.dispose()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url")
    parser.add_argument("project")
    parser.add_argument("user")
    parser.add_argument("--max-labels", type=int, default=1000)
    parser.add_argument("--duration", type=float, default=None)
    parser.add_argument("--think-seconds", type=float, default=0.0)
    parser.add_argument("--skip-prob", type=float, default=0.0)
    parser.add_argument("--undo-prob", type=float, default=0.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--barrier", nargs=2, metavar=("FOLDER", "N"), default=None, help="start once N labellers are ready")
    parser.add_argument("--retries", type=int, default=10, help="times a transaction is run again after a lost connection")
    parser.add_argument("--retry-empty", type=float, default=0.0,
                        help="when the queue looks empty before --duration is up, look again for up to this many seconds")
    parser.add_argument("--threads", type=int, default=None, help="run N labellers USER-0 ... USER-(N-1) as threads; --out gets a list")
    parser.add_argument("--stream", default=None, metavar="FOLDER",
                        help="also append each event to FOLDER/USER.jsonl as it happens (survives a kill)")
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    options = dict(max_labels=args.max_labels, duration=args.duration, think_seconds=args.think_seconds, skip_prob=args.skip_prob,
                   undo_prob=args.undo_prob, retries=args.retries, retry_empty=args.retry_empty, stream=args.stream,
                   barrier=None if args.barrier is None else (args.barrier[0], int(args.barrier[1])))
    if args.threads is None:
        result: Any = asdict(run_labeller(args.url, args.project, args.user, seed=args.seed, **options))
    else:
        result = [asdict(e) for e in run_labellers(args.url, args.project, args.user, args.threads, seed=args.seed, **options)]
    with open(args.out, "w") as fh:
        json.dump(result, fh)


if __name__ == "__main__":
    main()
