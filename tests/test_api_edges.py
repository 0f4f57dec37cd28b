"""The Python API and the queue at their edges, alike on SQLite and PostgreSQL.

* Six processes opening one new project at the same moment all get it.
* A handle on a project deleted meanwhile, an unknown user, ids that are
  not whole numbers (True, "3", 2**70): a clear error, nothing written.
* Labels and options have limits (settings): no 50 MB labels, no empty ones,
  and a project's options are checked in linear time.
"""

from __future__ import annotations

import multiprocessing
import re
import time
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import pytest
import sqlalchemy as sa
from sklearn.linear_model import LogisticRegression

from superintendent import Superintendent, queue
from superintendent.auth import ensure_user
from superintendent.learning import RetrainOptions
from superintendent.orchestration import retrain_project
from superintendent.queue import Action
from superintendent.store import Annotation, Item, Project, Role, Skip, make_engine, session_scope
from superintendent.validation import NotFoundError, ValidationError

N_PROCESSES = 6

# --------------------------------------------------------------------------- helpers


def new_project(engine, name: str = "p", n_items: int = 3, **settings):
    settings.setdefault("options", ["a", "b"])
    with session_scope(engine) as s:
        project = queue.create_project(s, name, **settings)
        queue.add_items(s, project, [f"text {i}" for i in range(n_items)])
        uid = ensure_user(s, "alice", role=Role.labeller)
        ids = s.execute(sa.select(Item.id).where(Item.project_id == project.id).order_by(Item.id)).scalars().all()
    return project, uid, ids


def stored(engine, table=Annotation) -> int:
    with session_scope(engine, write=False) as s:
        return s.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()


def refused(engine, name: str, call, message: str) -> None:
    """``call(session)`` raises a ValidationError whose message matches ``message``."""
    with session_scope(engine) as s:
        try:
            call(s)
        except ValidationError as exc:
            assert re.search(message, str(exc)), f"{name}: {exc}"
        else:
            pytest.fail(f"{name} accepted it")


def leased(engine) -> int:
    with session_scope(engine, write=False) as s:
        return s.execute(sa.select(sa.func.count()).select_from(Item).where(Item.leased_by.is_not(None))).scalar_one()


# --------------------------------------------------------------------------- 9. opening one new project from many processes at once


_BARRIER = None  # in each worker: the barrier shared by the pool's processes (cyclic: one per round of N_PROCESSES calls)


def _start_worker(barrier) -> None:
    """In each worker: keep the barrier, and make Superintendent(...) wait for the others once it has the schema.

    Creating the schema is serialised (an advisory lock on PostgreSQL), which spreads the six processes out in
    time; waiting after it makes them all look up and create the project at the same moment, every run.
    """
    global _BARRIER
    _BARRIER = barrier
    import superintendent.core

    schema_first = superintendent.core.init_db

    def init_db_then_wait(engine):
        revision = schema_first(engine)
        _BARRIER.wait(timeout=120)
        return revision

    superintendent.core.init_db = init_db_then_wait


def _open_at_once(url: str, how: str) -> tuple[str, object]:
    """Runs in a worker process: open (or create) the project at the same moment as the others."""
    try:
        if how == "api":
            sup = Superintendent(database_url=url, project="p", options=["a", "b"])  # waits for the others after init_db
            sup.engine.dispose()
            return "ok", sup.project.id
        engine = make_engine(url)
        with engine.connect() as conn:  # connected before the barrier: all six then start their transactions together
            conn.exec_driver_sql("SELECT 1")
        _BARRIER.wait(timeout=120)
        try:
            with session_scope(engine) as s:
                return "ok", queue.create_project(s, "q", options=["a", "b"]).id
        finally:
            engine.dispose()
    except Exception as exc:  # reported to the test, which fails on anything but the expected error
        return type(exc).__name__, str(exc)


@pytest.fixture(scope="module")
def workers():
    """N_PROCESSES spawned processes, started once for this module's tests (starting them is the slow part)."""
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(N_PROCESSES)
    with ProcessPoolExecutor(N_PROCESSES, mp_context=ctx, initializer=_start_worker, initargs=(barrier,)) as pool:
        pool.barrier = barrier
        yield pool


