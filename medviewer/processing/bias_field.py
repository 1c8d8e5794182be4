"""N4 bias-field correction for MR (SimpleITK ``N4BiasFieldCorrectionImageFilter``).

The usual recipe (SimpleITK's N4 example): the field is estimated on the image shrunk by
``shrink`` (less along an axis that would keep under 4 voxels; the field is smooth; this is what makes N4 take seconds), inside an Otsu mask of the
head when ``mask`` is on, then evaluated at full resolution (``GetLogBiasFieldAsImage``) and the
input divided by it. The result is float32 on the input's grid.
"""
from __future__ import annotations

import SimpleITK as sitk

from medviewer.processing.operations import Operation, Param, ProcessResult, execute, register
from medviewer.processing.sitk_volume import like, to_image


def correct(image: sitk.Image, p: dict, steps) -> tuple[sitk.Image, sitk.Image]:
    """(corrected image, log bias field) at IMAGE's resolution."""
    mask = sitk.OtsuThreshold(image, 0, 1, 200) if p["mask"] else sitk.Image(image.GetSize(), sitk.sitkUInt8) + 1
    if not p["mask"]:
        mask.CopyInformation(image)
    # an axis keeps at least 4 voxels (N4's B-spline domain collapses on a one-voxel axis)
    shrink = [max(1, min(p["shrink"], n // 4)) for n in image.GetSize()]
    small, small_mask = sitk.Shrink(image, shrink), sitk.Shrink(mask, shrink)
    f = sitk.N4BiasFieldCorrectionImageFilter()
    f.SetMaximumNumberOfIterations([p["iterations"]] * p["levels"])
    execute(steps, f, small, small_mask, end=0.95, iterations=p["iterations"] * p["levels"])
    log_field = f.GetLogBiasFieldAsImage(image)
    return sitk.Cast(image / sitk.Exp(log_field), sitk.sitkFloat32), log_field


def _n4(volume, p, steps):
    corrected, _ = correct(to_image(volume), p, steps)
    return ProcessResult(like(volume, corrected), None, f"N4 bias-field corrected (shrink {p['shrink']})")


register(Operation(
    "n4", "N4 bias-field correction", "Bias field",
    (Param("shrink", "int", 4, 1, 16, help="estimate the field on the image shrunk by this factor"),
     Param("iterations", "int", 50, 1, 1000, help="iterations per fitting level"),
     Param("levels", "int", 4, 1, 8, help="fitting levels (B-spline mesh doublings)"),
     Param("mask", "bool", True, help="fit inside an Otsu mask of the head")),
    "image", "N4 bias-field correction for MR (SimpleITK N4BiasFieldCorrection)", run=_n4, bytes_per_voxel=24))
