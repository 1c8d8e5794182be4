"""Threshold segmentations into label maps: a global interval (SimpleITK ``BinaryThreshold``),
Otsu with one or more thresholds (SimpleITK ``OtsuMultipleThresholds``) and a local adaptive
threshold (scikit-image ``threshold_local``: each voxel against the Gaussian-weighted mean of its
block minus an offset; SimpleITK has none).

Labels: "threshold" and "adaptive-threshold" give one label (1) for the voxels kept; Otsu with
k classes gives labels 1..k-1 for the classes above the darkest one (the darkest is background),
named with their interval.
"""
from __future__ import annotations

import numpy as np
import SimpleITK as sitk

from medviewer.core.errors import MedViewerError
from medviewer.processing.operations import (Operation, Param, ProcessResult, execute, label_map, register,
                                             robust_range)
from medviewer.processing.sitk_volume import array_of, to_image

GROUP = "Threshold"


def _interval(volume, p, steps):
    low, high = p["low"], p["high"]
    if high < low:
        raise MedViewerError(f"threshold: low {low:g} is above high {high:g}")
    f = sitk.BinaryThresholdImageFilter()
    f.SetLowerThreshold(low)
    f.SetUpperThreshold(high)
    f.SetInsideValue(1)
    f.SetOutsideValue(0)
    out = execute(steps, f, to_image(volume, np.float64))
    title = f"threshold {low:g}..{high:g}"
    return ProcessResult(None, label_map(volume, array_of(out), [f"{low:g} to {high:g}"], title), title)


def _interval_auto(volume):
    low, high = robust_range(volume)
    return {"low": float(f"{(low + high) / 2:.4g}"), "high": float(volume.data.max())}


def _otsu(volume, p, steps):
    f = sitk.OtsuMultipleThresholdsImageFilter()
    f.SetNumberOfThresholds(p["classes"] - 1)
    f.SetNumberOfHistogramBins(p["bins"])
    out = execute(steps, f, to_image(volume))
    cuts = [float(t) for t in f.GetThresholds()]
    names = [f"above {t:.4g}" if k == len(cuts) - 1 else f"{t:.4g} to {cuts[k + 1]:.4g}"
             for k, t in enumerate(cuts)]
    title = f"Otsu {p['classes']} classes"
    return ProcessResult(None, label_map(volume, array_of(out), names, title), title + " (" + ", ".join(
        f"{t:.4g}" for t in cuts) + ")")


def _adaptive(volume, p, steps):
    from skimage.filters import threshold_local

    steps.check()
    data = volume.data.astype(np.float64)
    plane = data[0] if volume.shape[0] == 1 else data
    block = p["block_size"]
    if block % 2 == 0:
        raise MedViewerError(f"adaptive-threshold: parameter block_size = {block}: must be odd")
    local = threshold_local(plane, block_size=block, method="gaussian", offset=p["offset"])
    mask = (plane > local).reshape(volume.shape)
    title = f"adaptive threshold block {block}"
    return ProcessResult(None, label_map(volume, mask.astype(np.uint8), ["above the local mean"], title), title)


register(Operation(
    "threshold", "Global threshold", GROUP,
    (Param("low", "float", 0.0, None, None, unit="intensity"),
     Param("high", "float", 1000.0, None, None, unit="intensity")),
    "labels", "voxels with low <= value <= high (SimpleITK BinaryThreshold)", run=_interval, auto=_interval_auto,
    bytes_per_voxel=10))
register(Operation(
    "otsu", "Otsu threshold", GROUP,
    (Param("classes", "int", 2, 2, 8, help="intensity classes (classes - 1 thresholds)"),
     Param("bins", "int", 128, 8, 4096)),
    "labels", "Otsu's thresholds, classes above the darkest labelled (SimpleITK OtsuMultipleThresholds)",
    run=_otsu, bytes_per_voxel=8))
register(Operation(
    "adaptive-threshold", "Local adaptive threshold", GROUP,
    (Param("block_size", "int", 35, 3, 1001, unit="voxels", help="odd size of the neighbourhood"),
     Param("offset", "float", 0.0, None, None, unit="intensity", help="subtracted from the local mean")),
    "labels", "voxels above the Gaussian-weighted local mean minus offset (scikit-image threshold_local)",
    run=_adaptive, bytes_per_voxel=33))
