"""Explanation maps: where a model looked.

    classifier_map(spec, volume, method, net, device, report, check_cancel, target, timings)
    segmentation_map(spec, volume, net, device, report, check_cancel, timings)
    classical_map(spec, volume, report, cancel, target)
        -> {"map": Volume (float32 in [0, 1], on the input's grid), "target": str, ...}

The explanation task (ai.tasks.explanation.Explanation: contract check, device, network, timings,
cancel) calls these; they compute the maps.

- Grad-CAM (Selvaraju et al. 2017) through MONAI's monai.visualize.GradCAM, for CNN classifiers:
  the gradient-weighted activations of the last convolutional block (manifest network
  "gradcam_layer", default "layer4") for the predicted class.
- Occlusion sensitivity (Zeiler & Fergus 2014) for any model: a patch of the pre-processed input
  is set to its mean, window by window, and the map is the drop of the model's score for its
  prediction (class probability; for segmentation the summed probability of the predicted
  foreground). Computed here rather than with monai.visualize.OcclusionSensitivity so that
  progress and cancel are checked between batches.

Maps are computed on the model's input (the network's size for the X-ray CNN, burned-in text
masked as the model was trained; the model grid for a 3D model) and brought back to the input's own
voxels (bilinear resize / ai.model_grid), scaled to [0, 1]; 2D maps also come back as "input_map"
(on the model's input, unscaled) for ai.explanation_scores. Classifier scores are the calibrated
probabilities (the manifest's temperature) and the default target is the class the model decides
(its decision threshold). A map with nothing in it says why in "note" (one line): e.g. occlusion of
a model whose probability rises whichever block is hidden (pneumonia-rf), or is saturated.
"""
from __future__ import annotations

import copy
import time
from typing import Any, Callable

import numpy as np

from medviewer.ai.inference import IncompatibleInput
from medviewer.core.errors import Cancelled, MedViewerError

METHODS = ("gradcam", "occlusion")


