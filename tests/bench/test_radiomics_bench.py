"""Radiomics speed (issue 7): every family, 3D aggregations, on a 100x100x100 ROI in <= 2 s.

Run: python -m pytest tests/bench/test_radiomics_bench.py --bench -s
The ROI is a real brain MRI crop (../shared/data/brain_t1 when present, else the demo CT) with a
spherical-ish mask filling most of the 100^3 box, 32 grey levels (fixed bin number). Medians of 3
runs; the time per family is printed. No radiomics library installs here to compare against
(pyradiomics has no wheel), so the baseline printed is SimpleITK's LabelIntensityStatistics on
the same ROI (first-order statistics only), for scale.
"""
import statistics
import time

import numpy as np
import pytest

from tests.conftest import DEMO, SHARED_DATA

MAX_S = 2.0


def _roi():
    from medviewer.io import open_volume

    brain = SHARED_DATA / "brain_t1"
    files = sorted(p for p in brain.glob("**/*") if p.name.endswith((".nii.gz", ".nii", ".mha", ".nrrd"))) \
        if brain.is_dir() else []
    volume = open_volume(str(files[0])) if files else open_volume(str(DEMO / "ct_chest_20"))
    data = volume.data.astype(np.float64)
    if data.shape[0] < 100:  # the demo CT has 20 slices: tile it along z (still real texture)
        data = np.concatenate([data] * (100 // data.shape[0] + 1))
    z, y, x = (np.array(data.shape) - 100) // 2
    crop = data[z:z + 100, y:y + 100, x:x + 100]
    zz, yy, xx = np.mgrid[:100, :100, :100]
    mask = ((zz - 49.5) ** 2 + (yy - 49.5) ** 2 + (xx - 49.5) ** 2) <= 50 ** 2
    return crop, mask, volume.spacing, (files[0].name if files else "demo CT (tiled)")


@pytest.mark.bench
def test_all_families_3d_on_a_100_cube():
    import SimpleITK as sitk

    from medviewer.processing.radiomics import compute_features

    image, mask, spacing, name = _roi()
    aggregations = ["3D, averaged", "3D, merged", "3D"]
    times, per_family = [], []
    for _ in range(3):
        timings = {}
        t = time.perf_counter()
        feats = compute_features(image, mask, spacing, aggregations=aggregations, bin_number=32, timings=timings)
        times.append(time.perf_counter() - t)
        per_family.append(timings)
    base = []
    for _ in range(3):
        t = time.perf_counter()
        img = sitk.GetImageFromArray(image.astype(np.float32))
        lab = sitk.GetImageFromArray(mask.astype(np.uint8))
        f = sitk.LabelIntensityStatisticsImageFilter()
        f.Execute(lab, img)
        base.append(time.perf_counter() - t)
    median = statistics.median(times)
    print(f"\n100^3 ROI from {name}, {int(mask.sum())} voxels, 32 levels, 3D aggregations: {len(feats)} features")
    print(f"  medviewer, all families: median {median:.2f} s (runs {', '.join(f'{t:.2f}' for t in times)})")
    for family in per_family[0]:
        print(f"    {family:22} {statistics.median(t[family] for t in per_family):.3f} s")
    print(f"  SimpleITK LabelIntensityStatistics (first-order only): {statistics.median(base):.3f} s")
    assert median <= MAX_S
