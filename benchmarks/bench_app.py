"""Starts the app, drives a real Chromium, and prints what a user feels.

- first page painted, from the server's start;
- slider release → new frame painted (median of repeated drags; how it is stamped: INSTRUMENT),
  with the bytes the server sent over the websocket for each recompute, and the median one
  frame later (the stamp of figures before 2026-12-07);
- playback frame rate, and the bytes sent while playing (should be none);
- with ``--only compare``: the same slider in compare mode (A and B both rerun) beside the
  single run, and playback of A and B together;
- with ``--only first``: the first particles painted after ``flowscope serve`` starts (the
  splash's default run, app/splash.py), and the app's own first frame after it: on this
  checkout (warm), on a fresh clone of it set up as the README says (its set-up compiles the
  kernels into numba's cache), and with an empty kernel cache (a set-up that skipped that).

    python benchmarks/bench_app.py [--repeats 10] [--only latency|playback|compare|first]

Needs Debian's chromium (installed by `bash .ci/setup --with-browser`).
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import time
import urllib.request

from playwright.sync_api import sync_playwright

ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]  # fmt: skip
DATASET_NAMES = ("8gaussians", "moons", "circles", "swissroll", "checkerboard", "spirals")
GRID_STORE = "Bokeh.documents[0].get_model_by_name('grid_store')"

# Records the time of a pointer release and when the new picture is on the screen. An animation
# frame callback polls the run's last store (the grid); the frame F in which it sees the new
# grid paints the views (render.js draws in the message's task, Bokeh in F's callbacks), and
# the display compositor swaps that frame in before the next frame starts: in Chromium traces
# of seven spirals drags its swap ended 9-14 ms after F began, before F + 1's callbacks in six
# and 1.8 ms after them in one. So the stamp is F + 1's callback (``__painted``); ``__late``,
# one frame later, is the stamp of the earlier figures (docs/PERFORMANCE.md, "The stamp,
# corrected").
# The store is looked up once: a lookup by name walks every model of the document, and doing
# it every frame cost the page ~15 ms a drag.
INSTRUMENT = f"""() => {{
  document.addEventListener('pointerup', () => {{ window.__t0 = performance.now(); }}, true);
  const store = {GRID_STORE};
  window.__grid = store.data.t;
  const poll = () => {{
    const g = store.data.t;
    if (g !== window.__grid) {{
      window.__grid = g;
      requestAnimationFrame(() => {{
        window.__painted = performance.now();
        requestAnimationFrame(() => {{ window.__late = performance.now(); }});
      }});
    }}
    requestAnimationFrame(poll);
  }};
  requestAnimationFrame(poll);
}}"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(port: int, extra: list[str], root: str | None = None,
                 ) -> tuple[subprocess.Popen, float]:  # fmt: skip
    """Start ``flowscope serve`` (from the checkout ``root``, default: this one); returns the
    process and its start time once it answers."""
    start = time.perf_counter()
    env = None if root is None else {**os.environ, "PYTHONPATH": root}
    proc = subprocess.Popen([sys.executable, "-m", "app", "serve", "--port", str(port), *extra],
                            cwd=root, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    wait_until_up(port)
    return proc, start


def wait_until_up(port: int, seconds: float = 30.0) -> None:
    """Return once the server on ``port`` answers its liveness check (or after ``seconds``)."""
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        try:
            urllib.request.urlopen(f"http://localhost:{port}/liveness", timeout=1)
            return
        except OSError:
            time.sleep(0.05)


class Meter:
    """Counts websocket bytes received by the page."""

    def __init__(self, page):
        self.bytes = 0
        page.on("websocket", lambda ws: ws.on("framereceived", self._add))

    def _add(self, payload) -> None:
        self.bytes += len(payload) if isinstance(payload, bytes | str) else 0


def drag(page, handle_index: int, dx: float) -> None:
    handle = page.locator(".noUi-handle").nth(handle_index)
    handle.scroll_into_view_if_needed()  # compare mode's sidebar pushes β_max below the fold
    box = handle.bounding_box()
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(x + dx / 2, y, steps=3)
    page.mouse.move(x + dx, y, steps=3)
    page.mouse.up()


PAUSE = """() => { for (const m of Bokeh.documents[0].all_models)
  if (m.constructor.__name__ === 'Player') m.direction = 0; }"""


def slider_latency(browser, url, handle, repeats, paused=False, late=None,
                   ) -> tuple[list[float], list[int]]:  # fmt: skip
    """Release -> painted (ms) and the bytes received, per drag; ``late``, a list, also gets
    each drag's stamp one frame later (the earlier figures' stamp)."""
    page = browser.new_page(viewport={"width": 1500, "height": 1100})
    meter = Meter(page)
    page.goto(url)
    page.wait_for_function("() => window.flowscope_frames > 0", timeout=60_000)
    page.evaluate(INSTRUMENT)
    if paused:
        page.evaluate(PAUSE)
    time.sleep(1.0)
    latencies, sizes = [], []
    for k in range(repeats):
        page.evaluate("() => { window.__painted = window.__late = undefined; }")
        before = meter.bytes
        drag(page, handle, 14 if k % 2 == 0 else -14)
        page.wait_for_function("() => window.__late !== undefined", timeout=30_000)
        t0, painted, later = page.evaluate("() => [window.__t0, window.__painted, window.__late]")
        latencies.append(painted - t0)
        if late is not None:
            late.append(later - t0)
        time.sleep(0.3)
        sizes.append(meter.bytes - before)
    page.close()
    return latencies, sizes


def playback(browser, url: str, seconds: float = 5.0,
             counter: str = "flowscope_frames") -> tuple[float, int]:  # fmt: skip
    """Frames drawn per second (``window[counter]``: render.js's frames, or in compare mode
    difference.js's steps of the timeline), and the bytes the server sent meanwhile."""
    page = browser.new_page(viewport={"width": 1500, "height": 1100})
    meter = Meter(page)
    page.goto(url)
    page.wait_for_function(f"() => window.{counter} > 0", timeout=60_000)
    time.sleep(1.5)
    f0, b0 = page.evaluate(f"window.{counter}"), meter.bytes
    time.sleep(seconds)
    fps = (page.evaluate(f"window.{counter}") - f0) / seconds
    sent = meter.bytes - b0
    page.close()
    return fps, sent


# Slider release -> paint, every built-in data set (ms): the lecture's targets, and its "today"
# (measured with the stamp a frame later, before 2026-12-07)
LATENCY_TARGETS = {"paused": 120, "playing": 160}
LATENCY_TODAY = {"paused": "138-173", "playing": "159-220"}

# At the 25 fps setting the player's 40 ms timer caps the rate at 25; asking for 60 shows the
# headroom, the rate the page can draw. (label, query, target, before): "before" is the rate
# measured on this machine when the particles, trails and heatmap were Bokeh glyphs (commit
# 0111b1e, two runs each, 2026-12-06), before they were painted on the views' own canvases
# (app/ui/static/layer.js); the targets are the lecture's.
PLAYBACK_CASES = [
    ("N = 2000, trails 8 (default)", "", "25", "17.8-21.6"),
    ("N = 5000, trails 8", "?particles=5000", "25", ""),
    ("N = 5000, no trails", "?particles=5000&trail=0", "25", ""),
    ("N = 5000, trails 8, 60 fps asked", "?particles=5000&fps=60", ">= 50", "15.4-18.2"),
    ("N = 5000, no trails, 60 fps asked", "?particles=5000&trail=0&fps=60", ">= 50", ""),
    ("N = 20000, trails 8, 60 fps asked", "?particles=20000&fps=60", ">= 30", "7.2-8.8"),
]


def machine_speed() -> float:
    """ms for one exp of 2000 x 512 float32 on one thread (best of 20): this shared 2-core
    machine ran it in 0.94 ms when quiet and 1.3 ms when busy; latencies scale with it."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    x = torch.randn(2000, 512)
    best = float("inf")
    for _ in range(20):
        start = time.perf_counter()
        x.exp()
        best = min(best, time.perf_counter() - start)
    torch.set_num_threads(threads)
    return 1e3 * best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--threads", type=int, help="torch threads of the server (its default)")
    parser.add_argument("--only", choices=("latency", "playback", "compare", "first"),
                        help="run one part only")  # fmt: skip
    args = parser.parse_args()
    if args.only == "first":
        measure_first_picture()
        return
    with sync_playwright() as p:
        # Chromium is up before the server starts, as a user's browser usually is: the first
        # figure is the server's start plus the page's load (fresh context, empty cache).
        browser = p.chromium.launch(executable_path=shutil.which("chromium"), args=ARGS)
        port = free_port()
        extra = ["--threads", str(args.threads)] if args.threads else []
        proc, started = start_server(port, extra)
        try:
            print(f"machine speed: exp of 1M floats {machine_speed():.2f} ms (quiet: 0.94 ms)")
            measure(browser, f"http://localhost:{port}/", started, args)
            print(f"machine speed after: {machine_speed():.2f} ms")
        finally:
            proc.terminate()
            proc.wait(10)
            browser.close()


FIRST_TARGETS = {
    "warm": (3.0, "5.3"),
    "fresh clone": (6.0, "~12"),
    "empty kernel cache": (6.0, "~12"),
}  # s: target, the lecture's "today"
# The first particles painted: the splash's (app/splash.py) or, where there is none, the app's
FIRST_PAINT = "() => (window.flowscope_splash_frames || 0) + (window.flowscope_frames || 0) > 0"


def wait_until_bound(port: int, seconds: float = 60.0) -> None:
    """Return once anything answers HTTP on ``port``: the splash, before the app."""
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        try:
            urllib.request.urlopen(f"http://localhost:{port}/", timeout=1).close()
            return
        except OSError:
            time.sleep(0.02)


def wait_for_the_app(page, seconds: float = 120.0) -> None:
    """Until the app has painted its first frame; the splash reloads the page into it (a
    wait cut short by that reload is taken again)."""
    deadline = time.perf_counter() + seconds
    while True:
        try:
            page.wait_for_function("() => window.flowscope_frames > 0", timeout=5_000)
            return
        except Exception:  # a reload destroys the page's context, or a timeout
            if time.perf_counter() > deadline:
                raise


def _fresh_clone(into: str) -> str:
    """A clone of this checkout's HEAD in ``into``, set up as ``.ci/setup`` does but for the
    packages (this checkout's venv serves it: the clone's own sources are on PYTHONPATH):
    its kernels compiled into numba's cache and its sources' bytecode beside them."""
    root = os.getcwd()
    clone = os.path.join(into, "clone")
    subprocess.run(["git", "clone", "-q", root, clone], check=True)
    env = {**os.environ, "PYTHONPATH": clone}
    env.pop("NUMBA_CACHE_DIR", None)
    for step in (["-m", "models.accel.compile"], ["-m", "compileall", "-q", "app", "models"]):
        subprocess.run([sys.executable, *step], cwd=clone, env=env, check=True,
                       stdout=subprocess.DEVNULL)  # fmt: skip
    return clone


def measure_first_picture(repeats: int = 2) -> None:
    """Seconds from ``flowscope serve`` to the first particles painted in a browser that is
    already up (a teacher's), the splash's default run (app/splash.py), and to the app's
    own first frame, once the splash has reloaded the page into it: this checkout (warm: its
    kernels are in numba's cache), a fresh clone after its set-up, and an empty kernel cache
    (NUMBA_CACHE_DIR names an empty folder: the kernels compile on first use)."""
    import tempfile

    print(f"{'from `flowscope serve` (s)':28} {'first particles':>15} {'target':>7} "
          f"{'today':>6} {'app painted':>12}")  # fmt: skip
    with sync_playwright() as p, tempfile.TemporaryDirectory() as scratch:
        browser = p.chromium.launch(executable_path=shutil.which("chromium"), args=ARGS)
        clone = _fresh_clone(scratch)
        for kind in FIRST_TARGETS:
            for _ in range(repeats):
                with tempfile.TemporaryDirectory() as empty:
                    env = {**os.environ, "PYTHONPATH": clone if kind == "fresh clone"
                           else os.getcwd()}  # fmt: skip
                    if kind == "empty kernel cache":
                        env["NUMBA_CACHE_DIR"] = empty
                    port = free_port()
                    started = time.perf_counter()
                    proc = subprocess.Popen(
                        [sys.executable, "-m", "app", "serve", "--port", str(port)], env=env,
                        cwd=env["PYTHONPATH"],
                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
                    try:
                        wait_until_bound(port)
                        page = browser.new_page(viewport={"width": 1500, "height": 1100})
                        page.goto(f"http://localhost:{port}/")
                        page.wait_for_function(FIRST_PAINT, timeout=120_000)
                        first = time.perf_counter() - started
                        wait_for_the_app(page)
                        app = time.perf_counter() - started
                        page.close()
                    finally:
                        proc.terminate()
                        proc.wait(10)
                target, today = FIRST_TARGETS[kind]
                print(f"{kind:28} {first:>15.2f} {'<= ' + str(target):>7} {today:>6} "
                      f"{app:>12.2f}")  # fmt: skip
        browser.close()


# (label, query of the single run, what B changes, handle dragged: 0 is η, 4 is β_max)
COMPARE_CASES = [
    ("η, FM SDE vs ODE, 8 gaussians", "?kind=sde&eta=0.5", "&b_kind=ode", 0),
    ("β_max, VP linear vs cosine, moons", "?process=vp&dataset=moons", "&b_schedule=cosine", 4),
    ("β_max, VP Euler vs Heun 10 steps, spirals", "?process=vp&dataset=spirals&steps=10",
     "&b_solver=heun", 4),
]  # fmt: skip


def measure_compare(browser, base: str, args) -> None:
    """Slider release → paint, single run and compare mode, paused (the pipeline's own
    latency: compare mode's target is twice the single run's), then compare playback."""
    print(f"\n{'slider release -> paint, paused (N=2000, T=100)':58} {'single':>8} "
          f"{'compare':>8} {'ratio':>6}")  # fmt: skip
    for label, query, b, handle in COMPARE_CASES:
        single, _ = slider_latency(browser, base + query, handle, args.repeats, paused=True)
        pair, _ = slider_latency(browser, base + query + "&compare=true" + b, handle,
                                 args.repeats, paused=True)  # fmt: skip
        one, two = statistics.median(single), statistics.median(pair)
        print(f"{label:58} {one:>6.0f}ms {two:>6.0f}ms {two / one:>6.2f}")
    print(f"\n{'compare playback (A and B, side by side)':40} {'steps/s':>8} {'bytes sent':>12}")
    for label, query in [
        ("2 x 2000 particles, trails 8", "?compare=true&b_solver=heun"),
        ("2 x 2000, overlaid", "?compare=true&b_solver=heun&layout=overlay"),
        ("2 x 2000, 60 fps asked", "?compare=true&b_solver=heun&fps=60"),
    ]:
        fps, sent = playback(browser, base + query, counter="flowscope_compare_steps")
        print(f"{label:40} {fps:>8.1f} {sent:>12}")


def measure(browser, base: str, started: float, args) -> None:
    if args.only == "compare":
        measure_compare(browser, base, args)
        return
    page = browser.new_page(viewport={"width": 1500, "height": 1100})
    page.goto(base)
    page.wait_for_function("() => window.flowscope_frames > 0", timeout=60_000)
    first = time.perf_counter() - started
    page.close()
    print(f"first page painted {first:.2f} s after the server started")
    print(f"\n{'slider release -> paint (N=2000, T=100, exact field)':58} {'median':>8} "
          f"{'p90':>7} {'MB sent':>8} {'a frame later':>14}")  # fmt: skip
    print(f"(target: paused <= {LATENCY_TARGETS['paused']} ms, playing <= "
          f"{LATENCY_TARGETS['playing']} ms; the lecture's 'today', on the old stamp: "
          f"{LATENCY_TODAY['paused']} paused, {LATENCY_TODAY['playing']} playing)")  # fmt: skip
    # (label, query, index of the slider handle dragged: 0 is η, 4 is β_max in the sidebar)
    cases = [("η, flow matching SDE, 8 gaussians", "?kind=sde&eta=0.5", 0)] + [
        (f"β_max, VP ODE, {name}", f"?process=vp&dataset={name}", 4) for name in DATASET_NAMES
    ]  # every built-in data set, each with its own mixture (M from 8 to 1152 components)
    # The Fokker-Planck solve at 128^2 runs beside the particles (its budget: 400 ms paused).
    cases += [
        ("β_max, VP ODE, moons, PDE density", "?process=vp&dataset=moons&density_source=pde", 4),
        ("η, FM SDE, 8 gaussians, PDE density", "?kind=sde&eta=0.5&density_source=pde", 0),
    ]
    # While playing, the browser's software rendering competes with the server for this
    # machine's 2 cores; paused shows the pipeline's own latency.
    for paused in (False, True) if args.only != "playback" else ():
        for label, query, handle in cases:
            late: list[float] = []
            lat, sizes = slider_latency(browser, base + query, handle, args.repeats, paused,
                                        late)  # fmt: skip
            p90 = sorted(lat)[int(0.9 * (len(lat) - 1))]
            name = f"{label}, {'paused' if paused else 'playing'}"
            print(f"{name:58} {statistics.median(lat):>6.0f}ms {p90:>5.0f}ms "
                  f"{statistics.median(sizes) / 1e6:>8.2f} "
                  f"{statistics.median(late):>12.0f}ms")  # fmt: skip
    print(f"\n{'playback':40} {'fps':>6} {'target':>7} {'before':>10} {'bytes sent':>11}")
    for label, query, target, before in [] if args.only == "latency" else PLAYBACK_CASES:
        fps, sent = playback(browser, base + query)
        print(f"{label:40} {fps:>6.1f} {target:>7} {before:>10} {sent:>11}")


if __name__ == "__main__":
    main()
