"""Retrain-under-load benchmark: database growth over many retrains of a 1M-item project, and labellers' latency during one.

The project is the one ``bench/retrain.py`` builds (``populate``): N
digits-like items (default 1,000,000) of which L (default 2,000) are
labelled, a project with margin sampling; every retrain is
``learning.run_retrain`` with logistic regression on the flattened 8x8
images, as the orchestrator runs it. It lives in a PostgreSQL *database of
its own* (created on the server of ``--postgres-url``, else
``SUPERINTENDENT_BENCH_POSTGRES_URL``, else
``postgresql+psycopg2://postgres@127.0.0.1:5432/bench``; dropped at the end), so
``pg_database_size`` is the project's alone, whoever else uses the server.

1. **size**: R retrains in a row (default 20), nobody labelling. After each:
   ``pg_total_relation_size`` of the item table (heap, indexes, TOAST; each
   also on its own), ``pg_database_size``, the item table's live and dead
   tuples, updates (and how many were HOT) and whether autovacuum ran
   (``pg_stat_user_tables``: ``autovacuum_count``, ``last_autovacuum``). The
   table was ``VACUUM ANALYZE``-d once after filling, as the other benches do;
   the server's autovacuum settings are recorded (autovacuum may be off on a
   test server).
   Per retrain: ``ModelRun.phase_seconds``, and the seconds inside the
   model's own calls (``fit`` / ``predict`` of the cross-validation, the
   final ``fit``, ``predict_proba`` of the unlabelled batches and of the
   head of the order), measured by wrapping the model (:class:`TimedModel`);
   the rest is superintendent's (reads, decoding, ranking, writes). The time
   spent reading the unlabelled batches (``queue.unlabelled_batches``) is
   shown on its own. The model's BLAS / OpenMP thread pools are limited to
   ``--size-threads`` (default 1): what this part measures does not depend on
   them, and on a loaded 2-core machine OpenBLAS's two threads make one fit
   of this model take tens of seconds instead of a fraction of one.
   Target (issue 14): database size after R retrains <= 1.5x its size after
   the first.
2. **claims**: 8 labeller processes (``python -m superintendent.simulate``,
   submit-and-claim-next as fast as they can) label for ``--before`` seconds;
   then one retrain runs in this process while they go on; they stop
   ``--after`` seconds after it ended (they are stopped with SIGTERM, their
   events streamed to files as they happen, ``--stream``). A transaction's
   latency is its logged end minus its logged start; it counts in the window
   (before / during / after the retrain, and per phase of the retrain) in
   which it ended. Reported: p50 / p99 / max and labels/s per window, the
   ratio p99 during / p99 before, items handed to two labellers (from the
   logs) and items with two annotations (from the database): both must be 0.
   One round per ``--claims-threads`` value (default: the model's thread
   pools as they come, as an orchestrator process has them; then one thread;
   ``--quick``: one thread only), each with new labeller processes, one after
   the other on the same project: each round's retrain learns from every
   label given so far (a later round's from many more than L). A round whose
   labellers emptied the queue (or stopped early) is flagged
   (``retrain_covered_by_labelling``) and its ratio is not judged.
   Target (issue 14): claim p99 during the retrain <= 2x the p99 just before
   it, in the same run.

Run by hand, from the repository root::

    python bench/retrain_load.py --quick     # 20,000 items, 3 retrains, 5 s of labelling (about a minute)
    python bench/retrain_load.py             # 1,000,000 items, 20 retrains: 40-60 minutes on 2 busy cores
    python bench/retrain_load.py --replot bench/results/retrain-load-<time>.json   # the figure again, from a run's JSON

Results: JSON in ``bench/results/retrain-load-<time>.json``; one figure (size
per retrain; claim latency over time, the retrain shaded) in
``bench/results/retrain-load.html`` and, full runs, ``docs/images/bench-retrain-load.png``.
"""

from __future__ import annotations

import sys
from pathlib import Path

_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]  # bench/queue.py would shadow the stdlib's queue

import argparse  # noqa: E402
import datetime as dt  # noqa: E402
import importlib.util  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import uuid  # noqa: E402
from collections import defaultdict  # noqa: E402
from collections.abc import Iterator  # noqa: E402
from contextlib import contextmanager, nullcontext  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
import sqlalchemy as sa  # noqa: E402
from sklearn.base import BaseEstimator, ClassifierMixin, clone  # noqa: E402

