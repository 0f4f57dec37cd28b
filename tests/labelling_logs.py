"""Labellers for tests: one labelling in this process (people_label), simulated ones (superintendent.simulate) started
as processes, and reading their event logs."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from superintendent import queue, simulate
from superintendent.auth import ensure_user
from superintendent.store import Role, session_scope


def people_label(engine: Any, project: Any, n: int, value_of: Callable[[Any, int], Any]) -> None:
    """The labeller "labeller" claims and labels ``n`` items one at a time, as a person does (a label per transaction);
    ``value_of(task, k)`` is the k-th label. Labels given so count as people labelling, unlike labels imported with items."""
    with session_scope(engine) as s:
        user = ensure_user(s, "labeller", role=Role.labeller)
    for k in range(n):
        with session_scope(engine) as s:
            task = queue.claim_next(s, project, user, resume=False)
            queue.submit(s, project, user, task.item_id, value_of(task, k))


def replay(result: dict) -> dict[tuple[str, int], object]:
    """The annotations one simulated labeller should have left: its submits, minus what it undid."""
    kept: dict[int, object] = {}
    order: list[int] = []
    for kind, item, label, _ in result["log"]:
        if kind == "submit":
            if item in kept:
                order.remove(item)
            kept[item] = label
            order.append(item)
        elif kind == "undo":
            assert order and order[-1] == item, "undo hands back the labeller's most recent item"
            order.pop()
            del kept[item]
    return {(result["user"], item): label for item, label in kept.items()}


def read_stream(path: Path, user: str, killed_at: float) -> dict:
    """A killed simulated labeller's streamed log (``simulate --stream``), as simulate's results. ``stopped``: when
    the action it died in began (an undo or a submit that committed unlogged had handed its item back), else the kill."""
    lines = simulate.read_stream(path)
    last_row = max((j for j, line in enumerate(lines) if isinstance(line, list)), default=-1)
    rows = [line for line in lines if isinstance(line, list)]
    stopped = min([killed_at, *(line["begun"] for line in lines[last_row + 1:])])
    return {"user": user, "log": [tuple(r[:4]) for r in rows], "begun": [r[4] for r in rows], "stopped": stopped}


def held_at_once(results: list[dict], lease_seconds: float = float("inf")) -> list[int]:
    """Items two labellers surely held at the same moment.

    A claim at row i holds its item from that row's time (the claim had
    committed) until ``begun[i + 1]``, when the labeller's next action started
    (or ``stopped``), and at most ``lease_seconds`` from ``begun[i]`` (the
    lease, counted from a moment after that, had run out by then): an interval
    inside the real one, so an overlap found is a real one, however late a
    busy process read the clock.
    """
    by_item: dict[int, list] = {}
    for r in results:
        log, begun = r["log"], r["begun"]
        for i, (kind, item, _, t) in enumerate(log):
            if kind == "claim":
                end = min(begun[i + 1] if i + 1 < len(log) else r["stopped"], begun[i] + lease_seconds)
                by_item.setdefault(item, []).append((t, end, r["user"]))
    overlaps = []
    for item, spans in by_item.items():
        spans.sort()
        for k, a in enumerate(spans):
            if any(b[2] != a[2] and b[0] < a[1] for b in spans[k + 1:]):
                overlaps.append(item)
                break
    return overlaps


def start_labellers(url: str, project: str, n: int, tmp_path: Path, **options) -> list[tuple[subprocess.Popen, Path]]:
    """n simulated labeller processes (superintendent.simulate) that start labelling together, once all have imported."""
    procs = []
    for k in range(n):
        out = tmp_path / f"labeller{k}.json"
        args = [sys.executable, "-m", "superintendent.simulate", url, project, f"labeller{k}", "--out", str(out), "--seed", str(k),
                "--barrier", str(tmp_path / "ready"), str(n)]
        for key, value in options.items():
            args += [f"--{key.replace('_', '-')}", str(value)]
        procs.append((subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True), out))
    return procs
