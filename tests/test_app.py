"""The web app through Streamlit's AppTest: every page, both roles, on SQLite and PostgreSQL.

AppTest has no browser: the authenticator's cookie component does nothing
and fragments rerun the whole script. Fragments, dialogs and keyboard
shortcuts are tested in Chromium (tests/test_browser.py).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa
from streamlit.testing.v1 import AppTest

from superintendent import auth, queue
from superintendent.app.errors import MESSAGE
from superintendent.app.keys import option_shortcuts
from superintendent.app.resources import PROGRESS_SECONDS
from superintendent.retrain_requests import wait_for_retrains
from superintendent.store import Annotation, ModelRun, session_scope

APP = str(Path(__file__).resolve().parents[1] / "streamlit_app.py")
PASSWORD = "correct horse battery"


def add_user(engine, name, role="labeller", password=PASSWORD):
    with session_scope(engine) as s:
        auth.create_user(s, name, password, role)


def add_project(engine, name="pets", n=5, **settings):
    settings.setdefault("options", ["cat", "dog"])
    with session_scope(engine) as s:
        project = queue.create_project(s, name, **settings)
        queue.add_items(s, project, [f"text {i}" for i in range(n)])
    return project


def logged_in(name, password=PASSWORD) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60).run()
    at.text_input[0].input(name)
    at.text_input[1].input(password)
    at.button[0].click().run()
    return at.run()  # AppTest's cookie component does nothing: one more run, as after a real login


def errors(at):
    return [e.value for e in at.error] + [str(e.message) for e in at.exception]


def refusal(title: str, role: str = "labeller") -> str:
    """What a page a role may not open says instead of itself (and nothing else)."""
    return f"The {title} page is not open to {role}s; ask an admin if you need it."


def retrain_now(at) -> AppTest:
    """Press "Retrain now", wait for the background retrain (AppTest runs the app in this process), draw the page again."""
    at.button(key="model-retrain").click().run()
    assert errors(at) == []
    assert wait_for_retrains(60), "the retrain did not end within a minute"
    return at.run()


def annotations(engine):
    with session_scope(engine, write=False) as s:
        return s.execute(sa.select(Annotation.value).order_by(Annotation.id)).scalars().all()


def test_first_run_creates_the_admin_and_loads_the_demo(app_env):
    at = AppTest.from_file(APP, default_timeout=120).run()
    assert at.title[0].value == "Welcome to superintendent"
    at.text_input(key="first-admin-username").input("Boss")
    at.text_input(key="first-admin-password").input(PASSWORD)
    at.text_input(key="first-admin-repeat").input(PASSWORD + "x")
    at.button[0].click().run()
    assert "The two passwords differ." in errors(at)
    at.text_input(key="first-admin-repeat").input(PASSWORD)
    at.button[0].click().run()
    with session_scope(app_env, write=False) as s:
        assert [(u.username, u.role) for u in auth.list_users(s)] == [("boss", "admin")]
        assert {p.name for p in queue.list_projects(s)} == {"Demo: handwritten digits", "Demo: word sentiment"}
    at = logged_in("boss")
    assert errors(at) == []
    assert at.title[0].value == "Label"
    assert at.button(key="label-opt-0").label == "0"


def test_a_labeller_labels_undoes_and_skips(app_env):
    add_user(app_env, "alice")
    add_project(app_env, n=3)
    at = logged_in("alice")
    assert errors(at) == []
    assert [b.label for b in at.button if b.key and b.key.startswith("label-opt")] == ["cat", "dog"]
    assert any("Keyboard:" in c.value for c in at.caption)
    at.button(key="label-opt-1").click().run()
    assert annotations(app_env) == ['"dog"']
    at.button(key="label-undo").click().run()
    assert annotations(app_env) == []
    at.button(key="label-opt-0").click().run()
    at.button(key="label-skip").click().run()
    at.button(key="label-opt-0").click().run()
    assert annotations(app_env) == ['"cat"', '"cat"']
    assert any("Nothing left for you to label" in s.value for s in at.success)


@pytest.mark.parametrize("settings, says", [
    (dict(model_preset="logistic_regression"), "The model reorders the queue when an admin retrains it (Retrain now on the Model page)."),
    (dict(model_preset="logistic_regression", retrain_interval_n_labels=5),
     "The model reorders the queue by itself: next retrain after 5 more labels."),
    (dict(), "This project has no model: the queue keeps its order. New items appear when an admin uploads them."),
])
def test_an_empty_queue_says_how_it_is_reordered(app_env, settings, says):
    add_user(app_env, "alice")
    add_project(app_env, n=0, **settings)
    at = logged_in("alice")
    assert any("Nothing left for you to label" in s.value for s in at.success)
    assert says in [c.value for c in at.caption]


def test_a_labeller_never_reaches_the_admin_page(app_env):
    add_user(app_env, "alice")
    add_project(app_env)
    at = logged_in("alice")
    # The Admin page is not in a labeller's navigation; opened directly, its own server-side check stops it.
    at.switch_page("pages/admin.py").run()
    assert errors(at) == [refusal("Admin")]
    assert [t.value for t in at.title] == []
    assert not [w for w in at.text_input if (w.key or "").startswith("admin-")]
    for page in ("pages/progress.py", "pages/model.py"):
        at.switch_page(page).run()
        assert errors(at) == []
    assert "model-retrain" not in [b.key for b in at.button]


def test_wrong_password_lockout_and_deactivation(app_env):
    add_user(app_env, "alice")
    add_user(app_env, "boss", role="admin")
    at = logged_in("alice", "wrong password")
    assert errors(at) == [auth.FAILED_LOGIN_MESSAGE]
    assert at.session_state["authentication_status"] is False
    for _ in range(auth.MAX_FAILED_LOGINS - 1):
        logged_in("alice", "wrong password")
    at = logged_in("alice")  # right password, but locked now: told so, with the minutes left
    assert len(errors(at)) == 1 and "locked, try again in 15 minutes" in errors(at)[0]
    with session_scope(app_env) as s:
        assert auth.get_user(s, "alice").locked_until is not None
        auth.reset_password(s, "alice", PASSWORD)  # an admin's reset unlocks
    assert logged_in("alice").title[0].value == "Label"
    with session_scope(app_env) as s:
        auth.set_active(s, "alice", False)
    assert errors(logged_in("alice")) == [auth.FAILED_LOGIN_MESSAGE]


def test_progress_and_model_pages_show_the_figures(app_env):
    add_user(app_env, "boss", role="admin")
    with session_scope(app_env) as s:
        project = queue.create_project(s, "digits", options=list(range(10)), model_preset="logistic_regression")
        rng = np.random.default_rng(0)
        queue.add_items(s, project, list(rng.normal(size=(40, 4, 4))), labels=[i % 10 for i in range(30)] + [None] * 10)
    at = logged_in("boss")
    at.switch_page("pages/progress.py").run()
    assert errors(at) == []
    assert [m.value for m in at.metric][:3] == ["40", "30 (75%)", "30"]  # a share, not a growth arrow
    at.switch_page("pages/model.py").run()
    assert any("No model runs yet" in i.value for i in at.info)
    retrain_now(at)
    assert errors(at) == []
    assert any(m.value.startswith("Retrain succeeded: score ") for m in at.success)
    with session_scope(app_env, write=False) as s:
        run = s.execute(sa.select(ModelRun)).scalar_one()
    assert run.status == "succeeded" and run.n_labels == 30
    assert len(at.get("plotly_chart")) >= 1


def test_the_model_page_says_in_full_why_a_retrain_was_skipped(app_env):
    add_user(app_env, "boss", role="admin")
    with session_scope(app_env) as s:
        project = queue.create_project(s, "wine", options=["class_0", "class_1"], model_preset="logistic_regression")
        queue.add_items(s, project, [[13.2, 1.8], [12.4, 2.1], [14.1, 1.6], [12.9, 2.4]], labels=["class_0"] * 3 + [None])
    at = logged_in("boss")
    at.switch_page("pages/model.py").run()
    retrain_now(at)
    why = ("The latest run was skipped: need labels of at least two classes to train; all 3 labels are 'class_0'; "
           "until then the queue is ordered for coverage: ")

    def warnings() -> list[str]:
        return [w.value.replace("\\", "") for w in at.warning]  # as shown: without Markdown's escapes

    assert len(warnings()) == 1 and warnings()[0].startswith(why)  # once, not also as "Retrain skipped" without the reason
    assert warnings()[0].endswith("1 k-means group of the 1 unlabelled item, the item nearest each centre first "
                                  "(1 item given a new place).")
    assert at.success == [] and errors(at) == []
    at = logged_in("boss")  # and still there in a later session: it is the latest run
    at.switch_page("pages/model.py").run()
    assert len(warnings()) == 1 and warnings()[0].startswith(why)


def _queue_order(at) -> str:
    return next(m.value for m in at.markdown if "**Queue order:**" in m.value).split("**Queue order:** ")[1].split("  \n")[0]


def test_the_model_page_says_how_many_items_a_diverse_round_holds_and_why(app_env):
    add_user(app_env, "boss", role="admin")
    with session_scope(app_env) as s:
        project = queue.create_project(s, "digits", options=list(range(10)), model_preset="logistic_regression",
                                       acquisition_function="margin_diverse")
        rng = np.random.default_rng(0)
        queue.add_items(s, project, list(rng.normal(size=(60, 4, 4))), labels=[i % 10 for i in range(30)] + [None] * 30)
        labeller = auth.create_user(s, "lee", PASSWORD, "labeller").id
    at = logged_in("boss")
    at.switch_page("pages/model.py").run()
    assert _queue_order(at) == "margin\\_diverse (shuffle 10%)"  # no run yet: nothing to say about rounds
    retrain_now(at)  # the 30 labels came with the items: nobody has labelled here yet
    assert _queue_order(at) == "margin\\_diverse (shuffle 10%), in rounds of 8 items (the default: no recent labels to size them by)"
    for k in range(5):  # lee labels five: a project retrained by hand expects that gap again
        with session_scope(app_env) as s:
            task = queue.claim_next(s, project, labeller, resume=False)
            queue.submit(s, project, labeller, task.item_id, k)
    retrain_now(at)
    assert _queue_order(at) == "margin\\_diverse (shuffle 10%), in rounds of 5 items (the labels expected before the next retrain)"
    with session_scope(app_env) as s:
        queue.update_project(s, queue.get_project(s, project.id), diversity_window=1)
    retrain_now(at)
    assert _queue_order(at) == "margin\\_diverse (shuffle 10%), in rounds of 1 item (set for the project)"
    with session_scope(app_env) as s:
        queue.update_project(s, queue.get_project(s, project.id), acquisition_function="margin")
    at = logged_in("boss")
    at.switch_page("pages/model.py").run()
    assert _queue_order(at) == "margin (shuffle 10%)"  # no rounds: the last run's window does not describe plain margin
    assert errors(at) == []


def test_admin_creates_a_project_and_a_user_and_exports(app_env):
    add_user(app_env, "boss", role="admin")
    at = logged_in("boss")
    at.switch_page("pages/admin.py").run()
    assert errors(at) == []
    at.text_input(key="admin-project-name").input("birds")
    at.text_area(key="admin-project-options").input("robin, wren\nowl")
    submit = next(b for b in at.button if b.label == "Create project")
    submit.click().run()
    assert errors(at) == []
    with session_scope(app_env, write=False) as s:
        assert queue.get_project(s, "birds").options == ["robin", "wren", "owl"]

    at.text_input(key="admin-new-username").input("carol")
    at.text_input(key="admin-new-password").input("short")
    next(b for b in at.button if b.label == "Create user").click().run()
    assert any("at least 8 characters" in e for e in errors(at))
    at.text_input(key="admin-new-username").input("carol")
    at.text_input(key="admin-new-password").input(PASSWORD)
    next(b for b in at.button if b.label == "Create user").click().run()
    with session_scope(app_env, write=False) as s:
        assert auth.get_user(s, "carol").role == "labeller"

    with session_scope(app_env) as s:
        birds = queue.get_project(s, "birds")
        queue.add_items(s, birds, ["a", "b"], labels=["owl", None])
    at.selectbox(key="admin-export-project").select_index(0).run()
    at.button(key="admin-export-prepare").click().run()
    assert errors(at) == []
    assert at.get("download_button")


def test_removing_options_that_labels_use_saves_and_says_which_and_how_many(app_env):
    add_user(app_env, "boss", role="admin")
    with session_scope(app_env) as s:
        birds = queue.create_project(s, "birds", options=["robin", "wren", "owl", "crow"])
        queue.add_items(s, birds, ["a", "b", "c", "d"], labels=["owl", "owl", "wren", None])
    at = logged_in("boss")
    at.switch_page("pages/admin.py").run()
    at.selectbox(key="admin-project-pick").set_value("birds").run()
    at.text_area(key="admin-project-options").input("robin\ncrow")  # owl (2 labels) and wren (1) out
    next(b for b in at.button if b.label == "Save project").click().run()
    assert errors(at) == []
    assert [w.value for w in at.warning] == ["3 labels given earlier still use options you removed: 'wren' (1), 'owl' (2). They stay "
                                             "as they were given (exports keep them). Add the option back, or change those labels "
                                             "on the Review page."]
    with session_scope(app_env, write=False) as s:
        assert queue.get_project(s, "birds").options == ["robin", "crow"]
        assert sorted(queue.all_labels(s, queue.get_project(s, "birds")), key=str) == [None, "owl", "owl", "wren"]

    # said once: the next run of the page does not repeat it; removing an unused option, or all of them, says nothing
    at.run()
    assert list(at.warning) == []
    at.text_area(key="admin-project-options").input("robin")
    next(b for b in at.button if b.label == "Save project").click().run()
    assert list(at.warning) == [] and errors(at) == []
    at.text_area(key="admin-project-options").input("")
    next(b for b in at.button if b.label == "Save project").click().run()
    assert list(at.warning) == [] and errors(at) == []
    with session_scope(app_env, write=False) as s:
        assert queue.get_project(s, "birds").options == []


def test_progress_of_imported_labels_says_they_were_imported_not_that_there_are_none(app_env):
    add_user(app_env, "boss", role="admin")
    with session_scope(app_env) as s:
        birds = queue.create_project(s, "birds", options=["robin", "wren", "owl"])
        queue.add_items(s, birds, ["a", "b", "c"], labels=["owl", "owl", None])
    at = logged_in("boss")
    at.switch_page("pages/progress.py").run()
    assert errors(at) == []
    assert [i.value for i in at.info] == ["No labels from labellers yet: the 2 annotations above were imported with the data."]


def test_shortcut_keys_follow_the_options():
    assert option_shortcuts([str(d) for d in range(10)]) == [str(d) for d in range(10)]  # digits are typed as themselves
    assert option_shortcuts(["cat", "dog"]) == ["1", "2"]
    assert option_shortcuts(["a", "s"]) == ["1", "2"]  # S is Skip
    assert option_shortcuts([f"o{i}" for i in range(11)])[-2:] == ["0", None]


def test_an_unreachable_database_shows_a_short_message_not_a_traceback(tmp_path, monkeypatch):
    monkeypatch.setenv("SUPERINTENDENT_DATABASE_URL", "postgresql+psycopg2://nobody@127.0.0.1:1/nowhere")
    monkeypatch.setenv("SUPERINTENDENT_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("SUPERINTENDENT_RUN_SCHEDULER", "false")
    at = AppTest.from_file(APP, default_timeout=60).run()
    assert not at.exception
    assert [w.value for w in at.warning] == [MESSAGE]


def _progress_text(at) -> str:
    return next(p.proto.text for p in at.get("progress"))


def test_the_progress_bar_counts_own_labels_at_once_and_others_within_seconds(app_env):
    add_user(app_env, "alice")
    add_user(app_env, "bob")
    add_project(app_env, n=6)
    alice, bob = logged_in("alice"), logged_in("bob")
    assert _progress_text(alice) == "0 of 6 items labelled"
    alice.button(key="label-opt-0").click().run()
    alice.button(key="label-opt-1").click().run()
    assert _progress_text(alice) == "2 of 6 items labelled"  # her own labels show at once, though the count is shared
    bob.button(key="label-opt-0").click().run()
    assert _progress_text(bob) in ("1 of 6 items labelled", "3 of 6 items labelled")  # alice's may be a few seconds late
    alice.button(key="label-undo").click().run()
    assert _progress_text(alice) in ("1 of 6 items labelled", "2 of 6 items labelled")
    time.sleep(PROGRESS_SECONDS + 0.2)
    assert _progress_text(bob.run()) == "2 of 6 items labelled"  # a fresh count: alice 1 (after her undo) + bob 1
    assert _progress_text(alice.run()) == "2 of 6 items labelled"


def test_the_label_page_shows_the_models_top_guesses_only_where_the_project_wants_hints(app_env):
    add_user(app_env, "alice")
    project = add_project(app_env, n=2, show_hints=False)
    with session_scope(app_env, write=False) as s:
        ids = sorted(s.execute(sa.select(queue.Item.id).where(queue.Item.project_id == project.id)).scalars())
    queue.reprioritise(app_env, project, ids, [0.0, 1.0], hints=["dog", "cat"], confidences=[0.7, 0.9],
                       top_guesses=[[("dog", 0.7), ("cat", 0.3)], [("cat", 0.9), ("dog", 0.1)]])
    at = logged_in("alice")
    assert not any("Model's guess" in c.value for c in at.caption)  # hints off: nothing of the model shows
    with session_scope(app_env) as s:
        queue.update_project(s, queue.get_project(s, "pets"), show_hints=True)
    at = logged_in("alice")
    shown = [c.value for c in at.caption if "Model's guess" in c.value]
    assert shown == ["Model's guess: **dog** (70% sure) · top guesses: dog 70%, cat 30%"]
