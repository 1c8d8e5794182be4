"""Annotation tools: exact voxel sets on small synthetic volumes, region growing on the demo CT,
label clean-up, and how the results go through LabelMap (locks, undo)."""

import numpy as np
import pytest
import SimpleITK as sitk
from scipy import ndimage as ndi

from medviewer.core.labels import LabelMap
from medviewer.processing import label_cleanup as cleanup
from medviewer.processing import label_tools as lt
from medviewer.processing.region_growing import confidence_connected, connected_threshold

SHAPE = (10, 30, 40)  # z, y, x
SPACING = (0.5, 1.0, 2.0)  # x, y, z mm


def full(shape, region, mask):
    out = np.zeros(shape, bool)
    out[region] = mask
    return out


def ellipsoid_truth(shape, spacing, centre, r, normal_axis=None):
    """Voxels within r mm of centre (x, y, z); on one slice when normal_axis is given."""
    z, y, x = np.indices(shape)
    c = list(centre)
    if normal_axis is not None:
        c[normal_axis] = np.floor(c[normal_axis] + 0.5)
    idx = (x, y, z)
    d2 = sum(((idx[a] - c[a]) * spacing[a]) ** 2 for a in range(3) if a != normal_axis)
    out = d2 <= r * r + 1e-9
    if normal_axis is not None:
        out &= idx[normal_axis] == c[normal_axis]
    return out


def bounds(region):
    return tuple((s.start, s.stop) for s in region)


# --- brush / stroke -------------------------------------------------------------------------
def test_axial_disc_radius_in_mm_gives_per_axis_extents():
    region, mask = lt.brush(SHAPE, SPACING, (20, 15, 5), 2.0, normal_axis=2)
    assert bounds(region) == ((5, 6), (13, 18), (16, 25))  # x +-4 voxels (0.5 mm), y +-2 (1 mm)
    assert mask.shape == (1, 5, 9) and mask.dtype == bool
    assert np.array_equal(full(SHAPE, region, mask), ellipsoid_truth(SHAPE, SPACING, (20, 15, 5), 2.0, 2))


@pytest.mark.parametrize("normal_axis", [0, 1])
def test_sagittal_and_coronal_discs_use_the_in_plane_spacings(normal_axis):
    centre = (20.3, 14.8, 5.2)
    region, mask = lt.brush(SHAPE, SPACING, centre, 2.0, normal_axis)
    truth = ellipsoid_truth(SHAPE, SPACING, centre, 2.0, normal_axis)
    assert np.array_equal(full(SHAPE, region, mask), truth)
    assert mask.shape[2 - normal_axis] == 1


def test_sphere_is_an_ellipsoid_in_voxels_and_clips_at_the_border():
    region, mask = lt.brush(SHAPE, SPACING, (20, 15, 5), 2.0)
    assert bounds(region) == ((4, 7), (13, 18), (16, 25))  # z +-1 voxel (2 mm)
    assert np.array_equal(full(SHAPE, region, mask), ellipsoid_truth(SHAPE, SPACING, (20, 15, 5), 2.0))
    region, mask = lt.brush(SHAPE, SPACING, (1, 0, 0), 3.0)
    assert bounds(region) == ((0, 2), (0, 4), (0, 8))
    assert np.array_equal(full(SHAPE, region, mask), ellipsoid_truth(SHAPE, SPACING, (1, 0, 0), 3.0))


def test_tiny_brush_paints_the_voxel_under_the_cursor_and_outside_paints_nothing():
    region, mask = lt.brush(SHAPE, SPACING, (7.4, 3.6, 2.0), 0.1, normal_axis=2)
    assert bounds(region) == ((2, 3), (4, 5), (7, 8)) and mask.all()
    region, mask = lt.brush(SHAPE, SPACING, (-50, 3, 2), 2.0, normal_axis=2)
    assert mask.size == 0
    assert lt.stroke(SHAPE, SPACING, [], 2.0, 2)[1].size == 0 and lt.polygon(SHAPE, [], 2)[1].size == 0
    assert LabelMap(SHAPE).paint(region, mask, 1) == 0


