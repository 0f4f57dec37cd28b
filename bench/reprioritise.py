"""Reprioritisation benchmark: rewrite the priorities of every item of a big queue while labellers work.

What it measures, on PostgreSQL (the rewrite is ``queue.reprioritise``, the
function every retrain uses to write its ranking):

1. **alone**: the seconds to rewrite the priorities of all N items (random
   new priorities) with nobody labelling;
2. **under load**: 8 labeller processes (``python -m superintendent.simulate``)
   label as fast as they can; after ``--before`` seconds the same rewrite is
   run again. Reported: the rewrite's seconds, and the p50 / p99 / max
   latency of the labellers' submit-and-claim-next transactions *before* the
   rewrite and *during* it (a transaction counts as during if it ended while
   the rewrite ran), plus labels/s in each window and duplicate hand-outs.

Targets (issue 7): the rewrite of 1M items <= 10 s; claim p99 during the
rewrite <= 50 ms.

Run by hand, from the repository root::

    python bench/reprioritise.py --quick     # 20,000 items, a few seconds of labelling
    python bench/reprioritise.py             # 1,000,000 items (a few minutes, mostly filling the queue)

PostgreSQL as in bench/queue.py (``--postgres-url``, else
``SUPERINTENDENT_BENCH_POSTGRES_URL``, else ``SUPERINTENDENT_TEST_POSTGRES_URL``).
Results: JSON in ``bench/results/reprioritise-<time>.json``; a plot of claim
latency over time, the rewrite shaded, in ``docs/images/bench-reprioritise.png``
(full runs).
"""

from __future__ import annotations

import sys
from pathlib import Path

_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]

import argparse  # noqa: E402
import datetime as dt  # noqa: E402
import importlib.util  # noqa: E402
import json  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import uuid  # noqa: E402

import numpy as np  # noqa: E402
import sqlalchemy as sa  # noqa: E402

from superintendent import queue  # noqa: E402
from superintendent.store import Item, make_engine, session_scope  # noqa: E402


