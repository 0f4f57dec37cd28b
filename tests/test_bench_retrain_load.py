"""bench/retrain_load.py's ``--quick`` variant still runs and its JSON says what happened (issue 14).

As the other benches' quick runs (tests/test_bench_quick.py): a subprocess on
the test PostgreSQL server (the bench creates a database of its own there
and drops it), its JSON and plot HTML in the test's temporary folder; no
timing is checked, only what a broken script or a broken queue would get
wrong. Marked ``bench``: ``pytest -m bench`` runs it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.test_bench_quick import run_bench

pytestmark = [pytest.mark.bench, pytest.mark.postgres, pytest.mark.timeout(900)]

ITEMS, LABELS, RETRAINS = 20_000, 2_000, 3  # the --quick sizes


def test_retrain_load_quick(tmp_path: Path) -> None:
    report = run_bench("retrain_load.py", tmp_path)
    size = report["size"]
    assert "autovacuum" in size["server_settings"]  # whether autovacuum could run at all is part of the result
    assert len(size["runs"]) == RETRAINS
    for run in size["runs"]:  # nobody labels in the size part: every retrain learns from the imported labels, ranks the rest
        assert run["n_labels"] == LABELS and run["n_ranked"] == ITEMS - LABELS
        assert {"read_labelled", "evaluate", "fit", "predict", "rank", "write"} <= set(run["phases"])
        assert run["model_seconds"]["fit"] > 0 and run["model_seconds"]["evaluate"] > 0 and run["model_seconds"]["predict"] > 0
        assert 0 < run["model_seconds_total"] < run["total_seconds"]
        assert run["outside_model_seconds"] == pytest.approx(run["total_seconds"] - run["model_seconds_total"], abs=2e-3)
        assert run["sizes"]["database_bytes"] > run["sizes"]["item_total_bytes"] > 0
    dead = [run["sizes"]["item_dead_tuples"] for run in size["runs"]]
    assert dead[0] > 0 or size["runs"][0]["sizes"]["item_autovacuums"] > 0  # a retrain rewrites rows of the item table
    first, last = size["runs"][0]["sizes"], size["runs"][-1]["sizes"]
    assert size["database_growth"] == pytest.approx(last["database_bytes"] / first["database_bytes"], abs=1e-3)
    (claims,) = report["claims"]
    assert claims["retrain_covered_by_labelling"], "the labellers stopped before the retrain ended"
    assert claims["retrain"]["n_labels"] > LABELS  # it learnt from what the labellers gave before it
    assert claims["before"]["transactions"] > 0 and claims["during"]["transactions"] > 0 and claims["after"]["transactions"] > 0
    assert 0 <= claims["annotations_added"] - claims["submits_logged"] <= claims["labellers"]  # a SIGTERM may land between commit and log
    assert claims["duplicate_handouts"] == 0 and claims["items_annotated_twice"] == 0
    assert claims["p99_ratio_during_to_before"] == pytest.approx(claims["during"]["p99_ms"] / claims["before"]["p99_ms"], abs=1e-3)
    assert [t["met"] for t in report["targets"] if t["target"].startswith("no item")] == [True]
