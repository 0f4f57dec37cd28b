"""Batch-aware acquisition: labels to 90 % on digits when 8 labellers claim at once.

sklearn's digits, a held-out test split (30 %), standardised pixels,
logistic regression, 20 random seed labels. Each round the model ranks the
pool, the top ``batch`` items are taken at once (as ``batch`` labellers
claiming together), labelled with their true label, and the model is
retrained. Strategies:

* ``margin, 1 labeller``: batch 1, retrain after every label (the reference);
* ``margin, 8 labellers``: plain margin order, top 8 per round;
* ``margin_diverse, 8 labellers``: the batch-aware order of
  :func:`superintendent.al.diversity.diverse_ranking` (window 8), top 8 per round;
* ``random, 8 labellers``.

Test accuracy is measured after every retrain; reported is the number of
labels at the first retrain reaching the target (median over seeds), the
ratio to the one-labeller margin curve, the mean accuracy over the first
150 labels (the area under the mean curve, less noisy than a threshold), a markdown table, JSON and a plotly
figure of the mean learning curves in bench/results/.

    python bench/batch_learning.py            # 10 seeds, up to 250 labels
    python bench/batch_learning.py --quick    # 3 seeds, up to 160 labels (about a minute)
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import argparse  # noqa: E402
import json  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402

import numpy as np  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

from superintendent.acquisition_functions import acquisition_scores  # noqa: E402
from superintendent.al.diversity import DEFAULT_CANDIDATES, diverse_ranking  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
# name -> (ranking, labellers claiming per round)
STRATEGIES = {
    "margin, 1 labeller": ("margin", 1),
    "margin, 8 labellers": ("margin", 8),
    "margin_diverse, 8 labellers": ("margin_diverse", 8),
    "random, 8 labellers": ("random", 8),
}
REFERENCE = "margin, 1 labeller"


def curve(strategy: str, seed: int, max_labels: int, n_seed: int = 20) -> tuple[list[int], list[float]]:
    """Test accuracy after each retrain, from ``n_seed`` random labels up to ``max_labels``."""
    ranking, batch = STRATEGIES[strategy]
    digits = load_digits()
    x = StandardScaler().fit_transform(digits.data)
    x_pool, x_test, y_pool, y_test = train_test_split(x, digits.target, test_size=0.3, random_state=seed, stratify=digits.target)
    rng = np.random.default_rng(seed)
    labelled = list(rng.choice(len(x_pool), size=n_seed, replace=False))
    sizes, accuracy = [], []
    model = LogisticRegression(max_iter=500)
    while len(labelled) <= max_labels:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            model.fit(x_pool[labelled], y_pool[labelled])
        sizes.append(len(labelled))
        accuracy.append(float(model.score(x_test, y_test)))
        pool = np.setdiff1d(np.arange(len(x_pool)), labelled)
        if ranking == "random":
            picks = rng.choice(pool, size=batch, replace=False)
        else:
            scores = acquisition_scores("margin", model.predict_proba(x_pool[pool]))
            if ranking == "margin_diverse":
                order = diverse_ranking(scores, x_pool[pool], window=batch, n_candidates=DEFAULT_CANDIDATES, rng=seed)
            else:
                order = np.argsort(-scores, kind="stable")
            picks = pool[order[:batch]]  # `batch` labellers claim the top of the queue at the same moment
        labelled.extend(int(i) for i in picks)
    return sizes, accuracy


def labels_to_reach(sizes: list[int], accuracy: list[float], target: float) -> int | None:
    return next((n for n, a in zip(sizes, accuracy) if a >= target), None)


def mean_curve(runs: list[tuple[list[int], list[float]]], grid: np.ndarray) -> list[float]:
    """Mean accuracy over seeds on a common label grid (each run held constant between its retrains)."""
    values = []
    for sizes, acc in runs:
        idx = np.searchsorted(sizes, grid, side="right") - 1
        values.append(np.asarray(acc)[np.clip(idx, 0, None)])
    return np.mean(values, axis=0).tolist()


def write_png(fig, path: Path) -> str:
    """PNG through plotly's kaleido with the system Chromium; returns what happened."""
    import os

    os.environ.setdefault("BROWSER_PATH", "/usr/bin/chromium")
    try:
        fig.write_image(path)
    except Exception as exc:  # noqa: BLE001 - image export is optional; the HTML is always written
        return f"PNG skipped: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
    return f"png: {path.relative_to(ROOT)}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--seeds", type=int)
    parser.add_argument("--max-labels", type=int)
    parser.add_argument("--target", type=float, default=0.90)
    parser.add_argument("--no-png", action="store_true")
    args = parser.parse_args()
    seeds = args.seeds or (3 if args.quick else 10)
    max_labels = args.max_labels or (160 if args.quick else 250)
    t0 = time.perf_counter()
    results: dict[str, dict] = {}
    grid = np.arange(20, max_labels + 1)
    for name in STRATEGIES:
        started = time.perf_counter()
        runs = [curve(name, seed, max_labels) for seed in range(seeds)]
        needed = [labels_to_reach(s, a, args.target) for s, a in runs]
        reached = [n for n in needed if n is not None]
        results[name] = {"labellers": STRATEGIES[name][1], "sizes": grid.tolist(), "mean_accuracy": mean_curve(runs, grid),
                         "labels_needed": needed, "median_needed": float(np.median(reached)) if len(reached) == len(needed) else None,
                         "seconds": round(time.perf_counter() - started, 1)}
    elapsed = time.perf_counter() - t0
    print(f"{seeds} seeds, target {args.target:.0%}, up to {max_labels} labels, {elapsed:.0f} s\n")
    print("| strategy | labels to reach target (median) | per seed | vs 1 labeller | mean curve reaches target at | "
          "mean accuracy, 20-150 labels |")
    print("| --- | ---: | --- | ---: | ---: | ---: |")
    base = results[REFERENCE]["median_needed"]
    for name, r in results.items():
        ratio = "" if base is None or r["median_needed"] is None else f"{r['median_needed'] / base - 1:+.0%}"
        per_seed = ", ".join("-" if n is None else str(n) for n in r["labels_needed"])
        area = float(np.mean(r["mean_accuracy"][: 150 - 20 + 1]))
        r["mean_accuracy_20_150"] = area
        r["mean_curve_reaches"] = labels_to_reach(r["sizes"], r["mean_accuracy"], args.target)
        print(f"| {name} | {r['median_needed'] if r['median_needed'] is not None else 'not reached by all'} | {per_seed} | {ratio} | "
              f"{r['mean_curve_reaches'] or '-'} | {area:.3f} |")
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%S")
    meta = {"seeds": seeds, "target": args.target, "max_labels": max_labels, "seconds": round(elapsed, 1), "quick": args.quick}
    (out / f"batch-learning-{stamp}.json").write_text(json.dumps({"meta": meta, "results": results}))
    import plotly.graph_objects as go

    fig = go.Figure([go.Scatter(x=r["sizes"], y=r["mean_accuracy"], name=name, mode="lines") for name, r in results.items()])
    fig.add_hline(y=args.target, line_dash="dot")
    fig.update_layout(title=f"Digits, logistic regression, labellers claiming together: mean test accuracy over {seeds} seeds",
                      xaxis_title="labels", yaxis_title="accuracy", width=900, height=480)
    fig.write_html(out / f"batch-learning-{stamp}.html")
    print(f"\njson: bench/results/batch-learning-{stamp}.json\ncurves: bench/results/batch-learning-{stamp}.html")
    if not args.no_png:
        print(write_png(fig, out / f"batch-learning-{stamp}.png"))


if __name__ == "__main__":
    main()
