"""Fusion (core/fusion.py): the moving image resampled on a fixed image's planes, through a
transform when there is one, and the fused pictures (overlay, checkerboard, difference)."""
from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from medviewer.core import oblique
from medviewer.core.display import Window
from medviewer.core.errors import MedViewerError
from medviewer.core.fusion import Fusion, overlaps
from medviewer.core.session import Session
from medviewer.core.slicing import plane_geometry
from medviewer.core.volume import Volume
from medviewer.io import open_volume
from tests.conftest import DEMO

MRI = DEMO / "mri_hippocampus" / "hippocampus_001.nii.gz"  # a real MR (resources/demo: always there)


@pytest.fixture(scope="module")
def mri() -> Volume:
    return open_volume(str(MRI))


def _image(volume: Volume) -> sitk.Image:
    image = sitk.GetImageFromArray(np.ascontiguousarray(volume.data))
    image.SetSpacing(volume.spacing)
    image.SetOrigin(volume.origin)
    image.SetDirection(tuple(volume.direction.ravel()))
    return image


def _whole(fixed: Volume, moving: Volume, transform=None) -> np.ndarray:
    """SimpleITK's Resample of the whole moving volume onto the fixed grid (the reference)."""
    out = sitk.Resample(_image(moving), _image(fixed), transform or sitk.Transform(), sitk.sitkLinear,
                        float("nan"), sitk.sitkFloat32)
    return sitk.GetArrayFromImage(out)


def _grid_plane(volume: Volume, plane: str, k: int):
    """(origin, axis_u, axis_v, shape) of slice k of a grid view, and the (z, y, x) index of each pixel."""
    g = plane_geometry(volume, plane)
    origin = volume.index_to_world(g.index_from_pixel(0, 0, k))
    u = volume.index_to_world(g.index_from_pixel(1, 0, k)) - origin
    v = volume.index_to_world(g.index_from_pixel(0, 1, k)) - origin
    return g, origin, u, v, (g.n_v, g.n_h)


def _moved(volume: Volume, shift_vox=(3, -2, 1), spacing_scale=1.0) -> Volume:
    """The same voxels, the grid moved by a whole number of voxels."""
    origin = volume.index_to_world(np.asarray(shift_vox, float))
    return volume.copy_geometry(volume.data.copy(), origin=tuple(origin),
                                spacing=tuple(s * spacing_scale for s in volume.spacing))


def _rigid(volume: Volume) -> sitk.Euler3DTransform:
    t = sitk.Euler3DTransform()
    t.SetCenter(tuple(volume.index_to_world((np.asarray(volume.size) - 1) / 2)))
    t.SetRotation(0.12, -0.08, 0.2)
    t.SetTranslation((2.5, -1.5, 3.0))
    return t


