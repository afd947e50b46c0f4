"""What a session's runs and a closed session leave allocated."""

from __future__ import annotations

import gc
import weakref

from app.session import memory
from app.ui.main import _on_session_thread


class _Payload:  # stands for a run: something that can be weakly referenced
    pass


class _Doc:
    """A document whose next-tick callbacks stay referenced after they ran, as Bokeh's
    one-shot callback objects do (in a reference cycle, until a full collection)."""

    session_context = object()

    def __init__(self):
        self.callbacks = []

    def add_next_tick_callback(self, fn):
        self.callbacks.append(fn)


def test_a_scheduled_callback_lets_go_of_what_it_published_once_it_ran():
    doc, payload, seen = _Doc(), _Payload(), []
    alive = weakref.ref(payload)
    schedule = _on_session_thread(doc)
    schedule(lambda run=payload: seen.append(run))
    del payload
    gc.disable()  # freed by reference counting alone, not by a collection
    try:
        doc.callbacks[0]()
        seen.clear()
        assert alive() is None
    finally:
        gc.enable()


def test_sessions_closing_together_release_memory_once():
    class Loop:
        def __init__(self):
            self.later = []

        def call_later(self, delay, fn):
            self.later.append(fn)

    loop = Loop()
    memory.release_after_close(loop)
    memory.release_after_close(loop)
    assert len(loop.later) == 1
    loop.later.pop()()  # collects and trims (a no-op where there is no glibc)
    memory.release_after_close(loop)
    assert len(loop.later) == 1
    loop.later.pop()()
