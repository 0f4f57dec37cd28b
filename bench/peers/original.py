"""The original superintendent (0.6.0, PyPI) as a peer: its DatabaseQueue vs our queue, same server, same run.

The original library's import name is ours too, so it lives in its own
virtual environment, ``bench/.venvs/original`` (created on first use:
``superintendent==0.6.0`` with ``sqlmodel==0.0.8 SQLAlchemy==1.4.41
pydantic<2``, the versions it works with), and every call to it runs in a
worker process of that environment. Nothing of its code is in this
repository.

For each worker count, on the same PostgreSQL server, each side in a fresh
schema with the same N items (8x8 integer arrays, like sklearn's digits):

* **peer**: N worker processes, each a ``DatabaseQueue(worker_id=...)``,
  ``pop()`` then ``submit(id, label)`` as fast as they can for D seconds;
* **ours**: N ``python -m superintendent.simulate`` processes
  (``queue.act(..., Action.submit, ...)``, one transaction per label), D seconds.

Reported: items/s (labels submitted / wall time), p50/p99 of one label
(peer: pop + submit; ours: submit-and-claim-next), items handed to two
workers at once (an item id popped/claimed by two different workers), and
for the peer, labels that overwrote another worker's label. Then
reprioritisation: the peer's ``reorder({id: priority})`` on 40,000 items vs
our ``queue.reprioritise`` on 40,000 items (target: ours >= 50x faster).

    python bench/peers/original.py             # 100,000 items, 1 and 8 workers, 20 s each; reorder 40k
    python bench/peers/original.py --quick     # 3,000 items, 1 and 4 workers, 4 s; reorder 5k (about a minute)

PostgreSQL: ``--server`` (a URL without the database name; default
postgresql+psycopg2://postgres@127.0.0.1:5432); the database ``bench_peer``
is created there if missing; every run uses fresh schemas, dropped after.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(Path(__file__).resolve().parent))

import argparse  # noqa: E402
import json  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import uuid  # noqa: E402
from collections import defaultdict  # noqa: E402
from collections.abc import Iterator  # noqa: E402
from contextlib import contextmanager  # noqa: E402

import numpy as np  # noqa: E402
import sqlalchemy as sa  # noqa: E402

import common  # noqa: E402
from superintendent import queue  # noqa: E402
from superintendent.store import init_db, make_engine, session_scope  # noqa: E402

VENV = "original"
REQUIREMENTS = ["superintendent==0.6.0", "sqlmodel==0.0.8", "SQLAlchemy==1.4.41", "pydantic<2", "psycopg2-binary", "scikit-learn"]
CHECK = "import superintendent, sqlalchemy; assert superintendent.__version__ == '0.6.0'; assert sqlalchemy.__version__ == '1.4.41'"
PROJECT = "bench"
OPTIONS = ["a", "b", "c"]

# Runs inside bench/.venvs/original. argv: mode, JSON arguments, output file.
PEER_WORKER = r'''
import json, os, random, sys, time
from pathlib import Path

import superintendent
from superintendent.db_queue import DatabaseQueue, SuperintendentData
assert superintendent.__version__ == "0.6.0", superintendent.__version__
import numpy as np

mode, args, out = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3]
result = {}
if mode == "setup":
    q = DatabaseQueue(args["url"], worker_id="setup")
    items = np.random.default_rng(0).integers(0, 16, (args["n"], 8, 8))
    t0 = time.perf_counter()
    q.enqueue(list(items))
    result = {"enqueue_seconds": time.perf_counter() - t0, "count": len(q)}
    q.engine.dispose()
elif mode == "label":
    q = DatabaseQueue(args["url"], worker_id=args["worker"])
    rng = random.Random(args["seed"])
    folder = Path(args["barrier"])
    (folder / args["worker"]).touch()
    while sum(1 for _ in folder.iterdir()) < args["n_workers"]:
        time.sleep(0.01)
    deadline = time.monotonic() + args["duration"]
    pops, latencies, started = [], [], time.time()
    while time.monotonic() < deadline:
        t0 = time.perf_counter()
        try:
            id_, x = q.pop()
        except IndexError:
            break
        pops.append((id_, time.time()))
        q.submit(id_, rng.choice(args["options"]))
        latencies.append(time.perf_counter() - t0)
    result = {"worker": args["worker"], "pops": pops, "latencies": latencies, "started": started, "finished": time.time()}
    q.engine.dispose()
elif mode == "reorder":
    q = DatabaseQueue(args["url"], worker_id="orchestrator")
    ids, _x = q.list_uncompleted()
    priorities = np.random.default_rng(1).permutation(len(ids)).tolist()
    t0 = time.perf_counter()
    q.reorder(dict(zip(ids, priorities)))
    seconds = time.perf_counter() - t0
    with q.session() as s:
        changed = sum(1 for row in s.query(SuperintendentData).all() if row.priority is not None)
    result = {"reorder_seconds": seconds, "items": len(ids), "rows_with_priority": changed}
    q.engine.dispose()
with open(out, "w") as fh:
    json.dump(result, fh)
'''


@contextmanager
def fresh_schema(db_url: str) -> Iterator[str]:
    """A new, empty schema in ``db_url``'s database (dropped afterwards); yields a URL that uses it."""
    schema = f"peer_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(db_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
    try:
        yield f"{db_url}?options=-csearch_path%3D{schema}"
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")
        admin.dispose()