@pytest.mark.parametrize("plane", ["axial", "coronal", "sagittal"])
def test_plane_values_equal_simpleitk_resample_of_the_whole_volume(mri, plane):
    fixed = mri
    moving = _moved(mri, spacing_scale=1.13)  # another grid: real interpolation
    fusion = Fusion(lambda: fixed)
    fusion.set(moving, mode="overlay")
    whole = _whole(fixed, moving)
    g, origin, u, v, shape = _grid_plane(fixed, plane, k := plane_geometry(fixed, plane).n_slices // 2)
    got = fusion.plane(fixed, origin, u, v, shape)
    want = g.slice(whole, k)
    assert got.dtype == np.float32 and got.shape == want.shape
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    assert np.isnan(got).any() and np.isfinite(got).any()  # the grids overlap in part
    np.testing.assert_allclose(got[np.isfinite(got)], want[np.isfinite(want)], rtol=1e-5, atol=1e-3)


def test_plane_through_a_known_rigid_transform_and_a_bspline(mri):
    fixed = mri
    for transform in (_rigid(mri), _bspline(mri)):
        fusion = Fusion(lambda: fixed)
        fusion.set(mri, transform=transform, mode="difference")
        whole = _whole(fixed, mri, transform)
        g, origin, u, v, shape = _grid_plane(fixed, "axial", k := fixed.size[2] // 2 - 3)
        got, want = fusion.plane(fixed, origin, u, v, shape), g.slice(whole, k)
        np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
        np.testing.assert_allclose(got[np.isfinite(got)], want[np.isfinite(want)], rtol=1e-5, atol=1e-3)
        assert np.nanmax(np.abs(got - g.slice(fixed.data, k))) > 10  # the transform moved the image


def _bspline(volume: Volume) -> sitk.BSplineTransform:
    t = sitk.BSplineTransformInitializer(_image(volume), [3, 3, 3])
    params = 3.0 * np.sin(0.7 * np.arange(len(t.GetParameters())))  # control points moved by up to 3 mm
    t.SetParameters(tuple(params))
    return t


def test_a_known_translation_brings_a_moved_copy_back_voxel_for_voxel(mri):
    moving = _moved(mri, (3, -2, 1))  # the same voxels, 3 / -2 / 1 voxels further along x / y / z
    offset = np.asarray(moving.origin) - np.asarray(mri.origin)
    fusion = Fusion(lambda: mri)
    fusion.set(moving, mode="overlay")
    g, origin, u, v, shape = _grid_plane(mri, "axial", k := 10)
    untransformed = fusion.plane(mri, origin, u, v, shape)
    # without a transform the world points meet the moved copy: fixed voxel (x, y, z) shows moving (x-3, y+2, z-1)
    x, y = 20, 15
    col, row, _ = g.pixel_from_index((x, y, k))
    assert untransformed[int(row), int(col)] == pytest.approx(float(mri.data[k - 1, y + 2, x - 3]))
    fusion.set(transform=sitk.TranslationTransform(3, tuple(offset)))
    through = fusion.plane(mri, origin, u, v, shape)
    np.testing.assert_allclose(through, g.slice(mri.data, k).astype(np.float32), atol=1e-3)


def test_outside_the_moving_image_is_nan_and_transparent(mri):
    moving = _moved(mri, (mri.size[0] // 2, 0, 0))  # overlaps the right half of the fixed image only
    fusion = Fusion(lambda: mri)
    fusion.set(moving, mode="overlay", opacity=0.8)
    g, origin, u, v, shape = _grid_plane(mri, "axial", 12)
    values = fusion.plane(mri, origin, u, v, shape)
    index_x = np.array([g.index_from_pixel(c, 0, 12)[0] for c in range(shape[1])])
    outside_cols = index_x < mri.size[0] // 2 - 0.5
    assert np.isnan(values[:, outside_cols]).all() and np.isfinite(values[:, ~outside_cols]).all()
    rgba = fusion.compose(g.slice(mri.data, 12), values, Window(200, 100))
    assert (rgba[:, outside_cols, 3] == 0).all()
    assert (rgba[:, ~outside_cols, 3] == round(0.8 * 255)).all()


def test_an_oblique_plane_samples_the_moving_image_where_the_plane_is(mri):
    """A turned view's pixel grid (core/oblique) through the moving image equals the fixed image's
    own reslice when the moving image is the same image."""
    rotation = oblique.rotation_about((1.0, 0.3, 0.0), 0.4)
    plane = oblique.plane_for(mri, plane_geometry(mri, "axial"), rotation)
    w = float(mri.index_to_world((np.asarray(mri.size) - 1) / 2) @ plane.normal)
    r, d, _ = plane.axes.T
    origin = plane.world(0.5 * plane.pixel, 0.5 * plane.pixel, w)
    fusion = Fusion(lambda: mri)
    fusion.set(mri, mode="overlay")
    got = fusion.plane(mri, origin, plane.pixel * r, plane.pixel * d, (plane.n_rows, plane.n_cols))
    want = oblique.reslice(mri.data.astype(np.float32), mri, plane, w, order=1, cval=np.nan)
    inside = np.isfinite(want) & np.isfinite(got)
    assert inside.sum() > 0.9 * np.isfinite(want).sum()  # the same footprint, bar the edge's rounding
    np.testing.assert_allclose(got[inside], want[inside], rtol=1e-4, atol=0.05)


def test_overlay_is_coloured_where_the_moving_image_is_above_the_threshold():
    fusion = Fusion()
    moving = Volume(np.zeros((1, 4, 4), np.float32))
    fusion.set(moving, mode="overlay", colormap="hot", opacity=1.0, threshold=50.0, window=Window(100, 50))
    values = np.array([[0, 49.9, 50, 100]], np.float32)
    rgba = fusion.compose(np.zeros_like(values), values, Window(1, 0.5))
    assert rgba[0, :2, 3].tolist() == [0, 0] and rgba[0, 2:, 3].tolist() == [255, 255]
    from medviewer.core.colormaps import colour_table

    table = colour_table("hot", 255)  # the overlay's colours (index 0 is transparent)
    assert rgba[0, 3, :3].tolist() == table[254].tolist()  # the top of the window: the top colour
    assert rgba[0, 2, :3].tolist() == table[127].tolist()  # the middle: the middle colour


def test_checkerboard_squares_alternate_every_checker_mm():
    fusion = Fusion()
    fusion.set(Volume(np.zeros((1, 2, 2), np.float32)), mode="checkerboard", checker_mm=10.0, window=Window(100, 50))
    fixed = np.full((40, 60), 25.0, np.float32)  # grey 64 in its window
    moving = np.full((40, 60), 100.0, np.float32)  # white in its window
    rgba = fusion.compose(fixed, moving, Window(100, 50), pixel_mm=(0.5, 2.0))
    grey = rgba[..., 0]
    assert (rgba[..., 3] == 255).all()
    # columns: 0.5 mm pixels, 20 per 10 mm square; rows: 2 mm pixels, 5 per square
    for row, col, is_moving in [(0, 0, False), (0, 19, False), (0, 20, True), (0, 39, True), (0, 40, False),
                                (4, 0, False), (5, 0, True), (5, 20, False), (9, 25, False), (10, 45, False)]:
        assert grey[row, col] == (255 if is_moving else 64), (row, col)


def test_difference_is_zero_where_the_images_agree():
    fusion = Fusion()
    fusion.set(Volume(np.zeros((1, 2, 2), np.float32)), mode="difference", colormap="grey", window=Window(200, 100))
    fixed = np.array([[10.0, 20.0, 30.0]], np.float32)
    moving = np.array([[20.0, 40.0, np.nan]], np.float32)  # the same after each is normalised by its window
    rgba = fusion.compose(fixed, moving, Window(100, 50))
    assert rgba[0, :2, :3].max() == 0 and rgba[0, :2, 3].tolist() == [255, 255] and rgba[0, 2, 3] == 0
    different = fusion.compose(fixed, np.array([[20.0, 200.0, 60.0]], np.float32), Window(100, 50))
    assert different[0, :, 0].tolist() == [0, round(203 * 255 / 254), 0]  # |0.2 - 1.0| = 0.8: 203 of 254 steps


def test_a_2d_image_over_a_3d_one_is_refused_and_nothing_changes(mri):
    fusion = Fusion(lambda: mri)
    fusion.set(mri, mode="overlay", opacity=0.3)
    emitted = []
    fusion.changed.connect(lambda: emitted.append(1))
    picture = Volume(np.zeros((64, 64), np.uint8))
    with pytest.raises(MedViewerError, match="2D image with a 3D one"):
        fusion.set(picture, mode="checkerboard")
    assert fusion.moving is mri and fusion.mode == "overlay" and fusion.opacity == 0.3 and not emitted


def test_images_that_do_not_overlap_are_refused_and_nothing_changes(mri):
    far = mri.copy_geometry(mri.data, origin=tuple(np.asarray(mri.origin) + 500.0))
    fusion = Fusion(lambda: mri)
    with pytest.raises(MedViewerError, match="do not overlap"):
        fusion.set(far, mode="overlay")
    assert fusion.moving is None and fusion.mode == "off"
    assert not overlaps(mri, mri, sitk.TranslationTransform(3, (0.0, 0.0, 900.0)))
    # a transform that brings it back makes it fusable
    fusion.set(far, transform=sitk.TranslationTransform(3, (500.0, 500.0, 500.0)), mode="overlay")
    assert fusion.moving is far and fusion.active


def test_a_small_moving_image_inside_the_fixed_one_overlaps(mri):
    small = Volume(np.ones((2, 2, 2), np.float32), origin=tuple(mri.index_to_world((11.3, 17.2, 9.1))),
                   spacing=(0.1, 0.1, 0.1))
    assert overlaps(mri, small)


def test_bad_settings_are_refused_and_nothing_changes(mri):
    fusion = Fusion(lambda: mri)
    with pytest.raises(MedViewerError, match="choose an image"):
        fusion.set(mode="overlay")
    fusion.set(mri, mode="overlay")
    for bad in ({"opacity": 1.5}, {"colormap": "rainbow"}, {"checker_mm": 0}, {"mode": "blend"}, {"gamma": 2}):
        with pytest.raises(MedViewerError):
            fusion.set(**bad)
    assert (fusion.opacity, fusion.colormap, fusion.checker_mm, fusion.mode) == (0.5, "hot", 20.0, "overlay")
    with pytest.raises(MedViewerError, match="RGB"):
        fusion.set(Volume(np.zeros((1, 4, 4, 3), np.uint8)))


def test_two_2d_images_fuse():
    a = Volume(np.arange(64, dtype=np.float32).reshape(8, 8))
    fusion = Fusion(lambda: a)
    fusion.set(a.copy_geometry(a.data * 2), mode="difference")
    got = fusion.plane(a, a.origin, (1.0, 0, 0), (0, 1.0, 0), (8, 8))
    np.testing.assert_allclose(got, a.data[0] * 2)


def test_a_new_image_in_the_session_turns_fusion_off(mri):
    session = Session()
    session.set_volume(mri)
    session.fusion.set(_moved(mri), mode="checkerboard")
    seen = []
    session.fusion.changed.connect(lambda: seen.append(session.fusion.mode))
    session.set_volume(mri.copy_geometry(mri.data.copy()))
    assert session.fusion.mode == "off" and session.fusion.moving is None and seen == ["off"]


@pytest.mark.parametrize("plane", ["axial", "coronal", "sagittal"])
def test_a_grid_of_whole_voxels_is_read_from_the_voxels_as_resample_gives(mri, plane):
    """A moving image on the fixed grid moved by whole voxels, and one stored with its x axis
    reversed: the plane is read from the voxels (no interpolation) and equals SimpleITK's Resample."""
    shifted = _moved(mri, (5, -3, 2))
    flip = np.diag([-1.0, 1.0, 1.0])
    reversed_x = mri.copy_geometry(np.ascontiguousarray(mri.data[:, :, ::-1]), direction=mri.direction @ flip,
                                   origin=tuple(mri.index_to_world((mri.size[0] - 1, 0, 0))))
    for moving in (shifted, reversed_x):
        fusion = Fusion(lambda: mri)
        fusion.set(moving, mode="overlay")
        g, origin, u, v, shape = _grid_plane(mri, plane, k := plane_geometry(mri, plane).n_slices // 2 + 1)
        got, want = fusion.plane(mri, origin, u, v, shape), g.slice(_whole(mri, moving), k)
        np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
        np.testing.assert_allclose(got[np.isfinite(got)], want[np.isfinite(want)], atol=1e-4)
    np.testing.assert_array_equal(got, g.slice(mri.data, k))  # the reversed copy is the image itself


def test_a_slice_beyond_a_moving_grid_of_whole_voxels_is_all_nan(mri):
    moving = _moved(mri, (0, 0, 20))  # starts 20 slices further up
    fusion = Fusion(lambda: mri)
    fusion.set(moving, mode="overlay")
    for k, inside in ((5, False), (25, True)):
        g, origin, u, v, shape = _grid_plane(mri, "axial", k)
        got = fusion.plane(mri, origin, u, v, shape)
        assert np.isfinite(got).all() if inside else np.isnan(got).all()
        if inside:
            np.testing.assert_array_equal(got, g.slice(mri.data, k - 20))
