"""One pane of the compare layouts: a header row (which image, which plane, linked or not) over a
SliceView of that image's session.

The pane does not own its view: the ViewerGrid hands it one (the primary image's own views, so the
annotation tools work there; a view per other image made on demand). A view the pane gives back
stays a hidden child of the grid: views are never reparented to None (issue 11).
"""
from __future__ import annotations

from medviewer.core.slicing import PLANES
from medviewer.core.workspace import ImageEntry
from medviewer.ui.qt import QtCore, QtWidgets, Signal
from medviewer.ui.slice_view import SliceView

ENTRY_ROLE = QtCore.Qt.ItemDataRole.UserRole


class ComparePane(QtWidgets.QWidget):
    entry_chosen = Signal(object, str)  # (ImageEntry, plane): the user picked another image or plane

    def __init__(self, index: int, parent=None):
        super().__init__(parent)
        self.index = index
        self.entry: ImageEntry | None = None
        self.plane = "axial"
        self.view: SliceView | None = None
        self.chosen = False  # False: the grid gives it the default image as images come and go
        self.image_combo = QtWidgets.QComboBox()
        self.image_combo.setSizeAdjustPolicy(QtWidgets.QComboBox.AdjustToMinimumContentsLengthWithIcon)
        self.image_combo.setMinimumContentsLength(12)
        self.image_combo.setToolTip("The image shown in this pane")
        self.plane_combo = QtWidgets.QComboBox()
        self.plane_combo.addItems([p.capitalize() for p in PLANES])
        self.link_button = QtWidgets.QToolButton()
        self.link_button.setText("Linked")
        self.link_button.setCheckable(True)
        self.link_button.setChecked(True)
        self.link_button.setToolTip("Follow the other linked images' cursor, scrolling, zoom and window "
                                    "(in world coordinates)")
        self.outside_label = QtWidgets.QLabel("")
        self.outside_label.setStyleSheet("color: #e8a040;")
        header = QtWidgets.QHBoxLayout()
        header.setContentsMargins(2, 1, 2, 1)
        header.setSpacing(4)
        header.addWidget(self.image_combo, 1)
        header.addWidget(self.plane_combo)
        header.addWidget(self.link_button)
        header.addWidget(self.outside_label)
        self._layout = QtWidgets.QVBoxLayout(self)
        self._layout.setContentsMargins(0, 0, 0, 0)
        self._layout.setSpacing(0)
        self._layout.addLayout(header)
        self.image_combo.activated.connect(self._image_picked)
        self.plane_combo.activated.connect(lambda i: self.entry is not None
                                           and self.entry_chosen.emit(self.entry, PLANES[i]))
        self.link_button.toggled.connect(self._link_toggled)

    # --- what the grid calls ------------------------------------------------------------
    @property
    def linked(self) -> bool:
        return self.entry is not None and self.entry.linked

    def list_entries(self, entries: list[ImageEntry]) -> None:
        self.image_combo.blockSignals(True)
        self.image_combo.clear()
        for entry in entries:
            self.image_combo.addItem(entry.title or entry.id, entry.id)
            self.image_combo.setItemData(self.image_combo.count() - 1, f"{entry.id}: {entry.title}",
                                         QtCore.Qt.ItemDataRole.ToolTipRole)
        self._select_current()
        self.image_combo.blockSignals(False)

    def show_entry(self, entry: ImageEntry, plane: str, view: SliceView) -> SliceView | None:
        """Show `view` (of entry's session, plane); returns the view it replaces (the grid keeps it)."""
        old = self.view if self.view is not view else None
        if old is not None:
            self._layout.removeWidget(old)
        self.entry, self.plane, self.view = entry, plane, view
        if self._layout.indexOf(view) < 0:
            self._layout.addWidget(view, 1)  # reparents the view to this pane
        view.show()
        volume = entry.volume
        flat = volume is not None and volume.is_2d
        self.plane_combo.blockSignals(True)
        self.plane_combo.setCurrentIndex(PLANES.index(plane))
        self.plane_combo.setEnabled(not flat)
        self.plane_combo.setToolTip("a 2D image has one plane" if flat else "The plane shown")
        self.plane_combo.blockSignals(False)
        self.link_button.blockSignals(True)
        self.link_button.setChecked(entry.linked)
        self.link_button.blockSignals(False)
        self._select_current()
        return old

    def release_view(self) -> SliceView | None:
        """Give the view back (the grid re-homes it); the pane keeps its entry and plane."""
        view, self.view = self.view, None
        if view is not None:
            self._layout.removeWidget(view)
        return view

    def set_outside(self, outside: bool) -> None:
        self.outside_label.setText("outside the image" if outside else "")
        self.outside_label.setToolTip("The linked cursor is outside this image; its cursor stays where it was"
                                      if outside else "")

    # --- the API other parts use (grid.compare_panes()) -------------------------------------
    def set_entry(self, entry: ImageEntry) -> None:
        self.entry_chosen.emit(entry, self.plane if entry.volume is None or not entry.volume.is_2d else "axial")

    def set_plane(self, plane: str) -> None:
        if plane not in PLANES:
            raise ValueError(f"unknown plane {plane!r}; use one of {PLANES}")
        if self.entry is not None:
            self.entry_chosen.emit(self.entry, plane)
        else:
            self.plane = plane

    # --- internals ------------------------------------------------------------------------
    def _select_current(self) -> None:
        if self.entry is not None:
            i = self.image_combo.findData(self.entry.id)
            if i >= 0:
                self.image_combo.setCurrentIndex(i)

    def _image_picked(self, index: int) -> None:
        entry_id = self.image_combo.itemData(index)
        entries = getattr(self.parent(), "workspace", None)
        if entries is None or entry_id is None:
            return
        self.set_entry(entries.get(entry_id))

    def _link_toggled(self, on: bool) -> None:
        if self.entry is not None:
            self.entry.set_linked(on)
