"""One place that imports Qt: PySide6 first, then pyqtgraph bound to it (GUIDE.md section 3)."""
from __future__ import annotations

import os

os.environ.setdefault("PYQTGRAPH_QT_LIB", "PySide6")

from PySide6 import QtCore, QtGui, QtWidgets  # noqa: E402
from PySide6.QtCore import Qt, Signal  # noqa: E402

import pyqtgraph as pg  # noqa: E402

pg.setConfigOptions(imageAxisOrder="row-major", antialias=True, background="k", foreground="w")

__all__ = ["QtCore", "QtGui", "QtWidgets", "Qt", "Signal", "pg", "application"]


_QUIET = ("propagateSizeHints",)


def _message_handler(mode, context, message) -> None:
    if not any(q in message for q in _QUIET):  # the offscreen platform's harmless chatter
        import sys

        print(message, file=sys.stderr)


def application(argv: list[str] | None = None) -> QtWidgets.QApplication:
    """The QApplication (created once)."""
    app = QtWidgets.QApplication.instance()
    if app is None:
        QtCore.qInstallMessageHandler(_message_handler)
        app = QtWidgets.QApplication(argv or ["medviewer"])
        app.setOrganizationName("MedViewer")
        app.setApplicationName("MedViewer")
    return app  # type: ignore[return-value]
