"""The audit log: the store functions, the migration, and every admin action of the web app writing its entry."""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pytest
import sqlalchemy as sa
from alembic import command

from superintendent import audit, auth, queue
from superintendent.audit import AuditAction
from superintendent.store import ModelRun, make_engine, session_scope
from superintendent.store.db import _alembic_config
from superintendent.store.models import AuditEntry
from superintendent.validation import ValidationError
from test_app import PASSWORD, add_user, errors, logged_in, retrain_now

NEW_PASSWORD = "a brand new secret 42"


def entries(engine) -> list[tuple[str, str, str]]:
    """(actor, action, target) of every entry, oldest first."""
    with session_scope(engine, write=False) as s:
        return [(e.actor, e.action, e.target) for e in reversed(audit.recent(s))]


# The store functions -------------------------------------------------------------------------------------------------

def test_record_and_recent_newest_first(engine):
    with session_scope(engine) as s:
        audit.record(s, "boss", AuditAction.project_create, "pets", options=["cat", "dog"], shuffle_prop=0.1)
        audit.record(s, "boss", "user.role", "alice", before="labeller", after="admin")
        audit.record(s, "boss", AuditAction.labels_export, "pets", format="csv", bytes=12)
    with session_scope(engine, write=False) as s:
        got = audit.recent(s)
        assert [e.action for e in got] == ["labels.export", "user.role", "project.create"]
        assert got[-1].details == {"options": ["cat", "dog"], "shuffle_prop": 0.1}
        assert got[1].details == {"before": "labeller", "after": "admin"}
        assert all(e.created_at.tzinfo is not None and e.created_at.utcoffset() == dt.timedelta(0) for e in got)
        assert [e.action for e in audit.recent(s, limit=1)] == ["labels.export"]


def test_an_entry_commits_or_rolls_back_with_the_callers_transaction(engine):
    with pytest.raises(RuntimeError), session_scope(engine) as s:
        audit.record(s, "boss", AuditAction.user_create, "carol", role="labeller")
        raise RuntimeError("the action failed after the entry was added")
    assert entries(engine) == []


@pytest.mark.parametrize("details", [{"password": "hunter2hunter2"}, {"new_password": "hunter2hunter2"},
                                     {"password_hash": "$2b$..."}, {"cookie_key": "s3cr3t-cookie"}, {"api_token": "s3cr3t-token"}],
                         ids=["password", "new_password", "password_hash", "cookie_key", "api_token"])
def test_details_that_look_like_secrets_are_refused_without_echoing_them(details):
    with pytest.raises(ValidationError) as err:
        audit._checked_details(details)
    assert "may not hold passwords or secrets" in str(err.value)
    assert str(next(iter(details.values()))) not in str(err.value)


def test_unknown_actions_bad_details_and_bad_limits_are_refused(engine):
    with session_scope(engine) as s:
        with pytest.raises(ValidationError, match="unknown audit action 'project.explode'"):
            audit.record(s, "boss", "project.explode", "pets")
        with pytest.raises(ValidationError, match="must be JSON"):
            audit.record(s, "boss", AuditAction.model_retrain, "pets", score=float("nan"))
        with pytest.raises(ValidationError, match="limit must be a positive whole number"):
            audit.recent(s, limit=0)
    assert entries(engine) == []


def test_the_migration_adds_and_removes_the_table(db_url):
    engine = make_engine(db_url)
    with engine.connect() as conn:
        with conn.begin():
            command.upgrade(_alembic_config(conn), "0003")
        with conn.begin():
            inspector = sa.inspect(conn)
            assert "sp_audit" in inspector.get_table_names()
            assert [ix["name"] for ix in inspector.get_indexes("sp_audit")] == ["ix_audit_created_at"]
        with conn.begin():
            command.downgrade(_alembic_config(conn), "0002")
        with conn.begin():
            assert "sp_audit" not in sa.inspect(conn).get_table_names()
    engine.dispose()


# The web app: every admin action leaves one entry --------------------------------------------------------------------

