"""Do explanation maps of a chest X-ray classifier point at the lungs? Scores of one map.

    mass_inside(heat, region)      fraction of the map's mass inside a region (the lung fields; the
                                   burned-in markers and text: marker_region)
    pointing_hit(heat, lungs)      the pointing game (Zhang et al. 2018): is the map's maximum in the lungs?
    deletion_insertion(probability, x, saliency)  Petsiuk et al. 2018 (RISE): the class probability as
        the most salient input pixels are deleted first (deletion AUC: lower is better) or inserted
        into a blurred copy first (insertion AUC: higher is better)
    score_map(...)                 all of them for one image and one map

The lung fields come from processing.lung_mask (threshold and morphology), the markers from the
burned-in text detector the classifier's pre-processing uses (ai.preprocess.mask_burned_in_text)
away from the lungs, grown by MARKER_MARGIN pixels. A uniform map scores the lung area fraction on mass_inside and, on
average, on the pointing game: that is the chance level to compare with.
Deletion and insertion run on the model's own input (z-scored, so 0 is the image's mean grey: the
deleted value; the insertion start is the input blurred with a Gaussian of INSERT_BLUR of its size);
pixels tied in saliency are taken in a fixed random order (seed), so a flat map scores as chance.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

STEPS = 20
INSERT_BLUR = 5 / 224
MARKER_MARGIN = 4  # pixels at 224 x 224
MARKER_GAP = 10  # pixels at 224 x 224


def mass_inside(heat: np.ndarray, region: np.ndarray) -> float:
    """Fraction of the (non-negative) map's mass inside `region`; nan for an empty map."""
    h = np.clip(np.asarray(heat, np.float64), 0, None)
    total = float(h.sum())
    return float(h[np.asarray(region, bool)].sum() / total) if total > 0 else float("nan")


def pointing_hit(heat: np.ndarray, region: np.ndarray) -> float:
    """1.0 when the map's maximum lies in `region`, 0.0 when not; nan for a flat map (no maximum).
    Several pixels at the maximum: the fraction of them inside."""
    h = np.asarray(heat, np.float64)
    hi, lo = float(h.max(initial=0.0)), float(h.min(initial=0.0))
    if hi <= lo:
        return float("nan")
    top = h >= hi
    return float(np.asarray(region, bool)[top].mean())


def marker_region(data: np.ndarray, lungs: np.ndarray | None = None) -> np.ndarray:
    """(H, W) bool: burned-in markers and text, i.e. the strokes ai.preprocess.mask_burned_in_text
    replaces (found on the image at 224 x 224) that lie more than MARKER_GAP pixels from the lung
    fields (the detector also takes the bright lateral rib edges beside the lungs; those are not
    markers), grown by MARKER_MARGIN pixels; on the image's size."""
    from scipy.ndimage import binary_dilation, distance_transform_edt, label

    from medviewer.ai.preprocess import mask_burned_in_text, to_unit_grey
    from medviewer.processing.lung_mask import grey_image, lung_mask, resize_plane

    shape = grey_image(data).shape
    unit = to_unit_grey(data, 224)
    strokes = np.abs(mask_burned_in_text(unit) - unit) > 1e-6
    if strokes.any():
        lungs = lung_mask(data) if lungs is None else np.asarray(lungs, bool)
        near = resize_plane(lungs.astype(np.float32), (224, 224)) >= 0.5
        gap = distance_transform_edt(~near) if near.any() else np.full(near.shape, np.inf)
        parts, n = label(strokes, structure=np.ones((3, 3), bool))
        far = [k for k in range(1, n + 1) if gap[parts == k].min() > MARKER_GAP]
        strokes = np.isin(parts, far)
        if strokes.any():
            strokes = binary_dilation(strokes, iterations=MARKER_MARGIN)
    return resize_plane(strokes.astype(np.float32), shape) >= 0.5


def _auc(curve: np.ndarray) -> float:
    """Area under a curve sampled at equal fractions of [0, 1] (trapezoids)."""
    c = np.asarray(curve, np.float64)
    return float(((c[1:] + c[:-1]) / 2).mean()) if len(c) > 1 else float("nan")


