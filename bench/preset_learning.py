"""Every preset's learning efficiency: labels to 90 % of the full-data accuracy, margin vs random; 20 labels vs the majority.

For each classification preset of ``superintendent.learning.presets`` (those of :data:`MODEL_PRESETS` whose
:data:`PRESET_LABEL_MODES` include ``single``; the models come from ``make_preset``, the app's own), on data of its
kind that ships with a package (no download):

- ``logistic_regression`` (images): sklearn's digits (8x8, 10 classes);
- ``gradient_boosting`` (tables): sklearn's wine (3 classes) and breast cancer (2 classes), where 20 labels already
  reach 90 % of the full-data accuracy; plotly's tips (the day, 4 classes, from the other columns) and gapminder (the
  continent, 5 classes, from year, life expectancy, population and GDP per person), where they do not;
- ``tfidf_logistic_regression`` (text): pyjokes' jokes (neutral or chuck) and VADER's lexicon (7,520 words and
  emoticons, positive or negative by the sign of their mean rating, from the ``vaderSentiment`` package);
- a preset named ``embeddings_*``, when one exists and its package imports (else reported as not installed), on the
  text sets.

Per seed: a stratified held-out test split (30 %); the full-data accuracy is the preset fitted on the whole pool
(the other 70 %). 20 random seed labels from the pool (drawn again until two classes, as a retrain needs), then
batches of 5 labels (10 on VADER's words, whose budget is 2,000 labels; see ``CASES``) chosen by the margin
acquisition function (``acquisition_scores("margin", predict_proba)`` then ``visiting_order``, as ``run_retrain``
ranks, without its random share), by ``margin_diverse`` (the same scores, the 2,000 most uncertain items re-ordered in
rounds of one batch over the model's features, as ``run_retrain`` ranks such a project whose labellers give a batch's
labels between retrains) or at random; the preset is refitted
after each batch and scored on the test split.

Reports per preset and data set: the labels needed until the test accuracy first reaches 90 % of the full-data
accuracy (median over seeds; a seed that never reaches it within the budget counts as more than the budget), the
ratios margin / random and margin_diverse / random, the same for 95 % and 98 % (from the same curves: where 90 % comes with the seed labels), and
the accuracy at the 20 seed labels against the majority class of those 20 labels (on the test split). Plots the mean
curves (+-1 sd band), one panel per preset and data set (docs/images/bench-presets.png and
bench/results/presets.html; quick runs write only the HTML).
``SUPERINTENDENT_BENCH_RESULTS`` names another folder than bench/results for the JSON and the HTML.

Models are fitted with one thread (``OMP_NUM_THREADS=1`` unless set): the machines these run on are shared, and
gradient boosting on a few hundred rows was measured 16-70x slower with contended OpenMP threads than with one.

    python bench/preset_learning.py            # 10 seeds (55 min at nice 10 on the busy 2-core VM, load 7-18)
    python bench/preset_learning.py --quick    # 3 seeds, smaller budgets (about a minute)
    python bench/preset_learning.py --data digits --seeds 30   # one data set, more seeds
    python bench/preset_learning.py --data vader_words --preset embeddings_logistic_regression --seeds 30
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
os.environ.setdefault("OMP_NUM_THREADS", "1")  # before numpy / sklearn load their thread pools

import argparse  # noqa: E402
import json  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from concurrent.futures import ProcessPoolExecutor  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from importlib import resources  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402

from superintendent.al.acquisition import acquisition_scores, visiting_order  # noqa: E402
from superintendent.al.diversity import DEFAULT_CANDIDATES, TopCandidates  # noqa: E402
from superintendent.learning.presets import MODEL_PRESETS, PRESET_LABEL_MODES, make_preset, model_features  # noqa: E402
from superintendent.validation import ValidationError  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.append(str(ROOT / "bench"))  # after the standard library: bench/queue.py must not shadow `queue`
import plots  # noqa: E402 - bench/plots.py: HTML + PNG export
import first_labels  # noqa: E402 - its data loaders and seed-label draw (until two classes); it drops bench/ from sys.path again

STRATEGIES = ("random", "margin", "margin_diverse")
TEXT_DATA = ("jokes", "vader_words")
HARDER_FRACTIONS = (0.95, 0.98)
N_SEED = 20
DATA_KIND = {"logistic_regression": "image", "gradient_boosting": "table", "tfidf_logistic_regression": "text"}


def vader_words() -> tuple[list[str], np.ndarray]:
    """VADER's lexicon: each entry (word or emoticon) with 'positive' or 'negative', the sign of its mean rating."""
    text = resources.files("vaderSentiment").joinpath("vader_lexicon.txt").read_text(encoding="utf-8")
    rows = [line.split("\t") for line in text.splitlines() if line.strip()]
    return [r[0] for r in rows], np.array(["positive" if float(r[1]) > 0 else "negative" for r in rows])


