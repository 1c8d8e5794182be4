"""Oblique MPR in the slice views (issue 13): a rotate drag in one view turns the other two planes;
a turned view shows the trilinear reslice of its plane; clicks, scrolling, measurements and the
brush land on the voxels the turned plane shows; reset gives back the grid slices exactly."""
import numpy as np
import pytest

from medviewer.core import oblique
from medviewer.processing.label_tools import oblique_stroke
from medviewer.ui.qt import QtCore
from medviewer.ui.slice_view import window_table_int16


@pytest.fixture
def win(demo_window):
    w = demo_window(1400, 850)
    w.set_layout("1x3")
    return w


def _widget_pos(view, x, y) -> QtCore.QPoint:
    scene = view.viewbox.mapViewToScene(QtCore.QPointF(x, y))
    return view.graphics.mapFromScene(scene)


def _view_point(view, pos: QtCore.QPoint) -> QtCore.QPointF:
    """The view (mm) point a widget pixel maps to, as the mouse handler sees it."""
    return view.viewbox.mapSceneToView(view.graphics.mapToScene(pos))


def _drag(qtbot, view, points, modifiers=QtCore.Qt.NoModifier):
    """Press, move with the left button held, release, through view (mm) points."""
    from medviewer.ui.qt import QtGui, QtWidgets

    vp = view.graphics.viewport()
    qtbot.mousePress(vp, QtCore.Qt.LeftButton, modifiers, pos=_widget_pos(view, *points[0]))
    for p in points[1:]:
        local = QtCore.QPointF(_widget_pos(view, *p))
        move = QtGui.QMouseEvent(QtCore.QEvent.MouseMove, local, vp.mapToGlobal(local), QtCore.Qt.NoButton,
                                 QtCore.Qt.LeftButton, modifiers)
        QtWidgets.QApplication.sendEvent(vp, move)
        qtbot.wait(12)  # pyqtgraph drops mouse moves closer than its rate limit
    qtbot.mouseRelease(vp, QtCore.Qt.LeftButton, modifiers, pos=_widget_pos(view, *points[-1]))


def _turn(win, degrees=25.0):
    """Turn the coronal and sagittal planes about the axial normal (as a drag in the axial view)."""
    session = win.session
    axial = win.grid.views["axial"]
    session.planes.rotate("axial", axial._view_axes()[:, 2], np.radians(degrees))
    return win.grid.views["coronal"]


def test_a_rotate_drag_turns_the_other_planes_and_reset_restores_the_slices(win, qtbot):
    session, views = win.session, win.grid.views
    before = {p: v.image_item.image.copy() for p, v in views.items()}
    axial = views["axial"]
    axial.set_tool("rotate")
    cx, cy = axial._crosshair(session.cursor)
    r = 60.0  # mm from the crosshair: sweep a quarter turn, right of the centre to below it
    path = [(cx + r * np.cos(a), cy + r * np.sin(a)) for a in np.linspace(0, np.pi / 2, 12)]
    _drag(qtbot, axial, path)
    planes = session.planes
    assert not planes.is_rotated("axial") and planes.is_rotated("coronal") and planes.is_rotated("sagittal")
    rot = planes.rotations["coronal"]
    angle = np.degrees(np.arccos(np.clip((np.trace(rot) - 1) / 2, -1, 1)))
    assert 80 < angle < 95  # about the quarter turn the mouse swept (the first moves are lost to the drag start)
    coronal = views["coronal"]
    assert coronal.oblique_plane is not None and axial.oblique_plane is None
    assert not np.array_equal(coronal.image_item.image.shape, before["coronal"].shape) or \
        not np.array_equal(coronal.image_item.image, before["coronal"])
    assert np.array_equal(axial.image_item.image, before["axial"])  # its own plane did not move
    assert abs(axial.h_line.angle % 180 - angle) < 0.5  # the coronal plane's line turned with the mouse
    assert abs(axial.v_line.angle % 180 - (angle + 90) % 180) < 0.5
    assert "oblique" in coronal.overlay.slice_text
    planes.reset()
    for p, v in views.items():
        assert v.oblique_plane is None
        assert np.array_equal(v.image_item.image, before[p]), p
    assert axial.h_line.angle == 0 and axial.v_line.angle == 90


def test_a_turned_view_shows_the_trilinear_reslice_and_a_click_moves_the_cursor_there(win, qtbot):
    session = win.session
    coronal = _turn(win)
    o, w = coronal.oblique_plane, coronal.plane_offset
    volume = session.volume
    want = oblique.reslice(volume.data, volume, o, w, order=1, cval=float(volume.data.min()))
    table = window_table_int16(session.window, session.invert)
    assert np.array_equal(coronal.image_item.image, table[np.rint(want).astype(np.int16).view(np.uint16)])
    assert abs(w - float(volume.index_to_world(session.cursor) @ o.normal)) < 1e-6  # through the cursor
    x, y, _ = o.view_xy(volume.index_to_world(session.cursor))
    pos = _widget_pos(coronal, x + 40.0, y - 15.0)
    qtbot.mouseClick(coronal.graphics.viewport(), QtCore.Qt.LeftButton, pos=pos)
    point = _view_point(coronal, pos)
    world = o.world(point.x(), point.y(), w)
    assert np.array_equal(session.cursor, np.round(volume.world_to_index(world)).astype(int))
    assert np.allclose(session.planes.centre, world, atol=1e-6)  # the planes pass through the click
    assert coronal.plane_offset == pytest.approx(w)  # the clicked view's own plane stays
    # the hover probe reads the same voxel
    probe = session.probe(np.round(coronal.index_at(point)))
    assert probe["index"] == tuple(int(v) for v in session.cursor)


