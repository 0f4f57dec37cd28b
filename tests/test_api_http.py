"""The HTTP API against a real server: ``streamlit run streamlit_app.py`` on 127.0.0.1, on SQLite and PostgreSQL.

Issue 15: every endpoint for an admin, a reviewer, a labeller, a non-member, a revoked token, a deactivated user's
token and no token; 8 API clients labelling one project together hand out no item twice and store every label once;
an upload over the limit gets 413 and imports nothing; failed tokens are rate-limited per address (429); the
labelling client printed in docs/api-http.md runs as it is. The token rules themselves: tests/test_tokens.py.
"""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

import pandas as pd
import pytest
import requests
import sqlalchemy as sa
from browser_helpers import PASSWORD, ROOT, running_app
from conftest import _postgres_schema_url

from superintendent import auth, queue, tokens
from superintendent.store import Annotation, Item, init_db, make_engine, session_scope

UPLOAD_MB = 1  # the server's upload limit in these tests (SUPERINTENDENT_MAX_UPLOAD_MB)
N_ITEMS = 160  # in the project the 8 clients label together
CLIENTS = 8


@dataclass
class Server:
    base: str
    engine: sa.Engine
    tokens: dict[str, str]  # person (or "revoked", "deactivated") -> token
    projects: dict[str, int]  # name -> id
    items: dict[str, list[int]] = field(default_factory=dict)  # project name -> item ids

    def call(self, method: str, path: str, who: str | None = None, **kwargs) -> requests.Response:
        headers = kwargs.pop("headers", {})
        if who is not None:
            headers["Authorization"] = f"Bearer {self.tokens.get(who, who)}"
        return requests.request(method, f"{self.base}/api/v1{path}", headers=headers, timeout=60, **kwargs)


def _seed(engine: sa.Engine) -> tuple[dict[str, str], dict[str, int], dict[str, list[int]]]:
    people = {"boss": "admin", "rita": "reviewer", "lena": "labeller", "olaf": "labeller", "dave": "labeller",
              **{f"crowd{i}": "labeller" for i in range(CLIENTS)}}
    with session_scope(engine) as s:
        ids = {name: auth.create_user(s, name, PASSWORD, role).id for name, role in people.items()}
        made = {name: tokens.create(s, uid, "tests").token for name, uid in ids.items()}
        revoked = tokens.create(s, ids["lena"], "old")
        tokens.revoke(s, ids["lena"], revoked.token_id)
        made["revoked"], made["deactivated"] = revoked.token, made.pop("dave")
        projects = {
            "pets": queue.create_project(s, "pets", options=["cat", "dog"], data_type="text"),
            "secret": queue.create_project(s, "secret", options=["yes", "no"]),
            "pair": queue.create_project(s, "pair", options=["a", "b"], annotations_per_item=2),
            "crowd": queue.create_project(s, "crowd", options=["x", "y", "z"]),
            "model": queue.create_project(s, "model", options=["pos", "neg"], data_type="text", model_preset="tfidf_logistic_regression"),
            "outside": queue.create_project(s, "outside", options=["cat", "dog", "bird"], show_hints=True),
        }
        members = {"pets": ["rita", "lena"], "secret": ["rita"], "pair": ["rita", "lena"], "crowd": [f"crowd{i}" for i in range(CLIENTS)],
                   "model": ["lena"], "outside": ["lena"]}
        for name, who in members.items():
            queue.add_members(s, projects[name].id, [ids[w] for w in who])
        queue.add_items(s, projects["pets"], [f"pet number {i}" for i in range(30)])
        queue.add_items(s, projects["secret"], ["a secret"])
        queue.add_items(s, projects["outside"], [f"photo {i}" for i in range(6)], external_ids=[f"p{i}" for i in range(6)])
        queue.add_items(s, projects["pair"], ["the only item"])
        queue.add_items(s, projects["crowd"], [f"crowd item {i}" for i in range(N_ITEMS)])
        words = ["good great fine", "bad awful poor"]
        queue.add_items(s, projects["model"], [f"{words[i % 2]} {i}" for i in range(40)],
                        labels=[("pos", "neg")[i % 2] if i < 20 else None for i in range(40)])
        auth.set_active(s, "dave", False)
        project_ids = {name: p.id for name, p in projects.items()}
    with session_scope(engine, write=False) as s:
        items = {name: list(s.execute(sa.select(Item.id).where(Item.project_id == pid).order_by(Item.id)).scalars())
                 for name, pid in project_ids.items()}
    return made, project_ids, items


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def server(request, tmp_path_factory):
    folder = tmp_path_factory.mktemp(f"api-{request.param}")
    urls = _postgres_schema_url() if request.param == "postgresql" else iter([f"sqlite:///{folder / 'app.db'}"])
    db_url = next(urls)
    try:
        engine = make_engine(db_url)
        init_db(engine)
        made, projects, items = _seed(engine)
        with running_app(folder, db_url=db_url, extra_env={"SUPERINTENDENT_MAX_UPLOAD_MB": str(UPLOAD_MB)}) as (base, _):
            yield Server(base, engine, made, projects, items)
        engine.dispose()
    finally:
        next(urls, None)  # drops the PostgreSQL schema


