"""The websocket handler that sends without Nagle's delay (app/server.py) stands in for
Panel's once, however often a process serves. The served page's socket: tests/ui/test_socket.py."""

from __future__ import annotations

from bokeh.server import urls
from panel.io.server import WSHandler

from app.server import _send_without_delay


def test_serving_again_keeps_one_websocket_handler_panel_s_own_beneath():
    before = [(pattern, h) for pattern, h in urls.per_app_patterns if pattern != "/ws"]
    _send_without_delay()
    _send_without_delay()
    handlers = [h for pattern, h in urls.per_app_patterns if pattern == "/ws"]
    assert len(handlers) == 1 and handlers[0].__mro__[1] is WSHandler  # Panel's, one level down
    assert [(p, h) for p, h in urls.per_app_patterns if p != "/ws"] == before  # the rest kept
