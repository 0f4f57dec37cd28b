"""The Review page and "Your recent labels" through Streamlit's AppTest, on SQLite and PostgreSQL.

Fragments rerun the whole script under AppTest; the Chromium scenario is in tests/test_review_browser.py.
"""

from __future__ import annotations

import sqlalchemy as sa

from superintendent import auth, queue
from superintendent.store import AnnotationRevision, Item, session_scope
from tests.test_app import PASSWORD, add_user, errors, logged_in, refusal

__all__ = ["app_env"]  # a fixture of tests/test_app.py, used here


def make_project(engine, n=3, **settings):
    settings.setdefault("options", ["cat", "dog"])
    with session_scope(engine) as s:
        project = queue.create_project(s, "pets", **settings)
        queue.add_items(s, project, [f"text {i}" for i in range(n)])
        ids = s.execute(sa.select(Item.id).where(Item.project_id == project.id).order_by(Item.id)).scalars().all()
    return project, ids


def external(engine, item_id):
    with session_scope(engine, write=False) as s:
        return s.get(Item, item_id).external_id


def test_the_review_page_searches_by_content_and_by_id(app_env):
    add_user(app_env, "boss", role="admin")
    project, ids = make_project(app_env, n=12)
    with session_scope(app_env) as s:
        boss = auth.get_user(s, "boss").id
        for item_id in ids:
            queue.submit(s, project, boss, item_id, "cat")
    at = logged_in("boss")
    at.switch_page("pages/review.py").run()
    at.text_input(key=f"review-filter-search-{project.id}").input("TEXT 11").run()
    assert errors(at) == []
    assert list(at.dataframe[0].value["item"]) == ["text 11"]
    wanted = external(app_env, ids[3])
    at.text_input(key=f"review-filter-search-{project.id}").input(wanted[:12]).run()
    assert list(at.dataframe[0].value["id"]) == [wanted]
    at.text_input(key=f"review-filter-search-{project.id}").input("no such words").run()
    assert any("No finished items match" in i.value for i in at.info)


def user_id(engine, name):
    with session_scope(engine, write=False) as s:
        return auth.get_user(s, name).id


def label(engine, project, name, item_id, value):
    with session_scope(engine) as s:
        queue.submit(s, project, user_id(engine, name), item_id, value)


def history(engine):
    with session_scope(engine, write=False) as s:
        return [(r.item_id, r.kind, r.old_value, r.new_value) for r in s.execute(sa.select(AnnotationRevision).order_by(AnnotationRevision.id)).scalars()]


def review_value(engine, item_id):
    with session_scope(engine, write=False) as s:
        return s.get(Item, item_id).review_value


def test_a_reviewer_corrects_a_finished_item(app_env):
    for name in ("alice", "bob"):
        add_user(app_env, name)
    add_user(app_env, "rita", role="reviewer")
    project, (tied, agreed, open_) = make_project(app_env, annotations_per_item=2)
    for name, value in (("alice", "cat"), ("bob", "dog")):
        label(app_env, project, name, tied, value)
    for name in ("alice", "bob"):
        label(app_env, project, name, agreed, "cat")
    label(app_env, project, "alice", open_, "dog")  # one label of two: not finished, not listed

    at = logged_in("rita")
    at.switch_page("pages/review.py").run()
    assert errors(at) == []
    assert at.title[0].value == "Review"
    table = at.dataframe[0].value
    assert list(table["item"]) == ["text 1", "text 0"]  # finished items only, newest first, shown by their content
    assert list(table["id"]) == [external(app_env, agreed), external(app_env, tied)]
    assert list(table["consensus"]) == ["cat", "cat (tie)"]
    at.checkbox(key="review-filter-ties").check().run()
    assert list(at.dataframe[0].value["item"]) == ["text 0"]

    opened = at.selectbox(key=f"review-item-{project.id}")
    assert opened.value == tied
    assert opened.options == [f"text 0 · id {external(app_env, tied)}"]  # by content and id, never "item 1869 · ..."
    assert any("a tie" in m.value for m in at.markdown)
    labellers = at.dataframe[1].value
    assert sorted(zip(labellers["labeller"], labellers["label"])) == [("alice", "cat"), ("bob", "dog")]
    at.selectbox(key=f"review-new-label-{tied}").select("dog").run()
    at.button(key="review-save").click().run()
    assert errors(at) == []
    assert [s.value for s in at.success] == ["Corrected to dog."]
    assert review_value(app_env, tied) == '"dog"'
    assert history(app_env) == [(tied, "review", None, '"dog"')]
    with session_scope(app_env, write=False) as s:
        assert queue.labelled_data(s, project).labels == ["dog", "cat"]
    assert "Only not yet reviewed" in [c.label for c in at.checkbox]
    history_table = at.dataframe[-1].value
    assert list(zip(history_table["change"], history_table["from"], history_table["to"], history_table["by"])) == [("review", "—", "dog", "rita")]

    at.button(key="review-clear").click().run()
    assert review_value(app_env, tied) is None
    assert history(app_env)[-1] == (tied, "review", '"dog"', None)

    # the role is taken away while the page is open: the next click changes nothing
    with session_scope(app_env) as s:
        auth.set_role(s, "rita", "labeller")
    at.button(key="review-save").click().run()
    assert review_value(app_env, tied) is None
    assert refusal("Review") in errors(at)


