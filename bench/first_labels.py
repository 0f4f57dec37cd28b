"""The presets at the first labels: accuracy on the unlabelled rest against the majority class, before and after issue 14.

Data that ships with packages (no download): sklearn's wine (table, 3
classes), plotly's tips (table: `time`, lunch or dinner, from the other
columns; the day carries most of it), pyjokes' jokes (text: neutral or
chuck) and sklearn's digits (8x8 images, 10 classes). For each seed, ``n``
random rows are labelled (drawn again until two classes: a retrain skips a
single class), the preset is fitted on them and predicts the rest. A seed
passes when the model predicts more than one class on the rest and beats the
majority class of the labelled rows (the majority-class baseline) there.
"Before" is the presets as they were (copied below), "after" is
``superintendent.learning.make_preset``.

The second table is the table preset's switch point: its small-data stage
(logistic regression on scaled numbers and one-hot categories) against
gradient boosting, by label count, on five tables.

    python bench/first_labels.py            # 10 seeds; switch table 5 seeds
    python bench/first_labels.py --quick    # 3 seeds; switch table 2 seeds, fewer label counts
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
from collections.abc import Callable  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
import plotly.express as px  # noqa: E402
from pyjokes.jokes_en import jokes_en  # noqa: E402
from sklearn.datasets import load_breast_cancer, load_digits, load_wine  # noqa: E402
from sklearn.ensemble import HistGradientBoostingClassifier  # noqa: E402
from sklearn.feature_extraction.text import TfidfVectorizer  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import FunctionTransformer, StandardScaler  # noqa: E402

from superintendent.learning import make_preset  # noqa: E402
from superintendent.learning.presets import as_frame, as_text, flatten, _table_small  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def old_preset(name: str) -> Any:
    """The presets before issue 14 (superintendent/learning/presets.py at that time)."""
    if name == "logistic_regression":
        return make_pipeline(FunctionTransformer(flatten), StandardScaler(), LogisticRegression(max_iter=2000))
    if name == "tfidf_logistic_regression":
        return make_pipeline(FunctionTransformer(as_text), TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True),
                             LogisticRegression(max_iter=2000))
    return make_pipeline(FunctionTransformer(as_frame), HistGradientBoostingClassifier(categorical_features="from_dtype", max_iter=100))


def wine() -> tuple[Any, np.ndarray]:
    data = load_wine(as_frame=True)
    return data.data, data.target.astype(str).to_numpy()


def tips(target: str) -> Callable[[], tuple[Any, np.ndarray]]:
    def load() -> tuple[Any, np.ndarray]:
        frame = px.data.tips()
        return frame.drop(columns=target), frame[target].to_numpy()
    return load


def jokes() -> tuple[Any, np.ndarray]:
    return jokes_en["neutral"] + jokes_en["chuck"], np.array(["neutral"] * len(jokes_en["neutral"]) + ["chuck"] * len(jokes_en["chuck"]))


def digits() -> tuple[Any, np.ndarray]:
    data = load_digits()
    return data.images, data.target.astype(str)


def cancer() -> tuple[Any, np.ndarray]:
    data = load_breast_cancer(as_frame=True)
    return data.data, data.target.astype(str).to_numpy()


def gapminder() -> tuple[Any, np.ndarray]:
    frame = px.data.gapminder()[["continent", "year", "lifeExp", "pop", "gdpPercap"]]
    return frame.drop(columns="continent"), frame["continent"].to_numpy()


# (name, data, preset, labels): the cases, and digits for the image preset
FIRST_LABELS = [("wine", wine, "gradient_boosting", 25), ("tips: time", tips("time"), "gradient_boosting", 15),
                ("jokes", jokes, "tfidf_logistic_regression", 20), ("digits", digits, "logistic_regression", 20)]
SWITCH_DATA = [("wine", wine), ("tips: time", tips("time")), ("tips: day", tips("day")), ("breast cancer", cancer),
               ("gapminder: continent", gapminder)]


def rows(x: Any, index: np.ndarray) -> Any:
    if hasattr(x, "iloc"):
        return x.iloc[index]
    if isinstance(x, np.ndarray):
        return x[index]
    return [x[i] for i in index]


def first_labels(y: np.ndarray, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    while True:
        labelled = rng.choice(len(y), size=n, replace=False)
        if len(set(y[labelled])) > 1:
            return labelled, np.setdiff1d(np.arange(len(y)), labelled)


def score(make: Callable[[], Any], x: Any, y: np.ndarray, n: int, seed: int) -> dict[str, float | int | bool]:
    labelled, rest = first_labels(y, n, seed)
    values, counts = np.unique(y[labelled], return_counts=True)
    baseline = float(np.mean(y[rest] == values[counts.argmax()]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        predicted = make().fit(rows(x, labelled), y[labelled]).predict(rows(x, rest))
    accuracy = float(np.mean(predicted == y[rest]))
    n_classes = len(set(predicted))
    return {"accuracy": accuracy, "baseline": baseline, "classes_predicted": n_classes, "passed": n_classes > 1 and accuracy > baseline}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--seeds", type=int)
    parser.add_argument("--json", type=Path, help="write the results here (default: bench/results/first_labels-<time>.json)")
    args = parser.parse_args()
    seeds = args.seeds or (3 if args.quick else 10)
    switch_seeds = 2 if args.quick else 5
    switch_counts = [25, 50, 100] if args.quick else [25, 50, 75, 100, 150, 200]
    t0 = time.perf_counter()
    results: dict[str, Any] = {"seeds": seeds, "first_labels": [], "switch_seeds": switch_seeds, "switch": []}

    print(f"Accuracy on the unlabelled rest, mean over {seeds} seeds "
          "(seeds passing: more than one class predicted and above the baseline)\n")
    print("| data | preset | labels | majority baseline | before | after | seeds passing before | after |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name, data, preset, n in FIRST_LABELS:
        x, y = data()
        before = [score(lambda: old_preset(preset), x, y, n, seed) for seed in range(seeds)]
        after = [score(lambda: make_preset(preset), x, y, n, seed) for seed in range(seeds)]
        results["first_labels"].append({"data": name, "preset": preset, "labels": n, "before": before, "after": after})
        mean = lambda runs, key: float(np.mean([r[key] for r in runs]))  # noqa: E731
        passing = lambda runs: sum(bool(r["passed"]) for r in runs)  # noqa: E731
        print(f"| {name} | `{preset}` | {n} | {mean(after, 'baseline'):.1%} | {mean(before, 'accuracy'):.1%} "
              f"| {mean(after, 'accuracy'):.1%} "
              f"| {passing(before)} of {seeds} | {passing(after)} of {seeds} |")

    print(f"\nThe table preset's stages by label count: accuracy on the unlabelled rest, mean over {switch_seeds} seeds\n")
    print("| data | labels | majority baseline | logistic regression (small-data stage) | gradient boosting |")
    print("| --- | ---: | ---: | ---: | ---: |")
    boosting = lambda: old_preset("gradient_boosting")  # noqa: E731
    small = lambda: make_pipeline(FunctionTransformer(as_frame), _table_small())  # noqa: E731
    for name, data in SWITCH_DATA:
        x, y = data()
        for n in switch_counts:
            if n > 0.7 * len(y):
                continue
            lr = [score(small, x, y, n, seed) for seed in range(switch_seeds)]
            gb = [score(boosting, x, y, n, seed) for seed in range(switch_seeds)]
            results["switch"].append({"data": name, "labels": n, "logistic_regression": lr, "gradient_boosting": gb})
            print(f"| {name} | {n} | {np.mean([r['baseline'] for r in lr]):.1%} | {np.mean([r['accuracy'] for r in lr]):.1%} "
                  f"| {np.mean([r['accuracy'] for r in gb]):.1%} |")
    print(f"\n{time.perf_counter() - t0:.0f} s")
    out = args.json
    if out is None:
        folder = Path(os.environ.get("SUPERINTENDENT_BENCH_RESULTS") or ROOT / "bench" / "results")
        folder.mkdir(parents=True, exist_ok=True)
        out = folder / f"first_labels-{time.strftime('%Y%m%dT%H%M%S')}.json"
    out.write_text(json.dumps(results))


if __name__ == "__main__":
    main()
