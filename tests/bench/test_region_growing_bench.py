"""Region growing on a 512x512x300 CT (the demo CT stacked): speed against bare SimpleITK, the
bounded defaults against today's unbounded default, and how fast a cancel takes effect.

Run: python -m pytest tests/bench/test_region_growing_bench.py --bench -s
Baselines measured in the same run: sitk.ConnectedThreshold / sitk.ConfidenceConnected on an
image that is already a SimpleITK image (conversion not counted). Criteria: results identical to
SimpleITK's; a cancel takes effect within 0.5 s; the defaults at a leaking seed are flagged or
local, in a fraction of the unbounded time. Medians of several runs (SimpleITK's confidence filter:
fewer, it takes seconds).
"""
import os
import statistics
import time

import numpy as np
import pytest
import SimpleITK as sitk

from medviewer.core.errors import Cancelled
from medviewer.processing.region_growing import (GrowParams, confidence_connected, connected_threshold,
                                                 grow_region)
from tests.conftest import DEMO

CANCEL_S = 0.5
REPEAT = 5
ROWS: list[tuple[str, str, str]] = []
# (x, y, z) in the stacked volume: slices 160-179 are the demo's 0-19, so z=176 is its slice 16
LUNG_BASE, PORTAL, LIVER, AIR = (206, 365, 176), (198, 262, 170), (150, 280, 150), (5, 5, 150)


def _median(fn, n=REPEAT):
    times, result = [], None
    for _ in range(n):
        t = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), result


def _row(what, seconds, note=""):
    ROWS.append((what, f"{seconds:8.3f}", note))


@pytest.fixture(scope="module")
def big_ct():
    from medviewer.io import discover
    vol = discover(DEMO / "ct_chest_20").sources[0].load()
    d = vol.data
    data = np.ascontiguousarray(np.concatenate([d, d[::-1]] * 8)[:300])  # 300 slices, continuous
    return data, vol.spacing, sitk.GetImageFromArray(data)


@pytest.fixture(scope="module", autouse=True)
def table():
    yield
    print(f"\nregion growing bench, 512x512x300 ({os.cpu_count()} CPUs), medians of {REPEAT} unless noted")
    print(f"{'what':70s} {'s':>8s}  note")
    for what, value, note in ROWS:
        print(f"{what:70s} {value}  {note}")


def _count(result_or_image) -> int:
    if isinstance(result_or_image, sitk.Image):
        return int(sitk.GetArrayViewFromImage(result_or_image).sum())
    return int(result_or_image[1].sum())


@pytest.mark.parametrize("name,seed,low,high", [("air outside the body", AIR, -1100, -400),
                                                ("liver + spleen 60..200 HU", LIVER, 60, 200)])
def test_connected_threshold_against_sitk(big_ct, name, seed, low, high):
    data, spacing, image = big_ct
    ours, got = _median(lambda: connected_threshold(data, spacing, seed, low, high))
    base, ref = _median(lambda: sitk.ConnectedThreshold(image, seedList=[seed], lower=low, upper=high))
    assert _count(got) == _count(ref)
    _row(f"connected_threshold, {name}, {_count(got) / 1e6:.1f} M voxels", ours, f"x{ours / base:.2f} of sitk")
    _row("  baseline: bare sitk.ConnectedThreshold", base, "")


@pytest.mark.parametrize("name,seed", [("liver seed", LIVER), ("lung base seed (leaks)", LUNG_BASE)])
def test_confidence_connected_against_sitk(big_ct, name, seed):
    data, spacing, image = big_ct
    ours, got = _median(lambda: confidence_connected(data, spacing, seed, 2.5, 3, 1))
    base, ref = _median(lambda: sitk.ConfidenceConnected(image, seedList=[seed], numberOfIterations=3, multiplier=2.5,
                                                         initialNeighborhoodRadius=1), 2)
    assert _count(got) == _count(ref)
    _row(f"confidence_connected 2.5/3/1, {name}, {_count(got) / 1e6:.1f} M voxels", ours,
         f"x{ours / base:.2f} of sitk")
    _row("  baseline: bare sitk.ConfidenceConnected (median of 2)", base, "")


@pytest.mark.parametrize("name,seed", [("lung base", LUNG_BASE), ("portal vein", PORTAL)])
def test_defaults_against_todays_default(big_ct, name, seed):
    data, spacing, _ = big_ct
    before, old = _median(lambda: confidence_connected(data, spacing, seed, 2.5, 3, 1))
    n_old = _count(old)
    _row(f"before (2.5/3, 3D, no limit), {name}: {n_old} vox, {n_old * np.prod(spacing) / 1e3:.0f} mL", before, "")
    for axis in (None, 2):
        took, r = _median(lambda: grow_region(data, spacing, seed, GrowParams(plane_axis=axis)))
        _row(f"after (defaults, {'3D' if axis is None else '2D axial'}), {name}: {r.voxels} vox, {r.volume_ml:.2f} mL",
             took, f"{r.stopped or 'complete'}; x{took / before:.3f} of before")
        assert r.volume_ml <= 100.0


def test_progress_and_cancel_cost_and_latency(big_ct):
    data, spacing, _ = big_ct
    params = GrowParams("threshold", -1100, -400, max_volume_ml=None)  # the whole-volume worst case
    bare, _ = _median(lambda: grow_region(data, spacing, AIR, params))
    calls = []
    hooked, _ = _median(lambda: grow_region(data, spacing, AIR, params, progress=lambda f, m: calls.append(f),
                                            cancel=lambda: False))
    _row("grow_region air (whole volume), no callbacks", bare, "")
    _row(f"  with progress + cancel callbacks ({len(calls) // REPEAT} progress calls a run)", hooked,
         f"x{hooked / bare:.3f}")
    latencies = []
    for delay in np.linspace(0.02, 0.7 * bare, 12):
        deadline = time.perf_counter() + delay
        try:
            grow_region(data, spacing, AIR, params, cancel=lambda: time.perf_counter() >= deadline)
        except Cancelled:
            latencies.append(time.perf_counter() - deadline)
    _row(f"cancel latency, median of {len(latencies)} cancels during the grow", statistics.median(latencies), "")
    _row("cancel latency, worst", max(latencies), f"<= {CANCEL_S} s")
    assert len(latencies) >= 10 and max(latencies) <= CANCEL_S