def _annotations(server: Server, project: str) -> list[tuple[int, int]]:
    with session_scope(server.engine, write=False) as s:
        return [tuple(r) for r in s.execute(sa.select(Annotation.item_id, Annotation.user_id)
                                            .where(Annotation.project_id == server.projects[project]))]


# --------------------------------------------------------------------------- who may call


def _endpoints(server: Server) -> list[tuple[str, str]]:
    pid, item = server.projects["pets"], server.items["pets"][0]
    return [("GET", "/projects"), ("POST", "/projects"), ("GET", f"/projects/{pid}"), ("PATCH", f"/projects/{pid}"),
            ("GET", f"/projects/{pid}/progress"), ("POST", f"/projects/{pid}/next"), ("POST", f"/projects/{pid}/submit"),
            ("POST", f"/projects/{pid}/skip"), ("POST", f"/projects/{pid}/undo"), ("POST", f"/projects/{pid}/release"),
            ("POST", f"/projects/{pid}/items/upload"), ("POST", f"/projects/{pid}/items"), ("GET", f"/projects/{pid}/items"),
            ("GET", f"/projects/{pid}/items/{item}"), ("GET", f"/projects/{pid}/export"), ("GET", f"/projects/{pid}/runs"),
            ("GET", f"/projects/{pid}/runs/latest"), ("POST", f"/projects/{pid}/runs"), ("POST", f"/projects/{pid}/predictions")]


def test_every_endpoint_refuses_a_call_without_a_good_token(server):
    before = _annotations(server, "pets")
    for method, path in _endpoints(server):
        answer = server.call(method, path)
        assert answer.status_code == 401, (method, path, answer.text)
        assert "Bearer" in answer.json()["error"] and answer.headers["WWW-Authenticate"].startswith("Bearer")
    for who in ("revoked", "deactivated", "sp_not-a-real-token"):  # bad tokens count towards the limit: a few endpoints each
        for method, path in _endpoints(server)[:5]:
            answer = server.call(method, path, who)
            assert answer.status_code == 401, (who, method, path, answer.text)
            assert answer.json() == {"error": "this token is unknown, revoked or expired, or its account may not sign in now"}
    assert _annotations(server, "pets") == before