def _resize_2d(plane: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    from scipy.ndimage import zoom

    factors = (shape[0] / plane.shape[0], shape[1] / plane.shape[1])
    out = zoom(plane.astype(np.float32), factors, order=1, grid_mode=True, mode="nearest")
    return out[: shape[0], : shape[1]]


def _unit(m: np.ndarray) -> np.ndarray:
    m = np.nan_to_num(m.astype(np.float32))
    lo, hi = float(m.min(initial=0.0)), float(m.max(initial=0.0))
    return (m - lo) / (hi - lo) if hi > lo else np.zeros_like(m)


def occlusion(score: Callable[[Any], Any], x, mask: int, stride: int, batch: int,
              progress: Callable[[float], None], check_cancel: Callable[[], None],
              within: tuple[slice, ...] | None = None) -> np.ndarray:
    """Score drop per voxel when a cube of side `mask` (stride `stride`) is replaced by the input's
    mean; x is a (1, 1, *spatial) tensor and score(batch) gives one number per batch item.
    `within` limits the occluded windows to a box (e.g. the image inside its padding)."""
    import torch

    spatial = tuple(x.shape[2:])
    box = [sl.indices(n)[:2] for sl, n in zip(within, spatial)] if within else [(0, n) for n in spatial]
    starts = [list(range(lo, max(hi - mask, lo) + 1, stride)) for lo, hi in box]
    for axis, (lo, hi) in enumerate(box):  # cover the far edge too
        if starts[axis][-1] + mask < hi:
            starts[axis].append(max(hi - mask, lo))
    corners = np.stack(np.meshgrid(*starts, indexing="ij"), -1).reshape(-1, len(spatial))
    fill = float(x.mean())
    with torch.no_grad():
        base = float(score(x)[0])
    drop = np.zeros(spatial, np.float64)
    hits = np.zeros(spatial, np.float64)
    for b in range(0, len(corners), batch):
        check_cancel()
        chunk = corners[b:b + batch]
        xb = x.repeat(len(chunk), *([1] * (x.dim() - 1)))
        for i, c in enumerate(chunk):
            xb[(i, slice(None)) + tuple(slice(int(s), int(s) + mask) for s in c)] = fill
        with torch.no_grad():
            scores = score(xb).detach().float().cpu().numpy()
        for c, s in zip(chunk, scores):
            region = tuple(slice(int(v), int(v) + mask) for v in c)
            drop[region] += base - float(s)
            hits[region] += 1
        progress(min(1.0, (b + len(chunk)) / len(corners)))
    return (drop / np.maximum(hits, 1)).astype(np.float32)


def classifier_map(spec, volume, method, net, device, report, check_cancel, target, timings):
    import torch

    from medviewer.ai.tasks.classification import classifier_input, input_size

    t = time.perf_counter()
    size = input_size(spec)
    x = torch.from_numpy(classifier_input(spec, volume.data)[np.newaxis]).to(device)
    classes = spec.class_names
    with torch.no_grad():
        probs = class_probabilities(net, spec)(x)[0].cpu().numpy()
    index = explained_class(spec, probs, target)
    timings["pre"] = time.perf_counter() - t
    report(0.1, f"{method} for {classes[index]} on {device}")
    check_cancel()
    t = time.perf_counter()
    if method == "gradcam":
        from monai.visualize import GradCAM

        layer = spec.manifest.get("network", {}).get("gradcam_layer", "layer4")
        model = copy.deepcopy(net)  # GradCAM hooks stay on the module: keep them off the cached one
        try:
            # identity post-processing: MONAI's default normaliser maps (min, max) to (1, 0), i.e.
            # flips the map; it is scaled to [0, 1] (high = important) below instead
            cam = GradCAM(nn_module=model, target_layers=layer, postprocessing=lambda m: m)
            with torch.enable_grad():
                heat = cam(x=x.clone().requires_grad_(False), class_idx=index)
        except (AttributeError, KeyError, RuntimeError) as exc:
            raise MedViewerError(f"{spec.name}: Grad-CAM on layer {layer!r} failed: "
                                 f"{' '.join(str(exc).split())[:160]}") from exc
        small = heat[0, 0].detach().float().cpu().numpy()
        note = flat_note(small, "Grad-CAM", f"the gradients of the {classes[index]} score weight the "
                         f"activations of {layer} negatively everywhere (no positive evidence there)")
    else:
        probability = class_probabilities(net, spec)

        def score(batch):
            return probability(batch)[:, index]

        mask = max(size // 8, 4)
        drop = occlusion(score, x, mask=mask, stride=max(size // 16, 2), batch=32,
                         progress=lambda f: report(0.1 + 0.85 * f, f"occlusion for {classes[index]}"),
                         check_cancel=check_cancel)
        small = np.clip(drop, 0, None)  # evidence for the class: where hiding it lowers the score
        note = flat_note(small, "occlusion", occlusion_reason(
            drop, float(probs[index]), classes[index], f"{mask}x{mask}-pixel patch of the {size}x{size} input"))
    timings["explain"] = time.perf_counter() - t
    t = time.perf_counter()
    rows, cols = volume.shape[1], volume.shape[2]
    full = _unit(_resize_2d(small, (rows, cols)))[np.newaxis]
    timings["post"] = time.perf_counter() - t
    out = {"map": volume.copy_geometry(full.astype(np.float32)), "target": classes[index],
           "probability": float(probs[index]), "input_map": small}
    return {**out, "note": note} if note else out


def explained_class(spec, probs: np.ndarray, target: str | None) -> int:
    """The index of the class to explain: `target`, or the class the model decides (the
    manifest's decision threshold where it has one, else the most probable)."""
    from medviewer.ai.tasks.decision import decide, decision_of

    classes = spec.class_names
    if target is None:
        threshold, positive, _rule = decision_of(spec)
        return int(decide(probs, classes, threshold, positive)[0])
    if target not in classes:
        raise MedViewerError(f"{spec.name} has no class {target!r} (classes: {', '.join(classes)})")
    return classes.index(target)


def class_probabilities(net, spec):
    """batch (N, 1, S, S) -> (N, C) calibrated class probabilities, softmax(logits / T) with the
    manifest's temperature (ai.tasks.decision.temperature_of; 1 when the model has none)."""
    import torch

    from medviewer.ai.tasks.decision import temperature_of

    temperature = temperature_of(spec)

    def probabilities(batch):
        return torch.softmax(net(batch).float() / temperature, dim=1)
    return probabilities


def occlusion_reason(drop: np.ndarray, base: float, label: str, patch: str) -> str:
    """Why an occlusion map has no positive value: the probability is saturated, hiding changes
    nothing, or every patch raises the probability instead of lowering it."""
    if float(np.abs(drop).max(initial=0.0)) < 1e-6:
        if base > 1 - 1e-4 or base < 1e-4:
            return f"the {label} probability is saturated at {base:.4f}: hiding any one {patch} does not move it"
        return f"hiding any one {patch} changes the {label} probability by less than 1e-6"
    return (f"hiding any one {patch} raises the {label} probability (by up to {-float(drop.min()):.3f}) "
            f"instead of lowering it: the model's evidence for {label} is in no one place")


def flat_note(small: np.ndarray, method: str, reason: str) -> str:
    """'' for a map with contrast; else one line saying that it is empty (and why) or flat."""
    hi, lo = float(np.max(small, initial=0.0)), float(np.min(small, initial=0.0))
    if hi <= 0:
        return f"the {method} map is zero everywhere: {reason}"
    if hi - lo <= 1e-9 * max(abs(hi), 1.0):
        return f"the {method} map is the same everywhere ({hi:.3g}): no region matters more than another"
    return ""


def segmentation_map(spec, volume, net, device, report, check_cancel, timings):
    import torch

    from medviewer.ai.model_grid import to_model_grid
    from medviewer.ai.preprocess import centre_pad_crop, normalise_zscore_nonzero

    if volume.data.ndim != 3:
        raise IncompatibleInput(f"{spec.name} expects a grey volume")
    t = time.perf_counter()
    grid = to_model_grid(volume, spec.input.get("spacing"), spec.input.get("direction"))
    roi = tuple(int(s) for s in spec.input.get("size", [48, 64, 48]))
    if any(n > r for n, r in zip(grid.volume.shape, roi)):
        raise IncompatibleInput(f"occlusion for {spec.name} runs on volumes that fit one window {roi}; "
                                f"this one is {grid.volume.shape} on the model grid")
    arr, (pads, _) = centre_pad_crop(normalise_zscore_nonzero(grid.volume.data), roi)
    inner = tuple(slice(b, s - a) for (b, a), s in zip(pads, roi))
    x = torch.from_numpy(np.ascontiguousarray(arr))[None, None].to(device)
    with torch.no_grad():
        predicted = torch.softmax(net(x).float(), dim=1)[0].argmax(0)
    foreground = (predicted > 0).float()
    if float(foreground.sum()) == 0:
        raise MedViewerError(f"{spec.name} finds no foreground in this image: nothing to explain")
    timings["pre"] = time.perf_counter() - t
    check_cancel()

    def score(batch):
        p = torch.softmax(net(batch).float(), dim=1)
        return (1.0 - p[:, 0]).mul(foreground).flatten(1).sum(1) / foreground.sum()

    t = time.perf_counter()
    small = occlusion(score, x, mask=10, stride=10, batch=4,
                      progress=lambda f: report(0.05 + 0.9 * f, "occlusion of the predicted structures"),
                      check_cancel=check_cancel, within=inner)
    timings["explain"] = time.perf_counter() - t
    t = time.perf_counter()
    small = np.clip(small[inner], 0, None)
    full = grid.back(small[np.newaxis])[0] if grid.resampled else small
    timings["post"] = time.perf_counter() - t
    return {"map": volume.copy_geometry(_unit(full)), "target": "foreground"}


def classical_map(spec, volume, report, cancel, target) -> dict[str, Any]:
    """Occlusion for a whole-image classical model: each 1/8 x 1/8 block of the picture the
    features are computed on is set to the picture's mean; the map is the drop of the class
    probability (features recomputed each time, so ~64 feature extractions)."""
    from medviewer.ai.classical import proba_of, whole_image_picture

    extraction = spec.input.get("features", {})
    if spec.task != "classification" or extraction.get("region") != "whole image":
        raise IncompatibleInput(f"occlusion of {spec.name}: classical models are explained on whole images only")
    timings: dict[str, float] = {}
    t = time.perf_counter()
    picture, _ = whole_image_picture(volume.data if not volume.is_rgb else volume.data, extraction)
    base = proba_of(spec, picture, (1.0, 1.0, 1.0))
    classes = spec.class_names
    label = target or max(base, key=base.get)
    if label not in base:
        raise MedViewerError(f"{spec.name} has no class {label!r} (classes: {', '.join(classes)})")
    timings["pre"] = time.perf_counter() - t
    t = time.perf_counter()
    plane = picture[0]
    size = plane.shape[0]
    block = max(size // 8, 1)
    fill = float(plane.mean())
    starts = list(range(0, size - block + 1, block))
    drop = np.zeros(plane.shape, np.float32)
    for n, (r, c) in enumerate((r, c) for r in starts for c in starts):
        if cancel is not None and cancel():
            raise Cancelled("occlusion cancelled")
        occluded = plane.copy()
        occluded[r:r + block, c:c + block] = fill
        p = proba_of(spec, occluded[np.newaxis], (1.0, 1.0, 1.0))[label]
        drop[r:r + block, c:c + block] = base[label] - p
        report(0.05 + 0.9 * (n + 1) / len(starts) ** 2, f"occlusion for {label}: block {n + 1}/{len(starts) ** 2}")
    timings["explain"] = time.perf_counter() - t
    small = np.clip(drop, 0, None)
    note = flat_note(small, "occlusion", occlusion_reason(
        drop, base[label], label, f"{block}x{block}-pixel block of the {size}x{size} picture the features are computed on"))
    full = _unit(_resize_2d(small, volume.shape[1:3]))[np.newaxis]
    report(1.0, "done")
    out = {"map": volume.copy_geometry(full.astype(np.float32)), "target": label, "probability": base[label],
           "method": "occlusion", "device": "cpu", "timings": timings, "input_map": small}
    return {**out, "note": note} if note else out
