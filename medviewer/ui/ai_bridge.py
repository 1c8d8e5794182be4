"""Hands the inference service's progress and results over to the GUI thread.

The service calls back on its worker threads; those callbacks only put the job on a thread-safe
queue. A QTimer on the GUI thread drains the queue and emits Qt signals there, so no Qt object is
ever touched from a worker thread (not even to emit a signal).
"""
from __future__ import annotations

import queue

from medviewer.ai.service import InferenceService, Job
from medviewer.ui.qt import QtCore, Signal

POLL_MS = 25


class AIBridge(QtCore.QObject):
    progress = Signal(object)  # Job (fraction, message changed)
    finished = Signal(object)  # Job (done, failed or cancelled)

    def __init__(self, service: InferenceService | None = None, parent=None):
        super().__init__(parent)
        self.service = service or InferenceService()
        self._events: queue.SimpleQueue = queue.SimpleQueue()
        self.jobs: list[Job] = []  # not yet finished
        self._timer = QtCore.QTimer(self)
        self._timer.setInterval(POLL_MS)
        self._timer.timeout.connect(self._drain)

    def submit(self, task: str, spec, volume, **options) -> Job:
        job = self.service.submit(task, spec, volume, **options)
        self.jobs.append(job)
        job.on_progress(lambda j: self._events.put(("progress", j)))
        job.on_done(lambda j: self._events.put(("finished", j)))
        self._timer.start()
        return job

    def _drain(self) -> None:
        latest_progress: dict[int, Job] = {}
        finished: list[Job] = []
        while True:
            try:
                kind, job = self._events.get_nowait()
            except queue.Empty:
                break
            if kind == "progress":
                latest_progress[job.id] = job  # a burst of tile updates is shown once
            else:
                finished.append(job)
        for job in latest_progress.values():
            if not job.done():
                self.progress.emit(job)
        for job in finished:
            if job in self.jobs:
                self.jobs.remove(job)
            self.finished.emit(job)
        if not self.jobs and self._events.empty():
            self._timer.stop()

    def cancel_all(self) -> None:
        for job in list(self.jobs):
            job.cancel()

    def shutdown(self, wait: float = 2.0) -> None:
        self._timer.stop()
        self.service.shutdown(wait)
