"""Small widgets several pages share."""

from __future__ import annotations

import streamlit as st

from superintendent import queue
from superintendent.app import resources, state
from superintendent.store import Project, session_scope

PICKED_NOW = "sp_project_picked_now"  # the picker changed in this run: hand the keyboard back to the page
BLUR_COUNT = "sp_project_blur_count"  # makes each blur snippet new, so the browser runs it again

# Moves the keyboard focus off the project picker, so the label buttons' shortcuts get the next key press
# (a focused select box would take "2" as text and Enter as a project switch). The select box keeps focus
# for a moment after its menu closes, so the blur is tried a few times.
_BLUR = """<script>
(() => { let n = 0; const blur = () => {
  const el = window.parent.document.activeElement || document.activeElement;
  if (el && el !== document.body && el.closest && el.closest('[data-testid="stSelectbox"]')) { el.blur(); }
  if (++n < 10) { setTimeout(blur, 50); } };
  blur(); })(); /* %d */
</script>"""


def _picked(key: str) -> None:
    st.session_state[PICKED_NOW] = key


def project_picker(key: str, *, empty_hint: str = "No projects yet: an admin creates them on the Admin page.") -> Project | None:
    """Pick a project among those the signed-in user may work in; None when there is none.

    Admins see every project; labellers and reviewers their non-archived
    memberships (:func:`superintendent.queue.visible_projects`). The choice is
    remembered across pages for this session and, per user, in the database:
    the next session opens on the project used last. After a change the
    keyboard focus leaves the picker, so shortcut keys reach the page.
    """
    user = st.session_state.get(state.USER)
    with session_scope(resources.engine(), write=False) as s:
        if user is None:
            projects, last = [], None
        else:
            projects = queue.visible_projects(s, user.id, user.role)
            last = queue.last_project_id(s, user.id) if state.PROJECT not in st.session_state else None
    if not projects:
        st.info(empty_hint if user is None or user.role == "admin" or not _any_project() else
                "You are not a member of any project yet: ask an admin to add you to one.")
        return None
    ids = [p.id for p in projects]
    current = st.session_state.get(state.PROJECT, last)
    picked = st.selectbox("Project", projects, index=ids.index(current) if current in ids else 0, format_func=lambda p: p.name,
                          key=key, on_change=_picked, args=(key,))
    if st.session_state.pop(PICKED_NOW, None) == key:
        st.session_state[BLUR_COUNT] = st.session_state.get(BLUR_COUNT, 0) + 1
        st.html(_BLUR % st.session_state[BLUR_COUNT], unsafe_allow_javascript=True)
    if picked.id != st.session_state.get(state.PROJECT, last):
        with session_scope(resources.engine()) as s:
            queue.remember_last_project(s, user.id, picked.id)
    st.session_state[state.PROJECT] = picked.id
    return projects[ids.index(picked.id)]  # as read in this run (a select box may hand back the object of an earlier run)


def _any_project() -> bool:
    with session_scope(resources.engine(), write=False) as s:
        return bool(queue.list_projects(s))


def all_projects() -> list[Project]:
    """Every project, by name (a short read)."""
    with session_scope(resources.engine(), write=False) as s:
        return queue.list_projects(s)