def test_fast_stroke_leaves_no_gaps_and_stays_within_the_radius():
    pts = [(2, 3, 4), (35, 20, 4), (5, 28, 4)]
    r = 1.5
    region, mask = lt.stroke(SHAPE, SPACING, pts, r, normal_axis=2)
    got = full(SHAPE, region, mask)
    dense = np.zeros(SHAPE, bool)  # union of dabs every 0.05 voxel along the path
    for a, b in zip(pts[:-1], pts[1:]):
        for t in np.linspace(0, 1, 800):
            p = np.add(a, np.multiply(t, np.subtract(b, a)))
            dense |= full(SHAPE, *lt.brush(SHAPE, SPACING, p, r, 2))
    assert (got >= dense).all()
    extra = got & ~dense  # anything beyond the sampled dabs lies within r (+ sampling slack)
    assert extra.sum() <= 0.02 * got.sum()
    assert got[4].any(axis=0)[2:36].all()  # every column the first segment crosses is painted
    assert not got[:4].any() and not got[5:].any()


def test_one_voxel_stroke_is_a_connected_line():
    region, mask = lt.stroke(SHAPE, SPACING, [(0, 0, 1), (39, 29, 1)], 0.01, normal_axis=2)
    assert bounds(region) == ((1, 2), (0, 30), (0, 40))
    _, n = ndi.label(mask[0], np.ones((3, 3)))
    assert n == 1 and mask.sum() <= 45


def test_3d_stroke_is_a_capsule():
    region, mask = lt.stroke((20, 20, 20), (1, 1, 1), [(5, 10, 10), (15, 10, 10)], 2.0)
    z, y, x = np.indices((20, 20, 20))
    truth = ((y - 10) ** 2 + (z - 10) ** 2 + np.clip(np.maximum(5 - x, x - 15), 0, None) ** 2) <= 4
    assert np.array_equal(full((20, 20, 20), region, mask), truth)


# --- polygon, rectangle, ellipse --------------------------------------------------------------
def test_polygon_of_a_square_and_a_triangle_counts_exactly():
    sq = [(2, 2, 3), (6, 2, 3), (6, 6, 3), (2, 6, 3)]
    region, mask = lt.polygon(SHAPE, sq, normal_axis=2)
    assert bounds(region) == ((3, 4), (2, 7), (2, 7)) and mask.all() and mask.sum() == 25
    tri = [(0, 0, 3), (8, 0, 3), (0, 8, 3)]
    region, mask = lt.polygon(SHAPE, tri[::-1], normal_axis=2)  # winding does not matter
    y, x = np.indices(mask.shape[1:])
    assert mask.sum() == 45 and np.array_equal(mask[0], x + y <= 8)


def test_non_convex_polygon_and_sagittal_triangle():
    ell = [(0, 0, 1), (6, 0, 1), (6, 2, 1), (2, 2, 1), (2, 6, 1), (0, 6, 1)]
    assert lt.polygon(SHAPE, ell, 2)[1].sum() == 21 + 12
    tri = [(5, 1, 1), (5, 11, 1), (5, 1, 6)]  # y-z plane at x = 5
    region, mask = lt.polygon(SHAPE, tri, normal_axis=0)
    assert bounds(region) == ((1, 7), (1, 12), (5, 6))
    z, y = np.indices(mask.shape[:2])
    m = mask[..., 0]  # every voxel centre inside, plus outline voxels within half a voxel of an edge
    assert (m >= (2 * z + y <= 10)).all() and (m <= (2 * z + y <= 11)).all()