def test_projects_by_role(server):
    names = lambda who: [p["name"] for p in server.call("GET", "/projects", who).json()["data"]]  # noqa: E731
    assert names("boss") == ["crowd", "model", "outside", "pair", "pets", "secret"]
    assert names("lena") == ["model", "outside", "pair", "pets"]
    assert names("olaf") == []  # a member of nothing (every project has members)
    first = server.call("GET", "/projects", "boss", params={"limit": 2}).json()
    second = server.call("GET", "/projects", "boss", params={"limit": 2, "cursor": first["next_cursor"]}).json()
    third = server.call("GET", "/projects", "boss", params={"limit": 2, "cursor": second["next_cursor"]}).json()
    assert [p["name"] for p in first["data"] + second["data"] + third["data"]] == names("boss") and third["next_cursor"] is None
    assert len(third["data"]) == 2
    pets = server.projects["pets"]
    assert server.call("GET", f"/projects/{pets}", "lena").json()["options"] == ["cat", "dog"]
    assert server.call("GET", f"/projects/{pets}", "olaf").status_code == 403
    assert "not a member" in server.call("GET", f"/projects/{pets}", "olaf").json()["error"]
    assert server.call("GET", "/projects/99999", "boss").json() == {"error": "no project with id 99999"}
    progress = server.call("GET", f"/projects/{pets}/progress", "rita").json()
    assert progress["total"] == 30 and progress["remaining"] == progress["total"] - progress["labelled"]
    assert server.call("GET", f"/projects/{pets}/progress", "olaf").status_code == 403
    assert server.call("GET", "/projects", "boss", params={"cursor": "not-ours"}).status_code == 422


def test_project_create_and_update_are_for_admins_and_checked_field_by_field(server):
    for who in ("lena", "rita"):
        assert server.call("POST", "/projects", who, json={"name": "mine"}).status_code == 403
    bad = server.call("POST", "/projects", "boss", json={"name": " ", "options": "cat", "shuffle_prop": 2, "colour": "red"})
    assert bad.status_code == 422
    fields = {f["field"] for f in bad.json()["fields"]}
    assert {"name", "options", "shuffle_prop", "colour"} <= fields
    assert server.call("POST", "/projects", "boss", json={"name": "x", "model_factory": "os:system"}).status_code == 422
    made = server.call("POST", "/projects", "boss", json={"name": "birds", "options": ["owl", "tit"]})
    assert made.status_code == 201 and made.json()["options"] == ["owl", "tit"]
    bid = made.json()["id"]
    assert server.call("POST", "/projects", "boss", json={"name": "birds"}).status_code == 422  # the name is taken
    assert server.call("PATCH", f"/projects/{bid}", "lena", json={"options": ["owl"]}).status_code == 403
    changed = server.call("PATCH", f"/projects/{bid}", "boss", json={"options": ["owl", "tit", "jay"], "guidelines": "Look closely."})
    assert changed.status_code == 200 and changed.json()["options"] == ["owl", "tit", "jay"]
    refused = server.call("PATCH", f"/projects/{bid}", "boss", json={"annotations_per_item": 0})
    assert refused.status_code == 422 and refused.json()["fields"][0]["field"] == "annotations_per_item"
    assert server.call("GET", f"/projects/{bid}", "boss").json()["annotations_per_item"] == 1  # unchanged


# --------------------------------------------------------------------------- labelling


def test_labelling_next_submit_skip_undo_release(server):
    pets = server.projects["pets"]
    first = server.call("POST", f"/projects/{pets}/next", "lena").json()["task"]
    assert first["item_id"] in server.items["pets"] and first["data"].startswith("pet number")
    assert server.call("POST", f"/projects/{pets}/next", "lena").json()["task"]["item_id"] == first["item_id"]  # still held
    wrong = server.call("POST", f"/projects/{pets}/submit", "lena", json={"item_id": first["item_id"], "value": "cow"})
    assert wrong.status_code == 422 and "not an option" in wrong.json()["error"]
    missing = server.call("POST", f"/projects/{pets}/submit", "lena", json={"value": "cat"})
    assert missing.status_code == 422 and missing.json()["fields"][0]["field"] == "item_id"
    other = server.items["secret"][0]
    assert server.call("POST", f"/projects/{pets}/submit", "lena", json={"item_id": other, "value": "cat"}).status_code == 404
    done = server.call("POST", f"/projects/{pets}/submit", "lena", json={"item_id": first["item_id"], "value": "cat"}).json()
    second = done["task"]
    assert second["item_id"] != first["item_id"]
    skipped = server.call("POST", f"/projects/{pets}/skip", "lena", json={"item_id": second["item_id"]}).json()["task"]
    assert skipped["item_id"] not in (first["item_id"], second["item_id"])
    undone = server.call("POST", f"/projects/{pets}/undo", "lena").json()
    assert undone["undone"] is True and undone["task"]["item_id"] == first["item_id"]
    assert (first["item_id"], ) not in [(i,) for i, _ in _annotations(server, "pets")]
    released = server.call("POST", f"/projects/{pets}/release", "lena")
    assert released.status_code == 200 and released.json()["task"] is None
    assert server.call("POST", f"/projects/{pets}/next", "olaf").status_code == 403
    assert server.call("POST", f"/projects/{pets}/next", "boss").status_code == 200  # admins work in every project
    assert server.call("POST", f"/projects/{pets}/release", "boss").status_code == 200