def test_every_admin_action_is_in_the_audit_log(app_env):
    add_user(app_env, "boss", role="admin")
    add_user(app_env, "alice")
    with session_scope(app_env) as s:
        digits = queue.create_project(s, "digits", options=list(range(10)), model_preset="logistic_regression")
        rng = np.random.default_rng(0)
        queue.add_items(s, digits, list(rng.normal(size=(20, 4, 4))), labels=[i % 10 for i in range(20)])
    at = logged_in("boss")
    at.switch_page("pages/admin.py").run()
    assert any("No admin actions recorded yet" in i.value for i in at.info)

    # Projects: create, then update (the entry lists what changed).
    at.text_input(key="admin-project-name").input("birds")
    at.text_area(key="admin-project-options").input("robin, wren")
    next(b for b in at.button if b.label == "Create project").click().run()
    at.run()  # the list of projects was drawn before the new one was saved
    at.selectbox(key="admin-project-pick").set_value("birds").run()
    at.text_area(key="admin-project-options").input("robin, wren, owl")
    next(b for b in at.button if b.label == "Save project").click().run()
    assert errors(at) == []

    # Users: create, change role and active, reset a password.
    at.text_input(key="admin-new-username").input("Carol")
    at.text_input(key="admin-new-password").input(PASSWORD)
    next(b for b in at.button if b.label == "Create user").click().run()
    at.selectbox(key="admin-edit-user").set_value("alice").run()
    at.selectbox(key="admin-edit-field-role-alice").set_value("admin")  # the form's keys name the user it edits
    at.checkbox(key="admin-edit-field-active-alice").uncheck()
    at.text_input(key="admin-edit-field-password-alice").input(NEW_PASSWORD)
    next(b for b in at.button if b.label == "Apply").click().run()
    assert errors(at) == []

    # Import and export.
    pick = at.selectbox(key="admin-upload-project")
    pick.select_index(pick.options.index("birds")).run()
    uploader = at.get("file_uploader")[0]
    uploader.upload("birds.csv", b"text\nfirst bird\nsecond bird\n", "text/csv").run()
    import_button = next(b for b in at.button if b.key == "admin-upload-import")
    import_button.click().run()
    assert errors(at) == []
    at.button(key="admin-export-prepare").click().run()
    assert errors(at) == []

    # Retrain on the Model page.
    at.switch_page("pages/model.py").run()
    pick = at.selectbox(key="model-project")
    pick.select_index(next(i for i, o in enumerate(pick.options) if "digits" in o)).run()
    retrain_now(at)  # the audit entry is written when the background retrain ends
    assert errors(at) == []

    log = entries(app_env)
    assert [(actor, action) for actor, action, _ in log] == [("boss", a) for a in (
        "project.create", "project.update", "user.create", "user.role", "user.active", "user.password_reset",
        "data.import", "labels.export", "model.retrain")]
    targets = [target for _, _, target in log]
    assert targets[:6] == ["birds", "birds", "carol", "alice", "alice", "alice"]
    assert targets[-1] == "digits"
    with session_scope(app_env, write=False) as s:
        got = {e.action: e.details for e in audit.recent(s)}
        run_id = s.execute(sa.select(ModelRun.id)).scalar_one()
        assert auth.get_user(s, "alice").role == "admin" and not auth.get_user(s, "alice").active
    assert got["project.update"] == {"changed": {"options": [["robin", "wren"], ["robin", "wren", "owl"]]}}
    assert got["user.role"] == {"before": "labeller", "after": "admin"}
    assert got["user.active"] == {"before": True, "after": False}
    assert got["user.password_reset"] == {}
    assert got["data.import"]["added"] == 2
    assert got["model.retrain"] == {"run_id": run_id, "status": "succeeded", "n_labels": 20}
    everything = json.dumps([entries(app_env), list(got.values())])
    assert PASSWORD not in everything and NEW_PASSWORD not in everything

    # The fifth tab shows the log, newest first.
    at.switch_page("pages/admin.py").run()
    table = at.dataframe[-1].value
    assert list(table.columns) == ["when (UTC)", "who", "action", "target", "details"]
    assert table["action"].tolist()[:2] == ["model.retrain", "labels.export"]
    assert len(table) == 9


def test_a_refused_action_leaves_no_entry(app_env):
    add_user(app_env, "boss", role="admin")
    add_user(app_env, "root", role="admin")
    at = logged_in("boss")
    at.switch_page("pages/admin.py").run()
    at.text_input(key="admin-project-name").input("birds")
    at.text_area(key="admin-project-options").input("robin, wren")
    with session_scope(app_env) as s:
        auth.set_role(s, "boss", "labeller")
    next(b for b in at.button if b.label == "Create project").click().run()
    assert entries(app_env) == []
    with session_scope(app_env, write=False) as s:
        assert s.execute(sa.select(sa.func.count()).select_from(AuditEntry)).scalar_one() == 0


def test_a_password_reset_alone_leaves_role_and_active_as_they_were(app_env):
    add_user(app_env, "boss", role="admin")
    add_user(app_env, "zoe")
    at = logged_in("boss")
    at.switch_page("pages/admin.py").run()
    at.selectbox(key="admin-edit-user").set_value("zoe").run()
    assert at.selectbox(key="admin-edit-field-role-zoe").value == "labeller" and at.checkbox(key="admin-edit-field-active-zoe").value is True
    at.text_input(key="admin-edit-field-password-zoe").input(NEW_PASSWORD)
    next(b for b in at.button if b.label == "Apply").click().run()
    assert errors(at) == []
    assert entries(app_env) == [("boss", "user.password_reset", "zoe")]
    with session_scope(app_env, write=False) as s:
        zoe = auth.get_user(s, "zoe")
        assert (zoe.role, zoe.active) == ("labeller", True) and auth.verify_password(NEW_PASSWORD, zoe.password_hash)