class Peer:
    def __init__(self, python: str, workdir: Path) -> None:
        self.python = python
        self.workdir = workdir
        self.script = workdir / "peer_worker.py"
        self.script.write_text(PEER_WORKER)

    def start(self, mode: str, args: dict, tag: str) -> tuple[subprocess.Popen, Path]:
        out = self.workdir / f"{mode}-{tag}.json"
        proc = subprocess.Popen([self.python, str(self.script), mode, json.dumps(args), str(out)], cwd=self.workdir,
                                env=common.clean_env(), stderr=subprocess.PIPE, text=True)
        return proc, out

    def run(self, mode: str, args: dict, tag: str = "0", timeout: float = 1800) -> dict:
        return self.wait([self.start(mode, args, tag)], timeout)[0]

    @staticmethod
    def wait(started: list[tuple[subprocess.Popen, Path]], timeout: float) -> list[dict]:
        results = []
        for proc, out in started:
            _, err = proc.communicate(timeout=timeout)
            if proc.returncode != 0:
                raise RuntimeError(f"peer worker failed ({proc.returncode}):\n{err[-3000:]}")
            results.append(json.loads(out.read_text()))
        return results


def digits_like(n: int) -> list[np.ndarray]:
    return list(np.random.default_rng(0).integers(0, 16, (n, 8, 8)))


def handed_to_two(claims: dict[str, list[int]]) -> int:
    """Items claimed (popped) by more than one worker."""
    owners: dict[int, set[str]] = defaultdict(set)
    for worker, ids in claims.items():
        for item_id in ids:
            owners[item_id].add(worker)
    return sum(1 for ws in owners.values() if len(ws) > 1)


def run_peer(peer: Peer, db_url: str, n_items: int, n_workers: int, duration: float) -> dict:
    with fresh_schema(db_url) as url:
        setup = peer.run("setup", {"url": url, "n": n_items})
        barrier = peer.workdir / f"barrier-peer-{uuid.uuid4().hex[:6]}"
        barrier.mkdir()
        procs = [peer.start("label", {"url": url, "worker": f"w{k}", "seed": k, "barrier": str(barrier), "n_workers": n_workers,
                                      "duration": duration, "options": OPTIONS}, f"w{k}") for k in range(n_workers)]
        workers = peer.wait(procs, timeout=duration + 600)
        engine = sa.create_engine(url)
        with engine.connect() as conn:
            completed = conn.exec_driver_sql("SELECT count(*) FROM superintendentdata WHERE completed_at IS NOT NULL").scalar_one()
        engine.dispose()
    submits = sum(len(w["pops"]) for w in workers)
    wall = max(w["finished"] for w in workers) - min(w["started"] for w in workers)
    return {"side": "original 0.6.0", "workers": n_workers, "items": n_items, "enqueue_seconds": round(setup["enqueue_seconds"], 2),
            "labels": submits, "items_per_second": round(submits / wall, 1), "wall_seconds": round(wall, 2),
            **common.percentiles([x for w in workers for x in w["latencies"]]),
            "per_worker": [len(w["pops"]) for w in workers],
            "handed_to_two": handed_to_two({w["worker"]: [p[0] for p in w["pops"]] for w in workers}),
            "distinct_items_labelled": int(completed), "labels_overwritten": submits - int(completed)}


