"""``flowscope serve``: the web app."""

from __future__ import annotations


def add_serve(sub) -> None:
    p = sub.add_parser("serve", help="serve the web app")
    p.add_argument("--port", type=int, default=5006)
    p.add_argument("--address", default="localhost")
    p.add_argument("--show", action="store_true", help="open a browser tab")
    p.add_argument(
        "--allow-websocket-origin",
        action="append",
        default=[],
        metavar="HOST[:PORT]",
        help="another host name the page is reached under (repeatable)",
    )
    p.add_argument(
        "--threads", type=int, default=None,
        help="torch CPU threads (default: all cores but one, left to the browser)",
    )  # fmt: skip


def run_serve(args) -> int:
    from app.server import serve

    serve(
        port=args.port,
        address=args.address,
        show=args.show,
        threads=args.threads,
        origins=args.allow_websocket_origin,
    )
    return 0