def test_undo_of_an_item_someone_else_holds_is_a_conflict(server):
    pair = server.projects["pair"]
    (only,) = server.items["pair"]
    task = server.call("POST", f"/projects/{pair}/next", "lena").json()["task"]
    assert task["item_id"] == only
    assert server.call("POST", f"/projects/{pair}/submit", "lena", json={"item_id": only, "value": "a"}).json()["task"] is None
    assert server.call("POST", f"/projects/{pair}/next", "rita").json()["task"]["item_id"] == only  # it needs a second label
    conflict = server.call("POST", f"/projects/{pair}/undo", "lena")
    assert conflict.status_code == 409 and "someone else" in conflict.json()["error"]
    assert len(_annotations(server, "pair")) == 1  # nothing changed


def _label_all(server: Server, who: str, handed: list[int], submitted: list[int], errors: list[str], took: list[float]) -> None:
    crowd = server.projects["crowd"]
    try:
        task = server.call("POST", f"/projects/{crowd}/next", who).json()["task"]
        while task is not None:
            handed.append(task["item_id"])
            began = time.perf_counter()
            answer = server.call("POST", f"/projects/{crowd}/submit", who, json={"item_id": task["item_id"], "value": "xyz"[task["item_id"] % 3]})
            if answer.status_code != 200:
                errors.append(f"{who}: {answer.status_code} {answer.text}")
                return
            took.append(time.perf_counter() - began)
            submitted.append(task["item_id"])
            task = answer.json()["task"]
    except Exception as exc:  # noqa: BLE001 - reported by the test
        errors.append(f"{who}: {exc!r}")


def test_eight_clients_label_one_project_together_without_duplicates(server):
    handed: dict[str, list[int]] = {f"crowd{i}": [] for i in range(CLIENTS)}
    submitted: dict[str, list[int]] = {who: [] for who in handed}
    errors: list[str] = []
    took: list[float] = []  # seconds per submit-and-next request, as a client sees it
    threads = [threading.Thread(target=_label_all, args=(server, who, handed[who], submitted[who], errors, took)) for who in handed]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=240)
    seconds = time.perf_counter() - started
    assert errors == []
    every = [i for ids in handed.values() for i in ids]
    assert sorted(every) == sorted(server.items["crowd"]), "every item handed out exactly once"
    assert sum(1 for ids in handed.values() if ids) >= 2, "the clients really worked side by side"
    stored = _annotations(server, "crowd")
    assert len(stored) == N_ITEMS == sum(len(s) for s in submitted.values())
    assert Counter(i for i, _ in stored).most_common(1)[0][1] == 1
    p50, p99 = (sorted(took)[int(q * (len(took) - 1))] * 1000 for q in (0.5, 0.99))
    print(f"{CLIENTS} clients labelled {N_ITEMS} items in {seconds:.1f} s; submit-and-next p50 {p50:.0f} ms, p99 {p99:.0f} ms")


# --------------------------------------------------------------------------- items in and out


