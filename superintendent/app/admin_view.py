"""The Admin page's body: one tab per job, each in its own module.

Every action goes through :mod:`superintendent.app.guard`: the account is
re-read and checked when the action happens, and the action is written to
the audit log (:mod:`superintendent.audit`), in the action's own
transaction where it has one (projects, users), in a small one right after
success otherwise (import, export). The page itself is shown only after
``login.require("admin")`` (in ``pages/admin.py``) re-read the account.
"""

from __future__ import annotations

import streamlit as st

from superintendent.app.admin_export import audit_tab, export_tab
from superintendent.app.admin_projects import projects_tab
from superintendent.app.admin_upload import upload_tab
from superintendent.app.admin_users import users_tab
from superintendent.app.admin_webhooks import webhooks_tab
from superintendent.app.login import CurrentUser


def render_page(user: CurrentUser) -> None:
    """The page's tabs, for a user ``login.require("admin")`` has just checked against the database."""
    projects, upload, users, export, hooks, log = st.tabs(["Projects", "Upload data", "Users", "Export labels", "Webhooks", "Audit log"])
    with projects:
        projects_tab(user)
    with upload:
        upload_tab(user)
    with users:
        users_tab(user)
    with export:
        export_tab(user)
    with hooks:
        webhooks_tab(user)
    with log:
        audit_tab()
