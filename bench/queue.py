"""Queue benchmark: labels per second and latency against pgbench's reference, SQLite and PostgreSQL.

What it measures, in one run on one machine:

* **reference**: ``pgbench`` (PostgreSQL's own benchmark, its built-in
  TPC-B-like script, ``-M prepared``) against the same server, in its own
  database (``sp_pgbench``, ``pgbench -i -s 10``), with 1, 8 and 32 clients:
  transactions per second, p50 / p99 latency. One durable commit per
  transaction, like one label: the physical limit of the server. pgbench
  with 8 clients is run again at the end to show how much the machine drifted.
* **labelling**: n labeller processes (``python -m superintendent.simulate``,
  no think time, no skips) start together at a barrier and call
  ``queue.act(..., Action.submit, ...)`` as fast as they can for ``--duration`` seconds,
  with 10k, 100k and 1M items queued (PostgreSQL at 1, 8, 32 labellers;
  SQLite at 1 and 4 labellers with 100k items). Reported: labels per second
  (all submits / wall time of the labelling phase), the ratio to pgbench's
  tps at the same number of clients, p50 / p99 / max latency of the
  submit-and-claim-next transactions, labels per labeller (min-max, to spot
  starvation), and the number of items handed out to two different
  labellers (must be 0).

Each size gets a fresh database (a new SQLite file, or a new PostgreSQL
schema, dropped afterwards); sizes up to 100k are refilled for every run, the
1M-item queue is filled once and ``VACUUM ANALYZE``-d between runs (a run
labels a few percent of it).

Run by hand, from the repository root (not part of the test suite)::

    python bench/queue.py --quick        # 10,000 items, short runs: about a minute
    python bench/queue.py                # the full run, about 10 minutes
    python bench/queue.py --items 100000 --labellers 8 --sqlite-labellers

PostgreSQL: ``--postgres-url``, else ``SUPERINTENDENT_BENCH_POSTGRES_URL``, else
``SUPERINTENDENT_TEST_POSTGRES_URL``, else
``postgresql+psycopg2://postgres@127.0.0.1:5432/test``. pgbench comes from
``PATH`` (or ``--pgbench``); ``--no-pgbench`` leaves the reference out.

Prints markdown tables and writes the results as JSON to
``bench/results/queue-<timestamp>.json`` (``--json`` to choose; the folder
``SUPERINTENDENT_BENCH_RESULTS`` names instead of bench/results, when set), plots to
``docs/images/bench-queue-*.png`` (full runs only; ``--plots``/``--no-plots``).
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
RESULTS_DIR = Path(os.environ.get("SUPERINTENDENT_BENCH_RESULTS") or _HERE / "results")  # JSON and plots' HTML


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
    reference_tps: float | None = None  # pgbench tps with as many clients as labellers, same run (PostgreSQL)
    ratio_to_reference: float | None = None  # labels_per_second / reference_tps


def bench_module(name: str):  # noqa: ANN201 - another script of bench/, loaded by path (bench/ is not a package)
    import importlib.util

    key = f"sp_bench_{name}"
    if key not in sys.modules:
        spec = importlib.util.spec_from_file_location(key, _HERE / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[key] = module
        spec.loader.exec_module(module)
    return sys.modules[key]


def write_report(report: dict, name: str, started: dt.datetime, path: str | None = None) -> Path:
    """Write a run's report as JSON to ``path`` or ``<RESULTS_DIR>/<name>-<time>.json``; returns where."""
    out = Path(path) if path else RESULTS_DIR / f"{name}-{started:%Y%m%dT%H%M%SZ}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    print(f"results written to {out}", file=sys.stderr)
    return out


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


def populate(url: str, n_items: int, *, batch: int = 100_000, project: str = PROJECT) -> float:
    """Create the schema and a project with ``n_items`` items; returns the seconds the add took.

    Items are made and added ``batch`` at a time (one transaction each), so a
    1M-item queue does not need all its arrays in memory at once.
    """
    engine = make_engine(url)
    init_db(engine)
    with session_scope(engine) as s:
        queue.create_project(s, project, options=["a", "b", "c"])
    rng = np.random.default_rng(0)
    seconds = 0.0
    added = 0
    for start in range(0, n_items, batch):
        items = list(rng.integers(0, 16, (min(batch, n_items - start), 8, 8)))
        t0 = time.perf_counter()
        with session_scope(engine) as s:
            added += queue.add_items(s, queue.get_project(s, project), items).added
        seconds += time.perf_counter() - t0
    engine.dispose()
    if added != n_items:
        raise RuntimeError(f"added {added} of {n_items} items")
    return seconds


