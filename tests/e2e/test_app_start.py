"""`medviewer` as a new user starts it: the window, the demo, lazy imports, screenshots.

Start-up time is measured in tests/bench/test_start_bench.py (against a bare PySide6 window and a
pyqtgraph ImageView), not asserted here: a wall-clock limit fails on a busy machine.
"""
import os
import re
import subprocess
import sys
import time

import numpy as np
import pytest

from tests.conftest import DEMO

ENV = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "MEDVIEWER_NO_DIALOGS": "1", "PYTHONUNBUFFERED": "1"}


def _env(tmp_path):
    return {**ENV, "MEDVIEWER_SETTINGS": str(tmp_path / "s.ini"), "MEDVIEWER_DATA_DIR": str(tmp_path / "d")}


def test_medviewer_with_no_argument_opens_the_demo(tmp_path):
    proc = subprocess.Popen([sys.executable, "-m", "medviewer"], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env=_env(tmp_path))
    lines, deadline = [], time.time() + 120
    try:
        while time.time() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line.strip())
            if line.startswith("opened "):
                break
    finally:
        proc.terminate()  # SIGTERM closes the window as the user would
        rest, _ = proc.communicate(timeout=60)
    text = "\n".join(lines)
    assert proc.returncode == 0 and "Traceback" not in rest, rest
    assert "NOT FOR CLINICAL USE" in text
    shown = [ln for ln in lines if ln.startswith("window shown after")]
    assert len(shown) == 1 and re.fullmatch(r"window shown after \d+\.\d\d s", shown[0]), text
    opened = [ln for ln in lines if ln.startswith("opened ")]
    assert opened, text
    # the window is up before the demo is read (reading happens off the GUI thread)
    assert lines.index(shown[0]) < lines.index(opened[0]), text
    assert opened[0].startswith("opened noUID-") and "CT 512x512x20" in opened[0], text


def test_heavy_libraries_are_not_imported_by_the_viewer(tmp_path):
    code = (
        "import sys\n"
        "from medviewer.ui.qt import application\n"
        "from medviewer.ui.main_window import MainWindow\n"
        "app = application()\n"
        "w = MainWindow(); w.show()\n"
        f"w.open_paths([{str(DEMO / 'ct_chest_20')!r}], wait=True)\n"
        "assert w.session.volume is not None\n"
        "print(sorted(m for m in ('torch', 'vtk', 'vtkmodules', 'sklearn', 'monai') if m in sys.modules))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          env=_env(tmp_path))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == "[]"


def _png_pixels(path):
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from medviewer.ui.qt import QtGui

    img = QtGui.QImage(str(path)).convertToFormat(QtGui.QImage.Format_RGB32)
    h, bpl = img.height(), img.bytesPerLine()
    arr = np.frombuffer(img.constBits(), np.uint8, count=bpl * h).reshape(h, bpl)
    # RGB32 is B, G, R, A in memory; copy, as img's buffer dies with it
    return arr[:, : img.width() * 4].reshape(h, img.width(), 4)[..., 2::-1].copy()


def _render(tmp_path, preset):
    out = tmp_path / f"{preset}.png"
    proc = subprocess.run([sys.executable, "-m", "medviewer", "screenshot", str(DEMO / "ct_chest_20"),
                           "--out", str(out), "--layout", "single", "--preset", preset, "--slice", "5",
                           "--size", "900x700"], capture_output=True, text=True, timeout=120, env=_env(tmp_path))
    assert proc.returncode == 0, proc.stderr
    pixels = _png_pixels(out)
    assert pixels.shape[:2] == (700, 900)
    assert pixels.std() > 20  # not a blank window
    return pixels


@pytest.mark.parametrize("preset", ["lung", "bone"])
def test_screenshot_command_renders_the_viewer(tmp_path, preset):
    _render(tmp_path, preset)


def test_screenshot_lung_and_bone_windows_differ_and_bad_options_fail(tmp_path):
    lung = _render(tmp_path, "lung")
    bone = _render(tmp_path, "bone")
    assert np.abs(lung.astype(int) - bone).mean() > 2
    proc = subprocess.run([sys.executable, "-m", "medviewer", "screenshot", str(DEMO / "ct_chest_20"),
                           "--out", str(tmp_path / "x.png"), "--preset", "nope"],
                          capture_output=True, text=True, timeout=120, env=_env(tmp_path))
    assert proc.returncode == 1 and "unknown window preset" in proc.stderr
