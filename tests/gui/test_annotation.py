"""Annotation in the viewer, driven by real mouse events on the demo CT (offscreen)."""
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from tests.conftest import DEMO

pytest.importorskip("pytestqt")

from medviewer.ui.main_window import MainWindow  # noqa: E402
from medviewer.ui.qt import QtCore  # noqa: E402

CT = DEMO / "ct_chest_20"


@pytest.fixture
def win(demo_window):
    w = demo_window(1400, 900)
    w.set_layout("single", "axial")
    view = w.grid.views["axial"]
    view.viewbox.setRange(QtCore.QRectF(100.0, 150.0, 200.0, 200.0), padding=0)  # ~3.5 px per voxel
    QtCore.QCoreApplication.processEvents()
    return w


def _pos(view, ijk) -> QtCore.QPoint:
    col, row, _ = view.geometry_.pixel_from_index(ijk)
    x, y = view._mm_from_pixel(col, row)
    p = view.graphics.mapFromScene(view.viewbox.mapViewToScene(QtCore.QPointF(x, y)))
    return QtCore.QPoint(round(p.x()), round(p.y()))


def _drag(qtbot, view, points):
    """Press, move with the button held (QTest.mouseMove carries no buttons), release."""
    from medviewer.ui.qt import QtGui, QtWidgets

    vp = view.graphics.viewport()
    qtbot.mousePress(vp, QtCore.Qt.LeftButton, pos=_pos(view, points[0]))
    for p in points[1:]:
        local = QtCore.QPointF(_pos(view, p))
        move = QtGui.QMouseEvent(QtCore.QEvent.MouseMove, local, vp.mapToGlobal(local), QtCore.Qt.NoButton,
                                 QtCore.Qt.LeftButton, QtCore.Qt.NoModifier)
        QtWidgets.QApplication.sendEvent(vp, move)
        qtbot.wait(12)  # pyqtgraph drops mouse moves closer than its rate limit (100 per second)
    qtbot.mouseRelease(vp, QtCore.Qt.LeftButton, pos=_pos(view, points[-1]))


def _click(qtbot, view, ijk, double=False):
    vp = view.graphics.viewport()
    if double:
        qtbot.mouseDClick(vp, QtCore.Qt.LeftButton, pos=_pos(view, ijk))
    else:
        qtbot.mouseClick(vp, QtCore.Qt.LeftButton, pos=_pos(view, ijk))


def test_brush_stroke_paints_a_band_and_is_one_undo_step(win, qtbot):
    view, ctl = win.grid.views["axial"], win.annotation.controller
    z = int(win.session.cursor[2])
    ctl.set_tool("brush")
    ctl.radius_mm = 3.0
    _drag(qtbot, view, [(150, 250, z), (170, 250, z), (190, 250, z), (210, 250, z)])
    labels = win.session.active_labels
    painted = labels.data[z] == win.session.active_value
    assert painted[250, 150:211].all()  # the whole path, no gaps between mouse events
    assert not painted[250 + 5, 180] and not painted[250 - 5, 180]  # radius 3 mm ~ 3 voxels
    assert labels.data[z + 1].max() == 0  # 2D brush: this slice only
    assert len(labels.undo_stack) == 1
    win.annotation.undo()
    assert labels.data.max() == 0
    win.annotation.redo()
    assert labels.data[z][250, 150:211].all()


