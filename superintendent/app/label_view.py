"""The Label page's body: one item, one button per label, shortcuts; the next item comes in a fragment rerun.

Every click is one transaction made in the button's callback: one
:func:`superintendent.queue.act` (submit, skip, undo or claim, then the item
to show next), run again by :func:`~superintendent.store.db.run_transaction`
after a lost connection. The fragment then draws the new item without
rerunning the whole page. Below it, "Your recent labels" (read only while
open, in a fragment of its own) lets a labeller change one of their latest
labels; the old label stays in the item's history.
"""

from __future__ import annotations

import functools
import time
from typing import Any

import sqlalchemy as sa
import streamlit as st

from superintendent import marks, queue
from superintendent.app import render, resources, state
from superintendent.app.box_input import box_input
from superintendent.app.errors import MESSAGE as DATABASE_MESSAGE
from superintendent.app.errors import database_trouble_shown
from superintendent.app.guard import Refused, guarded_action
from superintendent.app.keys import SKIP_KEY, UNDO_KEY, option_shortcuts
from superintendent.app.login import CurrentUser
from superintendent.app.span_input import span_input
from superintendent.app.widgets import project_picker
from superintendent.hints import HELP as HINT_HELP
from superintendent.hints import hint_caption, hint_help
from superintendent.learning.presets import has_in_app_model
from superintendent.orchestration import project_schedule
from superintendent.queue import Action
from superintendent.store import Project, session_scope
from superintendent.validation import NotFoundError, SuperintendentError, ValidationError

RECENT = 20  # how many of the user's latest labels "Your recent labels" lists
RECENT_FLASH = "label-recent-flash"  # (kind, message) after a change of one's own label


def _tasks() -> dict[int, Any]:
    return st.session_state.setdefault(state.TASK, {})


def _act(action: Action, project: Project, user_id: int, item_id: int | None = None, value: Any = None) -> None:
    """A button's callback: one transaction, then remember the item to show next.

    The account is read again inside that transaction (:func:`guarded_action`):
    if it was deactivated, locked or may no longer label, nothing is stored and
    the whole app reruns, which signs the session out with a one-line message.
    A claim, submit or skip is safe to run again even when the connection was
    lost while committing (see :func:`superintendent.queue.act`); an undo is
    not, so that case is reported (the flash message) instead of run again.
    """
    user = st.session_state.get(state.USER)
    if user is None or user.id != user_id:
        st.rerun()  # the session's sign-in is gone: the full rerun shows the sign-in form

    def transaction(s):  # noqa: ANN001, ANN202 - one whole transaction
        # the project as it is now: a label is checked against its options, and finishes its item, by today's settings
        return queue.act(s, queue.get_project(s, project.id), user_id, action, item_id=item_id, value=value)

    try:
        outcome = guarded_action(user, "label", transaction, retries=3, idempotent=action is not Action.undo)
    except Refused:
        st.rerun()  # from a callback: a full-app rerun, where login.current_user signs this session out
    except SuperintendentError as exc:
        st.session_state[state.FLASH] = render.text(exc)  # the message may quote the label typed
        return
    except (sa.exc.OperationalError, sa.exc.InterfaceError):
        # Rolled back (or, if the connection dropped while committing, possibly stored: a label stored
        # twice is one annotation per item and user; an undo may need checking on the Progress page).
        st.session_state[state.FLASH] = DATABASE_MESSAGE
        return
    _tasks()[project.id] = outcome.task
    if action is Action.submit:
        _own_changes(project.id).append((time.time(), 1))
    elif outcome.undone:
        _own_changes(project.id).append((time.time(), -1))
    if action is Action.skip:
        st.toast("Skipped: this item will not be shown to you again.", duration="short")
    elif action is Action.undo:
        st.toast("Undone: your last label was taken back; its item is shown again." if outcome.undone
                 else "Nothing to undo.", duration="short")


def _own_changes(project_id: int) -> list[tuple[float, int]]:
    """This session's recent submits (+1) and undos (-1) in a project, with their times."""
    changes = st.session_state.setdefault(state.OWN_CHANGES, {}).setdefault(project_id, [])
    del changes[:-1000]
    return changes


def _progress(project: Project) -> tuple[int, int]:
    """(items, finished items) for the progress bar: a count shared by all sessions, a few seconds old at most,
    plus this session's own labels since it was taken (exact with one label per item, as each finishes an item)."""
    total, labelled, counted_at = resources.progress_counts(project.id)
    if project.annotations_per_item == 1:
        labelled += sum(delta for at, delta in _own_changes(project.id) if at > counted_at)
    return total, max(0, min(total, labelled))


