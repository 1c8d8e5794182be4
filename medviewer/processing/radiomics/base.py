"""What every radiomics feature family shares: the ROI as a family sees it, and a feature row.

Conventions (IBSI chapter 1):
- arrays are (z, y, x) like Volume.data; spacing is (x, y, z) mm like Volume.spacing;
- slices are x-y planes stacked along z ("2D" and "2.5D" aggregations work per slice);
- `levels` holds the discretised grey level of every voxel inside the intensity mask, 1..n_levels,
  and 0 outside (so a 0 never counts as a grey level);
- feature names, codes and aggregation strings are spelled exactly as in the IBSI reference
  (../shared/data/ibsi/digital_phantom/reference_values.csv: columns feature_name, ibsi_code,
  aggregation); the aggregation is "" for the non-texture families.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

# aggregation strings, as in the IBSI reference CSV
GLCM_GLRLM_AGGREGATIONS = ("2D, averaged", "2D, slice-merged", "2.5D, direction-merged", "2.5D, merged",
                           "3D, averaged", "3D, merged")
ZONE_AGGREGATIONS = ("2D", "2.5D", "3D")  # GLSZM, GLDZM, NGTDM, NGLDM


@dataclass(frozen=True)
class Feature:
    family: str  # morphology, local_intensity, intensity_statistics, intensity_histogram, ivh, glcm, ...
    feature: str  # IBSI feature name (reference CSV column feature_name)
    ibsi_code: str  # 4 characters
    aggregation: str  # "" for non-texture families
    value: float  # nan where IBSI defines the feature as undefined

    def as_dict(self) -> dict:
        return {"family": self.family, "feature": self.feature, "ibsi_code": self.ibsi_code,
                "aggregation": self.aggregation, "value": self.value}


@dataclass
class Roi:
    """An image and its ROI, ready for the feature families.

    image: float64 (z, y, x) intensities (after any resampling);
    morph_mask: bool (z, y, x), the morphological mask (shape features);
    mask: bool (z, y, x), the intensity mask (the voxels whose intensities count);
    spacing: (x, y, z) mm;
    levels: int32 (z, y, x), discretised grey level 1..n_levels inside `mask`, 0 outside;
    n_levels: the number of grey levels N_g of the discretisation (matrices are N_g wide even when
        some levels are absent from the ROI);
    bin_width / first_level: for fixed bin size, the intensity of level 1's lower edge and the
        width, so that discretised intensities can be mapped back (intensity histogram); None for
        fixed bin number.
    """
    image: np.ndarray
    morph_mask: np.ndarray
    mask: np.ndarray
    spacing: tuple[float, float, float]
    levels: np.ndarray
    n_levels: int
    bin_width: float | None = None
    first_level: float | None = None
    options: dict = field(default_factory=dict)

    @property
    def voxel_volume(self) -> float:
        sx, sy, sz = self.spacing
        return float(sx * sy * sz)

    @property
    def values(self) -> np.ndarray:
        """Intensities of the voxels in the intensity mask (1D)."""
        return self.image[self.mask]

    @property
    def discretised(self) -> np.ndarray:
        """Grey levels of the voxels in the intensity mask (1D, 1..n_levels)."""
        return self.levels[self.mask]