def run_at_once(workers, url: str, how: str) -> list[tuple[str, object]]:
    # A round in which one worker failed before the barrier leaves it broken: the next test starts with a whole one.
    workers.barrier.reset()
    # Each call blocks its worker at the barrier until all N have one, so every worker takes exactly one call.
    futures = [workers.submit(_open_at_once, url, how) for _ in range(N_PROCESSES)]
    return [f.result(timeout=300) for f in futures]


@pytest.mark.parametrize("schema", ["ready", "fresh"])
def test_six_processes_opening_one_new_project_at_once_all_get_it(db_url, schema, request, workers):
    """Superintendent(database_url=..., project="p") in six processes at the same moment: on a database in use ("ready": before
    the fix, on PostgreSQL five of six failed with IntegrityError), and on an empty one (each process also creates the schema)."""
    if schema == "ready":
        request.getfixturevalue("engine")
    got = run_at_once(workers, db_url, "api")
    assert [status for status, _ in got] == ["ok"] * N_PROCESSES, got
    assert len({project_id for _, project_id in got}) == 1
    engine = make_engine(db_url)
    with session_scope(engine, write=False) as s:
        assert s.execute(sa.select(Project.name)).scalars().all() == ["p"]
    engine.dispose()


def test_six_processes_creating_one_name_at_once_one_wins_the_rest_get_a_message(engine, db_url, workers):
    got = run_at_once(workers, db_url, "create")
    assert sorted(status for status, _ in got) == ["ValidationError"] * (N_PROCESSES - 1) + ["ok"], got
    assert all("a project named 'q' exists already" in message for status, message in got if status != "ok")


def test_get_or_create_checks_the_settings_and_creates_once(engine):
    with session_scope(engine) as s:
        first, created = queue.get_or_create_project(s, " p ", options=["a", "b"])
        assert created and first.name == "p"
        again, created = queue.get_or_create_project(s, "p", options=["x"])  # settings are for a new project only
        assert not created and again.id == first.id and again.options == ["a", "b"]
        with pytest.raises(ValidationError, match="given twice"):
            queue.get_or_create_project(s, "p", options=["a", "a"])


# --------------------------------------------------------------------------- 10. gone projects and users, ids at the queue's edge


def test_a_handle_on_a_deleted_project_says_so(db_url):
    features = np.arange(40, dtype=float).reshape(20, 2)
    handle = Superintendent(database_url=db_url, project="gone", options=["a", "b"], model=LogisticRegression(), features=features,
                            labels=["a", "b"] * 5 + [None] * 10)
    stale = handle.project
    other = Superintendent(database_url=db_url, project="gone")
    with session_scope(other.engine) as s:
        queue.delete_project(s, queue.get_project(s, "gone"), "gone")
    gone = "project 'gone' no longer exists: it was deleted"
    for call in (handle.retrain, lambda: handle.add_features(np.ones((2, 2))), handle.queue.pop, lambda: handle.queue.submit(1, "a"),
                 lambda: handle.queue.skip(1), handle.queue.undo, lambda: handle.new_labels, lambda: handle.progress,
                 lambda: retrain_project(handle.engine, stale, RetrainOptions(model=LogisticRegression()))):
        with pytest.raises(NotFoundError, match=gone):
            call()
    with session_scope(handle.engine) as s:  # the queue itself, given a project read before the delete
        with pytest.raises(NotFoundError, match=gone):
            queue.add_items(s, stale, ["new"])
    assert stored(handle.engine, Item) == 0
    for sup in (handle, other):
        sup.engine.dispose()


def test_a_handle_sees_settings_changed_elsewhere(db_url):
    handle = Superintendent(database_url=db_url, project="p", options=["a", "b"], features=["x", "y"])
    with session_scope(handle.engine) as s:
        queue.update_project(s, queue.get_project(s, "p"), options=["a", "b", "c"])
    item_id, _ = handle.queue.pop()
    handle.queue.submit(item_id, "c")  # an option added on the Admin page a moment ago
    assert "c" in handle.new_labels
    handle.engine.dispose()


