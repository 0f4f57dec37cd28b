"""Spans: labels needed to reach a target entity F1, random order vs the span model's uncertainty orders.

The span set is built from plotly's bundled data (``superintendent.learning.span_data``: countries, Montreal
districts and days in template sentences, with look-alikes that are not marked; the test sentences use names the
pool never shows). The model is the app's own (``superintendent.learning.spans.SpanModel``, a CRF over tokens).
Per seed: 10 random seed labels from the pool, then 10 labels at a time chosen by each strategy (the true spans
are "given" by the simulated labeller), refitting after each batch, up to ``--max-labels``; entity F1 (exact
start, end and label) on the test sentences after each batch. Strategies: random, and the uncertainty
aggregations of ``SpanModel`` (mean / max / total token entropy, sequence least confidence).

Reports the labels each strategy needs to reach ``--target`` (median and per seed) and plots the mean curves with
a +-1 sd band (docs/images/bench-span-learning.png and bench/results/span-learning.html; quick runs write only
the HTML). ``SUPERINTENDENT_BENCH_RESULTS`` names another folder than bench/results for the JSON and the HTML.

    python bench/span_learning.py            # 10 seeds, up to 250 labels (8 to 12 min on 2 busy cores)
    python bench/span_learning.py --quick    # 2 seeds, up to 60 labels, smaller pool
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import time  # noqa: E402
from concurrent.futures import ProcessPoolExecutor  # noqa: E402

import numpy as np  # noqa: E402

from superintendent.learning.span_data import make_span_set  # noqa: E402
from superintendent.learning.spans import AGGREGATIONS, DEFAULT_AGGREGATION, SpanModel, entity_f1  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
STRATEGIES = ("random", *AGGREGATIONS)


def curve(strategy: str, seed: int, max_labels: int, pool_size: int, test_size: int, n_seed: int = 10,
          step: int = 10) -> tuple[list[int], list[float]]:
    """Entity F1 on the test sentences after each ``step`` labels, from ``n_seed`` random labels up to ``max_labels``."""
    pool = make_span_set(pool_size, part="pool", seed=seed)
    test = make_span_set(test_size, part="test", seed=10_000 + seed)
    rng = np.random.default_rng(seed)
    labelled = [int(i) for i in rng.choice(pool_size, size=n_seed, replace=False)]
    model = SpanModel(aggregation=strategy if strategy != "random" else DEFAULT_AGGREGATION)
    sizes, f1 = [], []
    while True:
        model.fit([pool.texts[i] for i in labelled], [pool.values[i] for i in labelled])
        sizes.append(len(labelled))
        f1.append(entity_f1(test.values, model.predict(test.texts))["f1"])
        if len(labelled) >= max_labels:
            return sizes, f1
        rest = np.setdiff1d(np.arange(pool_size), labelled)
        if strategy == "random":
            picks = rng.choice(rest, size=step, replace=False)
        else:  # the retrain's order: most doubtful first (stable sort: ties keep item order)
            doubt = model.uncertainty([pool.texts[i] for i in rest])
            picks = rest[np.argsort(-doubt, kind="stable")[:step]]
        labelled.extend(int(i) for i in picks)


def labels_to_reach(sizes: list[int], f1: list[float], target: float) -> int | None:
    return next((n for n, a in zip(sizes, f1) if a >= target), None)


def _run(args: tuple[str, int, int, int, int]) -> tuple[str, int, list[int], list[float]]:
    strategy, seed, max_labels, pool_size, test_size = args
    sizes, f1 = curve(strategy, seed, max_labels, pool_size, test_size)
    return strategy, seed, sizes, f1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--seeds", type=int)
    parser.add_argument("--max-labels", type=int)
    parser.add_argument("--target", type=float, default=0.85)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--no-plots", action="store_true")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--plot-from", type=Path, help="only draw the plot of an earlier run's JSON")
    args = parser.parse_args()
    if args.plot_from:
        report = json.loads(args.plot_from.read_text())
        plot(report["results"], report["seeds"], report["target"], quick=args.quick)
        return
    seeds = args.seeds or (2 if args.quick else 10)
    max_labels = args.max_labels or (60 if args.quick else 250)
    pool_size, test_size = (400, 200) if args.quick else (1500, 500)
    t0 = time.perf_counter()
    jobs = [(s, seed, max_labels, pool_size, test_size) for s in STRATEGIES for seed in range(seeds)]
    with ProcessPoolExecutor(max_workers=max(1, args.workers)) as pool:
        done = list(pool.map(_run, jobs))
    results: dict[str, dict] = {}
    for name in STRATEGIES:
        runs = sorted((seed, sizes, f1) for s, seed, sizes, f1 in done if s == name)
        curves = [f1 for _, _, f1 in runs]
        sizes = runs[0][1]
        needed = [labels_to_reach(sz, f1, args.target) for _, sz, f1 in runs]
        reached = [n for n in needed if n is not None]
        results[name] = {"sizes": sizes, "mean_f1": np.mean(curves, axis=0).tolist(), "std_f1": np.std(curves, axis=0).tolist(),
                         "per_seed_f1": curves, "labels_needed": needed,
                         "median_needed": float(np.median(reached)) if len(reached) == len(needed) else None}
    seconds = time.perf_counter() - t0
    print(f"{seeds} seeds, pool {pool_size}, test {test_size}, target entity F1 {args.target:.2f}, up to {max_labels} labels, "
          f"{seconds:.0f} s\n")
    print("| strategy | labels to reach target (median) | per seed | ratio to random | F1 at the last size (mean) |")
    print("| --- | ---: | --- | ---: | ---: |")
    base = results["random"]["median_needed"]
    for name, r in results.items():
        ratio = "" if base is None or r["median_needed"] is None else f"{r['median_needed'] / base:.2f}"
        per_seed = ", ".join("-" if n is None else str(n) for n in r["labels_needed"])
        median = f"{r['median_needed']:g}" if r["median_needed"] is not None else "not reached by all"
        print(f"| {name} | {median} | {per_seed} | {ratio} | {r['mean_f1'][-1]:.3f} |")
    report = {"seeds": seeds, "target": args.target, "max_labels": max_labels, "pool": pool_size, "test": test_size,
              "seconds": seconds, "default_aggregation": DEFAULT_AGGREGATION, "results": results}
    out = Path(os.environ.get("SUPERINTENDENT_BENCH_RESULTS") or ROOT / "bench" / "results")
    out.mkdir(parents=True, exist_ok=True)
    (out / f"span-learning-{time.strftime('%Y%m%dT%H%M%S')}.json").write_text(json.dumps(report))
    if args.json:
        args.json.write_text(json.dumps(report))
    if not args.no_plots:
        plot(results, seeds, args.target, quick=args.quick)


COLOURS = {"random": "99,110,250", "mean_entropy": "239,85,59", "max_entropy": "0,204,150", "total_entropy": "255,161,90",
           "least_confidence": "171,99,250"}


def plot(results: dict[str, dict], seeds: int, target: float, quick: bool) -> None:
    """Mean entity F1 per strategy with a +-1 standard deviation band over seeds."""
    import plotly.graph_objects as go

    sys.path.append(str(ROOT / "bench"))  # after the standard library: bench/queue.py must not shadow `queue`
    import plots  # noqa: PLC0415 - bench/plots.py: HTML + PNG export

    fig = go.Figure()
    for name, r in results.items():
        x, mean, std = r["sizes"], np.array(r["mean_f1"]), np.array(r["std_f1"])
        rgb = COLOURS.get(name, "100,100,100")
        fig.add_scatter(x=x + x[::-1], y=np.r_[mean + std, (mean - std)[::-1]].tolist(), fill="toself", line=dict(width=0),
                        fillcolor=f"rgba({rgb},0.12)", hoverinfo="skip", showlegend=False)
        needed = f": {r['median_needed']:g} labels to {target:.2f}" if r["median_needed"] is not None else ": target not reached by all"
        fig.add_scatter(x=x, y=mean.tolist(), mode="lines", name=f"{name}{needed}", line=dict(color=f"rgb({rgb})", width=2))
    fig.add_hline(y=target, line_dash="dot", annotation_text=f"F1 {target:.2f}", annotation_position="bottom right")
    fig.update_layout(title=f"Spans (CRF over tokens), 10 random seed labels: test entity F1 (mean +-1 sd over {seeds} seeds)",
                      xaxis_title="labelled sentences (log scale)", yaxis_title="entity F1 (exact spans, unseen names)",
                      xaxis_type="log", xaxis_tickvals=[10, 20, 30, 50, 70, 100, 150, 250], yaxis_range=[0.65, 0.92],
                      legend=dict(x=0.42, y=0.05))
    written = plots.save(fig, "span-learning", png_dir=None if quick else plots.PNG_DIR)
    print(f"\ncurves: {', '.join(written.values())}")


if __name__ == "__main__":
    main()
