"""The import job runner (``superintendent.import_jobs``) on SQLite and PostgreSQL: an import in its own thread that
reports progress, can be cancelled (then nothing at all is imported), reports its error, and on success gives the same
counts as a direct ``import_prepared``. Real data: scikit-learn's wine rows, repeated with new ids."""

from __future__ import annotations

import re
import threading

import pandas as pd
import pytest
import sqlalchemy as sa
from sklearn.datasets import load_wine

from superintendent import import_jobs, importing, ingest, queue
from superintendent.import_jobs import JobState
from superintendent.store import Annotation, Item, session_scope
from superintendent.validation import SuperintendentError

OPTIONS = ["class_0", "class_1", "class_2"]


def wine_csv(n_rows: int, *, bad_label_row: int | None = None) -> bytes:
    wine = load_wine(as_frame=True).frame
    big = pd.concat([wine] * (n_rows // len(wine) + 1), ignore_index=True).iloc[:n_rows]
    big["target"] = [f"class_{t}" for t in big["target"]]
    big.insert(0, "id", [f"w-{i:06d}" for i in range(len(big))])
    return big.to_csv(index=False).encode()


def prepare(data: bytes, options=OPTIONS) -> ingest.PreparedImport:
    frame = ingest.read_table(data, "csv", name="wine.csv")
    columns = [c for c in frame.columns if c not in ("id", "target")]
    plan = ingest.TablePlan(display_columns=columns, model_columns=columns, label_column="target", id_column="id")
    return ingest.prepare_upload("wine.csv", data, plan=plan, options=options, fmt="csv")


def new_project(engine, name: str, options=OPTIONS):
    with session_scope(engine) as s:
        return queue.create_project(s, name, options=options, data_type="tabular")


def counts(engine, project) -> tuple[int, int]:
    with session_scope(engine, write=False) as s:
        items = s.execute(sa.select(sa.func.count()).select_from(Item).where(Item.project_id == project.id)).scalar_one()
        labels = s.execute(sa.select(sa.func.count()).select_from(Annotation).where(Annotation.project_id == project.id)).scalar_one()
    return items, labels


@pytest.fixture(scope="module")
def wine_20k() -> ingest.PreparedImport:
    return prepare(wine_csv(20_000))


def test_an_import_job_gives_the_same_result_as_a_direct_import(engine, wine_20k):
    direct, in_job = new_project(engine, "direct"), new_project(engine, "job")
    expected = importing.import_prepared(engine, direct, wine_20k)
    seen: list[float] = []
    job = import_jobs.start_import(engine, in_job, wine_20k, on_progress=seen.append)
    status = job.wait(120)
    assert status.state is JobState.done and status.error is None
    assert status.result == expected and expected.added == 20_000 and expected.labelled == 20_000
    assert counts(engine, in_job) == counts(engine, direct) == (20_000, 20_000)
    # progress was reported chunk by chunk (about every ROWS_PER_CHUNK items), rising to 1
    assert len(seen) >= 20_000 // import_jobs.ROWS_PER_CHUNK and seen == sorted(seen) and seen[-1] == 1.0
    assert status.done_items == status.total_items == 20_000 and status.fraction == 1.0
    assert import_jobs.get_job(job.job_id) is job


def test_a_cancelled_import_imports_nothing(engine, wine_20k):
    project = new_project(engine, "cancelled")
    job: import_jobs.ImportJob | None = None

    def cancel_half_way(fraction: float) -> None:  # on the worker thread, between chunks, inside the open transaction
        if fraction >= 0.5:
            assert counts_in_other_session() == (0, 0)  # nothing committed yet: other sessions see nothing
            job.cancel()

    def counts_in_other_session():
        return counts(engine, project) if engine.dialect.name == "postgresql" else (0, 0)  # SQLite: the writer holds the file

    job = import_jobs.start_import(engine, project, wine_20k, on_progress=cancel_half_way)
    status = job.wait(120)
    assert status.state is JobState.cancelled and status.cancel_requested
    assert status.result is None and status.error is None
    assert 0.5 <= status.fraction < 1.0 and 0 < status.done_items < 20_000  # how far it got before rolling back
    assert counts(engine, project) == (0, 0)  # zero items, zero annotations
    # the project is untouched: the same file imports in full afterwards
    again = import_jobs.start_import(engine, project, wine_20k).wait(120)
    assert again.state is JobState.done and again.result.added == 20_000
    assert counts(engine, project) == (20_000, 20_000)


def test_a_cancel_from_another_thread_stops_a_running_import(engine, wine_20k):
    project = new_project(engine, "cancelled-from-outside")
    job = import_jobs.start_import(engine, project, wine_20k)
    job.cancel()  # the page's thread asks; the worker stops at its next chunk (or before it begins)
    status = job.wait(120)
    assert status.state is JobState.cancelled
    assert counts(engine, project) == (0, 0)


def test_an_error_is_reported_with_its_message_and_nothing_is_imported(engine, wine_20k):
    project = new_project(engine, "two-options", options=["class_0", "class_1"])  # class_2 is no option here
    status = import_jobs.start_import(engine, project, wine_20k).wait(120)
    assert status.state is JobState.failed and status.result is None
    assert re.fullmatch(r"item \d+: label 'class_2' is not an option of project 'two-options' \(options: class_0, class_1\); "
                        "nothing was imported", status.error), status.error
    assert counts(engine, project) == (0, 0)


def test_the_guard_runs_on_the_worker_thread_first_and_its_refusal_is_the_error(engine, wine_20k):
    project = new_project(engine, "guarded")
    threads: list[str] = []

    def refuse(act):
        threads.append(threading.current_thread().name)
        raise SuperintendentError("your account may not do this any more")

    job = import_jobs.start_import(engine, project, wine_20k, guard=refuse)
    status = job.wait(120)
    assert status.state is JobState.failed and status.error == "your account may not do this any more"
    assert threads == [f"superintendent-{job.job_id}"]
    assert counts(engine, project) == (0, 0)

    audited: list[queue.AddResult] = []

    def check_then_audit(act):  # the page's guard: check, act, audit the result
        result = act(engine)
        audited.append(result)
        return result

    status = import_jobs.start_import(engine, project, wine_20k, guard=check_then_audit).wait(120)
    assert status.state is JobState.done and audited == [status.result]


def test_an_unexpected_error_is_a_message_not_a_dead_thread(engine, wine_20k):
    project = new_project(engine, "broken")

    def broken(act):
        raise RuntimeError("disk on fire")

    status = import_jobs.start_import(engine, project, wine_20k, guard=broken).wait(120)
    assert status.state is JobState.failed
    assert "RuntimeError: disk on fire" in status.error and "nothing was imported" in status.error


def test_finished_jobs_are_forgotten_after_a_while(engine, wine_20k, monkeypatch):
    project = new_project(engine, "forgotten")
    job = import_jobs.start_import(engine, project, wine_20k)
    job.cancel()
    job.wait(120)
    assert import_jobs.get_job(job.job_id) is job
    monkeypatch.setattr(import_jobs, "KEEP_FINISHED_SECONDS", 0.0)
    assert import_jobs.get_job(job.job_id) is None
    assert import_jobs.get_job(None) is None and import_jobs.get_job("import-unknown") is None


# --------------------------------------------------------------------------- the Upload tab (AppTest: no fragments)


def upload_tab(csv: bytes):
    from streamlit.testing.v1 import AppTest

    from tests.test_import_identities import APP, PASSWORD

    at = AppTest.from_file(APP, default_timeout=60).run()
    at.text_input[0].input("boss")
    at.text_input[1].input(PASSWORD)
    at.button[0].click().run()
    at.run()
    at.switch_page("pages/admin.py").run()
    at.file_uploader(key="admin-upload-file").set_value(("wine.csv", csv, "text/csv"))
    return at.run()


def test_a_small_import_shows_its_outcome_at_once_and_is_audited(app_env):
    from superintendent import audit, auth
    from tests.test_import_identities import PASSWORD

    with session_scope(app_env) as s:
        auth.create_user(s, "boss", PASSWORD, "admin")
    project = new_project(app_env, "wine")
    at = upload_tab(wine_csv(300))
    at.button(key="admin-upload-import").click().run()
    assert [e.value for e in at.error] == []
    # (the column "target" is not guessed as the label column: the rows come unlabelled)
    assert [m.value for m in at.success] == ["Imported 300 new items, 0 already there; no labels."]
    assert not any(b.key == "admin-upload-cancel" for b in at.button)  # done within the click's run: no progress, no cancel
    assert counts(app_env, project) == (300, 0)
    with session_scope(app_env, write=False) as s:
        (entry,) = [e for e in audit.recent(s) if e.action == "data.import"]
    assert entry.actor == "boss" and entry.details["added"] == 300 and entry.details["file"] == "wine.csv"
