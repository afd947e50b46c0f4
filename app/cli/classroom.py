"""``flowscope class``: several ``flowscope serve`` processes, each on its own port, behind
nginx with sticky sessions (assets/deploy/nginx.conf.template), started and stopped together.

Everything runs as the user who starts it: the configuration, nginx's pid, logs and temporary
files, and each server's log are in a temporary folder, removed at the end. The command waits
until every server and the proxy answer, then until Ctrl-C or SIGTERM (or a process ends on its
own: then it stops the rest and fails), and stops everything.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

TEMPLATE = Path(__file__).resolve().parents[2] / "assets" / "deploy" / "nginx.conf.template"
START_SECONDS = 180.0  # a server's first start compiles its kernels: a minute on 2 busy cores
STOP_SECONDS = 15.0
PR_SET_PDEATHSIG = 1  # linux/prctl.h


def add_class(sub) -> None:
    p = sub.add_parser(
        "class",
        help="serve a class: several servers behind nginx, sticky sessions",
        description="Start --procs flowscope servers on ports of their own and nginx in front "
        "of them on --address:--port, each student's page kept on one server; Ctrl-C stops all.",
    )
    p.add_argument("--procs", type=int, default=2, help="flowscope servers (default 2)")
    p.add_argument("--port", type=int, default=8080, help="the proxy's port (default 8080)")
    p.add_argument("--address", default="localhost",
                   help="the proxy's address (default localhost; 0.0.0.0 for a room)")  # fmt: skip
    p.add_argument("--base-port", type=int, default=None,
                   help="the servers' first port, then the next ones (default: free ports, "
                   "on 127.0.0.1 only)")  # fmt: skip
    p.add_argument("--allow-websocket-origin", action="append", default=[],
                   metavar="HOST[:PORT]",
                   help="another name students reach the proxy under (repeatable)")  # fmt: skip
    p.add_argument("--threads", type=int, default=None,
                   help="torch threads per server (default: cores but one, shared)")  # fmt: skip
    p.add_argument("--nginx", default=None, help="the nginx binary (default: nginx on PATH)")


def run_class(args) -> int:
    if not 1 <= args.procs <= 64:
        raise ValueError(f"--procs must be in 1..64, got {args.procs}")
    if not 1 <= args.port <= 65535:
        raise ValueError(f"--port must be in 1..65535, got {args.port}")
    last = 65536 - args.procs
    if args.base_port is not None and not 1 <= args.base_port <= last:
        raise ValueError(f"--base-port must be in 1..{last}, got {args.base_port}")
    if args.threads is not None and not 1 <= args.threads <= 256:
        raise ValueError(f"--threads must be in 1..256, got {args.threads}")
    nginx = find_nginx(args.nginx)
    from app.server import default_threads

    threads = args.threads or default_threads(args.procs)
    with Classroom(args.procs, args.port, args.address, nginx, args.base_port, threads,
                   args.allow_websocket_origin) as room:  # fmt: skip
        print(f"flowscope: a class on http://{args.address}:{args.port}/: {args.procs} servers "
              f"(ports {', '.join(map(str, room.ports))}) behind nginx; files in "
              f"{room.folder} (Ctrl-C stops)", flush=True)  # fmt: skip
        return room.wait()


def find_nginx(given: str | None) -> str:
    found = shutil.which(given or "nginx") or next(
        (p for p in ("/usr/sbin/nginx", "/sbin/nginx") if not given and os.access(p, os.X_OK)),
        None,
    )
    if not found:
        raise ValueError(f"{given or 'nginx'} not found: install it (Debian: apt-get install "
                         "nginx-light) or name it with --nginx")  # fmt: skip
    return found


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def origins(address: str, port: int, extra: list[str]) -> list[str]:
    """The names a student's page may come from, as the servers must allow them: the proxy's
    address, loopback, and this machine's names when the proxy listens on every address."""
    hosts = ["localhost", "127.0.0.1"]
    if address in ("0.0.0.0", "::", ""):
        hosts += [socket.gethostname(), socket.getfqdn()]
    else:
        hosts.append(address)
    named = [f"{h}:{port}" for h in dict.fromkeys(hosts)]
    return named + [o if ":" in o else f"{o}:{port}" for o in extra]


def nginx_config(folder: Path, address: str, port: int, ports: list[int]) -> str:
    """The template with its fields filled in."""
    user = pwd.getpwuid(os.geteuid()).pw_name if os.geteuid() == 0 else None
    fields = {
        # as root, nginx's workers would run as nobody, who cannot write into the folder
        "@USER@": f"user {user};" if user else "# (not root: the workers run as this user)",
        "@FOLDER@": str(folder),
        "@LISTEN@": f"[{address}]:{port}" if ":" in address else f"{address}:{port}",
        "@UPSTREAMS@": "\n".join(f"        server 127.0.0.1:{p};" for p in ports),
    }
    text = TEMPLATE.read_text()
    for key, value in fields.items():
        text = text.replace(key, value)
    return text


