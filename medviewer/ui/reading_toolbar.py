"""The 2D reading toolbar: thick slab (MIP / MinIP / average, thickness in mm) on every slice view."""
from __future__ import annotations

from medviewer.core import slab
from medviewer.ui.qt import QtWidgets

DEFAULT_SLAB_MM = 10.0


class ReadingToolbar(QtWidgets.QToolBar):
    def __init__(self, grid, parent=None):
        super().__init__("Reading", parent)
        self.setObjectName("toolbar-reading")
        self.grid = grid
        self.addWidget(QtWidgets.QLabel(" Slab "))
        self.slab_mode = QtWidgets.QComboBox()
        self.slab_mode.setToolTip("Thick slab: maximum, minimum or average intensity over the slab")
        for mode in slab.MODES:
            self.slab_mode.addItem(slab.MODE_NAMES[mode], mode)
        self.addWidget(self.slab_mode)
        self.slab_mm = QtWidgets.QDoubleSpinBox()
        self.slab_mm.setRange(0.0, 500.0)
        self.slab_mm.setDecimals(1)
        self.slab_mm.setSingleStep(1.0)
        self.slab_mm.setSuffix(" mm")
        self.slab_mm.setValue(DEFAULT_SLAB_MM)
        self.slab_mm.setToolTip("Slab thickness, centred on the current slice (0: the plain slice)")
        self.addWidget(self.slab_mm)
        self.slab_mode.currentIndexChanged.connect(self.apply_slab)
        self.slab_mm.valueChanged.connect(self.apply_slab)

    def set_slab(self, mode: str, thickness_mm: float) -> None:
        """Choose the slab in the controls (and so on every view)."""
        self.slab_mm.setValue(thickness_mm)
        self.slab_mode.setCurrentIndex(slab.MODES.index(mode))
        self.apply_slab()

    def apply_slab(self, *_args) -> None:
        mode, mm = self.slab_mode.currentData(), self.slab_mm.value()
        for view in self.grid.views.values():
            view.set_slab(mode, mm)
