"""Label: one item after another."""

import streamlit as st

from superintendent.app import label_view, navigation

user = navigation.require("label")
st.title("Label")
label_view.render_page(user)
