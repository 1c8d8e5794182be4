"""The file-save question the panels ask: a Qt dialog, or no answer when dialogs are off
(MEDVIEWER_NO_DIALOGS: tests and scripts pass the path themselves)."""
from __future__ import annotations

import os

from medviewer.ui.qt import QtWidgets


def save_path(parent, title: str, suggested: str, filters: str) -> str | None:
    """The path the user chose, or None (cancelled, or dialogs are off)."""
    if os.environ.get("MEDVIEWER_NO_DIALOGS"):
        return None
    path, _ = QtWidgets.QFileDialog.getSaveFileName(parent, title, suggested, filters)
    return path or None
