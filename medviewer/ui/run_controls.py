"""Run / Cancel, a progress bar and one status line for a panel's background job (hand_over.Task).

    controls = RunControls("Run")
    controls.run_clicked.connect(panel.run)
    controls.start("denoise", fn, *args, on_done=panel.show_result, **kwargs)
        # fn(*args, progress=..., cancel=..., **kwargs) runs on a worker thread; progress(fraction,
        # message) moves the bar, cancel() is True once Cancel was pressed
    controls.running; controls.cancel(); controls.wait(timeout)
    controls.say("one line")             # the status line (also for errors found before a run)

on_done(result) runs on the GUI thread; an error never reaches it: a Cancelled run says
"Cancelled: nothing was changed.", a MedViewerError its own one-line message, anything else the
one line of medviewer.ui.errors.user_message (its stack goes to the log file), so a panel changes
nothing unless its job finished. `finished` is emitted after every end (done, failed, cancelled).
"""
from __future__ import annotations

from typing import Any, Callable

from medviewer.core.errors import Cancelled, MedViewerError
from medviewer.ui.hand_over import Task
from medviewer.ui.qt import QtWidgets, Signal


def one_line(exc: BaseException, context: str) -> str:
    """What the status line says about a failed job: never a traceback, never several lines."""
    if isinstance(exc, Cancelled):
        return "Cancelled: nothing was changed."
    if isinstance(exc, MedViewerError):
        reason = str(exc)
    else:
        from medviewer.ui.errors import user_message

        reason, log = user_message(exc, context)
        reason = reason + (f" (details: {log})" if log else "")
    return " ".join(reason.split()) or type(exc).__name__


class RunControls(QtWidgets.QWidget):
    run_clicked = Signal()
    finished = Signal(bool)  # True when the job finished and its result was handed on

    def __init__(self, run_text: str = "Run", parent=None):
        super().__init__(parent)
        self.run_button = QtWidgets.QPushButton(run_text)
        self.cancel_button = QtWidgets.QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        self.progress = QtWidgets.QProgressBar()
        self.progress.setRange(0, 1000)
        self.progress.setValue(0)
        self.status = QtWidgets.QLabel("")
        self.status.setWordWrap(True)
        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        row = QtWidgets.QHBoxLayout()
        row.addWidget(self.run_button)
        row.addWidget(self.cancel_button)
        layout.addLayout(row)
        layout.addWidget(self.progress)
        layout.addWidget(self.status)
        self.run_button.clicked.connect(self.run_clicked)
        self.cancel_button.clicked.connect(self.cancel)
        self.task: Task | None = None
        self.error: str = ""  # the last failure's line ('' after a success)

    @property
    def running(self) -> bool:
        return self.task is not None and self.task.running

    def say(self, text: str) -> None:
        self.status.setText(text)

    def start(self, name: str, fn: Callable, *args, on_done: Callable[[Any], None], **kwargs) -> Task | None:
        """Run fn on a worker thread with progress/cancel; None (and nothing started) while a job runs."""
        if self.running:
            return None
        self.error = ""
        self._on_done, self._name = on_done, name
        task = self.task = Task(name, on_done=self._done, on_error=self._failed,
                                on_progress=self._progress, owner=self)
        self.run_button.setEnabled(False)
        self.cancel_button.setEnabled(True)
        self.progress.setValue(0)
        self.say(f"Running {name}…")
        task.start(fn, *args, progress=task.report, cancel=task.is_cancelled, **kwargs)
        return task

    def cancel(self) -> None:
        if self.running:
            self.task.cancel()
            self.say("Cancelling…")

    def wait(self, timeout: float = 60.0) -> bool:
        """Block until the job ends and deliver its outcome (tests, closing)."""
        return self.task is None or self.task.wait(timeout)

    def _progress(self, payload) -> None:
        fraction, message = payload if isinstance(payload, tuple) else (payload, "")
        self.progress.setValue(int(round(1000 * max(0.0, min(1.0, float(fraction))))))
        if message:
            self.say(str(message))

    def _ended(self) -> None:
        self.run_button.setEnabled(True)
        self.cancel_button.setEnabled(False)

    def _done(self, result) -> None:
        self._ended()
        self.progress.setValue(1000)
        try:
            self._on_done(result)
        except MedViewerError as exc:  # the result could not be shown (its image was closed ...)
            self._failed(exc)
            return
        self.finished.emit(True)

    def _failed(self, exc: BaseException) -> None:
        self._ended()
        self.progress.setValue(0)
        self.error = one_line(exc, f"in {self._name}")
        self.say(self.error)
        self.finished.emit(False)
