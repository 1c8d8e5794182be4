"""The view layouts: one view, 1x3 and 2x2 multi-planar (axial, coronal, sagittal + cursor info),
2x2 with the 3D view in the fourth pane, and the 3D view alone.

The 3D view (VTK) is made on first use, so that opening the viewer does not import VTK (0.9 s)."""
from __future__ import annotations

import html

from medviewer.core.session import Session
from medviewer.core.slicing import PLANES
from medviewer.ui.qt import QtWidgets, Qt, Signal
from medviewer.ui.slice_view import SliceView

LAYOUTS = ("single", "1x3", "2x2", "2x2-3d", "3d")
LAYOUTS_3D = ("2x2-3d", "3d")


class CursorInfo(QtWidgets.QLabel):
    """The fourth cell of the 2x2 layout: where the crosshair is and what is there."""

    def __init__(self, session: Session):
        super().__init__()
        self.session = session
        self.setAlignment(Qt.AlignLeft | Qt.AlignTop)
        self.setStyleSheet("background: #111; color: #ddd; padding: 10px; font-family: monospace;")
        self.setWordWrap(True)
        session.cursor_changed.connect(lambda *_: self.refresh())
        session.window_changed.connect(lambda *_: self.refresh())

    def refresh(self) -> None:
        v = self.session.volume
        if v is None or not self.isVisible():
            self.setText("")
            return
        p = self.session.probe()
        w = self.session.window
        self.setText(
            f"<b>{html.escape(self.session.title)}</b><br>{v.describe()}<br><br>"
            f"voxel (x, y, z): {p['index']}<br>"
            f"world (mm, LPS): ({p['world'][0]:.1f}, {p['world'][1]:.1f}, {p['world'][2]:.1f})<br>"
            f"value: {p['value']} {p['unit']}<br>window W {w.width:.0f} / L {w.level:.0f}<br><br>"
            "<span style='color:#e88'>Not for clinical use</span>")


class ViewerGrid(QtWidgets.QWidget):
    active_changed = Signal(str)

    def __init__(self, session: Session, parent=None):
        super().__init__(parent)
        self.session = session
        self.views = {plane: SliceView(session, plane) for plane in PLANES}
        self.info = CursorInfo(session)
        self._view3d = None
        self.layout_name = "1x3"
        self.single_plane = "axial"
        self.active_plane = "axial"
        for view in self.views.values():
            view.activated.connect(self._set_active)
        self._grid = QtWidgets.QGridLayout(self)
        self._grid.setContentsMargins(0, 0, 0, 0)
        self._grid.setSpacing(2)
        self.set_layout("1x3")

    def _set_active(self, plane: str) -> None:
        if plane != self.active_plane:
            self.active_plane = plane
            self.active_changed.emit(plane)

    def set_layout(self, name: str, plane: str | None = None) -> None:
        if name not in LAYOUTS:
            raise ValueError(f"unknown layout {name!r}; use one of {LAYOUTS}")
        volume = self.session.volume
        if volume is not None and volume.is_2d:
            name = "single"  # a 2D image has one plane, and no 3D view
            plane = "axial"
        self.layout_name = name
        if plane:
            self.single_plane = plane
        # the cells stay children of the grid and are only hidden: reparenting the views to None
        # (top-level for a moment) on every image switch made the next QListWidget.clear() in a
        # panel crash in shiboken (issue 11; tests/gui/test_soak.py holds the regression test)
        for i in reversed(range(self._grid.count())):
            widget = self._grid.itemAt(i).widget()
            self._grid.removeWidget(widget)
            widget.hide()
        if name == "single":
            cells = [(self.views[self.single_plane], 0, 0)]
            self._set_active(self.single_plane)
        elif name == "1x3":
            cells = [(self.views[p], 0, i) for i, p in enumerate(PLANES)]
        elif name == "3d":
            cells = [(self.view3d(), 0, 0)]
        else:
            fourth = self.view3d() if name == "2x2-3d" else self.info
            cells = [(self.views["axial"], 0, 0), (self.views["coronal"], 0, 1),
                     (self.views["sagittal"], 1, 0), (fourth, 1, 1)]
        self._cells = [widget for widget, _, _ in cells]
        for widget, row, col in cells:
            self._grid.addWidget(widget, row, col)
            widget.show()
        self.info.refresh()

    def showEvent(self, ev) -> None:
        super().showEvent(ev)
        self.info.refresh()

    def view3d(self):
        """The 3D view, made on first use (VTK is imported then)."""
        if self._view3d is None:
            from medviewer.ui.view3d.view_widget import View3D

            self._view3d = View3D(self.session, self)
            self._view3d.hide()
        return self._view3d

    @property
    def showing_3d(self) -> bool:
        return self._view3d is not None and self._view3d in self._cells

    def close_3d(self) -> None:
        """Release VTK's window before the widgets go (VTK wants the widget closed before Finalize)."""
        if self._view3d is not None:
            self._view3d.close()

    def visible_views(self) -> list[SliceView]:
        return [v for v in self.views.values() if v in self._cells]

    def active_view(self) -> SliceView:
        return self.views[self.active_plane]

    def fit_all(self) -> None:
        for view in self.visible_views():
            view.fit()
