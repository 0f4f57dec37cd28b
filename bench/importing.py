"""Import benchmark: a big CSV through the importer the Admin page and the CLI use.

Generates a CSV of N rows (default 1,000,000; columns ``id``, ``text`` (a
short sentence), ``x1``, ``x2`` (numbers), ``label`` (one of three classes for
every tenth row, empty otherwise)), then, in a fresh process, runs
``ingest.prepare_upload`` (read and check the file, with a plan: ``text``,
``x1``, ``x2`` shown and modelled, ids from ``id``, labels from ``label``) and
``importing.import_prepared`` (one transaction) into a fresh project.
Reported: seconds for each step, rows per second, the process's RSS after
imports and its peak RSS (``ru_maxrss``), and the CSV's size.

Target (issue 7): 1M rows <= 60 s on PostgreSQL, with memory bounded.

Run by hand, from the repository root::

    python bench/importing.py --quick        # 20,000 rows
    python bench/importing.py                # 1,000,000 rows on PostgreSQL (a few minutes)
    python bench/importing.py --rows 100000 200000 500000   # how time and memory grow

PostgreSQL as in bench/queue.py; ``--database sqlite`` for SQLite. Results:
JSON in ``bench/results/importing-<time>.json``; plot in
``docs/images/bench-importing.png`` (full runs, several sizes).
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
import resource  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

WORDS = ("alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima mike november oscar papa quebec romeo "
         "sierra tango uniform victor whiskey xray yankee zulu").split()


def _bench(name: str):  # noqa: ANN202
    key = f"sp_bench_{name}"
    if key not in sys.modules:
        spec = importlib.util.spec_from_file_location(key, _HERE / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[key] = module
        spec.loader.exec_module(module)
    return sys.modules[key]


def write_csv(path: Path, n_rows: int, seed: int = 0, chunk: int = 100_000) -> int:
    """Write the CSV in chunks (the generator never holds all rows); returns its size in bytes."""
    import pandas as pd

    rng = np.random.default_rng(seed)
    words = np.array(WORDS)
    with path.open("w", encoding="utf-8", newline="") as fh:
        for start in range(0, n_rows, chunk):
            n = min(chunk, n_rows - start)
            picks = words[rng.integers(0, len(words), (n, 6))]
            text = [" ".join(row) for row in picks]
            label = np.where(np.arange(start, start + n) % 10 == 0, rng.choice(["cat", "dog", "bird"], n), "")
            frame = pd.DataFrame({"id": [f"row-{i}" for i in range(start, start + n)], "text": text,
                                  "x1": rng.normal(size=n).round(4), "x2": rng.integers(0, 1000, n), "label": label})
            frame.to_csv(fh, index=False, header=start == 0)
    return path.stat().st_size


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    return float("nan")


def child_main(url: str, csv_path: str) -> None:
    """``--child URL CSV``: prepare and import in this fresh process; prints JSON."""
    from superintendent import importing, ingest, queue
    from superintendent.store import init_db, make_engine, session_scope

    rss_imports = _rss_mb()
    engine = make_engine(url)
    init_db(engine)
    with session_scope(engine) as s:
        queue.create_project(s, "import", options=["cat", "dog", "bird"])
    t0 = time.perf_counter()
    data = Path(csv_path).read_bytes()  # the upload arrives as bytes (Streamlit's file_uploader, the CLI's file)
    t_read = time.perf_counter()
    plan = ingest.TablePlan(display_columns=["text"], model_columns=["text", "x1", "x2"], label_column="label", id_column="id")
    prepared = ingest.prepare_upload(Path(csv_path).name, data, plan=plan, options=["cat", "dog", "bird"])
    t_prepare = time.perf_counter()
    rss_prepared = _rss_mb()
    del data
    result = importing.import_prepared(engine, "import", prepared)
    t_import = time.perf_counter()
    with session_scope(engine, write=False) as s:
        project = queue.get_project(s, "import")
        total, labelled = queue.progress_counts(s, project)
    engine.dispose()
    print(json.dumps({
        "read_file_seconds": round(t_read - t0, 2), "prepare_seconds": round(t_prepare - t_read, 2),
        "import_seconds": round(t_import - t_prepare, 2), "total_seconds": round(t_import - t0, 2),
        "added": result.added, "labelled": result.labelled, "items_in_db": total, "labelled_in_db": labelled,
        "rss_after_imports_mb": rss_imports, "rss_after_prepare_mb": rss_prepared,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }))


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--child", nargs=2, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--rows", type=int, nargs="+", default=None, help="CSV sizes (default 1,000,000)")
    parser.add_argument("--database", choices=["postgresql", "sqlite"], default="postgresql")
    parser.add_argument("--postgres-url", default=None)
    parser.add_argument("--json", default=None)
    parser.add_argument("--plots", dest="plots", action="store_true", default=None)
    parser.add_argument("--no-plots", dest="plots", action="store_false")
    args = parser.parse_args(argv)
    args.rows = args.rows or ([20_000] if args.quick else [1_000_000])
    args.plots = (not args.quick) if args.plots is None else args.plots
    return args


def plot(runs: list[dict], png: bool) -> list[dict[str, str]]:
    from plotly.subplots import make_subplots

    plots = _bench("plots")
    sizes = [f"{r['rows']:,}" for r in runs]
    fig = make_subplots(rows=1, cols=2, subplot_titles=("seconds", "peak RSS, MB"))
    for key, name in (("read_file_seconds", "read file"), ("prepare_seconds", "prepare_upload (parse, check)"),
                      ("import_seconds", "import_prepared (write)")):
        fig.add_bar(name=name, x=sizes, y=[r[key] for r in runs], row=1, col=1)
    fig.add_bar(name="peak RSS", x=sizes, y=[r["peak_rss_mb"] for r in runs], row=1, col=2, marker_color="#888", showlegend=False)
    fig.add_hline(y=60, line_dash="dash", line_color="red", annotation_text="target 60 s", row=1, col=1)
    fig.update_layout(title="CSV import through the Admin page's importer (PostgreSQL)", barmode="stack", xaxis_title="rows")
    return [plots.save(fig, "importing", png_dir=plots.PNG_DIR if png else None)]


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    if args.child:
        child_main(*args.child)
        return {}
    bq = _bench("queue")
    base = bq.postgres_url(args.postgres_url)
    started = dt.datetime.now(dt.timezone.utc)
    runs = []
    for n in args.rows:
        with tempfile.TemporaryDirectory(prefix="sp-bench-") as tmp, bq.fresh_database(args.database, base, Path(tmp)) as url:
            csv_path = Path(tmp) / f"import-{n}.csv"
            print(f"writing a CSV of {n:,} rows ...", file=sys.stderr, flush=True)
            size = write_csv(csv_path, n)
            print(f"importing {n:,} rows ({size / 1e6:.0f} MB) ...", file=sys.stderr, flush=True)
            done = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--child", url, str(csv_path)],
                                  capture_output=True, text=True, check=False, timeout=3600)
            if done.returncode != 0:
                raise RuntimeError(f"import process failed:\n{done.stderr}")
            child = json.loads(done.stdout.strip().splitlines()[-1])
            if child["items_in_db"] != n or child["added"] != n:
                raise RuntimeError(f"expected {n} items, got {child}")
            runs.append({"rows": n, "csv_mb": round(size / 1e6, 1), "rows_per_second": round(n / child["total_seconds"]), **child})
    print("| rows | CSV MB | read s | prepare s | import s | total s | rows/s | RSS after imports MB | peak RSS MB |\n"
          "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in runs:
        print(f"| {r['rows']:,} | {r['csv_mb']} | {r['read_file_seconds']} | {r['prepare_seconds']} | {r['import_seconds']} "
              f"| {r['total_seconds']} | {r['rows_per_second']:,} | {r['rss_after_imports_mb']} | {r['peak_rss_mb']} |")
    biggest = max(runs, key=lambda r: r["rows"])
    targets = [{"target": f"{biggest['rows']:,}-row CSV <= 60 s ({args.database})", "value": f"{biggest['total_seconds']} s",
                "met": biggest["total_seconds"] <= 60}]
    for t in targets:
        print(f"- {'MET' if t['met'] else 'MISSED'}: {t['target']}: {t['value']}")
    report = {"started": started.isoformat(), "machine": bq.machine(), "settings": {k: v for k, v in vars(args).items() if k != "postgres_url"},
              "runs": runs, "targets": targets, "plots": plot(runs, args.plots)}
    bq.write_report(report, "importing", started, args.json)
    return report


if __name__ == "__main__":
    main()
