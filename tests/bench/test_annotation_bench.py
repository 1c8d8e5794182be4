"""Annotation compute costs: brush dabs, 3D region growing, undo of a 3D edit.

Run: python -m pytest tests/bench/test_annotation_bench.py --bench -s
Criteria: a brush dab (mask + LabelMap.paint) <= 5 ms on a 512x512 slice and <= 16 ms on a
2048x2048 image (the criterion also covers the overlay repaint, measured by the UI benchmarks;
these numbers are the compute part); region growing <= 1 s on 512x512x300; undo of a 3D
operation <= 100 ms. Baseline printed alongside: bare sitk.ConnectedThreshold on an image that
is already a SimpleITK image (conversion not counted).
"""
import os
import statistics
import time

import numpy as np
import pytest
import SimpleITK as sitk

from medviewer.core.labels import LabelMap
from medviewer.processing.label_tools import brush, stroke
from medviewer.processing.region_growing import confidence_connected, connected_threshold
from tests.conftest import DEMO

DAB_512_MS, DAB_2048_MS, GROW_S, UNDO_MS = 5.0, 16.0, 1.0, 100.0
ROWS: list[tuple[str, float, str]] = []


def _median(fn, n):
    times = []
    for _ in range(n):
        t = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), result


@pytest.fixture(scope="module")
def big_ct():
    from medviewer.io import open_volume
    vol = open_volume(DEMO / "ct_chest_20")
    d = vol.data
    data = np.ascontiguousarray(np.concatenate([d, d[::-1]] * 8)[:300])  # 300 slices, continuous
    return data, vol.spacing


@pytest.fixture(scope="module", autouse=True)
def table():
    yield
    print(f"\nannotation bench ({os.cpu_count()} CPUs)")
    print(f"{'what':58s} {'median':>12s}  criterion")
    for what, value, crit in ROWS:
        print(f"{what:58s} {value:12.3f}  {crit}")


@pytest.mark.parametrize("size,spacing,limit", [(512, 0.98, DAB_512_MS), (2048, 0.2, DAB_2048_MS)])
def test_brush_dab(size, spacing, limit):
    shape, sp = (1, size, size), (spacing, spacing, 1.0)
    lm = LabelMap(shape)
    times, compute = [], []
    for i in range(60):  # a drag: each dab overlaps the previous one
        centre = (size / 4 + i * 3.0, size / 2 + i, 0)
        t0 = time.perf_counter()
        region, mask = brush(shape, sp, centre, 10.0, normal_axis=2)
        t1 = time.perf_counter()
        lm.paint(region, mask, 1, "brush")
        t2 = time.perf_counter()
        times.append(t2 - t0)
        compute.append(t1 - t0)
    med = statistics.median(times) * 1e3
    ROWS.append((f"dab r=10 mm on {size}x{size}, mask only (ms)", statistics.median(compute) * 1e3, ""))
    ROWS.append((f"dab r=10 mm on {size}x{size}, mask + paint (ms) box {mask.shape[1:]}", med,
                 f"<= {limit} ms"))
    seg, _ = _median(lambda: stroke(shape, sp, [(10, 10, 0), (size - 10, size - 10, 0)], 10.0, 2), 5)
    ROWS.append((f"stroke segment across {size}x{size}, mask only (ms)", seg * 1e3, ""))
    assert med <= limit


@pytest.mark.parametrize("name,seed,low,high", [("air outside the body", (5, 5, 150), -1100, -400),
                                                ("liver + spleen (60..200 HU)", (150, 280, 150), 60, 200)])
def test_region_growing(big_ct, name, seed, low, high):
    data, spacing = big_ct
    took, (region, mask) = _median(lambda: connected_threshold(data, spacing, seed, low, high), 3)
    n = int(mask.sum())
    ROWS.append((f"connected_threshold {name}, {n / 1e6:.1f} M voxels (s)", took, f"<= {GROW_S} s"))
    image = sitk.GetImageFromArray(data)
    base, ref = _median(lambda: sitk.ConnectedThreshold(image, seedList=[seed], lower=low, upper=high), 3)
    ROWS.append(("  baseline: bare sitk.ConnectedThreshold (s)", base, "conversion excluded"))
    conv, _ = _median(lambda: sitk.GetImageFromArray(data), 3)
    ROWS.append(("  (sitk.GetImageFromArray of the volume (s))", conv, ""))
    assert n == int(sitk.GetArrayViewFromImage(ref).sum())
    assert took <= GROW_S


def test_confidence_connected_for_information(big_ct):
    data, spacing = big_ct
    image = sitk.GetImageFromArray(data)
    for seed, what in [((150, 280, 150), "liver seed"), ((5, 5, 150), "air seed")]:
        took, (_, mask) = _median(lambda: confidence_connected(data, spacing, seed), 3)
        ROWS.append((f"confidence_connected {what}, {mask.sum() / 1e6:.1f} M voxels (s)", took, "info"))
        base, ref = _median(lambda: sitk.ConfidenceConnected(image, seedList=[seed], numberOfIterations=3,
                                                              multiplier=2.5, initialNeighborhoodRadius=1), 1)
        ROWS.append(("  baseline: bare sitk.ConfidenceConnected, 1 run (s)", base, "conversion excluded"))
        assert int(mask.sum()) == int(sitk.GetArrayViewFromImage(ref).sum())


def test_undo_of_a_3d_operation(big_ct):
    data, spacing = big_ct
    region, mask = connected_threshold(data, spacing, (150, 280, 150), 60, 200)
    lm = LabelMap(data.shape)
    t = time.perf_counter()
    lm.paint(region, mask, 1, "region growing")
    paint_s = time.perf_counter() - t
    box = lm.data[region].size
    undo, redo = [], []
    for _ in range(5):
        t = time.perf_counter()
        lm.undo()
        undo.append(time.perf_counter() - t)
        t = time.perf_counter()
        lm.redo()
        redo.append(time.perf_counter() - t)
    med = statistics.median(undo) * 1e3
    ROWS.append((f"paint of the 3D result, {mask.sum() / 1e6:.1f} M voxels, box {box / 1e6:.1f} M (ms)",
                 paint_s * 1e3, "info"))
    ROWS.append(("undo of that 3D paint (ms)", med, f"<= {UNDO_MS} ms"))
    ROWS.append(("redo of that 3D paint (ms)", statistics.median(redo) * 1e3, ""))
    assert med <= UNDO_MS
