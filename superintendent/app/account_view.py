"""My account: the signed-in person's API tokens (create, shown once; list; revoke) and "Sign out everywhere"."""

from __future__ import annotations

import pandas as pd
import streamlit as st
from sqlmodel import Session

from superintendent import audit, auth, reports, tokens
from superintendent.app import render, resources
from superintendent.app.guard import Note, guarded_action
from superintendent.app.login import CurrentUser
from superintendent.store import session_scope
from superintendent.validation import SuperintendentError

ACT = "label"  # every role may label: the guard's check is "this account may still act", as for every page of theirs
LIFETIMES = {30: "30 days", 90: "90 days", 365: "1 year", None: "never (until revoked)"}
STATES = {"active": "active", "revoked": "revoked", "expired": "expired"}


def _when(moment) -> str:  # noqa: ANN001 - a datetime or None
    return reports.readable_time(moment, st.context.timezone)[:16] if moment is not None else "never"


def _new_token(user: CurrentUser) -> None:
    with st.form("account-token-form", clear_on_submit=True):
        st.write("**New token**")
        c1, c2 = st.columns([2, 1])
        name = c1.text_input("What it is for", key="account-token-name", placeholder="e.g. labelling script", max_chars=tokens.MAX_NAME)
        days = c2.selectbox("Expires after", list(LIFETIMES), format_func=LIFETIMES.get, key="account-token-days")
        if not st.form_submit_button("Create token", type="primary"):
            return
    try:
        created = guarded_action(user, ACT, lambda s: tokens.create(s, user.id, name, expires_days=days),
                                 audit=lambda c: Note(audit.AuditAction.api_key_create, user.username,
                                                      {"name": name, "starts_with": c.prefix, "expires_days": days}))
    except SuperintendentError as exc:
        st.error(render.text(exc))
        return
    st.success("Your new token is below. Copy it now (point at it: a copy button appears at its right). It is shown only "
               "this once; the list keeps only its first characters.", icon=":material/key:")
    st.code(created.token, language=None)


def _token_list(user: CurrentUser) -> None:
    with session_scope(resources.engine(), write=False) as s:
        listed = tokens.list_tokens(s, user.id)
    if not listed:
        st.info("You have no API tokens yet.")
        return
    st.dataframe(pd.DataFrame([{"Name": t.name, "Starts with": f"{t.prefix}...", "Created": _when(t.created_at),
                                "Expires": _when(t.expires_at), "Last used": _when(t.last_used_at), "State": STATES[t.state()]}
                               for t in listed]), hide_index=True, width="stretch", key="account-token-table")
    active = [t for t in listed if t.state() == "active"]
    if not active:
        return
    c1, c2 = st.columns([3, 1], vertical_alignment="bottom")
    chosen = c1.selectbox("Token to revoke", active, key="account-token-revoke-pick",
                          format_func=lambda t: f"{t.name} ({t.prefix}..., created {_when(t.created_at)})")
    if c2.button("Revoke", key="account-token-revoke", help="The token stops working at once, for good."):
        try:
            guarded_action(user, ACT, lambda s: tokens.revoke(s, user.id, chosen.token_id),
                           audit=lambda _: Note(audit.AuditAction.api_key_revoke, user.username,
                                                {"name": chosen.name, "starts_with": chosen.prefix}))
        except SuperintendentError as exc:
            st.error(render.text(exc))
            return
        st.toast(f"Token {render.text(chosen.name)} revoked.")
        st.rerun()


def _sign_out_everywhere(user: CurrentUser) -> None:
    st.subheader("Sign-ins")
    st.caption("Signed in on a computer you no longer use? End every sign-in of your account, this one too: each browser "
               "shows the sign-in form at its next click. Your API tokens keep working; revoke them above.")
    if st.button("Sign out everywhere", key="account-sign-out-everywhere"):
        def sign_out(s: Session) -> int:
            return auth.sign_out_everywhere(s, user.username)
        guarded_action(user, ACT, sign_out, audit=lambda ended: Note(audit.AuditAction.user_sign_out_everywhere, user.username,
                                                                  {"ended": ended, "by": "the account itself"}))
        st.rerun()


def render_page(user: CurrentUser) -> None:
    """The page, for any signed-in user (``login.get()`` has just checked the account)."""
    st.subheader("API tokens")
    st.caption("A personal access token lets a script use the HTTP API (/api/v1) as you, with your role and projects "
               "of the moment: send it as `Authorization: Bearer <token>`. The endpoints: [/api/v1/docs](/api/v1/docs).")
    _new_token(user)
    _token_list(user)
    _sign_out_everywhere(user)
