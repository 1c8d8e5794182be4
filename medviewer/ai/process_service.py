"""The inference service in a process of its own, so that the GUI process never imports torch.

Importing torch holds Python's GIL for 0.3-0.6 s in one piece (loading libtorch_cpu.so and its
static initialisers: measured with a 2 ms probe thread on this machine), and every event handler of
the window is Python: a thread that imports or warms torch freezes the window for that long, once.
A child process does not. ProcessInferenceService has the interface of ai.service.InferenceService
(what ui.ai_bridge uses) and hands out the same ai.service.Job objects:

    service = ProcessInferenceService()
    service.warm_up(specs)        # start the child now (returns at once): it imports torch and runs
                                  # each model once, in this order, on a synthetic input of its contract
    job = service.submit("segment", spec, volume)      # Job: state, progress, result from the child
    job.cancel(); service.cancel_all(); service.shutdown(wait)

The child (multiprocessing, "spawn": no fork of a process with Qt threads) runs an
ai.service.InferenceService; a real job submitted while warm-up runs cancels the warm-ups (all but
a running one of the same model, which does what the job needs first). Messages are pickled (protocol 5) with their arrays sent out of band: nothing is copied
on the sending side and a pipe write releases the GIL, so a large volume travels on the sender
thread without holding up the window. When the child dies its jobs fail with one line saying so,
and the next submit starts a new one.
"""
from __future__ import annotations

import multiprocessing
import os
import pickle
import queue
import threading
import time
from dataclasses import fields
from pathlib import Path
from typing import Any

import numpy as np

from medviewer.ai.registry import ModelSpec
from medviewer.ai.service import Job
from medviewer.ai.tasks import TASKS
from medviewer.core.errors import MedViewerError
from medviewer.core.volume import Volume

WARM_TASKS = {"classification": "classify", "segmentation": "segment", "anomaly": "anomaly"}


# --- the wire: pickle protocol 5, arrays out of band -----------------------------------------------
def send(conn, message) -> None:
    buffers: list[pickle.PickleBuffer] = []
    header = pickle.dumps(message, protocol=5, buffer_callback=buffers.append)
    conn.send_bytes(len(buffers).to_bytes(4, "little") + header)
    for buffer in buffers:
        conn.send_bytes(buffer.raw())


def receive(conn):
    head = conn.recv_bytes()
    count = int.from_bytes(head[:4], "little")
    buffers = [bytearray(conn.recv_bytes()) for _ in range(count)]  # writeable arrays, as in-process
    return pickle.loads(head[4:], buffers=buffers)


def volume_state(volume: Volume) -> dict[str, Any]:
    """The fields of a Volume to rebuild it in the child; metadata entries that do not pickle
    (a reader's objects) stay behind."""
    state = {f.name: getattr(volume, f.name) for f in fields(Volume)}
    kept = {}
    for key, value in volume.metadata.items():
        try:
            pickle.dumps(value, protocol=5, buffer_callback=lambda b: None)
        except Exception:  # noqa: BLE001 - anything pickle refuses
            continue
        kept[key] = value
    state["metadata"] = kept
    return state


def synthetic_volume(spec: ModelSpec) -> Volume:
    """A random image inside the model's contract (dims, modality, extent, grey), for warm-up."""
    contract = spec.input
    rng = np.random.default_rng(0)
    if contract.get("dims") == 2:
        return Volume(rng.integers(0, 256, (1, 256, 256), dtype=np.uint8), is_2d=True,
                      modality=str(contract.get("modality", "")))
    spacing = [float(s) for s in contract.get("spacing") or (1.0, 1.0, 1.0)]
    extent = (contract.get("extent_mm") or {}).get("median")
    if extent:  # x, y, z mm along the model's axes
        shape_zyx = tuple(max(8, int(round(e / s))) for e, s in zip(reversed(extent), reversed(spacing)))
    else:
        shape_zyx = tuple(int(v) for v in contract.get("size") or (32, 32, 32))
    direction = np.asarray(contract.get("direction") or np.eye(3).ravel(), float).reshape(3, 3)
    return Volume(rng.normal(100, 20, shape_zyx).astype(np.float32), spacing=tuple(spacing), direction=direction,
                  modality=str(contract.get("modality", "")))


# --- the child ---------------------------------------------------------------------------------------
def serve(conn, cpu_threads: int | None) -> None:
    """The child's main loop: jobs in, progress and results out, until "stop" or the parent leaves."""
    from medviewer.ai.service import InferenceService

    service = InferenceService(cpu_threads=cpu_threads)
    lock = threading.Lock()
    jobs: dict[int, Job] = {}
    warming: list[Job] = []

    def post(message) -> None:
        with lock:
            try:
                send(conn, message)
            except (OSError, EOFError):  # the parent is gone; the loop below ends on its own
                pass

    def progressed(pid: int, job: Job) -> None:
        post(("progress", pid, job.state, job.fraction, job.message, job.device))

    def finished(pid: int, job: Job) -> None:
        jobs.pop(pid, None)
        post(("done", pid, job.state, job.message, job.error, job.device, job.timings, job.result,
              job.options.get("traceback")))

    while True:
        try:
            message = receive(conn)
        except (EOFError, OSError):
            break
        kind = message[0]
        if kind == "stop":
            break
        if kind == "warm":
            for folder, manifest in message[1]:
                spec = ModelSpec(Path(folder), manifest)
                task = WARM_TASKS.get(spec.task)
                if task and spec.input.get("features", {}).get("region") != "roi":
                    try:
                        warming.append(service.submit(task, spec, synthetic_volume(spec)))
                    except Exception:  # noqa: BLE001 - a warm-up is optional; the real run will say
                        pass
        elif kind == "submit":
            _, pid, task, (folder, manifest), state, device, options = message
            for job in warming:  # the user waits: only a warm-up of this very model may go on
                if not (job.state == "running" and str(job.spec.folder) == folder):
                    job.cancel()
            warming.clear()
            try:
                job = jobs[pid] = service.submit(task, ModelSpec(Path(folder), manifest), Volume(**state),
                                                 device, **options)
            except Exception as exc:  # noqa: BLE001 - a volume or a task the child refuses
                post(("done", pid, "failed", "failed", " ".join(str(exc).split())[:300] or type(exc).__name__,
                      "", {}, None, None))
                continue
            job.on_progress(lambda j, pid=pid: progressed(pid, j))
            job.on_done(lambda j, pid=pid: finished(pid, j))
        elif kind == "cancel" and message[1] in jobs:
            jobs[message[1]].cancel()
    service.shutdown(wait=2.0)


