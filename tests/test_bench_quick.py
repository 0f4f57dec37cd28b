"""The benchmarks' ``--quick`` variants still run and produce their results.

Benchmarks are not tests: nothing here checks a timing. Each script runs in
a subprocess, as a user would run it, on the test PostgreSQL server (fresh
schemas it drops itself), and writes its JSON; the checks are on what the
JSON says happened (items written, labels stored, no item handed out twice),
which a broken script or a broken queue would get wrong. Everything a script
writes (its JSON, its plots' HTML) goes into the test's temporary folder.

Marked ``bench``: not in the default run; ``pytest -m bench`` runs them.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import _unavailable, postgres_base_url

ROOT = Path(__file__).resolve().parent.parent
pytestmark = [pytest.mark.bench, pytest.mark.postgres, pytest.mark.timeout(900)]


def run_bench(script: str, tmp_path: Path, *extra: str) -> dict:
    out = tmp_path / f"{Path(script).stem}.json"
    env = {**os.environ, "SUPERINTENDENT_BENCH_POSTGRES_URL": postgres_base_url(),
           "SUPERINTENDENT_BENCH_RESULTS": str(tmp_path / "results")}
    done = subprocess.run([sys.executable, str(ROOT / "bench" / script), "--quick", "--no-plots", "--json", str(out), *extra],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=850)
    assert done.returncode == 0, f"{script} failed:\n{done.stderr[-4000:]}"
    return json.loads(out.read_text())


def test_queue_quick(tmp_path: Path) -> None:
    if not (shutil.which("pgbench") or Path("/usr/bin/pgbench").exists()):
        _unavailable("pgbench is not installed (PostgreSQL's client tools)")
    report = run_bench("queue.py", tmp_path)
    assert {r["clients"] for r in report["pgbench"] if r["when"] == "before"} == {1, 8}
    assert all(r["tps"] > 0 and r["transactions"] > 0 for r in report["pgbench"])
    runs = {(r["database"], r["n_labellers"]): r for r in report["results"]}
    assert set(runs) == {("postgresql", 1), ("postgresql", 8), ("sqlite", 1), ("sqlite", 4)}
    for r in runs.values():
        assert r["labels"] > 0
        assert r["annotations_in_db"] == r["labels"], r
        assert r["duplicate_handouts"] == 0, r
        assert len(r["labels_per_labeller"]) == r["n_labellers"]
    for n in (1, 8):
        pg = runs[("postgresql", n)]
        assert pg["ratio_to_reference"] == pytest.approx(pg["labels_per_second"] / pg["reference_tps"], abs=1e-3)
    assert any(t["target"].startswith("zero duplicate") and t["met"] for t in report["targets"])


def test_reprioritise_quick(tmp_path: Path) -> None:
    result = run_bench("reprioritise.py", tmp_path)["result"]
    assert result["rewrite_alone_rows"] == result["items"]  # nobody labelling: every row rewritten
    assert 0 < result["rewrite_under_load_rows"] <= result["items"]  # rows a labeller held locked keep their priority
    assert result["before"]["transactions"] > 0 and result["during"]["transactions"] >= 0
    assert result["duplicate_handouts"] == 0


def test_retrain_quick(tmp_path: Path) -> None:
    report = run_bench("retrain.py", tmp_path)
    expected = {"read_labelled", "preprocess", "evaluate", "fit", "read_unlabelled", "predict_model", "score_and_hints", "rank", "write"}
    for run in report["runs"]:
        assert expected <= set(run["phases"]), run["phases"]  # run_retrain may record further phases of its own
        assert run["n_labels"] == 300 and run["n_ranked"] == 2_000 - 300
    assert [m["items"] for m in report["memory"]] == [2_000, 5_000]
    for m in report["memory"]:
        assert m["n_ranked"] == m["items"] - 300
        assert m["peak_rss_mb"] >= m["rss_after_imports_mb"] > 0


def test_importing_quick(tmp_path: Path) -> None:
    (run,) = run_bench("importing.py", tmp_path)["runs"]
    assert run["rows"] == 20_000
    assert run["items_in_db"] == run["added"] == 20_000
    assert run["labelled"] == run["labelled_in_db"] == 2_000  # every tenth row has a label
    assert run["peak_rss_mb"] >= run["rss_after_imports_mb"] > 0
