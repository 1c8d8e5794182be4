"""Crash-free soak: switch between the demo CT, the X-ray, the hippocampus NIfTI and a multi-series
DICOM folder 50 times (double-clicking series in the browser), run and cancel models in between,
paint and undo, close the window. And the regression test of the image-switch segfault (issue 11:
about one run in three died in a panel's QListWidget.clear(); the views were reparented to None on
every layout change), run in a subprocess so that a crash fails the test instead of pytest."""
import faulthandler
import os
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from tests.conftest import DEMO, REPO

CT = DEMO / "ct_chest_20"
XRAY = DEMO / "xray" / "chest_xray_pneumonia.jpeg"
MRI = DEMO / "mri_hippocampus" / "hippocampus_001.nii.gz"

SWITCHES = 50


@pytest.fixture
def multi_series(tmp_path):
    """A folder with three DICOM series: the demo CT and pydicom's CT_small and MR_small."""
    from pydicom.data import get_testdata_file

    folder = tmp_path / "study"
    shutil.copytree(CT, folder / "ct")
    for name in ("CT_small.dcm", "MR_small.dcm"):
        shutil.copy(get_testdata_file(name), folder / name)
    return folder


SWITCH_SCRIPT = textwrap.dedent("""
    import faulthandler, sys
    faulthandler.enable()
    from medviewer.ui.qt import application
    from medviewer.ui.main_window import MainWindow
    app = application()
    w = MainWindow(persistent=False)
    w.resize(1400, 850)
    w.show()
    paths = sys.argv[2:]
    for i in range(int(sys.argv[1])):
        w.open_paths([paths[i % len(paths)]], wait=True)
        app.processEvents()
        assert w.session.volume is not None
    w.close()
    print("switched", sys.argv[1])
""")


def test_switching_images_does_not_crash(tmp_path):
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "MEDVIEWER_NO_DIALOGS": "1",
           "MEDVIEWER_SETTINGS": str(tmp_path / "s.ini"), "MEDVIEWER_DATA_DIR": str(tmp_path / "d"),
           "PYTHONPATH": str(REPO)}
    proc = subprocess.run([sys.executable, "-c", SWITCH_SCRIPT, str(SWITCHES), str(CT), str(XRAY), str(MRI)],
                          capture_output=True, text=True, timeout=600, env=env)
    assert proc.returncode == 0, f"rc {proc.returncode}\n{proc.stderr[-3000:]}"
    assert f"switched {SWITCHES}" in proc.stdout


def _wait_shown(qtbot, win, action):
    with qtbot.waitSignal(win.volume_shown, timeout=120_000):
        action()


def _run_and_cancel(qtbot, panel, model, task=None):
    """Start a long run, cancel it once it is running; the panel reports it and nothing changes."""
    assert panel.select_model(model), model
    layers, heatmaps = list(panel.session.label_maps), list(panel.session.heatmaps)
    job = panel.run(task)
    qtbot.waitUntil(lambda: job.state != "queued", timeout=120_000)
    with qtbot.waitSignal(panel.run_finished, timeout=120_000):
        job.cancel()
    assert job.state in ("cancelled", "done")
    if job.state == "cancelled":
        assert panel.session.label_maps == layers and panel.session.heatmaps == heatmaps


def _paint_and_undo(qtbot, win):
    from tests.gui.test_annotation import _drag

    session, view = win.session, win.grid.active_view()
    g = view.geometry_
    ctl = win.annotation.controller
    ctl.set_tool("brush")
    ctl.radius_mm = 3.0
    k = int(session.cursor[g.normal_axis])
    size = session.volume.size
    centre = [s // 2 for s in size]
    centre[g.normal_axis] = k
    points = []
    for d in (-6, 0, 6):
        p = list(centre)
        p[g.h_axis] += d
        points.append(tuple(p))
    before = [m.data.copy() for m in session.label_maps]
    _drag(qtbot, view, points)
    labels = session.active_labels
    assert labels is not None and labels.data.any()
    win.annotation.undo()  # the whole stroke is one step
    for m, data in zip(session.label_maps, before):
        assert np.array_equal(m.data, data)
    if len(session.label_maps) > len(before):
        assert not session.label_maps[-1].data.any()
    ctl.set_tool(None)


def test_soak_switch_run_cancel_paint_undo_close(qtbot, multi_series):
    from medviewer.ui.main_window import MainWindow
    from medviewer.ui.qt import Qt
    from medviewer.ui.series_browser import ID_ROLE

    faulthandler.enable()
    win = MainWindow()
    qtbot.addWidget(win)
    win.resize(1400, 850)
    win.show()
    targets = [CT, XRAY, MRI, multi_series]
    opened = []
    win.volume_shown.connect(opened.append)
    for i in range(SWITCHES):
        target = targets[i % len(targets)]
        _wait_shown(qtbot, win, lambda: win.open_paths([str(target)]))  # read off the GUI thread
        if target == multi_series:  # double-click another series in the browser
            browser = win.series_browser.list
            assert browser.count() == 3
            other = next(browser.item(r) for r in range(3) if browser.item(r).data(ID_ROLE) != win.current_source.id)
            spot = browser.visualItemRect(other).center()

            def double_click():  # a press first, as a real double-click has
                qtbot.mouseClick(browser.viewport(), Qt.LeftButton, pos=spot)
                qtbot.mouseDClick(browser.viewport(), Qt.LeftButton, pos=spot)
            _wait_shown(qtbot, win, double_click)
            assert win.current_source.id == other.data(ID_ROLE)
        if i % 8 == 1:  # the X-ray: a long occlusion map, cancelled
            _run_and_cancel(qtbot, win.ai_panel, "pneumonia-cnn", "occlusion")
        if i % 8 == 2:  # the hippocampus: a segmentation that finishes, then one cancelled
            panel = win.ai_panel
            assert panel.select_model("hippocampus-unet")
            with qtbot.waitSignal(panel.run_finished, timeout=120_000) as done:
                panel.run()
            assert done.args[0].state == "done"
            _run_and_cancel(qtbot, panel, "hippocampus-unet", "occlusion")
        if i % 4 == 0 or i % 8 == 2:
            _paint_and_undo(qtbot, win)
    assert len(opened) >= SWITCHES
    win.close()
    assert not win.isVisible()
