"""``flowscope serve``: the app on a Bokeh server, on localhost by default."""

from __future__ import annotations

import panel as pn


def serve(port: int = 5006, address: str = "localhost", show: bool = False, threaded: bool = False):
    """Serve the app; blocks unless ``threaded`` (then returns the server thread)."""
    from app.main import create_app

    origin = [f"{address}:{port}", f"localhost:{port}", f"127.0.0.1:{port}"]
    print(f"flowscope: serving on http://{address}:{port}/ (Ctrl-C stops)")
    return pn.serve(
        {"/": create_app}, port=port, address=address, show=show, threaded=threaded,
        title="flowscope", websocket_origin=origin, verbose=False, liveness=True,
        websocket_max_message_size=200 * 1024 * 1024,
    )  # fmt: skip