# --- the parent ------------------------------------------------------------------------------------
class _RemoteJob(Job):
    def __init__(self, service: "ProcessInferenceService", *args):
        super().__init__(*args)
        self._service = service

    def cancel(self) -> None:
        super().cancel()
        self._service._post(("cancel", self.id))


class ProcessInferenceService:
    """ai.service.InferenceService's interface, the work done in a child process (see the module doc)."""

    def __init__(self, device: str | None = None, cpu_threads: int | None = None):
        self.device = device or os.environ.get("MEDVIEWER_DEVICE") or None
        self.cpu_threads = cpu_threads
        self._jobs: dict[int, Job] = {}
        self._lock = threading.Lock()
        self._process = None
        self._outbox: queue.Queue | None = None
        self._closed = False

    # --- the child's life ---------------------------------------------------------------------
    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def _ensure_started(self) -> None:
        with self._lock:
            if self._process is not None and self._process.is_alive():
                return
            context = multiprocessing.get_context("spawn")
            mine, theirs = context.Pipe(duplex=True)
            process = context.Process(target=serve, args=(theirs, self.cpu_threads), name="medviewer-ai",
                                      daemon=True)
            process.start()
            theirs.close()
            outbox: queue.Queue = queue.Queue()
            self._process, self._outbox = process, outbox
            threading.Thread(target=self._send_loop, args=(mine, outbox), name="medviewer-ai-send",
                             daemon=True).start()
            threading.Thread(target=self._receive_loop, args=(mine, process), name="medviewer-ai-receive",
                             daemon=True).start()

    def _post(self, message) -> None:
        outbox = self._outbox
        if outbox is not None:
            outbox.put(message)

    @staticmethod
    def _send_loop(conn, outbox: queue.Queue) -> None:
        while True:
            message = outbox.get()
            if message is None:
                return
            try:
                send(conn, message)
            except (OSError, EOFError, ValueError):  # the child is gone: the receive loop reports it
                return

    def _receive_loop(self, conn, process) -> None:
        while True:
            try:
                message = receive(conn)
            except (EOFError, OSError):
                break
            job = self._jobs.get(message[1])
            if job is None:
                continue
            if message[0] == "progress":
                _, _, state, fraction, text, device = message
                if state == "running" and job.started_at is None:
                    job.state, job.started_at, job.device = "running", time.perf_counter(), device
                    job.timings["queued"] = job.started_at - job.submitted
                job._progress(fraction, text)
            elif message[0] == "done":
                _, _, state, text, error, device, timings, result, trace = message
                self._jobs.pop(job.id, None)
                job.message, job.error, job.device, job.result = text, error, device or job.device, result
                job.timings.update({k: v for k, v in timings.items() if k not in ("queued", "total")})
                if trace:
                    job.options["traceback"] = trace
                if state == "done":
                    job.fraction = 1.0
                job._finish(state)
        process.join(5.0)
        with self._lock:
            if self._process is process:
                self._process, self._outbox = None, None
        why = "it was shut down" if self._closed else f"exit code {process.exitcode}"
        for job in list(self._jobs.values()):
            if job.done():
                continue
            self._jobs.pop(job.id, None)
            if job.cancel_requested:
                job.message = "cancelled"
                job._finish("cancelled")
            else:
                job.error, job.message = f"the AI process stopped ({why}); run it again", "failed"
                job._finish("failed")

    # --- InferenceService's interface ------------------------------------------------------------
    def warm_up(self, specs: list[ModelSpec]) -> None:
        """Start the child and have it import torch and run each model once; returns at once."""
        if self._closed:
            return
        models = [(str(s.folder), s.manifest) for s in specs]

        def start() -> None:
            self._ensure_started()
            self._post(("warm", models))

        threading.Thread(target=start, name="medviewer-ai-warm-up", daemon=True).start()

    def submit(self, task: str, spec: ModelSpec, volume: Volume, device: str | None = None, **options) -> Job:
        if self._closed:
            raise MedViewerError("the inference service is shut down")
        if task not in TASKS:
            raise MedViewerError(f"unknown task {task!r}; use one of {', '.join(TASKS)}")
        job = _RemoteJob(self, task, spec, volume, options)
        self._jobs[job.id] = job
        self._ensure_started()
        self._post(("submit", job.id, task, (str(spec.folder), spec.manifest), volume_state(volume),
                    device or self.device, options))
        return job

    def running(self) -> list[Job]:
        return [j for j in self._jobs.values() if j.state == "running"]

    def cancel_all(self) -> None:
        for job in list(self._jobs.values()):
            job.cancel()

    def shutdown(self, wait: float = 0.0) -> None:
        """Cancel everything and stop the child (waiting up to `wait` seconds, then ending it)."""
        self._closed = True
        self.cancel_all()
        process = self._process
        self._post(("stop",))
        self._post(None)
        if process is not None:
            process.join(wait)
            if process.is_alive():
                process.terminate()