def test_eraser_locked_labels_and_number_keys(win, qtbot):
    view, ctl = win.grid.views["axial"], win.annotation.controller
    z = int(win.session.cursor[2])
    ctl.set_tool("brush")
    ctl.radius_mm = 4.0
    _click(qtbot, view, (200, 250, z))
    win.session.set_active(value=2)
    win.session.active_labels.table.get(1).locked = True
    _click(qtbot, view, (203, 250, z))  # overlaps label 1, which is locked
    data = win.session.active_labels.data[z]
    assert data[250, 200] == 1 and data[250, 207] == 2
    win.session.active_labels.table.get(1).locked = False
    _click(qtbot, view, (197, 250, z))  # unlocked, label 1 is still not painted over by default
    assert data[250, 200] == 1 and data[250, 193] == 2
    ctl.set_tool("eraser")
    _click(qtbot, view, (203, 250, z))  # the eraser clears the active label (2) only
    assert data[250, 200] == 1 and data[250, 207] == 0
    win.annotation.panel.overwrite.setChecked(True)  # "Paint over other labels"
    _click(qtbot, view, (200, 250, z))
    assert data[250, 200] == 0
    ctl.set_tool("brush")
    win.session.set_active(value=1)
    _click(qtbot, view, (193, 250, z))
    assert data[250, 193] == 1  # painted over label 2
    win.activateWindow()
    qtbot.waitUntil(win.isActiveWindow, timeout=30_000)
    qtbot.keyClick(win.grid.views["axial"], QtCore.Qt.Key_3)
    assert win.session.active_value == 3


def test_polygon_rectangle_ellipse_and_fill(win, qtbot):
    view, ctl = win.grid.views["axial"], win.annotation.controller
    z = int(win.session.cursor[2])
    ctl.set_tool("rectangle")
    _drag(qtbot, view, [(150, 200, z), (170, 215, z), (180, 220, z)])
    data = lambda: win.session.active_labels.data[z]  # noqa: E731
    assert data()[210, 165] == 1 and data()[225, 165] == 0
    win.session.set_active(value=2)
    ctl.set_tool("polygon")
    for p in [(200, 200, z), (240, 200, z), (240, 240, z), (200, 240, z)]:
        _click(qtbot, view, p)
    qtbot.keyClick(view, QtCore.Qt.Key_Return)  # or a double-click, as in ITK-SNAP
    assert data()[220, 220] == 2 and data()[250, 220] == 0
    win.session.set_active(value=3)
    ctl.set_tool("ellipse")
    _drag(qtbot, view, [(250, 260, z), (290, 300, z)])
    assert data()[280, 270] == 3 and data()[261, 251] == 0  # centre in, box corner out
    # flood fill inside a ring drawn with the brush fills its hole
    win.session.set_active(value=4)
    ctl.set_tool("brush")
    ctl.radius_mm = 1.0
    ring = [(150 + 12 * np.cos(a), 320 + 12 * np.sin(a), z) for a in np.linspace(0, 2 * np.pi, 60)]
    _drag(qtbot, view, ring)
    assert data()[320, 150] == 0
    ctl.set_tool("fill")
    _click(qtbot, view, (150, 320, z))
    assert data()[320, 150] == 4 and data()[320, 140] == 4
    assert data()[320, 170] != 4  # outside the ring stays as it was


def test_threshold_paint_and_region_growing(win, qtbot):
    view, ctl = win.grid.views["axial"], win.annotation.controller
    view.fit()  # the whole slice in view: the seeds below are far apart
    z = int(win.session.cursor[2])
    hu = win.session.volume.data[z]
    ctl.set_tool("threshold")
    ctl.low, ctl.high, ctl.radius_mm = -2000.0, -500.0, 15.0  # air and lung only
    _click(qtbot, view, (256, 100, z))  # near the body edge: air and tissue under the brush
    painted = win.session.active_labels.data[z] == 1
    assert painted.any() and np.all(hu[painted] <= -500)
    win.session.set_active(value=2)
    ctl.set_tool("grow")
    grow = ctl.grow
    grow.mode, grow.in_3d, grow.max_volume_ml = "threshold", True, None
    ctl.low, ctl.high = -2000.0, -600.0
    _click(qtbot, view, (5, 5, z))  # air outside the body
    qtbot.waitUntil(lambda: grow.pending, timeout=60_000)  # a preview first, nothing painted yet
    assert not (win.session.active_labels.data == 2).any()
    qtbot.keyClick(view, QtCore.Qt.Key_Return)  # accept
    grown = win.session.active_labels.data == 2
    assert grown.sum() > 100000 and np.all(win.session.volume.data[grown] <= -600)