@dataclass(frozen=True)
class Case:
    """One data set of a preset's kind and its labelling budget: ``step`` labels per batch up to ``max_labels``."""

    name: str
    kind: str
    load: Any
    step: int
    max_labels: int
    quick_max_labels: int


# Budgets: up to most of the pool where the pool is small (wine: 124 rows, tips: 170, jokes: 198); VADER's words need about 1,600
# random labels to reach 90 % of the full-data accuracy (measured), so its batches are 10 labels and the budget 2,000.
# Batches are per data set, the same for every preset of its kind: no preset was slow enough to need 10 (a quick run's
# slowest seed: the embeddings preset on VADER's words, 3 s for both strategies up to 150 labels).
CASES = [
    Case("digits", "image", first_labels.digits, 5, 300, 80),
    Case("wine", "table", first_labels.wine, 5, 120, 60),
    Case("breast_cancer", "table", first_labels.cancer, 5, 300, 60),
    Case("tips_day", "table", first_labels.tips("day"), 5, 160, 60),
    Case("gapminder", "table", first_labels.gapminder, 5, 300, 60),
    Case("jokes", "text", first_labels.jokes, 5, 190, 60),
    Case("vader_words", "text", vader_words, 10, 2000, 150),
]


def preset_kind(name: str) -> str | None:
    """The data kind a preset is measured on: the known presets by name, another by the words of its description."""
    if name in DATA_KIND:
        return DATA_KIND[name]
    if name.startswith("embeddings"):  # text embeddings (WordLlama, superintendent/learning/embeddings.py)
        return "text"
    text = MODEL_PRESETS.get(name, "").lower()
    return next((kind for kind, words in (("text", ("text",)), ("image", ("image",)), ("table", ("table", "row")))
                 if any(w in text for w in words)), None)


def installed(name: str) -> str | None:
    """None when preset ``name`` can be built and fitted here; else why not (its package is not installed, ...)."""
    try:
        model = make_preset(name)
        kind = preset_kind(name)
        if kind == "text":
            model.fit(["a good day", "a bad day"], ["p", "n"])
    except (ImportError, OSError, ValidationError) as exc:  # its package, or a file it loads (model weights), is missing
        return f"not installed ({type(exc).__name__}: {exc})"
    return None


def classification_presets() -> tuple[list[str], dict[str, str]]:
    """(presets to measure, {preset: why it is left out}) among the single-label presets."""
    measured, left_out = [], {}
    for name in MODEL_PRESETS:
        if "single" not in PRESET_LABEL_MODES.get(name, ()):
            continue
        if preset_kind(name) is None:
            left_out[name] = "no data kind known for it (name and description name no text, image or table)"
        elif (why := installed(name)) is not None:
            left_out[name] = why
        else:
            measured.append(name)
    if not any(n.startswith("embeddings") for n in MODEL_PRESETS):
        left_out["embeddings_*"] = "no preset named embeddings_* in MODEL_PRESETS"
    return measured, left_out


def accuracy(model: Any, x: Any, y: np.ndarray) -> float:
    return float(np.mean(model.predict(x) == y))


def fit(preset: str, x: Any, y: np.ndarray) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence warnings of a few labels
        return make_preset(preset).fit(x, y)


