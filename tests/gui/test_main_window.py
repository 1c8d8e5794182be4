"""The main window on the real demo study, checked on rendered pixels (offscreen)."""
import numpy as np
import pytest

from medviewer.core.display import preset
from tests.conftest import DEMO

pytest.importorskip("pytestqt")

from medviewer.ui.main_window import MainWindow  # noqa: E402
from medviewer.ui.qt import QtCore  # noqa: E402

CT = DEMO / "ct_chest_20"
XRAY = DEMO / "xray" / "chest_xray_pneumonia.jpeg"


@pytest.fixture
def win(demo_window):
    w = demo_window(1400, 850)
    w.set_layout("1x3")
    QtCore.QCoreApplication.processEvents()
    return w


def grab(view) -> np.ndarray:
    QtCore.QCoreApplication.processEvents()
    img = view.graphics.grab().toImage().convertToFormat(view.graphics.grab().toImage().Format.Format_RGB32)
    w, h = img.width(), img.height()
    arr = np.frombuffer(img.constBits(), dtype=np.uint8, count=img.bytesPerLine() * h).reshape(h, img.bytesPerLine())
    return arr[:, : w * 4].reshape(h, w, 4)[..., 2::-1].copy()  # RGB32 is B, G, R, A in memory


def screen_xy(view, ijk) -> tuple[int, int]:
    """Widget pixel of a voxel centre in a view."""
    col, row, _ = view.geometry_.pixel_from_index(ijk)
    x, y = view._mm_from_pixel(col, row)
    scene = view.viewbox.mapViewToScene(QtCore.QPointF(x, y))
    p = view.graphics.mapFromScene(scene)
    return p.x(), p.y()


def test_demo_ct_is_drawn_in_three_linked_views(win):
    assert win.session.volume.size == (512, 512, 20)
    for plane, view in win.grid.views.items():
        pixels = grab(view)
        assert pixels.std() > 10, f"{plane} view is blank"
    axial = grab(win.grid.views["axial"])
    assert (axial.max(axis=2) > 40).mean() > 0.05  # the body, not just the overlay text


def test_scroll_changes_the_slice_and_the_pixels(win, qtbot):
    axial = win.grid.views["axial"]
    before = grab(axial)
    z = win.session.cursor[2]
    axial.scroll(+3)
    assert win.session.cursor[2] == z + 3
    assert np.abs(grab(axial).astype(int) - before).mean() > 0.5
    qtbot.keyClick(axial, QtCore.Qt.Key_Down)
    assert win.session.cursor[2] == z + 2


def test_lung_window_shows_lung_and_bone_window_does_not(win):
    vol = win.session.volume
    axial = win.grid.views["axial"]
    z = int(win.session.cursor[2])
    ys, xs = np.nonzero((vol.data[z] > -900) & (vol.data[z] < -600))
    inside = (ys > 150) & (ys < 380) & (xs > 80) & (xs < 430)  # lung bases, not the air around the body
    ys, xs = ys[inside][::50], xs[inside][::50]
    assert len(ys) > 20
    win.apply_preset("lung")
    lung = grab(axial)
    win.apply_preset("bone")
    bone = grab(axial)
    pts = [screen_xy(axial, (x, y, z)) for x, y in zip(xs, ys)]
    lung_values = np.array([lung[int(py), int(px)].mean() for px, py in pts])
    bone_values = np.array([bone[int(py), int(px)].mean() for px, py in pts])
    assert np.median(lung_values) > 60 and np.median(bone_values) < 5
    assert win.session.window == preset("bone")


def test_right_drag_window_and_invert_change_pixels(win):
    axial = win.grid.views["axial"]
    before = grab(axial)
    w0 = win.session.window
    axial.drag_window(40, -30)
    assert win.session.window.width > w0.width and win.session.window.level < w0.level
    after = grab(axial)
    assert np.abs(after.astype(int) - before).mean() > 1
    win.session.set_invert(True)
    inverted = grab(axial)
    x, y = screen_xy(axial, (5, 5, int(win.session.cursor[2])))  # air: black, then white
    assert after[int(y), int(x)].mean() < 30 and inverted[int(y), int(x)].mean() > 220


