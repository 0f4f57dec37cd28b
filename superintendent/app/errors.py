"""What a page shows when something goes wrong: a short message, never a traceback.

* :func:`database_trouble_shown`: the database is briefly unreachable. The
  engine's pool pre-pings and replaces dead connections, so the next run
  reconnects by itself; nothing half-done is kept, because every action is
  one transaction that either committed or rolled back.
* :func:`install_error_boundary`: the one error boundary of the app. Any
  other uncaught exception, in a page, a fragment or a widget callback, is
  logged on the server with its traceback and an error id; the browser sees
  only a one-line message with that id (:func:`on_script_error`, Streamlit's
  ``on_script_error`` hook, which ``st.App`` would install; the router
  installs it on the running session, so ``streamlit run streamlit_app.py``
  keeps working as it is).
* :data:`FAULT_ENV`: a test-only switch that makes every page raise, to prove
  the boundary in a browser.
"""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import sqlalchemy as sa
import streamlit as st
from streamlit.runtime import Runtime
from streamlit.runtime.scriptrunner_utils.script_run_context import get_script_run_ctx

from superintendent.store import DatabaseError

log = logging.getLogger(__name__)
MESSAGE = "The database is not answering right now; it reconnects by itself. Try again in a moment: nothing you submitted is lost."


@dataclass
class Outcome:
    failed: bool = False


@contextmanager
def database_trouble_shown() -> Iterator[Outcome]:
    """Run a block; if the database drops out, show :data:`MESSAGE` instead of a traceback (``outcome.failed``)."""
    outcome = Outcome()
    try:
        yield outcome
    except (sa.exc.OperationalError, sa.exc.InterfaceError, DatabaseError) as exc:
        outcome.failed = True
        log.warning("database unavailable: %s", str(exc).splitlines()[0])
        st.warning(MESSAGE, icon=":material/cloud_off:")


FAULT_ENV = "SUPERINTENDENT_TEST_FAULT"  # test only: "page" makes every signed-in page raise
ERROR_MESSAGE = "Something went wrong on this page (error id {error_id}); it is logged on the server. Reload the page to go on."


def on_script_error(exc: BaseException) -> bool:
    """Streamlit's ``on_script_error``: log ``exc`` with an error id, show one line with that id; True hides the traceback."""
    if isinstance(exc, (sa.exc.OperationalError, sa.exc.InterfaceError, DatabaseError)):
        log.warning("database unavailable: %s", str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
        _show(lambda: st.warning(MESSAGE, icon=":material/cloud_off:"))
        return True
    error_id = uuid.uuid4().hex[:8]
    log.error("error %s on a page", error_id, exc_info=(type(exc), exc, exc.__traceback__))
    _show(lambda: st.error(ERROR_MESSAGE.format(error_id=error_id), icon=":material/error:"))
    return True


def _show(draw) -> None:  # noqa: ANN001 - a no-argument drawing call
    """Draw the message; if even that fails (no script run to draw into), the log line is all there is."""
    try:
        draw()
    except Exception:  # noqa: BLE001 - nothing more can be shown; the traceback is logged already
        log.debug("the error message could not be drawn", exc_info=True)


def install_error_boundary() -> None:
    """Make :func:`on_script_error` this browser session's handler: for this run and every later run (fragments included)."""
    ctx = get_script_run_ctx()
    if ctx is None:
        return
    ctx.on_script_error = on_script_error
    manager = getattr(Runtime.instance(), "_session_mgr", None) if Runtime.exists() else None  # noqa: no public hook without st.App
    if manager is None:  # AppTest's runtime has none: this run's handler is all there is
        return
    info = manager.get_active_session_info(ctx.session_id)
    if info is not None:
        info.session._on_script_error = on_script_error  # noqa: SLF001 - new script runners of this session take it


def raise_if_asked(where: str) -> None:
    """Test only: raise when :data:`FAULT_ENV` names ``where``."""
    if os.environ.get(FAULT_ENV) == where:
        raise RuntimeError(f"a fault forced by {FAULT_ENV}={where} (test only) in /secret/server/path.py")
