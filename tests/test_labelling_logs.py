"""The yardstick of the concurrency tests: a simulated labeller's streamed log, and "held by two at once" read from
logs. A yardstick that reports overlaps that did not happen fails soaks at random; one that misses real ones lets a
broken queue pass. Both ways are checked here on logs written by hand, and the stream on a real labeller's run."""

from __future__ import annotations

import json

import sqlalchemy as sa

from labelling_logs import held_at_once, read_stream
from superintendent import queue
from superintendent.simulate import run_labeller
from superintendent.store import init_db, session_scope


def write_stream(path, lines) -> None:
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))


def test_a_labeller_killed_inside_an_undo_held_its_claimed_item_only_until_the_undo_began(tmp_path):
    # The CI failure of stop 25: A claimed 672, began an undo (which handed 672 back and committed), and was killed
    # before logging it; B claimed 672 after the undo. Read up to the kill, A "held" 672 while B did.
    a = tmp_path / "a.jsonl"
    write_stream(a, [{"begun": 10.00}, ["claim", 672, None, 10.02, 10.00], {"begun": 10.05}])
    b = {"user": "b", "log": [("claim", 672, None, 10.08)], "begun": [10.06], "stopped": 10.30}
    killed = read_stream(a, "a", killed_at=10.10)
    assert killed["stopped"] == 10.05
    assert held_at_once([killed, b]) == []
    assert held_at_once([dict(killed, stopped=10.10), b]) == [672]  # the old reading: up to the kill


def test_a_labeller_killed_between_actions_held_its_item_until_the_kill(tmp_path):
    a = tmp_path / "a.jsonl"
    write_stream(a, [{"begun": 10.00}, ["claim", 672, None, 10.02, 10.00]])
    with a.open("a") as f:
        f.write('["submit", 672, "a", 10.1')  # a row cut short by the kill is not read
    killed = read_stream(a, "a", killed_at=10.10)
    assert killed["log"] == [("claim", 672, None, 10.02)] and killed["stopped"] == 10.10
    b = {"user": "b", "log": [("claim", 672, None, 10.08)], "begun": [10.06], "stopped": 10.30}
    assert held_at_once([killed, b]) == [672]


def test_a_hold_ends_when_its_lease_runs_out():
    a = {"user": "a", "log": [("claim", 5, None, 1.0), ("submit", 5, "x", 9.0)], "begun": [0.9, 8.0], "stopped": 9.0}
    b_after = {"user": "b", "log": [("claim", 5, None, 6.5)], "begun": [6.4], "stopped": 7.0}
    b_within = {"user": "b", "log": [("claim", 5, None, 4.0)], "begun": [3.9], "stopped": 4.5}
    assert held_at_once([a, b_after]) == [5]  # no lease given: held until the next action began
    assert held_at_once([a, b_after], lease_seconds=5) == []  # A's lease ran out by 5.9
    assert held_at_once([a, b_within], lease_seconds=5) == [5]


def test_a_streamed_log_marks_each_transaction_as_it_begins(tmp_path):
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    engine = sa.create_engine(url)
    init_db(engine)
    with session_scope(engine) as s:
        project = queue.create_project(s, "stream", options=["a", "b"])
        queue.add_items(s, project, [[float(k)] for k in range(6)])
    engine.dispose()
    events = run_labeller(url, "stream", "ann", max_labels=4, seed=1, stream=str(tmp_path / "streams"))
    lines = [json.loads(line) for line in (tmp_path / "streams" / "ann.jsonl").read_text().splitlines()]
    rows = [line for line in lines if isinstance(line, list)]
    assert [tuple(r[:4]) for r in rows] == events.log
    marks = [line["begun"] for line in lines if isinstance(line, dict)]
    assert len(marks) == 5  # the first claim, then four submits (each claims the next item)
    for j, line in enumerate(lines):
        if isinstance(line, list):  # a row's action began at the latest mark before it
            assert line[4] == [m["begun"] for m in lines[:j] if isinstance(m, dict)][-1]
