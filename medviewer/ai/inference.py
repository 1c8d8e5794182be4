"""Running a registered model on an image: contract check -> pre-process -> predict -> post.

Classification today (probabilities per class). Inputs that break the model's declared contract
(wrong modality, a 3D volume for a 2D model) are refused before anything runs, with the reason.
Networks are cached per (model folder, device) and reloaded when the weights file changes.
"""
from __future__ import annotations

import time
from typing import Any, Callable

import numpy as np

from medviewer.ai.registry import ModelSpec
from medviewer.core.errors import MedViewerError
from medviewer.core.volume import Volume

# modalities a model declared for one of these also accepts (radiographs come as CR, DX or XR)
MODALITY_FAMILIES = [{"XR", "CR", "DX", "RG"}]
_cache: dict[tuple[str, str], tuple[float, Any]] = {}


class IncompatibleInput(MedViewerError):
    pass


def _same_modality(declared: str, actual: str) -> bool:
    if not declared or not actual or declared == actual:
        return True
    return any(declared in fam and actual in fam for fam in MODALITY_FAMILIES)


def check_input(spec: ModelSpec, volume: Volume) -> str:
    """'' when the model can run on this image, else why not."""
    contract = spec.input
    dims = contract.get("dims")
    if dims == 2 and not volume.is_2d:
        return f"{spec.name} is a 2D model and this image is a {volume.size[2]}-slice volume"
    if dims == 3 and volume.is_2d:
        return f"{spec.name} is a 3D model and this image is 2D"
    declared = str(contract.get("modality", "")).upper()
    if not _same_modality(declared, volume.modality.upper()):
        return f"{spec.name} expects {declared} images and this one is {volume.modality}"
    return ""


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
    with the original window (roi None: straight to the CPU). Returns (result, device it ran on). Out of memory on the CPU is
    reported as a clear error."""
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


def _network(spec: ModelSpec, device: str):
    from medviewer.ai.backends.torch_loader import load_network

    key = (str(spec.folder), device)
    mtime = spec.weights_path.stat().st_mtime
    cached = _cache.get(key)
    if cached is None or cached[0] != mtime:  # MONAI Label style: reload when the weights change
        _cache[key] = (mtime, load_network(spec, device))
    return _cache[key][1]


def classify(spec: ModelSpec, volume: Volume, device: str | None = None,
             mask: np.ndarray | None = None) -> dict[str, Any]:
    """{"probabilities": {class: p}, "prediction": class, "device": d, "timings": {stage: s}}.
    Classical (scikit-learn) models work on radiomics features of the whole image or of `mask`."""
    if spec.task != "classification":
        raise IncompatibleInput(f"{spec.name} is a {spec.task} model, not a classifier")
    reason = check_input(spec, volume)
    if reason:
        raise IncompatibleInput(reason)
    if spec.manifest.get("framework") == "scikit-learn":
        from medviewer.ai.classical import predict_proba

        t = time.perf_counter()
        result = predict_proba(spec, volume, mask)
        return {"probabilities": result, "prediction": max(result, key=result.get), "device": "cpu",
                "timings": {"predict": time.perf_counter() - t}}
    import torch

    from medviewer.ai.device import choose_device
    from medviewer.ai.training.classification import preprocess_image

    device = choose_device(device)
    timings: dict[str, float] = {}
    t = time.perf_counter()
    size = spec.input.get("size", [128, 128])
    x = preprocess_image(volume.data, int(size[0]))
    timings["pre"] = time.perf_counter() - t
    t = time.perf_counter()
    net = _network(spec, device)
    timings["load"] = time.perf_counter() - t
    t = time.perf_counter()

    def run(dev: str, _window) -> np.ndarray:
        network = net if dev == device else _network(spec, dev)
        with torch.inference_mode():
            xt = torch.from_numpy(x[np.newaxis]).to(dev)
            if dev.startswith("cuda"):  # mixed precision on CUDA
                with torch.autocast(device_type="cuda"):
                    logits = network(xt)
            else:
                logits = network(xt)
            return torch.softmax(logits.float(), dim=1)[0].cpu().numpy()

    probs, device = run_with_fallback(run, device, None, lambda message: None)
    timings["predict"] = time.perf_counter() - t
    classes = spec.class_names
    if len(classes) != len(probs):
        raise MedViewerError(f"{spec.name}: the network gives {len(probs)} outputs for {len(classes)} classes")
    result = {c: float(p) for c, p in zip(classes, probs)}
    return {"probabilities": result, "prediction": max(result, key=result.get), "device": device,
            "timings": timings}
