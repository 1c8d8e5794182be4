"""`medviewer` on a real X display (Xvfb, Qt's xcb platform, the installed console script), and with none.

The xcb platform needs system libraries that offscreen does not (installer/qt-system-packages.txt);
these tests are what shows a missing one, as a user would meet it.
"""
from __future__ import annotations

import os
import queue
import re
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

MEDVIEWER = Path(sys.executable).parent / "medviewer"  # the console script the installer made
SCREEN = "1600x1000x24"  # larger than the main window (1400x850), so all of it is on the screen
NO_DISPLAY = ("medviewer: error: no display found (DISPLAY is not set). To render without a screen use "
              "`medviewer screenshot PATH --out FILE.png` or set QT_QPA_PLATFORM=offscreen.")


def _env(tmp_path, **extra) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("DISPLAY", "WAYLAND_DISPLAY", "XAUTHORITY", "QT_QPA_PLATFORM", "XDG_SESSION_TYPE")}
    env.update(MEDVIEWER_SETTINGS=str(tmp_path / "settings.ini"), MEDVIEWER_DATA_DIR=str(tmp_path / "data"),
               MEDVIEWER_NO_DIALOGS="1", PYTHONUNBUFFERED="1")
    env.update(extra)
    return env


class XvfbSession:
    """An X server from `xvfb-run -a`, kept up until close() (its command waits on stdin)."""

    def __init__(self, xvfb_run: str):
        self.proc = subprocess.Popen(
            [xvfb_run, "-a", "-s", f"-screen 0 {SCREEN}", "sh", "-c", 'echo "$DISPLAY $XAUTHORITY"; exec cat >/dev/null'],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
        first = self.proc.stdout.readline().split()
        if len(first) != 2:
            self.close()
            raise RuntimeError(f"xvfb-run started no X server: {self.proc.stderr.read()}")
        self.display, self.xauthority = first

    def env(self) -> dict[str, str]:
        return {"DISPLAY": self.display, "XAUTHORITY": self.xauthority}

    def close(self) -> None:
        try:
            self.proc.stdin.close()  # the command ends, xvfb-run stops Xvfb and removes its auth file
            self.proc.wait(timeout=30)
        except (subprocess.TimeoutExpired, OSError):
            os.killpg(self.proc.pid, 9)
            self.proc.wait(timeout=30)


@pytest.fixture
def xserver():
    xvfb_run = shutil.which("xvfb-run")
    if xvfb_run is None:
        pytest.skip("xvfb-run is not installed (bash installer/install.sh --test installs xvfb and xauth)")
    assert shutil.which("xwininfo"), "xwininfo is missing: install x11-utils (bash installer/install.sh --test)"
    session = XvfbSession(xvfb_run)
    yield session
    session.close()


def _lines(stream, out: queue.Queue) -> None:
    for line in stream:
        out.put(line.rstrip("\n"))
    out.put(None)


def _wait_for(lines: queue.Queue, seen: list[str], prefix: str, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=0.5)
        except queue.Empty:
            continue
        if line is None:
            return False
        seen.append(line)
        if line.startswith(prefix):
            return True
    return False


def _main_window(env) -> dict[str, object]:
    """The MedViewer main window on that display: id, title, map state and geometry (xwininfo)."""
    tree = subprocess.run(["xwininfo", "-root", "-tree"], capture_output=True, text=True, env=env, timeout=30).stdout
    found = re.findall(r'^\s*(0x[0-9a-f]+) "(MedViewer — [^"]*)"', tree, re.M)
    assert len(found) == 1, tree
    wid, title = found[0]
    info = subprocess.run(["xwininfo", "-id", wid], capture_output=True, text=True, env=env, timeout=30).stdout
    field = {k.strip(): v.strip() for k, _, v in (ln.partition(":") for ln in info.splitlines()) if v}
    return {"id": wid, "title": title, "map_state": field.get("Map State"),
            "box": (int(field["Absolute upper-left X"]), int(field["Absolute upper-left Y"]),
                    int(field["Width"]), int(field["Height"]))}


def _grab(display: str, box, xauthority: str, out: Path) -> np.ndarray:
    """The screen's pixels in box (x, y, w, h) as RGB, by Pillow's X11 grab in a process of its own."""
    x, y, w, h = box
    code = ("import sys; from PIL import ImageGrab; "
            f"ImageGrab.grab(bbox=({x}, {y}, {x + w}, {y + h}), xdisplay={display!r}).save(sys.argv[1])")
    subprocess.run([sys.executable, "-c", code, str(out)], check=True, timeout=60,
                   env={**os.environ, "DISPLAY": display, "XAUTHORITY": xauthority})
    from PIL import Image

    return np.asarray(Image.open(out).convert("RGB")).astype(int)


def _ct_drawn(pixels: np.ndarray) -> tuple[int, int]:
    """(mid-grey pixels, distinct mid-grey levels) in the middle of the window, where the views are.

    The demo CT at W 400 L 50 fills the axial view with thousands of pixels over ~180 grey levels;
    the same window with empty views has a few hundred (text, scale bars) over ~15."""
    h, w = pixels.shape[:2]
    centre = pixels[int(h * 0.3):int(h * 0.7), int(w * 0.15):int(w * 0.75)]
    r, g, b = centre[..., 0], centre[..., 1], centre[..., 2]
    grey = (np.abs(r - g) < 10) & (np.abs(g - b) < 10) & (g >= 40) & (g <= 220)
    return int(grey.sum()), len(np.unique(g[grey]))


def test_medviewer_opens_the_demo_in_a_window_on_an_x_display(xserver, tmp_path):
    env = _env(tmp_path, QT_QPA_PLATFORM="xcb", **xserver.env())
    proc = subprocess.Popen([str(MEDVIEWER)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=_lines, args=(proc.stdout, lines), daemon=True).start()
    seen: list[str] = []
    try:
        opened = _wait_for(lines, seen, "opened ", timeout=180)
        text = "\n".join(seen)
        assert opened and proc.poll() is None, f"rc {proc.poll()}:\n{text}"
        assert any(ln.startswith("window shown after") for ln in seen), text
        assert any(ln.startswith("opened noUID-") and "CT 512x512x20" in ln for ln in seen), text
        window = _main_window(env)
        assert window["map_state"] == "IsViewable", window
        assert "NOT FOR CLINICAL USE" in window["title"]
        assert window["box"][2] >= 800 and window["box"][3] >= 500, window
        # the volume is shown; its first paint may still be queued behind the signal: wait for it
        capture = tmp_path / "medviewer_xcb.png"
        deadline = time.monotonic() + 30
        while True:
            pixels = _grab(xserver.display, window["box"], xserver.xauthority, capture)
            count, levels = _ct_drawn(pixels)
            if (count > 10_000 and levels > 100) or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert pixels.shape[:2] == (window["box"][3], window["box"][2])
        assert pixels.std() > 20, f"a blank window: {capture}"
        assert count > 10_000 and levels > 100, f"no CT drawn in the views ({count} px, {levels} levels): {capture}"
        assert proc.poll() is None, "\n".join(seen)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    while not lines.empty():
        line = lines.get()
        if line is not None:
            seen.append(line)
    text = "\n".join(seen)
    for bad in ("Traceback", "Could not load the Qt platform plugin", "Aborted", "qt.qpa.xcb"):
        assert bad not in text, text


@pytest.mark.parametrize("platform", [None, "xcb"])
def test_with_no_display_medviewer_says_so_in_one_line(tmp_path, platform):
    env = _env(tmp_path, **({"QT_QPA_PLATFORM": platform} if platform else {}))
    proc = subprocess.run([str(MEDVIEWER)], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 1, (proc.returncode, proc.stdout, proc.stderr)
    assert proc.stderr.splitlines() == [NO_DISPLAY], proc.stderr
    assert proc.stdout == ""


def test_a_display_with_no_x_server_is_reported_not_aborted(tmp_path):
    sockets = Path("/proc/net/unix").read_text() if Path("/proc/net/unix").exists() else ""
    free = next(n for n in range(4242, 4300)
                if not Path(f"/tmp/.X11-unix/X{n}").exists() and f"@/tmp/.X11-unix/X{n}" not in sockets)
    env = _env(tmp_path, DISPLAY=f":{free}", QT_QPA_PLATFORM="xcb")
    proc = subprocess.run([str(MEDVIEWER)], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 1, (proc.returncode, proc.stdout, proc.stderr)
    assert proc.stderr.splitlines() == [
        f"medviewer: error: cannot open the X display ':{free}': "
        f"no X server is listening there (no /tmp/.X11-unix/X{free})"], proc.stderr
    assert proc.stdout == ""


@pytest.mark.parametrize("env, problem", [
    ({}, "no display found (DISPLAY is not set)"),
    ({"QT_QPA_PLATFORM": "xcb"}, "no display found (DISPLAY is not set)"),
    ({"QT_QPA_PLATFORM": "wayland"}, "no display found (WAYLAND_DISPLAY is not set)"),
    ({"QT_QPA_PLATFORM": "wayland;xcb"}, "no display found (neither DISPLAY nor WAYLAND_DISPLAY is set)"),
    ({"QT_QPA_PLATFORM": "xcb", "WAYLAND_DISPLAY": "wayland-0"}, "no display found (DISPLAY is not set)"),
    ({"QT_QPA_PLATFORM": "offscreen"}, None),
    ({"QT_QPA_PLATFORM": "xcb;offscreen"}, None),
    ({"QT_QPA_PLATFORM": "minimal"}, None),
    ({"WAYLAND_DISPLAY": "wayland-0", "XDG_SESSION_TYPE": "wayland"}, None),
    ({"WAYLAND_DISPLAY": "wayland-0"}, None),
])
def test_display_problem_names_what_is_missing(env, problem):
    from medviewer.display_check import display_problem

    found = display_problem(env)
    if problem is None:
        assert found is None
    else:
        assert found.startswith(problem + ". To render without a screen use `medviewer screenshot PATH")
        assert "QT_QPA_PLATFORM=offscreen" in found and "\n" not in found


def test_on_macos_and_windows_there_is_nothing_to_check(monkeypatch):
    from medviewer.display_check import display_problem

    monkeypatch.setattr(sys, "platform", "darwin")
    assert display_problem({}) is None


def _library_needing(tmp_path, soname: str) -> Path:
    """A copy of a small system library whose dependency libxcb.so.1 is renamed to soname (same length)."""
    import ctypes.util

    assert len(soname) == len("libxcb.so.1")
    found = [Path(d) / "libxcb-shape.so.0" for d in ("/usr/lib/x86_64-linux-gnu", "/lib/x86_64-linux-gnu",
                                                     "/usr/lib/aarch64-linux-gnu", "/usr/lib64", "/usr/lib")]
    source = next((f for f in found if f.exists()), None)
    if source is None or ctypes.util.find_library("xcb") is None:
        pytest.skip("libxcb-shape.so.0 is not installed")
    data = source.read_bytes()
    assert b"libxcb.so.1\0" in data
    copy = tmp_path / "libfake-plugin.so"
    copy.write_bytes(data.replace(b"libxcb.so.1\0", soname.encode() + b"\0"))
    return copy


def test_a_missing_library_is_named_with_its_package(tmp_path, monkeypatch):
    import medviewer.display_check as app

    plugin = _library_needing(tmp_path, "libxcQ.so.1")
    listed = tmp_path / "packages.txt"
    listed.write_text("# test list\nlibxcb1  libxcb.so.1\nlibxcq1  libxcQ.so.1  # not a real package\n")
    monkeypatch.setattr(app, "QT_PACKAGES_FILE", listed)
    assert app._missing_xcb_libraries(plugin) == (
        "Qt's xcb platform needs system libraries that are missing (libxcQ.so.1): "
        "run `sudo apt-get install libxcq1` (or bash installer/install.sh)")
    monkeypatch.setattr(app, "QT_PACKAGES_FILE", tmp_path / "absent.txt")  # e.g. installed from a wheel
    assert app._missing_xcb_libraries(plugin) == (
        "Qt's xcb platform plugin cannot be loaded (libxcQ.so.1); "
        "install the package that provides it (Debian/Ubuntu: apt-file search NAME)")
    assert app._missing_xcb_libraries(_library_needing(tmp_path, "libxcb.so.1")) is None
