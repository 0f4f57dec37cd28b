"""Deployment files, checked statically, and the compose services' commands run here directly.

No Docker engine runs on this machine: the Dockerfile and docker-compose.yml
are parsed and checked, and the `app` and `orchestrator` commands they name
are run side by side against the local PostgreSQL server (a fresh schema):
labels go in through the running app in Chromium, and the orchestrator
picks the retrain up.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import sqlalchemy as sa
import yaml

from superintendent import auth, queue
from superintendent.store import ModelRun, init_db, make_engine, session_scope

from conftest import _postgres_schema_url
from browser_helpers import PASSWORD, VIEWPORT, chromium, free_port, item_text, log_in, wait_for_new_item
from test_browser import _need_chromium

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def dockerfile_cmd() -> list[str]:
    line = next(line for line in (ROOT / "Dockerfile").read_text().splitlines() if line.startswith("CMD "))
    return json.loads(line[4:])


def test_compose_services(compose):
    services = compose["services"]
    assert set(services) == {"db", "adminer", "app", "orchestrator"}
    db = services["db"]
    assert db["image"].startswith("postgres:")
    volume = db["volumes"][0].split(":")[0]
    assert volume in compose["volumes"], "the database keeps its data in a named volume"
    assert "pg_isready" in " ".join(db["healthcheck"]["test"])
    assert services["adminer"]["image"].startswith("adminer")
    assert services["adminer"]["ports"] == ["127.0.0.1:8080:8080"]
    for name in ("app", "orchestrator"):
        service = services[name]
        assert service["build"] == "."
        assert service["depends_on"]["db"]["condition"] == "service_healthy"
        assert service["environment"]["SUPERINTENDENT_DATABASE_URL"].startswith("postgresql+psycopg2://${POSTGRES_USER}:${POSTGRES_PASSWORD}@db:5432/")
    assert services["app"]["ports"] == ["8501:8501"]
    assert services["app"]["environment"]["SUPERINTENDENT_RUN_SCHEDULER"] == "false"
    assert "superintendent orchestrate --all" in " ".join(services["orchestrator"]["command"])


def test_credentials_come_from_env_and_only_the_example_is_committed(compose):
    text = (ROOT / "docker-compose.yml").read_text()
    referenced = set(re.findall(r"(?<!\$)\$\{(\w+)\}", text))
    example = dict(line.split("=", 1) for line in (ROOT / ".env.example").read_text().splitlines() if line and not line.startswith("#"))
    assert referenced == set(example), "every variable the compose file uses has a placeholder in .env.example"
    assert all("change-me" in v or k in ("POSTGRES_USER", "POSTGRES_DB") for k, v in example.items())
    assert not re.search(r"POSTGRES_PASSWORD:\s*[^$\s]", text), "no password written into the compose file"
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True).stdout.split()
    assert ".env" not in tracked
    assert ".env" in (ROOT / ".gitignore").read_text().split()


def test_dockerfile():
    text = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.11-slim", text, re.M)
    users = re.findall(r"^USER (\S+)", text, re.M)
    assert users and users[-1] not in ("root", "0")
    assert re.search(r"^HEALTHCHECK .*", text, re.M) and "/_stcore/health" in text
    assert "pip install ." in text
    cmd = " ".join(dockerfile_cmd())
    assert "streamlit run streamlit_app.py" in cmd and "superintendent init --wait" in cmd
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert ".env" in ignored and ".git" in ignored


def _service_env(db_url: str, tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SUPERINTENDENT_", "STREAMLIT_"))}
    env.update(SUPERINTENDENT_DATABASE_URL=db_url, SUPERINTENDENT_DATA_DIR=str(tmp_path / "data"), **extra)
    return env


def _wait_for(predicate, timeout: float, what: str):  # noqa: ANN001, ANN202
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.mark.postgres
def test_app_and_orchestrator_side_by_side_on_postgresql(compose, tmp_path):
    _need_chromium()
    schema_urls = _postgres_schema_url()
    db_url = next(schema_urls)
    try:
        engine = make_engine(db_url)
        init_db(engine)
        with session_scope(engine) as s:
            auth.create_user(s, "boss", PASSWORD, "admin")
            project = queue.create_project(s, "headlines", options=["sport", "politics"], data_type="text",
                                           model_preset="tfidf_logistic_regression", retrain_interval_n_labels=6)
            queue.add_items(s, project, [f"{'match report' if i % 2 else 'election news'} number {i}" for i in range(30)])

        port = free_port()
        services = compose["services"]
        app_env = _service_env(db_url, tmp_path, SUPERINTENDENT_RUN_SCHEDULER=services["app"]["environment"]["SUPERINTENDENT_RUN_SCHEDULER"],
                               STREAMLIT_SERVER_PORT=str(port), STREAMLIT_SERVER_ADDRESS="127.0.0.1",
                               STREAMLIT_SERVER_HEADLESS="true")
        orch_env = _service_env(db_url, tmp_path, SUPERINTENDENT_SCHEDULER_TICK_SECONDS="1")
        logs = {name: open(tmp_path / f"{name}.log", "w") for name in ("app", "orchestrator")}
        procs = {
            "app": subprocess.Popen(dockerfile_cmd(), cwd=ROOT, env=app_env, stdout=logs["app"], stderr=subprocess.STDOUT),
            "orchestrator": subprocess.Popen(services["orchestrator"]["command"], cwd=ROOT, env=orch_env,
                                             stdout=logs["orchestrator"], stderr=subprocess.STDOUT),
        }
        try:
            import urllib.request

            def healthy() -> bool:
                try:
                    return urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2).read() == b"ok"
                except OSError:
                    return False

            _wait_for(healthy, 60, "the app's health endpoint")
            with chromium() as browser:
                page = browser.new_page(viewport=VIEWPORT)
                log_in(page, f"http://127.0.0.1:{port}", "boss")
                text = item_text(page)
                for click in range(8):
                    index = 0 if "match" in text else 1
                    page.locator(f".st-key-label-opt-{index} button").click()
                    try:
                        text = wait_for_new_item(page, text)
                    except Exception as exc:  # say what the page showed, and what the services logged
                        logs["app"].flush()
                        shown = page.locator('[data-testid="stMain"]').inner_text()
                        raise AssertionError(f"click {click}: no new item after {text!r}; the page shows:\n{shown}\n"
                                             f"app log:\n{(tmp_path / 'app.log').read_text()[-3000:]}") from exc

            def finished_run():
                with session_scope(engine, write=False) as s:
                    return s.execute(sa.select(ModelRun).where(ModelRun.status == "succeeded")).scalars().first()

            run = _wait_for(finished_run, 60, "the orchestrator's retrain")
            assert run.worker.startswith("scheduler@") and run.n_labels >= 6
            assert procs["app"].poll() is None and procs["orchestrator"].poll() is None
            procs["orchestrator"].terminate()  # SIGTERM: stops cleanly, lock released
            assert procs["orchestrator"].wait(timeout=30) == 0
        finally:
            for proc in procs.values():
                if proc.poll() is None:
                    proc.terminate()
                    proc.wait(timeout=30)
            for log in logs.values():
                log.close()
        orchestrator_log = (tmp_path / "orchestrator.log").read_text()
        assert "succeeded" in orchestrator_log, orchestrator_log
        assert "Traceback" not in orchestrator_log + (tmp_path / "app.log").read_text()
        engine.dispose()
    finally:
        schema_urls.close()


def test_orchestrator_waits_for_the_database(tmp_path):
    """The compose commands wait for a database that is not up yet instead of crashing."""
    env = _service_env("postgresql+psycopg2://nobody@127.0.0.1:1/nowhere", tmp_path)
    out = subprocess.run([sys.executable, "-m", "superintendent.cli", "init", "--wait", "3"], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 2
    assert out.stderr.count("waiting for the database") >= 2
    assert out.stderr.strip().splitlines()[-1].startswith("error: cannot connect to")
