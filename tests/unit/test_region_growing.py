"""grow_region: 2D growing on any axis (against SimpleITK's 2D filters), the maximum volume (flag,
early stop, bounded work), progress and cancel, mL, and defaults that stay local on the demo CT."""
import numpy as np
import pytest
import SimpleITK as sitk
from scipy import ndimage as ndi

from medviewer.core.errors import Cancelled
from medviewer.processing import growing_box
from medviewer.processing.region_growing import (GrowParams, confidence_connected, connected_threshold,
                                                 grow_region)

# Seeds on the demo CT (x, y, z) where today's default (confidence, multiplier 2.5, 3 iterations,
# 3D, unbounded) leaks: the right lung base (grows through the whole body, ~1.6 M voxels), a small
# enhancing vessel by the coeliac axis (into the spleen and aorta, ~63 k voxels), a right portal
# vein branch (into the liver, ~430 k voxels).
LUNG_BASE, VESSEL, PORTAL = (206, 365, 16), (262, 258, 10), (198, 262, 10)


@pytest.fixture(scope="module")
def ct(demo_ct):
    from medviewer.io import discover
    vol = discover(demo_ct).sources[0].load()
    assert vol.shape == (20, 512, 512)
    return vol


def full(shape, result) -> np.ndarray:
    out = np.zeros(shape, bool)
    out[result.region] = result.mask
    return out


def plane(data, axis, index):
    """The 2D array of the slice normal to index axis `axis` (x=0, y=1, z=2) and how a 2D index
    (sitk order) is made from an (x, y, z) seed."""
    take = [slice(None)] * 3
    take[2 - axis] = index
    keep = [a for a in (0, 1, 2) if a != axis]
    return data[tuple(take)], lambda seed: [int(seed[a]) for a in keep]


@pytest.mark.parametrize("axis", [0, 1, 2])
def test_2d_threshold_stays_in_the_slice_and_equals_sitk_2d(ct, axis):
    seed = (150, 280, 10)  # liver
    result = grow_region(ct.data, ct.spacing, seed, GrowParams("threshold", 60, 200, plane_axis=axis,
                                                                max_volume_ml=None))
    got = full(ct.shape, result)
    assert got[seed[2], seed[1], seed[0]] and result.stopped == ""
    assert result.region[2 - axis] == slice(seed[axis], seed[axis] + 1)
    assert got.sum(axis=tuple(a for a in range(3) if a != 2 - axis)).nonzero()[0].tolist() == [seed[axis]]
    image, index = plane(ct.data, axis, seed[axis])
    ref = sitk.ConnectedThreshold(sitk.GetImageFromArray(image), seedList=[index(seed)], lower=60, upper=200)
    assert np.array_equal(plane(got, axis, seed[axis])[0], sitk.GetArrayViewFromImage(ref).astype(bool))
    assert result.voxels > 500


@pytest.mark.parametrize("axis", [0, 1, 2])
def test_2d_confidence_equals_sitk_2d(ct, axis):
    seed = PORTAL
    params = GrowParams(multiplier=2.5, iterations=3, radius=1, plane_axis=axis, max_volume_ml=None)
    got = full(ct.shape, grow_region(ct.data, ct.spacing, seed, params))
    image, index = plane(ct.data, axis, seed[axis])
    ref = sitk.ConfidenceConnected(sitk.GetImageFromArray(image), seedList=[index(seed)], numberOfIterations=3,
                                   multiplier=2.5, initialNeighborhoodRadius=1)
    assert np.array_equal(plane(got, axis, seed[axis])[0], sitk.GetArrayViewFromImage(ref).astype(bool))
    assert got.sum() == plane(got, axis, seed[axis])[0].sum()


def test_unbounded_3d_equals_the_old_functions_and_sitk(ct):
    seed = (150, 280, 10)
    params = GrowParams(multiplier=2.5, iterations=3, max_volume_ml=None)
    result = grow_region(ct.data, ct.spacing, seed, params)
    region, mask = confidence_connected(ct.data, ct.spacing, seed, 2.5, 3, 1)
    assert result.region == region and np.array_equal(result.mask, mask) and result.stopped == ""
    ref = sitk.ConfidenceConnected(sitk.GetImageFromArray(ct.data), seedList=[seed], numberOfIterations=3,
                                   multiplier=2.5, initialNeighborhoodRadius=1)
    assert np.array_equal(full(ct.shape, result), sitk.GetArrayViewFromImage(ref).astype(bool))
    lo, hi = result.interval
    assert lo < ct.data[10, 280, 150] < hi and ((ct.data[full(ct.shape, result)] >= lo).all())


