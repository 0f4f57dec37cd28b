"""Queue benchmark: labels per second and transaction latency, SQLite vs PostgreSQL.

What it measures, for each database and each number of labellers:

* **add**: time to add N digits-like items (8x8 integer arrays) with
  ``queue.add_items`` in one transaction, and items per second;
* **labelling**: n labeller processes (``python -m superintendent.simulate``,
  no think time, no skips) start together at a barrier and call
  ``submit_and_claim_next`` as fast as they can for ``--duration`` seconds.
  Reported: labels per second overall (all submits / wall time of the
  labelling phase), p50 / p99 / max latency of the submit-and-claim-next
  transactions, labels per labeller (min-max, to spot starvation), and the
  number of items handed out to two different labellers (must be 0).

Every run gets a fresh database: a new SQLite file in a temporary folder, or
a new PostgreSQL schema (``CREATE SCHEMA bench_...``, dropped afterwards).

Run by hand, from the repository root (not part of the test suite)::

    python bench/queue.py --quick        # 5,000 items, 4 s per run, about a minute
    python bench/queue.py                # 100,000 items, 1 and 8 labellers, 20 s per run
    python bench/queue.py --databases sqlite --labellers 1 2 4 --duration 10

PostgreSQL: ``--postgres-url``, else ``SUPERINTENDENT_BENCH_POSTGRES_URL``, else
``SUPERINTENDENT_TEST_POSTGRES_URL``, else
``postgresql+psycopg2://postgres@127.0.0.1:5432/test``.

Prints a markdown table and writes the results as JSON to
``bench/results/queue-<timestamp>.json``.
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as a script, this file's folder is first on sys.path and this file would
# shadow the standard library's ``queue`` module: take the folder off.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]

import argparse  # noqa: E402
import datetime as dt  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import platform  # noqa: E402
import sqlite3  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import uuid  # noqa: E402
from collections import defaultdict  # noqa: E402
from collections.abc import Iterator  # noqa: E402
from contextlib import contextmanager  # noqa: E402
from dataclasses import asdict, dataclass  # noqa: E402

import numpy as np  # noqa: E402
import sqlalchemy as sa  # noqa: E402

from superintendent import queue  # noqa: E402
from superintendent.store import Annotation, init_db, make_engine, session_scope  # noqa: E402

DEFAULT_POSTGRES_URL = "postgresql+psycopg2://postgres@127.0.0.1:5432/test"
PROJECT = "bench"
RESULTS_DIR = _HERE / "results"


@dataclass
class RunResult:
    database: str
    n_labellers: int
    n_items: int
    duration: float
    add_seconds: float
    add_items_per_second: float
    wall_seconds: float
    labels: int
    labels_per_second: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    mean_ms: float
    over_1s: int  # transactions that took longer than a second
    transaction_share: float  # time inside transactions / (labellers x wall time); the rest is client-side
    labels_per_labeller: list[int]
    duplicate_handouts: int
    annotations_in_db: int
    queue_emptied: bool


# --------------------------------------------------------------------------- databases


def postgres_url(cli_url: str | None) -> str:
    return (cli_url or os.environ.get("SUPERINTENDENT_BENCH_POSTGRES_URL")
            or os.environ.get("SUPERINTENDENT_TEST_POSTGRES_URL") or DEFAULT_POSTGRES_URL)


@contextmanager
def fresh_database(kind: str, base_postgres_url: str, workdir: Path) -> Iterator[str]:
    """The URL of an empty database: a new SQLite file, or a new PostgreSQL schema dropped afterwards."""
    if kind == "sqlite":
        yield f"sqlite:///{workdir / 'bench.db'}"
        return
    schema = f"bench_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(base_postgres_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
    sep = "&" if "?" in base_postgres_url else "?"
    try:
        yield f"{base_postgres_url}{sep}options=-csearch_path%3D{schema}"
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")
        admin.dispose()


def database_versions(kinds: list[str], base_postgres_url: str) -> dict[str, str]:
    versions = {"sqlite": sqlite3.sqlite_version}
    if "postgresql" in kinds:
        engine = sa.create_engine(base_postgres_url)
        with engine.connect() as conn:
            versions["postgresql"] = conn.exec_driver_sql("SELECT version()").scalar_one()
        engine.dispose()
    return versions


# --------------------------------------------------------------------------- one run


def digits_like(n_items: int) -> list[np.ndarray]:
    """n distinct-enough 8x8 images with values 0-15, like sklearn's digits."""
    return list(np.random.default_rng(0).integers(0, 16, (n_items, 8, 8)))