def deletion_insertion(probability: Callable, x, saliency: np.ndarray, steps: int = STEPS,
                       seed: int = 0) -> dict:
    """probability(batch (N, 1, S, S) tensor) -> (N,) probabilities of the explained class; x the
    (1, 1, S, S) model input; saliency (S, S). Returns the two curves (steps + 1 points, at 0, 1/steps
    ... 1 of the pixels changed) and their areas."""
    import torch
    from scipy.ndimage import gaussian_filter

    size = x.shape[-2:]
    sal = np.asarray(saliency, np.float64)
    if sal.shape != tuple(size):
        raise ValueError(f"saliency {sal.shape} is not on the model input {tuple(size)}")
    tie = np.random.default_rng(seed).permutation(sal.size)
    order = np.lexsort((tie, -sal.ravel()))  # most salient first; ties in a fixed random order
    n = sal.size
    counts = np.rint(np.linspace(0, n, steps + 1)).astype(int)
    image = x[0, 0].detach().cpu().numpy()
    blurred = gaussian_filter(image, INSERT_BLUR * size[0], mode="nearest").astype(image.dtype)
    deleted, inserted = [], []
    for k in counts:
        chosen = np.zeros(n, bool)
        chosen[order[:k]] = True
        chosen = chosen.reshape(size)
        deleted.append(np.where(chosen, 0.0, image))
        inserted.append(np.where(chosen, image, blurred))
    batch = torch.from_numpy(np.stack(deleted + inserted)[:, np.newaxis].astype(np.float32)).to(x.device)
    with torch.no_grad():
        p = probability(batch).detach().float().cpu().numpy()
    d, i = p[: steps + 1], p[steps + 1:]
    return {"deletion_auc": _auc(d), "insertion_auc": _auc(i), "deletion": d.tolist(), "insertion": i.tolist()}


def score_map(heat: np.ndarray, input_map: np.ndarray, lungs: np.ndarray, markers: np.ndarray,
              probability: Callable | None = None, x=None, seed: int = 0) -> dict:
    """The scores of one map: heat on the image's pixels (as lungs and markers), input_map on the
    model's input (for deletion/insertion, when probability and x are given)."""
    out = {"lung_mass": mass_inside(heat, lungs), "pointing": pointing_hit(heat, lungs),
           "marker_mass": mass_inside(heat, markers), "lung_fraction": float(np.mean(lungs))}
    if probability is not None and x is not None:
        curves = deletion_insertion(probability, x, input_map, seed=seed)
        out["deletion_auc"], out["insertion_auc"] = curves["deletion_auc"], curves["insertion_auc"]
    return out


def score_image(spec, volume, method: str, device: str = "cpu", lungs: np.ndarray | None = None,
                markers: np.ndarray | None = None, seed: int = 0, keep_map: bool = False) -> dict:
    """Explain a CNN classifier's decision on one X-ray (ai.explain.classifier_map; method
    "gradcam", "occlusion" or "random" = a flat map, the chance level) and score the map; lungs
    and markers are computed when not given. Adds "target", "probability" and "note" (and the map
on the image's pixels as "map" with keep_map)."""
    import torch

    from medviewer.ai import explain
    from medviewer.ai.tasks.base import network
    from medviewer.ai.tasks.classification import classifier_input
    from medviewer.processing.lung_mask import lung_mask

    lungs = lung_mask(volume.data) if lungs is None else lungs
    markers = marker_region(volume.data, lungs) if markers is None else markers
    net = network(spec, device, eager=True)  # Grad-CAM hooks into the module
    x = torch.from_numpy(classifier_input(spec, volume.data)[np.newaxis]).to(device)
    probabilities = explain.class_probabilities(net, spec)
    if method == "random":
        with torch.no_grad():
            probs = probabilities(x)[0].cpu().numpy()
        index = explain.explained_class(spec, probs, None)
        out = {"target": spec.class_names[index], "probability": float(probs[index])}
        heat, small = np.ones(volume.shape[1:3]), np.zeros(tuple(x.shape[-2:]))
    else:
        out = explain.classifier_map(spec, volume, method, net, device, lambda f, m: None, lambda: None, None, {})
        index = spec.class_names.index(out["target"])
        heat, small = out["map"].data[0], out["input_map"]
    scores = score_map(heat, small, lungs, markers, lambda b: probabilities(b)[:, index], x, seed=seed)
    if method == "random":
        scores["pointing"] = scores["lung_fraction"]  # the expected hit rate of a uniformly random maximum
    scores.update(target=out["target"], probability=out["probability"], note=out.get("note", ""))
    return {**scores, "map": heat} if keep_map else scores
