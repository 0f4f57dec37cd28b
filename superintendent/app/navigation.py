"""The app's pages and who may open them: the one table the router draws its navigation from.

Every page has an address (``/progress``, ``/admin``, ...), and a person can arrive at any of them: a bookmark, a
link in a message, a tab left open while the server restarted. So

* signed out (or before the first admin exists), every address draws the login form (or the welcome form), and
  after signing in the address opens the page asked for, not "Page not found";
* a page the user's role may not open is still known at its address, hidden from the sidebar, and says so
  (:func:`superintendent.app.login.require`, which the page files call too);
* Streamlit's own listing of the files in ``pages/`` (shown before any session has run the router, e.g. to the
  first tab that reconnects after a restart, with Streamlit running a page file without the router) is switched
  off when the server starts: :func:`router_only`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import streamlit as st
from streamlit.navigation.page import StreamlitPage
from streamlit.runtime.pages_manager import PagesManager

from superintendent.app import login
from superintendent.app.login import CurrentUser


@dataclass(frozen=True)
class PageSpec:
    file: str
    title: str
    icon: str
    url_path: str
    permission: str | None = None  # None: every signed-in user


PAGES = (
    PageSpec("pages/label.py", "Label", ":material/label:", "label", "label"),  # the first page: the app's address "/"
    PageSpec("pages/progress.py", "Progress", ":material/monitoring:", "progress", "view_progress"),
    PageSpec("pages/model.py", "Model", ":material/model_training:", "model", "view_model"),
    PageSpec("pages/review.py", "Review", ":material/fact_check:", "review", "review"),
    PageSpec("pages/admin.py", "Admin", ":material/admin_panel_settings:", "admin", "admin"),
    PageSpec("pages/account.py", "My account", ":material/account_circle:", "account"),
)
_BY_PATH = {spec.url_path: spec for spec in PAGES}


def require(url_path: str) -> CurrentUser:
    """For the page at ``url_path``, first thing: the signed-in user (re-read from the database) if their role may open
    it; otherwise the page shows the login form or a refusal and stops. The page files call this (Streamlit can run a
    page file on its own), and so does the router's stand-in for a page the user may not open."""
    spec = _BY_PATH[url_path]
    return login.require(spec.permission, page=spec.title) if spec.permission else login.get()


def router_only() -> None:
    """Serve the pages through the router alone, from the first visit on (call once, as the server starts).

    Until a session calls ``st.navigation``, Streamlit treats ``pages/`` as a folder of pages of its own: it lists
    the file names in the sidebar and runs a file asked for by its address without the router. Calling
    ``st.navigation`` switches that off for the whole server; this does it before anyone arrives.
    """
    PagesManager.uses_pages_directory = False


def everywhere(draw: Callable[[], None], title: str) -> StreamlitPage:
    """A navigation in which the app's address and every page's address draw ``draw`` (a form), nothing in the sidebar."""
    pages = [st.Page(draw, title=title, url_path="start", default=True)]
    pages += [st.Page(draw, title=title, url_path=spec.url_path, visibility="hidden") for spec in PAGES[1:]]
    return st.navigation(pages, position="hidden")


def for_user(user: CurrentUser) -> StreamlitPage:
    """The pages ``user`` may open, in the sidebar; the others at their addresses only, saying they are not open."""
    pages = []
    for k, spec in enumerate(PAGES):
        if spec.permission is None or user.can(spec.permission):
            pages.append(st.Page(spec.file, title=spec.title, icon=spec.icon, url_path=spec.url_path, default=k == 0))
        else:
            pages.append(st.Page(_refusal(spec), title=spec.title, icon=spec.icon, url_path=spec.url_path,
                                 visibility="hidden"))
    return st.navigation(pages)


def _refusal(spec: PageSpec) -> Callable[[], None]:
    def refused() -> None:
        require(spec.url_path)

    refused.__name__ = f"{spec.url_path}_refused"
    return refused