def populate(url: str, n_items: int) -> float:
    """Create the schema and a project with ``n_items`` items; returns the seconds the add took."""
    engine = make_engine(url)
    init_db(engine)
    items = digits_like(n_items)
    with session_scope(engine) as s:
        queue.create_project(s, PROJECT, options=["a", "b", "c"])
    t0 = time.perf_counter()
    with session_scope(engine) as s:
        result = queue.add_items(s, queue.get_project(s, PROJECT), items)
    seconds = time.perf_counter() - t0
    engine.dispose()
    if result.added != n_items:
        raise RuntimeError(f"added {result.added} of {n_items} items")
    return seconds


def run_labellers(url: str, n: int, duration: float, max_labels: int, workdir: Path) -> list[dict]:
    """Start n simulated labellers together, wait for them, return their JSON event logs."""
    barrier = workdir / "ready"
    procs = []
    for k in range(n):
        out = workdir / f"labeller{k}.json"
        args = [sys.executable, "-m", "superintendent.simulate", url, PROJECT, f"labeller{k}",
                "--duration", str(duration), "--max-labels", str(max_labels), "--seed", str(k),
                "--barrier", str(barrier), str(n), "--out", str(out)]
        procs.append((subprocess.Popen(args, stderr=subprocess.PIPE, text=True), out))
    results = []
    for proc, out in procs:
        _, err = proc.communicate(timeout=duration + 300)
        if proc.returncode != 0:
            raise RuntimeError(f"labeller failed ({proc.returncode}):\n{err}")
        results.append(json.loads(out.read_text()))
    return results


def count_annotations(url: str) -> int:
    engine = make_engine(url)
    with session_scope(engine, write=False) as s:
        n = s.execute(sa.select(sa.func.count()).select_from(Annotation)).scalar_one()
    engine.dispose()
    return int(n)


# --------------------------------------------------------------------------- figures


def duplicate_handouts(events: list[dict]) -> int:
    """Items claimed by more than one labeller (with one annotation per item this must be 0)."""
    claimers: dict[int, set[str]] = defaultdict(set)
    for labeller in events:
        for kind, item_id, _label, _t in labeller["log"]:
            if kind == "claim":
                claimers[item_id].add(labeller["user"])
    return sum(1 for users in claimers.values() if len(users) > 1)


def submit_latencies(labeller: dict) -> list[float]:
    """The submit-and-claim-next latencies: every transaction but the first (a plain claim)."""
    return labeller["latencies"][1:]


def summarise(database: str, n_items: int, duration: float, add_seconds: float,
              events: list[dict], annotations_in_db: int) -> RunResult:
    per_labeller = [sum(1 for row in e["log"] if row[0] == "submit") for e in events]
    labels = sum(per_labeller)
    wall = max(e["finished"] for e in events) - min(e["started"] for e in events)
    latencies_ms = np.array([x for e in events for x in submit_latencies(e)]) * 1000
    p50, p99, top = (np.percentile(latencies_ms, [50, 99, 100]) if latencies_ms.size else (np.nan,) * 3)
    return RunResult(
        database=database, n_labellers=len(events), n_items=n_items, duration=duration,
        add_seconds=round(add_seconds, 3), add_items_per_second=round(n_items / add_seconds, 1),
        wall_seconds=round(wall, 3), labels=labels, labels_per_second=round(labels / wall, 1),
        p50_ms=round(float(p50), 2), p99_ms=round(float(p99), 2), max_ms=round(float(top), 2),
        mean_ms=round(float(latencies_ms.mean()), 2) if latencies_ms.size else float("nan"),
        over_1s=int((latencies_ms > 1000).sum()),
        transaction_share=round(float(latencies_ms.sum()) / 1000 / (wall * len(events)), 3),
        labels_per_labeller=per_labeller, duplicate_handouts=duplicate_handouts(events),
        annotations_in_db=annotations_in_db, queue_emptied=labels >= n_items,
    )


