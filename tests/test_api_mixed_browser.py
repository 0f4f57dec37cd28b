"""8 HTTP API clients and 2 browser labellers on one project at the same time, against a real server (issue 15).

``streamlit run streamlit_app.py`` on 127.0.0.1, on SQLite and on PostgreSQL; the project holds pyjokes' 283 jokes,
one annotation per item. Eight threads, each its own labeller with its own token, loop ``next`` and ``submit``
(tests/test_api_http.py's ``Server.call``) with a short random pause for thought, while two headless Chromium
contexts (two more labellers) label on the Label page by their number keys (tests/team_tour.py's ``key_for``),
until each browser has given ``BROWSER_LABELS`` labels, or the API clients have used up their share of the
items, or ``RUN_SECONDS`` have passed. Every hand-out and acknowledged submit of the API, and every item the
browsers showed and the label pressed for it, is recorded. Then:

- no item was handed to two labellers: the API hand-outs are distinct among themselves, and none of them is an
  item a browser showed (and the two browsers showed different items);
- every label the API acknowledged and every label the browsers gave is stored once, by its labeller, with its
  value, and the database holds no other annotation;
- the queue still hands out every remaining item (to a ninth API user) except the one each browser is showing,
  which is leased to that browser's labeller; after which every item has exactly one annotation but those two.

One screenshot per browser is taken mid-run into the test's temporary folder.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

import pyjokes
import pytest
import sqlalchemy as sa
from browser_helpers import PASSWORD, VIEWPORT, AppDidNotStart, item_text, running_app, screenshots_into, sign_in, wait_for_new_item
from team_tour import OPTIONS, key_for, no_exception
from test_api_http import Server

from superintendent import auth, queue, serialization, tokens
from superintendent.store import Annotation, Item, User, init_db, make_engine, session_scope
from tests.test_browser import _need_chromium, browser

__all__ = ["browser"]  # the fixture of tests/test_browser.py, used here

API_CLIENTS = 8
BROWSERS = ("web0", "web1")
BROWSER_LABELS = 30  # each browser stops after this many labels
RESERVE = 40  # the API clients stop once only the browsers' share and this many items are left, kept for afterwards
RUN_SECONDS = 30  # at most, for the part where the ten labellers work together
THINK = 0.8  # an API client's pause before each submit: up to this many seconds, at random
SWEEPER = "sweep"  # the API user who takes what is left afterwards
JOKES = pyjokes.get_jokes(language="en", category="all")


def _plain(text: str) -> str:
    return " ".join(text.split())


@dataclass
class Record:
    """What the labellers saw and did, as they saw it."""

    handed: dict[str, list[int]] = field(default_factory=dict)  # API user -> item ids handed out to them, in order
    acked: dict[str, list[tuple[int, str]]] = field(default_factory=dict)  # API user -> (item id, label) the API acknowledged
    ack_times: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def api_labels(self) -> int:
        with self.lock:
            return sum(len(a) for a in self.acked.values())


def _seed(engine: sa.Engine) -> tuple[dict[str, str], int, dict[str, int], dict[str, int]]:
    """The labellers (each API one with a token), the project "jokes" of every joke; returns (tokens, project id,
    item id by joke text, user id by name)."""
    people = [f"api{i}" for i in range(API_CLIENTS)] + list(BROWSERS) + [SWEEPER]
    with session_scope(engine) as s:
        ids = {name: auth.create_user(s, name, PASSWORD, "labeller").id for name in people}
        made = {name: tokens.create(s, ids[name], "mixed").token for name in people if name not in BROWSERS}
        project = queue.create_project(s, "jokes", options=list(OPTIONS), data_type="text")
        queue.add_members(s, project.id, list(ids.values()))
        queue.add_items(s, project, JOKES, external_ids=[f"joke-{i:03d}" for i in range(len(JOKES))])
        project_id = project.id
    with session_scope(engine, write=False) as s:
        item_ids = s.execute(sa.select(Item.id).where(Item.project_id == project_id)).scalars().all()
        by_text = {_plain(data): item_id for item_id, data in queue.items_data(s, project, item_ids).items()}
    assert len(by_text) == len(JOKES)
    return made, project_id, by_text, ids


@pytest.fixture
def app(db_url, tmp_path):
    """The server on a fresh database (SQLite file or PostgreSQL schema), seeded; yields (Server, project id, item ids
    by joke, user ids by name)."""
    _need_chromium()
    engine = make_engine(db_url)
    init_db(engine)
    made, project_id, by_text, users = _seed(engine)
    try:
        with running_app(tmp_path, db_url=db_url) as (base, _):
            yield Server(base, engine, made, {"jokes": project_id}), project_id, by_text, users
    except AppDidNotStart as exc:
        pytest.fail(str(exc))
    finally:
        engine.dispose()


def _api_labeller(server: Server, who: str, record: Record, stop: threading.Event, rng: random.Random) -> None:
    """next, then submit-and-next in a loop until ``stop`` or too few items are left; it keeps the item it holds then
    (given back once every client has stopped: a release now could hand that item to a client still running, which
    is right, but would make "handed to two" harder to tell from a duplicate)."""
    path = f"/projects/{server.projects['jokes']}"
    total = len(JOKES)
    try:
        answer = server.call("POST", f"{path}/next", who)
        task = answer.json()["task"]
        while task is not None:
            with record.lock:
                record.handed[who].append(task["item_id"])
            if stop.is_set() or record.api_labels() + len(BROWSERS) * BROWSER_LABELS >= total - RESERVE:
                break
            time.sleep(rng.uniform(0, THINK))
            value = OPTIONS[task["item_id"] % len(OPTIONS)]
            answer = server.call("POST", f"{path}/submit", who, json={"item_id": task["item_id"], "value": value})
            if answer.status_code != 200:
                record.errors.append(f"{who}: submit {answer.status_code} {answer.text}")
                return
            with record.lock:
                record.acked[who].append((task["item_id"], value))
                record.ack_times.append(time.monotonic())
            task = answer.json()["task"]
    except Exception as exc:  # noqa: BLE001 - reported by the test
        record.errors.append(f"{who}: {exc!r}")


def _stored(engine: sa.Engine, project_id: int) -> list[tuple[int, str, object]]:
    """(item id, username, label) of every annotation in the project."""
    with session_scope(engine, write=False) as s:
        rows = s.execute(sa.select(Annotation.item_id, User.username, Annotation.value).join(User, User.id == Annotation.user_id)
                         .where(Annotation.project_id == project_id)).all()
    return [(item_id, name, serialization.loads(value)) for item_id, name, value in rows]


def test_api_clients_and_browser_labellers_share_one_project_without_duplicates(app, browser, tmp_path):
    server, project_id, by_text, users = app
    shoot = screenshots_into(tmp_path / "screenshots")
    pages = {name: browser.new_context(viewport=VIEWPORT).new_page() for name in BROWSERS}
    for name, page in pages.items():
        sign_in(page, server.base, name)  # a member of one project: the Label page opens on it, with an item
    shown: dict[str, list[int]] = {name: [by_text[_plain(item_text(page))]] for name, page in pages.items()}
    given: dict[str, dict[int, str]] = {name: {} for name in BROWSERS}

    record = Record(handed={f"api{i}": [] for i in range(API_CLIENTS)}, acked={f"api{i}": [] for i in range(API_CLIENTS)})
    stop = threading.Event()
    threads = [threading.Thread(target=_api_labeller, args=(server, who, record, stop, random.Random(n)))
               for n, who in enumerate(record.handed)]
    for t in threads:
        t.start()
    began = time.monotonic()
    try:
        while min(len(g) for g in given.values()) < BROWSER_LABELS and time.monotonic() - began < RUN_SECONDS:
            texts = {name: item_text(page) for name, page in pages.items()}
            for name, page in pages.items():  # both keys first, then both waits: the two browsers' reruns overlap
                page.evaluate("document.activeElement && document.activeElement.blur()")
                page.keyboard.press(key_for(texts[name]))
            for name, page in pages.items():
                given[name][shown[name][-1]] = OPTIONS[int(key_for(texts[name])) - 1]
                shown[name].append(by_text[_plain(wait_for_new_item(page, texts[name]))])
            if len(given[BROWSERS[0]]) == BROWSER_LABELS // 2:
                for name, page in pages.items():
                    shoot(page, f"mid-run-{name}", full_page=False)
        ended = time.monotonic()
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=60)
    no_exception(*pages.values())
    assert record.errors == []
    assert not any(t.is_alive() for t in threads)
    assert all(len(g) >= 5 for g in given.values()), f"the browsers labelled too little: {given}"
    together = sum(began <= at <= ended for at in record.ack_times)
    assert together >= 20, f"only {together} API labels were acknowledged while the browsers labelled"
    assert sum(1 for h in record.handed.values() if len(h) >= 3) >= API_CLIENTS // 2, "the API clients really worked side by side"

    for who in record.handed:  # every client has stopped: they give back what they hold
        assert server.call("POST", f"/projects/{project_id}/release", who).status_code == 200

    # no item handed to two labellers
    api_handed = [i for h in record.handed.values() for i in h]
    twice = [i for i, n in Counter(api_handed).items() if n > 1]
    assert twice == [], f"items handed to two API clients: {twice}"
    browser_shown = [i for name in BROWSERS for i in shown[name]]
    assert len(set(browser_shown)) == len(browser_shown), f"a browser was shown an item twice, or both the same one: {shown}"
    assert set(api_handed).isdisjoint(browser_shown), f"items handed to an API client and shown in a browser: {set(api_handed) & set(browser_shown)}"

    # every acknowledged label stored once, with its value; the browsers' labels too; nothing else
    stored = _stored(server.engine, project_id)
    assert Counter(i for i, _, _ in stored).most_common(1)[0][1] == 1, "an item has two annotations"
    wanted = [(i, who, value) for who, acked in record.acked.items() for i, value in acked]
    wanted += [(i, who, value) for who, labels in given.items() for i, value in labels.items()]
    assert sorted(stored) == sorted(wanted)

    # the queue hands out every remaining item, but for the one each browser shows (leased to its labeller)
    showing = {name: shown[name][-1] for name in BROWSERS}
    with session_scope(server.engine, write=False) as s:
        leased = dict(s.execute(sa.select(Item.id, Item.leased_by).where(Item.project_id == project_id, Item.leased_by.is_not(None))).all())
    assert leased == {showing[name]: users[name] for name in BROWSERS}
    path = f"/projects/{project_id}"
    swept: list[int] = []
    task = server.call("POST", f"{path}/next", SWEEPER).json()["task"]
    while task is not None:
        swept.append(task["item_id"])
        answer = server.call("POST", f"{path}/submit", SWEEPER, json={"item_id": task["item_id"], "value": OPTIONS[0]})
        assert answer.status_code == 200, answer.text
        task = answer.json()["task"]
    labelled = {i for i, _, _ in stored}
    assert len(swept) == len(set(swept))
    assert set(swept) == set(by_text.values()) - labelled - set(showing.values())
    assert len(swept) >= RESERVE // 2, "the API clients left items for afterwards"  # clients in flight may take a few more
    final = Counter(i for i, _, _ in _stored(server.engine, project_id))
    assert set(final.values()) == {1} and set(by_text.values()) - set(final) == set(showing.values())
    print(f"API: {len(wanted) - sum(map(len, given.values()))} labels by {API_CLIENTS} clients; browsers: "
          f"{[len(g) for g in given.values()]} labels in {ended - began:.1f} s; {together} API labels meanwhile; {len(swept)} swept after")
