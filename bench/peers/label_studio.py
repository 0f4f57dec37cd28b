"""Label Studio (1.23, PyPI) as a peer: bulk import and next-task latency with 8 annotators, beside ours, same run.

Label Studio is installed into its own virtual environment,
``bench/.venvs/label-studio`` (created on first use, the install timed),
and started with ``label-studio start`` on 127.0.0.1 with its telemetry
off (``LABEL_STUDIO_COLLECT_ANALYTICS=false``, ``LATEST_VERSION_CHECK=false``,
empty ``SENTRY_DSN`` / ``FRONTEND_SENTRY_DSN``) and legacy API tokens on,
once on PostgreSQL (a fresh database ``bench_ls`` on our server;
``bench_ls_quick`` for --quick) and once on SQLite (a data folder under
``bench/results/``). Nothing of its code is in
this repository. For each database, in the same run:

* **import**: the same JSON file of N text items (``[{"text": ...}, ...]``):
  Label Studio's one-request import (``POST /api/projects/{id}/import``)
  vs our importer (``ingest.prepare_upload`` + ``importing.import_prepared``),
  on the same database server (PostgreSQL) or on SQLite;
* **labelling, 8 annotators for D seconds**: Label Studio: 8 threads, each
  its own Label Studio user and token, ``GET /api/projects/{id}/next`` then
  ``POST /api/tasks/{id}/annotations/`` as fast as they can; the /next
  latency is timed. Ours: one real annotator in headless Chromium on the
  Label page, timed click-to-next-item inside the page (``performance.now()``,
  as in bench/browser.py), and 7 simulated labellers
  (``python -m superintendent.simulate --threads 7``) labelling meanwhile
  with a think time drawn uniformly from 0-1 s (``--sim-think 0.5``; about
  1.5 labels/s each, above the rate Label Studio's annotators reach on
  this machine; each stops after 80 % / 7 of the items, so the queue never
  runs dry for the browser). Both sides: items annotated twice (one annotation per
  item was asked for), from the database after the run.
* **ours over HTTP, 8 clients for D seconds** (issue 15; bench/peers/ours_http.py):
  ``streamlit run`` on the same database kind (a fresh schema / file), 8
  labellers with API tokens, each ``POST /api/v1/projects/{id}/next`` then
  ``.../submit`` as fast as it can: next, and next + submit, timed per label,
  beside Label Studio's /next and /next + annotation POST (the ``api_rows`` of
  the JSON and a second table); items handed to two clients, and items
  annotated twice from the database.

    python bench/peers/label_studio.py            # 100,000 items, 60 s of labelling, PostgreSQL and SQLite
    python bench/peers/label_studio.py --quick    # 2,000 items, 15 s, PostgreSQL and SQLite
    python bench/peers/label_studio.py --databases sqlite

The servers are always stopped at the end. Targets (issue 7): import >= 3x
faster, our click-to-next p50 below Label Studio's next-task p50 alone, no
item annotated twice on either database. Issue 15: our API's next + submit
p50 <= 1/10 of Label Studio's next + annotation p50 on PostgreSQL, and no
item handed out or annotated twice.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.append(str(Path(__file__).resolve().parents[1]))  # bench/, after the standard library (bench/queue.py)

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import shutil  # noqa: E402
import signal  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
import uuid  # noqa: E402
from collections import Counter  # noqa: E402
from contextlib import contextmanager  # noqa: E402
from collections.abc import Iterator  # noqa: E402

import numpy as np  # noqa: E402
import requests  # noqa: E402
import sqlalchemy as sa  # noqa: E402

import browser  # noqa: E402  - bench/browser.py: our app in Chromium
import common  # noqa: E402
import ours_http  # noqa: E402  - ours over the HTTP API (issue 15)
from superintendent import auth, importing, ingest, queue  # noqa: E402
from superintendent.store import init_db, make_engine, session_scope  # noqa: E402

VENV = "label-studio"
REQUIREMENTS = ["label-studio==1.23.*"]
CHECK = "import label_studio; assert label_studio.__version__.startswith('1.23'), label_studio.__version__"
N_ANNOTATORS = 8
ADMIN, ADMIN_PASSWORD, ADMIN_TOKEN = "admin@bench.local", "bench password 123", "benchtoken" + "0" * 30
LABEL_CONFIG = ('<View><Text name="text" value="$text"/><Choices name="label" toName="text">'
                '<Choice value="positive"/><Choice value="negative"/></Choices></View>')
OPTIONS = ["positive", "negative"]
TELEMETRY_OFF = {"LABEL_STUDIO_COLLECT_ANALYTICS": "false", "COLLECT_ANALYTICS": "false", "LATEST_VERSION_CHECK": "false",
                 "SENTRY_DSN": "", "FRONTEND_SENTRY_DSN": ""}

# Runs inside the Label Studio environment: annotator accounts with API tokens, as an admin would make them.
MAKE_USERS = r'''
import json, os, sys
import django
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "label_studio.core.settings.label_studio")
django.setup()
from organizations.models import Organization
from rest_framework.authtoken.models import Token
from users.models import User

org = Organization.objects.first()
out = []
for k in range(int(sys.argv[1])):
    email = f"annotator{k}@bench.local"
    user = User.objects.filter(email=email).first() or User.objects.create_user(email=email, password="bench password 123")
    org.add_user(user)
    user.active_organization = org
    user.save(update_fields=["active_organization"])
    out.append({"email": email, "token": Token.objects.get_or_create(user=user)[0].key})
print("USERS " + json.dumps(out))
'''


def task_file(n: int) -> bytes:
    """N short review-like texts, as one JSON list: the file both importers get."""
    rng = np.random.default_rng(0)
    words = ["good", "bad", "plot", "acting", "slow", "great", "boring", "music", "ending", "cast", "funny", "long"]
    return json.dumps([{"text": f"review {i}: " + " ".join(rng.choice(words, 8))} for i in range(n)]).encode()


# --------------------------------------------------------------------------- Label Studio


class LabelStudio:
    """One Label Studio server (its own process group), stopped on exit."""

    def __init__(self, python: str, database: str, data_dir: Path, pg: dict[str, str] | None) -> None:
        self.python, self.database, self.data_dir = python, database, data_dir
        self.port = browser.free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        site = Path(python).parents[1] / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}" / "site-packages"
        self.env = common.clean_env(**TELEMETRY_OFF, LABEL_STUDIO_BASE_DATA_DIR=str(data_dir), PYTHONPATH=str(site / "label_studio"))
        if pg is None:
            self.env["DJANGO_DB"] = "sqlite"
        else:
            self.env.update(DJANGO_DB="default", POSTGRE_NAME=pg["name"], POSTGRE_USER=pg["user"], POSTGRE_PASSWORD=pg["password"],
                            POSTGRE_HOST=pg["host"], POSTGRE_PORT=pg["port"])
        self.proc: subprocess.Popen | None = None
        self.log_path = data_dir.parent / f"{data_dir.name}.log"

    def __enter__(self) -> LabelStudio:
        shutil.rmtree(self.data_dir, ignore_errors=True)
        self.data_dir.mkdir(parents=True)
        cmd = [str(Path(self.python).parent / "label-studio"), "start", "--no-browser", "--internal-host", "127.0.0.1", "-p", str(self.port),
               "--data-dir", str(self.data_dir), "--username", ADMIN, "--password", ADMIN_PASSWORD, "--user-token", ADMIN_TOKEN,
               "--enable-legacy-api-token", "--log-level", "WARNING"]
        t0 = time.perf_counter()
        self.log_file = open(self.log_path, "w")  # noqa: SIM115 - closed in __exit__
        self.proc = subprocess.Popen(cmd, cwd=self.data_dir, env=self.env, stdout=self.log_file, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        deadline = time.monotonic() + 900
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"label-studio exited ({self.proc.returncode}); see {self.log_path}")
            try:
                if requests.get(f"{self.base}/health", timeout=5).status_code == 200:
                    self.start_seconds = time.perf_counter() - t0
                    return self
            except requests.RequestException:
                pass
            time.sleep(1)
        self.stop()
        raise RuntimeError(f"label-studio did not answer in 900 s; see {self.log_path}")

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=30)
        if getattr(self, "log_file", None) is not None:
            self.log_file.close()

    def api(self, token: str = ADMIN_TOKEN) -> requests.Session:
        s = requests.Session()
        s.headers["Authorization"] = f"Token {token}"
        return s

    def annotators(self, n: int) -> list[str]:
        script = self.data_dir / "make_users.py"
        script.write_text(MAKE_USERS)
        done = subprocess.run([self.python, str(script), str(n)], cwd=self.data_dir, env=self.env, capture_output=True, text=True,
                              timeout=600)
        line = next((x for x in done.stdout.splitlines() if x.startswith("USERS ")), None)
        if done.returncode != 0 or line is None:
            raise RuntimeError(f"could not make Label Studio users:\n{done.stderr[-3000:]}")
        return [u["token"] for u in json.loads(line[6:])]


def ls_run(ls: LabelStudio, data: bytes, n_items: int, duration: float) -> dict:
    admin = ls.api()
    r = admin.post(f"{ls.base}/api/projects", json={"title": "bench", "label_config": LABEL_CONFIG, "maximum_annotations": 1}, timeout=60)
    r.raise_for_status()
    project = r.json()["id"]
    tokens = ls.annotators(N_ANNOTATORS)
    common.log(f"Label Studio ({ls.database}): importing {n_items:,} tasks in one request")
    t0 = time.perf_counter()
    r = admin.post(f"{ls.base}/api/projects/{project}/import", data=data, headers={"Content-Type": "application/json"}, timeout=3600)
    import_seconds = time.perf_counter() - t0
    r.raise_for_status()
    if r.json().get("task_count") != n_items:
        raise RuntimeError(f"Label Studio imported {r.json().get('task_count')} of {n_items} tasks")

    common.log(f"Label Studio ({ls.database}): {N_ANNOTATORS} annotators for {duration:g} s")
    results: list[dict] = [{} for _ in tokens]
    barrier = threading.Barrier(len(tokens))

    def annotator(k: int) -> None:
        api = ls.api(tokens[k])
        api.get(f"{ls.base}/api/current-user/whoami", timeout=60)  # a warm connection, as a logged-in browser has
        next_s, post_s, pair_s, done, handed, errors = [], [], [], [], [], Counter()
        barrier.wait()
        deadline = time.monotonic() + duration
        while time.monotonic() < deadline:
            t = time.perf_counter()
            try:
                r = api.get(f"{ls.base}/api/projects/{project}/next", timeout=120)
            except requests.RequestException as exc:
                errors[f"next: {type(exc).__name__}"] += 1
                continue
            next_s.append(time.perf_counter() - t)
            if r.status_code == 404:
                break  # nothing left for this annotator
            if r.status_code != 200:
                errors[f"next: HTTP {r.status_code}"] += 1
                continue
            task_id = r.json()["id"]
            handed.append(task_id)
            body = {"result": [{"from_name": "label", "to_name": "text", "type": "choices",
                                "value": {"choices": [OPTIONS[(task_id + k) % 2]]}}], "lead_time": 1.0, "project": project}
            t = time.perf_counter()
            try:
                r = api.post(f"{ls.base}/api/tasks/{task_id}/annotations/?project={project}", json=body, timeout=120)
            except requests.RequestException as exc:
                errors[f"annotate: {type(exc).__name__}"] += 1
                continue
            post_s.append(time.perf_counter() - t)
            if r.status_code == 201:
                done.append(task_id)
                pair_s.append(next_s[-1] + post_s[-1])
            else:
                errors[f"annotate: HTTP {r.status_code}"] += 1
        results[k] = {"next_s": next_s, "post_s": post_s, "pair_s": pair_s, "done": done, "handed": handed, "errors": dict(errors)}

    threads = [threading.Thread(target=annotator, args=(k,)) for k in range(len(tokens))]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    stats = admin.get(f"{ls.base}/api/projects/{project}/", timeout=300).json()
    by_task = Counter(task for r in results for task in set(r["done"]))
    handed_to = Counter(task for r in results for task in set(r["handed"]))
    annotations = sum(len(r["done"]) for r in results)
    errors: Counter = Counter()
    for r in results:
        errors.update(r["errors"])
    return {
        "side": "Label Studio 1.23", "database": ls.database, "items": n_items, "server_start_seconds": round(ls.start_seconds, 1),
        "import_seconds": round(import_seconds, 2), "import_items_per_second": round(n_items / import_seconds, 1),
        "annotators": len(tokens), "wall_seconds": round(wall, 1), "annotations": annotations,
        "annotations_per_second": round(annotations / wall, 2),
        "next": common.percentiles([x for r in results for x in r["next_s"]]),
        "annotate": common.percentiles([x for r in results for x in r["post_s"]]),
        "next_and_annotate": common.percentiles([x for r in results for x in r["pair_s"]]),
        "per_annotator": [len(r["done"]) for r in results],
        "items_annotated_twice": sum(1 for c in by_task.values() if c > 1),
        "items_handed_out_twice": sum(1 for c in handed_to.values() if c > 1),
        "server_total_annotations": stats.get("total_annotations_number"),
        "server_tasks_with_annotations": stats.get("num_tasks_with_annotations"),
        "errors": dict(errors),
    }


@contextmanager
def fresh_pg_database(server: str, name: str) -> Iterator[dict[str, str]]:
    """DROP and CREATE database ``name`` on ``server`` for Label Studio; its connection settings."""
    admin = sa.create_engine(f"{server}/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    url = sa.engine.make_url(f"{server}/{name}")
    try:
        yield {"name": name, "user": url.username or "postgres", "password": url.password or "", "host": url.host or "127.0.0.1",
               "port": str(url.port or 5432)}
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


# --------------------------------------------------------------------------- ours


@contextmanager
def our_database(kind: str, server: str, workdir: Path) -> Iterator[str]:
    if kind == "sqlite":
        yield f"sqlite:///{workdir / 'ours.db'}"
        return
    db_url = common.ensure_database(server, "bench_peer")
    schema = f"ls_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(db_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
    try:
        yield f"{db_url}?options=-csearch_path%3D{schema}"
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")
        admin.dispose()


def our_run(kind: str, server: str, data: bytes, n_items: int, duration: float, workdir: Path, sim_think: float = 0.5) -> dict:
    with our_database(kind, server, workdir) as url:
        engine = make_engine(url)
        init_db(engine)
        with session_scope(engine) as s:
            auth.create_user(s, "bench", browser.PASSWORD, "admin")
            project = queue.create_project(s, "bench", options=OPTIONS)
        common.log(f"ours ({kind}): importing {n_items:,} items")
        t0 = time.perf_counter()
        prepared = ingest.prepare_upload("tasks.json", data)
        result = importing.import_prepared(engine, project, prepared)
        import_seconds = time.perf_counter() - t0
        if result.added != n_items:
            raise RuntimeError(f"our importer added {result.added} of {n_items} items")
        engine.dispose()

        common.log(f"ours ({kind}): 1 browser + {N_ANNOTATORS - 1} simulated labellers for {duration:g} s")
        # The simulated labellers (no think time) could empty the queue before the time is up; they stop
        # at 80 % of the items between them, so the browser's annotator always has a next item.
        sim_cap = max(1, int(0.8 * n_items / (N_ANNOTATORS - 1)))
        proc, base = browser.start_app(url, str(workdir))
        sim_out = workdir / f"sim-{kind}.json"
        try:
            from playwright.sync_api import sync_playwright

            with sync_playwright() as pw:
                chromium = browser.launch(pw)
                page = browser.open_page(chromium, base, "bench")
                sim = subprocess.Popen([sys.executable, "-m", "superintendent.simulate", url, "bench", "sim", "--threads",
                                        str(N_ANNOTATORS - 1), "--duration", str(duration), "--max-labels", str(sim_cap),
                                        "--think-seconds", str(sim_think),
                                        "--out", str(sim_out)], stderr=subprocess.PIPE, text=True)
                t0 = time.perf_counter()
                clicks: list[float] = []
                while time.perf_counter() - t0 < duration:
                    clicks += browser.click_to_next(page, 5, len(clicks))
                wall = time.perf_counter() - t0
                chromium.close()
                _, err = sim.communicate(timeout=duration + 600)
                if sim.returncode != 0:
                    raise RuntimeError(f"simulated labellers failed:\n{err[-3000:]}")
        except Exception:
            for log in workdir.glob("streamlit-*.log"):
                common.log(f"{log.name} (last lines):\n" + "\n".join(log.read_text(errors="replace").splitlines()[-40:]))
            raise
        finally:
            browser.stop(proc)
        events = json.loads(sim_out.read_text())
        engine = make_engine(url)
        with engine.connect() as conn:
            twice = conn.exec_driver_sql("SELECT count(*) FROM (SELECT item_id FROM sp_annotation GROUP BY item_id "
                                         "HAVING count(*) > 1) AS t").scalar_one()
            total = conn.exec_driver_sql("SELECT count(*) FROM sp_annotation").scalar_one()
        engine.dispose()
    sim_labels = [sum(1 for row in e["log"] if row[0] == "submit") for e in events]
    return {
        "side": "ours", "database": kind, "items": n_items, "import_seconds": round(import_seconds, 2),
        "import_items_per_second": round(n_items / import_seconds, 1), "annotators": N_ANNOTATORS,
        "browser_clicks": len(clicks), "click_to_next": browser.summary(clicks),
        "simulated": common.percentiles([x for e in events for x in e["latencies"][1:]]),
        "annotations": int(total), "annotations_per_second": round(int(total) / wall, 1),
        "per_annotator": sim_labels + [len(clicks)], "simulated_cap": sim_cap, "simulated_think_seconds": sim_think, "items_annotated_twice": int(twice),
        "clicks_ms": clicks,
    }


# --------------------------------------------------------------------------- report


def markdown(rows: list[dict]) -> str:
    lines = ["| database | side | import of items (s) | items/s | 8 annotators: labels/s | next item p50 ms | p99 ms "
             "| items annotated twice | errors |", "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |"]
    for r in rows:
        if r["side"] == "ours":
            lat, what = r["click_to_next"], " (click to next, browser)"
        else:
            lat, what = r["next"], " (GET /next)"
        errors = ", ".join(f"{k}: {v}" for k, v in r.get("errors", {}).items()) or "none"
        lines.append(f"| {r['database']} | {r['side']}{what} | {r['import_seconds']:.1f} | {r['import_items_per_second']:,.0f} "
                     f"| {r['annotations_per_second']:,.1f} | {lat['p50_ms']:.0f} | {lat['p99_ms']:.0f} | {r['items_annotated_twice']:,} "
                     f"| {errors} |")
    return "\n".join(lines)


def verdicts(rows: list[dict]) -> list[str]:
    out = []
    for db in dict.fromkeys(r["database"] for r in rows):
        ours = next(r for r in rows if r["database"] == db and r["side"] == "ours")
        ls = next(r for r in rows if r["database"] == db and r["side"] != "ours")
        speed = ls["import_seconds"] / ours["import_seconds"]
        p_ours, p_ls = ours["click_to_next"]["p50_ms"], ls["next"]["p50_ms"]
        out.append(f"{db}: import {speed:.1f}x faster (target >= 3x: {'met' if speed >= 3 else 'MISSED'}); "
                   f"click-to-next p50 {p_ours:.0f} ms vs its /next p50 {p_ls:.0f} ms ({'met' if p_ours < p_ls else 'MISSED'}); "
                   f"annotated twice: ours {ours['items_annotated_twice']}, Label Studio {ls['items_annotated_twice']}")
    return out


def api_markdown(rows: list[dict], api_rows: list[dict]) -> str:
    """Label Studio's GET /next + annotation POST beside our API's next + submit (issue 15), per database."""
    lines = ["| database | side | 8 clients: labels/s | next p50 ms | next p99 ms | next + label p50 ms | next + label p99 ms "
             "| items handed out twice | items annotated twice | errors |",
             "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |"]
    for db in dict.fromkeys(r["database"] for r in api_rows):
        for r in [x for x in rows if x["database"] == db and x["side"] != "ours"] + [x for x in api_rows if x["database"] == db]:
            if r["side"] == ours_http.SIDE:
                pair, rate, stored, what = r["next_and_submit"], r["labels_per_second"], r["labels"], " (POST next + POST submit)"
            else:
                pair, rate, stored = r["next_and_annotate"], r["annotations_per_second"], r["annotations"]
                what = " (GET /next + POST annotation)"
            errors = ", ".join(f"{k}: {v}" for k, v in r.get("errors", {}).items()) or "none"
            lines.append(f"| {db} | {r['side']}{what} | {rate:,.1f} | {r['next']['p50_ms']:.0f} | {r['next']['p99_ms']:.0f} "
                         f"| {pair['p50_ms']:.0f} | {pair['p99_ms']:.0f} | {r['items_handed_out_twice']:,} "
                         f"| {r['items_annotated_twice']:,} of {stored:,} | {errors} |")
    return "\n".join(lines)


def api_verdicts(rows: list[dict], api_rows: list[dict]) -> list[str]:
    """Issue 15's target: our API's next + submit p50 <= 1/10 of Label Studio's next + annotation p50, and no duplicates."""
    out = []
    for ours in api_rows:
        ls = next(r for r in rows if r["database"] == ours["database"] and r["side"] != "ours")
        p_ours, p_ls, p_ls_next = ours["next_and_submit"]["p50_ms"], ls["next_and_annotate"]["p50_ms"], ls["next"]["p50_ms"]
        clean = ours["items_handed_out_twice"] == 0 and ours["items_annotated_twice"] == 0
        out.append(f"{ours['database']} over HTTP: our next + submit p50 {p_ours:.0f} ms vs its next + annotation p50 {p_ls:.0f} ms "
                   f"(1/{p_ls / p_ours:.0f}; target <= 1/10: {'met' if p_ours * 10 <= p_ls else 'MISSED'}); "
                   f"vs its GET /next alone {p_ls_next:.0f} ms (1/{p_ls_next / p_ours:.0f}); "
                   f"handed out twice {ours['items_handed_out_twice']}, annotated twice {ours['items_annotated_twice']} "
                   f"({'met' if clean else 'MISSED'}: zero duplicates)")
    return out


