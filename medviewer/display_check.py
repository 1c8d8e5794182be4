"""Can Qt open a window here? Checked before the QApplication is made, because Qt aborts the
process (rc 134, a misleading hint) when there is no display or its xcb plugin lacks a system
library. No Qt import: the plugin is loaded with ctypes, the X socket looked up on the file system.

    display_problem(env=None) -> str | None   # one sentence, or None when Qt can start

The Debian packages the xcb platform needs are listed once, in installer/qt-system-packages.txt
(read by installer/install.sh too)."""
from __future__ import annotations

import sys
from pathlib import Path

QT_PACKAGES_FILE = Path(__file__).resolve().parents[1] / "installer" / "qt-system-packages.txt"


def _platforms(env) -> list[str]:
    """The Qt platform plugins Qt will try, in order ('' when QT_QPA_PLATFORM is unset: Qt's default)."""
    value = env.get("QT_QPA_PLATFORM", "").strip()
    return [name.split(":", 1)[0].strip() for name in value.split(";") if name.strip()] or [""]


def qt_library_packages(path: Path | None = None) -> dict[str, str]:
    """soname -> Debian package, from the installer's list (empty when it is not there, as in a wheel)."""
    owners: dict[str, str] = {}
    try:
        lines = (path or QT_PACKAGES_FILE).read_text().splitlines()
    except OSError:
        return owners
    for line in lines:
        fields = line.split("#", 1)[0].split()
        for soname in fields[1:]:
            owners[soname] = fields[0]
    return owners


def _missing_xcb_libraries(plugin: Path) -> str | None:
    """Load the xcb platform plugin as Qt would; None when it loads, else which package to install.

    The libraries it pulls in are the ones Qt loads next anyway, so this costs a few milliseconds."""
    import ctypes
    import os

    try:
        ctypes.CDLL(str(plugin), mode=os.RTLD_LAZY | os.RTLD_LOCAL)
        return None
    except OSError as exc:
        if "cannot open shared object file" not in str(exc):
            return None  # not a missing library (ctypes resolves symbols eagerly, Qt lazily): Qt decides
        first = str(exc).split(":", 1)[0].strip()
    owners = qt_library_packages()
    missing: dict[str, list[str]] = {}
    for soname, package in owners.items():
        try:
            ctypes.CDLL(soname, mode=os.RTLD_LAZY | os.RTLD_LOCAL)
        except OSError:
            missing.setdefault(package, []).append(soname)
    if not missing:
        return (f"Qt's xcb platform plugin cannot be loaded ({first}); "
                "install the package that provides it (Debian/Ubuntu: apt-file search NAME)")
    names = " ".join(missing)
    libs = ", ".join(s for sonames in missing.values() for s in sonames)
    return (f"Qt's xcb platform needs system libraries that are missing ({libs}): "
            f"run `sudo apt-get install {names}` (or bash installer/install.sh)")


def _x_server_problem(display: str) -> str | None:
    """For a local display (:N), whether an X server listens on its socket; None when it does or when
    the display is remote (host:N, as over ssh -X). Reads the file system only: a test connection
    would make an X server with no other client (Xvfb) reset before Qt connects."""
    import re

    m = re.fullmatch(r"(?:unix)?:(\d+)(?:\.\d+)?", display.strip())
    if not m:
        return None
    socket = f"/tmp/.X11-unix/X{m.group(1)}"
    if Path(socket).exists():
        return None
    try:
        with open("/proc/net/unix") as f:  # Linux also has abstract sockets: @/tmp/.X11-unix/XN
            if any(line.rstrip().endswith("@" + socket) for line in f):
                return None
    except OSError:
        return None
    return f"cannot open the X display {display!r}: no X server is listening there (no {socket})"


def display_problem(env=None) -> str | None:
    """Why Qt would abort (rc 134) when making the QApplication, as one sentence; None when it can start.

    Checked only for the platforms that need a screen (xcb, wayland, and Qt's default); offscreen,
    minimal, vnc ... are left to Qt."""
    import os

    env = os.environ if env is None else env
    if not sys.platform.startswith(("linux", "freebsd", "openbsd", "netbsd")):
        return None  # macOS and Windows have their own platform plugins and no DISPLAY
    platforms = _platforms(env)
    if any(p not in ("", "xcb") and not p.startswith("wayland") for p in platforms):
        return None  # Qt can fall back to a platform that needs no screen
    display, wayland = env.get("DISPLAY", ""), env.get("WAYLAND_DISPLAY", "")
    may_use_wayland = any(p == "" or p.startswith("wayland") for p in platforms)
    if not display:
        if wayland and may_use_wayland:
            return None  # a Wayland session: Qt's wayland plugin takes it
        if all(p.startswith("wayland") for p in platforms):
            what = "WAYLAND_DISPLAY is not set"
        elif may_use_wayland and platforms != [""]:
            what = "neither DISPLAY nor WAYLAND_DISPLAY is set"
        else:
            what = "DISPLAY is not set"
        return (f"no display found ({what}). To render without a screen use "
                "`medviewer screenshot PATH --out FILE.png` or set QT_QPA_PLATFORM=offscreen.")
    wayland_session = bool(wayland) and env.get("XDG_SESSION_TYPE", "") == "wayland"
    if platforms[0] == "xcb" or (platforms == [""] and not wayland_session):
        import importlib.util

        spec = importlib.util.find_spec("PySide6")
        for folder in (spec.submodule_search_locations or []) if spec else []:
            plugin = Path(folder) / "Qt" / "plugins" / "platforms" / "libqxcb.so"
            if plugin.is_file():
                return _missing_xcb_libraries(plugin) or _x_server_problem(display)
    return None