def vacuum(url: str) -> None:
    """``VACUUM ANALYZE`` the item and annotation tables (PostgreSQL), between runs on one database."""
    engine = make_engine(url)
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("VACUUM ANALYZE sp_item")
            conn.exec_driver_sql("VACUUM ANALYZE sp_annotation")
    engine.dispose()


def run_labellers(url: str, n: int, duration: float, max_labels: int, workdir: Path, *, project: str = PROJECT) -> list[dict]:
    """Start n simulated labellers together, wait for them, return their JSON event logs."""
    barrier = workdir / f"ready-{uuid.uuid4().hex[:8]}"
    procs = []
    for k in range(n):
        out = workdir / f"labeller{k}.json"
        args = [sys.executable, "-m", "superintendent.simulate", url, project, f"labeller{k}",
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


def run_size(database: str, n_items: int, labellers: list[int], duration: float, base_postgres_url: str,
             refill_up_to: int) -> list[RunResult]:
    """Runs with ``n_items`` queued at each labeller count; refills the queue per run up to ``refill_up_to`` items."""
    results = []
    with tempfile.TemporaryDirectory(prefix="sp-bench-") as tmp:
        workdir = Path(tmp)
        if n_items > refill_up_to:
            with fresh_database(database, base_postgres_url, workdir) as url:
                print(f"{database}: filling the queue with {n_items:,} items ...", file=sys.stderr, flush=True)
                add_seconds = populate(url, n_items)
                for n in labellers:
                    vacuum(url)
                    before = count_annotations(url)
                    print(f"{database}: {n_items:,} items, {n} labellers, {duration:g} s ...", file=sys.stderr, flush=True)
                    events = run_labellers(url, n, duration, max_labels=n_items, workdir=workdir)
                    results.append(summarise(database, n_items, duration, add_seconds, events, count_annotations(url) - before))
            return results
        for n in labellers:
            sub = workdir / f"run{n}"
            sub.mkdir()
            with fresh_database(database, base_postgres_url, sub) as url:
                add_seconds = populate(url, n_items)
                print(f"{database}: {n_items:,} items, {n} labellers, {duration:g} s ...", file=sys.stderr, flush=True)
                events = run_labellers(url, n, duration, max_labels=n_items, workdir=sub)
                results.append(summarise(database, n_items, duration, add_seconds, events, count_annotations(url)))
    return results


def markdown_table(results: list[RunResult]) -> str:
    rows = ["| database | items | labellers | labels/s | pgbench tps (same clients) | ratio | p50 ms | p99 ms | max ms "
            "| labels | labels per labeller (min-max) | duplicate hand-outs | add items/s |",
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in results:
        spread = f"{min(r.labels_per_labeller)}-{max(r.labels_per_labeller)}"
        ref = "" if r.reference_tps is None else f"{r.reference_tps:,.0f}"
        ratio = "" if r.ratio_to_reference is None else f"{r.ratio_to_reference:.0%}"
        rows.append(f"| {r.database} | {r.n_items:,} | {r.n_labellers} | {r.labels_per_second:,.0f} | {ref} | {ratio} "
                    f"| {r.p50_ms:.1f} | {r.p99_ms:.1f} | {r.max_ms:.1f} | {r.labels:,} | {spread} | {r.duplicate_handouts} "
                    f"| {r.add_items_per_second:,.0f} |")
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


# --------------------------------------------------------------------------- the pgbench reference


@dataclass
class PgbenchResult:
    clients: int
    seconds: float
    scale: int
    tps: float
    transactions: int
    p50_ms: float
    p99_ms: float
    mean_ms: float
    when: str  # "before" (the reference) or "after" (drift check at the end)


def _pg_parts(url: str) -> dict[str, str]:
    u = sa.engine.make_url(url)
    return {"host": u.host or "127.0.0.1", "port": str(u.port or 5432), "user": u.username or "postgres",
            "password": u.password or "", "database": u.database or "postgres"}


def _pgbench_env(parts: dict[str, str]) -> dict[str, str]:
    env = dict(os.environ)
    if parts["password"]:
        env["PGPASSWORD"] = parts["password"]
    return env


PGBENCH_DB = "sp_pgbench"


def pgbench_init(base_postgres_url: str, scale: int, pgbench: str) -> None:
    """Create the ``sp_pgbench`` database on the server if missing, and ``pgbench -i -s scale`` it."""
    admin = sa.create_engine(base_postgres_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        if conn.exec_driver_sql("SELECT 1 FROM pg_database WHERE datname = %(d)s", {"d": PGBENCH_DB}).first() is None:
            conn.exec_driver_sql(f"CREATE DATABASE {PGBENCH_DB}")
    admin.dispose()
    parts = _pg_parts(base_postgres_url)
    subprocess.run([pgbench, "-h", parts["host"], "-p", parts["port"], "-U", parts["user"], "-i", "-s", str(scale), "-q", PGBENCH_DB],
                   check=True, capture_output=True, text=True, env=_pgbench_env(parts))


def pgbench_run(base_postgres_url: str, clients: int, seconds: float, scale: int, pgbench: str, when: str = "before") -> PgbenchResult:
    """pgbench's built-in TPC-B-like script, prepared statements, per-transaction log for the percentiles."""
    parts = _pg_parts(base_postgres_url)
    with tempfile.TemporaryDirectory(prefix="sp-pgbench-") as tmp:
        args = [pgbench, "-h", parts["host"], "-p", parts["port"], "-U", parts["user"], "-c", str(clients),
                "-j", str(min(clients, 2)), "-T", str(max(1, round(seconds))), "-M", "prepared", "-n",
                "-l", f"--log-prefix={tmp}/tx", PGBENCH_DB]
        done = subprocess.run(args, check=True, capture_output=True, text=True, env=_pgbench_env(parts))
        latencies = []
        for log in Path(tmp).glob("tx*"):
            for line in log.read_text().splitlines():
                fields = line.split()
                if len(fields) >= 3 and fields[2].isdigit():
                    latencies.append(int(fields[2]) / 1000)  # microseconds -> ms
    tps = next(float(line.split("=")[1].split()[0]) for line in done.stdout.splitlines() if line.startswith("tps ="))
    lat = np.array(latencies) if latencies else np.array([np.nan])
    p50, p99 = np.percentile(lat, [50, 99])
    return PgbenchResult(clients=clients, seconds=seconds, scale=scale, tps=round(tps, 1), transactions=len(latencies),
                         p50_ms=round(float(p50), 2), p99_ms=round(float(p99), 2), mean_ms=round(float(lat.mean()), 2), when=when)


def pgbench_table(runs: list[PgbenchResult]) -> str:
    rows = ["| pgbench clients | when | tps | p50 ms | p99 ms | transactions |", "| ---: | --- | ---: | ---: | ---: | ---: |"]
    rows += [f"| {r.clients} | {r.when} | {r.tps:,.0f} | {r.p50_ms:.2f} | {r.p99_ms:.2f} | {r.transactions:,} |" for r in runs]
    return "\n".join(rows)


# --------------------------------------------------------------------------- targets and plots


def targets(results: list[RunResult], reference_at: int = 8) -> list[dict[str, object]]:
    """The issue's targets, checked on the PostgreSQL runs of this run."""
    pg = [r for r in results if r.database == "postgresql"]
    found: list[dict[str, object]] = []
    for r in pg:
        if r.n_labellers == reference_at and r.ratio_to_reference is not None:
            found.append({"target": f"labels/s at {reference_at} labellers >= 65% of pgbench tps ({r.n_items:,} items)",
                          "value": f"{r.ratio_to_reference:.0%}", "met": r.ratio_to_reference >= 0.65})
    for r in pg:
        found.append({"target": f"p99 <= 10 ms ({r.n_items:,} items, {r.n_labellers} labellers)",
                      "value": f"{r.p99_ms:.1f} ms", "met": r.p99_ms <= 10})
    by = {(r.n_items, r.n_labellers): r for r in pg}
    sizes = sorted({r.n_items for r in pg})
    if len(sizes) > 1:
        for n in sorted({r.n_labellers for r in pg}):
            small, big = by.get((sizes[0], n)), by.get((sizes[-1], n))
            if small and big and small.p99_ms > 0:
                growth = big.p99_ms / small.p99_ms
                found.append({"target": f"p99 at {sizes[-1]:,} items <= 1.5x p99 at {sizes[0]:,} ({n} labellers)",
                              "value": f"{growth:.2f}x", "met": growth <= 1.5})
    found.append({"target": "zero duplicate hand-outs (all runs)", "value": str(sum(r.duplicate_handouts for r in results)),
                  "met": all(r.duplicate_handouts == 0 for r in results)})
    return found


def plot(results: list[RunResult], reference: list[PgbenchResult], png: bool) -> list[dict[str, str]]:
    import plotly.graph_objects as go

    plots = bench_module("plots")
    png_dir = plots.PNG_DIR if png else None
    written = []
    pg = [r for r in results if r.database == "postgresql"]
    ref = {r.clients: r for r in reference if r.when == "before"}
    fig = go.Figure()
    counts = sorted({r.n_labellers for r in pg})
    if ref:
        fig.add_bar(name="pgbench TPC-B-like (tps)", x=[str(n) for n in counts], y=[ref[n].tps if n in ref else None for n in counts],
                    marker_color="#888")
    for size in sorted({r.n_items for r in pg}):
        rows = {r.n_labellers: r for r in pg if r.n_items == size}
        fig.add_bar(name=f"labels/s, {size:,} items", x=[str(n) for n in counts],
                    y=[rows[n].labels_per_second if n in rows else None for n in counts],
                    text=[f"{rows[n].ratio_to_reference:.0%}" if n in rows and rows[n].ratio_to_reference else "" for n in counts],
                    textposition="outside")
    fig.update_layout(title="PostgreSQL: labels/s vs pgbench tps, same run (bar text: ratio to pgbench)", barmode="group",
                      xaxis_title="labellers (pgbench: clients)", yaxis_title="per second")
    written.append(plots.save(fig, "queue-throughput", png_dir=png_dir))
    fig = go.Figure()
    palette = ["#1f77b4", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b"]
    for k, n in enumerate(counts):
        rows = sorted((r for r in pg if r.n_labellers == n), key=lambda r: r.n_items)
        colour = palette[k % len(palette)]
        fig.add_scatter(name=f"{n} labellers, p99", x=[r.n_items for r in rows], y=[r.p99_ms for r in rows], mode="lines+markers",
                        line=dict(color=colour))
        fig.add_scatter(name=f"{n} labellers, p50", x=[r.n_items for r in rows], y=[r.p50_ms for r in rows], mode="lines+markers",
                        line=dict(dash="dot", color=colour))
    fig.add_hline(y=10, line_dash="dash", line_color="red", annotation_text="target p99 10 ms", annotation_position="top left")
    fig.update_layout(title="PostgreSQL: submit-and-claim-next latency by queue size", xaxis_type="log",
                      xaxis_title="items queued", yaxis_title="ms")
    written.append(plots.save(fig, "queue-latency", png_dir=png_dir))
    return written


# --------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10,000 items, 3 s runs, pgbench -s 1 for 3 s (about a minute)")
    parser.add_argument("--items", type=int, nargs="+", default=None, help="queue sizes on PostgreSQL (default 10k 100k 1M)")
    parser.add_argument("--labellers", type=int, nargs="+", default=None, help="PostgreSQL labeller counts (default 1 8 32)")
    parser.add_argument("--sqlite-items", type=int, default=None, help="queue size on SQLite (default 100,000)")
    parser.add_argument("--sqlite-labellers", type=int, nargs="*", default=None, help="SQLite labeller counts (default 1 4)")
    parser.add_argument("--duration", type=float, default=None, help="seconds of labelling per run (default 10)")
    parser.add_argument("--refill-up-to", type=int, default=200_000,
                        help="queues up to this size are refilled for every run; bigger ones are filled once (default 200,000)")
    parser.add_argument("--databases", nargs="+", choices=["sqlite", "postgresql"], default=["sqlite", "postgresql"])
    parser.add_argument("--postgres-url", default=None)
    parser.add_argument("--pgbench", default=None, help="the pgbench program (default: from PATH, else /usr/bin/pgbench)")
    parser.add_argument("--no-pgbench", action="store_true", help="leave out the pgbench reference")
    parser.add_argument("--pgbench-seconds", type=float, default=None, help="seconds per pgbench run (default 20)")
    parser.add_argument("--pgbench-scale", type=int, default=None, help="pgbench -i -s (default 10)")
    parser.add_argument("--json", default=None, help="where to write the results (default bench/results/queue-<time>.json)")
    parser.add_argument("--plots", dest="plots", action="store_true", default=None, help="write PNG plots to docs/images")
    parser.add_argument("--no-plots", dest="plots", action="store_false")
    parser.add_argument("--replot", default=None, metavar="JSON", help="only redraw the plots from a result file")
    args = parser.parse_args(argv)
    q = args.quick
    args.items = args.items or ([10_000] if q else [10_000, 100_000, 1_000_000])
    args.labellers = args.labellers or ([1, 8] if q else [1, 8, 32])
    args.sqlite_items = args.sqlite_items or (10_000 if q else 100_000)
    args.sqlite_labellers = [1, 4] if args.sqlite_labellers is None else args.sqlite_labellers
    args.duration = args.duration or (3.0 if q else 10.0)
    args.pgbench_seconds = args.pgbench_seconds or (3.0 if q else 20.0)
    args.pgbench_scale = args.pgbench_scale or (1 if q else 10)
    args.plots = (not q) if args.plots is None else args.plots
    return args


def machine() -> dict[str, object]:
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    return {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(), "loadavg_at_start": load}


def find_pgbench(given: str | None) -> str | None:
    import shutil

    for candidate in (given, shutil.which("pgbench"), "/usr/bin/pgbench", *sorted(Path("/usr/lib/postgresql").glob("*/bin/pgbench"))):
        if candidate and Path(candidate).exists():
            return str(candidate)
    return None


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    if args.replot:
        saved = json.loads(Path(args.replot).read_text())
        return {"plots": plot([RunResult(**r) for r in saved["results"]], [PgbenchResult(**r) for r in saved["pgbench"]], png=True)}
    pg_url = postgres_url(args.postgres_url)
    started = dt.datetime.now(dt.timezone.utc)
    versions = database_versions(args.databases, pg_url)
    reference: list[PgbenchResult] = []
    use_pg = "postgresql" in args.databases
    pgbench = find_pgbench(args.pgbench) if use_pg and not args.no_pgbench else None
    if use_pg and not args.no_pgbench and pgbench is None:
        raise SystemExit("pgbench not found: install PostgreSQL's client tools, pass --pgbench PATH, or run with --no-pgbench")
    if pgbench:
        print(f"pgbench: -i -s {args.pgbench_scale} ...", file=sys.stderr, flush=True)
        pgbench_init(pg_url, args.pgbench_scale, pgbench)
        for n in sorted(set(args.labellers)):
            print(f"pgbench: {n} clients, {args.pgbench_seconds:g} s ...", file=sys.stderr, flush=True)
            reference.append(pgbench_run(pg_url, n, args.pgbench_seconds, args.pgbench_scale, pgbench))
    ref_tps = {r.clients: r.tps for r in reference}
    results: list[RunResult] = []
    if use_pg:
        for size in args.items:
            results += run_size("postgresql", size, args.labellers, args.duration, pg_url, args.refill_up_to)
    if "sqlite" in args.databases and args.sqlite_labellers:
        results += run_size("sqlite", args.sqlite_items, args.sqlite_labellers, args.duration, pg_url, args.refill_up_to)
    for r in results:
        if r.database == "postgresql" and r.n_labellers in ref_tps:
            r.reference_tps = ref_tps[r.n_labellers]
            r.ratio_to_reference = round(r.labels_per_second / r.reference_tps, 3)
    if pgbench:
        mid = 8 if 8 in ref_tps else max(ref_tps)
        print(f"pgbench: {mid} clients again (drift check) ...", file=sys.stderr, flush=True)
        reference.append(pgbench_run(pg_url, mid, args.pgbench_seconds, args.pgbench_scale, pgbench, when="after"))
    checked = targets(results)
    if reference:
        print(pgbench_table(reference))
        print()
    print(markdown_table(results))
    print()
    for t in checked:
        print(f"- {'MET' if t['met'] else 'MISSED'}: {t['target']}: {t['value']}")
    for warning in (w for r in results for w in warnings_for(r)):
        print(f"WARNING: {warning}", file=sys.stderr)
    plots = plot(results, reference, png=args.plots) if results else []
    report = {"started": started.isoformat(), "finished": dt.datetime.now(dt.timezone.utc).isoformat(), "machine": machine(),
              "versions": versions, "settings": {k: v for k, v in vars(args).items() if k != "postgres_url"},
              "pgbench": [asdict(r) for r in reference], "results": [asdict(r) for r in results], "targets": checked,
              "plots": plots}
    write_report(report, "queue", started, args.json)
    return report


if __name__ == "__main__":
    main()