def run_seed(job: tuple[str, str, int, int, int]) -> dict[str, Any]:
    """One seed of one preset on one data set: full-data accuracy, the 20-label figures, and both strategies' curves."""
    preset, case_name, seed, step, max_labels = job
    case = next(c for c in CASES if c.name == case_name)
    x, y = case.load()
    y = np.asarray(y)
    pool, test = train_test_split(np.arange(len(y)), test_size=0.3, random_state=seed, stratify=y)
    x_pool, y_pool = first_labels.rows(x, pool), y[pool]
    x_test, y_test = first_labels.rows(x, test), y[test]
    t0 = time.perf_counter()
    full = accuracy(fit(preset, x_pool, y_pool), x_test, y_test)
    seed_labels, _ = first_labels.first_labels(y_pool, N_SEED, seed)
    values, counts = np.unique(y_pool[seed_labels], return_counts=True)
    baseline = float(np.mean(y_test == values[counts.argmax()]))
    out: dict[str, Any] = {"seed": seed, "full_accuracy": full, "majority_baseline": baseline, "curves": {}}
    budget = min(max_labels, len(pool))
    for strategy in STRATEGIES:
        rng = np.random.default_rng(10_000 + seed)
        labelled = [int(i) for i in seed_labels]
        sizes, acc = [], []
        while True:
            model = fit(preset, first_labels.rows(x_pool, np.array(labelled)), y_pool[labelled])
            predicted = model.predict(x_test)
            sizes.append(len(labelled))
            acc.append(float(np.mean(predicted == y_test)))
            if len(labelled) == N_SEED:
                out["classes_predicted_at_20"] = len(set(predicted))
            if len(labelled) + step > budget:
                break
            rest = np.setdiff1d(np.arange(len(pool)), labelled)
            if strategy == "random":
                picks = rng.choice(rest, size=step, replace=False)
            else:  # run_retrain's ranking of a "margin" / "margin_diverse" project (without its random share, shuffle_prop 0)
                x_rest = first_labels.rows(x_pool, rest)
                proba = np.asarray(model.predict_proba(x_rest))
                scores = acquisition_scores("margin", proba)
                # margin_diverse as _predict_batches and _rank: the top candidates' model features, rounds of one batch (the
                # labels given before the next retrain: the window run_retrain takes when the project sets none)
                if strategy == "margin_diverse":
                    candidates = TopCandidates(DEFAULT_CANDIDATES)
                    candidates.add(scores, lambda rows: model_features(model, first_labels.rows(x_rest, rows), proba[rows]))
                    order = candidates.order(scores, window=step, rng=0)
                else:
                    order = visiting_order(scores)
                picks = rest[order[:step]]
            labelled.extend(int(i) for i in picks)
        out["curves"][strategy] = {"sizes": sizes, "accuracy": acc}
    out["accuracy_at_20"] = out["curves"]["random"]["accuracy"][0]  # both strategies start from the same 20 labels
    out["seconds"] = time.perf_counter() - t0
    return out


def labels_to_reach(sizes: list[int], acc: list[float], target: float) -> int | None:
    return next((n for n, a in zip(sizes, acc) if a >= target), None)


def median_needed(needed: list[int | None]) -> float | None:
    """Median over seeds, a seed that never reached the target counting as more than any budget; None if that is the median."""
    m = float(np.median([np.inf if n is None else n for n in needed]))
    return None if np.isinf(m) else m


def ratio_of(random_median: float | None, margin_median: float | None, budget: int) -> tuple[float | None, float | None]:
    """(margin / random, None); or (None, bound) when random never reached the target within the budget but margin did:
    then the ratio is below margin's median over the budget; (None, None) when margin did not reach it either."""
    if random_median is not None and margin_median is not None:
        return margin_median / random_median, None
    if random_median is None and margin_median is not None:
        return None, margin_median / budget
    return None, None


def needed_by(runs: list[dict[str, Any]], strategy: str, targets: list[float]) -> list[int | None]:
    return [labels_to_reach(r["curves"][strategy]["sizes"], r["curves"][strategy]["accuracy"], t) for r, t in zip(runs, targets)]


