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

With ``--cold-start`` a second table follows: does the cold start help?
The 20 seed labels chosen by the cold start's coverage order
(``superintendent.learning.cold_start.coverage_features`` on the pool as
the server stores it, then ``superintendent.al.coverage.coverage_order``,
with and without its 10 % random picks) against 20 random ones, then
margin sampling for all, on digits (images), wine (table rows, the
``gradient_boosting`` preset) and pyjokes' jokes by language (text, 11
languages of 14 to 283 jokes, the ``tfidf_logistic_regression`` preset):
classes among the seeds, test accuracy at the seeds, labels to each set's
target (docs/benchmarks.md, "Does the cold start help?").

    python bench/learning.py                # 10 seeds, up to 300 labels
    python bench/learning.py --quick        # 3 seeds, up to 120 labels
    python bench/learning.py --cold-start   # and the cold-start table (10 seeds)
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
from sklearn.datasets import load_digits, load_wine  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import FunctionTransformer, StandardScaler  # noqa: E402

from superintendent.acquisition_functions import certainty, entropy, margin  # noqa: E402
from superintendent.al.coverage import coverage_order  # noqa: E402
from superintendent.learning import make_preset  # noqa: E402
from superintendent.learning.cold_start import coverage_features  # noqa: E402
from superintendent.store import Project  # noqa: E402

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


# --------------------------------------------------------------------------- does the cold start help?


def _digits() -> tuple[list, np.ndarray, object]:
    digits = load_digits()
    scaled = StandardScaler().fit_transform(digits.data)  # the model of the table above: scaled pixels, logistic regression
    model = make_pipeline(FunctionTransformer(lambda items: scaled[np.asarray(items)]), LogisticRegression(max_iter=500))
    return list(digits.images), digits.target, model  # the items as stored: 8x8 arrays; the model is given their row numbers


def _wine() -> tuple[list, np.ndarray, object]:
    data = load_wine(as_frame=True)
    return data.data.to_dict("records"), data.target.to_numpy(), make_preset("gradient_boosting")


def _languages() -> tuple[list, np.ndarray, object]:
    """pyjokes' jokes in all its languages (11: English 283 ... Galician 14; Basque and Hungarian, under 10, left out),
    labelled by language: classes of very different sizes, which 20 random labels often miss."""
    import importlib
    import pkgutil

    import pyjokes

    texts, languages = [], []
    for module in sorted(m.name for m in pkgutil.iter_modules(pyjokes.__path__) if m.name.startswith("jokes_")):
        jokes = getattr(importlib.import_module(f"pyjokes.{module}"), module)["all"]
        if len(jokes) >= 10:
            texts += jokes
            languages += [module.removeprefix("jokes_")] * len(jokes)
    return texts, np.array(languages), make_preset("tfidf_logistic_regression")


# name: (loader, data type, target accuracy, labels at most)
COLD_START_DATA = {"digits": (_digits, "image", 0.90, 300), "wine": (_wine, "tabular", 0.95, 100),
                   "jokes by language": (_languages, "text", 0.90, 200)}
SEEDINGS = ("random", "coverage", "coverage, no random picks")


def _model_input(items: list, rows: np.ndarray, data_type: str) -> object:
    import pandas as pd

    if data_type == "image":
        return rows  # the digits model looks its rows up
    if data_type == "tabular":
        return pd.DataFrame([items[i] for i in rows])
    return [items[i] for i in rows]


