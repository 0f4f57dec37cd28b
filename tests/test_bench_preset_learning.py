"""bench/preset_learning.py's ``--quick`` variant runs and its results say what they claim (issue 14's learning target).

Benchmarks are not tests: nothing here checks how fast a preset learns. The script runs as a user would run it (a
subprocess, from the repository root, its results into a temporary folder) and the checks are on its JSON: every
single-label preset is measured or named as left out with the reason, each on the data sets of its kind, and the
reported figures (labels to the target, the ratio, the 20-label baseline) follow from the curves the JSON holds.

Marked ``bench``: not in the default run; ``pytest -m bench`` runs it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from superintendent.learning.presets import MODEL_PRESETS, PRESET_LABEL_MODES

ROOT = Path(__file__).resolve().parents[1]
pytestmark = [pytest.mark.bench, pytest.mark.timeout(600)]

DATA_OF = {"logistic_regression": {"digits"}, "gradient_boosting": {"wine", "breast_cancer", "tips_day", "gapminder"},
           "tfidf_logistic_regression": {"jokes", "vader_words"}}


def _run(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "SUPERINTENDENT_BENCH_RESULTS": str(tmp_path / "results")}
    done = subprocess.run([sys.executable, str(ROOT / "bench" / "preset_learning.py"), *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=550)
    assert done.returncode == 0, f"{done.stdout[-2000:]}\n{done.stderr[-4000:]}"
    return done


def test_preset_learning_quick(tmp_path: Path) -> None:
    out = tmp_path / "presets.json"
    done = _run(tmp_path, "--quick", "--no-plots", "--json", str(out))
    report = json.loads(out.read_text())
    assert report["seeds"] == 3 and report["quick"] and report["n_seed_labels"] == 20
    assert list((tmp_path / "results").glob("presets-*.json")), "no presets-<time>.json in the results folder"

    single = {name for name in MODEL_PRESETS if "single" in PRESET_LABEL_MODES.get(name, ())}
    assert set(report["presets"]) | (set(report["left_out"]) & single) == single  # each measured or left out with a reason
    assert not set(report["presets"]) & set(report["left_out"])
    # the embeddings preset is measured, or named as not installed
    assert any(name.startswith("embeddings") for name in [*report["presets"], *report["left_out"]])
    measured = {(r["preset"], r["data"]) for r in report["results"]}
    for preset in report["presets"]:
        expected = DATA_OF.get(preset, DATA_OF["tfidf_logistic_regression"] if preset.startswith("embeddings") else set())
        assert expected and {d for p, d in measured if p == preset} == expected, preset

    for r in report["results"]:
        assert r["seeds"] == 3
        assert r["target_accuracy"] == pytest.approx([0.9 * a for a in r["full_accuracy"]])
        for name, s in r["strategies"].items():
            assert s["sizes"][0] == 20 and np.all(np.diff(s["sizes"]) == r["step"]), (r["data"], name)
            assert s["sizes"][-1] == r["budget"]
            for curve, target, needed, at_20 in zip(s["per_seed_accuracy"], r["target_accuracy"], s["labels_needed"],
                                                    r["accuracy_at_20"]):
                assert all(0.0 <= a <= 1.0 for a in curve)
                assert curve[0] == at_20  # both strategies start from the same 20 seed labels
                first = next((n for n, a in zip(s["sizes"], curve) if a >= target), None)
                assert needed == first, (r["preset"], r["data"], name)
        assert set(r["strategies"]) == {"random", "margin", "margin_diverse"}
        random_median, margin_median, diverse_median = (r["strategies"][k]["median_needed"] for k in ("random", "margin", "margin_diverse"))
        for ratios, median in ((r, margin_median), (r["diverse"], diverse_median)):
            if random_median is not None and median is not None:
                assert ratios["ratio"] == pytest.approx(median / random_median)
            elif median is not None:  # random not reached within the budget: a bound
                assert ratios["ratio"] is None and ratios["ratio_below"] == pytest.approx(median / r["budget"])
        assert r["reached_at_seed_labels"] == (random_median == margin_median == diverse_median == 20)
        for key in ("margin", "margin_diverse"):  # nothing to save: not judged
            assert (r["targets"][f"{key}_ratio_at_most_0.75"] is None) == r["reached_at_seed_labels"]
        assert [h["fraction"] for h in r["harder_targets"]] == [0.95, 0.98]
        passing = sum(a > b for a, b in zip(r["accuracy_at_20"], r["majority_baseline"]))
        assert r["seeds_beating_majority_at_20"] == passing
        assert r["targets"]["beats_majority_at_20_every_seed"] == (passing == 3)
        assert f"| `{r['preset']}` | {r['data']} |" in done.stdout  # the printed table has a row for it

    # the plot is drawn from that JSON (a quick run writes only the HTML, never the committed PNG)
    _run(tmp_path, "--quick", "--plot-from", str(out))
    html = (tmp_path / "results" / "presets.html").read_text()
    for r in report["results"]:  # a panel titled "<data><br><preset>" for each (escaped in the figure's JSON)
        assert f"{r['data']}\\u003cbr\\u003e{r['preset']}" in html, (r["data"], r["preset"])
