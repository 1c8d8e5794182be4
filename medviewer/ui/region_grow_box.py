"""The region-growing settings in the Annotation dock: mode, multiplier and iterations (confidence)
or the Threshold range above (threshold), 2D/3D, maximum volume, progress with Cancel, the
preview's size, Accept and Discard. A changed setting regrows the pending preview from its seed."""
from __future__ import annotations

from medviewer.ui.qt import Qt, QtWidgets
from medviewer.ui.region_grow_tool import RegionGrowTool


class RegionGrowBox(QtWidgets.QGroupBox):
    def __init__(self, tool: RegionGrowTool, parent=None):
        super().__init__("Region growing (click a seed)", parent)
        self.tool = tool
        form = QtWidgets.QFormLayout(self)
        self.mode = QtWidgets.QComboBox()
        self.mode.addItems(["confidence", "threshold"])
        self.mode.setToolTip("confidence: mean ± multiplier × std around the seed, re-estimated over the "
                             "region (ITK ConfidenceConnected); threshold: the Threshold range above")
        self.mode.setCurrentText(tool.mode)
        form.addRow("Mode", self.mode)
        self.multiplier = QtWidgets.QDoubleSpinBox()
        self.multiplier.setRange(0.1, 10.0)
        self.multiplier.setSingleStep(0.1)
        self.multiplier.setValue(tool.multiplier)
        self.iterations = QtWidgets.QSpinBox()
        self.iterations.setRange(0, 20)
        self.iterations.setValue(tool.iterations)
        form.addRow("Multiplier", self.multiplier)
        form.addRow("Iterations", self.iterations)
        self.in_3d = QtWidgets.QCheckBox("Grow in 3D")
        self.in_3d.setToolTip("Off: the region stays in the slice you clicked")
        self.in_3d.setChecked(tool.in_3d)
        self.max_volume = QtWidgets.QDoubleSpinBox()
        self.max_volume.setRange(0.0, 100000.0)
        self.max_volume.setDecimals(1)
        self.max_volume.setSuffix(" mL")
        self.max_volume.setSpecialValueText("no limit")
        self.max_volume.setValue(tool.max_volume_ml or 0.0)
        form.addRow(self.in_3d)
        form.addRow("Limit", self.max_volume)
        self.progress = QtWidgets.QProgressBar()
        self.progress.setRange(0, 1000)
        self.progress.setTextVisible(False)
        self.progress.setMaximumHeight(8)
        self.cancel_button = QtWidgets.QPushButton("Cancel")
        row = QtWidgets.QHBoxLayout()
        row.addWidget(self.progress, 1)
        row.addWidget(self.cancel_button)
        form.addRow(row)
        self.status = QtWidgets.QLabel("")
        self.status.setWordWrap(True)
        self.status.setMinimumHeight(4 * self.status.fontMetrics().lineSpacing())
        self.status.setAlignment(Qt.AlignLeft | Qt.AlignTop)
        form.addRow(self.status)
        self.accept_button, self.discard_button = QtWidgets.QPushButton("Accept"), QtWidgets.QPushButton("Discard")
        row = QtWidgets.QHBoxLayout()
        row.addWidget(self.accept_button)
        row.addWidget(self.discard_button)
        form.addRow(row)

        self.mode.currentTextChanged.connect(lambda text: self._set(mode=text))
        self.multiplier.valueChanged.connect(lambda v: self._set(multiplier=float(v)))
        self.iterations.valueChanged.connect(lambda v: self._set(iterations=int(v)))
        self.in_3d.toggled.connect(lambda on: self._set(in_3d=bool(on)))
        self.max_volume.valueChanged.connect(lambda v: self._set(max_volume_ml=float(v) or None))
        self.cancel_button.clicked.connect(tool.cancel)
        self.accept_button.clicked.connect(tool.accept)
        self.discard_button.clicked.connect(tool.discard)
        tool.status.connect(self.status.setText)
        tool.progress.connect(lambda f: self.progress.setValue(int(round(1000 * f))))
        tool.state_changed.connect(self._sync)
        self._sync()

    def _set(self, **settings) -> None:
        for key, value in settings.items():
            setattr(self.tool, key, value)
        self.multiplier.setEnabled(self.tool.mode == "confidence")
        self.iterations.setEnabled(self.tool.mode == "confidence")
        if self.tool.has_seed:
            self.tool.regrow()

    def range_changed(self) -> None:
        """The Threshold range changed: a pending threshold growth follows it."""
        if self.tool.mode == "threshold" and self.tool.has_seed:
            self.tool.regrow()

    def _sync(self) -> None:
        self.cancel_button.setEnabled(self.tool.growing)
        self.accept_button.setEnabled(self.tool.pending and not self.tool.growing)
        self.discard_button.setEnabled(self.tool.pending or self.tool.growing)
        self.multiplier.setEnabled(self.tool.mode == "confidence")
        self.iterations.setEnabled(self.tool.mode == "confidence")
