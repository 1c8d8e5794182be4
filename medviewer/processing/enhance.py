"""Enhancement operations: global histogram equalisation and CLAHE (scikit-image's
``equalize_hist`` / ``equalize_adapthist``; SimpleITK has no global equalisation and its adaptive
one is not CLAHE), unsharp mask and Laplacian sharpening (SimpleITK).

The equalisations give values in [0, 1]; they are mapped back onto the input's intensity range
(min..max, float32) so the input's window still fits the result. scikit-image runs them in one
call (no progress inside; a cancel is noticed before and after).
"""
from __future__ import annotations

import numpy as np
import SimpleITK as sitk

from medviewer.processing.operations import Operation, Param, ProcessResult, filtered, register, rescaled_to_input

GROUP = "Enhance"


def _plane(volume) -> np.ndarray:
    """The voxels as scikit-image sees them: 2D for a one-slice image, else 3D; float64."""
    data = volume.data.astype(np.float64)
    return data[0] if volume.shape[0] == 1 else data


def _back(volume, unit: np.ndarray) -> np.ndarray:
    return rescaled_to_input(volume, unit.reshape(volume.shape))


def _equalise(volume, p, steps):
    from skimage.exposure import equalize_hist

    steps.check()
    out = equalize_hist(_plane(volume), nbins=p["bins"])
    return ProcessResult(volume.copy_geometry(_back(volume, out)), None, f"histogram equalisation ({p['bins']} bins)")


def _clahe(volume, p, steps):
    from skimage.exposure import equalize_adapthist, rescale_intensity

    steps.check()
    plane = rescale_intensity(_plane(volume), out_range=(0.0, 1.0))  # CLAHE takes floats in [0, 1]
    kernel = max(1, min(p["kernel_size"], min(plane.shape)))
    out = equalize_adapthist(plane, kernel_size=kernel, clip_limit=p["clip_limit"], nbins=p["bins"])
    return ProcessResult(volume.copy_geometry(_back(volume, out)), None,
                         f"CLAHE kernel {kernel}, clip {p['clip_limit']:g}")


def _unsharp(volume, p, steps):
    f = sitk.UnsharpMaskImageFilter()
    f.SetSigmas([p["sigma"]] * (2 if volume.shape[0] == 1 else 3))
    f.SetAmount(p["amount"])
    f.SetThreshold(p["threshold"])
    return filtered(volume, steps, f, f"unsharp mask σ {p['sigma']:g} mm, amount {p['amount']:g}")


def _laplacian(volume, p, steps):
    f = sitk.LaplacianSharpeningImageFilter()
    f.SetUseImageSpacing(p["use_spacing"])
    return filtered(volume, steps, f, "Laplacian sharpening")


register(Operation(
    "histogram-equalisation", "Histogram equalisation", GROUP,
    (Param("bins", "int", 256, 2, 65536),),
    "image", "global histogram equalisation (scikit-image equalize_hist), on the input's range",
    run=_equalise, bytes_per_voxel=24))
register(Operation(
    "clahe", "CLAHE", GROUP,
    (Param("kernel_size", "int", 32, 2, 1024, unit="voxels", help="size of the contextual regions"),
     Param("clip_limit", "float", 0.01, 0.0, 1.0, help="contrast limit (0..1, higher: more contrast)"),
     Param("bins", "int", 256, 2, 65536)),
    "image", "contrast-limited adaptive histogram equalisation (scikit-image equalize_adapthist)",
    run=_clahe, bytes_per_voxel=40))
register(Operation(
    "unsharp-mask", "Unsharp mask", GROUP,
    (Param("sigma", "float", 1.0, 0.01, 50.0, unit="mm", help="blur of the mask"),
     Param("amount", "float", 0.5, 0.0, 10.0, help="how much of the detail is added back"),
     Param("threshold", "float", 0.0, 0.0, None, unit="intensity", help="details smaller than this are left")),
    "image", "image + amount x (image - Gaussian blur) (SimpleITK UnsharpMask)", run=_unsharp, bytes_per_voxel=16))
register(Operation(
    "laplacian-sharpen", "Laplacian sharpening", GROUP,
    (Param("use_spacing", "bool", True, help="weigh the Laplacian by the voxel spacing"),),
    "image", "image minus its Laplacian, rescaled to the input's range (SimpleITK LaplacianSharpening)",
    run=_laplacian, bytes_per_voxel=16))