def _bench(name: str):  # noqa: ANN202 - bench/queue.py, loaded by path (it would shadow the stdlib's queue)
    key = f"sp_bench_{name}"
    if key not in sys.modules:
        spec = importlib.util.spec_from_file_location(key, _HERE / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[key] = module
        spec.loader.exec_module(module)
    return sys.modules[key]


bq = _bench("queue")


def all_ids(engine: sa.Engine, project_id: int) -> np.ndarray:
    with session_scope(engine, write=False) as s:
        ids = s.execute(sa.select(Item.id).where(Item.project_id == project_id).order_by(Item.id)).scalars().all()
    return np.asarray(ids, dtype=np.int64)


def rewrite(engine: sa.Engine, project, ids: np.ndarray, seed: int) -> tuple[float, int]:  # noqa: ANN001
    priorities = np.random.default_rng(seed).permutation(len(ids)).astype(float)
    t0 = time.perf_counter()
    written = queue.reprioritise(engine, project, ids, priorities)
    return time.perf_counter() - t0, written


def start_labellers(url: str, n: int, duration: float, workdir: Path) -> tuple[list, Path]:
    barrier = workdir / f"ready-{uuid.uuid4().hex[:8]}"
    procs = []
    for k in range(n):
        out = workdir / f"labeller{k}.json"
        args = [sys.executable, "-m", "superintendent.simulate", url, bq.PROJECT, f"labeller{k}", "--duration", str(duration),
                "--max-labels", "10000000", "--seed", str(k), "--barrier", str(barrier), str(n), "--out", str(out)]
        procs.append((subprocess.Popen(args, stderr=subprocess.PIPE, text=True), out))
    return procs, barrier


def wait_for_barrier(barrier: Path, n: int, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while not (barrier.exists() and sum(1 for _ in barrier.iterdir()) >= n):
        if time.monotonic() > deadline:
            raise TimeoutError("the labellers did not start")
        time.sleep(0.01)


def transactions(events: list[dict]) -> list[tuple[float, float]]:
    """(end time, latency in ms) of every submit-and-claim-next transaction of every labeller."""
    rows = []
    for e in events:
        submits = [row for row in e["log"] if row[0] == "submit"]
        for row, latency in zip(submits, e["latencies"][1:]):
            rows.append((row[3], latency * 1000))
    return sorted(rows)


def window(rows: list[tuple[float, float]], start: float, end: float) -> dict[str, float]:
    lat = np.array([ms for t, ms in rows if start <= t < end])
    if not lat.size:
        return {"transactions": 0, "labels_per_second": 0.0, "p50_ms": float("nan"), "p99_ms": float("nan"), "max_ms": float("nan")}
    p50, p99, top = np.percentile(lat, [50, 99, 100])
    return {"transactions": int(lat.size), "labels_per_second": round(lat.size / (end - start), 1),
            "p50_ms": round(float(p50), 2), "p99_ms": round(float(p99), 2), "max_ms": round(float(top), 2)}


def plot(rows: list[tuple[float, float]], t0: float, start: float, end: float, png: bool) -> dict[str, str]:
    import plotly.graph_objects as go

    plots = _bench("plots")
    fig = go.Figure()
    fig.add_scattergl(x=[t - t0 for t, _ in rows], y=[ms for _, ms in rows], mode="markers", marker=dict(size=3),
                      name="submit-and-claim-next")
    # (no annotation texts on a log axis: plotly places them at 10**y and stretches the axis)
    fig.add_vrect(x0=start - t0, x1=end - t0, fillcolor="orange", opacity=0.2, line_width=0)
    fig.add_scatter(x=[start - t0, end - t0], y=[1, 1], mode="lines", line=dict(color="orange", width=8),
                    name="priority rewrite (shaded)")
    fig.add_scatter(x=[0, max(t for t, _ in rows) - t0], y=[50, 50], mode="lines", line=dict(color="red", dash="dash"),
                    name="target p99 50 ms")
    top = max(ms for _, ms in rows)
    fig.update_layout(title="8 labellers while the priorities of every item are rewritten (PostgreSQL)",
                      xaxis_title="seconds since the labellers started", yaxis_title="transaction latency, ms (log)")
    fig.update_yaxes(type="log", range=[0, float(np.log10(max(top, 100) * 1.5))])
    return plots.save(fig, "reprioritise", png_dir=plots.PNG_DIR if png else None)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="20,000 items, short windows (well under a minute)")
    parser.add_argument("--items", type=int, default=None, help="items in the queue (default 1,000,000)")
    parser.add_argument("--labellers", type=int, default=8)
    parser.add_argument("--before", type=float, default=None, help="seconds of labelling before the rewrite (default 8)")
    parser.add_argument("--after", type=float, default=None, help="labelling budget for the rewrite and after it (default 40)")
    parser.add_argument("--chunk-size", type=int, default=None, help="reprioritise's chunk size (default: the function's own)")
    parser.add_argument("--postgres-url", default=None)
    parser.add_argument("--json", default=None)
    parser.add_argument("--plots", dest="plots", action="store_true", default=None)
    parser.add_argument("--no-plots", dest="plots", action="store_false")
    args = parser.parse_args(argv)
    args.items = args.items or (20_000 if args.quick else 1_000_000)
    args.before = args.before or (2.0 if args.quick else 8.0)
    args.after = args.after or (4.0 if args.quick else 40.0)
    args.plots = (not args.quick) if args.plots is None else args.plots
    return args


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    base = bq.postgres_url(args.postgres_url)
    started = dt.datetime.now(dt.timezone.utc)
    if args.chunk_size:
        import functools

        queue.reprioritise = functools.partial(queue.reprioritise, chunk_size=args.chunk_size)
    with tempfile.TemporaryDirectory(prefix="sp-bench-") as tmp, bq.fresh_database("postgresql", base, Path(tmp)) as url:
        workdir = Path(tmp)
        print(f"filling the queue with {args.items:,} items ...", file=sys.stderr, flush=True)
        add_seconds = bq.populate(url, args.items)
        bq.vacuum(url)
        engine = make_engine(url)
        with session_scope(engine, write=False) as s:
            project = queue.get_project(s, bq.PROJECT)
        ids = all_ids(engine, project.id)
        print("rewrite alone ...", file=sys.stderr, flush=True)
        alone_seconds, alone_written = rewrite(engine, project, ids, seed=1)
        bq.vacuum(url)
        print(f"{args.labellers} labellers, rewrite after {args.before:g} s ...", file=sys.stderr, flush=True)
        procs, barrier = start_labellers(url, args.labellers, args.before + args.after, workdir)
        wait_for_barrier(barrier, args.labellers)
        labelling_started = time.time()
        time.sleep(args.before)
        rewrite_start = time.time()
        loaded_seconds, loaded_written = rewrite(engine, project, ids, seed=2)
        rewrite_end = time.time()
        events = []
        for proc, out in procs:
            _, err = proc.communicate(timeout=args.before + args.after + 300)
            if proc.returncode != 0:
                raise RuntimeError(f"labeller failed ({proc.returncode}):\n{err}")
            events.append(json.loads(out.read_text()))
        labelling_stopped = max(e["stopped"] for e in events)
        engine.dispose()
    rows = transactions(events)
    before = window(rows, labelling_started + 1.0, rewrite_start)  # the first second: connections and caches warming up
    during = window(rows, rewrite_start, rewrite_end)
    after = window(rows, rewrite_end, labelling_stopped)
    result = {
        "items": args.items, "labellers": args.labellers, "add_seconds": round(add_seconds, 2),
        "rewrite_alone_seconds": round(alone_seconds, 2), "rewrite_alone_rows": alone_written,
        "rewrite_under_load_seconds": round(loaded_seconds, 2), "rewrite_under_load_rows": loaded_written,
        "rewrite_covered_by_labelling": rewrite_end <= labelling_stopped,
        "before": before, "during": during, "after": after,
        "duplicate_handouts": bq.duplicate_handouts(events),
        "targets": [
            {"target": f"rewrite of {args.items:,} priorities <= 10 s (under load)", "value": f"{loaded_seconds:.1f} s",
             "met": loaded_seconds <= 10},
            {"target": "claim p99 <= 50 ms during the rewrite", "value": f"{during['p99_ms']} ms",
             "met": bool(during["p99_ms"] <= 50)},
        ],
    }
    print("| items | rewrite alone (s) | rewrite under load (s) | rows written | window | labels/s | p50 ms | p99 ms | max ms |\n"
          "| ---: | ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: |")
    for name, w in (("before", before), ("during", during), ("after", after)):
        print(f"| {args.items:,} | {alone_seconds:.1f} | {loaded_seconds:.1f} | {loaded_written:,} | {name} | {w['labels_per_second']} "
              f"| {w['p50_ms']} | {w['p99_ms']} | {w['max_ms']} |")
    for t in result["targets"]:
        print(f"- {'MET' if t['met'] else 'MISSED'}: {t['target']}: {t['value']}")
    if not result["rewrite_covered_by_labelling"]:
        print("WARNING: the labellers stopped before the rewrite ended; raise --after", file=sys.stderr)
    result["plots"] = [plot(rows, labelling_started, rewrite_start, rewrite_end, args.plots)] if rows else []
    result["timeline"] = {"labelling_started": labelling_started, "rewrite_start": rewrite_start, "rewrite_end": rewrite_end,
                          "transactions": [(round(t - labelling_started, 4), round(ms, 2)) for t, ms in rows]}
    report = {"started": started.isoformat(), "machine": bq.machine(), "settings": {k: v for k, v in vars(args).items() if k != "postgres_url"},
              "result": result}
    bq.write_report(report, "reprioritise", started, args.json)
    return report


if __name__ == "__main__":
    main()
