"""The app's connections have Nagle's algorithm off (superintendent/app/tcp_nodelay.py).

Without it every answer of the HTTP API (and of /_stcore/health) on a kept-alive connection waited ~40 ms for the
client's delayed ACK: Streamlit binds its listening socket with protocol 0, so asyncio never sets TCP_NODELAY on
the connections it accepts. Figures: docs/benchmarks.md. These tests check the behaviour, not the timing.
"""

from __future__ import annotations

import socket

from streamlit.web.server.starlette import starlette_server

from superintendent.app import tcp_nodelay


def _accepted(listener: socket.socket) -> tuple[socket.socket, socket.socket]:
    client = socket.create_connection(listener.getsockname())
    accepted, _ = listener.accept()
    return client, accepted


def test_a_listening_socket_s_connections_get_tcp_nodelay():
    listener = socket.socket(socket.AF_INET)  # as Streamlit makes it: protocol 0
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    plain = socket.socket(socket.AF_INET)  # not listening: left alone
    try:
        client, before = _accepted(listener)
        assert before.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 0  # what the app had
        assert tcp_nodelay.install() >= 1
        client2, after = _accepted(listener)
        assert after.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 1
        assert plain.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 0
    finally:
        for s in (listener, plain, client, before, client2, after):
            s.close()


def test_streamlit_s_bind_function_is_wrapped_for_sockets_bound_later():
    tcp_nodelay.install()
    assert getattr(starlette_server._bind_socket, "_superintendent_nodelay", False), \
        "Streamlit's _bind_socket moved: check whether Streamlit now sets TCP_NODELAY itself, and update tcp_nodelay.py"
    sock = starlette_server._bind_socket("127.0.0.1", 0, 8)
    try:
        client, accepted = _accepted(sock)
        assert accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 1
        client.close()
        accepted.close()
    finally:
        sock.close()
    tcp_nodelay.install()  # twice: not wrapped twice
    assert not getattr(starlette_server._bind_socket.__wrapped__, "_superintendent_nodelay", False)