def test_lasso_of_a_circle_and_clipping():
    t = np.linspace(0, 2 * np.pi, 200, endpoint=False)
    path = np.c_[20 + 10 * np.cos(t), 15 + 10 * np.sin(t), np.full_like(t, 2)]
    region, mask = lt.polygon(SHAPE, path, 2)
    assert abs(mask.sum() - np.pi * 100) < 2 * np.pi * 10  # area plus at most the outline
    y, x = np.indices(SHAPE[1:])
    inner = (y - 15) ** 2 + (x - 20) ** 2 <= 9.5 ** 2
    assert full(SHAPE, region, mask)[2][inner].all()
    region, mask = lt.polygon(SHAPE, [(-10, -10, 0), (10, -10, 0), (10, 10, 0), (-10, 10, 0)], 2)
    assert bounds(region) == ((0, 1), (0, 11), (0, 11)) and mask.all()


def test_rectangle_takes_the_voxels_under_both_corners():
    region, mask = lt.rectangle(SHAPE, (2.4, 3.6, 5), (7.5, 1.2, 5), normal_axis=2)
    assert bounds(region) == ((5, 6), (1, 5), (2, 9)) and mask.all() and mask.sum() == 28
    region, mask = lt.rectangle(SHAPE, (3, 2, 1), (3, 12, 8), normal_axis=0)
    assert bounds(region) == ((1, 9), (2, 13), (3, 4)) and mask.all()


def test_ellipse_is_inscribed_in_the_rectangle():
    region, mask = lt.ellipse(SHAPE, SPACING, (0, 0, 4), (10, 6, 4), normal_axis=2)
    assert bounds(region) == ((4, 5), (0, 7), (0, 11))
    m = mask[0]
    assert m[3].all() and m[:, 5].all()  # middle row and column span the rectangle
    assert not m[0, 0] and np.array_equal(m, m[::-1]) and np.array_equal(m, m[:, ::-1])
    y, x = np.indices(m.shape)
    assert np.array_equal(m, ((x - 5) / 5.5) ** 2 + ((y - 3) / 3.5) ** 2 <= 1)
    assert lt.ellipse(SHAPE, SPACING, (5, 5, 0), (5, 5, 0), 2)[1].sum() == 1


# --- paint bucket, threshold, interpolation -------------------------------------------------
def test_flood_fill_stops_at_other_labels_and_is_4_connected():
    labels = np.zeros(SHAPE, np.uint8)
    labels[3, 5:15, 5] = labels[3, 5:15, 14] = labels[3, 5, 5:15] = labels[3, 14, 5:15] = 2
    region, mask = lt.flood_fill_slice(labels, (9, 9, 3), normal_axis=2)
    assert bounds(region) == ((3, 4), (6, 14), (6, 14)) and mask.all()  # the 8x8 interior
    lm = LabelMap(SHAPE, data=labels)
    assert lm.paint(region, mask, 1) == 64 and (lm.data == 2).sum() == 36
    # a diagonal wall is closed for a 4-connected fill
    diag = np.zeros(SHAPE, np.uint8)
    for i in range(30):
        diag[0, i, min(i, 39)] = 3
    region, mask = lt.flood_fill_slice(diag, (30, 2, 0), 2)
    got = full(SHAPE, region, mask)[0]
    y, x = np.indices(got.shape)
    assert np.array_equal(got, x > y)
    # the seed's label is what gets filled: clicking a label picks that label's region
    region, mask = lt.flood_fill_slice(labels, (5, 9, 3), 2)
    assert mask.sum() == 36


def test_threshold_limited_paint():
    image = np.tile(np.arange(40, dtype=np.int16) * 10, (10, 30, 1))  # intensity = 10 * x
    region, mask = lt.brush(SHAPE, SPACING, (20, 15, 5), 4.0, 2)
    region2, limited = lt.threshold_limit(image, region, mask, 150, 220)
    assert region2 == region
    assert np.array_equal(limited, mask & (image[region] >= 150) & (image[region] <= 220))
    xs = np.nonzero(full(SHAPE, region, limited))[2]
    assert xs.min() == 15 and xs.max() == 22


def disc_labels(shape, slices, radii, value=1, axis=0):
    labels = np.zeros(shape, np.uint8)
    yy, xx = np.indices(shape[1:])
    for k, r in zip(slices, radii):
        labels[k][(yy - 10) ** 2 + (xx - 12) ** 2 <= r * r] = value
    return np.moveaxis(labels, 0, axis)


