"""The model off the event thread: clicks are queued at once and predicted in order on one background thread.

A front end calls `click` from its event handler (instant: the controller queues the click, the front end draws
its marker) and gets `on_done` once the queue is empty, i.e. one frame to draw after a burst of clicks.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from iseg.demo.controller import ClickController


class PredictionWorker:
    """Runs `controller.predict_next` on one background thread until no click is queued, then calls
    `on_done(error)` on that thread (`error` is the exception that stopped it, or None)."""

    def __init__(self, controller: ClickController, on_done: Callable[[BaseException | None], None]):
        self.controller = controller
        self.on_done = on_done
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="iseg-demo-model")
        self._lock = threading.Lock()
        self._running = False

    @property
    def busy(self) -> bool:
        """True while clicks are queued or being predicted."""
        with self._lock:
            return self._running

    def click(self, row: int, col: int, is_positive: bool) -> bool:
        """Queue a click and make sure the background thread runs; False for a click outside the image."""
        if not self.controller.queue_click(row, col, is_positive):
            return False
        with self._lock:
            if not self._running:
                self._running = True
                self._executor.submit(self._drain)
        return True

    def wait(self) -> None:
        """Block until every queued click is predicted and `on_done` has returned."""
        self._executor.submit(lambda: None).result()

    def _drain(self) -> None:
        error = None
        try:
            while True:
                while self.controller.predict_next():
                    pass
                with self._lock:
                    if not self.controller.pending:  # a click queued after the last predict starts another round
                        self._running = False
                        break
        except Exception as exc:  # shown by the front end; the controller has dropped the queue
            error = exc
            with self._lock:
                self._running = False
        self.on_done(error)