def cold_curve(data: str, seeding: str, seed: int, max_labels: int, n_seed: int = 20, step: int = 5) -> dict:
    """Test accuracy from ``n_seed`` labels chosen by ``seeding`` up to ``max_labels``, margin sampling after the seeds."""
    from sklearn.base import clone

    load, data_type, _, _ = COLD_START_DATA[data]
    items, y, model = load()
    pool, test = train_test_split(np.arange(len(y)), test_size=0.3, random_state=seed, stratify=y)
    rng = np.random.default_rng(seed)
    if seeding == "random":
        labelled = list(pool[rng.choice(len(pool), size=n_seed, replace=False)])
    else:  # what the server does before the first model: the coverage order of the pool as stored, its head labelled first
        features = coverage_features([items[i] for i in pool], Project(name=data, data_type=data_type))
        order = coverage_order(features, rng=seed, random_prop=0.0 if seeding.endswith("no random picks") else 0.1)
        labelled = list(pool[order[:n_seed]])
    seed_classes = len(set(y[labelled].tolist()))
    x_test = _model_input(items, test, data_type)
    sizes, accuracy = [], []
    while len(labelled) <= max_labels:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            fitted = clone(model).fit(_model_input(items, np.asarray(labelled), data_type), y[labelled])
        sizes.append(len(labelled))
        accuracy.append(float(np.mean(fitted.predict(x_test) == y[test])))
        rest = np.setdiff1d(pool, labelled)
        if len(rest) == 0:
            break
        picks = rest[margin(fitted.predict_proba(_model_input(items, rest, data_type)))[:step]]
        labelled.extend(int(i) for i in picks)
    return {"sizes": sizes, "accuracy": accuracy, "seed_classes": seed_classes}


def cold_start_table(seeds: int, max_labels: int | None = None) -> dict[str, dict[str, dict]]:
    """Per data set and seeding: classes among the seeds, accuracy at the seeds, labels to the set's target (per seed)."""
    out: dict[str, dict[str, dict]] = {}
    for data, (_, _, target, most) in COLD_START_DATA.items():
        out[data] = {}
        for seeding in SEEDINGS:
            curves = [cold_curve(data, seeding, seed, min(most, max_labels or most)) for seed in range(seeds)]
            needed = [labels_to_reach(c["sizes"], c["accuracy"], target) for c in curves]
            reached = [n for n in needed if n is not None]
            out[data][seeding] = {
                "target": target, "labels_needed": needed,
                "median_needed": float(np.median(reached)) if len(reached) == len(needed) else None,
                "seed_classes": [c["seed_classes"] for c in curves], "accuracy_at_seeds": [c["accuracy"][0] for c in curves],
                "sizes": curves[0]["sizes"], "mean_accuracy": np.mean([c["accuracy"] for c in curves], axis=0).tolist()}
    return out


def print_cold_start(table: dict[str, dict[str, dict]], seeds: int) -> None:
    print(f"\nDoes the cold start help? 20 seed labels by coverage or at random, then margin sampling; {seeds} seeds\n")
    print("| data | seed labels | classes in the seeds (mean) | accuracy at 20 labels (mean) | labels to target (median) | per seed | "
          "ratio to random |")
    print("| --- | --- | ---: | ---: | ---: | --- | ---: |")
    for data, rows in table.items():
        base = rows["random"]["median_needed"]
        for seeding, r in rows.items():
            ratio = "" if base is None or r["median_needed"] is None else f"{r['median_needed'] / base:.2f}"
            per_seed = ", ".join("-" if n is None else str(n) for n in r["labels_needed"])
            median = "not reached by all" if r["median_needed"] is None else f"{r['median_needed']:g}"
            print(f"| {data} ({r['target']:.0%}) | {seeding} | {np.mean(r['seed_classes']):.1f} | {np.mean(r['accuracy_at_seeds']):.3f} | "
                  f"{median} | {per_seed} | {ratio} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--seeds", type=int)
    parser.add_argument("--max-labels", type=int)
    parser.add_argument("--target", type=float, default=0.90)
    parser.add_argument("--cold-start", action="store_true", help="also: does the cold start help? (a second table, see above)")
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
    if args.cold_start:
        t0 = time.perf_counter()
        table = cold_start_table(seeds, args.max_labels or (max_labels if args.quick else None))  # else each set's own cap
        print_cold_start(table, seeds)
        print(f"\n({time.perf_counter() - t0:.0f} s; load average {', '.join(f'{v:.1f}' for v in os.getloadavg())})")
        (out / f"learning-cold-start-{stamp}.json").write_text(json.dumps(table))


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
