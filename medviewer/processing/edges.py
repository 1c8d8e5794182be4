"""Edge operations, shown as an overlay over their source: Canny and Sobel gradient magnitude
(SimpleITK ``CannyEdgeDetection`` / ``SobelEdgeDetection``), float32 on the input's grid.

Canny's thresholds are on the gradient magnitude of the smoothed image (intensity per mm, since
the filter uses the spacing). Their defaults for an image are the 90th and 97th percentiles of that
gradient magnitude (σ 1 mm) over the image's foreground (above a tenth of its 1-99 % range),
estimated on the central block of at most 96 voxels a side (full resolution: shrinking the image
lowers its gradients), so that the form fills at once: the strongest
few per cent of the gradients make the edges, whatever the modality's scale. (Fractions of the
intensity range marked 48 % of the brain_t1 head as edge, the percentiles 18 %: what shows is the
cortex, ventricles and skull, not the noise.) Sobel works in voxels (its kernel ignores spacing).
"""
from __future__ import annotations

import numpy as np
import SimpleITK as sitk

from medviewer.processing.operations import Operation, Param, filtered, register, robust_range
from medviewer.processing.sitk_volume import array_of, to_image

GROUP = "Edges"


def _canny(volume, p, steps):
    f = sitk.CannyEdgeDetectionImageFilter()
    f.SetVariance([p["sigma"] ** 2] * (2 if volume.shape[0] == 1 else 3))
    f.SetLowerThreshold(p["lower"])
    f.SetUpperThreshold(max(p["upper"], p["lower"]))
    return filtered(volume, steps, f, f"Canny edges σ {p['sigma']:g} mm")


def _canny_auto(volume):
    block = tuple(slice(max(0, (n - 96) // 2), max(0, (n - 96) // 2) + 96) for n in volume.shape)
    image = to_image(volume.copy_geometry(volume.data[block]))
    gradient = array_of(sitk.GradientMagnitudeRecursiveGaussian(image, 1.0))
    low, high = robust_range(volume)
    foreground = volume.data[block] > low + 0.1 * (high - low)
    values = gradient[foreground] if foreground.any() else gradient.reshape(-1)
    lower, upper = np.percentile(values.astype(np.float64), [90.0, 97.0])
    if not upper > 0:  # a flat image: any positive thresholds (there are no edges to find)
        lower, upper = 1.0, 2.0
    return {"lower": float(f"{lower:.3g}"), "upper": float(f"{max(upper, lower):.3g}")}


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