def test_zoom_and_fit(win):
    axial = win.grid.views["axial"]
    ppm = axial.pixels_per_mm()
    before = grab(axial)
    axial.zoom(2.0)
    assert axial.pixels_per_mm() == pytest.approx(2 * ppm, rel=0.05)
    assert np.abs(grab(axial).astype(int) - before).mean() > 1
    axial.fit()
    assert axial.pixels_per_mm() == pytest.approx(ppm, rel=0.05)


def test_click_moves_the_crosshair_and_the_other_views_follow(win, qtbot):
    axial, coronal = win.grid.views["axial"], win.grid.views["coronal"]
    cor_before = grab(coronal)
    x, y = screen_xy(axial, (200, 150, int(win.session.cursor[2])))
    qtbot.mouseClick(axial.graphics.viewport(), QtCore.Qt.LeftButton, pos=QtCore.QPoint(int(x), int(y)))
    assert tuple(win.session.cursor[:2]) == pytest.approx((200, 150), abs=1)
    assert np.abs(grab(coronal).astype(int) - cor_before).mean() > 0.5  # coronal now shows y = 150
    assert axial.v_line.value() == pytest.approx(200.5 * 0.9765625, abs=1.0)


def test_status_bar_shows_index_world_and_hu_under_the_mouse(win):
    win.set_layout("single", "axial")
    axial = win.grid.views["axial"]
    axial.viewbox.setRange(QtCore.QRectF(270.0, 230.0, 60.0, 60.0), padding=0)  # zoomed: voxels > 5 px
    QtCore.QCoreApplication.processEvents()
    assert axial.pixels_per_mm() * 0.9765625 > 5
    z = int(win.session.cursor[2])
    x, y = screen_xy(axial, (300, 260, z))
    axial._mouse_moved(axial.graphics.mapToScene(QtCore.QPoint(round(x), round(y))))
    hu = win.session.volume.data[z, 260, 300]
    assert win.status_index.text() == f"voxel (300, 260, {z})"
    assert win.status_value.text() == f"{hu} HU"
    world = win.session.volume.index_to_world((300, 260, z))
    assert win.status_world.text() == f"({world[0]:.1f}, {world[1]:.1f}, {world[2]:.1f}) mm"


def test_distance_measurement_on_the_ct_reads_millimetres_and_is_kept(win, qtbot):
    win.set_layout("single", "axial")
    axial = win.grid.views["axial"]
    win.set_tool("distance")
    z = int(win.session.cursor[2])
    # zoom in as a reader would for a careful measurement: 130 mm across the view
    axial.viewbox.setRange(QtCore.QRectF(90.0, 190.0, 130.0, 130.0), padding=0)
    QtCore.QCoreApplication.processEvents()
    mm_per_screen_pixel = 1.0 / axial.pixels_per_mm()
    assert mm_per_screen_pixel < 0.5
    for ijk in [(100, 256, z), (200, 256, z)]:
        x, y = screen_xy(axial, ijk)
        qtbot.mouseClick(axial.graphics.viewport(), QtCore.Qt.LeftButton, pos=QtCore.QPoint(int(x), int(y)))
    assert len(win.session.measurements) == 1
    m = win.session.measurements[0]
    # exact up to where the mouse can point: one screen pixel at each end
    assert m.value == pytest.approx(100 * 0.9765625, abs=2 * mm_per_screen_pixel)
    assert win.measurement_panel.list.count() == 1 and "mm" in win.measurement_panel.list.item(0).text()
    # kept with the session: reopening the image brings it back
    again = MainWindow()
    qtbot.addWidget(again)
    again.open_paths([str(CT)], wait=True)
    assert [round(x.value, 1) for x in again.session.measurements] == [round(m.value, 1)]
    win.measurement_panel.list.setCurrentRow(0)
    win.measurement_panel.delete_selected()
    assert win.session.measurements == []


