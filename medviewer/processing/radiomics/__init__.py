"""Radiomics features of an image and an ROI, after the IBSI reference manual (chapter 1).

    compute_features(image, mask, spacing=(1, 1, 1), *, families=None, aggregations=None,
                     bin_number=32, bin_size=None, resample_to=None) -> list[Feature]

Families (IBSI names): morphology, local_intensity, intensity_statistics, intensity_histogram, ivh,
glcm, glrlm (aggregations "2D, averaged" ... "3D, merged"), glszm, gldzm, ngtdm, ngldm (aggregations
"2D", "2.5D", "3D"). The image and mask are (z, y, x) arrays (a 2D image is one slice; only the 2D
aggregations are meaningful then), spacing is (x, y, z) mm. Discretisation is a fixed bin number
(default 32) or a fixed bin size; the intensity histogram, IVH and texture families use the
discretised levels. Checked against the IBSI digital phantom's reference values
(tests/unit/test_radiomics_ibsi.py).

Bad input is refused with a clear message: an empty mask, a mask of another shape, a mask with no
voxel of the chosen label. IBSI's undefined values (e.g. a correlation of a constant ROI) are NaN.
"""
from __future__ import annotations

import importlib
import time

import numpy as np

from medviewer.core.errors import MedViewerError
from medviewer.processing.radiomics.base import (
    GLCM_GLRLM_AGGREGATIONS, ZONE_AGGREGATIONS, Feature, Roi)
from medviewer.processing.radiomics.discretise import fixed_bin_number, fixed_bin_size, resample

# family -> (module, takes aggregations)
FAMILIES = {
    "morphology": ("morphology", False),
    "local_intensity": ("intensity", False),
    "intensity_statistics": ("intensity", False),
    "intensity_histogram": ("intensity", False),
    "ivh": ("intensity", False),
    "glcm": ("glcm", True),
    "glrlm": ("glrlm", True),
    "glszm": ("zones", True),
    "gldzm": ("zones", True),
    "ngtdm": ("neighbourhood", True),
    "ngldm": ("neighbourhood", True),
}
TEXTURE_AGGREGATIONS = {"glcm": GLCM_GLRLM_AGGREGATIONS, "glrlm": GLCM_GLRLM_AGGREGATIONS,
                        "glszm": ZONE_AGGREGATIONS, "gldzm": ZONE_AGGREGATIONS,
                        "ngtdm": ZONE_AGGREGATIONS, "ngldm": ZONE_AGGREGATIONS}
ALL_AGGREGATIONS = tuple(dict.fromkeys(GLCM_GLRLM_AGGREGATIONS + ZONE_AGGREGATIONS))

__all__ = ["Feature", "Roi", "FAMILIES", "ALL_AGGREGATIONS", "compute_features", "make_roi"]


def make_roi(image: np.ndarray, mask: np.ndarray, spacing=(1.0, 1.0, 1.0), *, bin_number: int | None = 32,
             bin_size: float | None = None, bin_lower: float | None = None, resample_to=None) -> Roi:
    image = np.asarray(image)
    mask = np.asarray(mask)
    if image.ndim == 2:
        image = image[np.newaxis]
    if mask.ndim == 2:
        mask = mask[np.newaxis]
    if image.ndim != 3:
        raise MedViewerError(f"radiomics needs a grey 2D or 3D image, got shape {image.shape}")
    if mask.shape != image.shape:
        raise MedViewerError(f"the mask {mask.shape} does not match the image {image.shape} (z, y, x): "
                             "resample it onto the image first")
    mask = mask.astype(bool)
    if not mask.any():
        raise MedViewerError("the ROI is empty: the mask has no voxel of this label")
    image = image.astype(np.float64)
    spacing = tuple(float(s) for s in spacing)
    if resample_to is not None:
        image, mask = resample(image, mask, spacing, resample_to)
        spacing = tuple(float(s) for s in resample_to)
        if not mask.any():
            raise MedViewerError("the ROI vanished when resampled: it is smaller than a voxel of the new grid")
    values = image[mask]
    levels = np.zeros(image.shape, np.int32)
    first = None
    if bin_size is not None:
        lv, first = fixed_bin_size(values, bin_size, bin_lower)
        n_levels = int(lv.max())
    else:
        lv = fixed_bin_number(values, int(bin_number or 32))
        n_levels = int(bin_number or 32)
    levels[mask] = lv
    return Roi(image=image, morph_mask=mask.copy(), mask=mask, spacing=spacing, levels=levels, n_levels=n_levels,
               bin_width=bin_size, first_level=first)


def compute_features(image: np.ndarray, mask: np.ndarray, spacing=(1.0, 1.0, 1.0), *, families=None,
                     aggregations=None, bin_number: int | None = 32, bin_size: float | None = None,
                     bin_lower: float | None = None, resample_to=None, roi: Roi | None = None,
                     timings: dict | None = None) -> list[Feature]:
    """Every feature of the chosen families (default all) and aggregations (default all)."""
    if roi is None:
        roi = make_roi(image, mask, spacing, bin_number=bin_number, bin_size=bin_size, bin_lower=bin_lower,
                       resample_to=resample_to)
    wanted = list(families or FAMILIES)
    unknown = [f for f in wanted if f not in FAMILIES]
    if unknown:
        raise MedViewerError(f"unknown feature famil{'y' if len(unknown) == 1 else 'ies'} {', '.join(unknown)}; "
                             f"use {', '.join(FAMILIES)}")
    if aggregations is not None:
        bad = [a for a in aggregations if a not in ALL_AGGREGATIONS]
        if bad:
            raise MedViewerError(f"unknown aggregation {bad[0]!r}; use one of: {'; '.join(ALL_AGGREGATIONS)}")
    out: list[Feature] = []
    done_modules: dict[str, list[Feature]] = {}
    for family in wanted:
        module_name, aggregated = FAMILIES[family]
        t = time.perf_counter()
        if module_name not in done_modules:
            module = importlib.import_module(f"medviewer.processing.radiomics.{module_name}")
            if aggregated:
                aggs = TEXTURE_AGGREGATIONS[family] if aggregations is None else tuple(
                    a for a in aggregations if a in TEXTURE_AGGREGATIONS[family])
                done_modules[module_name] = module.features(roi, aggs) if aggs else []
            else:
                done_modules[module_name] = module.features(roi)
        out.extend(f for f in done_modules[module_name] if f.family == family
                   and (not aggregated or aggregations is None or f.aggregation in aggregations))
        if timings is not None:
            timings[family] = timings.get(family, 0.0) + time.perf_counter() - t
    return out
