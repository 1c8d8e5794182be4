"""Edge operations, shown as an overlay over their source: Canny and Sobel gradient magnitude
(SimpleITK ``CannyEdgeDetection`` / ``SobelEdgeDetection``), float32 on the input's grid.

Canny's thresholds are on the gradient magnitude of the smoothed image (intensity per mm, since
the filter uses the spacing); their defaults for an image are fractions of its 1-99 % intensity
range per millimetre of its finest spacing. Sobel works in voxels (its kernel ignores spacing).
"""
from __future__ import annotations

import SimpleITK as sitk

from medviewer.processing.operations import Operation, Param, filtered, register, robust_range

GROUP = "Edges"


def _canny(volume, p, steps):
    f = sitk.CannyEdgeDetectionImageFilter()
    f.SetVariance([p["sigma"] ** 2] * (2 if volume.shape[0] == 1 else 3))
    f.SetLowerThreshold(p["lower"])
    f.SetUpperThreshold(max(p["upper"], p["lower"]))
    return filtered(volume, steps, f, f"Canny edges σ {p['sigma']:g} mm")


def _canny_auto(volume):
    low, high = robust_range(volume)
    per_mm = (high - low) / min(volume.spacing[:2 if volume.shape[0] == 1 else 3])
    return {"lower": float(f"{0.05 * per_mm:.3g}"), "upper": float(f"{0.15 * per_mm:.3g}")}


def _sobel(volume, p, steps):
    return filtered(volume, steps, sitk.SobelEdgeDetectionImageFilter(), "Sobel gradient magnitude")


register(Operation(
    "canny", "Canny edges", GROUP,
    (Param("sigma", "float", 1.0, 0.01, 20.0, unit="mm", help="Gaussian smoothing before the gradient"),
     Param("lower", "float", 10.0, 0.0, None, unit="intensity/mm", help="hysteresis: weak edges"),
     Param("upper", "float", 30.0, 0.0, None, unit="intensity/mm", help="hysteresis: strong edges")),
    "overlay", "Canny edge map, 1 on edges (SimpleITK CannyEdgeDetection)", run=_canny, auto=_canny_auto,
    bytes_per_voxel=40))
register(Operation(
    "gradient-magnitude", "Sobel gradient magnitude", GROUP, (),
    "overlay", "gradient magnitude by Sobel kernels (SimpleITK SobelEdgeDetection)", run=_sobel, bytes_per_voxel=12))