def test_scrolling_a_turned_view_moves_along_its_normal(win, qtbot):
    session = win.session
    coronal = _turn(win, 30.0)
    o = coronal.oblique_plane
    start = session.planes.pivot(session.volume, session.cursor).copy()
    w0 = coronal.plane_offset
    for _ in range(3):
        coronal.scroll(1)
    assert coronal.plane_offset == pytest.approx(w0 + 3 * o.step)
    moved = session.planes.centre - start
    assert np.allclose(moved, 3 * o.step * o.normal, atol=1e-6)  # along the turned normal, in world
    assert np.array_equal(session.cursor, np.round(session.volume.world_to_index(session.planes.centre)))


def test_a_brush_dab_on_a_turned_plane_paints_only_voxels_the_plane_cuts(win, qtbot):
    session = win.session
    coronal = _turn(win, 35.0)
    o, w = coronal.oblique_plane, coronal.plane_offset
    volume = session.volume
    ctl = win.annotation.controller
    ctl.set_tool("brush")
    ctl.radius_mm = 6.0
    x, y, _ = o.view_xy(volume.index_to_world(session.cursor))
    point = QtCore.QPointF(x + 20.0, y + 10.0)
    coronal.annotate("click", point)
    labels = session.active_labels
    painted = labels.data > 0
    centre_ijk = coronal.index_at(point, inside=True)
    region, mask = oblique_stroke(volume.shape, volume.direction @ np.diag(volume.spacing), [centre_ijk], 6.0, o.normal)
    want = np.zeros(volume.shape, bool)
    want[region] = mask
    assert painted.sum() > 50 and np.array_equal(painted, want)
    zyx = np.argwhere(painted)
    world = volume.index_to_world(zyx[:, ::-1].astype(float)) - volume.index_to_world(centre_ijk)
    dist = world @ o.normal
    assert np.all(np.abs(dist) <= o.half_voxel + 1e-6)  # near the plane
    in_plane = np.linalg.norm(world - dist[:, None] * o.normal, axis=1)
    assert np.all(in_plane <= 6.0 + 1e-6) and in_plane.max() > 5.0  # within the radius, out to it
    # the turned view shows the dab as a filled disc where the mouse was
    item = next(it for lm, it, _ in coronal._layer_items if lm is labels)
    shown = item.image
    rows, cols = np.indices(shown.shape)
    r_mm = np.hypot((cols + 0.5) * o.pixel - point.x(), (rows + 0.5) * o.pixel - point.y())
    assert shown[r_mm <= 6.0 - 2.0].all() and not shown[r_mm > 6.0 + 2.0].any()
    # a slice-bound shape tool is refused with a message, nothing painted
    messages = []
    ctl.message.connect(messages.append)
    ctl.set_tool("rectangle")
    coronal.annotate("press", point)
    coronal.annotate("release", QtCore.QPointF(point.x() + 10, point.y() + 10))
    assert messages and "Rectangle" in messages[0] and "reset" in messages[0]
    assert np.array_equal(labels.data > 0, painted)


def test_a_measurement_on_a_turned_plane_is_drawn_while_the_plane_passes_through_it(win, qtbot):
    session = win.session
    coronal = _turn(win, 20.0)
    o, w = coronal.oblique_plane, coronal.plane_offset
    volume = session.volume
    coronal.set_tool("distance")
    x, y, _ = o.view_xy(volume.index_to_world(session.cursor))
    a, b = QtCore.QPointF(x - 30, y - 3), QtCore.QPointF(x + 10, y + 6)  # the CT is 40 mm tall
    coronal.left_at(a, dragging=False)
    coronal.left_at(b, dragging=False)
    m = session.measurements[-1]
    assert m.value == pytest.approx(np.hypot(40, 9), abs=1e-6)  # 40 x 9 mm on the plane: exact, in world
    assert np.allclose(m.points @ o.normal, w)
    assert len(coronal._measure_items) == 2  # the line and its text
    coronal.scroll(2)
    assert coronal._measure_items == []  # the plane moved away from it
    coronal.scroll(-2)
    assert len(coronal._measure_items) == 2


