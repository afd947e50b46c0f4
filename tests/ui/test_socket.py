"""The page's websocket, read at the server's end (app/server.py): frames leave at once."""

from __future__ import annotations

import socket

import panel as pn


def server_ends() -> list[socket.socket]:
    """The server's end of every open websocket connection of this process's servers."""
    return [connection._socket.ws_connection.stream.socket
            for server, *_ in pn.state._servers.values()
            for connection in server._tornado._clients]  # fmt: skip


def test_the_page_websocket_sends_small_frames_at_once(app):
    page = app("?particles=500")
    ends = server_ends()
    assert ends, "no websocket connection on the server"
    # Nagle's algorithm off: a small frame after a large one is not held for the browser's
    # delayed acknowledgement (up to 40 ms on Linux)
    assert all(end.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) for end in ends)
    assert page.errors == []
