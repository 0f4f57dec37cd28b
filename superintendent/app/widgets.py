"""Small widgets several pages share."""

from __future__ import annotations

import streamlit as st

from superintendent import queue
from superintendent.app import resources, state
from superintendent.store import Project, session_scope


def project_picker(key: str, *, empty_hint: str = "No projects yet: an admin creates them on the Admin page.") -> Project | None:
    """Pick a project (remembered across pages for this session); None when there is none."""
    with session_scope(resources.engine(), write=False) as s:
        projects = queue.list_projects(s)
    if not projects:
        st.info(empty_hint)
        return None
    ids = [p.id for p in projects]
    current = st.session_state.get(state.PROJECT)
    picked = st.selectbox("Project", projects, index=ids.index(current) if current in ids else 0, format_func=lambda p: p.name, key=key)
    st.session_state[state.PROJECT] = picked.id
    return picked


def all_projects() -> list[Project]:
    """Every project, by name (a short read)."""
    with session_scope(resources.engine(), write=False) as s:
        return queue.list_projects(s)
