"""Fusion in the slice view (ui/fusion_layer.py): the fused pixels at known voxels of the rendered
view — overlay colour where the moving image is above the threshold, checkerboard squares every
checker_mm, difference zero where the images agree — on the voxel grid, through a transform and
on a turned (oblique) plane."""
import numpy as np
import pytest
import SimpleITK as sitk

from medviewer.core.colormaps import colour_table
from medviewer.core.display import Window
from medviewer.core.session import Session
from medviewer.io import open_volume
from medviewer.ui.qt import QtCore
from medviewer.ui.slice_view import SliceView
from tests.conftest import DEMO

MRI = DEMO / "mri_hippocampus" / "hippocampus_001.nii.gz"
BOX = (slice(None), slice(20, 31), slice(8, 19))  # (z, y, x): x 8..18, y 20..30, every slice


@pytest.fixture
def view(qtbot):
    session = Session()
    session.set_volume(open_volume(str(MRI)))
    v = SliceView(session, "axial")
    qtbot.addWidget(v)
    v.resize(420, 560)
    v.show()
    qtbot.waitExposed(v)
    v.fit()
    return v


def _box_image(volume, value=100.0):
    data = np.zeros(volume.shape, np.float32)
    data[BOX] = value
    return volume.copy_geometry(data)


def _screen(view, ijk) -> tuple[int, int, int]:
    """The rendered colour of the view at voxel ijk's centre."""
    x, y = view._view_xy(np.asarray(ijk, float))
    pos = view.graphics.mapFromScene(view.viewbox.mapViewToScene(QtCore.QPointF(x, y)))
    image = view.grab().toImage()
    c = image.pixelColor(pos.x(), pos.y())
    return c.red(), c.green(), c.blue()


def _layer_pixel(view, ijk):
    """The fusion layer's RGBA at voxel ijk (its image is in display order, like the slice's)."""
    g = view.geometry_
    col, row, _ = g.pixel_from_index(ijk)
    return view.fusion_layer.rgba()[int(row), int(col)]


def test_overlay_is_coloured_where_the_moving_image_is_above_the_threshold(view, qtbot):
    session = view.session
    k = session.cursor[2]
    session.fusion.set(_box_image(session.volume), mode="overlay", colormap="jet", opacity=1.0, threshold=50.0,
                       window=Window(100, 50))
    qtbot.wait(20)
    assert view.fusion_layer.item.isVisible()
    top = tuple(int(c) for c in colour_table("jet")[255])
    assert _screen(view, (12, 25, k)) == top  # in the box: the moving image's top colour, opaque
    r, g, b = _screen(view, (28, 10, k))  # outside: the grey MR image under a transparent layer
    assert r == g == b
    assert _layer_pixel(view, (28, 10, k))[3] == 0 and _layer_pixel(view, (12, 25, k))[3] == 255
    view.set_display_transform(1, True)  # a quarter turn and a flip: the layer turns with the image
    qtbot.wait(20)
    assert _screen(view, (12, 25, k)) == top and _screen(view, (9, 29, k)) == top
    r, g, b = _screen(view, (28, 10, k))
    assert r == g == b
    view.set_display_transform(0, False)
    session.fusion.set(threshold=150.0)  # nothing above it: all transparent
    assert not _layer_pixel(view, (12, 25, k))[3]
    session.fusion.set(mode="off")
    assert not view.fusion_layer.item.isVisible()


def test_overlay_follows_the_slice_and_a_new_image_turns_it_off(view):
    session = view.session
    moving = np.zeros(session.volume.shape, np.float32)
    moving[5] = 100.0  # only slice z = 5
    session.fusion.set(session.volume.copy_geometry(moving), mode="overlay", threshold=50.0, window=Window(100, 50))
    session.set_cursor((10, 10, 5))
    assert _layer_pixel(view, (10, 10, 5))[3] > 0
    session.set_cursor((10, 10, 6))
    assert _layer_pixel(view, (10, 10, 6))[3] == 0
    session.set_volume(open_volume(str(MRI)))
    assert session.fusion.mode == "off" and not view.fusion_layer.item.isVisible()