def run_ours(db_url: str, n_items: int, n_workers: int, duration: float, workdir: Path) -> dict:
    with fresh_schema(db_url) as url:
        engine = make_engine(url)
        init_db(engine)
        with session_scope(engine) as s:
            project = queue.create_project(s, PROJECT, options=OPTIONS)
        t0 = time.perf_counter()
        with session_scope(engine) as s:
            queue.add_items(s, project, digits_like(n_items))
        add_seconds = time.perf_counter() - t0
        engine.dispose()
        barrier = workdir / f"barrier-ours-{uuid.uuid4().hex[:6]}"
        procs = []
        for k in range(n_workers):
            out = workdir / f"ours-{n_workers}-{k}.json"
            cmd = [sys.executable, "-m", "superintendent.simulate", url, PROJECT, f"labeller{k}", "--duration", str(duration),
                   "--max-labels", str(n_items), "--seed", str(k), "--barrier", str(barrier), str(n_workers), "--out", str(out)]
            procs.append((subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True), out))
        events = []
        for proc, out in procs:
            _, err = proc.communicate(timeout=duration + 600)
            if proc.returncode != 0:
                raise RuntimeError(f"labeller failed ({proc.returncode}):\n{err[-3000:]}")
            events.append(json.loads(out.read_text()))
        engine = make_engine(url)
        with engine.connect() as conn:
            annotations = conn.exec_driver_sql("SELECT count(*), count(DISTINCT item_id) FROM sp_annotation").one()
        engine.dispose()
    submits = sum(sum(1 for row in e["log"] if row[0] == "submit") for e in events)
    wall = max(e["finished"] for e in events) - min(e["started"] for e in events)
    return {"side": "ours", "workers": n_workers, "items": n_items, "enqueue_seconds": round(add_seconds, 2), "labels": submits,
            "items_per_second": round(submits / wall, 1), "wall_seconds": round(wall, 2),
            **common.percentiles([x for e in events for x in e["latencies"][1:]]),
            "per_worker": [sum(1 for row in e["log"] if row[0] == "submit") for e in events],
            "handed_to_two": handed_to_two({e["user"]: [row[1] for row in e["log"] if row[0] == "claim"] for e in events}),
            "distinct_items_labelled": int(annotations[1]), "labels_overwritten": int(annotations[0]) - int(annotations[1])}


def reorder_peer(peer: Peer, db_url: str, n_items: int) -> dict:
    with fresh_schema(db_url) as url:
        peer.run("setup", {"url": url, "n": n_items})
        r = peer.run("reorder", {"url": url})
    if r["rows_with_priority"] != n_items:
        raise RuntimeError(f"the peer's reorder set {r['rows_with_priority']} of {n_items} priorities")
    return {"side": "original 0.6.0", "items": n_items, "seconds": round(r["reorder_seconds"], 3)}


def reorder_ours(db_url: str, n_items: int) -> dict:
    with fresh_schema(db_url) as url:
        engine = make_engine(url)
        init_db(engine)
        with session_scope(engine) as s:
            project = queue.create_project(s, PROJECT, options=OPTIONS)
            queue.add_items(s, project, digits_like(n_items))
        with engine.connect() as conn:
            ids = [r[0] for r in conn.exec_driver_sql("SELECT id FROM sp_item ORDER BY id")]
        priorities = np.random.default_rng(1).permutation(len(ids)).astype(float)
        t0 = time.perf_counter()
        changed = queue.reprioritise(engine, project, ids, priorities)
        seconds = time.perf_counter() - t0
        engine.dispose()
    if changed != n_items:
        raise RuntimeError(f"reprioritise wrote {changed} of {n_items} rows")
    return {"side": "ours", "items": n_items, "seconds": round(seconds, 4)}


