"""Hands the inference service's progress and results over to the GUI thread.

The service calls back on its worker threads; those callbacks only post to medviewer.ui.hand_over
(a burst of tile updates is delivered once, the latest), which emits the Qt signals on the GUI
thread, so no Qt object is ever touched from a worker thread (not even to emit a signal).
"""
from __future__ import annotations

from medviewer.ai.service import InferenceService, Job
from medviewer.ui import hand_over
from medviewer.ui.qt import QtCore, Signal


class AIBridge(QtCore.QObject):
    progress = Signal(object)  # Job (fraction, message changed)
    finished = Signal(object)  # Job (done, failed or cancelled)

    def __init__(self, service: InferenceService | None = None, parent=None):
        super().__init__(parent)
        hand_over.ensure()
        self.service = service or InferenceService()
        self.jobs: list[Job] = []  # not yet finished

    def submit(self, task: str, spec, volume, **options) -> Job:
        job = self.service.submit(task, spec, volume, **options)
        self.jobs.append(job)
        job.on_progress(lambda j: hand_over.in_gui_thread(self._progressed, j, key=("job", j.id), owner=self))
        job.on_done(lambda j: hand_over.in_gui_thread(self._finished, j, owner=self))
        return job

    def _progressed(self, job: Job) -> None:
        if not job.done():
            self.progress.emit(job)

    def _finished(self, job: Job) -> None:
        if job in self.jobs:
            self.jobs.remove(job)
        self.finished.emit(job)

    def cancel_all(self) -> None:
        for job in list(self.jobs):
            job.cancel()

    def shutdown(self, wait: float = 2.0) -> None:
        self.service.shutdown(wait)
