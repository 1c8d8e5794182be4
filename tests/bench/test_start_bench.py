"""Start-up of `medviewer` against a bare PySide6 window and a pyqtgraph ImageView, in the same run.

Run: python -m pytest tests/bench/test_start_bench.py --bench -s
Each program is started ROUNDS times, interleaved, as a fresh process (the installed console
script for medviewer) and reports "launch to window shown" the way medviewer does (wall time since
the process was created, /proc). Offscreen always; on Qt's xcb platform too when xvfb-run is there,
with one client kept connected, as a desktop's window manager is (an X server with no client left
resets itself, which would bill the next start). Also timed: medviewer's display check
(display_check.display_problem) and its net cost, a bare PySide6 window started with and without it.
Criterion (issue 1, formerly asserted in tests/e2e/test_app_start.py): median launch to window
shown <= 2.0 s with the offscreen platform.
"""
from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import REPO

MEDVIEWER = Path(sys.executable).parent / "medviewer"
ROUNDS, MAX_WINDOW_S = 5, 2.0

_SHOWN = "from medviewer.app import seconds_since_process_start as s; print(f'window shown after {s():.3f} s', flush=True)"
BARE_PYSIDE6 = (
    "import sys\n"
    "from PySide6 import QtWidgets\n"
    "app = QtWidgets.QApplication(sys.argv[:1])\n"
    "w = QtWidgets.QMainWindow(); w.resize(1400, 850); w.show(); app.processEvents()\n" + _SHOWN
)
CHECKED_PYSIDE6 = "from medviewer.display_check import display_problem\nassert display_problem() is None\n" + BARE_PYSIDE6
IMAGE_VIEW = (
    "import os, sys\n"
    "os.environ.setdefault('PYQTGRAPH_QT_LIB', 'PySide6')\n"
    "from PySide6 import QtWidgets\n"
    "import numpy as np, pyqtgraph as pg\n"
    "app = QtWidgets.QApplication(sys.argv[:1])\n"
    "v = pg.ImageView(); v.resize(1400, 850)\n"
    "v.setImage(np.random.default_rng(0).integers(-1000, 2000, (512, 512)).astype(np.int16))\n"
    "v.show(); app.processEvents()\n" + _SHOWN
)
CHECK_ONLY = ("import time\nfrom medviewer.display_check import display_problem\n"
              "t = time.perf_counter(); p = display_problem(); dt = time.perf_counter() - t\n"
              "assert p is None, p\nprint(f'check {dt * 1e3:.2f} ms')")


def _env(tmp_path, extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    env.update(MEDVIEWER_SETTINGS=str(tmp_path / "s.ini"), MEDVIEWER_DATA_DIR=str(tmp_path / "d"),
               MEDVIEWER_NO_DIALOGS="1", PYTHONUNBUFFERED="1")
    env.update(extra)
    return env


def _window_shown(cmd: list[str], env: dict[str, str], until: str = "window shown after") -> float:
    """Seconds from launch to the window shown, as the program prints it; waits for `until`."""
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, cwd=REPO)
    shown, lines = None, []
    try:
        for line in proc.stdout:
            lines.append(line.rstrip())
            if line.startswith("window shown after"):
                shown = float(line.split()[3])
            if line.startswith(until):
                break
    finally:
        proc.terminate()
        proc.wait(timeout=60)
    assert shown is not None, "\n".join(lines)
    return shown


def _measure(tmp_path, extra: dict[str, str]) -> dict[str, list[float]]:
    env = _env(tmp_path, extra)
    py = [sys.executable, "-c"]
    programs = {
        "medviewer (demo CT)": ([str(MEDVIEWER)], "opened "),
        "bare PySide6 QMainWindow": (py + [BARE_PYSIDE6], "window shown after"),
        "bare PySide6 + display check": (py + [CHECKED_PYSIDE6], "window shown after"),
        "pyqtgraph ImageView 512x512": (py + [IMAGE_VIEW], "window shown after"),
    }
    times: dict[str, list[float]] = {name: [] for name in programs}
    for _ in range(ROUNDS):
        for name, (cmd, until) in programs.items():
            times[name].append(_window_shown(cmd, env, until))
    checks = []
    for _ in range(ROUNDS):
        out = subprocess.run(py + [CHECK_ONLY], capture_output=True, text=True, env=env, cwd=REPO, timeout=120)
        assert out.returncode == 0, out.stderr
        checks.append(float(out.stdout.split()[1]) / 1e3)
    times["display check alone (in process)"] = checks
    return times


def _table(title: str, times: dict[str, list[float]]) -> str:
    base = statistics.median(times["bare PySide6 QMainWindow"])
    rows = [f"\n{title}: launch to window shown, median of {ROUNDS} (min-max), ratio to bare PySide6"]
    for name, values in times.items():
        med = statistics.median(values)
        ratio = f"{med / base:5.2f}" if "alone" not in name else "     "
        rows.append(f"  {name:<34} {med * 1e3:8.1f} ms ({min(values) * 1e3:.0f}-{max(values) * 1e3:.0f})  {ratio}")
    net = statistics.median(times["bare PySide6 + display check"]) - base
    rows.append(f"  net cost of the display check: {net * 1e3:+.1f} ms (difference of the medians)")
    return "\n".join(rows)


def test_start_up_offscreen(tmp_path):
    times = _measure(tmp_path, {"QT_QPA_PLATFORM": "offscreen"})
    print(_table("offscreen", times))
    assert statistics.median(times["medviewer (demo CT)"]) <= MAX_WINDOW_S


def test_start_up_on_an_x_display(tmp_path):
    import shutil

    if shutil.which("xvfb-run") is None:
        pytest.skip("xvfb-run is not installed")
    from tests.e2e.test_desktop_start import XvfbSession

    session = XvfbSession(shutil.which("xvfb-run"))
    env = {**os.environ, **session.env()}
    keeper = subprocess.Popen(  # a client that stays, as a window manager would
        [sys.executable, "-c", "import ctypes, sys; x = ctypes.CDLL('libxcb.so.1'); "
         "x.xcb_connect.restype = ctypes.c_void_p; c = x.xcb_connect(None, None); "
         "assert not x.xcb_connection_has_error(ctypes.c_void_p(c)); print('up', flush=True); sys.stdin.read()"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert keeper.stdout.readline().strip() == "up"
        time.sleep(0.2)
        times = _measure(tmp_path, {"QT_QPA_PLATFORM": "xcb", **session.env()})
    finally:
        keeper.stdin.close()
        keeper.wait(timeout=30)
        session.close()
    print(_table("xcb (Xvfb)", times))
