"""Admin, Users tab: the accounts, a new user, and changes to one user (role, active, password, "Sign out everywhere").

The "Change a user" form is keyed to the picked user (its widgets' keys hold
the user name), so nothing typed or ticked for one user carries over to
another, and "Apply" changes only what differs from the values the form
showed for that user: a stale role is never written.
After a change the tab is drawn again (the table and the picker at once
show the new state); the confirmation survives that rerun.
"""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd
import streamlit as st
from sqlmodel import Session

from superintendent import audit, auth, sessions
from superintendent.app import render, resources
from superintendent.app.guard import Note, guarded_action
from superintendent.app.login import CurrentUser
from superintendent.store import User, session_scope
from superintendent.validation import SuperintendentError

DONE_KEY = "admin-users-done"  # the confirmation of the last change, shown after the rerun that redraws the tab
PICK_KEY = "admin-edit-user"
EDIT_PREFIX = "admin-edit-field-"  # the keys of the "Change a user" form's fields


def users_tab(user: CurrentUser) -> None:
    with session_scope(resources.engine(), write=False) as s:
        users = auth.list_users(s)
    if (done := st.session_state.pop(DONE_KEY, None)) is not None:
        st.success(done)  # written with the user's name through render.text
    st.dataframe(pd.DataFrame([{"user": u.username, "name": u.display_name, "role": u.role, "active": u.active,
                                "locked until": u.locked_until.strftime("%Y-%m-%d %H:%M UTC") if u.locked_until else ""}
                               for u in users]), hide_index=True, width="stretch")
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
            _user_action(user, create, f"User {render.text(repr(username.strip().lower()))} created.", pick=username)
    with right:
        st.write("**Change a user**")
        names = [u.username for u in users]
        target = st.selectbox("User", names, key=PICK_KEY)
    chosen = next((u for u in users if u.username == target), None)
    if chosen is None:
        return
    shown_role = chosen.role if chosen.role in auth.HUMAN_ROLES else "labeller"
    # cleared on submit: drawn again with the stored values, the password box empty (a failed Apply is retyped)
    with right.form(f"admin-user-edit-{chosen.username}", clear_on_submit=True):
        new_role = st.selectbox("Role", auth.HUMAN_ROLES, key=f"{EDIT_PREFIX}role-{chosen.username}",
                                index=auth.HUMAN_ROLES.index(shown_role))
        new_password = st.text_input("New password (leave empty to keep)", type="password", key=f"{EDIT_PREFIX}password-{chosen.username}")
        active = st.checkbox("Active (may log in)", value=chosen.active, key=f"{EDIT_PREFIX}active-{chosen.username}")
        if st.form_submit_button("Apply"):
            change = _changes(chosen.username, shown_role, chosen.active, new_role, active, new_password)
            _user_action(user, change, f"User {render.text(repr(chosen.username))} updated.")
    with right:
        _sign_out_everywhere(user, chosen)


def _sign_out_everywhere(user: CurrentUser, chosen: User) -> None:
    """"Sign out everywhere": every sign-in of ``chosen`` ends (each browser is signed out at its next click), audited."""
    with session_scope(resources.engine(), write=False) as s:
        live = sessions.live_count(s, chosen.id, sessions.Rules.of(resources.settings()))
    st.caption(f"{live} open sign-in{'s' if live != 1 else ''} (browsers where this user is signed in).")
    if st.button("Sign out everywhere", key=f"admin-user-sign-out-{chosen.username}",
                 help="End every sign-in of this user: each browser shows the sign-in form at its next click, and a copy of "
                      "an old sign-in cookie no longer works. The password stays as it is."):
        def sign_out(s: Session) -> list[Note]:
            ended = auth.sign_out_everywhere(s, chosen.username)
            return [Note(audit.AuditAction.user_sign_out_everywhere, chosen.username, {"ended": ended})]
        _user_action(user, sign_out, f"User {render.text(repr(chosen.username))} is signed out everywhere.")


def _changes(target: str, shown_role: str, shown_active: bool, new_role: str, active: bool,
             new_password: str) -> Callable[[Session], list[Note]]:
    """The transaction of "Apply": only the fields the admin changed from the values shown for ``target``."""
    def change(s: Session) -> list[Note]:
        before = auth.get_user(s, target)
        notes = []
        old_role = before.role
        if new_role != shown_role and new_role != old_role:
            auth.set_role(s, target, new_role)
            notes.append(Note(audit.AuditAction.user_role, target, {"before": old_role, "after": new_role}))
        if active != shown_active and active != before.active:
            old_active = before.active
            auth.set_active(s, target, active)
            notes.append(Note(audit.AuditAction.user_active, target, {"before": old_active, "after": active}))
        if new_password:
            auth.reset_password(s, target, new_password)
            notes.append(Note(audit.AuditAction.user_password_reset, target))
        return notes
    return change


def _user_action(user: CurrentUser, action: Callable[[Session], list[Note]], done: str, *, pick: str | None = None) -> None:
    """Check, act and audit (the notes ``action`` returns) in one transaction: a refused or failed action changes nothing.

    On success the tab is drawn again (``pick``: the user the "Change a user" picker then shows)."""
    try:
        guarded_action(user, "manage_users", action, audit=lambda notes: notes)
    except SuperintendentError as exc:
        st.error(render.text(exc))
        return
    st.session_state[DONE_KEY] = done
    if pick:
        st.session_state[PICK_KEY] = pick.strip().lower()
    st.rerun()
