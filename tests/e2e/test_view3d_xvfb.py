"""The 3D view on a real X display (Xvfb, Qt's xcb platform): VTK's QVTKRenderWindowInteractor
path, which the offscreen test run cannot reach. A child process renders the demo CT, saves the
frame, rotates it with a mouse drag and picks with a click; the test checks the pixels and the
cursor."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from tests.conftest import DEMO, REPO
from tests.e2e.test_desktop_start import _env, xserver  # noqa: F401  (the X server fixture)

CHILD = r"""
import json, sys
import numpy as np
from medviewer.ui.qt import application, Qt, QtCore
from PySide6.QtTest import QTest
app = application()
from medviewer.core.session import Session
from medviewer.io import discover
from medviewer.ui.view3d.view_widget import View3D
from PIL import Image

out = {"platform": app.platformName()}
session = Session()
session.set_volume(discover(sys.argv[1]).sources[0].load())
view = View3D(session)
view.resize(320, 280)
view.show()
QTest.qWaitForWindowExposed(view)
out["problem"] = view.problem
out["canvas"] = type(view._canvas).__name__
view.scene.set_camera("S")
first = view.capture()
Image.fromarray(first).save(sys.argv[2])
out["first_frame_ms"] = view.scene.first_frame_ms
canvas = view._canvas
centre = QtCore.QPoint(canvas.width() // 2, canvas.height() // 2)
QTest.mousePress(canvas, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, centre)
for dx in range(4, 80, 4):
    QTest.mouseMove(canvas, centre + QtCore.QPoint(dx, dx // 2))
    app.processEvents()
QTest.mouseRelease(canvas, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, centre + QtCore.QPoint(80, 40))
rotated = view.capture()
out["rotation_change"] = float(np.abs(rotated.astype(int) - first).mean())
view.scene.set_camera("S")
view.scene.render()
session.set_cursor((0, 0, 0))
ratio = canvas.devicePixelRatioF()
picked = view.scene.pick(*(round(v * ratio) for v in (canvas.width() // 2, canvas.height() - 1 - canvas.height() // 2)))
x, y = picked[:2] if picked else (None, None)
QTest.mouseClick(canvas, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, centre)
out["cursor_after_click"] = [int(v) for v in session.cursor]
out["pick_at_centre"] = [x, y]
view.close()
print("RESULT " + json.dumps(out))
"""


def test_3d_view_renders_and_picks_on_an_x_display(xserver, tmp_path):  # noqa: F811
    shot = tmp_path / "view3d_xvfb.png"
    done = subprocess.run([sys.executable, "-c", CHILD, str(DEMO / "ct_chest_20"), str(shot)], cwd=REPO,
                          env=_env(tmp_path, QT_QPA_PLATFORM="xcb", **xserver.env()),
                          capture_output=True, text=True, timeout=240)
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    assert done.returncode == 0 and lines, done.stderr[-3000:]
    result = json.loads(lines[-1][len("RESULT "):])
    if result["problem"] and result["problem"].startswith("3D view unavailable"):
        pytest.skip(result["problem"])
    assert result["platform"] == "xcb"
    assert result["canvas"] == "QVTKRenderWindowInteractor"
    assert result["problem"] is None
    from PIL import Image
    from tests.gui.test_view3d_scene import foreground
    rgb = np.asarray(Image.open(shot).convert("RGB"))
    assert rgb.shape == (280, 320, 3)
    assert foreground(rgb).mean() > 0.05  # the chest, not a black or garbage frame
    assert len(np.unique(rgb.reshape(-1, 3), axis=0)) > 200  # shaded, not a flat fill
    assert result["rotation_change"] > 2  # the drag turned the camera
    x, y = result["pick_at_centre"]
    assert x is not None, "nothing under the centre of the chest"
    cursor = result["cursor_after_click"]
    assert abs(cursor[0] - x) <= 1 and abs(cursor[1] - y) <= 1  # the click went through VTK's interactor