def test_interpolation_between_slices_2_and_8_fills_3_to_7():
    labels = disc_labels((10, 24, 24), [2, 8], [5, 5])
    region, mask = lt.interpolate_between_slices(labels, 1, normal_axis=2, method="distance")
    got = full(labels.shape, region, mask)
    assert bounds(region)[0] == (3, 8)
    for k in range(3, 8):
        assert np.array_equal(got[k], labels[2] == 1)
    # growing discs: each slice between holds a disc at least as big as the one before
    labels = disc_labels((10, 24, 24), [2, 8], [3, 8])
    region, mask = lt.interpolate_between_slices(labels, 1, 2, spacing=(1, 1, 3), method="distance")
    counts = full(labels.shape, region, mask).sum(axis=(1, 2))
    assert (counts[:3] == 0).all() and (counts[8:] == 0).all()
    assert (np.diff(counts[3:8]) > 0).all() and counts[3] > (labels[2] == 1).sum()


def test_interpolation_along_x_and_nothing_to_do():
    labels = disc_labels((24, 24, 24), [4, 9, 12], [4, 4, 6], value=5, axis=2)  # slices x = 4, 9, 12
    labels[0, 0, 0] = 2
    region, mask = lt.interpolate_between_slices(labels, 5, normal_axis=0, method="distance")
    got = full(labels.shape, region, mask)
    assert set(np.flatnonzero(got.any(axis=(0, 1)))) == {5, 6, 7, 8, 10, 11}
    assert not (got & (labels == 5)).any()
    assert lt.interpolate_between_slices(labels, 7, 0)[1].size == 0


@pytest.mark.skipif(not hasattr(sitk, "MorphologicalContourInterpolator"),
                    reason="this SimpleITK build has no MorphologicalContourInterpolator")
def test_morphological_interpolation_when_available():
    labels = disc_labels((10, 24, 24), [2, 8], [5, 5])
    region, mask = lt.interpolate_between_slices(labels, 1, normal_axis=2, method="morphological")
    got = full(labels.shape, region, mask)
    assert all(got[k].sum() > 0 for k in range(3, 8)) and not got[[0, 1, 2, 8, 9]].any()


def test_interpolation_method_is_checked():
    labels = disc_labels((10, 24, 24), [2, 8], [5, 5])
    with pytest.raises(ValueError):
        lt.interpolate_between_slices(labels, 1, 2, method="spline")
    if not hasattr(sitk, "MorphologicalContourInterpolator"):
        with pytest.raises(RuntimeError):
            lt.interpolate_between_slices(labels, 1, 2, method="morphological")
        assert np.array_equal(lt.interpolate_between_slices(labels, 1, 2)[1],
                              lt.interpolate_between_slices(labels, 1, 2, method="distance")[1])


# --- region growing on the demo CT ------------------------------------------------------------
@pytest.fixture(scope="module")
def ct(demo_ct):
    from medviewer.io import open_volume
    vol = open_volume(demo_ct)
    assert vol.shape == (20, 512, 512)
    return vol


def check_grown(data, region, mask, seed, low, high):
    got = full(data.shape, region, mask)
    assert got[seed[2], seed[1], seed[0]]
    assert ((data[got] >= low) & (data[got] <= high)).all()
    _, n = ndi.label(got)
    assert n == 1  # one 6-connected piece
    rim = ndi.binary_dilation(got) & ~got  # maximal: no in-range voxel touches it from outside
    assert not ((data[rim] >= low) & (data[rim] <= high)).any()
    assert bounds(region) == tuple((int(s.start), int(s.stop)) for s in ndi.find_objects(got.view(np.uint8))[0])
    return got


