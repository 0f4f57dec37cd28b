"""The --quick variants of the peer, browser and learning benchmarks keep working (issue 7).

Benchmarks are not tests: nothing here checks a timing. Each test runs a
script's ``--quick`` variant as a user would (a subprocess, from the
repository root) and checks what it must get right whatever the machine:
it finishes, writes its results, and our queue hands no item to two
workers and annotates no item twice.

The peers are installed from PyPI into ``bench/.venvs/`` on first use
(measured on the 2-core machine: the original superintendent in about 30 s,
Label Studio 1.23 in about 80 s; the venvs are reused afterwards). Label
Studio then needs about 1.5-2 minutes per start (its migrations, once on
PostgreSQL and once on SQLite), so its quick run takes about 8-12 minutes:
it is given a 40-minute timeout, and it runs, also in CI (never skipped there).

PostgreSQL comes from ``SUPERINTENDENT_TEST_POSTGRES_URL`` (its server is
used; the benchmarks make databases ``bench_peer`` / ``bench_ls`` there),
Chromium from /usr/bin/chromium. Missing either, a test skips with the
reason, except under CI=true, where it fails.

The scripts write their results into a temporary folder
(``SUPERINTENDENT_BENCH_RESULTS``), and the peers' virtual environments go
into one shared by the session unless ``SUPERINTENDENT_BENCH_VENVS`` names a
folder to reuse (e.g. ``bench/.venvs``, the scripts' own default): nothing is
written into the repository. Marked ``bench``: not in the default run;
``pytest -m bench`` runs them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.conftest import IN_CI, postgres_base_url

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = os.environ.get("SUPERINTENDENT_CHROMIUM", "/usr/bin/chromium")


pytestmark = pytest.mark.bench


@pytest.fixture(scope="module")
def venvs(tmp_path_factory: pytest.TempPathFactory) -> str:
    """Where the peers are installed: SUPERINTENDENT_BENCH_VENVS, else a temporary folder for this session."""
    return os.environ.get("SUPERINTENDENT_BENCH_VENVS") or str(tmp_path_factory.mktemp("venvs"))


def _need_chromium() -> None:
    if not Path(CHROMIUM).exists():
        reason = f"no Chromium at {CHROMIUM} (Debian package 'chromium')"
        if IN_CI:
            pytest.fail(reason + " (CI=true: browser benchmarks must run)")
        pytest.skip(reason)


def _server() -> str:
    """The PostgreSQL server of the test database, as a URL without a database name."""
    url = sa.engine.make_url(postgres_base_url())
    return url.set(database="", query={}).render_as_string(hide_password=False).rstrip("/")


def _run(args: list[str], timeout: float, tmp_path: Path, venvs: str | None = None) -> tuple[str, dict]:
    """Run a benchmark script, its results into tmp_path; return its stdout and the results JSON it wrote."""
    stem = {"browser.py": "browser", "learning.py": "learning", "original.py": "peer-original",
            "label_studio.py": "peer-label-studio"}[Path(args[0]).name]
    results = tmp_path / "results"
    env = {**os.environ, "SUPERINTENDENT_BENCH_RESULTS": str(results)}
    if venvs:
        env["SUPERINTENDENT_BENCH_VENVS"] = venvs
    done = subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{args[0]} failed ({done.returncode}):\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}"
    written = sorted(results.glob(f"{stem}-*.json"))
    assert written, f"{args[0]} wrote no {stem}-*.json into {results}"
    return done.stdout, json.loads(written[-1].read_text())


@pytest.mark.postgres
@pytest.mark.timeout(900)
def test_original_superintendent_quick(tmp_path: Path, venvs: str) -> None:
    server = _server()
    out, result = _run(["bench/peers/original.py", "--quick", "--server", server], 880, tmp_path, venvs)
    ours = [r for r in result["runs"] if r["side"] == "ours"]
    peer = [r for r in result["runs"] if r["side"] == "original 0.6.0"]
    assert [r["workers"] for r in ours] == [r["workers"] for r in peer] == [1, 4]
    for r in ours:
        assert r["labels"] > 0 and r["handed_to_two"] == 0 and r["labels_overwritten"] == 0, r
        assert r["distinct_items_labelled"] == r["labels"]
    assert all(r["labels"] > 0 for r in peer)
    assert [r["side"] for r in result["reorder"]] == ["original 0.6.0", "ours"]
    assert all(r["items"] == 5_000 and r["seconds"] > 0 for r in result["reorder"])
    assert "| original 0.6.0 | 4 |" in out and "reprioritise: ours is" in out


@pytest.mark.postgres
@pytest.mark.timeout(2400)
def test_label_studio_quick(tmp_path: Path, venvs: str) -> None:
    server = _server()
    _need_chromium()
    out, result = _run(["bench/peers/label_studio.py", "--quick", "--server", server], 2350, tmp_path, venvs)
    rows = {(r["database"], r["side"]): r for r in result["rows"]}
    assert set(rows) == {(db, side) for db in ("postgresql", "sqlite") for side in ("ours", "Label Studio 1.23")}
    for db in ("postgresql", "sqlite"):
        ours, ls = rows[(db, "ours")], rows[(db, "Label Studio 1.23")]
        assert ours["items"] == ls["items"] == 2_000
        assert ours["items_annotated_twice"] == 0, ours
        assert ours["browser_clicks"] > 0 and ours["click_to_next"]["p50_ms"] > 0
        assert ls["annotations"] > 0 and ls["next"]["p50_ms"] > 0
        assert ls["server_total_annotations"] is not None
        assert ls["next_and_annotate"]["p50_ms"] >= ls["next"]["p50_ms"] > 0
    api = {r["database"]: r for r in result["api_rows"]}  # ours over the HTTP API, 8 clients, same run (issue 15)
    assert set(api) == {"postgresql", "sqlite"}
    for r in api.values():
        assert r["side"] == "ours (HTTP API)" and r["clients"] == 8 and r["errors"] == {}, r
        assert r["labels"] > 0 and r["annotations_in_database"] == r["labels"] == sum(r["per_client"]), r
        assert r["items_handed_out_twice"] == 0 and r["items_annotated_twice"] == 0, r
        assert r["next_and_submit"]["p50_ms"] >= r["next"]["p50_ms"] > 0
    assert "import" in out and "annotated twice" in out
    assert "(POST next + POST submit)" in out and "over HTTP: our next + submit p50" in out


@pytest.mark.timeout(600)
def test_browser_quick_with_bare_reference(tmp_path: Path) -> None:
    _need_chromium()
    out, result = _run(["bench/browser.py", "--quick"], 580, tmp_path)
    assert result["ours"]["clicks"] == result["bare"]["clicks"] == 40
    assert len(result["ours_ms"]) == len(result["bare_ms"]) == 40
    assert result["ratio_p50"] == pytest.approx(result["ours"]["p50_ms"] / result["bare"]["p50_ms"], rel=0.02)
    assert "ours / bare p50" in out


@pytest.mark.timeout(600)
def test_learning_quick(tmp_path: Path) -> None:
    out, result = _run(["bench/learning.py", "--quick"], 580, tmp_path)
    assert set(result) == {"random", "margin", "entropy", "certainty"}
    for r in result.values():
        assert len(r["per_seed_accuracy"]) == 3
        assert len(r["mean_accuracy"]) == len(r["std_accuracy"]) == len(r["sizes"])
        assert all(0 <= a <= 1 for a in r["mean_accuracy"])
    assert "| margin |" in out
