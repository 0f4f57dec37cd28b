"""The Review page's body: finished items, who labelled them what, and a corrected label that wins.

The account is re-read from the database on every draw (``login.require("review")``
in ``pages/review.py``), and again inside the transaction of every correction
(:func:`superintendent.app.guard.guarded_action`; the queue checks the role once
more): a reviewer whose role was taken away a moment ago changes nothing.
"""

from __future__ import annotations

import functools
from typing import Any

import pandas as pd
import streamlit as st
from sqlmodel import Session

from superintendent import marks, queue
from superintendent.app import render, resources
from superintendent.app.box_input import box_input
from superintendent.app.guard import guarded_action
from superintendent.app.login import CurrentUser
from superintendent.app.span_input import span_input
from superintendent.app.widgets import project_picker
from superintendent.store import Project, session_scope
from superintendent.validation import SuperintendentError

PAGE_SIZE = 25
PAGES = "review-pages"  # {"filters": (...), "stack": [after of page 1, after of page 2, ...]}
FLASH = "review-flash"  # (kind, message) shown once after a correction
ANY = "any"


def show_label(value: Any) -> str:
    """A label as text: a multi-label list as ``a, b``; no label as a dash."""
    if value is None:
        return "—"
    if isinstance(value, list):
        return ", ".join(map(str, value)) or "(none)"
    return str(value)


def _shown(project: Project, value: Any, data: Any) -> str:
    return render.marks_text(value, project.label_mode, data) if marks.is_marks(project.label_mode) else show_label(value)


def _correct(project: Project, user: CurrentUser, item_id: int, clear: bool) -> None:
    """A button's callback: check the account and write the correction in one transaction."""
    _write_correction(project, user, item_id, None if clear else _chosen(project, item_id), clear)


def _write_correction(project: Project, user: CurrentUser, item_id: int, value: Any, clear: bool = False,
                      data: Any = None) -> None:
    """Check the account and write the correction (or remove it) in one transaction; the outcome as the page's flash."""

    def write(s: Session) -> bool:
        if clear:
            return queue.clear_review(s, project, user.id, item_id)
        return queue.set_review(s, project, user.id, item_id, value)

    try:
        changed = guarded_action(user, "review", write)
    except SuperintendentError as exc:
        st.session_state[FLASH] = ("error", render.text(exc))
        return
    if clear:
        message = "Correction removed: the labellers' consensus counts again." if changed else "This item has no correction."
    else:
        shown = render.text(_shown(project, value, data))
        message = f"Corrected to {shown}." if changed else f"The item was already corrected to {shown}."
    st.session_state[FLASH] = ("success", message)


def _chosen(project: Project, item_id: int) -> Any:
    """The corrected label picked in the item's widgets (checked by the queue, like a submit)."""
    text = str(st.session_state.get(f"review-new-text-{item_id}", "") or "").strip()
    if project.label_mode == "multi":
        return list(st.session_state.get(f"review-new-labels-{item_id}", [])) + ([text] if text else [])
    if text or not project.options:
        return text
    return st.session_state.get(f"review-new-label-{item_id}")


def _page_step(step: int, next_after: int | None) -> None:
    stack = st.session_state[PAGES]["stack"]
    if step > 0 and next_after is not None:
        stack.append(next_after)
    elif step < 0 and len(stack) > 1:
        stack.pop()


def _filters(project: Project) -> dict[str, Any]:
    with session_scope(resources.engine(), write=False) as s:
        people = queue.labellers(s, project)
    c1, c2, c3 = st.columns(3)
    label = c1.selectbox("Label given", [ANY] + list(project.options), key=f"review-filter-label-{project.id}",
                         format_func=lambda v: "any label" if v == ANY else str(v)) if project.options else ANY
    names = dict(people)
    labeller = c2.selectbox("Labeller", [None] + list(names), key=f"review-filter-labeller-{project.id}",
                            format_func=lambda u: "anyone" if u is None else names[u])
    oldest_first = c3.toggle("Oldest first", key="review-filter-oldest")
    search = st.text_input("Search by id or content", key=f"review-filter-search-{project.id}", placeholder="words in the text, "
                           "a table value, a file name or an item id").strip()
    c1, c2, c3 = st.columns(3)
    return dict(label=None if label == ANY else label, labeller_id=labeller, newest_first=not oldest_first, search=search or None,
                disagreement=c1.checkbox("Only disagreements", key="review-filter-disagreement"),
                ties=c2.checkbox("Only ties", key="review-filter-ties"),
                unreviewed=c3.checkbox("Only not yet reviewed", key="review-filter-unreviewed"))