def test_angle_measurement(win, qtbot):
    axial = win.grid.views["axial"]
    win.set_tool("angle")
    z = int(win.session.cursor[2])
    for ijk in [(300, 200, z), (200, 200, z), (200, 300, z)]:
        x, y = screen_xy(axial, ijk)
        qtbot.mouseClick(axial.graphics.viewport(), QtCore.Qt.LeftButton, pos=QtCore.QPoint(int(x), int(y)))
    assert win.session.measurements[-1].value == pytest.approx(90.0, abs=1.0)


def test_layouts_and_2d_image(win):
    win.set_layout("2x2")
    assert len(win.grid.visible_views()) == 3 and win.grid.info.isVisibleTo(win.grid)
    win.set_layout("single", "coronal")
    assert [v.plane for v in win.grid.visible_views()] == ["coronal"]
    assert [p for p, v in win.grid.views.items() if v.isVisibleTo(win.grid)] == ["coronal"]
    win.open_paths([str(XRAY)], wait=True)
    assert win.session.volume.is_2d and win.grid.layout_name == "single"
    assert not win.actions_.layout_actions["1x3"].isEnabled()
    view = win.grid.visible_views()[0]
    before = grab(view)
    assert before.std() > 10
    win.actions_.rotate()
    rotated = grab(view)
    assert np.abs(rotated.astype(int) - before).mean() > 1
    # after rotation the voxel under the mouse is still the right one
    x, y = screen_xy(view, (10, 200, 0))
    ijk = view.index_at(view.viewbox.mapSceneToView(view.graphics.mapToScene(QtCore.QPoint(int(x), int(y)))))
    assert np.allclose(np.round(ijk), (10, 200, 0))


def test_bad_input_is_reported_and_the_open_study_stays(win, tmp_path):
    broken = tmp_path / "broken.dcm"
    broken.write_bytes(b"\0" * 128 + b"DICM" + b"garbage")
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("no images here")
    source_id = win.session.source_id
    win.open_paths([str(broken)], wait=True)
    win.open_paths([str(empty)], wait=True)
    assert win.session.source_id == source_id and win.session.volume is not None
    assert any("broken.dcm" in p for p in win.problems)
    assert any("no images found" in p for p in win.problems)


def test_layout_and_recent_files_are_kept_between_runs(win, qtbot):
    win.set_layout("2x2")
    win.close()
    again = MainWindow()
    qtbot.addWidget(again)
    assert again.grid.layout_name == "2x2"
    assert str(CT) in again.recent_files()


def test_cine_plays_through_slices(win, qtbot):
    z0 = int(win.session.cursor[2])
    win.set_cine(True, fps=50)
    qtbot.waitUntil(lambda: int(win.session.cursor[2]) != z0, timeout=30_000)
    win.set_cine(False)


def test_clinical_notice_is_visible(win):
    assert "NOT FOR CLINICAL USE" in win.windowTitle()
    notice = win.statusBar().findChild(type(win.status_index), "clinical-notice")
    assert notice is not None and notice.isVisible()


def test_scrolling_never_reads_from_disk(win, monkeypatch):
    import builtins
    import io

    def no_disk(*args, **kwargs):
        raise AssertionError(f"file opened while scrolling: {args[:1]}")

    monkeypatch.setattr(builtins, "open", no_disk)
    monkeypatch.setattr(io, "open", no_disk)
    for view in win.grid.visible_views():
        for _ in range(5):
            view.scroll(+1)
        view.scroll(-3)
    QtCore.QCoreApplication.processEvents()


def _wheel(view, x, y, delta, modifiers=QtCore.Qt.NoModifier):
    from medviewer.ui.qt import QtGui, QtWidgets

    pos = QtCore.QPointF(x, y)
    event = QtGui.QWheelEvent(pos, view.graphics.viewport().mapToGlobal(pos), QtCore.QPoint(0, 0),
                              QtCore.QPoint(0, delta), QtCore.Qt.NoButton, modifiers,
                              QtCore.Qt.NoScrollPhase, False)
    QtWidgets.QApplication.sendEvent(view.graphics.viewport(), event)
    QtCore.QCoreApplication.processEvents()


