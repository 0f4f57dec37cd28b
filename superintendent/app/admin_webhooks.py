"""Admin, Webhooks tab: a project's hooks (add one, its secret shown once; pause, resume, delete) and its delivery log.

Every change goes through :func:`superintendent.app.guard.guarded_action`
(the account re-checked in the change's transaction); the hooks' rules and
statements are :mod:`superintendent.webhooks`'. The new hook's secret is kept
in this browser session only until the admin hides it, and is never shown again.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import TypeVar

import pandas as pd
import streamlit as st
from sqlmodel import Session

from superintendent import audit, webhooks
from superintendent.app import render, resources
from superintendent.app.guard import Note, guarded_action
from superintendent.app.login import CurrentUser
from superintendent.app.widgets import all_projects
from superintendent.store import Project, session_scope
from superintendent.validation import SuperintendentError

T = TypeVar("T")
PICK = "admin-webhooks-project"
ADDED = "admin-webhooks-added"  # how many hooks this session added: the URL box's key, so it is empty after each
SECRET = "admin-webhooks-secret"  # (project id, hook id, url, secret) of the hook just added, until hidden
FLASH = "admin-webhooks-flash"  # the confirmation of the last change, shown after the rerun that redraws the tab
PERMISSION = "manage_projects"
EVENT_HELP = {
    "annotation.created": "a labeller stored a label (new or changed)",
    "item.completed": "an item got all the annotations the project wants",
    "retrain.finished": "a model run ended (succeeded, skipped or failed)",
    "project.completed": "no item is left to label",
}


def _when(value: dt.datetime | None) -> str:
    return "" if value is None else value.strftime("%Y-%m-%d %H:%M:%S")


def webhooks_tab(user: CurrentUser) -> None:
    projects = all_projects()
    if not projects:
        st.info("No projects yet.")
        return
    project = st.selectbox("Project", projects, format_func=lambda p: p.name, key=PICK)
    st.caption("A webhook POSTs a signed JSON body to your URL when something happens in this project; "
               "see docs/webhooks.md for the bodies and how to check the signature.")
    if (done := st.session_state.pop(FLASH, None)) is not None:
        st.success(done)
    _new_secret(project)
    with session_scope(resources.engine(), write=False) as s:
        hooks = webhooks.list_hooks(s, project)
        log = webhooks.recent_deliveries(s, project)
        pending = webhooks.pending_count(s, project)
    st.subheader("Webhooks of this project")
    for hook in hooks:
        _hook_row(user, project, hook)
    with st.expander("Add a webhook", expanded=not hooks):
        _add_form(user, project)
    st.subheader("Delivery log")
    _delivery_log(log, pending)


def _new_secret(project: Project) -> None:
    shown = st.session_state.get(SECRET)
    if not shown or shown[0] != project.id:
        return
    _, _, url, secret = shown
    with st.container(border=True):
        st.success(f"Webhook added for {render.text(url)}. Copy its signing secret now: it is shown only this once.")
        st.code(secret, language=None)
        if st.button("I have copied the secret: hide it", key="admin-webhooks-hide-secret"):
            st.session_state.pop(SECRET, None)
            st.rerun()


def _act(user: CurrentUser, change: Callable[[Session], T], done: str | None, note: Note) -> tuple[bool, T | None]:
    """The change, checked and in one transaction with its audit entry: (True, its result), ``done`` kept to show
    after the rerun; or (False, None) with the reason shown."""
    try:
        result = guarded_action(user, PERMISSION, change, audit=lambda _: note)
    except SuperintendentError as exc:
        st.error(render.text(exc))
        return False, None
    if done:
        st.session_state[FLASH] = done
    return True, result


def _note(action: audit.AuditAction, project: Project, url: str, **details: object) -> Note:
    return Note(action, project.name, {"url": url, **details})


def _add_form(user: CurrentUser, project: Project) -> None:
    added = st.session_state.get(ADDED, 0)  # a new box after each hook added; kept on a refusal, to correct rather than retype
    with st.form("admin-webhooks-add", border=False):
        url = st.text_input("URL", placeholder="https://example.com/hooks/labels", key=f"admin-webhooks-url-{added}",
                            help="http:// or https://; it receives a POST for each event chosen below")
        events = st.multiselect("Events", webhooks.EVENTS, default=list(webhooks.EVENTS), key="admin-webhooks-events",
                                help="  \n".join(f"**{e}**: {text}" for e, text in EVENT_HELP.items()))
        if st.form_submit_button("Add webhook"):
            ok, created = _act(user, lambda s: webhooks.create_hook(s, project, url, events, created_by=user.id), None,
                               _note(audit.AuditAction.webhook_create, project, url, events=list(events)))
            if ok:
                st.session_state[SECRET] = (project.id, created.hook.id, created.hook.url, created.secret)
                st.session_state[ADDED] = added + 1
                st.rerun()


def _hook_row(user: CurrentUser, project: Project, hook: webhooks.HookView) -> None:
    with st.container(border=True):
        text, toggle, delete = st.columns([6, 1.3, 1.3], vertical_alignment="center")
        text.markdown(f"**{render.text(hook.url)}**  \n{render.text(', '.join(hook.events))}")
        state = {"active": ":green[active]", "paused": ":orange[paused by an admin]"}.get(hook.state, ":red[paused: failing]")
        text.caption(f"{state} · added {_when(hook.created_at)} UTC"
                     + (f" · {hook.failures} given up in a row" if hook.failures else ""))
        if hook.paused_reason:
            text.warning(render.text(hook.paused_reason))
        if hook.state == "active":
            if toggle.button("Pause", key=f"admin-webhooks-pause-{hook.id}", help="Send nothing and enqueue nothing until resumed"):
                if _act(user, lambda s: webhooks.pause_hook(s, project, hook.id), f"Webhook {render.text(hook.url)} paused.",
                        _note(audit.AuditAction.webhook_pause, project, hook.url))[0]:
                    st.rerun()
        elif toggle.button("Resume", key=f"admin-webhooks-resume-{hook.id}", type="primary",
                           help="Active again: deliveries still pending are sent at the worker's next round"):
            if _act(user, lambda s: webhooks.resume_hook(s, project, hook.id), f"Webhook {render.text(hook.url)} resumed.",
                    _note(audit.AuditAction.webhook_resume, project, hook.url))[0]:
                st.rerun()
        with delete.popover("Delete"):
            st.write("Delete this webhook and its delivery log?")
            if st.button("Delete webhook", key=f"admin-webhooks-delete-{hook.id}", type="primary"):
                if _act(user, lambda s: webhooks.delete_hook(s, project, hook.id), f"Webhook {render.text(hook.url)} deleted.",
                        _note(audit.AuditAction.webhook_delete, project, hook.url))[0]:
                    st.rerun()


def _delivery_log(log: list[webhooks.DeliveryView], pending: int) -> None:
    if not log:
        st.info("Nothing sent yet: events appear here as they happen.")
        return
    st.caption(f"The latest {len(log)} deliveries, newest first; {pending} waiting to be sent. Times in UTC.")
    st.dataframe(pd.DataFrame([{
        "created": _when(d.created_at), "event": d.event, "to": d.url, "status": d.status, "attempts": d.attempts,
        "response": "" if d.response_code is None else str(d.response_code), "error": d.last_error or "",
        "last try": _when(d.last_attempt_at), "next try": _when(d.next_attempt_at) if d.status == "pending" else "",
        "delivered": _when(d.delivered_at), "event id": d.event_id,
    } for d in log]), hide_index=True, width="stretch")
