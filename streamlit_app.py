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
from superintendent.app import errors, login, resources, session_cookie, tcp_nodelay
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

    if first_run:
        st.navigation([st.Page(login.first_run_form, title="Welcome", url_path="welcome")], position="hidden").run()
        st.stop()
    if user is None:
        st.navigation([st.Page(lambda: None, title="Log in", url_path="login")], position="hidden").run()
        st.stop()

    errors.raise_if_asked("page")  # test only (SUPERINTENDENT_TEST_FAULT=page): proves the error boundary
    pages = [
        st.Page("pages/label.py", title="Label", icon=":material/label:", default=True),
        st.Page("pages/progress.py", title="Progress", icon=":material/monitoring:"),
        st.Page("pages/model.py", title="Model", icon=":material/model_training:"),
    ]
    if user.can("review"):
        pages.append(st.Page("pages/review.py", title="Review", icon=":material/fact_check:"))
    if user.can("admin"):
        pages.append(st.Page("pages/admin.py", title="Admin", icon=":material/admin_panel_settings:"))
    pages.append(st.Page("pages/account.py", title="My account", icon=":material/account_circle:", url_path="account"))
    with database_trouble_shown():
        st.navigation(pages).run()


if __name__ == "__main__":  # a page run
    _route()
else:  # imported by `streamlit run` (uvicorn) to serve the app
    tcp_nodelay.install()  # answers are not held back ~40 ms by Nagle's algorithm (see the module)
    app = st.App(__file__, routes=session_cookie.ROUTES + api.routes(resources.engine, resources.settings))  # the HTTP API at /api/v1
