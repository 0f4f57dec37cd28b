"""Progress: labelled / total, per label, per labeller, over time."""

import streamlit as st

from superintendent.app import navigation, progress_view

user = navigation.require("progress")
st.title("Progress")
progress_view.render_page(user)