def test_an_unknown_user_is_not_found_and_nothing_is_written(engine):
    project, _, ids = new_project(engine)
    nobody = 987_654
    with session_scope(engine) as s:
        for call in (lambda: queue.submit(s, project, nobody, ids[0], "a"), lambda: queue.skip(s, project, nobody, ids[0]),
                     lambda: queue.claim_next(s, project, nobody), lambda: queue.submit_and_claim_next(s, project, nobody, ids[0], "a")):
            with pytest.raises(NotFoundError, match=f"no user with id {nobody}"):
                call()
        # no statement failed: the transaction goes on (on PostgreSQL a failed statement would have aborted it)
        assert queue.claim_next(s, project, ensure_user(s, "bob", role=Role.labeller)) is not None
    assert stored(engine) == 0 and stored(engine, Skip) == 0


BAD_IDS = [True, False, np.bool_(True), "3", "1", 3.0, None, 2**70, 2**63, 0, -1]


def _id(value: object) -> str:
    return f"{type(value).__name__}-{value}"


@pytest.mark.parametrize("bad", BAD_IDS, ids=_id)
def test_item_ids_that_are_not_whole_numbers_in_range_are_refused(engine, bad):
    """SQLite labelled item 1 for True and item 3 for "3"; PostgreSQL raised ProgrammingError; 2**70 an OverflowError."""
    project, uid, ids = new_project(engine)
    reviewer = None
    with session_scope(engine) as s:
        reviewer = ensure_user(s, "rita", role=Role.admin)
    calls = {
        "submit": lambda s: queue.submit(s, project, uid, bad, "a"),
        "submit_and_claim_next": lambda s: queue.submit_and_claim_next(s, project, uid, bad, "a"),
        "skip": lambda s: queue.skip(s, project, uid, bad),
        "release": lambda s: queue.release(s, project, uid, bad),
        "act submit": lambda s: queue.act(s, project, uid, Action.submit, item_id=bad, value="a"),
        "act skip": lambda s: queue.act(s, project, uid, Action.skip, item_id=bad),
        "change_own_label": lambda s: queue.change_own_label(s, project, uid, bad, "b"),
        "item_data": lambda s: queue.item_data(s, project, bad),
        "items_data": lambda s: queue.items_data(s, project, [ids[0], bad]),
        "item_history": lambda s: queue.item_history(s, project, bad),
        "set_review": lambda s: queue.set_review(s, project, reviewer, bad, "a"),
    }
    if bad is None:  # None means "no item" where an item is optional
        del calls["release"]
    for name, call in calls.items():
        refused(engine, name, call, r"item'?s? id")  # "the item id must be ...", or act's "submit needs the item's id" for None
    assert stored(engine) == 0 and stored(engine, Skip) == 0


@pytest.mark.parametrize("bad", BAD_IDS, ids=_id)
def test_user_ids_that_are_not_whole_numbers_in_range_are_refused(engine, bad):
    project, _, ids = new_project(engine)
    calls = {
        "claim_next": lambda s: queue.claim_next(s, project, bad),
        "current_task": lambda s: queue.current_task(s, project, bad),
        "submit": lambda s: queue.submit(s, project, bad, ids[0], "a"),
        "skip": lambda s: queue.skip(s, project, bad, ids[0]),
        "undo": lambda s: queue.undo(s, project, bad),
        "release": lambda s: queue.release(s, project, bad),
        "act claim": lambda s: queue.act(s, project, bad, Action.claim),
        "act release": lambda s: queue.act(s, project, bad, Action.release),
        "recent_labels": lambda s: queue.recent_labels(s, project, bad),
        "last_annotation_id": lambda s: queue.last_annotation_id(s, project, bad),
        "may_work_in": lambda s: queue.may_work_in(s, bad, project.id),
        "add_members": lambda s: queue.add_members(s, project.id, [bad]),
        "remove_members": lambda s: queue.remove_members(s, project.id, [bad]),
    }
    for name, call in calls.items():
        refused(engine, name, call, "the user id must be a whole number")
    assert stored(engine) == 0 and leased(engine) == 0


