"""Admin, Users tab: the accounts, a new user, and changes to one user (role, active, password)."""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd
import streamlit as st
from sqlmodel import Session

from superintendent import audit, auth
from superintendent.app import resources
from superintendent.app.guard import Note, guarded_action
from superintendent.app.login import CurrentUser
from superintendent.store import session_scope
from superintendent.validation import SuperintendentError


def users_tab(user: CurrentUser) -> None:
    with session_scope(resources.engine(), write=False) as s:
        users = auth.list_users(s)
    st.dataframe(pd.DataFrame([{"user": u.username, "name": u.display_name, "role": u.role, "active": u.active,
                                "locked until": u.locked_until} for u in users]), hide_index=True, width="stretch")
    left, right = st.columns(2)
    with left.form("admin-user-create", clear_on_submit=True):
        st.write("**New user**")
        username = st.text_input("User name", key="admin-new-username")
        display = st.text_input("Display name", key="admin-new-display")
        password = st.text_input("Password", type="password", key="admin-new-password", help=f"At least {auth.MIN_PASSWORD_LENGTH} characters")
        role = st.selectbox("Role", auth.HUMAN_ROLES, index=auth.HUMAN_ROLES.index("labeller"), key="admin-new-role")
        if st.form_submit_button("Create user"):
            def create(s: Session) -> list[Note]:
                new = auth.create_user(s, username, password, role, display_name=display)
                return [Note(audit.AuditAction.user_create, new.username, {"role": new.role, "display_name": new.display_name})]
            _user_action(user, create, f"User {username!r} created.")
    with right:
        st.write("**Change a user**")
        # Picked outside the form, so Role and Active start from this user's values (Apply sets all of them).
        target = st.selectbox("User", [u.username for u in users], key="admin-edit-user", on_change=_forget_user_edits)
    chosen = next((u for u in users if u.username == target), None)
    with right.form("admin-user-edit"):
        new_role = st.selectbox("Role", auth.HUMAN_ROLES, key="admin-edit-role",
                                index=auth.HUMAN_ROLES.index(chosen.role if chosen and chosen.role in auth.HUMAN_ROLES else "labeller"))
        new_password = st.text_input("New password (leave empty to keep)", type="password", key="admin-edit-password")
        active = st.checkbox("Active (may log in)", value=chosen.active if chosen else True, key="admin-edit-active")
        if st.form_submit_button("Apply"):
            def change(s: Session) -> list[Note]:
                before = auth.get_user(s, target)
                old_role, old_active = before.role, before.active
                auth.set_role(s, target, new_role)
                auth.set_active(s, target, active)
                notes = []
                if new_role != old_role:
                    notes.append(Note(audit.AuditAction.user_role, target, {"before": old_role, "after": new_role}))
                if active != old_active:
                    notes.append(Note(audit.AuditAction.user_active, target, {"before": old_active, "after": active}))
                if new_password:
                    auth.reset_password(s, target, new_password)
                    notes.append(Note(audit.AuditAction.user_password_reset, target))
                return notes
            _user_action(user, change, f"User {target!r} updated.")


def _forget_user_edits() -> None:
    """Another user was picked: Role, Active and New password start again from that user's values."""
    for key in ("admin-edit-role", "admin-edit-active", "admin-edit-password"):
        st.session_state.pop(key, None)


def _user_action(user: CurrentUser, action: Callable[[Session], list[Note]], done: str) -> None:
    """Check, act and audit (the notes ``action`` returns) in one transaction: a refused or failed action changes nothing."""
    try:
        guarded_action(user, "manage_users", action, audit=lambda notes: notes)
    except SuperintendentError as exc:
        st.error(str(exc))
        return
    st.success(done)
