"""My account: API tokens and "Sign out everywhere", for every signed-in user."""

import streamlit as st

from superintendent.app import account_view, navigation

user = navigation.require("account")
st.title("My account")
account_view.render_page(user)
