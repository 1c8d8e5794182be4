"""Pre-processing before features (IBSI chapter 1, sections 2.x): resampling and discretisation.

- resample(image, mask, spacing_xyz, new_spacing): image by linear interpolation (SimpleITK), the
  mask interpolated linearly and thresholded at 0.5, both on a grid with the same centre;
- discretise(values, ...): fixed bin number (FBN, levels 1..N_g over the ROI's min..max) or fixed
  bin size (FBS, bins of width w from a lower bound, by default the ROI's minimum).
"""
from __future__ import annotations

import numpy as np

from medviewer.core.errors import MedViewerError


def fixed_bin_number(values: np.ndarray, n_bins: int) -> np.ndarray:
    """IBSI FBN: floor(N_g (x - min) / (max - min)) + 1, the maximum in bin N_g; all 1 when constant."""
    if n_bins < 1:
        raise MedViewerError(f"the number of bins must be at least 1, got {n_bins}")
    values = np.asarray(values, np.float64)
    if values.size == 0:
        return values.astype(np.int32)
    lo, hi = float(values.min()), float(values.max())
    if hi <= lo:
        return np.ones(values.shape, np.int32)
    levels = np.floor(n_bins * (values - lo) / (hi - lo)).astype(np.int64) + 1
    return np.minimum(levels, n_bins).astype(np.int32)


def fixed_bin_size(values: np.ndarray, width: float, lower: float | None = None) -> tuple[np.ndarray, float]:
    """IBSI FBS: floor((x - lower) / w) + 1; returns (levels, lower). lower defaults to the minimum."""
    if not width > 0:
        raise MedViewerError(f"the bin size must be positive, got {width}")
    values = np.asarray(values, np.float64)
    if lower is None:
        lower = float(values.min()) if values.size else 0.0
    levels = np.floor((values - lower) / width).astype(np.int64) + 1
    if values.size and levels.min() < 1:
        raise MedViewerError(f"intensities below the lower bound {lower} of the fixed bin size discretisation")
    return levels.astype(np.int32), float(lower)


def resample(image: np.ndarray, mask: np.ndarray, spacing_xyz, new_spacing_xyz):
    """(image, mask) on a grid of new_spacing covering the same extent, aligned on the grid centre
    (IBSI 2.4: linear image interpolation, linear mask interpolation then >= 0.5)."""
    import SimpleITK as sitk

    spacing = np.asarray(spacing_xyz, float)
    new = np.asarray(new_spacing_xyz, float)
    size = np.array(image.shape[::-1], float)
    new_size = np.maximum(1, np.ceil(size * spacing / new - 1e-9)).astype(int)
    # same grid centre: origin shifted by half the extent difference
    origin = (size - 1) * spacing / 2 - (new_size - 1) * new / 2

    def on_grid(array, interp):
        src = sitk.GetImageFromArray(np.ascontiguousarray(array, dtype=np.float32))
        src.SetSpacing(tuple(spacing))
        ref = sitk.Image([int(v) for v in new_size], sitk.sitkFloat32)
        ref.SetSpacing(tuple(new))
        ref.SetOrigin(tuple(origin))
        return sitk.GetArrayFromImage(sitk.Resample(src, ref, sitk.Transform(), interp, 0.0, sitk.sitkFloat32))

    out_image = on_grid(image, sitk.sitkLinear).astype(np.float64)
    out_mask = on_grid(mask.astype(np.float32), sitk.sitkLinear) >= 0.5
    return out_image, out_mask
