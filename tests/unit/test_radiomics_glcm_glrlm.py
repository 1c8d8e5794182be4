"""GLCM and GLRLM features (IBSI chapter 1) against the IBSI digital phantom reference values."""
from __future__ import annotations

import csv
import math
import warnings

import numpy as np
import pytest

from medviewer.processing.radiomics import glcm, glrlm
from medviewer.processing.radiomics.base import GLCM_GLRLM_AGGREGATIONS, Roi
from tests.conftest import shared


def _phantom_roi() -> Roi:
    sitk = pytest.importorskip("SimpleITK")
    folder = shared("ibsi", "digital_phantom")
    image = sitk.ReadImage(str(folder / "phantom.nii.gz"))
    data = sitk.GetArrayFromImage(image).astype(np.float64)  # (z, y, x)
    mask = sitk.GetArrayFromImage(sitk.ReadImage(str(folder / "mask.nii.gz"))).astype(bool)
    levels = np.where(mask, data, 0).astype(np.int32)
    return Roi(image=data, morph_mask=mask, mask=mask, spacing=tuple(image.GetSpacing()), levels=levels,
               n_levels=6)


def _reference_rows(families: tuple[str, ...]) -> list[dict]:
    folder = shared("ibsi", "digital_phantom")
    with open(folder / "reference_values.csv", newline="", encoding="utf-8") as f:
        return [row for row in csv.DictReader(f) if row["family"] in families]


def _matches(printed: str, value: float) -> bool:
    """Within half a unit of the last digit of the reference printed to 3 significant digits
    (trailing zeros are not printed: "2.2" is 2.20 +- 0.005, "17" is 17.0 +- 0.05)."""
    reference = float(printed)
    if not math.isfinite(value):
        return False
    if reference == 0:
        return abs(value) < 5e-4
    mantissa = printed.lower().split("e")[0].lstrip("+-").replace(".", "").lstrip("0")
    digits = max(len(mantissa), 3)
    unit = 10.0 ** (math.floor(math.log10(abs(reference))) - digits + 1)
    return abs(value - reference) <= unit / 2 * (1 + 1e-9)


def test_phantom_reference_values():
    roi = _phantom_roi()
    rows = _reference_rows(("glcm", "glrlm"))
    computed = {(f.family, f.feature, f.ibsi_code, f.aggregation): f.value
                for f in glcm.features(roi) + glrlm.features(roi)}
    assert len(computed) == 25 * 6 + 16 * 6
    passed = {"glcm": 0, "glrlm": 0}
    failures = []
    for row in rows:
        key = (row["family"], row["feature_name"], row["ibsi_code"], row["aggregation"])
        assert key in computed, f"missing feature {key}"
        value = computed[key]
        if _matches(row["value"], value):
            passed[row["family"]] += 1
        else:
            failures.append(f"{key}: reference {row['value']}, computed {value:.6g}")
    total = {fam: sum(r["family"] == fam for r in rows) for fam in passed}
    print(f"\nIBSI digital phantom: glcm {passed['glcm']}/{total['glcm']}, "
          f"glrlm {passed['glrlm']}/{total['glrlm']}")
    assert total == {"glcm": 150, "glrlm": 96}
    assert not failures, "\n".join(failures)


def _roi_from_levels(levels: np.ndarray, n_levels: int) -> Roi:
    mask = levels > 0
    return Roi(image=levels.astype(np.float64), morph_mask=mask, mask=mask, spacing=(1.0, 1.0, 1.0),
               levels=levels.astype(np.int32), n_levels=n_levels)


def _values(roi: Roi, aggregations=None) -> dict:
    return {(f.family, f.feature, f.aggregation): f.value
            for f in glcm.features(roi, aggregations) + glrlm.features(roi, aggregations)}


def test_degenerate_rois_do_not_crash():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        # constant ROI: defined features are finite; correlation and information correlation 1 are nan
        constant = np.zeros((5, 6, 7), dtype=np.int32)
        constant[1:4, 1:5, 1:6] = 3
        values = _values(_roi_from_levels(constant, 4))
        for (family, feature, agg), value in values.items():
            if family == "glcm" and feature in ("Correlation", "Information correlation 1"):
                assert math.isnan(value), (feature, agg)
            else:
                assert math.isfinite(value), (family, feature, agg)
        assert values[("glcm", "Joint maximum", "3D, merged")] == 1.0
        assert values[("glcm", "Joint average", "2D, averaged")] == 3.0
        assert values[("glrlm", "Normalised grey level non-uniformity", "3D, merged")] == 1.0

        # one voxel: no co-occurring pair at all (glcm nan); one run of length 1 per direction
        single = np.zeros((3, 3, 3), dtype=np.int32)
        single[1, 1, 1] = 2
        values = _values(_roi_from_levels(single, 4))
        assert all(math.isnan(v) for (fam, _, _), v in values.items() if fam == "glcm")
        assert values[("glrlm", "Short runs emphasis", "3D, merged")] == 1.0
        assert values[("glrlm", "Run percentage", "2D, averaged")] == 1.0
        assert values[("glrlm", "High grey level run emphasis", "3D, averaged")] == 4.0

        # empty ROI: everything nan, nothing raised
        values = _values(_roi_from_levels(np.zeros((2, 3, 4), dtype=np.int32), 4))
        assert len(values) == (25 + 16) * 6
        assert all(math.isnan(v) for v in values.values())


def test_rotation_invariance():
    rng = np.random.default_rng(7)
    levels = rng.integers(1, 9, size=(6, 11, 9)) * (rng.random((6, 11, 9)) < 0.8)
    levels = np.where(rng.random(levels.shape) < 0.4, 1, levels)  # some longer runs
    aggregations = ("2D, averaged", "3D, merged")
    before = _values(_roi_from_levels(levels, 8), aggregations)
    after = _values(_roi_from_levels(np.rot90(levels, 1, axes=(1, 2)).copy(), 8), aggregations)
    assert before.keys() == after.keys() and len(before) == (25 + 16) * 2
    for key, value in before.items():
        assert np.isclose(after[key], value, rtol=1e-9, atol=1e-9), (key, value, after[key])


def test_aggregation_subset_matches_full_run():
    rng = np.random.default_rng(3)
    levels = rng.integers(0, 6, size=(5, 8, 7))
    roi = _roi_from_levels(levels, 5)
    full = _values(roi)
    assert {agg for (_, _, agg) in full} == set(GLCM_GLRLM_AGGREGATIONS)
    for agg in GLCM_GLRLM_AGGREGATIONS:
        part = _values(roi, [agg])
        assert {a for (_, _, a) in part} == {agg}
        for key, value in part.items():
            assert value == pytest.approx(full[key], rel=1e-12, abs=1e-12, nan_ok=True), key
    with pytest.raises(ValueError):
        glcm.features(roi, ["2.5D, averaged"])
