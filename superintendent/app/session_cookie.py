"""The sign-in cookie: set and cleared by one HTTP route of the app itself, so that it can be HttpOnly.

Streamlit draws pages over a websocket, which cannot set a cookie, and a
cookie written by page JavaScript (as streamlit-authenticator's
CookieController does) can never be HttpOnly. So the app serves one route of
its own next to Streamlit's (``streamlit_app.py`` builds the ``st.App`` with
:data:`ROUTES`):

* ``POST /auth/session`` with the header ``X-Superintendent-Handoff: <one-time
  token>`` trades the token (:func:`superintendent.sessions.issue_cookie`) for
  the session's own token and answers with ``Set-Cookie: <cookie_name>=...;
  HttpOnly; SameSite=Lax; Path=/; Max-Age=<the session's remaining lifetime>``,
  plus ``Secure`` when ``cookie_secure`` is on.
* ``DELETE /auth/session`` with the header ``X-Superintendent-Ended: <session
  id>`` clears the cookie, unless it names a live session other than that one
  (a tab whose sign-in ended must not drop the cookie another tab of the same
  browser has just signed in with). It ends nothing: "Log out" ends the
  session in the database before the page asks for the cookie to go.

Both need the header ``X-Superintendent-Session`` and refuse a request a
browser marks cross-site (``Sec-Fetch-Site``): a page of another site can
neither send a custom header without a CORS preflight (this route grants
none) nor pass as same-origin. The page calls the route from a tiny
component (:func:`hand_over`, :func:`clear`) right after a sign-in, or after
"Log out"; the page's scripts only ever see the one-time handoff, never the
session's token. Every later page load sends the cookie with Streamlit's
websocket request, where :func:`browser_token` reads it (``st.context.cookies``).
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import secrets

import streamlit as st
from sqlalchemy.engine import Engine
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from superintendent import sessions
from superintendent.app import resources
from superintendent.config import Settings
from superintendent.store import session_scope, utcnow

PATH = "/auth/session"
CSRF_HEADER = "X-Superintendent-Session"
HANDOFF_HEADER = "X-Superintendent-Handoff"
ENDED_HEADER = "X-Superintendent-Ended"
_SAME_SITE_FETCHES = ("same-origin", "none")  # Sec-Fetch-Site values this route accepts (absent: an old browser, or no browser)

# Runs in the page (a Streamlit v2 component, no iframe). Posts once per nonce; the handoff is the only secret it sees.
_JS = """
export default function (component) {
  const { data } = component;
  if (!data || !data.nonce) return;
  const sent = (window.__superintendentSession = window.__superintendentSession || new Set());
  if (sent.has(data.nonce)) return;
  sent.add(data.nonce);
  const headers = { "%(csrf)s": "1" };
  if (data.handoff) headers["%(handoff)s"] = data.handoff;
  if (data.ended) headers["%(ended)s"] = String(data.ended);
  fetch(data.path, { method: data.method, headers, credentials: "same-origin", cache: "no-store" })
    .then((response) => { if (!response.ok && response.status >= 500) sent.delete(data.nonce); })
    .catch(() => sent.delete(data.nonce));  // a network error: the next rerun tries again
}
""" % {"csrf": CSRF_HEADER, "handoff": HANDOFF_HEADER, "ended": ENDED_HEADER}


# --------------------------------------------------------------------------- the route (HTTP, no script run)


def _cookie_options(settings: Settings) -> dict:
    return {"path": "/", "httponly": True, "samesite": "lax", "secure": settings.cookie_secure}


def set_cookie_response(engine: Engine, settings: Settings, handoff: str, now: dt.datetime | None = None) -> Response:
    """The answer to ``POST /auth/session``: the cookie for the session whose handoff this is, or 403 with the reason."""
    now = now or utcnow()
    with session_scope(engine) as s:
        issued = sessions.issue_cookie(s, handoff, sessions.Rules.of(settings), now)
    if issued is None:
        return PlainTextResponse("This sign-in's one-time token is unknown, used or out of date: sign in again.", status_code=403)
    response = Response(status_code=204, headers={"Cache-Control": "no-store"})
    max_age = max(1, int((issued.expires_at - now).total_seconds()))
    response.set_cookie(settings.cookie_name, issued.token, max_age=max_age, **_cookie_options(settings))
    return response


def clear_cookie_response(engine: Engine, settings: Settings, token: str | None, ended: str = "",
                          now: dt.datetime | None = None) -> Response:
    """The answer to ``DELETE /auth/session``: the cookie is cleared unless it names a live session other than ``ended``."""
    response = Response(status_code=204, headers={"Cache-Control": "no-store"})
    if token:
        with session_scope(engine, write=False) as s:
            found = sessions.find(s, sessions.Rules.of(settings), token=token, now=now)
        if found is not None and found.live and str(found.session_id) != ended.strip():
            return response  # another tab's fresh sign-in: keep it
    response.delete_cookie(settings.cookie_name, **_cookie_options(settings))
    return response


def refusal(request: Request) -> Response | None:
    """403 for a request that is not the app's own page calling (no custom header, or a cross-site fetch); else None."""
    if CSRF_HEADER.lower() not in request.headers:
        return PlainTextResponse(f"Missing the {CSRF_HEADER} header: this route is for the app's own pages.", status_code=403)
    if request.headers.get("sec-fetch-site", "same-origin") not in _SAME_SITE_FETCHES:
        return PlainTextResponse("Cross-site requests may not set or clear the sign-in cookie.", status_code=403)
    return None


def session_route(request: Request) -> Response:
    """``POST`` / ``DELETE /auth/session`` (a plain function: Starlette runs it in its thread pool, off the event loop)."""
    refused = refusal(request)
    if refused is not None:
        return refused
    settings = resources.settings()
    if request.method == "POST":
        return set_cookie_response(resources.engine(), settings, request.headers.get(HANDOFF_HEADER, ""))
    return clear_cookie_response(resources.engine(), settings, request.cookies.get(settings.cookie_name),
                                 request.headers.get(ENDED_HEADER, ""))


ROUTES = [Route(PATH, session_route, methods=["POST", "DELETE"])]


# --------------------------------------------------------------------------- the page side (inside a script run)


def browser_token() -> str | None:
    """The sign-in cookie this browser sent when it opened the page (Streamlit's websocket request), if any."""
    value = st.context.cookies.get(resources.settings().cookie_name)
    return value if isinstance(value, str) and value else None  # AppTest's client hands back a mock: no cookie


def fingerprint(token: str | None) -> str | None:
    """A short digest of a cookie value, to remember in session state which cookie to ignore (never the value itself)."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()[:32] if token else None


@functools.cache
def _component():  # noqa: ANN202 - Streamlit's mount callable
    return st.components.v2.component("superintendent_session_cookie", js=_JS)


def hand_over(handoff: str, *, key: str) -> None:
    """Have the browser trade ``handoff`` for the HttpOnly cookie (once; drawing it again on later runs is harmless)."""
    _component()(key=key, data={"path": PATH, "method": "POST", "handoff": handoff,
                                "nonce": hashlib.sha256(handoff.encode("utf-8")).hexdigest()[:16]})


def clear(nonce: str, ended: int | None, *, key: str) -> None:
    """Have the browser drop its sign-in cookie, if it names no live sign-in but ``ended`` (once per ``nonce``)."""
    _component()(key=key, data={"path": PATH, "method": "DELETE", "nonce": nonce, "ended": ended})


def new_nonce() -> str:
    return secrets.token_hex(8)