def test_statistics_follow_the_labels(win, qtbot):
    view, ctl = win.grid.views["axial"], win.annotation.controller
    z = int(win.session.cursor[2])
    ctl.set_tool("rectangle")
    _drag(qtbot, view, [(200, 200, z), (219, 209, z)])
    stats = win.annotation.statistics()
    mask = win.session.active_labels.data == 1
    assert stats[0]["voxels"] == int(mask.sum())
    assert stats[0]["mean"] == pytest.approx(float(win.session.volume.data[mask].mean()))
    assert stats[0]["volume_mm3"] == pytest.approx(mask.sum() * 0.9765625 ** 2 * 2.0)


def test_save_nifti_and_reopen_in_a_fresh_window(win, qtbot, tmp_path):
    import SimpleITK as sitk

    view, ctl = win.grid.views["axial"], win.annotation.controller
    z = int(win.session.cursor[2])
    ctl.set_tool("brush")
    _click(qtbot, view, (220, 240, z))
    out = tmp_path / "labels.nii.gz"
    win.annotation.save_labels(str(out))
    assert not win.annotation.unsaved()
    back = sitk.ReadImage(str(out))
    assert np.array_equal(sitk.GetArrayFromImage(back), win.session.active_labels.data)
    fresh = MainWindow()
    qtbot.addWidget(fresh)
    fresh.open_paths([str(CT)], wait=True)
    fresh.annotation.load_labels(str(out))
    assert np.array_equal(fresh.session.active_labels.data, win.session.active_labels.data)


def test_save_into_a_read_only_folder_keeps_the_labels(win, qtbot, tmp_path):
    view, ctl = win.grid.views["axial"], win.annotation.controller
    z = int(win.session.cursor[2])
    ctl.set_tool("brush")
    _click(qtbot, view, (220, 240, z))
    before = win.session.active_labels.data.copy()
    locked = tmp_path / "ro"
    locked.mkdir()
    os.chmod(locked, 0o500)
    immutable = subprocess.run(["chattr", "+i", str(locked)], capture_output=True).returncode == 0
    try:
        if not immutable and os.access(locked, os.W_OK):
            pytest.skip("cannot make a folder read-only for this user (root without chattr)")
        from medviewer.core.errors import MedViewerError

        with pytest.raises(MedViewerError):
            win.annotation.save_labels(str(locked / "labels.nii.gz"))
    finally:
        if immutable:
            subprocess.run(["chattr", "-i", str(locked)], capture_output=True)
        os.chmod(locked, 0o700)
    assert win.annotation.unsaved() and np.array_equal(win.session.active_labels.data, before)


RECOVERY_SCRIPT = r"""
import os, sys, time
from medviewer.ui.qt import application, QtCore
from medviewer.ui.main_window import MainWindow
import numpy as np
app = application()
w = MainWindow(); w.show()
w.open_paths([sys.argv[1]], wait=True)
labels = w.session.add_label_map()
z = int(w.session.cursor[2])
mask = np.zeros((1, 40, 40), bool); mask[0, 5:35, 5:35] = True
labels.paint((slice(z, z + 1), slice(200, 240), slice(200, 240)), mask, 1, "square")
deadline = time.time() + 20
while time.time() < deadline and not w.annotation.recovery_available():
    app.processEvents(); time.sleep(0.05)
print("autosaved", flush=True)
while True:
    app.processEvents(); time.sleep(0.05)
"""


def test_labels_survive_kill_9(tmp_path, qtbot):
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    proc = subprocess.Popen([sys.executable, "-c", RECOVERY_SCRIPT, str(CT)], stdout=subprocess.PIPE, text=True, env=env)
    try:
        line = ""
        deadline = time.time() + 60
        while time.time() < deadline and "autosaved" not in line:
            line = proc.stdout.readline()
        assert "autosaved" in line
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    w = MainWindow()
    qtbot.addWidget(w)
    w.open_paths([str(CT)], wait=True)
    assert w.annotation.recovery_available()
    assert w.annotation.recover() == 1
    labels = w.session.active_labels
    assert int((labels.data == 1).sum()) == 30 * 30


