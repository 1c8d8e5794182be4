"""The background inference service (no Qt): a worker thread per device takes jobs from its queue.

    service = InferenceService()
    job = service.submit("segment", spec, volume)      # returns at once
    job.on_progress(lambda job: ...)                     # called from the worker thread
    job.on_done(lambda job: ...)                         # called once, from the worker thread
    job.cancel()                                         # checked between tiles / batches
    job.wait(timeout) -> bool; job.state, job.fraction, job.message, job.result, job.error,
    job.timings (queued, per pipeline stage, total), job.device; job.result is a typed result
    (ai.tasks.results: ClassificationResult, SegmentationResult, AnomalyResult, ExplanationResult)

Tasks: "classify", "segment", "gradcam", "occlusion", "anomaly" (ai.tasks.TASKS), each run by the
inference template (ai.tasks.make_task). Jobs for one device run one after another in submission
order, so two runs started quickly queue rather than race; the network of each model is cached
per device by ai.tasks.base and reloaded when its weights change.
A failing job (an exception, out of memory) ends in state "failed" with a one-line error; the
input volume is never modified. Callbacks run on the worker thread: a GUI must hand them over to
its own thread (medviewer.ui.ai_bridge does, without touching Qt objects from the worker).
"""
from __future__ import annotations

import itertools
import os
import queue
import threading
import time
import traceback
from typing import Any, Callable

from medviewer.ai.registry import ModelSpec
from medviewer.ai.tasks import TASKS
from medviewer.ai.tasks.results import Result
from medviewer.core.errors import Cancelled, MedViewerError
from medviewer.core.volume import Volume

_ids = itertools.count(1)


class Job:
    def __init__(self, task: str, spec: ModelSpec, volume: Volume, options: dict[str, Any]):
        self.id = next(_ids)
        self.task, self.spec, self.volume, self.options = task, spec, volume, options
        self.state = "queued"  # running, done, failed, cancelled
        self.fraction, self.message = 0.0, "queued"
        self.result: Result | None = None  # a typed result of ai.tasks.results
        self.error = ""
        self.device = ""
        self.timings: dict[str, float] = {}
        self.submitted = time.perf_counter()
        self.started_at: float | None = None  # perf_counter() when a worker took it
        self.finished_at: float | None = None
        self._cancel = threading.Event()
        self._done = threading.Event()
        self._lock = threading.Lock()
        self._progress_callbacks: list[Callable[["Job"], None]] = []
        self._done_callbacks: list[Callable[["Job"], None]] = []

    @property
    def model(self) -> str:
        return self.spec.name

    # --- control ---------------------------------------------------------------------------
    def cancel(self) -> None:
        self._cancel.set()

    @property
    def cancel_requested(self) -> bool:
        return self._cancel.is_set()

    def done(self) -> bool:
        return self._done.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        return self._done.wait(timeout)

    def on_progress(self, callback: Callable[["Job"], None]) -> None:
        self._progress_callbacks.append(callback)

    def on_done(self, callback: Callable[["Job"], None]) -> None:
        with self._lock:
            if not self._done.is_set():
                self._done_callbacks.append(callback)
                return
        callback(self)

    # --- worker side -----------------------------------------------------------------------
    def _progress(self, fraction: float, message: str) -> None:
        self.fraction, self.message = max(self.fraction, min(1.0, float(fraction))), message
        for cb in list(self._progress_callbacks):
            cb(self)

    def _finish(self, state: str) -> None:
        self.state = state
        self.finished_at = time.perf_counter()
        self.timings["total"] = self.finished_at - self.submitted
        with self._lock:
            self._done.set()
            callbacks, self._done_callbacks = self._done_callbacks, []
        for cb in callbacks:
            cb(self)

    def __repr__(self) -> str:
        return f"<Job {self.id} {self.task} {self.model} {self.state} {self.fraction:.0%}>"


def run_task(task: str, spec: ModelSpec, volume: Volume, device: str | None,
             progress: Callable[[float, str], None], cancel: Callable[[], bool], **options) -> Result:
    """One task, synchronously (what a worker runs; the command line calls it too): the inference
    template of ai.tasks for this task and model."""
    from medviewer.ai.tasks import make_task

    return make_task(task, spec, **options)(volume, device, progress=progress, cancel=cancel)


