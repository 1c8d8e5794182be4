"""Running a registered segmentation model on a volume: check -> normalise -> pad -> sliding
window -> crop back -> argmax, on the input's own grid.

    segment(spec, volume, device=None, progress=None, cancel=None) -> {"labels": Volume (uint8),
        "probabilities": Volume (float32, max foreground softmax probability), "timings": {...},
        "device": str}

The input contract (3D, modality) is checked with ai.inference.check_input before anything runs.
Pre-processing is what training did (training.segmentation.normalise_zscore_nonzero, centre
zero-pad up to the network size); MONAI sliding_window_inference with roi = the training size
lets larger volumes through too. On CUDA the network runs under autocast; a CUDA out-of-memory
error retries with a smaller window (half batch overlap, roi halved where still divisible by 16),
then on the CPU.
"""
from __future__ import annotations

import time
from typing import Any, Callable

import numpy as np

from medviewer.ai.inference import IncompatibleInput, _network, check_input
from medviewer.ai.registry import ModelSpec
from medviewer.core.errors import MedViewerError
from medviewer.core.volume import Volume


class Cancelled(MedViewerError):
    pass


def _smaller_roi(roi: tuple[int, ...]) -> tuple[int, ...] | None:
    """The largest axis halved (kept a multiple of 16, at least 16); None when nothing can shrink."""
    axis = int(np.argmax(roi))
    if roi[axis] // 2 < 16:
        return None
    new = list(roi)
    new[axis] = max(16, (roi[axis] // 2) // 16 * 16)
    return tuple(new)


def segment(spec: ModelSpec, volume: Volume, device: str | None = None,
            progress: Callable[[str], None] | None = None,
            cancel: Callable[[], bool] | None = None) -> dict[str, Any]:
    if spec.task != "segmentation":
        raise IncompatibleInput(f"{spec.name} is a {spec.task} model, not a segmentation model")
    reason = check_input(spec, volume)
    if reason:
        raise IncompatibleInput(reason)
    if volume.data.ndim != 3:
        raise IncompatibleInput(f"{spec.name} expects a grey volume and this one has colour channels")
    import torch
    from monai.inferers import sliding_window_inference

    from medviewer.ai.device import choose_device
    from medviewer.ai.training.segmentation import centre_pad_crop, normalise_zscore_nonzero

    say = progress or (lambda s: None)

    def check_cancel() -> None:
        if cancel is not None and cancel():
            raise Cancelled("segmentation cancelled")

    device = choose_device(device)
    timings: dict[str, float] = {}
    t = time.perf_counter()
    roi = tuple(int(s) for s in spec.input.get("size", [48, 64, 48]))
    shape = volume.shape
    padded_size = tuple(max(n, r) for n, r in zip(shape, roi))
    x, (pads, _) = centre_pad_crop(normalise_zscore_nonzero(volume.data), padded_size)
    inner = tuple(slice(b, s - a) for (b, a), s in zip(pads, padded_size))
    timings["pre"] = time.perf_counter() - t
    check_cancel()

    def run(dev: str, window: tuple[int, ...]) -> np.ndarray:
        t0 = time.perf_counter()
        net = _network(spec, dev)
        timings["load"] = time.perf_counter() - t0
        say(f"segmenting on {dev} (window {window})")
        xt = torch.from_numpy(np.ascontiguousarray(x))[None, None].to(dev)
        with torch.no_grad(), torch.autocast(device_type="cuda", enabled=dev.startswith("cuda")):
            logits = sliding_window_inference(xt, roi_size=window, sw_batch_size=1, predictor=net,
                                              overlap=0.25, mode="gaussian")
        return torch.softmax(logits.float(), dim=1)[0].cpu().numpy()

    t = time.perf_counter()
    window: tuple[int, ...] | None = roi
    while True:
        try:
            probs = run(device, window)
            break
        except torch.cuda.OutOfMemoryError:
            torch.cuda.empty_cache()
            window = _smaller_roi(window) if device.startswith("cuda") else None
            if window is None:  # nothing smaller left on the GPU: the CPU
                if device == "cpu":
                    raise
                say("out of GPU memory: running on the CPU")
                device, window = "cpu", roi
            else:
                say(f"out of GPU memory: retrying with window {window}")
        check_cancel()
    timings["predict"] = time.perf_counter() - t
    check_cancel()
    t = time.perf_counter()
    probs = probs[(slice(None),) + inner]
    labels = probs.argmax(0).astype(np.uint8)
    foreground = probs[1:].max(0).astype(np.float32) if len(probs) > 1 else np.zeros(shape, np.float32)
    n_out = len(probs) - 1
    declared = len(spec.outputs.get("labels", {}))
    if n_out != declared:
        raise MedViewerError(f"{spec.name}: the network gives {n_out} foreground outputs for {declared} labels")
    result = {"labels": volume.copy_geometry(labels),
              "probabilities": volume.copy_geometry(np.clip(foreground, 0.0, 1.0)),
              "device": device, "timings": timings}
    timings["post"] = time.perf_counter() - t
    return result
