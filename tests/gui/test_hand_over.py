"""medviewer.ui.hand_over, the one way background work reaches the GUI thread: calls land on the
GUI thread in order, exceptions keep their type, progress bursts are delivered once (the latest),
stale tasks and deleted owners get nothing, and a failing call does not stop the others."""
import threading

import pytest

from medviewer.core.errors import Cancelled, MedViewerError
from medviewer.ui import hand_over
from medviewer.ui.qt import QtCore, QtWidgets


@pytest.fixture
def gui(qapp):
    hand_over.ensure()
    return threading.current_thread()


def _from_worker(fn):
    t = threading.Thread(target=fn)
    t.start()
    t.join(30)


def test_calls_from_a_worker_run_on_the_gui_thread_in_order(gui, qtbot):
    seen = []
    _from_worker(lambda: [hand_over.in_gui_thread(lambda n=n: seen.append((n, threading.current_thread())))
                          for n in range(20)])
    assert seen == []  # nothing ran on the worker
    qtbot.waitUntil(lambda: len(seen) == 20, timeout=10_000)
    assert [n for n, _ in seen] == list(range(20)) and all(t is gui for _, t in seen)


def test_a_keyed_burst_is_delivered_once_with_the_latest_value(gui, qtbot):
    seen = []
    _from_worker(lambda: [hand_over.in_gui_thread(seen.append, n, key="progress") for n in range(500)])
    hand_over.flush()
    assert seen == [499]


@pytest.mark.parametrize("error", [Cancelled("stopped"), MedViewerError("x.nii: damaged"), KeyError("k")])
def test_a_task_keeps_the_exception_type(gui, qtbot, error):
    got = []

    def work():
        raise error

    task = hand_over.Task("t", on_done=lambda r: got.append(("done", r)),
                          on_error=lambda exc: got.append((threading.current_thread(), exc)))
    task.start(work)
    qtbot.waitUntil(lambda: bool(got), timeout=10_000)
    assert got[0][0] is gui and got[0][1] is error and type(got[0][1]) is type(error)


def test_progress_then_result_cancel_and_discard(gui, qtbot):
    progress, done = [], []
    started, go_on = threading.Event(), threading.Event()

    def work(report, cancelled):
        for k in range(5):
            report(k / 4, f"step {k}")
        started.set()
        go_on.wait(10)
        if cancelled():
            raise Cancelled("cancelled")
        return 42

    task = hand_over.Task("t", on_done=done.append, on_error=done.append, on_progress=progress.append)
    task.start(work, task.report, task.is_cancelled)
    assert started.wait(10)
    qtbot.waitUntil(lambda: bool(progress), timeout=10_000)
    assert progress[-1] == (1.0, "step 4")
    go_on.set()
    qtbot.waitUntil(lambda: bool(done), timeout=10_000)
    assert done == [42] and not task.running

    cancelled = hand_over.Task("c", on_error=done.append)
    go_on.clear()
    cancelled.start(work, cancelled.report, cancelled.is_cancelled)
    cancelled.cancel()
    go_on.set()
    qtbot.waitUntil(lambda: len(done) == 2, timeout=10_000)
    assert isinstance(done[1], Cancelled)

    stale = hand_over.Task("s", on_done=done.append, on_error=done.append)
    stale.start(lambda: 7)
    stale.discard()
    assert stale.wait(10)
    assert len(done) == 2  # a discarded task delivers nothing


def test_nothing_is_delivered_to_a_deleted_owner(gui, qtbot):
    got = []
    owner = QtWidgets.QWidget()
    release = threading.Event()
    task = hand_over.Task("t", on_done=got.append, owner=owner)
    task.start(lambda: release.wait(10) and 1)
    owner.deleteLater()
    QtCore.QCoreApplication.sendPostedEvents(None, QtCore.QEvent.DeferredDelete)
    release.set()
    assert task.wait(10)
    assert got == []


def test_a_failing_call_is_reported_and_the_next_calls_still_run(gui, qtbot, monkeypatch):
    from medviewer.ui import errors

    reported, seen = [], []
    monkeypatch.setattr(errors, "report_exception", lambda exc, context="": reported.append(exc))

    def boom():
        raise ValueError("bug in a panel")

    _from_worker(lambda: (hand_over.in_gui_thread(boom), hand_over.in_gui_thread(seen.append, 1)))
    qtbot.waitUntil(lambda: bool(seen), timeout=10_000)
    assert seen == [1] and isinstance(reported[0], ValueError)


def test_soon_runs_after_the_signal_and_once(gui, qtbot):
    calls = []
    hand_over.soon(lambda: calls.append(1))
    refresh = _Counter()
    for _ in range(5):
        hand_over.soon(refresh.run)
    assert refresh.n == 0
    hand_over.flush()
    assert refresh.n == 1 and calls == [1]


class _Counter:
    def __init__(self):
        self.n = 0

    def run(self):
        self.n += 1