from superintendent import learning, queue, simulate  # noqa: E402
from superintendent.store import Annotation, make_engine, session_scope  # noqa: E402


def _load_queue_bench():  # noqa: ANN202 - bench/queue.py by path (bench/ is not a package); it loads the others
    key = "sp_bench_queue"
    if key not in sys.modules:
        spec = importlib.util.spec_from_file_location(key, _HERE / "queue.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[key] = module
        spec.loader.exec_module(module)
    return sys.modules[key]


bq = _load_queue_bench()
br = bq.bench_module("retrain")  # populate (the digits-like project "retrain", margin), flatten
brp = bq.bench_module("reprioritise")  # wait_for_barrier, window
PROJECT = "retrain"  # the project br.populate creates
DEFAULT_POSTGRES_URL = "postgresql+psycopg2://postgres@127.0.0.1:5432/bench"
MODEL_PHASES = ("evaluate", "fit", "predict", "write")  # the phases in which the model is called


# --------------------------------------------------------------------------- a database of its own


@contextmanager
def dedicated_database(base_url: str) -> Iterator[str]:
    """The URL of a new, empty PostgreSQL database on the server of ``base_url``; dropped afterwards (even if in use)."""
    name = f"sp_retrain_load_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(base_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f"CREATE DATABASE {name}")
    try:
        yield sa.engine.make_url(base_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        admin.dispose()


# --------------------------------------------------------------------------- the model's own seconds


@dataclass
class ModelClock:
    """Seconds inside the model's own calls during one retrain, by phase; shared by a :class:`TimedModel` and its clones.

    A call is put in its phase by who makes it: the cross-validation's clones (``evaluate``), the model itself
    fitting (``fit``), predicting while the unlabelled batches are still being read (``predict``) or after them (the
    head of the order's guesses, ``write``).
    """

    main: Any = None  # the TimedModel handed to run_retrain (its clones are the cross-validation's)
    seconds: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    read_unlabelled: float = 0.0  # inside queue.unlabelled_batches (part of the predict phase)
    batches_done: bool = False

    def __deepcopy__(self, memo: dict) -> ModelClock:  # sklearn's clone deep-copies parameters: clones report here too
        return self

    @contextmanager
    def timing(self, phase: str) -> Iterator[None]:
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[phase] += time.perf_counter() - t0


class TimedModel(ClassifierMixin, BaseEstimator):
    """``estimator`` with its fit / predict / predict_proba timed into ``clock`` (a clone of it fits a clone of it)."""

    def __init__(self, estimator: BaseEstimator | None = None, clock: ModelClock | None = None) -> None:
        self.estimator = estimator
        self.clock = clock

    def _phase(self, fitting: bool) -> str:
        if self is not self.clock.main:
            return "evaluate"
        if fitting:
            return "fit"
        return "write" if self.clock.batches_done else "predict"

    def fit(self, x: Any, y: Any) -> TimedModel:
        model = clone(self.estimator)
        with self.clock.timing(self._phase(fitting=True)):
            model.fit(x, y)
        self.estimator_ = model
        self.classes_ = model.classes_
        return self

    def predict(self, x: Any) -> np.ndarray:
        with self.clock.timing(self._phase(fitting=False)):
            return self.estimator_.predict(x)

    def predict_proba(self, x: Any) -> np.ndarray:
        with self.clock.timing(self._phase(fitting=False)):
            return self.estimator_.predict_proba(x)


@contextmanager
def timed_unlabelled_reads(clock: ModelClock) -> Iterator[None]:
    """``queue.unlabelled_batches`` (which run_retrain looks up at call time) timed into ``clock.read_unlabelled``; the
    clock learns when the last batch has been read. (bench/retrain.py has a wrapper like it inside ``one_retrain``.)"""
    original = queue.unlabelled_batches

    def timed(*args: Any, **kwargs: Any) -> Iterator[Any]:
        batches = original(*args, **kwargs)
        while True:
            t0 = time.perf_counter()
            batch = next(batches, None)
            clock.read_unlabelled += time.perf_counter() - t0
            if batch is None:
                clock.batches_done = True
                return
            yield batch

    queue.unlabelled_batches = timed
    try:
        yield
    finally:
        queue.unlabelled_batches = original


def one_retrain(url: str, seed: int) -> dict:
    """One run_retrain (logistic regression, margin) on its own engine: the run's phases, the model's seconds in them."""
    from sklearn.linear_model import LogisticRegression

    clock = ModelClock()
    model = TimedModel(LogisticRegression(max_iter=300), clock)
    clock.main = model
    engine = make_engine(url)
    try:
        with session_scope(engine, write=False) as s:
            project = queue.get_project(s, PROJECT)
        with timed_unlabelled_reads(clock):
            started = time.time()
            t0 = time.perf_counter()
            run = learning.run_retrain(engine, project, learning.RetrainOptions(model=model, model_preprocess=br.flatten, rng=seed))
            total = time.perf_counter() - t0
            ended = time.time()
    finally:
        engine.dispose()
    if run.status != "succeeded":
        raise RuntimeError(f"retrain {run.status}: {run.message}")
    phases = {k: round(v, 4) for k, v in run.phase_seconds.items()}
    model_seconds = {k: round(clock.seconds.get(k, 0.0), 4) for k in MODEL_PHASES}
    in_model = sum(clock.seconds.values())
    return {"seed": seed, "started": started, "ended": ended, "total_seconds": round(total, 3), "phases": phases,
            "model_seconds": model_seconds, "model_seconds_total": round(in_model, 3),
            "outside_model_seconds": round(total - in_model, 3),
            "outside_model_by_phase": {k: round(v - clock.seconds.get(k, 0.0), 4) for k, v in phases.items()},
            "read_unlabelled_seconds": round(clock.read_unlabelled, 3),
            "n_labels": run.n_labels, "n_ranked": run.n_ranked, "score_mean": run.score_mean}


# --------------------------------------------------------------------------- part 1: size over retrains

ITEM_SIZES = """
SELECT pg_total_relation_size(c.oid), pg_relation_size(c.oid), pg_indexes_size(c.oid),
       COALESCE(pg_total_relation_size(NULLIF(c.reltoastrelid, 0)), 0), pg_database_size(current_database())
FROM pg_class AS c WHERE c.oid = 'sp_item'::regclass
"""
ITEM_STATS = """
SELECT n_live_tup, n_dead_tup, n_tup_upd, n_tup_hot_upd, autovacuum_count, last_autovacuum, autoanalyze_count,
       last_autoanalyze, vacuum_count
FROM pg_stat_user_tables WHERE relid = 'sp_item'::regclass
"""
ALL_AUTOVACUUMS = "SELECT relname, autovacuum_count FROM pg_stat_user_tables WHERE autovacuum_count > 0 ORDER BY relname"
SERVER_SETTINGS = ("SELECT name, setting FROM pg_settings WHERE name IN ('autovacuum', 'autovacuum_vacuum_threshold', "
                   "'autovacuum_vacuum_scale_factor', 'autovacuum_naptime', 'shared_buffers', 'server_version') ORDER BY name")
STATS_SETTLE_SECONDS = 1.0  # a backend's table statistics reach pg_stat_user_tables as it exits, a moment after its client left


def sizes(url: str) -> dict[str, Any]:
    """The item table's and the database's sizes (bytes) and the item table's tuple and vacuum statistics, now."""
    time.sleep(STATS_SETTLE_SECONDS)
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            total, heap, indexes, toast, database = conn.exec_driver_sql(ITEM_SIZES).one()
            live, dead, upd, hot, autovacuums, last_autovacuum, autoanalyzes, last_autoanalyze, vacuums = (
                conn.exec_driver_sql(ITEM_STATS).one())
            vacuumed_tables = dict(conn.exec_driver_sql(ALL_AUTOVACUUMS).all())
    finally:
        engine.dispose()
    return {"item_total_bytes": int(total), "item_heap_bytes": int(heap), "item_indexes_bytes": int(indexes),
            "item_toast_bytes": int(toast), "database_bytes": int(database), "item_live_tuples": int(live),
            "item_dead_tuples": int(dead), "item_updates": int(upd), "item_hot_updates": int(hot),
            "item_autovacuums": int(autovacuums), "item_last_autovacuum": last_autovacuum.isoformat() if last_autovacuum else None,
            "item_autoanalyzes": int(autoanalyzes), "item_last_autoanalyze": last_autoanalyze.isoformat() if last_autoanalyze else None,
            "item_manual_vacuums": int(vacuums), "autovacuums_by_table": {k: int(v) for k, v in vacuumed_tables.items()}}


def server_settings(url: str) -> dict[str, str]:
    """What decides whether autovacuum can run (it may be off on a test server), and the server's version."""
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return dict(conn.exec_driver_sql(SERVER_SETTINGS).all())
    finally:
        engine.dispose()


def part_size(url: str, n_retrains: int) -> dict[str, Any]:
    baseline = sizes(url)
    runs = []
    for k in range(n_retrains):
        run = one_retrain(url, seed=k)
        run["sizes"] = sizes(url)
        runs.append(run)
        print(f"  retrain {k + 1}/{n_retrains}: {run['total_seconds']:.1f} s, database {run['sizes']['database_bytes'] / 2**20:.1f} MB, "
              f"item table {run['sizes']['item_total_bytes'] / 2**20:.1f} MB, dead tuples {run['sizes']['item_dead_tuples']:,}",
              file=sys.stderr, flush=True)
    first, last = runs[0]["sizes"], runs[-1]["sizes"]
    return {"server_settings": server_settings(url), "before_first": baseline, "runs": runs,
            "database_growth": round(last["database_bytes"] / first["database_bytes"], 4),
            "item_table_growth": round(last["item_total_bytes"] / first["item_total_bytes"], 4),
            "autovacuum_ran_on_items": last["item_autovacuums"] > baseline["item_autovacuums"],
            "autovacuum_ran_anywhere": last["autovacuums_by_table"] != baseline["autovacuums_by_table"]}


# --------------------------------------------------------------------------- part 2: claims during a retrain


def start_labellers(url: str, n: int, cap_seconds: float, workdir: Path) -> tuple[list[subprocess.Popen], Path, Path]:
    """n simulated labellers of PROJECT that stream their events to ``workdir/stream`` and run until stopped (at most
    ``cap_seconds``). (reprioritise.start_labellers labels bench/queue.py's project and keeps its log until the end.)"""
    barrier, stream = workdir / f"ready-{uuid.uuid4().hex[:8]}", workdir / "stream"
    procs = []
    for k in range(n):
        args = [sys.executable, "-m", "superintendent.simulate", url, PROJECT, f"labeller{k}", "--duration", str(cap_seconds),
                "--max-labels", "100000000", "--seed", str(k), "--barrier", str(barrier), str(n), "--stream", str(stream),
                "--out", str(workdir / f"labeller{k}.json")]
        procs.append(subprocess.Popen(args, stderr=subprocess.PIPE, text=True))
    return procs, barrier, stream


def stop_labellers(procs: list[subprocess.Popen]) -> list[dict[str, Any]]:
    """SIGTERM each labeller still running (by its pid) and reap it; what each had to say if it failed on its own."""
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
    failures = []
    for proc in procs:
        _, err = proc.communicate(timeout=60)
        if proc.returncode not in (0, -15):
            failures.append({"returncode": proc.returncode, "stderr": err[-2000:]})
    return failures


def read_streams(stream: Path) -> list[dict[str, Any]]:
    """Each labeller's streamed events as ``{"user", "log": [(kind, item, label, time)], "begun": [...]}``; a last line
    cut short by the SIGTERM is left out, and so are the marks of a transaction's start (``{"begun": t}``)."""
    events = []
    for path in sorted(stream.glob("*.jsonl")):
        rows = [row for row in simulate.read_stream(path) if isinstance(row, list)]
        events.append({"user": path.stem, "log": [tuple(r[:4]) for r in rows], "begun": [r[4] for r in rows]})
    return events


def transactions(events: list[dict[str, Any]]) -> list[tuple[float, float]]:
    """(end time, latency in ms) of every submit-and-claim-next transaction, from the streamed start and end times."""
    return sorted((row[3], (row[3] - begun) * 1000) for e in events for row, begun in zip(e["log"], e["begun"]) if row[0] == "submit")


def items_annotated_twice(url: str) -> int:
    engine = make_engine(url)
    try:
        with session_scope(engine, write=False) as s:
            twice = sa.select(Annotation.item_id).group_by(Annotation.item_id).having(sa.func.count() > 1).subquery()
            return int(s.execute(sa.select(sa.func.count()).select_from(twice)).scalar_one())
    finally:
        engine.dispose()


def phase_windows(run: dict[str, Any]) -> list[tuple[str, float, float]]:
    """(phase, start, end) in wall-clock time, from the run's phase seconds laid end to end from its start (the clock of
    the phases starts a few milliseconds after run_retrain does: it first records the run)."""
    out, t = [], run["started"]
    for name, seconds in run["phases"].items():
        out.append((name, t, t + seconds))
        t += seconds
    return out


def blas_threads(limit: int | None):  # noqa: ANN201 - a context manager
    """This process's BLAS / OpenMP thread pools limited to ``limit`` threads, or left as they come (None)."""
    from threadpoolctl import threadpool_limits

    return nullcontext() if limit is None else threadpool_limits(limits=limit)


def pools() -> list[dict[str, Any]]:
    from threadpoolctl import threadpool_info

    return [{k: info.get(k) for k in ("internal_api", "version", "num_threads")} for info in threadpool_info()]


def claims_round(url: str, args: argparse.Namespace, workdir: Path, typical_retrain: float, threads: int | None) -> dict[str, Any]:
    """Labellers for ``args.before`` s, a retrain (model thread pools limited to ``threads``, or as they come), ``args.after`` s."""
    cap = args.before + args.after + max(3600.0, 50 * typical_retrain)  # they are stopped sooner; this only bounds a lost run
    labels_before = bq.count_annotations(url)
    procs, barrier, stream = start_labellers(url, args.labellers, cap, workdir)
    try:
        brp.wait_for_barrier(barrier, args.labellers)
        labelling_started = time.time()
        loadavg_before = os.getloadavg()
        time.sleep(args.before)
        with blas_threads(threads):
            thread_pools = pools()
            run = one_retrain(url, seed=1000)
        loadavg_during = os.getloadavg()
        time.sleep(args.after)
        labelling_stopped = time.time()
    finally:
        failures = stop_labellers(procs)
    if failures:
        raise RuntimeError(f"labellers failed: {failures}")
    events = read_streams(stream)
    rows = transactions(events)
    start, end = run["started"], run["ended"]
    before = brp.window(rows, labelling_started + 1.0, start)  # the first second: connections and caches warming up
    during = brp.window(rows, start, end)
    after = brp.window(rows, end, labelling_stopped)
    by_phase = {name: brp.window(rows, a, b) for name, a, b in phase_windows(run) if b - a >= 0.05}
    submits = sum(1 for e in events for row in e["log"] if row[0] == "submit")
    ratio = during["p99_ms"] / before["p99_ms"] if before["transactions"] and during["transactions"] else float("nan")
    return {"model_threads": "as they come" if threads is None else threads, "thread_pools": thread_pools,
            "labellers": args.labellers, "before_seconds": args.before, "after_seconds": args.after, "retrain": run,
            "before": before, "during": during, "after": after, "during_by_phase": by_phase,
            "p99_ratio_during_to_before": round(ratio, 3), "loadavg_before": loadavg_before, "loadavg_during": loadavg_during,
            "retrain_covered_by_labelling": all(e["log"] and e["log"][-1][3] >= end for e in events),
            "submits_logged": submits, "annotations_added": bq.count_annotations(url) - labels_before,
            "duplicate_handouts": bq.duplicate_handouts(events), "items_annotated_twice": items_annotated_twice(url),
            "timeline": {"labelling_started": labelling_started, "labelling_stopped": labelling_stopped,
                         "phases": [(name, round(a - labelling_started, 3), round(b - labelling_started, 3))
                                    for name, a, b in phase_windows(run)],
                         "transactions": [(round(t - labelling_started, 4), round(ms, 2)) for t, ms in rows]}}


# --------------------------------------------------------------------------- report


def _threads_name(threads: int | str | None) -> str:
    return "model threads as they come" if threads in (None, "as they come") else f"model threads: {threads}"


def timeline_stop(r: dict[str, Any]) -> float:
    """Seconds from the start of labelling to the last transaction logged in a claims round."""
    return max((t for t, _ in r["timeline"]["transactions"]), default=0.0)


def plot(size: dict[str, Any], rounds: list[dict[str, Any]], items: int, png: bool) -> dict[str, str]:
    from plotly.subplots import make_subplots

    plots = bq.bench_module("plots")
    runs = size["runs"]
    x = list(range(1, len(runs) + 1))
    fig = make_subplots(rows=1, cols=1 + len(rounds), column_widths=[0.3] + [0.7 / len(rounds)] * len(rounds), horizontal_spacing=0.08,
                        subplot_titles=("size after each retrain, MB",
                                        *(f"claims, ms: {_threads_name(r['model_threads'])}" for r in rounds)))
    fig.update_annotations(font_size=13)
    mb = 2 ** 20
    fig.add_scatter(x=x, y=[r["sizes"]["database_bytes"] / mb for r in runs], mode="lines+markers", name="database", row=1, col=1)
    fig.add_scatter(x=x, y=[r["sizes"]["item_total_bytes"] / mb for r in runs], mode="lines+markers", name="item table (all)",
                    row=1, col=1)
    fig.add_scatter(x=[x[0], x[-1]], y=[1.5 * runs[0]["sizes"]["database_bytes"] / mb] * 2, mode="lines",
                    line=dict(color="red", dash="dash"), name="1.5x database after the 1st", row=1, col=1)
    fig.update_xaxes(title_text="retrain", tick0=1, dtick=max(1, len(runs) // 5), row=1, col=1)
    fig.update_yaxes(rangemode="tozero", row=1, col=1)
    latencies = [ms for r in rounds for _, ms in r["timeline"]["transactions"]] or [1.0, 100.0]
    floor = 10 ** np.floor(np.log10(max(min(latencies), 0.1)))  # the decade below the fastest transaction
    top = max(latencies)
    for k, r in enumerate(rounds):
        col, first = 2 + k, k == 0
        points, phases = r["timeline"]["transactions"], r["timeline"]["phases"]
        fig.add_scattergl(x=[t for t, _ in points], y=[ms for _, ms in points], mode="markers", marker=dict(size=3, color="#48c"),
                          name="submit-and-claim-next", showlegend=first, row=1, col=col)
        start, end = phases[0][1], phases[-1][2]
        fig.add_vrect(x0=start, x1=end, fillcolor="orange", opacity=0.2, line_width=0, row=1, col=col)
        for name, a, b in phases:  # the model's fits a darker shade
            if name in ("evaluate", "fit"):
                fig.add_vrect(x0=a, x1=b, fillcolor="orange", opacity=0.3, line_width=0, row=1, col=col)
        # (no annotation texts on a log axis: plotly places them at 10**y and stretches the axis)
        fig.add_scatter(x=[start, end], y=[floor, floor], mode="lines", line=dict(color="orange", width=8), showlegend=first,
                        name="retrain (shaded; evaluate + fit darker)", row=1, col=col)
        fig.add_scatter(x=[0, max(timeline_stop(r), end)], y=[2 * r["before"]["p99_ms"]] * 2, mode="lines",
                        line=dict(color="red", dash="dot"), name="2x p99 before the retrain", showlegend=first, row=1, col=col)
        stopped = timeline_stop(r)
        fig.update_xaxes(title_text="s since labelling began", range=[0, max(stopped, end) * 1.02], row=1, col=col)
        if stopped < end:  # the labellers' time ran out before the retrain ended
            fig.add_vline(x=stopped, line=dict(color="black", dash="dash", width=1), row=1, col=col)
            fig.add_scatter(x=[stopped, stopped], y=[floor, floor], mode="lines", line=dict(color="black", dash="dash", width=1),
                            name="labellers stopped before the retrain ended", row=1, col=col)
        fig.update_yaxes(type="log", range=[float(np.log10(floor)), float(np.log10(max(top, 100) * 1.5))], row=1, col=col)
    fig.update_layout(title=f"Retrains of a {items:,}-item project (PostgreSQL): size, and {rounds[0]['labellers']} labellers during one",
                      legend=dict(orientation="h", y=-0.2), margin=dict(b=120))
    return plots.save(fig, "retrain-load", png_dir=plots.PNG_DIR if png else None)


def threads_arg(value: str) -> int | None:
    """``default`` (the thread pools as they come) or a number of threads."""
    if value == "default":
        return None
    if not value.isdigit() or int(value) < 1:
        raise argparse.ArgumentTypeError(f"expected 'default' or a number of threads >= 1; got {value!r}")
    return int(value)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="20,000 items, 3 retrains, 5 s of labelling before the retrain")
    parser.add_argument("--items", type=int, default=None, help="items in the project (default 1,000,000)")
    parser.add_argument("--labels", type=int, default=2_000, help="labelled items (default 2,000)")
    parser.add_argument("--retrains", type=int, default=None, help="retrains in a row for the size part (default 20)")
    parser.add_argument("--labellers", type=int, default=8)
    parser.add_argument("--before", type=float, default=None, help="seconds of labelling before the retrain starts (default 20)")
    parser.add_argument("--after", type=float, default=None, help="seconds of labelling after it ended (default 5)")
    parser.add_argument("--size-threads", type=threads_arg, default=1,
                        help="model (BLAS / OpenMP) threads in the size part: a number, or 'default' (default 1)")
    parser.add_argument("--claims-threads", type=threads_arg, nargs="+", default=None,
                        help="one claims round per value: model threads 'default' (as they come) or a number "
                             "(default: default 1; --quick: 1, as a slow fit would let the labellers empty a small queue)")
    parser.add_argument("--postgres-url", default=None, help="a server to create the benchmark's database on")
    parser.add_argument("--json", default=None)
    parser.add_argument("--plots", dest="plots", action="store_true", default=None)
    parser.add_argument("--no-plots", dest="plots", action="store_false")
    parser.add_argument("--replot", default=None, metavar="JSON", help="draw the figure (HTML and PNG) again from a run's JSON; nothing runs")
    args = parser.parse_args(argv)
    q = args.quick
    args.items = args.items or (20_000 if q else 1_000_000)
    args.retrains = args.retrains or (3 if q else 20)
    args.before = args.before or (5.0 if q else 20.0)
    args.after = args.after or (2.0 if q else 5.0)
    args.claims_threads = args.claims_threads or ([1] if q else [None, 1])
    args.plots = (not q) if args.plots is None else args.plots
    if args.retrains < 1 or not 0 < args.labels < args.items:
        parser.error("need --retrains >= 1 and 0 < --labels < --items")
    return args


def print_report(size: dict[str, Any], rounds: list[dict[str, Any]], targets: list[dict[str, Any]]) -> None:
    print(f"server: {', '.join(f'{k} {v}' for k, v in size['server_settings'].items())}")
    print("| retrain | seconds | model s | outside model s | read unlabelled s | database MB | item table MB "
          "(heap / indexes / TOAST) | dead tuples | autovacuums (items) |\n| ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: |")
    for k, r in enumerate(size["runs"], 1):
        z, mb = r["sizes"], 2 ** 20
        print(f"| {k} | {r['total_seconds']:.2f} | {r['model_seconds_total']:.2f} | {r['outside_model_seconds']:.2f} "
              f"| {r['read_unlabelled_seconds']:.2f} | {z['database_bytes'] / mb:.1f} | {z['item_total_bytes'] / mb:.1f} "
              f"({z['item_heap_bytes'] / mb:.1f} / {z['item_indexes_bytes'] / mb:.1f} / {z['item_toast_bytes'] / mb:.1f}) "
              f"| {z['item_dead_tuples']:,} | {z['item_autovacuums']} |")
    print()
    names = list(dict.fromkeys(k for r in size["runs"] for k in r["phases"]))
    print("| phase | seconds (median) | of which the model's | outside the model |\n| --- | ---: | ---: | ---: |")
    for name in names:
        phase = np.median([r["phases"].get(name, 0.0) for r in size["runs"]])
        model = np.median([r["model_seconds"].get(name, 0.0) for r in size["runs"]])
        print(f"| {name} | {phase:.3f} | {model:.3f} | {phase - model:.3f} |")
    print()
    print("| retrain (labels it learnt from) | window | seconds | transactions | labels/s | p50 ms | p99 ms | max ms |\n"
          "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in rounds:
        phases = {name: b - a for name, a, b in r["timeline"]["phases"]}
        retrain = r["retrain"]
        windows = [("before", r["before"], r["before_seconds"] - 1), ("during", r["during"], retrain["ended"] - retrain["started"]),
                   *((f"during: {k}", w, phases[k]) for k, w in r["during_by_phase"].items()), ("after", r["after"], r["after_seconds"])]
        for name, w, seconds in windows:
            print(f"| {_threads_name(r['model_threads'])} ({retrain['n_labels']:,}) | {name} | {seconds:.1f} | {w['transactions']} "
                  f"| {w['labels_per_second']} | {w['p50_ms']} | {w['p99_ms']} | {w['max_ms']} |")
    print()
    for t in targets:
        print(f"- {'MET' if t['met'] else 'MISSED'}: {t['target']}: {t['value']}")


def targets_of(args: argparse.Namespace, size: dict[str, Any], rounds: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = [{"target": f"database size after {args.retrains} retrains <= 1.5x after the first", "value": f"{size['database_growth']:.3f}x",
            "met": size["database_growth"] <= 1.5}]
    for r in rounds:
        ratio = r["p99_ratio_during_to_before"]
        out.append({"target": f"claim p99 of {args.labellers} labellers during a retrain ({_threads_name(r['model_threads'])}) "
                              "<= 2x their p99 just before it",
                    "value": f"{r['during']['p99_ms']} / {r['before']['p99_ms']} ms = {ratio:.2f}x (retrain learnt from "
                             f"{r['retrain']['n_labels']:,} labels)" + ("" if r["retrain_covered_by_labelling"] else
                                                                   "; NOT JUDGED: the labellers stopped before the retrain ended"),
                    "met": bool(ratio <= 2) and r["retrain_covered_by_labelling"]})
    twice = sum(r["duplicate_handouts"] for r in rounds), max(r["items_annotated_twice"] for r in rounds)
    out.append({"target": "no item handed to two labellers", "value": f"{twice[0]} in the logs, {twice[1]} annotated twice",
                "met": twice == (0, 0)})
    return out


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    if args.replot:
        saved = json.loads(Path(args.replot).read_text())
        return {"plots": plot(saved["size"], saved["claims"], saved["settings"]["items"], png=True)}
    machine = bq.machine()  # with the load average as the run starts
    base = args.postgres_url or os.environ.get("SUPERINTENDENT_BENCH_POSTGRES_URL") or DEFAULT_POSTGRES_URL
    started = dt.datetime.now(dt.timezone.utc)
    with tempfile.TemporaryDirectory(prefix="sp-bench-") as tmp, dedicated_database(base) as url:
        print(f"filling a project of {args.items:,} items, {args.labels:,} labelled ...", file=sys.stderr, flush=True)
        fill_seconds = br.populate(url, args.items, args.labels)
        bq.vacuum(url)
        print(f"size: {args.retrains} retrains ({_threads_name(args.size_threads)}) ...", file=sys.stderr, flush=True)
        with blas_threads(args.size_threads):
            size = part_size(url, args.retrains)
        typical = float(np.median([r["total_seconds"] for r in size["runs"]]))
        rounds = []
        for k, threads in enumerate(args.claims_threads):
            print(f"claims: {args.labellers} labellers, a retrain after {args.before:g} s ({_threads_name(threads)}) ...",
                  file=sys.stderr, flush=True)
            workdir = Path(tmp) / f"round{k}"
            workdir.mkdir()
            rounds.append(claims_round(url, args, workdir, typical, threads))
    targets = targets_of(args, size, rounds)
    print_report(size, rounds, targets)
    if not all(r["retrain_covered_by_labelling"] for r in rounds):
        print("WARNING: a labeller stopped before the retrain ended", file=sys.stderr)
    report = {"started": started.isoformat(), "machine": machine, "loadavg_at_end": os.getloadavg(),
              "settings": {k: v for k, v in vars(args).items() if k != "postgres_url"}, "fill_seconds": round(fill_seconds, 1),
              "size": size, "claims": rounds, "targets": targets,
              "plots": plot(size, rounds, args.items, args.plots) if all(r["timeline"]["transactions"] for r in rounds) else {}}
    bq.write_report(report, "retrain-load", started, args.json)
    return report


if __name__ == "__main__":
    main()
