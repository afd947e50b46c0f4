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
        help="torch CPU threads per process (default: all cores but one, left to the "
        "browser, shared among the processes)",
    )  # fmt: skip
    p.add_argument(
        "--lessons", default=None, metavar="FILE",
        help="the Lessons menu's scenes from this file (default: assets/lessons.toml; the "
        "format: docs/LESSONS.md); a bad file is refused, naming the scene and the field",
    )  # fmt: skip
    p.add_argument(
        "--num-procs", type=int, default=1, metavar="N",
        help="serve from N forked processes on the one port, each page in one of them "
        "(a class on a machine with several cores; default 1)",
    )  # fmt: skip
    p.add_argument(
        "--use-xheaders", action="store_true",
        help="behind a reverse proxy: take the client's address and scheme from its "
        "X-Forwarded-* headers (flowscope class sets it)",
    )  # fmt: skip


def run_serve(args) -> int:
    from app.server import check_lessons, check_options

    check_options(args.port, args.threads, args.num_procs, show=args.show,
                  origins=args.allow_websocket_origin)  # fmt: skip
    # the lessons file is checked whole before the port is bound: that imports torch (~1.5 s)
    check_lessons(args.lessons)
    splash = None
    if args.num_procs == 1:  # the first picture while the app starts (app/splash.py)
        from app.splash import Splash

        splash = Splash(args.port, args.address)  # binds the port, or raises OSError
        url = f"http://{args.address}:{args.port}/"
        print(f"flowscope: serving on {url} (Ctrl-C stops)", flush=True)
        if args.show:
            import webbrowser

            webbrowser.open(url, new=2)
    try:
        return _serve(args, splash)
    finally:
        if splash is not None:  # served, or failed after the port was bound: let it go
            splash.close()


def _serve(args, splash) -> int:
    from app.server import serve

    serve(
        port=args.port,
        address=args.address,
        show=args.show and splash is None,
        threads=args.threads,
        origins=args.allow_websocket_origin,
        num_procs=args.num_procs,
        lessons=args.lessons,
        xheaders=args.use_xheaders,
        splash=splash,
    )
    return 0
