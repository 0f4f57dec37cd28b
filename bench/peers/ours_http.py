"""Ours over the HTTP API: 8 clients doing next + submit through ``/api/v1``, beside Label Studio's annotators (issue 15).

bench/peers/label_studio.py calls :func:`run` in the same run as its Label
Studio part, on the same database kind: ``streamlit run streamlit_app.py`` on
127.0.0.1 (the app serves the API; no scheduler), a project with the same N
items (imported by our importer, not timed here), 8 labeller accounts, each a
member of the project with its own personal access token, and 8 client threads
(one ``requests.Session`` each, kept alive, as Label Studio's annotators have).

Each client does what a Label Studio annotator does for one label, as fast as
it can for D seconds: ``POST /api/v1/projects/{id}/next``, then ``POST
/api/v1/projects/{id}/submit`` with the label. Our submit already claims the
next item in its transaction, so from the second label on ``next`` hands back
the item the client holds: the pair is two requests and two transactions per
label, as Label Studio's GET /next + annotation POST are (a client of ours
needs only the submit; see docs/api-http.md). Timed per label: next alone,
submit alone, and next + submit.

From the clients: items handed to two clients (any ``task`` an answer
carried; an item is never given back during the run, so any item two clients got is a duplicate hand-out). From
the database after the run: annotations stored, items
annotated twice (one annotation per item was asked for).
"""

from __future__ import annotations

import os
import threading
import time
from collections import Counter
from pathlib import Path

import requests
import sqlalchemy as sa

import browser  # bench/browser.py: starts and stops `streamlit run`
import common
from superintendent import auth, importing, ingest, queue, tokens
from superintendent.store import init_db, make_engine, session_scope

SIDE = "ours (HTTP API)"
PASSWORD = "bench http password"


def _seed(url: str, data: bytes, n_items: int, options: list[str], clients: int) -> tuple[int, list[str]]:
    """A project with the items of ``data`` and ``clients`` labellers with tokens; returns (project id, tokens)."""
    engine = make_engine(url)
    init_db(engine)
    with session_scope(engine) as s:
        project = queue.create_project(s, "bench-http", options=options)
        project_id = project.id
    added = importing.import_prepared(engine, project, ingest.prepare_upload("tasks.json", data)).added
    if added != n_items:
        raise RuntimeError(f"our importer added {added} of {n_items} items")
    with session_scope(engine) as s:
        users = [auth.create_user(s, f"api{k}", PASSWORD, "labeller") for k in range(clients)]
        queue.add_members(s, project_id, [u.id for u in users])
        made = [tokens.create(s, u.id, "bench").token for u in users]
    engine.dispose()
    return project_id, made


def _from_database(url: str, project_id: int) -> tuple[int, int]:
    """(annotations stored, items annotated more than once) in the project."""
    engine = make_engine(url)
    with engine.connect() as conn:
        total = conn.execute(sa.text("SELECT count(*) FROM sp_annotation WHERE project_id = :p"), {"p": project_id}).scalar_one()
        twice = conn.execute(sa.text("SELECT count(*) FROM (SELECT item_id FROM sp_annotation WHERE project_id = :p "
                                     "GROUP BY item_id HAVING count(*) > 1) AS t"), {"p": project_id}).scalar_one()
    engine.dispose()
    return int(total), int(twice)