def summarise(preset: str, data: str, step: int, runs: list[dict[str, Any]], fraction: float) -> dict[str, Any]:
    runs = sorted(runs, key=lambda r: r["seed"])
    targets = [fraction * r["full_accuracy"] for r in runs]
    result: dict[str, Any] = {
        "preset": preset, "data": data, "step": step, "seeds": len(runs),
        "full_accuracy": [r["full_accuracy"] for r in runs], "target_accuracy": targets,
        "accuracy_at_20": [r["accuracy_at_20"] for r in runs], "majority_baseline": [r["majority_baseline"] for r in runs],
        "classes_predicted_at_20": [r["classes_predicted_at_20"] for r in runs], "seconds": sum(r["seconds"] for r in runs),
        "strategies": {},
    }
    for strategy in STRATEGIES:
        curves = [r["curves"][strategy] for r in runs]
        n = min(len(c["sizes"]) for c in curves)
        acc = np.array([c["accuracy"][:n] for c in curves])
        needed = needed_by(runs, strategy, targets)
        result["strategies"][strategy] = {
            "sizes": curves[0]["sizes"][:n], "mean_accuracy": acc.mean(axis=0).tolist(), "std_accuracy": acc.std(axis=0).tolist(),
            "per_seed_accuracy": [c["accuracy"] for c in curves], "labels_needed": needed, "median_needed": median_needed(needed)}
    budget = result["budget"] = result["strategies"]["random"]["sizes"][-1]
    rnd, mrg, div = (result["strategies"][k]["median_needed"] for k in STRATEGIES)
    result["ratio"], result["ratio_below"] = ratio_of(rnd, mrg, budget)
    result["diverse"] = dict(zip(("ratio", "ratio_below"), ratio_of(rnd, div, budget)))  # margin_diverse / random
    # where the 20 seed labels already reach the target there is nothing to save: the ratio target cannot be judged there
    result["reached_at_seed_labels"] = rnd == mrg == div == N_SEED
    # harder targets from the same curves: where 90 % comes at the seed labels, do the next labels come sooner by margin?
    result["harder_targets"] = []
    for f in HARDER_FRACTIONS:
        medians = [median_needed(needed_by(runs, k, [f * r["full_accuracy"] for r in runs])) for k in STRATEGIES]
        ratio, below = ratio_of(medians[0], medians[1], budget)
        diverse = dict(zip(("ratio", "ratio_below"), ratio_of(medians[0], medians[2], budget)))
        result["harder_targets"].append({"fraction": f, "random": medians[0], "margin": medians[1], "ratio": ratio,
                                         "ratio_below": below, "margin_diverse": medians[2], "diverse": diverse})
    passing = [a > b for a, b in zip(result["accuracy_at_20"], result["majority_baseline"])]
    result["seeds_beating_majority_at_20"] = sum(passing)
    result["targets"] = {"beats_majority_at_20_every_seed": all(passing)}
    for key, r in (("margin", result), ("margin_diverse", result["diverse"])):
        ratio = r["ratio"] if r["ratio"] is not None else r["ratio_below"]
        result["targets"][f"{key}_ratio_at_most_0.75"] = None if result["reached_at_seed_labels"] else ratio is not None and ratio <= 0.75
    return result


def fmt_median(m: float | None) -> str:
    return f"{m:g}" if m is not None else "not reached"


def fmt_ratio(r: dict[str, Any]) -> str:
    if r["ratio"] is not None:
        return f"{r['ratio']:.2f}"
    if r["ratio_below"] is not None:
        return f"< {r['ratio_below']:.2f}"
    return "-"


