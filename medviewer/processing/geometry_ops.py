"""Geometry operations that make a new grid: resample to a spacing (SimpleITK ``Resample``, the
same extent and direction, linear / nearest / B-spline) and crop to an index box (SimpleITK
``RegionOfInterest``). Voxel types are kept (nearest), or float32 (linear, B-spline).
"""
from __future__ import annotations

import numpy as np
import SimpleITK as sitk

from medviewer.core.errors import MedViewerError
from medviewer.core.memory import check_fits
from medviewer.processing.operations import Operation, Param, ProcessResult, execute, register
from medviewer.processing.sitk_volume import from_image, to_image

INTERPOLATORS = {"linear": sitk.sitkLinear, "nearest": sitk.sitkNearestNeighbor, "bspline": sitk.sitkBSpline}
AXES = "xyz"


def _dims(volume) -> int:
    return 2 if volume.shape[0] == 1 else 3


def resampled_size(volume, spacing) -> list[int]:
    """Voxels along each axis covering the input's extent at SPACING."""
    n = _dims(volume)
    return [max(1, int(round(volume.size[k] * volume.spacing[k] / spacing[k]))) for k in range(n)]


def _resample(volume, p, steps):
    n = _dims(volume)
    spacing = [p[f"spacing_{a}"] for a in AXES[:n]]
    size = resampled_size(volume, spacing)
    nearest = p["interpolator"] == "nearest"
    out_type = volume.data.dtype if nearest else np.dtype(np.float32)
    check_fits(int(np.prod(size)) * out_type.itemsize * 2, "the resampled image " + "x".join(map(str, size)))
    image = to_image(volume, None if nearest else np.float32)
    f = sitk.ResampleImageFilter()
    f.SetSize(size)
    f.SetOutputSpacing(spacing)
    f.SetOutputOrigin(image.GetOrigin())
    f.SetOutputDirection(image.GetDirection())
    f.SetInterpolator(INTERPOLATORS[p["interpolator"]])
    f.SetDefaultPixelValue(0)
    out = execute(steps, f, image)
    text = " x ".join(f"{s:g}" for s in spacing)
    return ProcessResult(from_image(volume, out), None, f"resampled to {text} mm ({p['interpolator']})")


def _resample_auto(volume):
    return {f"spacing_{a}": float(volume.spacing[k]) for k, a in enumerate(AXES)}


def _crop(volume, p, steps):
    n = _dims(volume)
    low = [p[f"{a}0"] for a in AXES[:n]]
    high = [min(p[f"{a}1"], volume.size[k] - 1) for k, a in enumerate(AXES[:n])]
    for k, a in enumerate(AXES[:n]):
        if low[k] > high[k]:
            raise MedViewerError(f"crop: {a}0 = {low[k]} is beyond {a}1 = {high[k]} "
                                 f"(the image has {volume.size[k]} voxels along {a}, 0..{volume.size[k] - 1})")
    f = sitk.RegionOfInterestImageFilter()
    f.SetIndex(low)
    f.SetSize([h - lo + 1 for lo, h in zip(low, high)])
    out = execute(steps, f, to_image(volume, None))
    corner = list(low) + [0] * (3 - n)
    origin = tuple(float(v) for v in volume.index_to_world(corner))  # exact for any 2D slice orientation
    box = ", ".join(f"{a} {lo}-{h}" for a, lo, h in zip(AXES, low, high))
    return ProcessResult(from_image(volume, out, origin=origin), None, f"cropped to {box}")


def _crop_auto(volume):
    values = {}
    for k, a in enumerate(AXES):
        values[f"{a}0"], values[f"{a}1"] = 0, int(volume.size[k] - 1)
    return values


register(Operation(
    "resample", "Resample", "Geometry",
    tuple(Param(f"spacing_{a}", "float", 1.0, 0.01, 100.0, unit="mm") for a in AXES)
    + (Param("interpolator", "choice", "linear", choices=tuple(INTERPOLATORS)),),
    "image", "resample to a new voxel spacing over the same extent (SimpleITK Resample)",
    run=_resample, auto=_resample_auto, bytes_per_voxel=8))
register(Operation(
    "crop", "Crop", "Geometry",
    tuple(Param(f"{a}{end}", "int", 0 if end == 0 else 100000, 0, None, unit="voxel index",
                help=("first" if end == 0 else "last") + f" voxel kept along {a}")
          for a in AXES for end in (0, 1)),
    "image", "keep an index box (inclusive; SimpleITK RegionOfInterest)", run=_crop, auto=_crop_auto,
    bytes_per_voxel=4))
