"""Thick slabs (core/slab.py): MIP / MinIP / average over the slices within half the thickness of
the current slice, for every plane and for acquisitions stored in any axis order."""
import numpy as np
import pytest

from medviewer.core import Volume
from medviewer.core.slab import describe, half_width, slab, slab_range
from medviewer.core.slicing import PLANES, plane_geometry

REDUCE = {"mip": np.max, "minip": np.min, "average": np.mean}


def _volume(direction=None):
    rng = np.random.default_rng(3)
    data = rng.integers(-1000, 2000, size=(9, 7, 8)).astype(np.int16)  # z=9, y=7, x=8
    return Volume(data, spacing=(0.7, 1.1, 2.5), direction=np.eye(3) if direction is None else direction)


def test_half_width_counts_the_slices_whose_centres_lie_within_half_the_thickness():
    assert half_width(10.0, 2.5) == 2  # 5 slices, centres at -5, -2.5, 0, 2.5, 5 mm
    assert half_width(10.0, 1.0) == 5
    assert half_width(4.9, 2.5) == 0  # thinner than two spacings: the plain slice
    assert half_width(0.0, 1.0) == 0
    assert slab_range(0, 9, 10.0, 2.5) == (0, 3)  # clipped at the first slice
    assert slab_range(8, 9, 10.0, 2.5) == (6, 9)
    assert slab_range(4, 9, 1000.0, 2.5) == (0, 9)


@pytest.mark.parametrize("plane", PLANES)
@pytest.mark.parametrize("mode", ["mip", "minip", "average"])
@pytest.mark.parametrize("flipped", [False, True])
def test_slab_equals_numpy_over_the_right_slices(plane, mode, flipped):
    # flipped: a sagittal acquisition stored with its axes permuted and reversed (index x -> world -z ...)
    direction = np.array([[0, 0, -1], [1, 0, 0], [0, -1, 0]], float) if flipped else None
    v = _volume(direction)
    g = plane_geometry(v, plane)
    spacing = v.spacing[g.normal_axis]
    thickness = 3 * spacing  # half width 1: three slices
    axis = 2 - g.normal_axis
    for k in (0, 1, g.n_slices // 2, g.n_slices - 1):
        got = slab(v.data, g, k, mode, thickness, spacing)
        lo, hi = max(0, k - 1), min(g.n_slices, k + 2)
        stack = np.stack([g.slice(v.data, j) for j in range(lo, hi)])
        want = REDUCE[mode](stack, axis=0)
        assert got.shape == g.slice(v.data, k).shape
        if mode == "average":
            assert got.dtype == np.float32
            np.testing.assert_allclose(got, want, rtol=0, atol=1e-3)
        else:
            assert got.dtype == np.int16  # the int16 window table still applies
            assert np.array_equal(got, want)
        # the same slices, straight from the array: the slab spans numpy axis `axis`
        index = [slice(None)] * 3
        index[axis] = slice(lo, hi)
        direct = REDUCE[mode](v.data[tuple(index)], axis=axis, keepdims=True)
        np.testing.assert_allclose(got, g.slice(direct, 0), atol=1e-3)


def test_thickness_zero_or_off_is_the_plain_slice():
    v = _volume()
    g = plane_geometry(v, "axial")
    assert slab(v.data, g, 4, "off", 10.0, 2.5) is not None
    assert np.array_equal(slab(v.data, g, 4, "off", 10.0, 2.5), g.slice(v.data, 4))
    assert np.array_equal(slab(v.data, g, 4, "mip", 0.0, 2.5), g.slice(v.data, 4))
    assert describe("mip", 10.0) == "MIP 10 mm" and describe("average", 2.5) == "Average 2.5 mm"
    assert describe("off", 10.0) == "" and describe("mip", 0) == ""
    with pytest.raises(ValueError):
        slab(v.data, g, 4, "median", 10.0, 2.5)
