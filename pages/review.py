"""Review: finished items, who labelled them what, and corrections (admins and reviewers; checked on the server)."""

import streamlit as st

from superintendent.app import navigation

user = navigation.require("review")  # before anything of the page is imported or drawn

from superintendent.app import review_view  # noqa: E402

st.title("Review")
review_view.render_page(user)
