"""IBSI non-texture families (morphology, local intensity, intensity statistics, intensity histogram,
IVH) against the IBSI digital phantom's reference values, plus bad input and rotation invariance."""
from __future__ import annotations

import csv
import math
from decimal import Decimal

import numpy as np
import pytest

from medviewer.core.errors import MedViewerError
from medviewer.processing.radiomics import intensity, morphology
from medviewer.processing.radiomics.base import Roi
from tests.conftest import shared

FAMILIES = ("morphology", "local_intensity", "intensity_statistics", "intensity_histogram", "ivh")


def _all_features(roi: Roi):
    return morphology.features(roi) + intensity.features(roi)


def _phantom_roi() -> Roi:
    sitk = pytest.importorskip("SimpleITK")
    folder = shared("ibsi", "digital_phantom")
    image = sitk.ReadImage(str(folder / "phantom.nii.gz"))
    mask_img = sitk.ReadImage(str(folder / "mask.nii.gz"))
    data = sitk.GetArrayFromImage(image).astype(np.float64)
    mask = sitk.GetArrayFromImage(mask_img) > 0
    levels = np.where(mask, data, 0).astype(np.int32)
    return Roi(image=data, morph_mask=mask, mask=mask, spacing=tuple(float(s) for s in image.GetSpacing()),
               levels=levels, n_levels=6, bin_width=1.0, first_level=0.5)


def _reference_rows() -> list[dict]:
    path = shared("ibsi", "digital_phantom", "reference_values.csv")
    with open(path, newline="", encoding="utf-8") as fh:
        return [r for r in csv.DictReader(fh) if r["family"] in FAMILIES and r["value"].strip()]


def _allowed(row: dict) -> float:
    """The row's tolerance, else half a unit of the value's last printed digit."""
    if row["tolerance"].strip():
        return float(row["tolerance"])
    return 0.5 * 10.0 ** Decimal(row["value"].strip()).as_tuple().exponent


def test_phantom_reference_values():
    roi = _phantom_roi()
    rows = _reference_rows()
    got = {(f.family, f.feature): f for f in _all_features(roi)}
    passed: dict[str, int] = {}
    total: dict[str, int] = {}
    failures = []
    for row in rows:
        fam = row["family"]
        total[fam] = total.get(fam, 0) + 1
        feat = got.get((fam, row["feature_name"]))
        if feat is None:
            failures.append(f"{fam} / {row['feature_name']}: not computed")
            continue
        if feat.ibsi_code != row["ibsi_code"] or feat.aggregation != row["aggregation"]:
            failures.append(f"{fam} / {row['feature_name']}: code/aggregation {feat.ibsi_code!r}/{feat.aggregation!r}"
                            f" != {row['ibsi_code']!r}/{row['aggregation']!r}")
            continue
        ref = float(row["value"])
        if abs(feat.value - ref) <= _allowed(row) * (1 + 1e-9):
            passed[fam] = passed.get(fam, 0) + 1
        else:
            failures.append(f"{fam} / {row['feature_name']}: {feat.value:.6g} vs {row['value']} ± {_allowed(row):g}")
    print("\nIBSI digital phantom, non-texture families:")
    for fam in FAMILIES:
        print(f"  {fam:22s} {passed.get(fam, 0)}/{total.get(fam, 0)}")
    print(f"  total {sum(passed.values())}/{sum(total.values())}")
    assert sum(total.values()) == 74
    assert not failures, "\n".join(failures)


def test_feature_rows_are_well_formed():
    roi = _phantom_roi()
    feats = _all_features(roi)
    keys = [(f.family, f.feature) for f in feats]
    assert len(keys) == len(set(keys))
    counts = {fam: sum(1 for f in feats if f.family == fam) for fam in FAMILIES}
    # the IVH family also has the area under the IVH curve (9CMM), which has no reference value
    assert counts == {"morphology": 25, "local_intensity": 2, "intensity_statistics": 18,
                      "intensity_histogram": 23, "ivh": 7}
    assert all(f.aggregation == "" and len(f.ibsi_code) == 4 for f in feats)
    assert all(isinstance(f.value, float) for f in feats)


def _roi(image, mask, spacing=(1.0, 1.0, 1.0), n_levels=8):
    mask = np.asarray(mask, bool)
    levels = np.zeros(image.shape, np.int32)
    vals = image[mask]
    if vals.size:
        lo, hi = vals.min(), vals.max()
        lv = np.ones(vals.shape, np.int64) if hi <= lo else np.minimum(
            np.floor(n_levels * (vals - lo) / (hi - lo)).astype(np.int64) + 1, n_levels)
        levels[mask] = lv
    return Roi(image=np.asarray(image, np.float64), morph_mask=mask.copy(), mask=mask, spacing=spacing,
               levels=levels, n_levels=n_levels)