def test_mouse_wheel_scrolls_and_ctrl_wheel_zooms(win):
    axial = win.grid.views["axial"]
    x, y = screen_xy(axial, (256, 256, int(win.session.cursor[2])))
    z = int(win.session.cursor[2])
    _wheel(axial, x, y, 120)
    assert int(win.session.cursor[2]) == z + 1
    _wheel(axial, x, y, -120)
    _wheel(axial, x, y, -120)
    assert int(win.session.cursor[2]) == z - 1
    ppm = axial.pixels_per_mm()
    _wheel(axial, x, y, 240, QtCore.Qt.ControlModifier)
    assert axial.pixels_per_mm() > 1.2 * ppm and int(win.session.cursor[2]) == z - 1


def test_middle_drag_pans(win, qtbot):
    axial = win.grid.views["axial"]
    (x0, _), _ = axial.viewbox.viewRange()
    vp = axial.graphics.viewport()
    start, end = QtCore.QPoint(150, 300), QtCore.QPoint(100, 300)
    qtbot.mousePress(vp, QtCore.Qt.MiddleButton, pos=start)
    for step in range(1, 6):
        qtbot.mouseMove(vp, QtCore.QPoint(150 - 10 * step, 300))
    qtbot.mouseRelease(vp, QtCore.Qt.MiddleButton, pos=end)
    (x1, _), _ = axial.viewbox.viewRange()
    assert x1 - x0 > 10  # dragged 50 px to the left: the view moved right by tens of mm


def test_label_overlay_is_coloured_exactly_where_the_mask_is(win):
    axial = win.grid.views["axial"]
    z = int(win.session.cursor[2])
    labels = np.zeros(win.session.volume.data.shape, np.uint8)
    labels[z, 200:300, 150:250] = 1
    labels[z, 200:300, 300:400] = 7
    lut = np.zeros((8, 4), np.uint8)
    lut[1] = (255, 0, 0, 255)
    lut[7] = (0, 0, 255, 255)
    axial.set_label_volume(labels, lut)
    pixels = grab(axial)
    inside_red = pixels[tuple(int(v) for v in screen_xy(axial, (200, 250, z))[::-1])]
    inside_blue = pixels[tuple(int(v) for v in screen_xy(axial, (350, 250, z))[::-1])]
    outside = pixels[tuple(int(v) for v in screen_xy(axial, (275, 250, z))[::-1])]
    assert inside_red[0] > 200 and inside_red[1] < 60 and inside_red[2] < 60
    assert inside_blue[2] > 200 and inside_blue[0] < 60
    assert abs(int(outside[0]) - int(outside[2])) < 10  # grey CT, no overlay colour
    axial.scroll(+1)  # the label map lives on slice z only
    moved = grab(axial)
    p = moved[tuple(int(v) for v in screen_xy(axial, (200, 250, z + 1))[::-1])]
    assert abs(int(p[0]) - int(p[2])) < 10


def test_dropping_a_file_opens_it(win, qtbot):
    from medviewer.ui.qt import QtGui, QtWidgets

    mime = QtCore.QMimeData()
    mime.setUrls([QtCore.QUrl.fromLocalFile(str(XRAY))])
    pos = QtCore.QPointF(300, 300)
    enter = QtGui.QDragEnterEvent(pos.toPoint(), QtCore.Qt.CopyAction, mime, QtCore.Qt.LeftButton, QtCore.Qt.NoModifier)
    QtWidgets.QApplication.sendEvent(win, enter)
    assert enter.isAccepted()
    drop = QtGui.QDropEvent(pos, QtCore.Qt.CopyAction, mime, QtCore.Qt.LeftButton, QtCore.Qt.NoModifier)
    QtWidgets.QApplication.sendEvent(win, drop)
    qtbot.waitUntil(lambda: win.session.volume is not None and win.session.volume.is_2d, timeout=10000)
    assert win.session.source_id == "chest_xray_pneumonia.jpeg"
