"""The app publishes nothing before its page has loaded the document (app/ui/main.py)."""

from __future__ import annotations

import threading

from app.ui.main import _LoadGate


def test_callbacks_wait_for_the_page_then_run_in_order():
    gate, ran = _LoadGate(), []
    gate.run(lambda: ran.append(1))
    gate.run(lambda: ran.append(2))
    assert ran == []  # a run published before the page has its document would be lost
    gate.open()
    assert ran == [1, 2]
    gate.run(lambda: ran.append(3))  # once loaded, at once
    assert ran == [1, 2, 3]
    gate.open()  # a second load event changes nothing
    assert ran == [1, 2, 3]


def test_callbacks_from_other_threads_are_neither_lost_nor_run_twice():
    gate, ran = _LoadGate(), []
    threads = [threading.Thread(target=gate.run, args=(lambda k=k: ran.append(k),))
               for k in range(200)]  # fmt: skip
    for i, thread in enumerate(threads):
        thread.start()
        if i == 100:
            gate.open()
    for thread in threads:
        thread.join()
    assert sorted(ran) == list(range(200))
