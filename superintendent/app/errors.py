"""What a page shows when the database is briefly unreachable: a short message, never a traceback.

The engine's pool pre-pings and replaces dead connections, so the next run
reconnects by itself; nothing half-done is kept, because every action is one
transaction that either committed or rolled back.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import sqlalchemy as sa
import streamlit as st

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
