"""Model: every retrain, the latest figures, the schedule."""

import streamlit as st

from superintendent.app import model_view, navigation

user = navigation.require("model")
st.title("Model")
model_view.render_page(user)