def test_checkerboard_squares_alternate_at_the_right_mm(view):
    session = view.session
    volume, k = session.volume, session.cursor[2]
    white = volume.copy_geometry(np.full(volume.shape, 1000.0, np.float32))
    session.fusion.set(white, mode="checkerboard", checker_mm=10.0, window=Window(100, 50))
    g = view.geometry_
    assert (g.h_spacing, g.v_spacing) == (1.0, 1.0)  # the demo MR: 1 mm voxels, so 10 voxels a square
    for col, row in [(2, 3), (12, 3), (25, 3), (2, 14), (12, 14), (30, 45), (5, 22)]:
        ijk = g.index_from_pixel(col, row, k)
        moving_square = ((col // 10) + (row // 10)) % 2 == 1
        rgb = _screen(view, ijk)
        if moving_square:
            assert rgb == (255, 255, 255), (col, row)
        else:  # the fixed image in its own window, grey
            fixed = float(volume.data[k, int(ijk[1]), int(ijk[0])])
            w = session.window
            want = int(np.rint(np.clip((fixed - w.low) / w.width, 0, 1) * 255))
            assert rgb[0] == rgb[1] == rgb[2] and abs(rgb[0] - want) <= 1, (col, row)


def test_difference_is_zero_where_the_images_are_identical_and_through_a_transform(view):
    session = view.session
    volume, k = session.volume, session.cursor[2]
    session.fusion.set(volume, mode="difference", colormap="hot", window=session.window)
    for ijk in [(10, 10, k), (17, 30, k), (25, 40, k)]:
        assert _screen(view, ijk) == (0, 0, 0)
    # a copy moved by 4 voxels along x, brought back by the transform that says so: zero again
    moved = volume.copy_geometry(volume.data, origin=tuple(volume.index_to_world((4, 0, 0))))
    session.fusion.set(moved, window=session.window)
    assert max(_screen(view, (17, 30, k))) > 0 or max(_screen(view, (10, 10, k))) > 0
    shift = np.asarray(moved.origin) - np.asarray(volume.origin)
    session.fusion.set(transform=sitk.TranslationTransform(3, tuple(shift)))
    for ijk in [(10, 10, k), (17, 30, k), (25, 40, k)]:
        assert _screen(view, ijk) == (0, 0, 0)


def test_fusion_follows_a_turned_plane(view):
    session = view.session
    volume = session.volume
    session.fusion.set(_box_image(volume), mode="overlay", colormap="jet", opacity=1.0, threshold=50.0,
                       window=Window(100, 50))
    coronal = SliceView(session, "coronal")  # turn the axial plane as a drag in the coronal view would
    session.planes.rotate("coronal", coronal._view_axes()[:, 2], np.radians(20))
    assert view.oblique_plane is not None
    centre = np.array([13.0, 25.0, float(session.cursor[2])])  # a voxel in the box, on the turned plane
    session.planes.centre = volume.index_to_world(centre)
    session.set_cursor(centre)
    view._on_cursor(session.cursor)
    o = view.oblique_plane
    x, y, _ = o.view_xy(volume.index_to_world(centre))
    col, row = int(x / o.pixel), int(y / o.pixel)
    rgba = view.fusion_layer.rgba()
    assert rgba.shape[:2] == (o.n_rows, o.n_cols)
    assert tuple(rgba[row, col]) == tuple(colour_table("jet")[255]) + (255,)
    far = volume.index_to_world((30.0, 5.0, float(session.cursor[2])))  # outside the box on the same plane
    fx, fy, _ = o.view_xy(far)
    assert rgba[int(fy / o.pixel), int(fx / o.pixel), 3] == 0
    coronal.deleteLater()


@pytest.mark.parametrize("image", ["mri", "ct"])
def test_a_new_window_of_the_fixed_image_redraws_its_checkerboard_squares(qtbot, image):
    """uint8 MR (the view's levels path) and int16 CT (its window-table path) alike."""
    volume = open_volume(str(MRI if image == "mri" else DEMO / "ct_chest_20"))
    session = Session()
    session.set_volume(volume)
    view = SliceView(session, "axial")
    qtbot.addWidget(view)
    k = session.cursor[2]
    session.fusion.set(volume, mode="checkerboard", checker_mm=1e3)  # one square: all of it the fixed image
    g = view.geometry_
    x, y = int(g.n_h // 2), int(g.n_v // 2)
    ijk = g.index_from_pixel(x, y, k)
    value = float(volume.data[k, int(ijk[1]), int(ijk[0])])
    for window in (Window(10, value - 5), Window(10, value + 5)):  # the voxel white, then black
        session.set_window(window)
        assert view.fusion_layer.rgba()[y, x, 0] == (255 if window.level < value else 0)