def test_max_volume_flags_and_keeps_the_part_nearest_the_seed(ct):
    seed, limit_ml = (5, 5, 10), 20.0  # the air around the body: ~2.7 M voxels
    whole = full(ct.shape, grow_region(ct.data, ct.spacing, seed, GrowParams("threshold", -1100, -400,
                                                                              max_volume_ml=None)))
    result = grow_region(ct.data, ct.spacing, seed, GrowParams("threshold", -1100, -400, max_volume_ml=limit_ml))
    part = full(ct.shape, result)
    assert result.stopped == "max volume" and result.interval == (-1100.0, -400.0)
    limit = GrowParams(max_volume_ml=limit_ml).limit(ct.spacing)
    assert 0.5 * limit < result.voxels <= limit and result.volume_ml <= limit_ml
    assert part[seed[2], seed[1], seed[0]] and not (part & ~whole).any()
    assert ndi.label(part)[1] == 1
    far = np.argwhere(whole & ~part)  # what was left out lies farther from the seed than what was kept
    sp = np.array(ct.spacing)[::-1]
    d_kept = np.sqrt((((np.argwhere(part) - seed[::-1]) * sp) ** 2).sum(1)).max()
    assert np.sqrt((((far - seed[::-1]) * sp) ** 2).sum(1)).min() >= d_kept - 2 * sp.max()
    assert grow_region(ct.data, ct.spacing, seed, GrowParams("threshold", -1100, -400, max_voxels=1000)).voxels <= 1000


def test_max_volume_bounds_the_work(ct):
    """The limit stops the search: far fewer voxels are thresholded than in one whole-volume pass."""
    seen = []

    def in_range(v):
        seen.append(v.size)
        return (v >= -1100) & (v <= -400)

    _, _, complete = growing_box.grow(ct.data, (5, 5, 10), in_range, max_voxels=10_000)
    assert not complete and sum(seen) < ct.data.size / 4
    seen.clear()
    _, _, complete = growing_box.grow(ct.data, (5, 5, 10), in_range)
    assert complete and sum(seen) >= ct.data.size


def test_a_confidence_pass_that_hits_the_limit_ends_the_iterations(ct):
    calls = []
    result = grow_region(ct.data, ct.spacing, PORTAL, GrowParams(max_volume_ml=100.0),
                         progress=lambda f, m: calls.append(m))
    assert result.stopped == "max volume" and result.voxels <= GrowParams().limit(ct.spacing)
    assert ct.data[full(ct.shape, result)].min() >= result.interval[0]


