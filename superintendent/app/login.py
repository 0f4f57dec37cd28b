"""Login glue: the login form, the remember-me cookie, the first run.

Who may sign in is decided in one place, :func:`superintendent.auth.authenticate`
(password, lockout, deactivation), called by this module's login form.
streamlit-authenticator only keeps the remember-me cookie (signs, reads,
sets and deletes it) and draws the "Log out" button: it is given no user and
no password hash. Every run, the signed-in account is read again from the
database (:func:`superintendent.auth.signed_in_account`): role changes,
deactivation and lockout take effect at once, whatever the cookie says.
"""

from __future__ import annotations

from dataclasses import dataclass

import streamlit as st
import streamlit_authenticator as stauth

from superintendent import auth
from superintendent.app import resources, state
from superintendent.demo import load_demo
from superintendent.store import User, session_scope
from superintendent.validation import SuperintendentError

LOGIN_FORM_KEY = "login-form"
USERNAME_KEY = "login-username"
PASSWORD_KEY = "login-password"
LOGIN_MESSAGE_KEY = "sp_login_message"  # the one line the sign-in form shows above itself (why the last try failed, why signed out)


@dataclass(frozen=True)
class CurrentUser:
    id: int
    username: str
    role: str
    display_name: str

    def can(self, action: str) -> bool:
        return auth.can(self.role, action)

    @classmethod
    def of(cls, user: User) -> CurrentUser:
        return cls(user.id, user.username, user.role, user.display_name or user.username)


def _authenticator() -> stauth.Authenticate:
    """The cookie keeper. No credentials: the password check is :func:`auth.authenticate`'s."""
    s = resources.settings()
    return stauth.Authenticate({"usernames": {}}, s.cookie_name, resources.cookie_key(), s.cookie_expiry_days)


def _signed_in(user: User) -> None:
    st.session_state[state.AUTH_STATUS] = True
    st.session_state[state.AUTH_USERNAME] = user.username
    st.session_state[state.AUTH_NAME] = user.display_name or user.username
    st.session_state[state.AUTH_ROLES] = [user.role]
    st.session_state[state.AUTH_LOGGED_OUT] = None


def _forget_sign_in() -> None:
    for key in (state.USER, state.SIGNED_IN_RUNS, state.SET_COOKIE):
        st.session_state.pop(key, None)


def _submit_login() -> None:
    """The form's callback (it runs before the script, so a successful login draws no stale form)."""
    username = st.session_state.get(USERNAME_KEY, "")
    password = st.session_state.get(PASSWORD_KEY, "")
    st.session_state[PASSWORD_KEY] = ""  # the password is not kept in the session
    result = auth.authenticate(resources.engine(), username, password)
    if result.ok:
        _signed_in(result.user)
        st.session_state[state.SET_COOKIE] = True
        st.session_state.pop(LOGIN_MESSAGE_KEY, None)
    else:
        st.session_state[state.AUTH_STATUS] = False
        st.session_state[LOGIN_MESSAGE_KEY] = result.message or auth.FAILED_LOGIN_MESSAGE


def _login_form() -> None:
    with st.form(LOGIN_FORM_KEY):
        st.subheader("Log in to superintendent")
        st.text_input("User name", key=USERNAME_KEY, autocomplete="username")
        st.text_input("Password", type="password", key=PASSWORD_KEY, autocomplete="current-password")
        st.form_submit_button("Log in", on_click=_submit_login)
    if (message := st.session_state.get(LOGIN_MESSAGE_KEY)) is not None:
        st.error(message)
    elif st.session_state.get(state.AUTH_STATUS) is False:
        st.error(auth.FAILED_LOGIN_MESSAGE)


def _account(username: str) -> User | None:
    with session_scope(resources.engine(), write=False) as s:
        return auth.signed_in_account(s, username)


