"""Click-to-next-item in headless Chromium, measured inside the page.

Starts `streamlit run streamlit_app.py` on a database with N text items
queued, logs in, and clicks label buttons. Each figure is `performance.now()`
from the click to the moment the next item's text is in the page (a
MutationObserver), not Playwright's own waits.

    python bench/browser.py             # 100,000 items, 200 clicks
    python bench/browser.py --quick     # 5,000 items, 40 clicks
    python bench/browser.py --database-url postgresql+psycopg2://postgres@127.0.0.1:5432/test
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import socket  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import urllib.request  # noqa: E402

import numpy as np  # noqa: E402

from superintendent import auth, queue  # noqa: E402
from superintendent.store import init_db, make_engine, session_scope  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--no-first-run", "--disable-quic"]
PASSWORD = "benchmark password"

CLICK_TO_NEXT = """async (index) => {
  const current = () => [...document.querySelectorAll('.st-key-label-item')].map(el => el.innerText.trim()).filter(t => t);
  const before = current().join('|');
  const button = document.querySelector(`.st-key-label-opt-${index} button`);
  return await new Promise(resolve => {
    const observer = new MutationObserver(() => {
      const now = current();
      if (now.length === 1 && now[0] !== before) { observer.disconnect(); resolve(performance.now() - t0); }
    });
    observer.observe(document.body, {subtree: true, childList: true, characterData: true});
    const t0 = performance.now();
    button.click();
  });
}"""


def prepare(url: str, n_items: int) -> None:
    engine = make_engine(url)
    init_db(engine)
    with session_scope(engine) as s:
        auth.create_user(s, "bench", PASSWORD, "admin")
        project = queue.create_project(s, "bench", options=["yes", "no"], data_type="text")
    for start in range(0, n_items, 50_000):
        with session_scope(engine) as s:
            queue.add_items(s, project, [f"item number {i}" for i in range(start, min(n_items, start + 50_000))])
    engine.dispose()


def start_app(url: str, data_dir: str) -> tuple[subprocess.Popen, str]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {**os.environ, "SUPERINTENDENT_DATABASE_URL": url, "SUPERINTENDENT_DATA_DIR": data_dir, "SUPERINTENDENT_RUN_SCHEDULER": "false"}
    proc = subprocess.Popen([sys.executable, "-m", "streamlit", "run", str(ROOT / "streamlit_app.py"), "--server.port", str(port),
                             "--server.address", "127.0.0.1", "--server.headless", "true"], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            if urllib.request.urlopen(f"{base}/_stcore/health", timeout=2).read() == b"ok":
                return proc, base
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError("streamlit did not start")


def measure(base: str, clicks: int) -> list[float]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        page = browser.new_page()
        page.goto(base)
        page.get_by_label("User name").wait_for(timeout=60_000)
        page.wait_for_timeout(500)
        page.get_by_label("User name").fill("bench")
        page.get_by_role("textbox", name="Password").fill(PASSWORD)
        page.get_by_role("button", name="Log in").click()
        page.locator(".st-key-label-item").first.wait_for(timeout=60_000)
        page.wait_for_timeout(1000)
        times = []
        for i in range(clicks):
            times.append(page.evaluate(CLICK_TO_NEXT, i % 2))
            page.wait_for_timeout(50)  # a labeller's eye moves; also lets the status widget settle
        browser.close()
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--items", type=int)
    parser.add_argument("--clicks", type=int)
    parser.add_argument("--database-url", help="default: a new SQLite file")
    args = parser.parse_args()
    n_items = args.items or (5_000 if args.quick else 100_000)
    clicks = args.clicks or (40 if args.quick else 200)
    with tempfile.TemporaryDirectory() as tmp:
        url = args.database_url or f"sqlite:///{tmp}/bench.db"
        t0 = time.perf_counter()
        prepare(url, n_items)
        print(f"queued {n_items:,} items in {time.perf_counter() - t0:.1f} s")
        proc, base = start_app(url, tmp)
        try:
            times = np.array(measure(base, clicks))
        finally:
            proc.terminate()
            proc.wait(timeout=20)
    warm = times[5:] if len(times) > 10 else times
    result = {"items": n_items, "clicks": len(times), "database": url.split(":")[0], "p50_ms": float(np.percentile(warm, 50)),
              "p90_ms": float(np.percentile(warm, 90)), "p99_ms": float(np.percentile(warm, 99)), "max_ms": float(warm.max())}
    print(json.dumps(result, indent=1))
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    (out / f"browser-{time.strftime('%Y%m%dT%H%M%S')}.json").write_text(json.dumps({**result, "all_ms": times.tolist()}))


if __name__ == "__main__":
    main()