def _list(project: Project, filters: dict[str, Any]) -> tuple[queue.ReviewPage, dict[int, str]]:
    """The page of items (a table showing each by its content), and each listed item's snippet by id."""
    key = (project.id, tuple(sorted(filters.items())))
    if st.session_state.get(PAGES, {}).get("filters") != key:
        st.session_state[PAGES] = {"filters": key, "stack": [None]}
    stack = st.session_state[PAGES]["stack"]
    with session_scope(resources.engine(), write=False) as s:
        page = queue.review_items(s, project, after=stack[-1], limit=PAGE_SIZE, **filters)
        data = queue.items_data(s, project, [r.item_id for r in page.rows])
    snippets = {r.item_id: render.snippet(data.get(r.item_id), project.display_columns) for r in page.rows}
    if not page.rows:
        st.info("No finished items match these filters." if len(stack) == 1 else "No more items.")
    else:
        shown = [{
            **({"thumbnail": render.thumbnail(data.get(r.item_id))} if project.data_type == "image" else {}),
            "item": snippets[r.item_id], "id": r.external_id,
            "labels": "; ".join(f"{g.username}: {_shown(project, g.label, data.get(r.item_id))}" for g in r.annotations),
            "consensus": _shown(project, r.consensus, data.get(r.item_id)) + (" (tie)" if r.tie else ""),
            "corrected": _shown(project, r.reviewed, data.get(r.item_id)), "by": r.reviewed_by or "",
        } for r in page.rows]
        st.dataframe(pd.DataFrame(shown), hide_index=True, width="stretch", column_config=render.content_columns(shown))
    left, middle, right = st.columns([1, 2, 1])
    left.button("Previous page", key="review-prev", disabled=len(stack) == 1, on_click=_page_step, args=(-1, None))
    middle.caption(f"Page {len(stack)} · up to {PAGE_SIZE} items a page")
    right.button("Next page", key="review-next", disabled=page.next_after is None, on_click=_page_step, args=(1, page.next_after))
    return page, snippets


def _item(project: Project, user: CurrentUser, item_id: int) -> None:
    with session_scope(resources.engine(), write=False) as s:
        history = queue.item_history(s, project, item_id)
    st.subheader(render.text(render.snippet(history.data, project.display_columns, 60)), anchor=False)
    st.caption(f"id {render.text(history.external_id)}")
    if marks.is_marks(project.label_mode):
        _marks_review(project, user, history, item_id)
    else:
        _label_review(project, user, history, item_id)
    st.write("**History**")
    if not history.revisions:
        st.caption("No changes yet: every label is as first given.")
    else:
        st.dataframe(pd.DataFrame([{"when (UTC)": r.changed_at, "change": r.kind, "whose label": r.labeller or "corrected label",
                                    "from": _shown(project, r.old, history.data), "to": _shown(project, r.new, history.data),
                                    "by": r.changed_by or ""}
                                   for r in history.revisions]), hide_index=True, width="stretch")


def _label_review(project: Project, user: CurrentUser, history: queue.ItemHistory, item_id: int) -> None:
    """A class-label item: the item beside its labels, consensus, correction."""
    left, right = st.columns([1, 1])
    with left:
        render.show_item(history.data, project.data_type, project.display_columns)
    with right:
        st.dataframe(pd.DataFrame([{"labeller": g.username, "label": show_label(g.label), "when (UTC)": g.created_at,
                                    "seconds": g.time_taken} for g in history.annotations]), hide_index=True, width="stretch")
        st.markdown(f"**Consensus:** {render.text(show_label(history.consensus))}" + (" — a tie" if history.tie else "")
                    + f"  \n**Corrected label:** {render.text(show_label(history.reviewed))}"
                    + (f" (by {render.text(history.reviewed_by)}, {history.reviewed_at:%Y-%m-%d %H:%M} UTC)"
                       if history.reviewed is not None else "")
                    + f"  \n**Used for training and export:** {render.text(show_label(history.final))}")
        current = history.reviewed if history.reviewed is not None else history.consensus
        if project.label_mode == "multi":
            st.multiselect("Corrected labels", project.options, key=f"review-new-labels-{item_id}",
                           default=[v for v in (current or []) if v in project.options])
        elif project.options:
            st.selectbox("Corrected label", project.options, key=f"review-new-label-{item_id}",
                         index=project.options.index(current) if current in project.options else 0)
        if project.allow_free_text or not project.options:
            st.text_input("Other label" if project.options else "Corrected label", key=f"review-new-text-{item_id}",
                          placeholder="type a label")
        a, b = st.columns(2)
        a.button("Save correction", key="review-save", type="primary", on_click=_correct, args=(project, user, item_id, False))
        b.button("Clear correction", key="review-clear", disabled=history.reviewed is None, on_click=_correct,
                 args=(project, user, item_id, True))


