"""The "Fusion" dock: which image is fused over the session's image, and how.

`FusionPanel(workspace, session)` drives `session.fusion` (core/fusion.py): the image combo lists
the workspace's other images ("None" turns fusion off; an image registered to this one is fused
through its registration transform — ui.workspace_view.fuse), the mode (overlay, checkerboard,
difference), the opacity and colour map (overlay, difference), a threshold below which the
overlay is transparent, and the checkerboard's square size in mm. The widgets mirror the fusion
when something else changes it (Images "Fuse over primary", a registration's checkerboard). A
refused fusion (a 2D image over a 3D one, images that do not overlap) is said in one line under
the controls; nothing changes.
"""
from __future__ import annotations

import numpy as np

from medviewer.core.errors import MedViewerError
from medviewer.core.fusion import COLOURS, MODES
from medviewer.ui import hand_over
from medviewer.ui.qt import Qt, QtWidgets
from medviewer.ui.workspace_view import fuse

_MODES = tuple(m for m in MODES if m != "off")


class FusionPanel(QtWidgets.QWidget):
    def __init__(self, workspace, session, parent=None):
        super().__init__(parent)
        self.workspace, self.session = workspace, session
        self.fusion = session.fusion
        self._ranged = None  # the moving image the threshold's range was set for
        form = QtWidgets.QFormLayout(self)
        form.setContentsMargins(4, 4, 4, 4)
        self.image_combo = QtWidgets.QComboBox()
        self.mode_combo = QtWidgets.QComboBox()
        self.mode_combo.addItems([m.capitalize() for m in _MODES])
        self.opacity = QtWidgets.QSlider(Qt.Horizontal)
        self.opacity.setRange(0, 100)
        self.colormap_combo = QtWidgets.QComboBox()
        self.colormap_combo.addItems(COLOURS)
        self.threshold_box = QtWidgets.QCheckBox("Hide below")
        self.threshold = QtWidgets.QDoubleSpinBox()
        self.threshold.setDecimals(1)
        self.threshold.setRange(-1e9, 1e9)
        self.checker = QtWidgets.QDoubleSpinBox()
        self.checker.setRange(1.0, 500.0)
        self.checker.setSuffix(" mm")
        threshold_row = QtWidgets.QHBoxLayout()
        threshold_row.addWidget(self.threshold_box)
        threshold_row.addWidget(self.threshold, 1)
        form.addRow("Image over this one", self.image_combo)
        form.addRow("Mode", self.mode_combo)
        form.addRow("Opacity", self.opacity)
        form.addRow("Colour map", self.colormap_combo)
        form.addRow("Threshold", threshold_row)
        form.addRow("Checker size", self.checker)
        self.note = QtWidgets.QLabel("")  # through a transform, or why a fusion was refused
        self.note.setWordWrap(True)
        form.addRow(self.note)

        self.image_combo.activated.connect(lambda _i: self._choose_image())
        self.mode_combo.activated.connect(lambda _i: self._apply(mode=_MODES[self.mode_combo.currentIndex()]))
        self.opacity.valueChanged.connect(lambda v: self._apply(opacity=v / 100.0))
        self.colormap_combo.activated.connect(lambda _i: self._apply(colormap=self.colormap_combo.currentText()))
        self.threshold_box.toggled.connect(lambda _on: self._apply_threshold())
        self.threshold.valueChanged.connect(lambda _v: self._apply_threshold())
        self.checker.valueChanged.connect(lambda v: self._apply(checker_mm=v))
        self.fusion.changed.connect(self.sync)
        workspace.changed.connect(lambda: hand_over.soon(self.refresh, owner=self))
        self.refresh()

    # --- model -> widgets -------------------------------------------------------------
    def _fixed_entry(self):
        return self.workspace.entry_of(self.session)

    def candidates(self) -> list:
        """The images that may be fused over this one: every other open image."""
        fixed = self._fixed_entry()
        return [e for e in self.workspace.entries if e is not fixed and e.volume is not None]

    def fused_entry(self):
        return next((e for e in self.candidates() if e.volume is self.fusion.moving), None)

    def refresh(self) -> None:
        """The image list (after images were opened, removed or registered)."""
        self.image_combo.blockSignals(True)
        self.image_combo.clear()
        self.image_combo.addItem("None")
        for entry in self.candidates():
            self.image_combo.addItem(entry.title or entry.id, entry.id)
        self.image_combo.blockSignals(False)
        self.sync()

    def sync(self) -> None:
        """The widgets show the fusion's state."""
        f = self.fusion
        widgets = (self.image_combo, self.mode_combo, self.opacity, self.colormap_combo, self.threshold_box,
                   self.threshold, self.checker)
        for w in widgets:
            w.blockSignals(True)
        if f.moving is not None and f.moving is not self._ranged:
            self._threshold_range(f.moving)
        entry = self.fused_entry()
        self.image_combo.setCurrentIndex(self.candidates().index(entry) + 1 if entry is not None and f.active else 0)
        if f.mode in _MODES:
            self.mode_combo.setCurrentIndex(_MODES.index(f.mode))
        self.opacity.setValue(int(round(f.opacity * 100)))
        self.colormap_combo.setCurrentText(f.colormap)
        self.threshold_box.setChecked(f.threshold is not None)
        if f.moving is not None and f.threshold is not None:
            self.threshold.setValue(f.threshold)
        self.checker.setValue(f.checker_mm)
        for w in widgets:
            w.blockSignals(False)
        mode = f.mode if f.active else "off"
        self.opacity.setEnabled(mode == "overlay")
        self.colormap_combo.setEnabled(mode in ("overlay", "difference"))
        self.threshold_box.setEnabled(mode == "overlay")
        self.threshold.setEnabled(mode == "overlay" and f.threshold is not None)
        self.checker.setEnabled(mode == "checkerboard")
        if f.active and entry is not None and f.transform is not None:
            self.note.setText(f"{entry.title}: through its registration transform")

    # --- widgets -> model -------------------------------------------------------------
    def _choose_image(self) -> None:
        index = self.image_combo.currentIndex()
        if index <= 0:
            if self.fusion.moving is not None:
                self.fusion.set(mode="off")
            self.note.setText("")
            return
        entry = self.candidates()[index - 1]
        display = {}
        if entry.volume is not self.fusion.moving:  # a threshold in another image's values means nothing here
            display["threshold"] = None
        self.note.setText("")
        try:
            fuse(self._fixed_entry(), entry, mode=_MODES[self.mode_combo.currentIndex()], **display)
        except MedViewerError as exc:
            self.sync()  # the combo goes back to what is fused
            self.note.setText(str(exc))

    def _threshold_range(self, volume) -> None:
        """The threshold spans the moving image's values; it starts at the middle of its window
        (called with the widgets' signals blocked)."""
        self._ranged = volume
        lo, hi = float(np.min(volume.data)), float(np.max(volume.data))
        self.threshold.setRange(lo, hi)
        self.threshold.setSingleStep(max((hi - lo) / 100.0, 0.1))
        if self.fusion.threshold is None:
            self.threshold.setValue(self.fusion.window.level)

    def _apply_threshold(self) -> None:
        self._apply(threshold=self.threshold.value() if self.threshold_box.isChecked() else None)

    def _apply(self, **change) -> None:
        """A display change; a mode chosen while no image is fused waits in its combo for one."""
        if self.fusion.moving is None or ("mode" in change and self.image_combo.currentIndex() <= 0):
            return
        try:
            self.fusion.set(**change)
        except MedViewerError as exc:
            self.sync()
            self.note.setText(str(exc))