def test_labellers_have_no_review_page_and_admins_do(app_env):
    add_user(app_env, "alice")
    add_user(app_env, "boss", role="admin")
    project, (item_id, *_) = make_project(app_env)
    label(app_env, project, "alice", item_id, "cat")
    at = logged_in("alice")
    at.switch_page("pages/review.py").run()
    assert refusal("Review") in errors(at)
    assert not [b for b in at.button if (b.key or "").startswith("review-")]

    at = logged_in("boss")
    at.switch_page("pages/review.py").run()
    assert errors(at) == []
    at.button(key="review-save").click().run()  # the first option, "cat", preselected from the consensus
    assert review_value(app_env, item_id) == '"cat"'

    # the Admin page offers the reviewer role
    at.switch_page("pages/admin.py").run()
    role = at.selectbox(key="admin-new-role")
    assert role.options == ["admin", "reviewer", "labeller"] and role.value == "labeller"
    at.text_input(key="admin-new-username").input("rita")
    at.text_input(key="admin-new-password").input(PASSWORD)
    role.select("reviewer")
    next(b for b in at.button if b.label == "Create user").click().run()
    with session_scope(app_env, write=False) as s:
        assert auth.get_user(s, "rita").role == "reviewer"


def test_a_labeller_changes_one_of_their_recent_labels(app_env):
    add_user(app_env, "alice")
    project, ids = make_project(app_env, n=3)
    at = logged_in("alice")
    at.button(key="label-opt-0").click().run()  # cat
    at.button(key="label-opt-1").click().run()  # dog
    assert "label-recent-save" not in [b.key for b in at.button]  # closed: nothing read or drawn
    at.session_state["label-recent"] = True  # open "Your recent labels"
    at.run()
    assert errors(at) == []
    recent = at.dataframe[0].value
    assert list(recent["your label"]) == ["dog", "cat"]  # most recent first
    pick = at.selectbox(key="label-recent-item")
    assert pick.value == ids[1]
    pick.select(ids[0]).run()
    at.selectbox(key=f"label-recent-new-{ids[0]}").select("dog").run()
    at.button(key="label-recent-save").click().run()
    assert errors(at) == []
    assert [s.value for s in at.success] == ["Changed to dog."]
    assert history(app_env) == [(ids[0], "edit", '"cat"', '"dog"')]
    assert list(at.dataframe[0].value["your label"]) == ["dog", "dog"]
    # the labelling itself goes on as before
    at.button(key="label-opt-0").click().run()
    with session_scope(app_env, write=False) as s:
        assert [r.label for r in queue.recent_labels(s, project, user_id(app_env, "alice"))] == ["cat", "dog", "dog"]


def test_the_review_page_pages_through_many_items(app_env):
    add_user(app_env, "boss", role="admin")
    project, ids = make_project(app_env, n=30)
    with session_scope(app_env) as s:
        boss = auth.get_user(s, "boss").id
        for item_id in ids:
            queue.submit(s, project, boss, item_id, "cat")
    at = logged_in("boss")
    at.switch_page("pages/review.py").run()
    text = {item_id: f"text {k}" for k, item_id in enumerate(ids)}
    first = list(at.dataframe[0].value["item"])
    assert first == [text[i] for i in ids[::-1][:25]]
    assert at.button(key="review-prev").disabled
    at.button(key="review-next").click().run()
    assert errors(at) == []
    assert list(at.dataframe[0].value["item"]) == [text[i] for i in ids[::-1][25:]]
    assert at.button(key="review-next").disabled
    opened = at.selectbox(key=f"review-item-{project.id}")
    assert opened.value in ids[:5]  # an item of the page shown
    at.button(key="review-prev").click().run()
    assert list(at.dataframe[0].value["item"]) == first
