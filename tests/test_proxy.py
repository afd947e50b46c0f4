"""``flowscope class``: servers behind nginx with sticky sessions (app/cli/classroom.py,
assets/deploy/nginx.conf.template). The end-to-end test starts the command with 2 servers,
drives a few real sessions through the proxy (benchmarks/class_test.py) and reads nginx's
access log: every session got its runs, the sessions were spread over both servers, and each
websocket went where its cookie said. Skipped where nginx is not installed."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from app.cli import main
from app.cli.classroom import find_nginx, nginx_config

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import class_test
from session_driver import import_panel_models

ROOT = Path(__file__).resolve().parents[1]
try:
    NGINX = find_nginx(None)
except ValueError:
    NGINX = None
needs_nginx = pytest.mark.skipif(
    NGINX is None, reason="nginx is not installed (Debian: apt-get install nginx-light; "
    "bash .ci/setup --with-browser installs it)",
)  # fmt: skip
COOKIE = "flowscope_upstream"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(url: str, cookie: str | None = None):
    request = urllib.request.Request(url, headers={"Cookie": f"{COOKIE}={cookie}"} if cookie
                                     else {})  # fmt: skip
    with urllib.request.urlopen(request, timeout=10) as answer:
        return answer.headers


def test_the_configuration_is_filled_in(tmp_path):
    text = nginx_config(tmp_path, "127.0.0.1", 8080, [9001, 9002])
    assert re.search(r"@[A-Z]+@", text) is None  # every field filled
    assert "server 127.0.0.1:9001;" in text and "server 127.0.0.1:9002;" in text
    assert "listen 127.0.0.1:8080;" in text and "hash $flowscope_key consistent;" in text
    assert f'pid "{tmp_path}/nginx.pid";' in text and "ip_hash" not in text.split("http {")[1]
    assert ("user " in text.split("worker_processes")[0]) == (os.geteuid() == 0)


@needs_nginx
def test_nginx_accepts_the_configuration(tmp_path):
    conf = tmp_path / "nginx.conf"
    conf.write_text(nginx_config(tmp_path, "127.0.0.1", free_port(), [9001, 9002]))
    test = subprocess.run([NGINX, "-p", str(tmp_path), "-c", str(conf), "-e",
                           str(tmp_path / "error.log"), "-t"], capture_output=True, text=True,
                          timeout=30)  # fmt: skip
    assert test.returncode == 0, test.stderr


@pytest.mark.parametrize("argv, says", [
    (["--procs", "0"], "--procs must be in 1..64, got 0"),
    (["--port", "70000"], "--port must be in 1..65535, got 70000"),
    (["--nginx", "/nonexistent/nginx"], "apt-get install nginx-light"),
])  # fmt: skip
def test_bad_options_are_one_line_before_anything_starts(capsys, argv, says):
    assert main(["class", *argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and says in err[0] and "Traceback" not in err[0]


def test_serve_refuses_a_bad_process_count(capsys):
    assert main(["serve", "--num-procs", "0", "--port", "1"]) == 2
    said = capsys.readouterr().err.strip()
    assert said == "flowscope: error: --num-procs must be in 1..64, got 0"


def _start_class(port: int) -> tuple[subprocess.Popen, Path, list[int]]:
    """``flowscope class`` with 2 servers; its folder and the servers' ports once it serves."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "app", "class", "--procs", "2", "--port", str(port),
         "--address", "127.0.0.1"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    first: list[str] = []
    reader = threading.Thread(target=lambda: first.append(proc.stdout.readline()), daemon=True)
    reader.start()
    reader.join(240)  # two servers' first start, on a busy 2-core machine
    line = first[0] if first else ""
    found = re.search(r"ports (\d+), (\d+)\) behind nginx; files in (\S+) ", line)
    if not found:
        proc.kill()
        pytest.fail(f"flowscope class did not start: {line!r} {proc.stderr.read()[-2000:]}")
    return proc, Path(found[3]), [int(found[1]), int(found[2])]


@needs_nginx
@pytest.mark.slow
def test_a_class_through_the_proxy_is_spread_and_sticky():
    port = free_port()
    proc, folder, ports = _start_class(port)
    url = f"http://127.0.0.1:{port}/"
    try:
        # A browser's first request gets its cookie; with it, it stays on one server
        first = get(url + "liveness")
        cookie = first["Set-Cookie"].split(";")[0].split("=", 1)[1]
        assert {get(url + "liveness", cookie)["X-Flowscope-Upstream"] for _ in range(5)} == {
            first["X-Flowscope-Upstream"]
        }
        # Cookies that land on each server: the sessions must be spread over both
        where = {f"student-{i}": get(url + "liveness", f"student-{i}")["X-Flowscope-Upstream"]
                 for i in range(40)}  # fmt: skip
        assert set(where.values()) == {f"127.0.0.1:{p}" for p in ports}
        chosen = [next(c for c, w in where.items() if w == f"127.0.0.1:{p}") for p in ports]
        chosen += [next(c for c, w in where.items() if w == f"127.0.0.1:{p}" and c not in
                        chosen) for p in ports]  # fmt: skip
        import_panel_models()
        report = class_test.run_class(
            url, students=4, think=(0.3, 1.0), seconds=5,
            headers=lambda i: {"Cookie": f"{COOKIE}={chosen[i]}"},
        )  # fmt: skip
        for d in report.everyone:
            assert d.error is None, d.error
            assert len(d.latencies) > 0 and len(d.frames) == len(d.latencies)  # new runs
        # nginx logs a websocket when it closes: each went to its cookie's server
        deadline, sockets = time.monotonic() + 30, []
        while len(sockets) < 4 and time.monotonic() < deadline:
            log = (folder / "access.log").read_text()
            sockets = re.findall(r'"GET /ws\S* HTTP/1.1" 101 (\S+) key=(\S+)', log)
            time.sleep(0.5)
        assert sorted(key for _, key in sockets) == sorted(chosen), log
        assert all(where[key] == upstream for upstream, key in sockets)
        assert {upstream for upstream, _ in sockets} == {f"127.0.0.1:{p}" for p in ports}
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
    assert code == 130, proc.stderr.read()  # stopped as by Ctrl-C
    assert not folder.exists()  # its files removed, nginx's and the servers' logs too
    for p in [port, *ports]:  # nothing left listening
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", p), timeout=2).close()
