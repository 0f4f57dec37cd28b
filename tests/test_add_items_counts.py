"""Items that arrive with their label are inserted already counted (one row version, not an insert and a recount):
every item's ``n_annotations`` and ``done`` must still be what its annotations say, whatever was there before."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from superintendent import queue
from superintendent.auth import ensure_user
from superintendent.store import Role, session_scope


def counts_agree(engine, project) -> list[tuple]:
    """Items whose stored count or done flag disagrees with their annotations (none, when all is well)."""
    with session_scope(engine, write=False) as s:
        return s.execute(sa.text(
            "SELECT i.external_id, i.n_annotations, i.done, count(a.id) FROM sp_item i LEFT JOIN sp_annotation a ON a.item_id = i.id "
            "WHERE i.project_id = :p GROUP BY i.id, i.external_id, i.n_annotations, i.done "
            "HAVING i.n_annotations <> count(a.id) OR i.done <> (count(a.id) >= :k)"),
            {"p": project.id, "k": project.annotations_per_item}).all()


@pytest.mark.parametrize("per_item", [1, 2])
def test_labelled_new_items_old_items_and_people_labels_all_count(engine, per_item):
    with session_scope(engine) as s:
        project = queue.create_project(s, "counts", options=["a", "b"], annotations_per_item=per_item)
        queue.add_items(s, project, [f"t{i}" for i in range(6)], external_ids=[f"e{i}" for i in range(6)],
                        labels=["a", None, "b", None, None, None])
        user = ensure_user(s, "ann", role=Role.labeller)
    with session_scope(engine) as s:  # a person labels e1 (unlabelled) and e2 (labelled by the import)
        for ext in ("e1", "e2"):
            item_id = s.execute(sa.text("SELECT id FROM sp_item WHERE external_id = :e AND project_id = :p"),
                                {"e": ext, "p": project.id}).scalar_one()
            queue.submit(s, project, user, item_id, "a")
    assert counts_agree(engine, project) == []
    with session_scope(engine) as s:  # again: old items get labels (new, changed, same), new items come labelled or not
        result = queue.add_items(s, project, [f"t{i}" for i in range(9)], external_ids=[f"e{i}" for i in range(9)],
                                 labels=["a", "b", "a", "b", None, None, "a", None, "b"])
    assert (result.added, result.labels_new, result.labels_changed, result.labels_same) == (3, 4, 1, 1)
    assert counts_agree(engine, project) == []
    with session_scope(engine, write=False) as s:
        done = dict(s.execute(sa.text("SELECT external_id, done FROM sp_item WHERE project_id = :p"), {"p": project.id}).all())
    # e1, e2: a person and the import; e0, e3, e6, e8: the import alone
    assert {e for e, d in done.items() if d} == ({"e0", "e1", "e2", "e3", "e6", "e8"} if per_item == 1 else {"e1", "e2"})
