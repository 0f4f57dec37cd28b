"""Progress: labelled / total, per label, per labeller, over time."""

import streamlit as st

from superintendent.app import login, progress_view

user = login.require("view_progress")
st.title("Progress")
progress_view.render_page(user)
