"""Count what one label costs on each database (docs/queue.md): the statements, BEGIN and COMMIT of a click.

Usage: python tools/roundtrips.py sqlite:////tmp/rt.db postgresql+psycopg2://postgres@127.0.0.1:5432/test

Each label goes the Label page's way: ``run_transaction`` around
``queue.act(..., Action.submit, ...)``. The pool's pre-ping on PostgreSQL is
not an SQLAlchemy cursor event, so it is not in the counts printed here
(docs/queue.md adds it).
"""

from __future__ import annotations

import sys
import uuid

from sqlalchemy import event

from superintendent import queue
from superintendent.auth import ensure_user
from superintendent.store import init_db, make_engine, session_scope
from superintendent.store.db import run_transaction
from superintendent.store.models import Role

LABELS = 20


def measure(url: str) -> None:
    engine = make_engine(url)
    init_db(engine)
    with session_scope(engine) as s:
        project = queue.create_project(s, f"roundtrips-{uuid.uuid4().hex[:6]}", options=["a", "b"])
        queue.add_items(s, project, list(range(LABELS + 5)))
        user_id = ensure_user(s, f"roundtrips-{uuid.uuid4().hex[:6]}", role=Role.labeller)
    with session_scope(engine) as s:
        task = queue.act(s, project, user_id, queue.Action.claim).task
    counts = {"statements": 0, "begin": 0, "commit": 0}
    first: list[str] = []

    @event.listens_for(engine, "before_cursor_execute")
    def statement(conn, cursor, text, params, context, executemany):  # noqa: ANN001, ANN202
        counts["statements"] += 1
        if len(first) < 10:
            first.append(" ".join(text.split()[:4]))

    event.listen(engine, "begin", lambda conn: counts.__setitem__("begin", counts["begin"] + 1))
    event.listen(engine, "commit", lambda conn: counts.__setitem__("commit", counts["commit"] + 1))
    for _ in range(LABELS):
        item_id = task.item_id
        task = run_transaction(engine, lambda s: queue.act(s, project, user_id, queue.Action.submit, item_id=item_id, value="a").task,
                               idempotent=True)
        if task is None:
            break
    print(engine.dialect.name, {k: v / LABELS for k, v in counts.items()})
    print("  one label's statements:", first[: counts["statements"] // LABELS])
    engine.dispose()


if __name__ == "__main__":
    for url in sys.argv[1:]:
        measure(url)
