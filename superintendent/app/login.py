"""Login glue: streamlit-authenticator with users from the database, lockout, first run.

The authenticator only ever sees a copy of the users who may log in right
now (active, not locked, with a password), so a deactivated or locked
account fails like a wrong password. Failed attempts are counted in the
database (:func:`superintendent.auth.record_failed_login`). Every run, the
logged-in user is read again from the database: role changes and
deactivation take effect at once, whatever the cookie says.
"""

from __future__ import annotations

from dataclasses import dataclass

import streamlit as st
import streamlit_authenticator as stauth

from superintendent import auth
from superintendent.app import resources, state
from superintendent.demo import load_demo
from superintendent.store import session_scope
from superintendent.validation import SuperintendentError

LOGIN_FORM_KEY = "login-form"


@dataclass(frozen=True)
class CurrentUser:
    id: int
    username: str
    role: str
    display_name: str

    def can(self, action: str) -> bool:
        return auth.can(self.role, action)


def _credentials() -> dict:
    with session_scope(resources.engine(), write=False) as s:
        users = auth.login_candidates(s)
    return {"usernames": {u.username: {"name": u.display_name or u.username, "email": u.email or f"{u.username}@localhost",
                                       "password": u.password_hash, "roles": [u.role], "failed_login_attempts": 0}
                          for u in users}}


def _authenticator(credentials: dict) -> stauth.Authenticate:
    s = resources.settings()
    return stauth.Authenticate(credentials, s.cookie_name, resources.cookie_key(), s.cookie_expiry_days, login_sleep_time=0)


def _on_login(event: dict) -> None:
    with session_scope(resources.engine()) as s:
        auth.record_login(s, event["username"])


def current_user() -> CurrentUser | None:
    """Show the login form if needed; return the logged-in user (checked against the database) or None."""
    credentials = _credentials()
    authenticator = _authenticator(credentials)
    authenticator.login(location="main", key=LOGIN_FORM_KEY, callback=_on_login,
                        fields={"Form name": "Log in to superintendent", "Username": "User name", "Password": "Password", "Login": "Log in"})
    status = st.session_state.get("authentication_status")
    if status is False:
        failed = [name for name, entry in credentials["usernames"].items() if entry.get("failed_login_attempts", 0) > 0]
        if failed:
            with session_scope(resources.engine()) as s:
                for name in failed:
                    auth.record_failed_login(s, name)
        st.error(auth.FAILED_LOGIN_MESSAGE)
        return None
    if not status:
        return None
    with session_scope(resources.engine(), write=False) as s:
        try:
            user = auth.get_user(s, st.session_state["username"])
        except SuperintendentError:
            user = None
    if user is None or not auth.may_log_in(user):
        authenticator.logout(location="unrendered")
        st.session_state.pop(state.USER, None)
        st.session_state.pop(state.SIGNED_IN_RUNS, None)
        st.error(auth.FAILED_LOGIN_MESSAGE)
        return None
    current = CurrentUser(user.id, user.username, user.role, user.display_name or user.username)
    st.session_state[state.USER] = current
    st.session_state[state.SIGNED_IN_RUNS] = st.session_state.get(state.SIGNED_IN_RUNS, 0) + 1
    with st.sidebar:
        st.caption(f"Signed in as **{current.display_name}** ({current.role})")
        authenticator.logout(button_name="Log out", location="sidebar", key="logout-button",
                             callback=lambda _event: [st.session_state.pop(k, None) for k in (state.USER, state.SIGNED_IN_RUNS)])
    return current


def get() -> CurrentUser:
    """The current user, re-read from the database; stops the page if nobody (allowed) is logged in.

    The router checks this too, but a page file can also run on its own (Streamlit
    runs files in ``pages/`` directly before the router has run once), so each page checks again.
    """
    known = st.session_state.get(state.USER)
    user = None
    if known is not None:
        with session_scope(resources.engine(), write=False) as s:
            try:
                found = auth.get_user(s, known.username)
            except SuperintendentError:
                found = None
        if found is not None and auth.may_log_in(found):
            user = CurrentUser(found.id, found.username, found.role, found.display_name or found.username)
            st.session_state[state.USER] = user
        else:
            st.session_state.pop(state.USER, None)
            st.session_state["authentication_status"] = None
    if user is None:
        user = current_user()  # opened on its own: the login form, here
    if user is None:
        st.stop()
    return user


def require(action: str) -> CurrentUser:
    """The current user if their role allows ``action``; otherwise the page shows nothing of itself."""
    user = get()
    if not user.can(action):
        st.error("Your role does not allow this page.")
        st.stop()
    return user


def first_run_needed() -> bool:
    with session_scope(resources.engine(), write=False) as s:
        return auth.count_people(s) == 0


def first_run_form() -> None:
    """No users yet: create the first admin (and, if wanted, the demo projects)."""
    st.title("Welcome to superintendent")
    st.write("There are no users yet. Create the first admin account; you can add labellers on the Admin page later.")
    with st.form("first-admin"):
        username = st.text_input("User name", key="first-admin-username")
        display = st.text_input("Display name (optional)", key="first-admin-display")
        password = st.text_input("Password", type="password", key="first-admin-password",
                                 help=f"At least {auth.MIN_PASSWORD_LENGTH} characters")
        repeat = st.text_input("Repeat password", type="password", key="first-admin-repeat")
        demo = st.checkbox("Load the demo projects (handwritten digits, word sentiment) so I can label at once", value=True,
                           key="first-admin-demo")
        submitted = st.form_submit_button("Create admin", type="primary")
    if not submitted:
        return
    if password != repeat:
        st.error("The two passwords differ.")
        return
    try:
        with session_scope(resources.engine()) as s:
            if auth.count_people(s) > 0:
                st.error("An admin exists already; log in instead.")
                return
            auth.create_user(s, username, password, "admin", display_name=display)
    except SuperintendentError as exc:
        st.error(str(exc))
        return
    if demo:
        with st.spinner("Loading the demo projects..."):
            load_demo(resources.engine())
    st.session_state[state.FIRST_ADMIN_DONE] = True
    st.rerun()
