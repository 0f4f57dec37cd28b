"""A simulated labeller, for load tests and benchmarks.

Run one per OS process::

    python -m superintendent.simulate URL PROJECT USER --max-labels 500 --out events.json

It claims, "thinks", and submits (or sometimes skips or undoes) through the
same queue calls as the web app, one transaction per label, and writes what
it did as JSON: every hand-out with its time, every label, every latency.
"""

from __future__ import annotations

import argparse
import json
import random
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from superintendent import queue
from superintendent.auth import ensure_user
from superintendent.store import Role, make_engine, session_scope


@dataclass
class Events:
    """What one labeller did, in order: ``log`` rows are (kind, item id, label, time.time())
    with kind ``claim``, ``submit``, ``skip`` or ``undo`` (the item handed back)."""

    user: str
    log: list[tuple[str, int, object, float]] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)  # seconds per transaction
    started: float = 0.0
    finished: float = 0.0
    n_submits: int = 0

    def add(self, kind: str, item_id: int, label: object = None) -> None:
        self.log.append((kind, item_id, label, time.time()))
        self.n_submits += kind == "submit"


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
                 barrier: tuple[str, int] | None = None) -> Events:
    """Label until the queue is empty, ``max_labels`` are given, or ``duration`` seconds pass.

    ``barrier`` = (folder, n) lines n processes up to start together: each
    writes a file there and waits until n files exist.
    """
    rng = random.Random(seed)
    engine = make_engine(url)
    events = Events(user=username)
    with session_scope(engine) as s:
        project = queue.get_project(s, project_name)
        user_id = ensure_user(s, username, role=Role.labeller)
    options = project.options or ["label"]
    if barrier is not None:
        _wait_at_barrier(*barrier, username)
    deadline = None if duration is None else time.monotonic() + duration
    events.started = time.time()

    def timed(fn):  # noqa: ANN001, ANN202
        t0 = time.perf_counter()
        with session_scope(engine) as s:
            result = fn(s)
        events.latencies.append(time.perf_counter() - t0)
        return result

    task = timed(lambda s: queue.claim_next(s, project, user_id))
    while task is not None and events.n_submits < max_labels and (deadline is None or time.monotonic() < deadline):
        events.add("claim", task.item_id)
        if think_seconds:
            time.sleep(rng.uniform(0, 2 * think_seconds))
        roll = rng.random()
        if roll < skip_prob:
            events.add("skip", task.item_id)
            task = timed(lambda s, t=task: (queue.skip(s, project, user_id, t.item_id), queue.claim_next(s, project, user_id))[1])
        elif roll < skip_prob + undo_prob and events.n_submits:
            back = timed(lambda s: queue.undo(s, project, user_id))
            if back is not None:
                events.add("undo", back.item_id)
            task = back or timed(lambda s: queue.claim_next(s, project, user_id))
        else:
            label = rng.choice(options)
            item_id = task.item_id
            task = timed(lambda s, i=item_id, lab=label: queue.submit_and_claim_next(s, project, user_id, i, lab))
            events.add("submit", item_id, label)
    if task is not None:
        with session_scope(engine) as s:
            queue.release(s, project, user_id)
    events.finished = time.time()
    engine.dispose()
    return events


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
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    events = run_labeller(args.url, args.project, args.user, max_labels=args.max_labels, duration=args.duration,
                          think_seconds=args.think_seconds, skip_prob=args.skip_prob, undo_prob=args.undo_prob, seed=args.seed,
                          barrier=None if args.barrier is None else (args.barrier[0], int(args.barrier[1])))
    with open(args.out, "w") as fh:
        json.dump(asdict(events), fh)


if __name__ == "__main__":
    main()