def plot(rows: list[dict], path: Path) -> None:
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    dbs = list(dict.fromkeys(r["database"] for r in rows))
    fig = make_subplots(rows=1, cols=2, subplot_titles=(f"import of {rows[0]['items']:,} items (s, log scale)",
                                                        "next item with 8 annotators: p50 and p99 (ms, log scale)"))
    for side, colour in (("ours", "#1f77b4"), ("Label Studio 1.23", "#ff7f0e")):
        rs = [next(r for r in rows if r["database"] == db and r["side"] == side) for db in dbs]
        lat = [r["click_to_next"] if side == "ours" else r["next"] for r in rs]
        fig.add_bar(x=dbs, y=[r["import_seconds"] for r in rs], name=side, marker_color=colour, row=1, col=1,
                    text=[f"{r['import_seconds']:.1f}" for r in rs], textposition="outside")
        fig.add_bar(x=[f"{db} p50" for db in dbs] + [f"{db} p99" for db in dbs], y=[x["p50_ms"] for x in lat] + [x["p99_ms"] for x in lat],
                    name=side, marker_color=colour, showlegend=False, row=1, col=2,
                    text=[f"{x['p50_ms']:.0f}" for x in lat] + [f"{x['p99_ms']:.0f}" for x in lat], textposition="outside")
    fig.update_yaxes(type="log", row=1, col=1)
    fig.update_yaxes(type="log", row=1, col=2)
    fig.update_layout(barmode="group", title="Label Studio 1.23 vs ours (ours: click to next in a browser; Label Studio: GET /next alone)")
    common.write_png(fig, path, width=1000, height=480)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2,000 items, 15 s of labelling")
    parser.add_argument("--items", type=int, help="items to import (default 100,000; 2,000 with --quick)")
    parser.add_argument("--duration", type=float, help="seconds of labelling per side and database (default 60; 15 with --quick)")
    parser.add_argument("--databases", nargs="+", choices=["postgresql", "sqlite"], default=["postgresql", "sqlite"])
    parser.add_argument("--server", default=common.DEFAULT_SERVER, help="PostgreSQL URL without a database name")
    parser.add_argument("--sim-think", type=float, default=0.5,
                        help="mean think time of our 7 simulated labellers (uniform 0-2x this; 0: as fast as they can)")
    parser.add_argument("--png", help="write the plot here (default: docs/images/bench-peer-label-studio.png on full runs)")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # a terminated run still stops its Label Studio server
    n_items = args.items or (2_000 if args.quick else 100_000)
    duration = args.duration or (15.0 if args.quick else 60.0)
    venv = common.ensure_venv(VENV, REQUIREMENTS, CHECK)
    data = task_file(n_items)
    rows, api_rows, load = [], [], {"start": [round(x, 2) for x in os.getloadavg()]}
    with tempfile.TemporaryDirectory(prefix="sp-ls-") as tmp:
        for db in args.databases:
            suffix = "-quick" if args.quick else ""  # a quick run never clobbers a full run's data or database
            data_dir = common.RESULTS / f"label-studio-{db}{suffix}"
            common.log(f"starting Label Studio on {db}")
            if db == "postgresql":
                with fresh_pg_database(args.server, f"bench_ls{suffix.replace('-', '_')}") as pg, LabelStudio(venv["python"], db, data_dir, pg) as ls:
                    rows.append(ls_run(ls, data, n_items, duration))
            else:
                with LabelStudio(venv["python"], db, data_dir, None) as ls:
                    rows.append(ls_run(ls, data, n_items, duration))
            workdir = Path(tmp) / db
            workdir.mkdir()
            rows.append(our_run(db, args.server, data, n_items, duration, workdir, args.sim_think))
            http_dir = Path(tmp) / f"{db}-http"
            http_dir.mkdir()
            with our_database(db, args.server, http_dir) as url:
                api_rows.append(ours_http.run(url, db, data, n_items, duration, http_dir, OPTIONS, N_ANNOTATORS))
    load["end"] = [round(x, 2) for x in os.getloadavg()]
    print(markdown(rows))
    print()
    for line in verdicts(rows):
        print(line)
    print()
    print(api_markdown(rows, api_rows))
    print()
    for line in api_verdicts(rows, api_rows):
        print(line)
    print(f"load average (1, 5, 15 min) at the start {load['start']}, at the end {load['end']}")
    out = common.save_results("peer-label-studio", {"items": n_items, "duration": duration, "venv": venv, "rows": rows,
                                                    "api_rows": api_rows, "load_average": load,
                                                    "postgresql": common.postgres_version(f"{args.server}/postgres")})
    common.log(f"results: {out}")
    png = args.png or (None if args.quick else str(common.IMAGES / "bench-peer-label-studio.png"))
    if png:
        plot(rows, Path(png))
        common.log(f"plot: {png}")


if __name__ == "__main__":
    main()
