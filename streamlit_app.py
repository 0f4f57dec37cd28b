"""superintendent's web app: `streamlit run streamlit_app.py`.

A router only: first run, login, then the pages this user's role may see.

This file is read twice. `streamlit run` finds the ``st.App`` below and serves
it (Streamlit's own routes, the sign-in cookie's route,
:mod:`superintendent.app.session_cookie`, which sets the HttpOnly cookie, and the
HTTP API at ``/api/v1``, :mod:`superintendent.api`); and
Streamlit runs this file as ``__main__`` for every page run (AppTest too),
which takes the router branch.
"""

import streamlit as st

from superintendent import api
from superintendent.app import errors, login, navigation, resources, session_cookie, tcp_nodelay
from superintendent.app.errors import database_trouble_shown


def _route() -> None:
    errors.install_error_boundary()  # no traceback reaches a browser: a one-line message with an error id, logged here
    st.set_page_config(page_title="superintendent", page_icon=":material/label:", layout="wide")
    first_run, user = False, None
    with database_trouble_shown() as start:
        resources.engine()
        resources.ensure_scheduler()
        first_run = login.first_run_needed()
        user = None if first_run else login.current_user()
    if start.failed:
        st.stop()

    if first_run:  # at every page's address: a link or bookmark opens the page asked for once the form is done
        navigation.everywhere(login.first_run_form, "Welcome").run()
        st.stop()
    if user is None:
        navigation.everywhere(lambda: None, "Log in").run()  # the login form is drawn already (login.current_user)
        st.stop()

    errors.raise_if_asked("page")  # test only (SUPERINTENDENT_TEST_FAULT=page): proves the error boundary
    with database_trouble_shown():
        navigation.for_user(user).run()


if __name__ == "__main__":  # a page run
    _route()
else:  # imported by `streamlit run` (uvicorn) to serve the app
    tcp_nodelay.install()  # answers are not held back ~40 ms by Nagle's algorithm (see the module)
    navigation.router_only()  # pages/ is the router's: never Streamlit's own listing of its files, even on a first visit
    app = st.App(__file__, routes=session_cookie.ROUTES + api.routes(resources.engine, resources.settings))  # the HTTP API at /api/v1
