"""The one way background work reaches the GUI thread (napari's thread_worker + ensure_main_thread).

    in_gui_thread(fn, *args, key=..., owner=...)  # any thread: fn(*args) soon on the GUI thread
    task = Task("autosave", on_done=..., on_error=..., on_progress=..., owner=widget)
    task.start(fn, *args, **kwargs)        # fn runs on a worker thread (or an executor's)
    task.report(payload)                   # worker side: progress, delivered latest-first
    task.is_cancelled()                    # worker side: has cancel() been called?
    task.cancel(); task.discard(); task.wait(timeout)
    soon(fn, owner=...)                    # GUI side: fn() after the signal now being delivered
    flush()                                # GUI side: run what is pending now (tests, wait=True)

Worker threads never touch a Qt object, not even to emit a signal: they append to a queue and
write one byte to a socket pair; a QSocketNotifier on the GUI thread wakes the event loop, which
runs the queued calls in order. A call posted with a key replaces a pending call with the same key,
so a burst of progress reports is shown once. Exceptions keep their type across the hand-over:
``on_error(exc)`` receives the exception object the worker raised (``Cancelled`` included). A call
whose task was discarded, or whose owner (a QObject) has been deleted, is dropped. An exception
raised by a delivered call goes to ``medviewer.ui.errors.report_exception`` and the remaining calls
still run.
"""
from __future__ import annotations

import atexit
import collections
import socket
import threading
from concurrent.futures import Executor
from typing import Any, Callable

import shiboken6

from medviewer.ui.qt import QtCore

_NO_KEY = object()


class _Dispatcher(QtCore.QObject):
    """Lives on the GUI thread; `post` is the only method other threads call."""

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self._queue: collections.deque = collections.deque()  # (key, fn, args)
        self._latest: dict[Any, tuple[Callable, tuple]] = {}
        self._woken = False
        self._receive, self._send = socket.socketpair()
        self._receive.setblocking(False)
        self._send.setblocking(False)
        self._notifier = QtCore.QSocketNotifier(self._receive.fileno(), QtCore.QSocketNotifier.Read, self)
        self._notifier.activated.connect(self.run_pending)
        atexit.register(self._close)

    def _close(self) -> None:
        """At interpreter exit: the socket pair is closed (nothing is delivered any more)."""
        if shiboken6.isValid(self._notifier):
            self._notifier.setEnabled(False)
        self._send.close()
        self._receive.close()

    def post(self, fn: Callable, args: tuple, key: Any = _NO_KEY) -> None:
        with self._lock:
            if key is not _NO_KEY:
                pending = key in self._latest
                self._latest[key] = (fn, args)
                if pending:
                    return  # the queued entry will run the latest call
            self._queue.append((key, fn, args))
            if self._woken:
                return
            self._woken = True
        try:
            self._send.send(b"\0")
        except (BlockingIOError, OSError):  # the buffer is full: the loop is awake anyway
            pass

    def run_pending(self, *_args) -> None:
        try:
            while self._receive.recv(4096):
                pass
        except (BlockingIOError, OSError):
            pass
        with self._lock:
            self._woken = False
            items = []
            while self._queue:
                key, fn, args = self._queue.popleft()
                if key is not _NO_KEY:
                    fn, args = self._latest.pop(key)
                items.append((fn, args))
        for fn, args in items:
            try:
                fn(*args)
            except Exception as exc:  # one failing call must not drop the others
                from medviewer.ui.errors import report_exception

                report_exception(exc, "while updating the window")


_dispatcher: _Dispatcher | None = None
_create_lock = threading.Lock()


def _get() -> _Dispatcher:
    global _dispatcher
    if _dispatcher is None:
        with _create_lock:
            if _dispatcher is None:
                app = QtCore.QCoreApplication.instance()
                if app is None or QtCore.QThread.currentThread() is not app.thread():
                    raise RuntimeError("the hand-over is created on the GUI thread, once a QApplication exists")
                _dispatcher = _Dispatcher()
    return _dispatcher


def ensure() -> None:
    """Create the dispatcher now (GUI thread): call before any worker may post."""
    _get()


