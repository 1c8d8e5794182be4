"""Where MedViewer keeps per-user data (sessions, recovery files, user models)."""
from __future__ import annotations

import os
from pathlib import Path


def data_dir() -> Path:
    """MEDVIEWER_DATA_DIR, or the platform's user data folder (XDG on Linux)."""
    env = os.environ.get("MEDVIEWER_DATA_DIR")
    if env:
        return Path(env)
    if os.name == "nt":
        return Path(os.environ.get("APPDATA", Path.home())) / "MedViewer"
    if os.uname().sysname == "Darwin":
        return Path.home() / "Library" / "Application Support" / "MedViewer"
    return Path(os.environ.get("XDG_DATA_HOME", Path.home() / ".local" / "share")) / "medviewer"