def run_one(database: str, n_labellers: int, n_items: int, duration: float, base_postgres_url: str) -> RunResult:
    with tempfile.TemporaryDirectory(prefix="sp-bench-") as tmp, fresh_database(database, base_postgres_url, Path(tmp)) as url:
        add_seconds = populate(url, n_items)
        events = run_labellers(url, n_labellers, duration, max_labels=n_items, workdir=Path(tmp))
        return summarise(database, n_items, duration, add_seconds, events, count_annotations(url))


def markdown_table(results: list[RunResult]) -> str:
    rows = ["| database | labellers | items | add (s) | add items/s | labels | labels/s | p50 ms | p99 ms | max ms "
            "| labels per labeller (min-max) | duplicate hand-outs |",
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in results:
        spread = f"{min(r.labels_per_labeller)}-{max(r.labels_per_labeller)}"
        rows.append(f"| {r.database} | {r.n_labellers} | {r.n_items:,} | {r.add_seconds:.1f} | {r.add_items_per_second:,.0f} "
                    f"| {r.labels:,} | {r.labels_per_second:,.0f} | {r.p50_ms:.1f} | {r.p99_ms:.1f} | {r.max_ms:.1f} "
                    f"| {spread} | {r.duplicate_handouts} |")
    return "\n".join(rows)


def warnings_for(r: RunResult) -> list[str]:
    found = []
    if r.duplicate_handouts:
        found.append(f"{r.duplicate_handouts} items handed to two labellers")
    if r.annotations_in_db != r.labels:
        found.append(f"{r.labels} submits logged but {r.annotations_in_db} annotations in the database")
    if r.queue_emptied:
        found.append("the queue ran empty before the time was up: labels/s is a lower bound")
    return [f"{r.database}, {r.n_labellers} labellers: {w}" for w in found]


# --------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="5,000 items and 4 s per run (about a minute in all)")
    parser.add_argument("--items", type=int, default=None, help="items per run (default 100,000; 5,000 with --quick)")
    parser.add_argument("--labellers", type=int, nargs="+", default=[1, 8], help="labeller counts to run (default 1 8)")
    parser.add_argument("--duration", type=float, default=None, help="seconds of labelling per run (default 20; 4 with --quick)")
    parser.add_argument("--databases", nargs="+", choices=["sqlite", "postgresql"], default=["sqlite", "postgresql"])
    parser.add_argument("--postgres-url", default=None)
    args = parser.parse_args(argv)
    args.items = args.items or (5_000 if args.quick else 100_000)
    args.duration = args.duration or (4.0 if args.quick else 20.0)
    return args


def machine() -> dict[str, object]:
    return {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()}


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    pg_url = postgres_url(args.postgres_url)
    started = dt.datetime.now(dt.timezone.utc)
    versions = database_versions(args.databases, pg_url)
    results = []
    for database in args.databases:
        for n in args.labellers:
            print(f"{database}: {args.items:,} items, {n} labellers, {args.duration:g} s ...", file=sys.stderr, flush=True)
            results.append(run_one(database, n, args.items, args.duration, pg_url))
    print(markdown_table(results))
    for warning in (w for r in results for w in warnings_for(r)):
        print(f"WARNING: {warning}", file=sys.stderr)
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    out = RESULTS_DIR / f"queue-{started:%Y%m%dT%H%M%SZ}.json"
    out.write_text(json.dumps({"started": started.isoformat(), "machine": machine(), "versions": versions,
                               "settings": {k: v for k, v in vars(args).items() if k != "postgres_url"},
                               "results": [asdict(r) for r in results]}, indent=2))
    print(f"results written to {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
