"""Give a closed session's memory back to the system.

A Bokeh session is a web of reference cycles (models, documents, param watchers): when one
closes, its runs and data stay allocated until Python's *full* garbage collection, which a
server with ~300,000 long-lived objects runs seldom (measured: 8 sessions closed, 40 s later
their memory still held; one ``gc.collect()`` freed 195,000 objects). And glibc keeps the freed
blocks in its per-thread arenas unless asked to return them (``malloc_trim``). So after sessions
close, one collection and one trim, at most once a second however many close together.
"""

from __future__ import annotations

import ctypes
import gc
import logging
import sys
import time

log = logging.getLogger(__name__)

DELAY = 1.0  # s after a session closes: Bokeh drops its last references once the hooks ran
# Off for a server that shares its process with other code (the browser tests' in-process
# server): a full collection on the server's thread would also finalize that code's garbage
# there (Playwright's objects, whose finalizers need their own thread's event loop).
ENABLED = True
_pending = False


def _load_trim():
    """glibc's ``malloc_trim``, or None (another C library, another system)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL("libc.so.6").malloc_trim  # absent from musl: AttributeError
    except (OSError, AttributeError):
        return None


_malloc_trim = _load_trim()


def release_memory() -> None:
    """Collect cyclic garbage, then hand freed heap pages back (glibc only)."""
    start = time.perf_counter()
    collected = gc.collect()
    if _malloc_trim is not None:
        _malloc_trim(0)
    log.debug("released memory: %d objects collected, %.0f ms", collected,
              1000 * (time.perf_counter() - start))  # fmt: skip


def release_after_close(loop) -> None:
    """Run ``release_memory`` on ``loop`` (a Tornado IOLoop) shortly, once for a burst of
    closing sessions. Called from a session-destroyed hook, on the server's loop."""
    global _pending
    if _pending or not ENABLED:
        return
    _pending = True

    def run() -> None:
        global _pending
        _pending = False
        release_memory()

    loop.call_later(DELAY, run)