def _save_marks(project: Project, user: CurrentUser, item_id: int, data: Any, value: list) -> None:
    """The correction widget's submit (its callback, before the page runs again)."""
    _write_correction(project, user, item_id, value, data=data)


def _draw_marks(project: Project, data: Any, value: Any, key: str) -> None:
    """Spans or boxes drawn on their item, read only."""
    if project.label_mode == marks.SPANS:
        span_input(marks.item_text(data), project.options, value=value or [], key=key, readonly=True)
    else:
        render.show_boxes(data, value or [], project.options)


def _marks_review(project: Project, user: CurrentUser, history: queue.ItemHistory, item_id: int) -> None:
    """A spans or boxes item: each labeller's marks drawn on it, the consensus (a tie flagged), and a widget to correct
    them (pre-filled with the correction, else the consensus) whose submit saves the correction."""
    data = history.data

    def said(value: Any) -> str:
        return render.text(render.marks_text(value, project.label_mode, data))

    for i, given in enumerate(history.annotations):
        seconds = f" · {given.time_taken:.0f} s" if given.time_taken is not None else ""
        st.markdown(f"**{render.text(given.username)}** · {said(given.label)} · {given.created_at:%Y-%m-%d %H:%M} UTC{seconds}")
        _draw_marks(project, data, given.label, key=f"review-marks-{item_id}-{i}")
    if history.tie:
        st.warning("A tie: half of the labellers gave some of these marks, half did not. Decide with a correction below.")
    st.markdown(f"**Consensus** (the marks a majority gave): {said(history.consensus)}")
    if history.consensus and len(history.annotations) > 1:  # one labeller's marks are drawn above already
        _draw_marks(project, data, history.consensus, key=f"review-consensus-{item_id}")
    if history.reviewed is not None:
        st.markdown(f"**Corrected:** {said(history.reviewed)} "
                    f"(by {render.text(history.reviewed_by)}, {history.reviewed_at:%Y-%m-%d %H:%M} UTC)")
    st.markdown(f"**Used for training and export:** {said(history.final)}")
    current = history.reviewed if history.reviewed is not None else history.consensus
    st.markdown("**Correct the marks**")
    if project.label_mode == marks.SPANS:
        span_input(marks.item_text(data), project.options, value=current or [], key=f"review-correct-{item_id}",
                   submit_label="Save correction",
                   on_submit=functools.partial(_save_marks, project, user, item_id, data))
    else:
        source = render.image_data_url(data)
        if source is None:
            st.warning("This item's image is missing or cannot be read: it cannot be corrected here.")
        else:
            width, height = marks.image_size(data)
            st.caption("Draw the boxes as they should be; Submit saves them as the correction.")
            value = box_input(source, width, height, project.options, value=current or [], key=f"review-correct-{item_id}")
            if value is not None:
                _write_correction(project, user, item_id, value, data=data)
                st.rerun()
    st.button("Clear correction", key="review-clear", disabled=history.reviewed is None, on_click=_correct,
              args=(project, user, item_id, True))


def render_page(user: CurrentUser) -> None:
    """The page, for a user ``login.require("review")`` has just checked against the database."""
    project = project_picker("review-project")
    if project is None:
        return
    if (flash := st.session_state.pop(FLASH, None)) is not None:
        (st.error if flash[0] == "error" else st.success)(flash[1])
    filters = _filters(project)
    page, snippets = _list(project, filters)
    if not page.rows:
        return
    rows = {r.item_id: r for r in page.rows}
    item_id = st.selectbox("Open item", list(rows), key=f"review-item-{project.id}",
                           format_func=lambda i: f"{snippets[i][:60]} · id {rows[i].external_id[:40]}")
    try:
        _item(project, user, item_id)
    except SuperintendentError as exc:
        st.error(render.text(exc))