def print_tables(report: dict[str, Any]) -> None:
    seeds, fraction = report["seeds"], report["target_fraction"]
    print(f"{seeds} seeds, target {fraction:.0%} of the full-data accuracy, {report['seconds']:.0f} s, "
          f"load average {report['load_average_start'][0]:.2f} at the start, {report['load_average_end'][0]:.2f} at the end\n")
    print("| preset | data | full-data accuracy (mean) | labels to target: random (median) | margin (median) | margin / random "
          "| margin_diverse (median) | margin_diverse / random "
          "| budget (step) | accuracy at 20 labels (mean) | majority of the 20 (mean) | seeds beating it |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in report["results"]:
        s = r["strategies"]
        print(f"| `{r['preset']}` | {r['data']} | {np.mean(r['full_accuracy']):.1%} | {fmt_median(s['random']['median_needed'])} "
              f"| {fmt_median(s['margin']['median_needed'])} | {fmt_ratio(r)} "
              f"| {fmt_median(s['margin_diverse']['median_needed'])} | {fmt_ratio(r['diverse'])} | {r['budget']} ({r['step']}) "
              f"| {np.mean(r['accuracy_at_20']):.1%} | {np.mean(r['majority_baseline']):.1%} "
              f"| {r['seeds_beating_majority_at_20']} of {r['seeds']} |")
    print("\nLabels needed per seed (- : not reached within the budget)\n")
    print("| preset | data | random | margin | margin_diverse |")
    print("| --- | --- | --- | --- | --- |")
    for r in report["results"]:
        per = {k: ", ".join("-" if n is None else str(n) for n in v["labels_needed"]) for k, v in r["strategies"].items()}
        print(f"| `{r['preset']}` | {r['data']} | {per['random']} | {per['margin']} | {per['margin_diverse']} |")
    print("\nHarder targets from the same curves: labels to a share of the full-data accuracy (median: random / margin / margin_diverse, ratios to random)\n")
    print("| preset | data | " + " | ".join(f"{f:.0%}" for f in HARDER_FRACTIONS) + " |")
    print("| --- | --- | " + " | ".join("---:" for _ in HARDER_FRACTIONS) + " |")
    for r in report["results"]:
        cells = [f"{fmt_median(h['random'])} / {fmt_median(h['margin'])} / {fmt_median(h['margin_diverse'])}, "
                 f"{fmt_ratio(h)} / {fmt_ratio(h['diverse'])}" for h in r["harder_targets"]]
        print(f"| `{r['preset']}` | {r['data']} | " + " | ".join(cells) + " |")
    for name, why in report["left_out"].items():
        print(f"\nleft out: {name}: {why}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--seeds", type=int)
    parser.add_argument("--target", type=float, default=0.90, help="share of the full-data accuracy to reach")
    parser.add_argument("--workers", type=int, default=1, help="processes (default 1: the machine is shared)")
    parser.add_argument("--data", help="only these data sets, comma-separated (e.g. digits,wine); default: all")
    parser.add_argument("--preset", help="only these presets, comma-separated; default: every classification preset")
    parser.add_argument("--no-plots", action="store_true")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--plot-from", type=Path, help="only draw the plot of an earlier run's JSON")
    args = parser.parse_args()
    if args.plot_from:
        plot(json.loads(args.plot_from.read_text()), quick=args.quick)
        return
    seeds = args.seeds or (3 if args.quick else 10)
    presets, left_out = classification_presets()
    only = set(args.data.split(",")) if args.data else {c.name for c in CASES}
    if unknown := only - {c.name for c in CASES}:
        parser.error(f"unknown data set(s) {', '.join(sorted(unknown))}; choose from {', '.join(c.name for c in CASES)}")
    if args.preset:
        wanted = set(args.preset.split(","))
        if unknown := wanted - set(presets):
            parser.error(f"unknown or not installed preset(s) {', '.join(sorted(unknown))}; measured here: {', '.join(presets)}")
        presets = [p for p in presets if p in wanted]
    cases = [(p, c) for p in presets for c in CASES if c.kind == preset_kind(p) and c.name in only]
    jobs = [(p, c.name, seed, c.step, c.quick_max_labels if args.quick else c.max_labels)
            for p, c in cases for seed in range(seeds)]
    load_start, t0 = os.getloadavg(), time.perf_counter()
    with ProcessPoolExecutor(max_workers=max(1, args.workers)) as pool:
        done = []
        for k, run in enumerate(pool.map(run_seed, jobs), 1):  # progress on stderr: a full run takes a while
            done.append(run)
            print(f"[{k}/{len(jobs)}] {jobs[k - 1][0]} on {jobs[k - 1][1]}, seed {run['seed']}: {run['seconds']:.0f} s "
                  f"(load average {os.getloadavg()[0]:.1f})", file=sys.stderr, flush=True)
    results = []
    for p, c in cases:
        runs = [r for job, r in zip(jobs, done) if job[:2] == (p, c.name)]
        results.append(summarise(p, c.name, c.step, runs, args.target))
    report = {"seeds": seeds, "quick": args.quick, "target_fraction": args.target, "n_seed_labels": N_SEED,
              "seconds": time.perf_counter() - t0, "load_average_start": list(load_start),
              "load_average_end": list(os.getloadavg()),
              "omp_num_threads": os.environ.get("OMP_NUM_THREADS"), "presets": presets, "left_out": left_out, "results": results}
    print_tables(report)
    out = Path(os.environ.get("SUPERINTENDENT_BENCH_RESULTS") or ROOT / "bench" / "results")
    out.mkdir(parents=True, exist_ok=True)
    (out / f"presets-{time.strftime('%Y%m%dT%H%M%S')}.json").write_text(json.dumps(report))
    if args.json:
        args.json.write_text(json.dumps(report))
    if not args.no_plots:
        plot(report, quick=args.quick)


COLOURS = {"random": "99,110,250", "margin": "239,85,59", "margin_diverse": "0,160,120"}


def plot(report: dict[str, Any], quick: bool) -> None:
    """One panel per preset and data set (images and tables on the first row, text on the second): mean test accuracy per
    strategy with a +-1 sd band, the target (dotted) and the majority class of the 20 seed labels (dashed)."""
    from plotly.subplots import make_subplots

    results = report["results"]
    rows_of_kinds = ([r for r in results if r["data"] not in TEXT_DATA], [r for r in results if r["data"] in TEXT_DATA])
    grid = [row for row in rows_of_kinds if row]
    cols = max(map(len, grid))
    titles = [f"{r['data']}<br>{r['preset']}" if r else "" for row in grid for r in row + [None] * (cols - len(row))]
    fig = make_subplots(rows=len(grid), cols=cols, subplot_titles=titles, horizontal_spacing=0.05, vertical_spacing=0.22)
    free = next(((i, len(row)) for i, row in enumerate(grid) if len(row) < cols), None)  # an empty cell: the legend goes there
    for i, row_results in enumerate(grid):
        for j, r in enumerate(row_results):
            row, col = i + 1, j + 1
            for name, s in r["strategies"].items():
                x, mean, std = s["sizes"], np.array(s["mean_accuracy"]), np.array(s["std_accuracy"])
                rgb = COLOURS[name]
                fig.add_scatter(x=x + x[::-1], y=np.r_[mean + std, (mean - std)[::-1]].tolist(), mode="lines", fill="toself",
                                line=dict(width=0), fillcolor=f"rgba({rgb},0.13)", hoverinfo="skip", showlegend=False,
                                row=row, col=col)
                fig.add_scatter(x=x, y=mean.tolist(), mode="lines", name=name, legendgroup=name, showlegend=i == j == 0,
                                line=dict(color=f"rgb({rgb})", width=2), row=row, col=col)
            target, majority = float(np.mean(r["target_accuracy"])), float(np.mean(r["majority_baseline"]))
            fig.add_hline(y=target, line_dash="dot", line_color="black", line_width=1, row=row, col=col)
            fig.add_hline(y=majority, line_dash="dash", line_color="grey", line_width=1, row=row, col=col)
            low = min(majority, float(np.min(np.array(r["strategies"]["random"]["mean_accuracy"]))))
            fig.update_yaxes(range=[max(0.0, low - 0.05), 1.01], row=row, col=col)
            fig.update_xaxes(title_text="labels", title_standoff=0, row=row, col=col)
    legend = dict(x=(free[1] + 0.1) / cols, y=1 - (free[0] + 0.25) / len(grid)) if free else dict(orientation="h", y=-0.15)
    for name, dash, colour in ((f"{report['target_fraction']:.0%} of full-data accuracy", "dot", "black"),
                               ("majority of the 20 seed labels", "dash", "grey")):  # legend entries for the lines of every panel
        fig.add_scatter(x=[None], y=[None], mode="lines", name=name, line=dict(dash=dash, color=colour, width=1), row=1, col=1)
    fig.update_layout(title=dict(text=f"Every preset: test accuracy from 20 random labels: random, margin and margin_diverse order (mean +-1 sd, "
                                      f"{report['seeds']} seeds)", font=dict(size=14)),
                      legend=dict(xanchor="left", yanchor="top", font=dict(size=11), **legend))
    fig.update_annotations(font_size=10)
    written = plots.save(fig, "presets", png_dir=None if quick else plots.PNG_DIR)
    print(f"\ncurves: {', '.join(written.values())}")


if __name__ == "__main__":
    main()
