"""Login glue: the login form, the server-side session of each sign-in, the first run.

Who may sign in is decided in one place, :func:`superintendent.auth.authenticate`
(password, lockout, deactivation), called by this module's login form. A
sign-in is then a server-side session (:mod:`superintendent.sessions`): this
browser tab keeps the session's id in its session state, and the browser keeps
a random token in an HttpOnly cookie, which the app's own route sets
(:mod:`superintendent.app.session_cookie`); a later page load signs in by that
cookie. Every run reads the session and its account again
(:func:`superintendent.sessions.resume`, :func:`superintendent.auth.may_log_in`):
a logout, a password reset, a deactivation or an admin's "Sign out everywhere"
(on any replica) signs this tab out at its next click, and a copy of the cookie
is worth nothing from then on. streamlit-authenticator is not used any more
(docs/configuration.md, "Sessions").
"""

from __future__ import annotations

from dataclasses import dataclass

import streamlit as st

from superintendent import auth, sessions
from superintendent.app import render, resources, session_cookie, state
from superintendent.demo import load_demo
from superintendent.store import User, session_scope
from superintendent.validation import SuperintendentError

LOGIN_FORM_KEY = "login-form"
USERNAME_KEY = "login-username"
PASSWORD_KEY = "login-password"
LOGOUT_KEY = "logout-button"
LOGIN_MESSAGE_KEY = "sp_login_message"  # the one line the sign-in form shows above itself (why the last try failed, why signed out)
HAND_OVER_KEY = "sp-session-hand-over"  # the components that set and clear the cookie (drawn at most once per run each)
CLEAR_KEY = "sp-session-clear"
ENDED_COOKIE_MESSAGE = "Your sign-in on this browser has ended. Log in again."


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


def _rules() -> sessions.Rules:
    return sessions.Rules.of(resources.settings())


def _signed_in(user: User, session_id: int, handoff: str | None = None) -> None:
    st.session_state[state.AUTH_STATUS] = True
    st.session_state[state.AUTH_USERNAME] = user.username
    st.session_state[state.SESSION] = session_id
    if handoff is not None:
        st.session_state[state.HANDOFF] = handoff
    st.session_state.pop(state.CLEAR_COOKIE, None)


def _start_session(user: User) -> None:
    """``user`` just proved their password: open a session; this run hands the browser its cookie."""
    with session_scope(resources.engine()) as s:
        started = sessions.start(s, user.id, _rules())
    _signed_in(user, started.session_id, started.handoff)


def _forget_sign_in() -> None:
    for key in (state.USER, state.SIGNED_IN_RUNS, state.SESSION, state.HANDOFF):
        st.session_state.pop(key, None)
    st.session_state[state.AUTH_STATUS] = None


def _drop_cookie(ended: int | None) -> None:
    """Sign-in ``ended`` is over: ignore the cookie this tab's request carried, and have the browser drop its cookie
    (unless another tab has signed in since: the route keeps a cookie of another live sign-in)."""
    st.session_state[state.IGNORED_COOKIE] = session_cookie.fingerprint(session_cookie.browser_token())
    st.session_state[state.CLEAR_COOKIE] = (session_cookie.new_nonce(), ended)


def _submit_login() -> None:
    """The form's callback (it runs before the script, so a successful login draws no stale form)."""
    username = st.session_state.get(USERNAME_KEY, "")
    password = st.session_state.get(PASSWORD_KEY, "")
    st.session_state[PASSWORD_KEY] = ""  # the password is not kept in the session
    result = auth.authenticate(resources.engine(), username, password)
    if result.ok:
        _start_session(result.user)
        st.session_state.pop(LOGIN_MESSAGE_KEY, None)
    else:
        st.session_state[state.AUTH_STATUS] = False
        st.session_state[LOGIN_MESSAGE_KEY] = result.message or auth.FAILED_LOGIN_MESSAGE


def _log_out() -> None:
    """The "Log out" button's callback: the session ends in the database first, then the browser drops its cookie."""
    session_id = st.session_state.get(state.SESSION)
    if session_id is not None:
        with session_scope(resources.engine()) as s:
            sessions.end(s, session_id, sessions.EndReason.logged_out)
    _forget_sign_in()
    _drop_cookie(session_id)


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
    if (clear := st.session_state.get(state.CLEAR_COOKIE)) is not None:
        session_cookie.clear(*clear, key=CLEAR_KEY)


def _why_refused(username: str) -> str:
    with session_scope(resources.engine(), write=False) as s:
        return auth.refusal_message(s, username)