def markdown(runs: list[dict], reorders: list[dict]) -> str:
    lines = ["| queue | workers | items | enqueue (s) | labels | items/s | p50 ms | p99 ms | per worker (min-max) "
             "| handed to two workers | labels overwritten |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in runs:
        lines.append(f"| {r['side']} | {r['workers']} | {r['items']:,} | {r['enqueue_seconds']:.1f} | {r['labels']:,} "
                     f"| {r['items_per_second']:,.0f} | {r['p50_ms']:.1f} | {r['p99_ms']:.1f} | {min(r['per_worker'])}-{max(r['per_worker'])} "
                     f"| {r['handed_to_two']:,} | {r['labels_overwritten']:,} |")
    lines += ["", "| reprioritise | items | seconds |", "| --- | ---: | ---: |"]
    lines += [f"| {r['side']} | {r['items']:,} | {r['seconds']:.3f} |" for r in reorders]
    return "\n".join(lines)


def plot(runs: list[dict], path: Path) -> None:
    import plotly.graph_objects as go

    fig = go.Figure()
    for side in ("ours", "original 0.6.0"):
        rs = [r for r in runs if r["side"] == side]
        fig.add_bar(x=[f"{r['workers']} worker{'s' if r['workers'] > 1 else ''}" for r in rs], y=[r["items_per_second"] for r in rs],
                    name=side, text=[f"{r['items_per_second']:.0f}/s, {r['handed_to_two']} dup." for r in rs], textposition="outside")
    fig.update_layout(title="Labelling throughput on one PostgreSQL server (dup. = items handed to two workers)",
                      yaxis_title="items labelled per second", barmode="group")
    common.write_png(fig, path, width=800, height=450)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, about a minute")
    parser.add_argument("--items", type=int, help="items per labelling run (default 100,000; 3,000 with --quick)")
    parser.add_argument("--workers", type=int, nargs="+", help="worker counts (default 1 8; 1 4 with --quick)")
    parser.add_argument("--duration", type=float, help="seconds of labelling per run (default 20; 4 with --quick)")
    parser.add_argument("--reorder-items", type=int, help="items to reprioritise (default 40,000; 5,000 with --quick)")
    parser.add_argument("--server", default=common.DEFAULT_SERVER, help="PostgreSQL URL without a database name")
    parser.add_argument("--database", default="bench_peer")
    parser.add_argument("--png", help="write the throughput plot here (default: docs/images/bench-peer-original.png on full runs)")
    args = parser.parse_args()
    n_items = args.items or (3_000 if args.quick else 100_000)
    workers = args.workers or ([1, 4] if args.quick else [1, 8])
    duration = args.duration or (4.0 if args.quick else 20.0)
    n_reorder = args.reorder_items or (5_000 if args.quick else 40_000)

    venv = common.ensure_venv(VENV, REQUIREMENTS, CHECK)
    db_url = common.ensure_database(args.server, args.database)
    runs, reorders = [], []
    with tempfile.TemporaryDirectory(prefix="sp-peer-") as tmp:
        peer = Peer(venv["python"], Path(tmp))
        for n in workers:
            common.log(f"original 0.6.0: {n_items:,} items, {n} workers, {duration:g} s")
            runs.append(run_peer(peer, db_url, n_items, n, duration))
            common.log(f"ours: {n_items:,} items, {n} workers, {duration:g} s")
            runs.append(run_ours(db_url, n_items, n, duration, Path(tmp)))
        common.log(f"reprioritise {n_reorder:,} items: original 0.6.0")
        reorders.append(reorder_peer(peer, db_url, n_reorder))
        common.log(f"reprioritise {n_reorder:,} items: ours")
        reorders.append(reorder_ours(db_url, n_reorder))
    speedup = reorders[0]["seconds"] / reorders[1]["seconds"]
    print(markdown(runs, reorders))
    print(f"\nreprioritise: ours is {speedup:.0f}x faster than the peer's reorder (target >= 50x: {'met' if speedup >= 50 else 'MISSED'})")
    for ours, theirs in zip(runs[1::2], runs[0::2]):
        print(f"{ours['workers']} workers: ours {ours['items_per_second'] / theirs['items_per_second']:.2f}x the peer's items/s; "
              f"handed to two workers: ours {ours['handed_to_two']}, peer {theirs['handed_to_two']}")
    out = common.save_results("peer-original", {"settings": vars(args) | {"items": n_items, "workers": workers, "duration": duration},
                                                "postgresql": common.postgres_version(db_url), "venv": venv, "runs": runs,
                                                "reorder": reorders, "reorder_speedup": round(speedup, 1)})
    common.log(f"results: {out}")
    png = args.png or (None if args.quick else str(common.IMAGES / "bench-peer-original.png"))
    if png:
        plot(runs, Path(png))
        common.log(f"plot: {png}")


if __name__ == "__main__":
    main()