def test_items_list_search_and_history_are_for_reviewers_and_admins(server):
    pets = server.projects["pets"]
    assert server.call("GET", f"/projects/{pets}/items", "lena").status_code == 403
    assert server.call("GET", f"/projects/{server.projects['secret']}/items", "olaf").status_code == 403
    seen, cursor = [], None
    while True:
        page = server.call("GET", f"/projects/{pets}/items", "rita", params={"limit": 7, **({"cursor": cursor} if cursor else {})}).json()
        seen += [i["item_id"] for i in page["data"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == server.items["pets"][:len(seen)] and len(seen) >= 30
    found = server.call("GET", f"/projects/{pets}/items", "rita", params={"search": "NUMBER 17"}).json()["data"]
    assert [i["data"] for i in found] == ["pet number 17"]
    item = server.items["pets"][3]
    detail = server.call("GET", f"/projects/{pets}/items/{item}", "boss").json()
    assert detail["item_id"] == item and detail["data"] == "pet number 3" and isinstance(detail["revisions"], list)
    assert server.call("GET", f"/projects/{pets}/items/{server.items['secret'][0]}", "rita").status_code == 404


def test_imports_by_file_and_json_with_the_upload_limits(server):
    secret = server.projects["secret"]
    table = b"text,label\nfirst row,yes\nsecond row,no\nthird row,\n"
    assert server.call("POST", f"/projects/{secret}/items/upload", "rita", files={"file": ("t.csv", table)}).status_code == 403
    done = server.call("POST", f"/projects/{secret}/items/upload", "boss", files={"file": ("t.csv", table)}, data={"label_column": "label"})
    assert done.status_code == 201, done.text
    assert (done.json()["added"], done.json()["labels_new"]) == (3, 2)
    bad = server.call("POST", f"/projects/{secret}/items/upload", "boss", files={"file": ("t.csv", b"text,label\nx,maybe\n")},
                      data={"label_column": "label"})
    assert bad.status_code == 422 and "maybe" in bad.json()["error"]
    with session_scope(server.engine, write=False) as s:
        before = s.execute(sa.select(sa.func.count()).select_from(Item).where(Item.project_id == secret)).scalar_one()
    big = b"text\n" + b"".join(b"row %08d of a file over the limit\n" % i for i in range(40_000))  # about 1.4 MB
    assert len(big) > UPLOAD_MB * 2**20
    over = server.call("POST", f"/projects/{secret}/items/upload", "boss", files={"file": ("big.csv", big)})
    assert over.status_code == 413 and "limit" in over.json()["error"]
    huge = server.call("POST", f"/projects/{secret}/items/upload", "boss", files={"file": ("huge.csv", big * 2)})
    assert huge.status_code == 413 and "limit" in huge.json()["error"]  # over the limit with the envelope: refused unread
    part = b'--b\r\nContent-Disposition: form-data; name="file"; filename="big.csv"\r\nContent-Type: text/csv\r\n\r\n'
    chunked = server.call("POST", f"/projects/{secret}/items/upload", "boss", data=iter([part, big, big, b"\r\n--b--\r\n"]),
                          headers={"Content-Type": "multipart/form-data; boundary=b"})  # no Content-Length: cut off as it comes
    assert chunked.status_code == 413 and "limit" in chunked.json()["error"]
    broken = server.call("POST", f"/projects/{secret}/items/upload", "boss", data=b"not multipart at all",
                         headers={"Content-Type": "multipart/form-data; boundary=b"})
    assert broken.status_code == 400 and "multipart/form-data in the field 'file'" in broken.json()["error"]
    added = server.call("POST", f"/projects/{secret}/items", "boss", json={"items": [{"data": "by json", "external_id": "j1", "label": "yes"}]})
    assert added.status_code == 201 and added.json()["added"] == 1
    mixed = server.call("POST", f"/projects/{secret}/items", "boss", json={"items": [{"data": "a", "external_id": "j2"}, {"data": "b"}]})
    assert mixed.status_code == 422
    assert server.call("POST", f"/projects/{secret}/items", "boss", json={"items": []}).json()["fields"][0]["field"] == "items"
    with session_scope(server.engine, write=False) as s:
        after = s.execute(sa.select(sa.func.count()).select_from(Item).where(Item.project_id == secret)).scalar_one()
    assert after == before + 1  # only the JSON item: the files over the limit imported nothing


@pytest.mark.parametrize("fmt", ["csv", "json", "parquet", "jsonl", "label-studio"])
def test_export_in_every_format_of_the_admin_page(server, fmt):
    pets = server.projects["pets"]
    assert server.call("GET", f"/projects/{pets}/export", "rita", params={"format": fmt}).status_code == 403
    answer = server.call("GET", f"/projects/{pets}/export", "boss", params={"format": fmt})
    assert answer.status_code == 200
    assert answer.headers["Content-Disposition"].startswith('attachment; filename="pets-')
    if fmt == "parquet":
        assert len(pd.read_parquet(io.BytesIO(answer.content))) >= 0
    elif fmt == "jsonl":
        assert len([json.loads(line) for line in answer.text.splitlines()]) == 30
    elif fmt in ("json", "label-studio"):
        assert isinstance(answer.json(), list)
    else:
        assert answer.text.startswith("item_id,")
    assert server.call("GET", f"/projects/{pets}/export", "boss", params={"format": "xlsx"}).status_code == 422


def test_a_spans_project_labelled_and_exported_over_http(server):
    """A labeller marks spans through /next and /submit (checked against the item: a span past the text is refused,
    nothing stored); an admin exports CoNLL and COCO is refused for a spans project."""
    with session_scope(server.engine) as s:
        project = queue.create_project(s, "api spans", label_mode="spans", options=["PER", "LOC"], data_type="text")
        queue.add_items(s, project, ["Ada met Bob in Rome."], external_ids=["s1"])
        queue.add_members(s, project.id, [auth.get_user(s, "lena").id])
        pid = project.id
    task = server.call("POST", f"/projects/{pid}/next", "lena").json()["task"]
    assert task["data"] == "Ada met Bob in Rome."
    bad = server.call("POST", f"/projects/{pid}/submit", "lena", json={"item_id": task["item_id"], "value": [{"start": 0, "end": 99, "label": "PER"}]})
    assert bad.status_code == 422 and "runs from 0 to 99" in bad.json()["error"]
    spans = [{"start": 15, "end": 19, "label": "LOC"}, {"start": 0, "end": 3, "label": "PER", "text": "Ada"}]
    assert server.call("POST", f"/projects/{pid}/submit", "lena", json={"item_id": task["item_id"], "value": spans}).status_code == 200
    conll = server.call("GET", f"/projects/{pid}/export", "boss", params={"format": "conll"})
    assert conll.status_code == 200 and conll.headers["Content-Disposition"].endswith('.conll"')
    tags = [line.split()[-1] for line in conll.text.splitlines() if line.strip() and not line.startswith("-DOCSTART-")]
    assert tags == ["B-PER", "O", "O", "O", "B-LOC", "O"]
    coco = server.call("GET", f"/projects/{pid}/export", "boss", params={"format": "coco"})
    assert coco.status_code == 422 and "conll" in coco.json()["error"]


def test_model_runs_list_latest_and_retrain(server):
    model, pets = server.projects["model"], server.projects["pets"]
    assert server.call("GET", f"/projects/{model}/runs", "lena").json() == {"data": [], "next_cursor": None}
    assert server.call("GET", f"/projects/{model}/runs/latest", "lena").status_code == 404
    assert server.call("POST", f"/projects/{model}/runs", "lena").status_code == 403
    assert server.call("POST", f"/projects/{pets}/runs", "boss").status_code == 422  # no model set
    assert server.call("POST", f"/projects/{model}/runs", "boss").status_code == 202
    deadline = time.monotonic() + 120
    while (latest := server.call("GET", f"/projects/{model}/runs/latest", "lena")).status_code == 404 or latest.json()["status"] == "running":
        assert time.monotonic() < deadline, latest.text
        time.sleep(0.5)
    assert latest.json()["status"] == "succeeded" and latest.json()["n_labels"] == 20
    assert [r["id"] for r in server.call("GET", f"/projects/{model}/runs", "lena").json()["data"]] == [latest.json()["id"]]


def test_predictions_from_an_outside_model_become_hints_and_order_a_project_without_a_model(server):
    outside, model = server.projects["outside"], server.projects["model"]
    body = {"model": "gpu-resnet", "version": "7", "predictions": [
        {"external_id": "p0", "probabilities": {"cat": 0.98, "dog": 0.01, "bird": 0.01}},
        {"external_id": "p3", "probabilities": {"cat": 0.34, "dog": 0.33, "bird": 0.33}},  # the least sure: asked first
        {"item_id": server.items["outside"][5], "label": "bird", "confidence": 0.6},
    ]}
    assert server.call("POST", f"/projects/{outside}/predictions", "lena", json=body).status_code == 403
    wrong = {**body, "predictions": [{"external_id": "p1", "label": "cow"}]}
    assert server.call("POST", f"/projects/{outside}/predictions", "boss", json=wrong).status_code == 422
    unknown = {**body, "predictions": [{"external_id": "nope", "label": "cat"}, {"item_id": server.items["pets"][0], "label": "cat"}]}
    refused = server.call("POST", f"/projects/{outside}/predictions", "boss", json=unknown)
    assert refused.status_code == 422 and "'nope'" in refused.json()["error"]
    both = {**body, "predictions": [{"external_id": "p1", "item_id": 1, "label": "cat"}]}
    assert "one of the two" in server.call("POST", f"/projects/{outside}/predictions", "boss", json=both).json()["error"]
    stored = server.call("POST", f"/projects/{outside}/predictions", "boss", json=body)
    assert stored.json() == {"stored": 3, "reordered": True}
    task = server.call("POST", f"/projects/{outside}/next", "lena").json()["task"]
    assert task["external_id"] == "p3" and task["hint"] == "cat" and task["hint_top"][0] == ["cat", 0.34]
    server.call("POST", f"/projects/{outside}/release", "lena")
    hinted = server.call("POST", f"/projects/{model}/predictions", "boss",
                         json={"model": "llm", "predictions": [{"item_id": server.items["model"][-1], "label": "pos"}]})
    assert hinted.json() == {"stored": 1, "reordered": False}  # the project's own model orders its queue


def test_the_docs_are_served_without_a_cdn_and_the_description_lists_every_endpoint(server):
    spec = requests.get(f"{server.base}/api/v1/openapi.json", timeout=30).json()
    served = {(m.upper(), re.sub(r"\{[a-z_]+\}", "{}", p)) for p, ops in spec["paths"].items() for m in ops}
    wanted = {(m, re.sub(r"/\d+", "/{}", p)) for m, p in _endpoints(server)}
    assert wanted <= served
    page = requests.get(f"{server.base}/api/v1/docs", timeout=30)
    assert page.status_code == 200 and "/projects/{project_id}/submit" in page.text
    assert "<script" not in page.text and not re.search(r"(https?:)?//[a-z]", page.text)  # nothing loaded from elsewhere


def test_the_labelling_client_of_the_docs_runs_against_the_server(server):
    text = (ROOT / "docs" / "api-http.md").read_text()
    client = re.search(r"<!-- not-run: it needs a running server; tests/test_api_http.py runs it[^\n]*-->\s*```python\n(.*?)```",
                       text, re.S).group(1)
    assert len(client.splitlines()) <= 35
    project = server.projects["pets"]
    env = {**os.environ, "SUPERINTENDENT_URL": server.base, "SUPERINTENDENT_TOKEN": server.tokens["rita"], "PROJECT_ID": str(project),
           "MAX_LABELS": "5"}
    before = len(_annotations(server, "pets"))
    run = subprocess.run([sys.executable, "-c", client], env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert len(_annotations(server, "pets")) == before + 5
    assert "labelled 5 items" in run.stdout


def test_bad_tokens_from_one_address_are_held_off_with_429(server):  # last: it holds 127.0.0.1 off for a minute
    answers = [server.call("GET", "/projects", "sp_guess-%d" % i).status_code for i in range(tokens.MAX_FAILURES + 2)]
    assert 429 in answers and set(answers) == {401, 429}
    held = server.call("GET", "/projects", "boss")  # even a good token waits: the address is held off
    assert held.status_code == 429 and 1 <= int(held.headers["Retry-After"]) <= 60
    assert "try again in" in held.json()["error"]
