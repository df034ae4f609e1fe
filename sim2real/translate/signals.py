"""Ctrl-C during training: a flag the loop reads between steps, so the checkpoint it saves
is consistent; a second Ctrl-C aborts at once."""

from __future__ import annotations

import signal
import threading
from contextlib import contextmanager


@contextmanager
def deferred_interrupt(sigterm: bool = False):
    """Turn the first SIGINT (and SIGTERM if asked: what torchrun sends its workers) into
    ``state["hit"] = True``; main thread only (elsewhere the flag never changes)."""
    state = {"hit": False}
    if threading.current_thread() is not threading.main_thread():
        yield state
        return

    def handler(signum, frame):
        if state["hit"]:
            raise KeyboardInterrupt
        state["hit"] = True

    sigs = (signal.SIGINT, signal.SIGTERM) if sigterm else (signal.SIGINT,)
    old = {s: signal.signal(s, handler) for s in sigs}
    try:
        yield state
    finally:
        for s, h in old.items():
            signal.signal(s, h)