def _die_with_parent() -> None:
    """In a child before exec: end (SIGTERM) when this command ends, even by SIGKILL, so that
    no server or nginx outlives it holding its port."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


@dataclass
class Classroom:
    """The servers and nginx, as a context: started on entry (or nothing is left running),
    stopped on exit, the folder removed."""

    procs: int
    port: int
    address: str
    nginx: str
    base_port: int | None = None
    threads: int = 1
    extra_origins: list[str] = field(default_factory=list)
    folder: Path = field(init=False)
    ports: list[int] = field(init=False)
    children: dict[str, subprocess.Popen] = field(init=False, default_factory=dict)

    def __enter__(self) -> Classroom:
        self.folder = Path(tempfile.mkdtemp(prefix="flowscope-class-"))
        base = self.base_port
        self.ports = [base + i for i in range(self.procs)] if base else \
            [free_port() for _ in range(self.procs)]  # fmt: skip
        if self.port in self.ports:
            raise ValueError(f"--port {self.port} is also a server's port")
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *_exc) -> None:
        self.stop()

    def _spawn(self, name: str, argv: list[str]) -> None:
        with open(self.folder / f"{name}.log", "wb") as log:  # the child keeps its own copy
            self.children[name] = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                cwd=Path(__file__).resolve().parents[2],
                preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,
            )  # fmt: skip

    def _start(self) -> None:
        allowed = origins(self.address, self.port, self.extra_origins)
        for i, port in enumerate(self.ports):
            self._spawn(f"server-{i}", [
                sys.executable, "-m", "app", "serve", "--port", str(port),
                "--address", "127.0.0.1", "--use-xheaders", "--threads", str(self.threads),
                *(x for o in allowed for x in ("--allow-websocket-origin", o)),
            ])  # fmt: skip
        conf = self.folder / "nginx.conf"
        conf.write_text(nginx_config(self.folder, self.address, self.port, self.ports))
        nginx = [self.nginx, "-p", str(self.folder), "-c", str(conf),
                 "-e", str(self.folder / "error.log")]  # fmt: skip
        test = subprocess.run([*nginx, "-t"], capture_output=True, text=True, timeout=30)
        if test.returncode != 0:
            said = [line for line in test.stderr.splitlines() if "[emerg]" in line]
            raise OSError(f"nginx refused its configuration: "
                          f"{said[0] if said else _last_line(test.stderr)}")  # fmt: skip
        deadline = time.monotonic() + START_SECONDS
        for i, port in enumerate(self.ports):  # nginx last: students find every server up
            self._wait_for(f"server-{i}", f"http://127.0.0.1:{port}/liveness", deadline)
        self._spawn("nginx", nginx)
        host = "127.0.0.1" if self.address in ("0.0.0.0", "", "localhost") else self.address
        host = f"[{host}]" if ":" in host else host
        self._wait_for("nginx", f"http://{host}:{self.port}/liveness", deadline)

    def _wait_for(self, name: str, url: str, deadline: float) -> None:
        child = self.children[name]
        while True:
            with contextlib.suppress(OSError):
                with urllib.request.urlopen(url, timeout=2) as answer:
                    if answer.status == 200:
                        return
            if child.poll() is not None:
                raise OSError(f"{name} ended at start (exit {child.returncode}): "
                              f"{_last_line(self._log(name))}")  # fmt: skip
            if time.monotonic() > deadline:
                raise OSError(f"{name} did not answer within {START_SECONDS:.0f} s")
            time.sleep(0.3)

    def _log(self, name: str) -> str:
        path = self.folder / ("error.log" if name == "nginx" else f"{name}.log")
        with contextlib.suppress(OSError):
            return path.read_text(errors="replace")
        return ""

    def wait(self) -> int:
        """Until Ctrl-C or SIGTERM (KeyboardInterrupt, app/cli/interrupt.py), or until a
        process ends by itself: then 1, with its last words."""
        while True:
            for name, child in self.children.items():
                if child.poll() is not None:
                    print(f"flowscope: error: {name} ended (exit {child.returncode}): "
                          f"{_last_line(self._log(name))}; stopping the class",
                          file=sys.stderr)  # fmt: skip
                    return 1
            time.sleep(0.5)

    def stop(self) -> None:
        """nginx first (no new request reaches a stopping server), then the servers, each
        asked to stop (SIGTERM) and killed if it has not within STOP_SECONDS."""
        order = sorted(self.children, key=lambda name: name != "nginx")
        for name in order:
            with contextlib.suppress(OSError):
                self.children[name].send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_SECONDS
        for name in order:
            child = self.children[name]
            try:
                child.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
        self.children.clear()
        shutil.rmtree(self.folder, ignore_errors=True)


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1].strip() if lines else "(nothing logged)"