def _multi_value(project: Project) -> list[Any]:
    return [opt for i, opt in enumerate(project.options) if st.session_state.get(f"label-multi-{i}")]


def _clear_multi(project: Project) -> None:
    for i in range(len(project.options)):
        st.session_state[f"label-multi-{i}"] = False


def _submit_multi(project: Project, user_id: int, item_id: int) -> None:
    _act(Action.submit, project, user_id, item_id, _multi_value(project))
    _clear_multi(project)


def _submit_text(project: Project, user_id: int, item_id: int) -> None:
    text = st.session_state.get("label-free-text", "")
    _act(Action.submit, project, user_id, item_id, [text] if project.label_mode == "multi" else text)
    st.session_state["label-free-text"] = ""


# Just after signing in, the login cookie's component answers with a full rerun of the app. A click on a
# fragment's button that arrives during that rerun is dropped by Streamlit ("fragment ... does not exist
# anymore"), so a labeller's first click could be lost. For the first full runs after signing in the item and
# its buttons are drawn without the fragment: a click then reruns the whole page, which Streamlit never drops.
SETTLING_RUNS = 2


def _as_now(project: Project) -> Project | None:
    """``project`` read again: a fragment reruns with the arguments of the page's last full run, so without this
    it would draw each next item with the options (and guidelines, ...) of when the page was drawn. None (said on
    the page) if it was deleted since."""
    try:
        with session_scope(resources.engine(), write=False) as s:
            return queue.get_project(s, project.id)
    except NotFoundError:
        st.warning(f"The project '{render.text(project.name)}' was deleted. Pick another project above.")
        return None


@st.fragment
def labelling(project: Project, user: CurrentUser) -> None:
    with database_trouble_shown():
        _labelling(project, user)


def _labelling(project: Project, user: CurrentUser) -> None:
    if (project := _as_now(project)) is None:
        return
    show_guidelines(project)
    engine = resources.engine()
    tasks = _tasks()
    if tasks.get(project.id) is None:
        try:
            with session_scope(engine) as s:
                tasks[project.id] = queue.act(s, project, user.id, Action.claim).task
        except queue.NotAllowedError as exc:  # taken off the project (or it was archived) since the picker was drawn
            st.warning(render.text(f"{exc}."))
            return
    task = tasks[project.id]
    total, labelled = _progress(project)
    st.progress(labelled / total if total else 0.0, text=f"{labelled:,} of {total:,} items labelled")
    if (message := st.session_state.pop(state.FLASH, None)) is not None:
        st.warning(message)
    if task is None:
        st.success("Nothing left for you to label in this project.")
        st.caption(_empty_queue_caption(engine, project))
        st.button("Check again", key="label-check-again", on_click=_act, args=(Action.claim, project, user.id))
        st.button("Undo last", key="label-undo", shortcut=UNDO_KEY, on_click=_act, args=(Action.undo, project, user.id))
        return

    if marks.is_marks(project.label_mode):
        _mark_item(project, user, task)
    else:
        with st.container(key="label-item"):
            render.show_item(task.data, project.data_type, project.display_columns)
        if (hint := hint_caption(project, task)) is not None:
            st.caption(hint, help=HINT_HELP)
        if project.label_mode == "multi":
            cols = st.columns(min(len(project.options), 5) or 1)
            for i, option in enumerate(project.options):
                cols[i % len(cols)].checkbox(render.text(option), key=f"label-multi-{i}")
            st.button("Submit", key="label-submit", type="primary", shortcut="Enter", on_click=_submit_multi,
                      args=(project, user.id, task.item_id))
        else:
            cols = st.columns(min(len(project.options), 5) or 1)
            for i, (option, key) in enumerate(zip(project.options, option_shortcuts(project.options))):
                description = project.option_descriptions.get(str(option))
                cols[i % len(cols)].button(render.text(option), key=f"label-opt-{i}", shortcut=key, width="stretch",
                                           help=render.text(description) if description else None,
                                           on_click=_act, args=(Action.submit, project, user.id, task.item_id, option))
    if (project.allow_free_text or not project.options) and not marks.is_marks(project.label_mode):
        st.text_input("Other label", key="label-free-text", placeholder="type a label")
        st.button("Submit label", key="label-submit-text", on_click=_submit_text, args=(project, user.id, task.item_id))
    left, right = st.columns(2)
    left.button("Skip", key="label-skip", shortcut=SKIP_KEY, width="stretch",
                on_click=_act, args=(Action.skip, project, user.id, task.item_id))
    right.button("Undo last", key="label-undo", shortcut=UNDO_KEY, width="stretch",
                 on_click=_act, args=(Action.undo, project, user.id))
    if marks.is_marks(project.label_mode):
        st.caption("Keyboard: in the item, a label's key marks and **Enter** submits · **S** skips · **U** undoes the last label")
    else:
        keys = "the key shown on a button picks that label" if project.label_mode == "single" else "Enter submits"
        st.caption(f"Keyboard: {keys} · **S** skips · **U** undoes the last label")


