"""What the peer benchmarks share: their virtual environments, PostgreSQL databases, results and PNG plots.

Nothing of the peers' code is committed: each peer is installed from PyPI
into its own virtual environment under ``bench/.venvs/`` (git-ignored) the
first time a benchmark needs it, and the install is timed. Results go to
``bench/results/``. ``SUPERINTENDENT_BENCH_VENVS`` and
``SUPERINTENDENT_BENCH_RESULTS`` name other folders (the tests use temporary ones).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[2]
VENVS = Path(os.environ.get("SUPERINTENDENT_BENCH_VENVS") or ROOT / "bench" / ".venvs")
RESULTS = Path(os.environ.get("SUPERINTENDENT_BENCH_RESULTS") or ROOT / "bench" / "results")
IMAGES = ROOT / "docs" / "images"
CHROMIUM = os.environ.get("SUPERINTENDENT_CHROMIUM", "/usr/bin/chromium")
DEFAULT_SERVER = "postgresql+psycopg2://postgres@127.0.0.1:5432"


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def venv_python(name: str) -> Path:
    return VENVS / name / "bin" / "python"


def ensure_venv(name: str, requirements: list[str], check: str) -> dict[str, Any]:
    """Create ``<VENVS>/<name>`` (``bench/.venvs/<name>``) with ``requirements`` unless ``check`` (Python code) already runs in it.

    Returns {"python": path, "installed_now": bool, "install_seconds": float | None}.
    """
    python = venv_python(name)
    if python.exists() and subprocess.run([str(python), "-c", check], capture_output=True, env=clean_env(), cwd=VENVS).returncode == 0:
        return {"python": str(python), "installed_now": False, "install_seconds": None}
    log(f"installing {' '.join(requirements)} into {VENVS / name} ...")
    t0 = time.perf_counter()
    VENVS.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-m", "venv", str(VENVS / name)], check=True)
    done = subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", *requirements],
                          capture_output=True, text=True, env=clean_env(), cwd=VENVS)
    seconds = time.perf_counter() - t0
    if done.returncode != 0:
        raise RuntimeError(f"pip install into {VENVS / name} failed:\n{done.stderr[-3000:]}")
    if subprocess.run([str(python), "-c", check], capture_output=True, env=clean_env(), cwd=VENVS).returncode != 0:
        raise RuntimeError(f"{VENVS / name} was installed but `{check}` fails in it")
    log(f"installed in {seconds:.0f} s")
    RESULTS.mkdir(parents=True, exist_ok=True)
    with open(RESULTS / "venv-installs.jsonl", "a") as fh:
        fh.write(json.dumps({"venv": name, "seconds": round(seconds, 1), "at": time.strftime("%Y-%m-%dT%H:%M:%S")}) + "\n")
    return {"python": str(python), "installed_now": True, "install_seconds": round(seconds, 1)}


def clean_env(**extra: str) -> dict[str, str]:
    """The environment for a peer's process: no PYTHONPATH (so our `superintendent` is never imported there).

    Run peers' processes outside the repository too (``cwd``): ``python -c`` puts the working directory first on sys.path.
    """
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
    env.update(extra)
    return env


def ensure_database(server: str, name: str) -> str:
    """CREATE DATABASE ``name`` on ``server`` (a URL without a database) unless it exists; returns its URL."""
    admin = sa.create_engine(f"{server}/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        if conn.exec_driver_sql("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).first() is None:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    admin.dispose()
    return f"{server}/{name}"


def postgres_version(url: str) -> str:
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        version = conn.exec_driver_sql("SHOW server_version").scalar_one()
    engine.dispose()
    return str(version)


def percentiles(seconds: list[float] | np.ndarray) -> dict[str, float | None]:
    ms = np.asarray(seconds, dtype=float) * 1000
    if ms.size == 0:
        return {"p50_ms": None, "p99_ms": None, "max_ms": None}
    p50, p99, top = np.percentile(ms, [50, 99, 100])
    return {"p50_ms": round(float(p50), 2), "p99_ms": round(float(p99), 2), "max_ms": round(float(top), 2)}


def save_results(stem: str, data: dict[str, Any]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"{stem}-{time.strftime('%Y%m%dT%H%M%S')}.json"
    out.write_text(json.dumps(data, indent=1, default=str))
    return out


def write_png(fig: Any, path: Path, width: int = 900, height: int = 500) -> Path:
    """Export a plotly figure to PNG at ``path`` (``docs/images/bench-<name>.png``).

    Uses bench/plots.py's ``save`` (the shared helper: also writes
    ``bench/results/<name>.html``); if that is missing or writes no PNG,
    renders the figure's HTML (plotly.js inlined, no network) in headless
    Chromium and screenshots the plot.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    bench_dir = str(ROOT / "bench")
    name = path.stem.removeprefix("bench-")
    try:
        if bench_dir not in sys.path:
            sys.path.append(bench_dir)  # after the standard library: bench/queue.py must not shadow `queue`
        import plots  # type: ignore[import-not-found]

        if path.name == f"bench-{name}.png" and plots.save(fig, name, png_dir=path.parent).get("png"):
            return path
    except Exception as exc:  # noqa: BLE001 - the shared helper is optional; fall back to Chromium
        log(f"bench/plots.py not usable ({type(exc).__name__}: {exc}); rendering the PNG in Chromium")
    import plotly.io as pio
    from playwright.sync_api import sync_playwright

    fig.update_layout(width=width, height=height)
    html = pio.to_html(fig, include_plotlyjs=True, full_html=True, config={"staticPlot": True})
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page(viewport={"width": width + 40, "height": height + 40})
        page.set_content(html)
        page.locator(".main-svg").first.wait_for(timeout=30_000)
        page.locator(".js-plotly-plot").first.screenshot(path=str(path))
        browser.close()
    return path
