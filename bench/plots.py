"""Plot output shared by the benchmarks: a plotly figure -> interactive HTML and a PNG.

The HTML goes to ``bench/results/<name>.html`` (git-ignored; the folder
``SUPERINTENDENT_BENCH_RESULTS`` names instead, when set: the tests point it
into a temporary folder); the PNG, for docs/benchmarks.md, to
``docs/images/bench-<name>.png`` (or another folder).

PNG export uses kaleido (>= 1), which drives a Chrome/Chromium: the system
one is found through ``BROWSER_PATH`` (set here to ``/usr/bin/chromium`` when
that exists and nothing else is set). If kaleido cannot run, the HTML is
opened in headless Chromium through playwright and screenshotted. If neither
works, only the HTML is written and a warning printed (a benchmark never fails
because a picture could not be drawn).
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import plotly.graph_objects as go

ROOT = Path(__file__).resolve().parent.parent
HTML_DIR = Path(os.environ.get("SUPERINTENDENT_BENCH_RESULTS") or ROOT / "bench" / "results")
PNG_DIR = ROOT / "docs" / "images"
WIDTH, HEIGHT = 900, 500


def chromium_path() -> str | None:
    for candidate in (os.environ.get("BROWSER_PATH"), "/usr/bin/chromium", shutil.which("chromium"), shutil.which("google-chrome")):
        if candidate and Path(candidate).exists():
            return candidate
    return None


def _png_with_kaleido(fig: go.Figure, path: Path) -> None:
    browser = chromium_path()
    if browser and not os.environ.get("BROWSER_PATH"):
        os.environ["BROWSER_PATH"] = browser  # where kaleido's choreographer looks for a browser
    fig.write_image(str(path), width=WIDTH, height=HEIGHT, scale=1)


def _png_with_playwright(html: Path, path: Path) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_path(), args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": WIDTH, "height": HEIGHT})
            page.goto(html.as_uri())
            page.wait_for_selector(".main-svg", timeout=30_000)
            page.screenshot(path=str(path))
        finally:
            browser.close()


def save(fig: go.Figure, name: str, *, png_dir: Path | None = PNG_DIR, html_dir: Path = HTML_DIR) -> dict[str, str]:
    """Write ``fig`` as ``<html_dir>/<name>.html`` and ``<png_dir>/bench-<name>.png``; returns the paths written.

    ``png_dir=None`` writes only the HTML (quick runs do not overwrite the
    committed pictures).
    """
    fig.update_layout(template="plotly_white", width=WIDTH, height=HEIGHT, margin=dict(l=70, r=30, t=70, b=60))
    html_dir.mkdir(parents=True, exist_ok=True)
    html = html_dir / f"{name}.html"
    fig.write_html(str(html), include_plotlyjs=True, full_html=True, config={"displaylogo": False})
    written = {"html": str(html)}
    if png_dir is None:
        return written
    png_dir.mkdir(parents=True, exist_ok=True)
    png = png_dir / f"bench-{name}.png"
    try:
        _png_with_kaleido(fig, png)
    except Exception as kaleido_error:  # noqa: BLE001 - fall back to a screenshot
        try:
            _png_with_playwright(html, png)
        except Exception as playwright_error:  # noqa: BLE001
            print(f"WARNING: no PNG for {name}: kaleido: {kaleido_error}; playwright: {playwright_error}", file=sys.stderr)
            return written
    written["png"] = str(png)
    return written
