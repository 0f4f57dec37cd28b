"""Learning efficiency: labels needed to reach 90 % accuracy on digits, random vs the acquisition functions.

sklearn's digits, a held-out test split (30 %), logistic regression, 20
random seed labels, then one label at a time chosen by each strategy from
the pool (the true label is "given" by the simulated labeller). Repeated
over several seeds; reports the labels needed to reach the target accuracy
(median and range over seeds) and plots the learning curves: mean test
accuracy over seeds with a band of +-1 standard deviation, per strategy
(docs/images/bench-learning.png and bench/results/learning.html; quick runs
write only the HTML). ``SUPERINTENDENT_BENCH_RESULTS`` names another folder
than bench/results for the JSON and the HTML.

    python bench/learning.py            # 10 seeds, up to 300 labels
    python bench/learning.py --quick    # 3 seeds, up to 120 labels
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402

import numpy as np  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

from superintendent.acquisition_functions import certainty, entropy, margin  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
STRATEGIES = {"random": None, "margin": margin, "entropy": entropy, "certainty": certainty}


def curve(strategy: str, seed: int, max_labels: int, n_seed: int = 20, step: int = 5) -> tuple[list[int], list[float]]:
    """Accuracy on the test split after each `step` labels, from `n_seed` random labels up to `max_labels`."""
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
        if STRATEGIES[strategy] is None:
            picks = rng.choice(pool, size=step, replace=False)
        else:
            # predict_proba covers only the classes seen so far; that is what a live model would give too
            picks = pool[STRATEGIES[strategy](model.predict_proba(x_pool[pool]))[:step]]
        labelled.extend(int(i) for i in picks)
    return sizes, accuracy


def labels_to_reach(sizes: list[int], accuracy: list[float], target: float) -> int | None:
    return next((n for n, a in zip(sizes, accuracy) if a >= target), None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--seeds", type=int)
    parser.add_argument("--max-labels", type=int)
    parser.add_argument("--target", type=float, default=0.90)
    args = parser.parse_args()
    seeds = args.seeds or (3 if args.quick else 10)
    max_labels = args.max_labels or (120 if args.quick else 300)
    t0 = time.perf_counter()
    results: dict[str, dict] = {}
    for name in STRATEGIES:
        runs = [curve(name, seed, max_labels) for seed in range(seeds)]
        sizes = runs[0][0]
        mean = np.mean([acc for _, acc in runs], axis=0)
        std = np.std([acc for _, acc in runs], axis=0)
        needed = [labels_to_reach(s, a, args.target) for s, a in runs]
        reached = [n for n in needed if n is not None]
        results[name] = {"sizes": sizes, "mean_accuracy": mean.tolist(), "std_accuracy": std.tolist(),
                         "per_seed_accuracy": [acc for _, acc in runs], "labels_needed": needed,
                         "median_needed": float(np.median(reached)) if len(reached) == len(needed) else None}
    print(f"{seeds} seeds, target {args.target:.0%}, up to {max_labels} labels, {time.perf_counter() - t0:.0f} s\n")
    print("| strategy | labels to reach target (median) | per seed | ratio to random |")
    print("| --- | ---: | --- | ---: |")
    base = results["random"]["median_needed"]
    for name, r in results.items():
        ratio = "" if base is None or r["median_needed"] is None else f"{r['median_needed'] / base:.2f}"
        per_seed = ", ".join("-" if n is None else str(n) for n in r["labels_needed"])
        print(f"| {name} | {r['median_needed'] if r['median_needed'] is not None else 'not reached by all'} | {per_seed} | {ratio} |")
    out = Path(os.environ.get("SUPERINTENDENT_BENCH_RESULTS") or ROOT / "bench" / "results")
    out.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%S")
    (out / f"learning-{stamp}.json").write_text(json.dumps(results))
    plot(results, seeds, args.target, quick=args.quick)


COLOURS = {"random": "99,110,250", "margin": "239,85,59", "entropy": "0,204,150", "certainty": "171,99,250"}


def plot(results: dict[str, dict], seeds: int, target: float, quick: bool) -> None:
    """Mean accuracy per strategy with a +-1 standard deviation band over seeds."""
    import plotly.graph_objects as go

    sys.path.append(str(ROOT / "bench"))  # after the standard library: bench/queue.py must not shadow `queue`
    import plots  # noqa: PLC0415 - bench/plots.py: HTML + PNG export

    fig = go.Figure()
    for name, r in results.items():
        x, mean, std = r["sizes"], np.array(r["mean_accuracy"]), np.array(r["std_accuracy"])
        rgb = COLOURS.get(name, "100,100,100")
        fig.add_scatter(x=x + x[::-1], y=np.r_[mean + std, (mean - std)[::-1]].tolist(), fill="toself", line=dict(width=0),
                        fillcolor=f"rgba({rgb},0.15)", hoverinfo="skip", showlegend=False)
        needed = f", {r['median_needed']:g} labels to {target:.0%}" if r["median_needed"] is not None else ""
        fig.add_scatter(x=x, y=mean.tolist(), mode="lines", name=f"{name}{needed}", line=dict(color=f"rgb({rgb})", width=2))
    fig.add_hline(y=target, line_dash="dot", annotation_text=f"{target:.0%}", annotation_position="bottom right")
    fig.update_layout(title=f"Digits, logistic regression, 20 random seed labels: test accuracy (mean +-1 sd over {seeds} seeds)",
                      xaxis_title="labels", yaxis_title="test accuracy", yaxis_range=[0.5, 1.0], legend=dict(x=0.55, y=0.1))
    written = plots.save(fig, "learning", png_dir=None if quick else plots.PNG_DIR)
    print(f"\ncurves: {', '.join(written.values())}")


if __name__ == "__main__":
    main()