def _end_refused(found: sessions.Found) -> None:
    """A live session whose account may not sign in now (locked, deactivated behind the app's back): end it."""
    if found.live:
        with session_scope(resources.engine()) as s:
            sessions.end(s, found.session_id, sessions.EndReason.refused)


def _live(found: sessions.Found | None) -> bool:
    return found is not None and found.live and auth.may_log_in(found.user)


def _from_cookie() -> sessions.Found | None:
    """The sign-in the browser's cookie names, if it is live and its account may sign in; a dead cookie is dropped."""
    token = session_cookie.browser_token()
    if not token or session_cookie.fingerprint(token) == st.session_state.get(state.IGNORED_COOKIE):
        return None
    found = sessions.resume(resources.engine(), _rules(), token=token)
    if _live(found):
        _signed_in(found.user, found.session_id)
        return found
    if found is None:
        message = ENDED_COOKIE_MESSAGE
    elif not auth.may_log_in(found.user):
        _end_refused(found)
        message = _why_refused(found.user.username)
    else:
        message = f"Your sign-in on this browser has ended: {sessions.why(found.ended, _rules())}. Log in again."
    st.session_state[LOGIN_MESSAGE_KEY] = message
    _drop_cookie(found.session_id if found is not None else None)
    return None


def _this_sign_in() -> sessions.Found | None:
    """This tab's sign-in, read again. If it ended, or its account may not sign in now: forget it, say why in one
    line, offer the form again (and have the browser drop the cookie), and return None."""
    session_id = st.session_state.get(state.SESSION)
    found = sessions.resume(resources.engine(), _rules(), session_id=session_id) if session_id is not None else None
    if _live(found):
        return found
    username = found.user.username if found is not None else st.session_state.get(state.AUTH_USERNAME, "")
    if found is not None and not auth.may_log_in(found.user):
        _end_refused(found)
        message = f"You were signed out. {_why_refused(username)}"
    elif found is not None:
        message = f"You were signed out: {sessions.why(found.ended, _rules())}. Log in again."
    else:
        message = "You were signed out. Log in again."
    _forget_sign_in()
    _drop_cookie(session_id)
    st.session_state[LOGIN_MESSAGE_KEY] = message
    _login_form()
    return None


def _hand_over_cookie(found: sessions.Found) -> None:
    """Right after a sign-in by the form, until the browser holds its cookie: have the page fetch it."""
    handoff = st.session_state.get(state.HANDOFF)
    if handoff is None:
        return
    if found.cookie_issued:
        st.session_state.pop(state.HANDOFF, None)
    else:
        session_cookie.hand_over(handoff, key=HAND_OVER_KEY)


def current_user() -> CurrentUser | None:
    """Show the login form if needed; return the signed-in user (session and account checked in the database) or None."""
    if st.session_state.get(state.AUTH_STATUS) is True and st.session_state.get(state.SESSION) is not None:
        found = _this_sign_in()
        if found is None:
            return None
    else:
        found = _from_cookie()
        if found is None:
            _login_form()
            return None
    current = CurrentUser.of(found.user)
    st.session_state[state.USER] = current
    st.session_state[state.SIGNED_IN_RUNS] = st.session_state.get(state.SIGNED_IN_RUNS, 0) + 1
    with st.sidebar:
        st.caption(f"Signed in as **{render.text(current.display_name)}** ({current.role})")
        st.button("Log out", key=LOGOUT_KEY, on_click=_log_out)
        _hand_over_cookie(found)  # in the sidebar: an element of no height first in the main area would shift the page
    return current


def get() -> CurrentUser:
    """The current user, re-read from the database; stops the page if nobody (allowed) is logged in.

    The router checks this too, but a page file can also run on its own (Streamlit
    runs files in ``pages/`` directly before the router has run once), so each page checks again.
    """
    known = st.session_state.get(state.USER)
    if known is None:
        user = current_user()  # opened on its own: the login form, here
    elif (found := _this_sign_in()) is not None:  # ended, or its account refused, since the router read it: the form
        user = CurrentUser.of(found.user)
        st.session_state[state.USER] = user
    else:
        user = None
    if user is None:
        st.stop()
    return user


def require(action: str, page: str = "") -> CurrentUser:
    """The current user if their role allows ``action``; otherwise the page (titled ``page``) shows nothing of itself."""
    user = get()
    if not user.can(action):
        st.error(f"{f'The {page} page' if page else 'This page'} is not open to {user.role}s; ask an admin if you need it.")
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
    _start_session(admin)  # signed in at once; the next run (the router's) hands the browser its cookie
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