@pytest.mark.parametrize("module", [morphology, intensity])
def test_empty_mask_is_refused(module):
    image = np.random.default_rng(0).random((5, 6, 7))
    roi = _roi(image, np.zeros(image.shape, bool))
    with pytest.raises(MedViewerError, match="the ROI is empty"):
        module.features(roi)


def test_one_voxel_gives_values_or_nan():
    image = np.random.default_rng(1).random((6, 7, 8)) * 10
    mask = np.zeros(image.shape, bool)
    mask[0, 3, 7] = True  # at the image border too
    feats = {f.feature: f.value for f in _all_features(_roi(image, mask, spacing=(0.7, 0.7, 2.5)))}
    assert feats["Volume (voxel counting)"] == pytest.approx(0.7 * 0.7 * 2.5)
    assert feats["Volume (mesh)"] > 0 and feats["Surface area (mesh)"] > 0
    assert math.isnan(feats["Major axis length"]) and math.isnan(feats["Moran\u2019s I index"])
    assert feats["Mean intensity"] == pytest.approx(image[0, 3, 7])
    assert feats["Intensity skewness"] == 0.0
    assert all(isinstance(v, float) for v in feats.values())


def test_constant_image():
    image = np.full((10, 12, 14), 7.0)
    mask = np.zeros(image.shape, bool)
    mask[2:8, 3:9, 2:12] = True
    feats = {(f.family, f.feature): f.value for f in _all_features(_roi(image, mask))}
    assert math.isnan(feats["morphology", "Moran\u2019s I index"])
    assert math.isnan(feats["morphology", "Geary\u2019s C measure"])
    assert feats["intensity_statistics", "Intensity variance"] == 0.0
    assert feats["intensity_statistics", "Intensity skewness"] == 0.0  # IBSI: 0 when the variance is 0
    assert feats["intensity_statistics", "(Excess) intensity kurtosis"] == 0.0
    assert feats["local_intensity", "Global intensity peak"] == pytest.approx(7.0)
    assert feats["intensity_histogram", "Discretised intensity entropy"] == 0.0
    # a zero mean makes the coefficient of variation undefined
    zero = {(f.family, f.feature): f.value for f in intensity.features(_roi(np.zeros((10, 12, 14)), mask))}
    assert math.isnan(zero["intensity_statistics", "Intensity-based coefficient of variation"])
    assert math.isnan(zero["intensity_statistics", "Intensity-based quartile coefficient of dispersion"])


def test_rotation_invariance():
    from scipy import ndimage
    rng = np.random.default_rng(7)
    image = rng.normal(100.0, 30.0, (12, 20, 20))
    mask = ndimage.gaussian_filter(rng.random((12, 20, 20)), 1.5) > 0.5
    assert 100 < mask.sum() <= morphology.MORAN_EXACT_MAX  # Moran's I / Geary's C exact
    spacing = (0.8, 0.8, 2.5)  # square in-plane
    a = _all_features(_roi(image, mask, spacing, n_levels=16))

    def rot(v):
        return np.ascontiguousarray(np.rot90(v, 1, axes=(1, 2)))

    b = _all_features(_roi(rot(image), rot(mask), spacing, n_levels=16))
    assert [(f.family, f.feature) for f in a] == [(f.family, f.feature) for f in b]
    bad = []
    for fa, fb in zip(a, b):
        if math.isnan(fa.value) and math.isnan(fb.value):
            continue
        if not abs(fa.value - fb.value) <= 1e-6 * max(abs(fa.value), abs(fb.value), 1e-300):
            bad.append(f"{fa.family} / {fa.feature}: {fa.value!r} vs {fb.value!r}")
    assert not bad, "\n".join(bad)


def test_large_roi_moran_is_a_reproducible_estimate():
    z, y, x = np.mgrid[:30, :30, :30]
    mask = (z - 15) ** 2 + (y - 15) ** 2 + (x - 15) ** 2 < 13 ** 2
    assert mask.sum() > morphology.MORAN_EXACT_MAX
    image = np.random.default_rng(3).random(mask.shape)
    roi = _roi(image, mask)
    one = {f.feature: f.value for f in morphology.features(roi)}
    two = {f.feature: f.value for f in morphology.features(roi)}
    assert one["Moran\u2019s I index"] == two["Moran\u2019s I index"]
    # independent noise: no spatial autocorrelation
    assert abs(one["Moran\u2019s I index"]) < 0.02
    assert one["Geary\u2019s C measure"] == pytest.approx(1.0, abs=0.05)