@pytest.mark.parametrize("seed,low,high", [((5, 5, 10), -1100, -400), ((150, 280, 10), 60, 200)])
def test_connected_threshold_air_and_liver(ct, seed, low, high):
    region, mask = connected_threshold(ct.data, ct.spacing, seed, low, high)
    got = check_grown(ct.data, region, mask, seed, low, high)
    ref = sitk.ConnectedThreshold(sitk.GetImageFromArray(ct.data), seedList=[seed], lower=low, upper=high)
    assert np.array_equal(got, sitk.GetArrayViewFromImage(ref).astype(bool))
    if low < -500:  # the air outside the body never enters it
        assert not got[:, 256, 256].any() and got[:, 0, 0].all()
    else:
        assert not got[10, 5, 5] and got.sum() > 100_000


def test_region_growing_edge_cases(ct):
    region, mask = connected_threshold(ct.data, ct.spacing, (150, 280, 10), 1000, 2000)
    assert mask.size == 0
    with pytest.raises(ValueError):
        connected_threshold(ct.data, ct.spacing, (600, 0, 0), 0, 1)


def test_growing_boxes_match_sitk_on_a_percolating_maze():
    rng = np.random.default_rng(3)
    data = (rng.random((40, 150, 160)) < 0.55).astype(np.int16)
    img = sitk.GetImageFromArray(data)
    for seed in [(80, 75, 20), (3, 4, 0), (150, 140, 39)]:
        if not data[seed[2], seed[1], seed[0]]:
            continue
        region, mask = connected_threshold(data, (1, 1, 1), seed, 1, 1)
        ref = sitk.GetArrayViewFromImage(sitk.ConnectedThreshold(img, seedList=[seed], lower=1, upper=1))
        assert np.array_equal(full(data.shape, region, mask), ref.astype(bool))


def test_confidence_connected_matches_sitk_in_the_liver(ct):
    seed = (150, 280, 10)
    img = sitk.GetImageFromArray(ct.data)
    for iterations in (0, 3):
        region, mask = confidence_connected(ct.data, ct.spacing, seed, 2.5, iterations, 1)
        ref = sitk.ConfidenceConnected(img, seedList=[seed], numberOfIterations=iterations, multiplier=2.5,
                                       initialNeighborhoodRadius=1)
        assert np.array_equal(full(ct.shape, region, mask), sitk.GetArrayViewFromImage(ref).astype(bool))


# --- clean-up -----------------------------------------------------------------------------------
def apply(lm, result, text="cleanup"):
    region, values = result
    before = lm.data.copy()
    n = lm.set_region(region, values, text)
    if n:
        assert lm.undo_stack._done[-1].before.shape == values.shape
    return before, n


def test_smooth_removes_a_spike_and_fills_a_notch_and_undo_restores():
    labels = np.zeros((20, 20, 20), np.uint8)
    labels[5:15, 5:15, 5:15] = 1
    labels[10, 10, 15:18] = 1  # spike
    labels[10, 10, 5:7] = 0  # notch
    labels[12, 12, 1] = 2  # another label, untouched
    lm = LabelMap(labels.shape, data=labels)
    before, n = apply(lm, cleanup.smooth(lm.data, 1, (1, 1, 1), radius_mm=1.0))
    assert n == 5
    expect = np.zeros_like(labels)
    expect[5:15, 5:15, 5:15] = 1
    expect[12, 12, 1] = 2
    assert np.array_equal(lm.data, expect)
    lm.undo()
    assert np.array_equal(lm.data, before)
    assert cleanup.smooth(expect, 1, (1, 1, 1), 1.0)[1].size == 0  # a cube is already smooth
    assert cleanup.smooth(expect, 9, (1, 1, 1))[1].size == 0
    region, values = cleanup.smooth(labels, 1, (1, 1, 1), 1.0, method="median")
    assert 10 in range(region[0].start, region[0].stop) and values.size