def test_progress_is_monotone_and_cancel_raises_at_every_check(ct, monkeypatch):
    monkeypatch.setattr(growing_box, "_THREAD_VOXELS", 1 << 40)  # no timed polling: a fixed number of checks
    fractions, checks = [], []
    params = GrowParams(multiplier=2.5, max_volume_ml=None)

    def cancel():
        checks.append(1)
        return False

    grow_region(ct.data, ct.spacing, VESSEL, params, progress=lambda f, m: fractions.append(f), cancel=cancel)
    assert fractions[0] == 0.0 and fractions[-1] == 1.0 and len(fractions) > 3
    assert all(0.0 <= a <= b <= 1.0 for a, b in zip(fractions, fractions[1:]))
    n = len(checks)
    assert n > 20  # asked between slabs, not once per pass
    for stop_at in sorted({1, 2, n // 3, n // 2, n - 1}):
        count = []

        def cancel_at(stop_at=stop_at):
            count.append(1)
            return len(count) >= stop_at

        with pytest.raises(Cancelled):
            grow_region(ct.data, ct.spacing, VESSEL, params, cancel=cancel_at)
        assert len(count) == stop_at  # raised at once, nothing asked after


def test_a_big_connected_component_pass_polls_cancel_and_gives_the_same_result(monkeypatch):
    monkeypatch.setattr(growing_box, "_THREAD_VOXELS", 0)  # every pass on the helper thread
    rng = np.random.default_rng(5)
    inside = rng.random((30, 80, 90)) < 0.6
    inside[15, 40, 45] = True
    polls = []
    got = growing_box.component(inside, (15, 40, 45), check=lambda: polls.append(1))
    ref = sitk.ConnectedThreshold(sitk.GetImageFromArray(inside.view(np.uint8)), seedList=[(45, 40, 15)],
                                  lower=1, upper=1)
    assert polls and np.array_equal(got, sitk.GetArrayFromImage(ref).astype(bool))

    def stop():
        raise Cancelled("stop")

    with pytest.raises(Cancelled):
        growing_box.component(inside, (15, 40, 45), check=stop)


def test_cancel_after_the_first_progress_call(ct):
    told = []
    with pytest.raises(Cancelled):
        grow_region(ct.data, ct.spacing, LUNG_BASE, GrowParams(), progress=lambda f, m: told.append((f, m)),
                    cancel=lambda: bool(told))
    assert len(told) == 1


def test_volume_in_ml_is_voxels_times_voxel_volume(ct):
    result = grow_region(ct.data, ct.spacing, (150, 280, 10), GrowParams("threshold", 60, 200, plane_axis=2))
    assert result.voxels == int(result.mask.sum()) > 0
    assert result.volume_ml == pytest.approx(result.voxels * np.prod(ct.spacing) / 1000.0, rel=1e-12)
    for axis in (None, 0, 1, 2):
        empty = grow_region(ct.data, ct.spacing, (150, 280, 10), GrowParams("threshold", 1000, 2000, plane_axis=axis))
        assert empty.voxels == 0 and empty.volume_ml == 0.0 and empty.mask.size == 0 and empty.stopped == ""
        assert all(s.stop == s.start for s in empty.region)


@pytest.mark.parametrize("axis", [None, 2])
def test_defaults_stay_in_the_lung_base(ct, axis):
    before = full(ct.shape, grow_region(ct.data, ct.spacing, LUNG_BASE,
                                        GrowParams(multiplier=2.5, max_volume_ml=None)))
    assert before.sum() > 1_000_000 and (ct.data[before] > 0).any()  # today's default: the whole body
    result = grow_region(ct.data, ct.spacing, LUNG_BASE, GrowParams(plane_axis=axis))
    got = full(ct.shape, result)
    assert result.stopped == "" and 10 < result.voxels and result.volume_ml < 5.0
    assert ct.data[got].max() < -200  # lung, no soft tissue (> -100 HU)
    assert result.region[0].start >= 4 and result.region[1].start >= 330 and result.region[2].stop <= 230


@pytest.mark.parametrize("seed,axis", [(VESSEL, None), (VESSEL, 2), (PORTAL, 2)])
def test_defaults_stay_in_an_enhancing_vessel(ct, seed, axis):
    result = grow_region(ct.data, ct.spacing, seed, GrowParams(plane_axis=axis))
    got = full(ct.shape, result)
    assert result.stopped == "" and 5 <= result.voxels and result.volume_ml < 5.0
    liver = np.median(ct.data[10, 260:300, 120:180])  # ~100 HU
    assert result.interval[0] > liver + 10 and ct.data[got].min() > liver + 10  # never the parenchyma


def test_defaults_flag_the_3d_leak_of_a_portal_vein_into_the_liver(ct):
    result = grow_region(ct.data, ct.spacing, PORTAL)
    assert result.stopped == "max volume" and result.volume_ml <= 100.0


@pytest.mark.parametrize("kwargs", [dict(mode="magic"), dict(mode="threshold"), dict(mode="threshold", low=5, high=1),
                                    dict(multiplier=-1), dict(iterations=-1), dict(plane_axis=3),
                                    dict(max_volume_ml=0), dict(max_voxels=-5)])
def test_bad_parameters_say_what_is_wrong(kwargs):
    with pytest.raises(ValueError):
        GrowParams(**kwargs)


def test_old_functions_keep_their_behaviour(ct):
    region, mask = connected_threshold(ct.data, ct.spacing, (150, 280, 10), 200, 60)
    assert mask.size == 0  # low > high: nothing, as before
    with pytest.raises(ValueError):
        grow_region(ct.data, ct.spacing, (600, 0, 0))