def _from_cookie(authenticator: stauth.Authenticate) -> User | None:
    """The account a valid remember-me cookie names, if it may still sign in; a cookie of one that may not is deleted."""
    token = authenticator.cookie_controller.get_cookie()
    if not token:
        return None
    user = _account(token["username"])
    if user is None:
        st.session_state[LOGIN_MESSAGE_KEY] = _why_refused(token["username"])
        authenticator.cookie_controller.delete_cookie()
        st.session_state[state.AUTH_LOGGED_OUT] = True  # this session's request still carries the cookie: ignore it from now on
    return user


def _why_refused(username: str) -> str:
    with session_scope(resources.engine(), write=False) as s:
        return auth.refusal_message(s, username)


def _refused(username: str) -> None:
    """The signed-in account may no longer sign in: forget it, say why in one line, offer the form again."""
    _forget_sign_in()
    st.session_state[state.AUTH_STATUS] = None
    st.session_state[LOGIN_MESSAGE_KEY] = f"You were signed out. {_why_refused(username)}"
    _login_form()


def current_user() -> CurrentUser | None:
    """Show the login form if needed; return the signed-in user (checked against the database) or None."""
    authenticator = _authenticator()
    if st.session_state.get(state.AUTH_STATUS) is True:
        username = st.session_state[state.AUTH_USERNAME]
        user = _account(username)
        if user is None:  # deactivated, locked or demoted to no role since signing in
            authenticator.logout(location="unrendered")  # deletes the cookie too
            _refused(username)
            return None
    else:
        user = _from_cookie(authenticator)
        if user is None:
            _login_form()
            return None
        _signed_in(user)
    if st.session_state.pop(state.SET_COOKIE, False):
        authenticator.cookie_controller.set_cookie()  # after a login by the form; never followed by st.rerun()
    current = CurrentUser.of(user)
    st.session_state[state.USER] = current
    st.session_state[state.SIGNED_IN_RUNS] = st.session_state.get(state.SIGNED_IN_RUNS, 0) + 1
    with st.sidebar:
        st.caption(f"Signed in as **{current.display_name}** ({current.role})")
        authenticator.logout(button_name="Log out", location="sidebar", key="logout-button", callback=lambda _event: _forget_sign_in())
    return current


def get() -> CurrentUser:
    """The current user, re-read from the database; stops the page if nobody (allowed) is logged in.

    The router checks this too, but a page file can also run on its own (Streamlit
    runs files in ``pages/`` directly before the router has run once), so each page checks again.
    """
    known = st.session_state.get(state.USER)
    if known is None:
        user = current_user()  # opened on its own: the login form, here
    elif (found := _account(known.username)) is not None:
        user = CurrentUser.of(found)
        st.session_state[state.USER] = user
    else:
        # Changed since the router read it in this same run: the router built this run's authenticator (one
        # per run: its cookie component has a fixed key), so the cookie is deleted at the next run, not here.
        _refused(known.username)
        user = None
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
    problems = first_admin_problems(username, password, repeat)
    for problem in problems:
        st.error(problem)
    if problems:
        return
    try:
        with session_scope(resources.engine()) as s:
            if auth.count_people(s) > 0:
                st.error("An admin exists already; log in instead.")
                return
            admin = auth.create_user(s, username, password, "admin", display_name=display)
    except SuperintendentError as exc:
        st.error(str(exc))
        return
    if demo:
        with st.spinner("Loading the demo projects..."):
            load_demo(resources.engine())
    st.session_state[state.FIRST_ADMIN_DONE] = True
    _signed_in(admin)  # signed in at once; the next run (the router's) sets the remember-me cookie
    st.session_state[state.SET_COOKIE] = True
    st.rerun()


def first_admin_problems(username: str, password: str, repeat: str) -> list[str]:
    """Every problem of the welcome form at once (user name, password, repeat), each a sentence; empty when all is well."""
    problems = []
    for check, value in ((auth.normalise_username, username), (auth.check_password, password)):
        try:
            check(value)
        except SuperintendentError as exc:
            problems.append(str(exc)[:1].upper() + str(exc)[1:] + ".")
    if password != repeat:
        problems.append("The two passwords differ.")
    return problems
