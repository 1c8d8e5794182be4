"""Rows of a QListWidget updated in place: panels reuse their items rather than clear() and
rebuild them, so no item is deleted under an event that is still being delivered."""
from __future__ import annotations

from medviewer.ui.qt import QtWidgets


def list_rows(widget: QtWidgets.QListWidget, count: int) -> list[QtWidgets.QListWidgetItem]:
    """The widget's first `count` items: surplus rows are taken off the end, missing ones added."""
    while widget.count() > count:
        widget.takeItem(widget.count() - 1)
    while widget.count() < count:
        widget.addItem(QtWidgets.QListWidgetItem())
    return [widget.item(row) for row in range(count)]
