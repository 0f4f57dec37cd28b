"""Model: every retrain, the latest figures, the schedule."""

import streamlit as st

from superintendent.app import login, model_view

user = login.require("view_model")
st.title("Model")
model_view.render_page(user)
