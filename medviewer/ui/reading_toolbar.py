"""The 2D reading toolbar: thick slab (MIP / MinIP / average, thickness in mm) on every slice view;
and the oblique MPR actions (for the View menu): the rotate tool (Ctrl+Shift+drag does the same
with any tool), reset to the voxel grid, and reslicing an oblique acquisition to the patient axes."""
from __future__ import annotations

from medviewer.core import oblique, slab
from medviewer.ui.qt import QtGui, QtWidgets

DEFAULT_SLAB_MM = 10.0


class ReadingToolbar(QtWidgets.QToolBar):
    def __init__(self, grid, parent=None):
        super().__init__("Reading", parent)
        self.setObjectName("toolbar-reading")
        self.grid = grid
        self.slab_mode = QtWidgets.QComboBox()
        self.slab_mode.setToolTip("Thick slab: maximum, minimum or average intensity over the slab")
        for mode in slab.MODES:
            self.slab_mode.addItem("No slab" if mode == "off" else slab.MODE_NAMES[mode], mode)
        self.addWidget(self.slab_mode)
        self.slab_mm = QtWidgets.QDoubleSpinBox()
        self.slab_mm.setRange(0.0, 500.0)
        self.slab_mm.setDecimals(1)
        self.slab_mm.setSingleStep(1.0)
        self.slab_mm.setSuffix(" mm")
        self.slab_mm.setValue(DEFAULT_SLAB_MM)
        self.slab_mm.setToolTip("Slab thickness, centred on the current slice (0: the plain slice)")
        self.slab_mm.setMaximumWidth(self.slab_mm.fontMetrics().horizontalAdvance("500.0 mm") + 36)
        self.addWidget(self.slab_mm)
        self.slab_mode.currentIndexChanged.connect(self.apply_slab)
        self.slab_mm.valueChanged.connect(self.apply_slab)
        # the oblique MPR actions go in the View menu (the toolbar stays narrow enough to share
        # the main toolbar's row, so the views keep their height)
        self.rotate_action = self._action("Rotate MPR planes", "Drag in a view to turn the other two planes "
                                          "about its normal (or Ctrl+Shift+drag with any tool)", self.set_rotate_tool)
        self.rotate_action.setCheckable(True)
        self.reset_action = self._action("Reset MPR planes", "Back to the voxel-grid planes", self.reset_planes)
        self.patient_action = self._action("Reslice to patient axes", "Reslice an oblique acquisition to straight axial, "
                                           "coronal and sagittal planes", self.to_patient_axes)
        self.mpr_actions = [self.rotate_action, self.reset_action, self.patient_action]
        session = grid.session
        session.volume_changed.connect(self.sync)
        session.planes.changed.connect(self.sync)
        for view in grid.views.values():  # another tool chosen elsewhere (Tools menu) unchecks Rotate
            view.tool_set.connect(lambda tool: self.rotate_action.setChecked(tool == "rotate"))
        self.sync()

    def _action(self, text: str, tip: str, slot) -> QtGui.QAction:
        action = QtGui.QAction(text, self)
        action.setToolTip(tip)
        action.triggered.connect(slot)
        return action

    def sync(self) -> None:
        volume = self.grid.session.volume
        turnable = volume is not None and not volume.is_2d
        self.rotate_action.setEnabled(turnable)
        self.reset_action.setEnabled(turnable and self.grid.session.planes.is_rotated())
        self.patient_action.setEnabled(turnable and oblique.obliquity_deg(volume) >= 0.5)

    def set_rotate_tool(self, on: bool) -> None:
        for view in self.grid.views.values():
            view.set_tool("rotate" if on else "navigate")

    def reset_planes(self) -> None:
        self.grid.session.planes.reset()

    def to_patient_axes(self) -> None:
        volume = self.grid.session.volume
        if volume is not None and not volume.is_2d:
            self.grid.session.planes.set_all(oblique.patient_axes_rotation(volume))

    def set_slab(self, mode: str, thickness_mm: float) -> None:
        """Choose the slab in the controls (and so on every view)."""
        self.slab_mm.setValue(thickness_mm)
        self.slab_mode.setCurrentIndex(slab.MODES.index(mode))
        self.apply_slab()

    def apply_slab(self, *_args) -> None:
        mode, mm = self.slab_mode.currentData(), self.slab_mm.value()
        for view in self.grid.views.values():
            view.set_slab(mode, mm)
