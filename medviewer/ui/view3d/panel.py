"""The "3D" dock: what is rendered (volume, MIP, surfaces), the transfer-function preset and its
opacity ramp, camera presets, clipping, the MPR planes, label-surface export and a screenshot.

Made with the 3D view (on first use of a 3D layout); every control calls the View3D's Scene3D, so
a test or the CLI can do the same without the panel.
"""
from __future__ import annotations

from medviewer.core.errors import MedViewerError
from medviewer.ui.qt import QtCore, QtWidgets

RENDER_MODES = (("volume", "Volume rendering"), ("mip", "Maximum intensity (MIP)"), ("surface", "Surfaces only"))
CAMERAS = (("A", "anterior"), ("P", "posterior"), ("L", "left"), ("R", "right"), ("S", "superior"),
           ("I", "inferior"))


class View3DPanel(QtWidgets.QWidget):
    message = QtCore.Signal(str)  # a problem for the status bar / message box

    def __init__(self, view3d, parent=None):
        from medviewer.ui.view3d.transfer_functions import PRESETS

        super().__init__(parent)
        self.view3d = view3d
        form = QtWidgets.QFormLayout(self)
        form.setRowWrapPolicy(QtWidgets.QFormLayout.WrapLongRows)  # a narrow dock: labels above their fields
        self.mode = QtWidgets.QComboBox()
        for key, text in RENDER_MODES:
            self.mode.addItem(text, key)
        self.mode.currentIndexChanged.connect(lambda _i: self._scene_call("set_render_mode", self.mode.currentData()))
        form.addRow("Render", self.mode)
        self.preset = QtWidgets.QComboBox()
        self.preset.addItems(list(PRESETS))
        self.preset.textActivated.connect(lambda name: self._scene_call("set_preset", name))
        form.addRow("Preset", self.preset)
        # the opacity ramp's editor: shift (level) and width, relative to the preset, in image units
        self.ramp_shift = QtWidgets.QSpinBox()
        self.ramp_shift.setRange(-3000, 3000)
        self.ramp_shift.setSingleStep(10)
        self.ramp_width = QtWidgets.QSpinBox()
        self.ramp_width.setRange(-3000, 3000)
        self.ramp_width.setSingleStep(10)
        self._ramp = (0, 0)
        for box in (self.ramp_shift, self.ramp_width):
            box.valueChanged.connect(self._ramp_changed)
        ramp = QtWidgets.QHBoxLayout()
        ramp.addWidget(QtWidgets.QLabel("shift"))
        ramp.addWidget(self.ramp_shift)
        ramp.addWidget(QtWidgets.QLabel("width"))
        ramp.addWidget(self.ramp_width)
        form.addRow("Ramp", ramp)

        cameras = QtWidgets.QHBoxLayout()
        for key, where in CAMERAS:
            button = QtWidgets.QToolButton()
            button.setText(key)
            button.setToolTip(f"look from the {where}")
            button.clicked.connect(lambda _=False, k=key: self._scene_call("set_camera", k))
            cameras.addWidget(button)
        reset = QtWidgets.QToolButton()
        reset.setText("Reset")
        reset.clicked.connect(lambda: self._scene_call("reset_camera"))
        cameras.addWidget(reset)
        form.addRow("Camera", cameras)
        self.ortho = QtWidgets.QCheckBox("Orthographic projection")
        self.ortho.toggled.connect(lambda on: self._scene_call("set_orthographic", on))
        form.addRow(self.ortho)
        self.planes = QtWidgets.QCheckBox("Show the slice planes")
        self.planes.toggled.connect(lambda on: self._scene_call("show_planes", on, self._cursor()))
        form.addRow(self.planes)
        self.clip_cross = QtWidgets.QCheckBox("Clip at the crosshair")
        self.clip_cross.toggled.connect(lambda on: self._scene_call("set_clip_crosshair", on, self._cursor()))
        form.addRow(self.clip_cross)
        self.clip_box = QtWidgets.QCheckBox("Crop to a box (voxels)")
        self.clip_box.toggled.connect(self._box_changed)
        form.addRow(self.clip_box)
        self._box = []
        for axis in "xyz":
            row = QtWidgets.QHBoxLayout()
            pair = []
            for _ in range(2):
                spin = QtWidgets.QSpinBox()
                spin.setRange(0, 0)
                spin.valueChanged.connect(self._box_changed)
                row.addWidget(spin)
                pair.append(spin)
            self._box.append(pair)
            form.addRow(f"  {axis}", row)

        export = QtWidgets.QPushButton("Export label surfaces…")
        export.setToolTip("the active label map's surfaces to STL, OBJ or PLY, in world coordinates (LPS mm)")
        export.clicked.connect(self.export_dialog)
        form.addRow(export)
        shot = QtWidgets.QPushButton("Save 3D screenshot…")
        shot.clicked.connect(self.screenshot_dialog)
        form.addRow(shot)
        self.status = QtWidgets.QLabel("")
        self.status.setWordWrap(True)
        form.addRow(self.status)
        self.sync()

    # --- state ------------------------------------------------------------------------
    def _cursor(self):
        return self.view3d.session.cursor

    def sync(self) -> None:
        """Controls follow the scene (a new image: the box spans it, the preset its modality)."""
        scene = self.view3d.scene
        volume = self.view3d.session.volume
        usable = scene is not None and not self.view3d.problem
        for child in self.findChildren(QtWidgets.QWidget):
            if child is not self.status:
                child.setEnabled(usable)
        if not usable:
            self.status.setText(self.view3d.problem or "no 3D view")
            return
        self.preset.setCurrentText(scene.preset or "")
        self.mode.blockSignals(True)
        self.mode.setCurrentIndex(self.mode.findData(scene.render_mode))
        self.mode.blockSignals(False)
        if volume is not None:
            for pair, n in zip(self._box, volume.size):
                for spin, value in zip(pair, (0, n - 1)):
                    spin.blockSignals(True)
                    spin.setRange(0, n - 1)
                    spin.setValue(value)
                    spin.blockSignals(False)
        self._ramp = (0, 0)
        for box in (self.ramp_shift, self.ramp_width):
            box.blockSignals(True)
            box.setValue(0)
            box.blockSignals(False)
        self.status.setText(scene.downsampled or "")

    def _scene_call(self, method: str, *args) -> None:
        scene = self.view3d.scene
        if scene is None or self.view3d.problem:
            return
        try:
            getattr(scene, method)(*args)
        except MedViewerError as exc:
            self.message.emit(str(exc))
        self.view3d.request_render()

    def _ramp_changed(self, *_args) -> None:
        shift, width = self.ramp_shift.value(), self.ramp_width.value()
        dl, dw = shift - self._ramp[0], width - self._ramp[1]
        self._ramp = (shift, width)
        self._scene_call("shift_opacity", dw, dl)

    def _box_changed(self, *_args) -> None:
        if not self.clip_box.isChecked():
            self._scene_call("set_clip_box", None)
            return
        box = tuple((min(a.value(), b.value()), max(a.value(), b.value())) for a, b in self._box)
        self._scene_call("set_clip_box", box)

    # --- files ------------------------------------------------------------------------
    def export_dialog(self) -> None:
        path, _ = QtWidgets.QFileDialog.getSaveFileName(
            self, "Export label surfaces", "labels.stl", "STL (*.stl);;Wavefront OBJ (*.obj);;PLY (*.ply)")
        if path:
            self.export(path)

    def export(self, path: str) -> list[str]:
        from medviewer.ui.view3d.surface_export import export_session_surfaces

        try:
            written = export_session_surfaces(self.view3d.session, path)
        except MedViewerError as exc:
            self.message.emit(str(exc))
            return []
        self.status.setText("wrote " + ", ".join(written))
        return written

    def screenshot_dialog(self) -> None:
        path, _ = QtWidgets.QFileDialog.getSaveFileName(self, "Save 3D screenshot", "medviewer-3d.png", "PNG (*.png)")
        if path:
            self.save_screenshot(path)

    def save_screenshot(self, path: str) -> None:
        from medviewer.ui.screenshot import save_rgb_png

        try:
            save_rgb_png(path, self.view3d.capture())
        except MedViewerError as exc:
            self.message.emit(str(exc))