def test_ids_as_numpy_integers_are_fine(engine):
    project, uid, ids = new_project(engine)
    with session_scope(engine) as s:
        queue.submit(s, project, np.int64(uid), np.int64(ids[2]), "a")
        assert queue.item_data(s, project, np.int32(ids[0])) == "text 0"
    assert stored(engine) == 1


# --------------------------------------------------------------------------- 11. limits on labels and options


def test_labels_have_a_length_limit_and_are_never_empty(engine, monkeypatch):
    free, uid, ids = new_project(engine, "free", options=[])
    typed, _, typed_ids = new_project(engine, "typed", options=["a"], allow_free_text=True)
    multi, _, multi_ids = new_project(engine, "multi", options=[], label_mode="multi")

    def submit(project, item_id, value):
        with session_scope(engine) as s:
            queue.submit(s, project, uid, item_id, value)

    for project, item_id in ((free, ids[0]), (typed, typed_ids[0])):
        for empty in ("", "   ", "\n\t"):
            with pytest.raises(ValidationError, match="must not be empty or only spaces"):
                submit(project, item_id, empty)
        with pytest.raises(ValidationError, match=r"may have at most 1,000 characters; got 52,428,800"):
            submit(project, item_id, "x" * 50 * 2**20)  # 50 MB of free text
        with pytest.raises(ValidationError, match="at most 1,000 characters; got 1,001"):
            submit(project, item_id, "x" * 1001)
    with pytest.raises(ValidationError, match="must not be empty"):
        submit(multi, multi_ids[0], ["ok", " "])
    with pytest.raises(ValidationError, match="at most 100,000 characters as stored JSON"):
        submit(multi, multi_ids[0], [f"label {i}" for i in range(20_000)])
    with pytest.raises(ValidationError, match="at most 100,000 characters as stored JSON"):
        submit(free, ids[1], {"boxes": [[i, i, i + 5, i + 5] for i in range(10_000)]})  # a structured label from Python
    with pytest.raises(ValidationError, match="must not be empty"):  # the bulk path checks the same way
        with session_scope(engine) as s:
            queue.add_items(s, free, ["new"], labels=[" "])
    assert stored(engine) == 0

    submit(free, ids[0], "x" * 1000)
    submit(typed, typed_ids[0], "  typed by hand  ")
    submit(multi, multi_ids[0], ["a", "b", "a"])
    monkeypatch.setenv("SUPERINTENDENT_MAX_LABEL_CHARS", "5000")
    submit(free, ids[1], "y" * 4000)
    with session_scope(engine, write=False) as s:
        labels = queue.all_labels(s, free) + queue.all_labels(s, typed) + queue.all_labels(s, multi)
    assert labels == ["x" * 1000, "y" * 4000, None, "typed by hand", None, None, ["a", "b"], None, None]


def test_options_have_limits_and_are_checked_in_linear_time(engine, monkeypatch):
    with session_scope(engine) as s:
        with pytest.raises(ValidationError, match="at most 10,000 label options; got 10,001"):
            queue.create_project(s, "many", options=[f"o{i}" for i in range(10_001)])
        with pytest.raises(ValidationError, match="a label option may have at most 1,000 characters; option 2 has 1,001"):
            queue.create_project(s, "long", options=["a", "b" * 1001])
        with pytest.raises(ValidationError, match="given twice"):
            queue.create_project(s, "twice", options=["a", 1, "b", 1.0])
    monkeypatch.setenv("SUPERINTENDENT_MAX_OPTIONS", "50000")
    options = [f"option {i}" for i in range(40_000)]
    t0 = time.perf_counter()
    with session_scope(engine) as s:
        project = queue.create_project(s, "taxonomy", options=options)
        queue.update_project(s, project, guidelines="pick the closest")  # checks every setting again
    seconds = time.perf_counter() - t0
    assert seconds < 2.0, f"creating and updating a project with 40,000 options took {seconds:.1f} s"  # 7-22 s when quadratic
    print(f"\n[{engine.dialect.name}] project with 40,000 options created and updated in {seconds:.2f} s")
    with session_scope(engine, write=False) as s:
        assert queue.get_project(s, "taxonomy").options == options
