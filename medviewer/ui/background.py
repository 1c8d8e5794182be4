"""One background call at a time, its result handed to the GUI thread (for work that must not
freeze the window: autosave compression, label statistics of large volumes, training a classifier).

The worker thread only puts its outcome (and, through `report`, its progress) on a queue; a QTimer
on the GUI thread takes them and calls `on_progress(payload)`, then `on_done(result)` or
`on_error(message)` there, so no Qt object is touched from the thread.
"""
from __future__ import annotations

import queue
import threading
from typing import Any, Callable

from medviewer.core.errors import MedViewerError
from medviewer.ui.qt import QtCore


class BackgroundCall(QtCore.QObject):
    def __init__(self, parent, name: str, on_done: Callable[[Any], None],
                 on_error: Callable[[str], None] | None = None, poll_ms: int = 40,
                 on_progress: Callable[[Any], None] | None = None):
        super().__init__(parent)
        self.name = name
        self.on_done, self.on_error = on_done, on_error or (lambda message: None)
        self.on_progress = on_progress or (lambda payload: None)
        self._events: queue.SimpleQueue = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._timer = QtCore.QTimer(self)
        self._timer.setInterval(poll_ms)
        self._timer.timeout.connect(self._drain)

    @property
    def busy(self) -> bool:
        return self._thread is not None

    def start(self, fn: Callable[..., Any], *args) -> bool:
        """Run fn(*args) on a thread; False (nothing started) while the previous call runs."""
        if self._thread is not None:
            return False

        def work():
            try:
                self._events.put(("done", fn(*args)))
            except MedViewerError as exc:  # reported on the GUI thread; never takes the app down
                self._events.put(("error", str(exc)))
            except Exception as exc:
                self._events.put(("error", f"{type(exc).__name__}: {exc}"))

        self._thread = threading.Thread(target=work, name=f"medviewer-{self.name}", daemon=True)
        self._thread.start()
        self._timer.start()
        return True

    def report(self, payload: Any) -> None:
        """Progress from the worker thread (delivered to on_progress on the GUI thread)."""
        self._events.put(("progress", payload))

    def wait(self, timeout: float = 10.0) -> None:
        """Block until the running call ends and deliver its outcome (closing, tests)."""
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
            self._drain()

    def _drain(self) -> None:
        while True:
            try:
                kind, payload = self._events.get_nowait()
            except queue.Empty:
                return
            if kind == "progress":
                self.on_progress(payload)
                continue
            self._timer.stop()
            self._thread = None
            (self.on_done if kind == "done" else self.on_error)(payload)
            return