class _Worker(threading.Thread):
    def __init__(self, device: str | None, threads: int | None = None):
        super().__init__(name=f"medviewer-inference-{device or 'auto'}", daemon=True)
        self.requested, self.threads = device, threads
        self.jobs: queue.Queue[Job | None] = queue.Queue()
        self.current: Job | None = None

    def run(self) -> None:
        while True:
            job = self.jobs.get()
            if job is None:
                return
            self.current = job
            try:
                self._run(job)
            finally:
                self.current = None

    def _run(self, job: Job) -> None:
        if job.cancel_requested:
            job.message = "cancelled before it started"
            job._finish("cancelled")
            return
        job.state = "running"
        job.started_at = time.perf_counter()
        job.timings["queued"] = job.started_at - job.submitted
        job._progress(0.0, f"starting {job.task} with {job.model}")
        try:
            from medviewer.ai.device import choose_device

            device = choose_device(self.requested)
            job.device = device
            if device == "cpu" and self.threads:
                import torch

                from medviewer.ai.backends.onnx_runtime import set_threads

                set_threads(self.threads)
                if torch.get_num_threads() != self.threads:
                    torch.set_num_threads(self.threads)
            result = run_task(job.task, job.spec, job.volume, device, job._progress, lambda: job.cancel_requested,
                              **job.options)
        except BaseException as exc:  # a job must never take the worker (or the app) down
            if isinstance(exc, Cancelled) or job.cancel_requested:
                job.message = "cancelled"
                job._finish("cancelled")
            else:
                job.error = _describe(exc)
                job.message = "failed"
                if not isinstance(exc, MedViewerError):
                    job.options["traceback"] = traceback.format_exc(limit=6)
                job._finish("failed")
            return
        job.timings.update({k: float(v) for k, v in result.timings.items()})
        job.device = result.device or job.device
        if job.cancel_requested:  # asked while the last stage ran: no partial result is delivered
            job.message = "cancelled"
            job._finish("cancelled")
            return
        job.result = result
        job.fraction, job.message = 1.0, "done"
        job._finish("done")


def _describe(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    if "out of memory" in text.lower() or isinstance(exc, MemoryError):
        return f"out of memory: {text[:200]}"
    return text[:300] if isinstance(exc, MedViewerError) else f"{type(exc).__name__}: {text[:280]}"


class InferenceService:
    """Queues jobs on one worker thread per requested device ("auto" by default)."""

    def __init__(self, device: str | None = None, cpu_threads: int | None = None):
        """cpu_threads: torch threads for models on the CPU; by default one core is left to the
        GUI (all cores but one), so the window keeps painting while a model runs."""
        self.device = device or os.environ.get("MEDVIEWER_DEVICE") or None
        self.cpu_threads = cpu_threads or max(1, (os.cpu_count() or 2) - 1)
        self._workers: dict[str, _Worker] = {}
        self._lock = threading.Lock()
        self._closed = False

    def _worker(self, device: str | None) -> _Worker:
        key = (device or "auto").lower()
        with self._lock:
            worker = self._workers.get(key)
            if worker is None:
                worker = self._workers[key] = _Worker(device, self.cpu_threads)
                worker.start()
            return worker

    def submit(self, task: str, spec: ModelSpec, volume: Volume, device: str | None = None, **options) -> Job:
        if self._closed:
            raise MedViewerError("the inference service is shut down")
        if task not in TASKS:
            raise MedViewerError(f"unknown task {task!r}; use one of {', '.join(TASKS)}")
        job = Job(task, spec, volume, options)
        self._worker(device or self.device).jobs.put(job)
        return job

    def running(self) -> list[Job]:
        return [w.current for w in self._workers.values() if w.current is not None]

    def cancel_all(self) -> None:
        for worker in self._workers.values():
            with worker.jobs.mutex:
                pending = [j for j in worker.jobs.queue if j is not None]
            for job in pending:
                job.cancel()
            if worker.current is not None:
                worker.current.cancel()

    def shutdown(self, wait: float = 0.0) -> None:
        """Cancel everything and stop the workers (waiting up to `wait` seconds for them)."""
        self._closed = True
        self.cancel_all()
        for worker in self._workers.values():
            worker.jobs.put(None)
        deadline = time.monotonic() + wait
        for worker in self._workers.values():
            worker.join(max(0.0, deadline - time.monotonic()))