def _marks_hint(project: Project, task: Any) -> list | None:
    """The model's spans or boxes for this item, to pre-fill the widget: only where the project shows hints."""
    hint = task.hint
    return hint if project.show_hints and isinstance(hint, list) else None  # [] too: the model found nothing to mark


def _mark_item(project: Project, user: CurrentUser, task: Any) -> None:
    """A spans or boxes item: the marking widget (pre-filled with the model's suggestion where hints are on); its
    submit goes through :func:`_act` like a label button's click."""
    hint = _marks_hint(project, task)
    if hint is not None and (caption := hint_caption(project, task)) is not None:  # each suggested mark with its score
        st.caption(caption, help=hint_help(project))
    with st.container(key="label-item"):
        try:
            if project.label_mode == marks.SPANS:
                span_input(marks.item_text(task.data), project.options, value=hint, key=f"label-spans-{task.item_id}",
                           suggested=hint is not None, autofocus=True,
                           on_submit=functools.partial(_submit_marks, project, user.id, task.item_id))
                return
            width, height = marks.image_size(task.data)
            source = render.image_data_url(task.data)
            if source is None:
                raise ValidationError("this item's image file is missing or cannot be read")
            box_input(source, width, height, project.options, value=hint, key=f"label-boxes-{task.item_id}",
                      on_submit=functools.partial(_submit_marks, project, user.id, task.item_id))
        except ValidationError as exc:
            st.warning(render.text(f"This item cannot be marked: {exc}. Skip it (S) and tell an admin."))
            render.show_item(task.data, project.data_type, project.display_columns)


def _submit_marks(project: Project, user_id: int, item_id: int, value: list) -> None:
    """A marking widget's submit (its callback, before the fragment runs again): one transaction, as a label button."""
    _act(Action.submit, project, user_id, item_id, value)


def _rerun_fragment() -> None:
    """Draw the next item after a submit read from a widget's return value: the fragment again (the whole page in
    the first runs after signing in, which draw the item outside the fragment: see SETTLING_RUNS)."""
    try:
        st.rerun(scope="fragment")
    except st.errors.StreamlitAPIException:
        st.rerun()


def _show(value: Any) -> str:
    return ", ".join(map(str, value)) if isinstance(value, list) else str(value)


def _new_own_value(project: Project, item_id: int) -> Any:
    text = str(st.session_state.get(f"label-recent-text-{item_id}", "") or "").strip()
    if project.label_mode == "multi":
        return list(st.session_state.get(f"label-recent-labels-{item_id}", [])) + ([text] if text else [])
    if text or not project.options:
        return text
    return st.session_state.get(f"label-recent-new-{item_id}")


def _change_own(project: Project, user: CurrentUser, item_id: int, value: Any = None, data: Any = None) -> None:
    """The Save button's callback (or a marking widget's submit, with its ``value``): check the account, change the
    label, keep the old one in the history."""
    if not marks.is_marks(project.label_mode):
        value = _new_own_value(project, item_id)
    try:
        changed = guarded_action(user, "label", lambda s: queue.change_own_label(s, queue.get_project(s, project.id), user.id,
                                                                                   item_id, value))  # checked as the project is now
    except SuperintendentError as exc:
        st.session_state[RECENT_FLASH] = ("warning", render.text(exc))
    except (sa.exc.OperationalError, sa.exc.InterfaceError):
        st.session_state[RECENT_FLASH] = ("warning", DATABASE_MESSAGE)
    else:
        shown = render.marks_text(value, project.label_mode, data) if marks.is_marks(project.label_mode) else _show(value)
        st.session_state[RECENT_FLASH] = ("success", f"Changed to {render.text(shown)}." if changed
                                          else "That was the label already.")


@st.fragment
def recent_labels(project: Project, user: CurrentUser) -> None:
    with database_trouble_shown():
        _recent_labels(project, user)


