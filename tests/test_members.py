"""Projects for teams, on the server: members, who sees and works in which project, archive, delete, the last project, new settings."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from superintendent import auth, queue
from superintendent.project_settings import ProjectSettings
from superintendent.store import Annotation, Item, session_scope
from superintendent.validation import ValidationError


@pytest.fixture
def team(engine):
    """An admin, a labeller bob (member of 'pets'), a reviewer rita (member of 'misc'), projects 'pets', 'test' (closed to bob:
    carl is its member) and 'misc'."""
    with session_scope(engine) as s:
        ids = {name: auth.create_user(s, name, "a-long-password", role).id
               for name, role in (("boss", "admin"), ("bob", "labeller"), ("rita", "reviewer"), ("carl", "labeller"))}
        pets = queue.create_project(s, "pets", options=["cat", "dog"])
        test = queue.create_project(s, "test", options=["x", "y"])
        queue.add_items(s, pets, [{"t": i} for i in range(3)])
        queue.add_items(s, test, [{"t": i} for i in range(3)])
        misc = queue.create_project(s, "misc", options=["x", "y"])
        queue.add_members(s, pets.id, [ids["bob"]])
        queue.add_members(s, test.id, [ids["carl"]])
        queue.add_members(s, misc.id, [ids["rita"]])
        ids["pets"], ids["test"], ids["misc"] = pets.id, test.id, misc.id
    return ids


def names(projects):
    return [p.name for p in projects]


def test_admins_see_every_project_others_only_their_own(engine, team):
    with session_scope(engine, write=False) as s:
        assert names(queue.visible_projects(s, team["boss"], "admin")) == ["misc", "pets", "test"]
        assert names(queue.visible_projects(s, team["bob"], "labeller")) == ["pets"]
        assert names(queue.visible_projects(s, team["rita"], "reviewer")) == ["misc"]


def test_a_project_without_members_is_open_to_everyone(engine, team):
    with session_scope(engine) as s:
        queue.remove_members(s, team["test"], [team["carl"]])
        assert names(queue.visible_projects(s, team["bob"], "labeller")) == ["pets", "test"]
        assert queue.may_work_in(s, team["bob"], team["test"])


@pytest.mark.parametrize(("who", "project", "allowed"), [
    ("boss", "pets", True), ("boss", "test", True), ("bob", "pets", True), ("bob", "test", False), ("rita", "pets", False),
], ids=["admin-any", "admin-other", "member", "not-member", "reviewer-not-member"])
def test_may_work_in_is_the_one_rule(engine, team, who, project, allowed):
    with session_scope(engine, write=False) as s:
        assert queue.may_work_in(s, team[who], team[project]) is allowed


def test_a_non_member_is_refused_on_the_server(engine, team):
    with session_scope(engine) as s, pytest.raises(queue.NotAllowedError, match="not a member"):
        queue.check_may_work_in(s, team["bob"], team["test"])


@pytest.mark.parametrize("action", ["claim", "submit", "skip", "undo"])
def test_every_queue_action_reads_the_right_afresh(engine, team, action):
    """bob holds an item of 'pets'; then he is taken off it (or deactivated): his next action stores nothing."""
    with session_scope(engine) as s:
        pets = queue.get_project(s, "pets")
        held = queue.act(s, pets, team["bob"], "claim").task
        queue.act(s, pets, team["bob"], "submit", item_id=held.item_id, value="cat")
        held = queue.act(s, pets, team["bob"], "claim").task
    for take_away in ("membership", "account"):
        with session_scope(engine) as s:
            if take_away == "membership":
                queue.add_members(s, team["pets"], [team["carl"]])
                queue.remove_members(s, team["pets"], [team["bob"]])
            else:
                queue.add_members(s, team["pets"], [team["bob"]])
                s.execute(sa.update(queue.User).where(queue.User.id == team["bob"]).values(active=False))
        with session_scope(engine) as s, pytest.raises(queue.NotAllowedError):
            queue.act(s, queue.get_project(s, "pets"), team["bob"], action, item_id=held.item_id, value="dog")
        with session_scope(engine, write=False) as s:
            stored = s.execute(sa.select(Annotation.value).where(Annotation.user_id == team["bob"])).scalars().all()
        assert len(stored) == 1  # the first label only: no submit stored, no undo took it back


def test_adding_and_removing_members(engine, team):
    with session_scope(engine) as s:
        assert queue.add_members(s, team["test"], [team["bob"], team["rita"]]) == sorted([team["bob"], team["rita"]])
        assert queue.add_members(s, team["test"], [team["bob"]]) == []
        assert queue.add_members(s, team["test"], [team["bob"]]) == []  # already a member
    with session_scope(engine) as s:
        assert queue.remove_members(s, team["test"], [team["rita"]]) == [team["rita"]]
    with session_scope(engine, write=False) as s:
        assert queue.member_ids(s, team["test"]) == sorted([team["bob"], team["carl"]])
        assert names(queue.visible_projects(s, team["bob"], "labeller")) == ["pets", "test"]


def test_archive_hides_from_labellers_keeps_data_and_is_reversible(engine, team):
    with session_scope(engine) as s:
        queue.set_archived(s, queue.get_project(s, "pets"), True)
    with session_scope(engine, write=False) as s:
        assert names(queue.visible_projects(s, team["bob"], "labeller")) == []
        assert names(queue.visible_projects(s, team["boss"], "admin")) == ["misc", "pets", "test"]
        assert not queue.may_work_in(s, team["bob"], team["pets"])
        assert s.execute(sa.select(sa.func.count()).select_from(Item).where(Item.project_id == team["pets"])).scalar_one() == 3
    with session_scope(engine) as s:
        queue.set_archived(s, queue.get_project(s, "pets"), False)
    with session_scope(engine, write=False) as s:
        assert queue.may_work_in(s, team["bob"], team["pets"])


def test_delete_needs_the_typed_name_and_takes_the_project_data(engine, team):
    with session_scope(engine) as s:
        queue.submit(s, queue.get_project(s, "pets"), team["bob"], queue.claim_next(s, queue.get_project(s, "pets"), team["bob"]).item_id, "cat")
    with session_scope(engine) as s, pytest.raises(ValidationError, match="type the project's name"):
        queue.delete_project(s, queue.get_project(s, "pets"), "pet")
    with session_scope(engine) as s:
        queue.delete_project(s, queue.get_project(s, "pets"), " pets ")
    with session_scope(engine, write=False) as s:
        assert names(queue.list_projects(s)) == ["misc", "test"]
        assert s.execute(sa.select(sa.func.count()).select_from(Annotation)).scalar_one() == 0
        assert queue.member_ids(s, team["pets"]) == []


def test_rename_keeps_members(engine, team):
    with session_scope(engine) as s:
        queue.update_project(s, queue.get_project(s, "pets"), name="animals")
    with session_scope(engine, write=False) as s:
        assert names(queue.visible_projects(s, team["bob"], "labeller")) == ["animals"]


def test_the_last_project_is_remembered_per_user(engine, team):
    with session_scope(engine) as s:
        assert queue.last_project_id(s, team["bob"]) is None
        queue.remember_last_project(s, team["bob"], team["pets"])
    with session_scope(engine, write=False) as s:
        assert queue.last_project_id(s, team["bob"]) == team["pets"]


def test_guidelines_and_option_descriptions_are_checked_settings():
    checked = ProjectSettings.check(name="p", options=["cat", 1], guidelines="  **Cats** only ", option_descriptions={"cat": " a cat ", 1: ""})
    assert checked.guidelines == "**Cats** only"
    assert checked.option_descriptions == {"cat": "a cat"}
    with pytest.raises(ValidationError, match="options the project does not have: 'dog'"):
        ProjectSettings.check(name="p", options=["cat"], option_descriptions={"dog": "a dog"})
    with pytest.raises(ValidationError, match="guidelines must be text"):
        ProjectSettings.check(name="p", guidelines=3)


# ---------------------------------------------------------------------- the Admin > Projects tab (AppTest: form state)

def _admin_at(app_env):
    from tests.test_app import add_user, logged_in
    add_user(app_env, "boss", role="admin")
    at = logged_in("boss")
    at.switch_page("pages/admin.py").run()
    return at


def _create(at, name, options="robin, wren", **extra):
    at.text_input(key="admin-project-name").input(name)
    at.text_area(key="admin-project-options").input(options)
    for key, value in extra.items():
        at.text_area(key=f"admin-project-{key}").input(value)
    next(b for b in at.button if b.label == "Create project").click().run()


def test_the_create_form_resets_after_a_create(app_env):
    at = _admin_at(app_env)
    at.checkbox(key="admin-project-hints").check()
    _create(at, "birds", guidelines="Only **birds**.", descriptions="robin: red breast")
    assert [s.value for s in at.success] == ["Project 'birds' saved."]
    assert at.text_input(key="admin-project-name").value == ""
    assert at.text_area(key="admin-project-options").value == ""
    assert at.checkbox(key="admin-project-hints").value is False
    next(b for b in at.button if b.label == "Create project").click().run()  # pressing Create again: no "exists already"
    assert not any("exists already" in e.value for e in at.error)
    with session_scope(app_env, write=False) as s:
        birds = queue.get_project(s, "birds")
    assert birds.show_hints and birds.guidelines == "Only **birds**." and birds.option_descriptions == {"robin": "red breast"}
    assert birds.model_preset == "logistic_regression"  # images, the first data type: a model by default, not "no model"


def test_picking_a_project_loads_its_values_and_no_model_only_when_chosen(app_env):
    at = _admin_at(app_env)
    at.selectbox(key="admin-project-data_type").set_value("text")
    at.selectbox(key="admin-project-model").set_value("")
    _create(at, "quiet")
    at.selectbox(key="admin-project-data_type").set_value("text")
    _create(at, "words")
    at.selectbox(key="admin-project-pick").set_value("quiet").run()
    assert at.text_input(key="admin-project-name").value == "quiet"
    assert at.selectbox(key="admin-project-model").value == ""
    at.selectbox(key="admin-project-pick").set_value("words").run()
    assert at.selectbox(key="admin-project-model").value == "tfidf_logistic_regression"


def test_the_admin_adds_members_archives_and_deletes(app_env):
    from superintendent.store.models import AuditEntry
    from tests.test_app import add_user
    at = _admin_at(app_env)
    add_user(app_env, "bob")
    _create(at, "birds")
    at.selectbox(key="admin-project-pick").set_value("birds").run()
    with session_scope(app_env, write=False) as s:
        bob, birds = auth.get_user(s, "bob").id, queue.get_project(s, "birds").id
    at.multiselect(key=f"admin-project-members-{birds}").select(bob).run()
    at.button(key=f"admin-project-members-save-{birds}").click().run()
    at.button(key=f"admin-project-archive-{birds}").click().run()
    with session_scope(app_env, write=False) as s:
        assert queue.member_ids(s, birds) == [bob] and queue.get_project(s, "birds").archived
    at.text_input(key=f"admin-project-delete-name-{birds}").input("bird").run()
    assert at.button(key=f"admin-project-delete-{birds}").disabled
    at.text_input(key=f"admin-project-delete-name-{birds}").input("birds").run()
    at.button(key=f"admin-project-delete-{birds}").click().run()
    assert not at.exception and [s.value for s in at.success] == ["Project 'birds' deleted."]
    with session_scope(app_env, write=False) as s:
        assert queue.list_projects(s) == []
        actions = s.execute(sa.select(AuditEntry.action).order_by(AuditEntry.id)).scalars().all()
    assert actions[-4:] == ["project.create", "project.members", "project.archive", "project.delete"]
