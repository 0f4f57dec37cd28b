"""TCP_NODELAY on the app's connections: without it every HTTP answer on a kept-alive connection waits ~40 ms.

Streamlit 1.67 binds its listening socket itself (``starlette_server._bind_socket``) with ``socket.socket(family)``,
that is protocol 0; asyncio turns Nagle's algorithm off only for sockets whose protocol is ``IPPROTO_TCP``, so on
accepted connections it stays on, and a response's body waits for the client's delayed ACK (measured with one client
and a kept-alive connection: 44 ms per request to ``/_stcore/health`` or the HTTP API, whatever the handler's own
time). On Linux an accepted socket inherits TCP_NODELAY from its listening socket, so :func:`install` sets it on the
listening sockets this process already has (Streamlit binds before it imports the app's script), and wraps Streamlit's
bind function for sockets bound later. If a Streamlit release fixes this or renames its function, nothing breaks.
"""

from __future__ import annotations

import functools
import gc
import logging
import socket
from typing import Any

log = logging.getLogger(__name__)


def _no_delay(sock: socket.socket) -> bool:
    """Set TCP_NODELAY on a listening TCP socket (its future connections inherit it); False for any other socket."""
    try:
        if sock.fileno() == -1 or sock.family not in (socket.AF_INET, socket.AF_INET6) or sock.type != socket.SOCK_STREAM:
            return False
        if not sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN):
            return False
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return True
    except OSError as exc:
        log.warning("could not set TCP_NODELAY on a listening socket: %s", exc)
        return False


def install() -> int:
    """Turn Nagle's algorithm off for the app's connections; returns how many listening sockets were set now."""
    done = sum(_no_delay(obj) for obj in gc.get_objects() if isinstance(obj, socket.socket))
    try:
        from streamlit.web.server.starlette import starlette_server  # noqa: PLC0415 - only when serving
    except ImportError:  # pragma: no cover - another Streamlit layout
        return done
    bind = getattr(starlette_server, "_bind_socket", None)
    if bind is not None and not getattr(bind, "_superintendent_nodelay", False):
        @functools.wraps(bind)
        def bind_with_nodelay(*args: Any, **kwargs: Any) -> socket.socket:
            sock = bind(*args, **kwargs)
            _no_delay(sock)
            return sock

        bind_with_nodelay._superintendent_nodelay = True  # type: ignore[attr-defined]
        starlette_server._bind_socket = bind_with_nodelay
    return done
