"""A form built from an operation's parameters (processing.operations.Param): one editor per
parameter, its range, unit and help as the editor's limits, suffix and tooltip.

    form = ParamForm(); form.set_params(op.params, op.defaults(volume))
    form.values() -> {name: value}      # what run_operation takes
    form.set_value("sigma", 2.0)        # tests and presets
"""
from __future__ import annotations

from medviewer.ui.qt import QtWidgets

_BIG = 1e9


class ParamForm(QtWidgets.QWidget):
    def __init__(self, parent=None):
        super().__init__(parent)
        self._layout = QtWidgets.QFormLayout(self)
        self._layout.setContentsMargins(0, 0, 0, 0)
        self._layout.setRowWrapPolicy(QtWidgets.QFormLayout.WrapLongRows)
        self.editors: dict[str, QtWidgets.QWidget] = {}
        self._params: tuple = ()

    def set_params(self, params, values: dict | None = None) -> None:
        """One editor per parameter, showing VALUES (default: each parameter's own default)."""
        while self._layout.rowCount():
            self._layout.removeRow(0)  # deletes the row's label and editor
        self.editors = {}
        self._params = tuple(params)
        for p in self._params:
            editor = self._editor(p, (values or {}).get(p.name, p.default))
            editor.setObjectName(f"param-{p.name}")
            if p.help:
                editor.setToolTip(p.help)
            self.editors[p.name] = editor
            label = p.name.replace("_", " ")
            self._layout.addRow(label[:1].upper() + label[1:], editor)

    @staticmethod
    def _editor(p, value) -> QtWidgets.QWidget:
        low = -_BIG if p.minimum is None else float(p.minimum)
        high = _BIG if p.maximum is None else float(p.maximum)
        if p.kind == "float":
            box = QtWidgets.QDoubleSpinBox()
            box.setDecimals(3)
            box.setRange(low, high)
            step = (high - low) / 100 if p.minimum is not None and p.maximum is not None else 0.1
            box.setSingleStep(max(0.001, min(1.0, step)))
            box.setValue(float(value))
        elif p.kind == "int":
            box = QtWidgets.QSpinBox()
            box.setRange(int(max(low, -2**31 + 1)), int(min(high, 2**31 - 1)))
            box.setValue(int(value))
        elif p.kind == "choice":
            box = QtWidgets.QComboBox()
            for choice in p.choices:
                box.addItem(str(choice), choice)
            box.setCurrentIndex(list(p.choices).index(value) if value in p.choices else 0)
        elif p.kind == "bool":
            box = QtWidgets.QCheckBox()
            box.setChecked(bool(value))
        else:
            raise ValueError(f"parameter {p.name}: unknown kind {p.kind!r}")
        if p.unit and isinstance(box, (QtWidgets.QDoubleSpinBox, QtWidgets.QSpinBox)):
            box.setSuffix(f" {p.unit}")
        return box

    def values(self) -> dict:
        out = {}
        for p in self._params:
            editor = self.editors[p.name]
            if isinstance(editor, QtWidgets.QComboBox):
                out[p.name] = editor.currentData()
            elif isinstance(editor, QtWidgets.QCheckBox):
                out[p.name] = editor.isChecked()
            else:
                out[p.name] = editor.value()
        return out

    def set_value(self, name: str, value) -> None:
        editor = self.editors[name]
        if isinstance(editor, QtWidgets.QComboBox):
            editor.setCurrentIndex(editor.findData(value))
        elif isinstance(editor, QtWidgets.QCheckBox):
            editor.setChecked(bool(value))
        else:
            editor.setValue(value)