def test_smooth_does_not_erode_at_the_volume_border_and_respects_anisotropy():
    labels = np.zeros((6, 20, 20), np.uint8)
    labels[:, :10, :] = 1  # touches 5 faces of the volume
    assert cleanup.smooth(labels, 1, (1, 1, 1), 1.5)[1].size == 0
    thin = np.zeros((9, 20, 20), np.uint8)
    thin[4, 5:15, 5:15] = 1  # one slice thick: erased by an isotropic opening...
    region, values = cleanup.smooth(thin, 1, (1, 1, 1), 1.0)
    assert values.size and not values.any()
    assert cleanup.smooth(thin, 1, (1, 1, 3.0), 1.0)[1].size == 0  # ...but not with 3 mm slices


def test_fill_holes_3d_and_per_slice():
    ring = np.zeros((5, 12, 12), np.uint8)
    ring[1:4, 2:10, 2:10] = 1
    ring[1:4, 4:8, 4:8] = 0  # an open tube: no 3D hole
    assert cleanup.fill_holes(ring, 1)[1].size == 0
    lm = LabelMap(ring.shape, data=ring)
    region, values = cleanup.fill_holes(lm.data, 1, normal_axis=2)
    assert bounds(region) == ((1, 4), (4, 8), (4, 8))
    before, n = apply(lm, (region, values))
    assert n == 48 and (lm.data[1:4, 2:10, 2:10] == 1).all()
    lm.undo()
    assert np.array_equal(lm.data, before)
    shell = ring.copy()
    shell[0, 2:10, 2:10] = shell[4, 2:10, 2:10] = 1
    shell[2, 5, 5] = 3  # another label inside the hole
    region, values = cleanup.fill_holes(shell, 1)
    filled = shell.copy()
    filled[region] = values
    assert (filled[1:4, 4:8, 4:8] == 1).sum() == 47 and filled[2, 5, 5] == 3
    region, values = cleanup.fill_holes(shell, 1, overwrite=True)
    filled[region] = values
    assert (filled[1:4, 4:8, 4:8] == 1).all()


def test_keep_largest_component():
    labels = np.zeros((10, 10, 10), np.uint8)
    labels[1:4, 1:4, 1:4] = 4  # 27 voxels
    labels[6:8, 6:8, 6:8] = 4  # 8 voxels
    labels[4, 4, 4] = 4  # touches the big cube at a corner only
    labels[8, 1, 1] = 1
    region, values = cleanup.keep_largest_component(labels, 4)
    out = labels.copy()
    out[region] = values
    assert (out == 4).sum() == 27 and out[8, 1, 1] == 1
    region, values = cleanup.keep_largest_component(labels, 4, connectivity=3)
    out = labels.copy()
    out[region] = values
    assert (out == 4).sum() == 28 and bounds(region) == ((6, 8), (6, 8), (6, 8))
    assert cleanup.keep_largest_component(out, 4, connectivity=3)[1].size == 0


# --- with LabelMap: locks ------------------------------------------------------------------------
def test_paint_never_overwrites_a_locked_label():
    lm = LabelMap(SHAPE)
    lm.table.add("locked", value=2, locked=True)
    lm.data[5, 10:20, 10:30] = 2
    locked_before = lm.data == 2
    for tool in (lambda: lt.brush(SHAPE, SPACING, (20, 15, 5), 6.0, 2),
                 lambda: lt.rectangle(SHAPE, (0, 0, 5), (39, 29, 5), 2),
                 lambda: lt.flood_fill_slice(lm.data, (0, 0, 5), 2),
                 lambda: lt.brush(SHAPE, SPACING, (20, 15, 5), 8.0)):
        region, mask = tool()
        lm.paint(region, mask, 1)
        assert np.array_equal(lm.data == 2, locked_before)
    region, mask = lt.rectangle(SHAPE, (0, 0, 5), (39, 29, 5), 2)
    lm.paint(region, mask, 0, "erase", only=1)
    assert not (lm.data[5] == 1).any() and np.array_equal(lm.data == 2, locked_before)
    lm.data[lm.data == 1] = 0
    lm.data[1, 1, 1] = 2
    assert cleanup.keep_largest_component(lm.data, 2)[1].size
    assert lm.set_region(*cleanup.keep_largest_component(lm.data, 2), "keep largest") == 0