def in_gui_thread(fn: Callable, *args, key: Any = _NO_KEY, owner: QtCore.QObject | None = None) -> None:
    """Run fn(*args) on the GUI thread soon (after the event now being handled). Any thread.
    owner: dropped if this QObject has been deleted by then (a closed panel)."""
    if owner is not None:
        fn, args = _if_alive, (owner, fn, args)
    _get().post(fn, args, key)


def _if_alive(owner: QtCore.QObject, fn: Callable, args: tuple) -> None:
    if shiboken6.isValid(owner):
        fn(*args)


def soon(fn: Callable, owner: QtCore.QObject | None = None) -> None:
    """From the GUI thread: run fn() once the signal now being delivered has returned (a panel
    that rebuilds its Qt items must not delete them under a pending event). Calls of the same fn
    pending at once run once."""
    in_gui_thread(fn, key=("soon", fn), owner=owner)


def flush() -> None:
    """Run every pending call now (GUI thread only): tests, and the synchronous `wait=True` paths."""
    if _dispatcher is not None:
        _dispatcher.run_pending()


class Task:
    """One background call whose outcome is handed to the GUI thread.

    on_done(result), on_error(exception) and on_progress(payload) run on the GUI thread. Without
    on_error an exception is reported to the user (medviewer.ui.errors). A Task runs once; make a
    new one for the next call."""

    def __init__(self, name: str, on_done: Callable[[Any], None] | None = None,
                 on_error: Callable[[BaseException], None] | None = None,
                 on_progress: Callable[[Any], None] | None = None, owner: QtCore.QObject | None = None):
        ensure()
        self.name = name
        self.on_done, self.on_error, self.on_progress = on_done, on_error, on_progress
        self.owner = owner
        self._cancel = threading.Event()
        self._finished = threading.Event()
        self._thread: threading.Thread | None = None
        self._discarded = False
        self.delivered = False
        self.result: Any = None
        self.error: BaseException | None = None

    # --- GUI side ------------------------------------------------------------------------
    def start(self, fn: Callable, *args, executor: Executor | None = None, **kwargs) -> "Task":
        """Run fn(*args, **kwargs) on a new daemon thread, or on `executor`."""
        def work():
            try:
                outcome = ("done", fn(*args, **kwargs))
            except BaseException as exc:  # delivered with its type; never takes the app down
                outcome = ("error", exc)
            kind, value = outcome
            if kind == "done":
                self.result = value
            else:
                self.error = value
            self._finished.set()
            in_gui_thread(self._deliver, kind, value)

        if executor is not None:
            executor.submit(work)
        else:
            self._thread = threading.Thread(target=work, name=f"medviewer-{self.name}", daemon=True)
            self._thread.start()
        return self

    def cancel(self) -> None:
        """Ask the worker to stop (it checks is_cancelled()); on_error then gets its Cancelled."""
        self._cancel.set()

    def discard(self) -> None:
        """Nothing more is delivered (a newer call replaced this one); the worker is asked to stop."""
        self._discarded = True
        self._cancel.set()

    @property
    def running(self) -> bool:
        return not self.delivered and not self._discarded

    def wait(self, timeout: float = 10.0) -> bool:
        """Block until the worker ends and deliver its outcome now (closing, tests). True if it ended."""
        ended = self._finished.wait(timeout)
        if ended:
            flush()
        return ended

    # --- worker side -----------------------------------------------------------------------
    def report(self, *payload) -> None:
        """Progress from the worker; only the latest pending report is delivered."""
        if self.on_progress is not None and not self._discarded:
            value = payload[0] if len(payload) == 1 else payload
            in_gui_thread(self._deliver_progress, value, key=("progress", id(self)))

    def is_cancelled(self) -> bool:
        return self._cancel.is_set()

    # --- delivery (GUI thread) -----------------------------------------------------------------
    def _alive(self) -> bool:
        return not self._discarded and (self.owner is None or shiboken6.isValid(self.owner))

    def _deliver_progress(self, payload) -> None:
        if self._alive() and not self.delivered and self.on_progress is not None:
            self.on_progress(payload)

    def _deliver(self, kind: str, value) -> None:
        if self.delivered:
            return
        self.delivered = True
        if not self._alive():
            return
        if kind == "done":
            if self.on_done is not None:
                self.on_done(value)
        elif self.on_error is not None:
            self.on_error(value)
        else:
            from medviewer.ui.errors import report_exception

            report_exception(value, f"in {self.name}")
