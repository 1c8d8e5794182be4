"""The one inference template (after MONAI Label's BasicInferTask): check -> pre -> predict ->
invert -> post, timed per stage, cancellable between stages (and, inside predict, between tiles or
batches), with the device choice and the out-of-memory fallback in one place.

    task = SomeTask(spec, **options)             # one per run
    result = task(volume, device=None, progress=None, cancel=None)   # a typed Result (tasks.results)

A subclass declares `kind` (the manifest task it runs) and implements pre / predict / post
(invert when it has something to map back: a resampled grid, a padding). The template:
- refuses a model of another kind and an input outside the model's contract (ai.inference
  check_input) before anything runs, with the reason (IncompatibleInput);
- chooses the device (ai.device; CPU-only tasks set `torch = False` and never import torch);
- times every stage into result.timings (plus "load" when a network is loaded, not counted in
  "predict");
- checks the cancel callable between stages and whenever a subclass calls run.check_cancel();
- runs predict through run_with_fallback (torch tasks): out of GPU memory -> smaller windows ->
  the CPU; out of memory on the CPU -> one clear error.
Networks are cached per (model folder, device) and reloaded when the weights file changes.
"""
from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from medviewer.ai.inference import IncompatibleInput, check_input
from medviewer.ai.registry import ModelSpec
from medviewer.ai.tasks.results import Result
from medviewer.core.errors import Cancelled, MedViewerError
from medviewer.core.volume import Volume

Progress = Callable[[float, str], None]
_cache: dict[tuple[str, str], tuple[float, Any]] = {}


@dataclass
class Run:
    """The state of one call: the input, the device, the timings, progress and cancel."""
    volume: Volume
    device: str
    title: str
    report: Progress
    cancel: Callable[[], bool] | None
    timings: dict[str, float] = field(default_factory=dict)
    fraction: float = 0.0
    data: Any = None  # what pre returned (invert and post may need it: a grid, a padding)

    def say(self, message: str, fraction: float | None = None) -> None:
        if fraction is not None:
            self.fraction = min(1.0, max(self.fraction, fraction))
        self.report(self.fraction, message)

    def check_cancel(self) -> None:
        if self.cancel is not None and self.cancel():
            raise Cancelled(f"{self.title} cancelled")

    @contextmanager
    def timed(self, name: str):
        """Adds the time spent inside to timings[name]."""
        t = time.perf_counter()
        try:
            yield
        finally:
            self.timings[name] = self.timings.get(name, 0.0) + time.perf_counter() - t