def test_an_oblique_acquisition_shows_its_own_grid_labelled_and_can_be_resliced_to_patient_axes(qtbot):
    from scipy import ndimage

    from medviewer.core import Volume
    from medviewer.core.session import Session
    from medviewer.ui.reading_toolbar import ReadingToolbar
    from medviewer.ui.viewer_grid import ViewerGrid

    rng = np.random.default_rng(1)
    data = (ndimage.gaussian_filter(rng.normal(size=(12, 30, 32)), 2) * 3000).astype(np.int16)
    tilt = oblique.rotation_about([1, 0, 0], np.radians(15))  # a gantry tilt of 15 degrees
    session = Session()
    grid = ViewerGrid(session)
    qtbot.addWidget(grid)
    bar = ReadingToolbar(grid)
    session.set_volume(Volume(data, spacing=(0.8, 0.8, 3.0), direction=tilt, modality="CT"))
    axial = grid.views["axial"]
    assert "acquisition grid, 15° oblique" in axial.overlay.slice_text
    k = int(session.cursor[2])
    assert np.array_equal(axial.image_item.image, window_table_int16(session.window, False)[data[k].view(np.uint16)])
    assert bar.patient_action.isEnabled() and not bar.reset_action.isEnabled()
    bar.patient_action.trigger()
    for view in grid.views.values():
        assert np.allclose(np.abs(view.oblique_plane.axes), np.abs(np.round(view.oblique_plane.axes)), atol=1e-9)
    assert np.allclose(axial.oblique_plane.normal, [0, 0, 1])  # straight axial now
    assert axial.overlay.letters == ("R", "L", "A", "P") and bar.reset_action.isEnabled()
    bar.reset_action.trigger()
    assert axial.oblique_plane is None
    assert np.array_equal(axial.image_item.image, window_table_int16(session.window, False)[data[k].view(np.uint16)])


def test_a_turned_view_reslices_heat_maps_trilinearly_and_draws_slabs_along_its_normal(win, qtbot):
    from medviewer.core import slab
    from medviewer.core.heatmap import HeatMap

    session = win.session
    volume = session.volume
    z, y, x = np.indices(volume.shape)
    heat = HeatMap((np.exp(-((x - 256) ** 2 + (y - 256) ** 2) / 8000.0) * np.ones(volume.shape)).astype(np.float32),
                   "blob", threshold=0.1)
    session.add_heatmap(heat)
    coronal = _turn(win, 25.0)
    o, w = coronal.oblique_plane, coronal.plane_offset
    item = next(it for hm, it, _ in coronal._heat_items if hm is heat)
    assert np.array_equal(item.image, heat.indices(oblique.reslice(heat.data, volume, o, w, order=1)))
    coronal.set_slab("mip", 3 * o.step)  # the plane and one step either side, along the turned normal
    assert slab.half_width(3 * o.step, o.step) == 1
    bg = float(volume.data.min())
    stack = np.stack([oblique.reslice(volume.data, volume, o, w + j * o.step, order=1, cval=bg) for j in (-1, 0, 1)])
    table = window_table_int16(session.window, session.invert)
    assert np.array_equal(coronal.image_item.image, table[np.rint(stack.max(axis=0)).astype(np.int16).view(np.uint16)])
    assert "MIP" in coronal.overlay.slice_text and "oblique" in coronal.overlay.slice_text


def test_ctrl_shift_drag_turns_the_planes_even_with_a_paint_tool(win, qtbot):
    session = win.session
    win.annotation.controller.set_tool("brush")
    coronal = win.grid.views["coronal"]
    cx, cy = coronal._crosshair(session.cursor)
    path = [(cx + 15 * np.cos(a), cy + 15 * np.sin(a)) for a in np.linspace(0, -np.pi / 3, 8)]
    _drag(qtbot, coronal, path, QtCore.Qt.ControlModifier | QtCore.Qt.ShiftModifier)
    planes = session.planes
    assert planes.is_rotated("axial") and planes.is_rotated("sagittal") and not planes.is_rotated("coronal")
    assert session.active_labels is None or not session.active_labels.data.any()  # nothing painted
    normal = coronal._view_axes()[:, 2]
    assert np.allclose(planes.rotations["axial"] @ normal, normal)  # turned about the coronal normal


def test_the_view_menu_rotate_tool_follows_the_tool_chosen_elsewhere(qtbot):
    from medviewer.core.session import Session
    from medviewer.ui.reading_toolbar import ReadingToolbar
    from medviewer.ui.viewer_grid import ViewerGrid

    session = Session()
    grid = ViewerGrid(session)
    qtbot.addWidget(grid)
    bar = ReadingToolbar(grid)
    assert not bar.rotate_action.isEnabled()  # nothing open
    from medviewer.core import Volume

    session.set_volume(Volume(np.zeros((4, 8, 8), np.int16)))
    bar.rotate_action.trigger()
    assert bar.rotate_action.isChecked() and all(v.tool == "rotate" for v in grid.views.values())
    for view in grid.views.values():  # the Tools menu's Distance
        view.set_tool("distance")
    assert not bar.rotate_action.isChecked()
