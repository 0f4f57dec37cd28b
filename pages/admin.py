"""Admin: projects, uploads, users, exports (admins only; checked on the server)."""

import streamlit as st

from superintendent.app import navigation

user = navigation.require("admin")  # before anything of the page is imported or drawn

from superintendent.app import admin_view  # noqa: E402

st.title("Admin")
admin_view.render_page(user)