def test_opening_another_image_drops_the_previous_label_layers(win, qtbot):
    view, ctl = win.grid.views["axial"], win.annotation.controller
    ctl.set_tool("brush")
    _click(qtbot, view, (220, 240, int(win.session.cursor[2])))
    win.open_paths([str(DEMO / "xray" / "chest_xray_pneumonia.jpeg")], wait=True)
    assert win.session.label_maps == [] and win.session.volume.shape == (1, 224, 224)
    assert all(v._layer_items == [] for v in win.grid.views.values())


def test_seg_of_the_demo_ct_reopens_in_a_fresh_window(win, qtbot, tmp_path):
    view, ctl = win.grid.views["axial"], win.annotation.controller
    z = int(win.session.cursor[2])
    ctl.set_tool("rectangle")
    _drag(qtbot, view, [(200, 200, z), (230, 230, z)])
    out = tmp_path / "labels.dcm"
    win.annotation.save_labels(str(out))
    fresh = MainWindow()
    qtbot.addWidget(fresh)
    fresh.open_paths([str(CT)], wait=True)
    fresh.annotation.load_labels(str(out))
    assert np.array_equal(fresh.session.active_labels.data > 0, win.session.active_labels.data > 0)


def test_threshold_paint_previews_the_paintable_voxels(win, qtbot):
    from tests.gui.test_main_window import grab, screen_xy

    view, ctl = win.grid.views["axial"], win.annotation.controller
    view.fit()
    z = int(win.session.cursor[2])
    hu = win.session.volume.data[z]
    win.annotation.panel.low.setValue(300)
    win.annotation.panel.high.setValue(3000)  # bone only
    ctl.set_tool("threshold")
    pixels = grab(view)
    ys, xs = np.nonzero(hu > 700)
    bone = pixels[tuple(int(v) for v in screen_xy(view, (xs[len(xs) // 2], ys[len(ys) // 2], z))[::-1])]
    assert int(bone[0]) - int(bone[2]) > 40  # yellow tint over bone
    ys, xs = np.nonzero((hu > -50) & (hu < 50))
    soft = pixels[tuple(int(v) for v in screen_xy(view, (xs[len(xs) // 2], ys[len(ys) // 2], z))[::-1])]
    assert abs(int(soft[0]) - int(soft[2])) < 10  # soft tissue stays grey
    ctl.set_tool(None)
    assert view._threshold_preview is None


def test_fill_between_slices_and_keep_largest_from_the_panel(win, qtbot):
    view, ctl = win.grid.views["axial"], win.annotation.controller
    z = int(win.session.cursor[2])
    ctl.set_tool("rectangle")
    _drag(qtbot, view, [(200, 200, z), (230, 230, z)])
    view.scroll(+4)
    _drag(qtbot, view, [(200, 200, z + 4), (230, 230, z + 4)])
    labels = win.session.active_labels
    assert labels.data[z + 2].max() == 0
    win.annotation.run_operation("interpolate")
    assert all(labels.data[k, 215, 215] == 1 for k in range(z, z + 5))
    labels.paint((slice(z, z + 1), slice(300, 303), slice(300, 303)), np.ones((1, 3, 3), bool), 1, "speck")
    win.annotation.run_operation("largest")
    assert labels.data[z, 301, 301] == 0 and labels.data[z + 2, 215, 215] == 1
    win.annotation.undo()
    assert labels.data[z, 301, 301] == 1


def test_layer_panel_lists_label_maps_and_hides_them(win, qtbot):
    from tests.gui.test_main_window import grab, screen_xy

    view, ctl = win.grid.views["axial"], win.annotation.controller
    z = int(win.session.cursor[2])
    ctl.set_tool("rectangle")
    _drag(qtbot, view, [(200, 200, z), (230, 230, z)])
    qtbot.waitUntil(lambda: win.layer_panel.list.count() == 2, timeout=30_000)
    top = win.layer_panel.list.item(0)
    assert top.text().startswith("Labels: ")
    red = lambda: grab(view)[tuple(int(v) for v in screen_xy(view, (215, 215, z))[::-1])]  # noqa: E731
    assert int(red()[0]) - int(red()[2]) > 40
    top.setCheckState(QtCore.Qt.Unchecked)
    assert abs(int(red()[0]) - int(red()[2])) < 10