class InferTask:
    kind = ""  # the manifest task this runs: classification, segmentation, anomaly
    title = ""  # in messages: "classification", "Grad-CAM" ...
    torch = True  # False: CPU only, torch is never imported
    framework = "torch"  # the manifest framework it runs (None: any)

    def __init__(self, spec: ModelSpec, **options: Any):
        self.spec = spec
        self.options = options

    # --- the template -----------------------------------------------------------------------
    def __call__(self, volume: Volume, device: str | None = None, progress: Progress | None = None,
                 cancel: Callable[[], bool] | None = None) -> Result:
        self.check(volume)
        device = self.choose_device(device)
        run = Run(volume, device, self.title or self.kind, progress or (lambda fraction, message: None), cancel)
        run.check_cancel()
        data = run.data = self._stage(run, "pre", self.pre, run)
        run.check_cancel()
        loading = run.timings.get("load", 0.0)
        out = self._stage(run, "predict", self._predict, run, data)
        run.timings["predict"] -= run.timings.get("load", 0.0) - loading  # a network load is "load"
        run.check_cancel()
        out = self._stage(run, "invert", self.invert, run, out)
        result = self._stage(run, "post", self.post, run, out)
        result.device, result.timings = run.device, run.timings
        run.say("done", 1.0)
        return result

    @staticmethod
    def _stage(run: Run, name: str, step: Callable, *args):
        with run.timed(name):
            return step(*args)

    def _predict(self, run: Run, data):
        if not self.torch:
            return self.predict(run, data, run.device, None)

        def attempt(device: str, window):
            return self.predict(run, data, device, window)

        out, run.device = run_with_fallback(attempt, run.device, self.window(), run.say, run.check_cancel)
        return out

    # --- what subclasses refine -------------------------------------------------------------
    def check(self, volume: Volume) -> None:
        """Raises IncompatibleInput when this model cannot run on this image."""
        spec = self.spec
        if self.kind and spec.task != self.kind:
            raise IncompatibleInput(f"{spec.name} is a {spec.task} model, not a {self.kind} model")
        if self.framework and spec.manifest.get("framework", "torch") != self.framework:
            raise IncompatibleInput(f"{spec.name} is a {spec.manifest.get('framework')} model; "
                                    f"{self.title or self.kind} runs {self.framework} models")
        reason = check_input(spec, volume)
        if reason:
            raise IncompatibleInput(reason)

    def choose_device(self, device: str | None) -> str:
        if not self.torch:
            return "cpu"
        from medviewer.ai.device import choose_device

        return choose_device(device)

    def window(self) -> tuple[int, ...] | None:
        """The sliding-window size the out-of-memory ladder may shrink (None: none, straight to the CPU)."""
        return None

    def pre(self, run: Run):
        return run.volume.data

    def predict(self, run: Run, data, device: str, window):
        raise NotImplementedError

    def invert(self, run: Run, out):
        return out

    def post(self, run: Run, out) -> Result:
        raise NotImplementedError

    def network(self, run: Run, device: str | None = None, eager: bool = False):
        """The model's network on `device` (default the run's), cached; its load time is timed.
        eager: the MONAI module itself, never its TorchScript export (hooks such as Grad-CAM's
        need the module's named layers)."""
        with run.timed("load"):
            return network(self.spec, device or run.device, eager)


def network(spec: ModelSpec, device: str, eager: bool = False):
    """The cached network of a model on a device (MONAI Label style: reloaded when the weights
    file changes)."""
    from medviewer.ai.backends.torch_loader import load_network

    key = (str(spec.folder), device, eager)
    mtime = spec.weights_path.stat().st_mtime
    cached = _cache.get(key)
    if cached is None or cached[0] != mtime:
        _cache[key] = (mtime, load_network(spec, device, eager=eager))
    return _cache[key][1]


# --- out of memory -----------------------------------------------------------------------------
def _smaller_roi(roi: tuple[int, ...]) -> tuple[int, ...] | None:
    """The largest axis halved (kept a multiple of 16, at least 16); None when nothing can shrink."""
    axis = int(np.argmax(roi))
    if roi[axis] // 2 < 16:
        return None
    new = list(roi)
    new[axis] = max(16, (roi[axis] // 2) // 16 * 16)
    return tuple(new)


def _is_out_of_memory(exc: BaseException) -> bool:
    import torch

    return isinstance(exc, torch.cuda.OutOfMemoryError) or (
        isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower())


def run_with_fallback(run: Callable[[str, Any], Any], device: str, roi: tuple[int, ...] | None,
                      say: Callable[[str], None], check_cancel: Callable[[], None] = lambda: None):
    """run(device, window) with the out-of-memory ladder: on a GPU, smaller windows, then the CPU
    with the original window (roi None: straight to the CPU). Returns (result, device it ran on).
    Out of memory on the CPU is reported as a clear error."""
    window = roi
    while True:
        try:
            return run(device, window), device
        except (RuntimeError, MemoryError) as exc:
            if not (isinstance(exc, MemoryError) or _is_out_of_memory(exc)):
                raise
            if device == "cpu":
                raise MedViewerError("out of memory on the CPU: close other images or use a smaller "
                                     "input") from exc
            if device.startswith("cuda"):
                import torch

                torch.cuda.empty_cache()
            window = _smaller_roi(window) if device.startswith("cuda") and window else None
            if window is None:  # nothing smaller left on the GPU: the CPU
                say(f"out of memory on {device}: running on the CPU")
                device, window = "cpu", roi
            else:
                say(f"out of GPU memory: retrying with window {window}")
        check_cancel()