def _recent_labels(project: Project, user: CurrentUser) -> None:
    if (project := _as_now(project)) is None:
        return
    engine = resources.engine()
    with session_scope(engine, write=False) as s:
        rows = queue.recent_labels(s, project, user.id, RECENT)
        data = queue.items_data(s, project, [r.item_id for r in rows])
    snippets = {r.item_id: render.snippet(data.get(r.item_id), project.display_columns) for r in rows}
    if (flash := st.session_state.pop(RECENT_FLASH, None)) is not None:
        (st.success if flash[0] == "success" else st.warning)(flash[1])
    if not rows:
        st.caption("You have no labels in this project yet.")
        return
    st.button("Refresh", key="label-recent-refresh", help="Show the labels you gave since this list was drawn")
    shown = [{**({"thumbnail": render.thumbnail(data.get(r.item_id))} if project.data_type == "image" else {}),
              "item": snippets[r.item_id], "id": r.external_id,
              "your label": render.marks_text(r.label, project.label_mode, data.get(r.item_id)) if marks.is_marks(project.label_mode)
              else _show(r.label), "when (UTC)": r.created_at}
             for r in rows]  # each item by its content (text, shown values, file name, a thumbnail) and its id
    st.dataframe(shown, hide_index=True, width="stretch", column_config=render.content_columns(shown))
    by_id = {r.item_id: r for r in rows}
    item_id = st.selectbox("Label to change", list(by_id), key="label-recent-item",
                           format_func=lambda i: f"{snippets[i][:60]} · id {by_id[i].external_id[:30]} · "
                                                 f"labelled {by_id[i].created_at:%H:%M:%S} UTC")
    current = by_id[item_id].label
    with session_scope(engine, write=False) as s:
        data = queue.item_data(s, project, item_id)
    if marks.is_marks(project.label_mode):
        _change_own_marks(project, user, item_id, data, current)
        return
    left, right = st.columns(2)
    with left:
        render.show_item(data, project.data_type, project.display_columns)
    with right:
        if project.label_mode == "multi":
            st.multiselect("New labels", project.options, key=f"label-recent-labels-{item_id}",
                           default=[v for v in current if v in project.options])
        elif project.options:
            st.selectbox("New label", project.options, key=f"label-recent-new-{item_id}",
                         index=project.options.index(current) if current in project.options else 0)
        if project.allow_free_text or not project.options:
            st.text_input("Other label" if project.options else "New label", key=f"label-recent-text-{item_id}", placeholder="type a label")
        st.button("Save change", key="label-recent-save", type="primary", on_click=_change_own, args=(project, user, item_id))


def _change_own_marks(project: Project, user: CurrentUser, item_id: int, data: Any, current: Any) -> None:
    """One of the user's own spans or boxes answers in its marking widget; its submit saves the change."""
    try:
        if project.label_mode == marks.SPANS:
            span_input(marks.item_text(data), project.options, value=current, key=f"label-recent-spans-{item_id}",
                       submit_label="Save change", on_submit=functools.partial(_change_own, project, user, item_id, data=data))
            return
        width, height = marks.image_size(data)
        source = render.image_data_url(data)
        if source is None:
            raise ValidationError("its image file is missing or cannot be read")
    except ValidationError as exc:
        st.warning(render.text(f"This item cannot be changed here: {exc}."))
        return
    st.caption("Correct the boxes; Submit saves the change.")
    value = box_input(source, width, height, project.options, value=current, key=f"label-recent-boxes-{item_id}")
    if value is not None:
        _change_own(project, user, item_id, value, data=data)
        _rerun_fragment()


def _empty_queue_caption(engine: Any, project: Project) -> str:
    """Why the queue may refill: a model's retrain schedule, or that this project has no model."""
    if not has_in_app_model(project):
        return "This project has no model: the queue keeps its order. New items appear when an admin uploads them."
    schedule = project_schedule(engine, project)
    if not schedule.enabled:
        return "The model reorders the queue when an admin retrains it (Retrain now on the Model page)."
    return f"The model reorders the queue by itself: {schedule.description}."


def show_guidelines(project: Project) -> None:
    """The project's guidelines (Markdown; raw HTML and images shown as text: :func:`render.guidelines`) in a
    collapsible box above the item."""
    if project.guidelines:
        with st.expander("Guidelines", expanded=False, key=f"label-guidelines-{project.id}"):
            render.guidelines(project.guidelines)


def render_page(user: CurrentUser) -> None:
    hint = "No projects yet." + (" Create one on the Admin page." if user.can("admin") else " Ask an admin to create one.")
    project = project_picker("label-project", empty_hint=hint)
    if project is not None:
        if st.session_state.get(state.SIGNED_IN_RUNS, 0) > SETTLING_RUNS:
            labelling(project, user)
        else:  # just signed in: see SETTLING_RUNS
            with database_trouble_shown():
                _labelling(project, user)
        # Read only while open; opening reruns the page, so the list is fresh each time it is opened.
        recent = st.expander("Your recent labels", key="label-recent", on_change="rerun")
        if recent.open:
            with recent:
                recent_labels(project, user)
