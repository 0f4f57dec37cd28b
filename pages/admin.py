"""Admin: projects, uploads, users, exports (admins only; checked on the server)."""

import streamlit as st

from superintendent.app import admin_view, login

user = login.require("admin")
st.title("Admin")
admin_view.render_page(user)
