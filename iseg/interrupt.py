"""Ctrl-C that is never lost.

Python raises KeyboardInterrupt wherever the main thread is when SIGINT arrives; if that is inside a finalizer
(`__del__`, a weakref callback: Python runs them while torch writes a checkpoint, while a DataLoader shuts down), the
exception is printed as "Exception ignored" and dropped, and the run goes on. Inside `guarded()` SIGINT also sets a
flag, and `raise_pending()` (called once a checkpoint is complete, and when the block ends) raises the interrupt
that was dropped.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_pending = threading.Event()


def _on_sigint(signum: int, frame: object) -> None:
    """Remember the interrupt, then raise it as Python's default handler does."""
    _pending.set()
    raise KeyboardInterrupt


def raise_pending() -> None:
    """Raise KeyboardInterrupt if a Ctrl-C arrived in a `guarded()` block and has not been raised since."""
    if _pending.is_set():
        _pending.clear()
        raise KeyboardInterrupt


@contextmanager
def guarded() -> Iterator[None]:
    """Within the block, a Ctrl-C is raised even when it first arrives where Python drops it (see the module
    docstring); outside the main thread, where no signal handler can be set, and where SIGINT is ignored (a
    background job, `nohup`), the block runs as it is."""
    if (threading.current_thread() is not threading.main_thread()
            or signal.getsignal(signal.SIGINT) is signal.SIG_IGN):
        yield
        return
    _pending.clear()
    previous = signal.signal(signal.SIGINT, _on_sigint)
    try:
        yield
        raise_pending()
    finally:
        signal.signal(signal.SIGINT, previous)
        _pending.clear()