def _client(base: str, project_id: int, token: str, k: int, options: list[str], duration: float,
            barrier: threading.Barrier, out: dict) -> None:
    api = f"{base}/api/v1/projects/{project_id}"
    http = requests.Session()
    http.headers["Authorization"] = f"Bearer {token}"
    next_s, submit_s, pair_s, handed, submitted, errors = [], [], [], [], [], Counter()
    out.update(next_s=next_s, submit_s=submit_s, pair_s=pair_s, handed=handed, submitted=submitted, errors=errors)
    warm = True
    try:
        http.get(api, timeout=60).raise_for_status()  # a warm connection, as Label Studio's annotators have
    except requests.RequestException as exc:
        errors[f"warm-up: {exc}"] += 1
        warm = False
    barrier.wait()
    if not warm:
        return
    deadline = time.monotonic() + duration
    while time.monotonic() < deadline:
        t0 = time.perf_counter()
        try:
            r = http.post(f"{api}/next", timeout=120)
        except requests.RequestException as exc:
            errors[f"next: {type(exc).__name__}"] += 1
            continue
        t1 = time.perf_counter()
        if r.status_code != 200:
            errors[f"next: HTTP {r.status_code}"] += 1
            continue
        next_s.append(t1 - t0)
        task = r.json()["task"]
        if task is None:
            break  # nothing left for this client
        item = task["item_id"]
        if not handed or handed[-1] != item:  # after a submit, next hands back the item that submit leased
            handed.append(item)
        try:
            r = http.post(f"{api}/submit", json={"item_id": item, "value": options[(item + k) % len(options)]}, timeout=120)
        except requests.RequestException as exc:
            errors[f"submit: {type(exc).__name__}"] += 1
            continue
        t2 = time.perf_counter()
        if r.status_code != 200:
            errors[f"submit: HTTP {r.status_code}"] += 1
            continue
        submit_s.append(t2 - t1)
        pair_s.append(t2 - t0)
        submitted.append(item)
        following = r.json()["task"]
        if following is not None:
            handed.append(following["item_id"])
    # The item the last submit leased stays leased: giving it back while other clients still label would let one
    # of them get it, and count as handed out twice. The database is dropped after the run.


def _cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of process ``pid`` so far (Linux /proc; None elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run(url: str, kind: str, data: bytes, n_items: int, duration: float, workdir: Path, options: list[str],
        clients: int = 8) -> dict:
    """Seed ``url`` (an empty database or schema), serve it with ``streamlit run``, label through the API for ``duration`` s."""
    common.log(f"ours over HTTP ({kind}): {n_items:,} items, {clients} labellers with tokens")
    project_id, made = _seed(url, data, n_items, options, clients)
    proc, base = browser.start_app(url, str(workdir))
    results: list[dict] = [{} for _ in range(clients)]
    barrier = threading.Barrier(clients)
    load_before = os.getloadavg()
    server_cpu, client_cpu = _cpu_seconds(proc.pid), time.process_time()
    try:
        common.log(f"ours over HTTP ({kind}): {clients} clients, next + submit for {duration:g} s")
        threads = [threading.Thread(target=_client, args=(base, project_id, made[k], k, options, duration, barrier, results[k]))
                   for k in range(clients)]
        t0 = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.perf_counter() - t0
        client_cpu = time.process_time() - client_cpu
        if server_cpu is not None and (now := _cpu_seconds(proc.pid)) is not None:
            server_cpu = now - server_cpu
    except Exception:
        for log in workdir.glob("streamlit-*.log"):
            common.log(f"{log.name} (last lines):\n" + "\n".join(log.read_text(errors="replace").splitlines()[-40:]))
        raise
    finally:
        browser.stop(proc)
    load_after = os.getloadavg()
    total, twice = _from_database(url, project_id)
    holders: dict[int, set[int]] = {}
    for k, r in enumerate(results):
        for item in r.get("handed", []):
            holders.setdefault(item, set()).add(k)
    errors: Counter = Counter()
    for r in results:
        errors.update(r.get("errors", {}))
    submitted = sum(len(r.get("submitted", [])) for r in results)
    return {
        "side": SIDE, "database": kind, "items": n_items, "clients": clients, "duration": duration, "wall_seconds": round(wall, 1),
        "labels": submitted, "labels_per_second": round(submitted / wall, 1),
        "next": common.percentiles([x for r in results for x in r.get("next_s", [])]),
        "submit": common.percentiles([x for r in results for x in r.get("submit_s", [])]),
        "next_and_submit": common.percentiles([x for r in results for x in r.get("pair_s", [])]),
        "per_client": [len(r.get("submitted", [])) for r in results],
        # CPU per label (next + submit): the server's process, and this process's 8 client threads
        "server_cpu_ms_per_label": None if server_cpu is None or not submitted else round(1000 * server_cpu / submitted, 1),
        "client_cpu_ms_per_label": round(1000 * client_cpu / submitted, 1) if submitted else None,
        "items_handed_out_twice": sum(1 for who in holders.values() if len(who) > 1),
        "annotations_in_database": total, "items_annotated_twice": twice,
        "load_average_before": [round(x, 2) for x in load_before], "load_average_after": [round(x, 2) for x in load_after],
        "errors": dict(errors),
    }
