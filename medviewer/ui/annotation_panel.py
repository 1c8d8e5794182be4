"""The Annotation dock: label maps and their label tables, tools, brush settings, label
operations, undo/redo and per-label statistics."""
from __future__ import annotations

from medviewer.core.session import Session
from medviewer.ui.annotation_controller import AnnotationController
from medviewer.ui.qt import Qt, QtGui, QtWidgets, Signal
from medviewer.ui.region_grow_box import RegionGrowBox

TOOL_BUTTONS = [("Brush", "brush"), ("Eraser", "eraser"), ("Threshold paint", "threshold"),
                ("Polygon", "polygon"), ("Lasso", "lasso"), ("Rectangle", "rectangle"),
                ("Ellipse", "ellipse"), ("Flood fill", "fill"), ("Region grow", "grow")]
COLUMNS = ["", "Value", "Name", "Visible", "Locked", "Opacity"]


def _fmt(value, spec: str) -> str:
    return "–" if value is None else format(value, spec)


class AnnotationPanel(QtWidgets.QWidget):
    operation = Signal(str)  # "interpolate", "smooth", "fill_holes", "largest", "replace", "erase", "stats_csv"

    def __init__(self, session: Session, controller: AnnotationController, parent=None):
        super().__init__(parent)
        self.session, self.controller = session, controller
        layout = QtWidgets.QVBoxLayout(self)

        row = QtWidgets.QHBoxLayout()
        self.map_combo = QtWidgets.QComboBox()
        self.new_map = QtWidgets.QPushButton("New label map")
        row.addWidget(self.map_combo, 1)
        row.addWidget(self.new_map)
        layout.addLayout(row)

        self.table = QtWidgets.QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.verticalHeader().hide()
        self.table.setSelectionBehavior(QtWidgets.QAbstractItemView.SelectRows)
        self.table.setSelectionMode(QtWidgets.QAbstractItemView.SingleSelection)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QtWidgets.QHeaderView.ResizeToContents)
        header.setSectionResizeMode(2, QtWidgets.QHeaderView.Stretch)
        self.table.setColumnWidth(0, 22)
        layout.addWidget(self.table, 2)
        row = QtWidgets.QHBoxLayout()
        self.add_label = QtWidgets.QPushButton("Add label")
        self.remove_label = QtWidgets.QPushButton("Remove")
        self.outline = QtWidgets.QCheckBox("Outline")
        for w in (self.add_label, self.remove_label, self.outline):
            row.addWidget(w)
        layout.addLayout(row)

        tools = QtWidgets.QGridLayout()
        self.tool_buttons: dict[str, QtWidgets.QToolButton] = {}
        group = QtWidgets.QButtonGroup(self)
        group.setExclusive(False)
        for i, (text, name) in enumerate(TOOL_BUTTONS):
            b = QtWidgets.QToolButton()
            b.setText(text)
            b.setCheckable(True)
            b.setToolButtonStyle(Qt.ToolButtonTextOnly)
            b.setSizePolicy(QtWidgets.QSizePolicy.Expanding, QtWidgets.QSizePolicy.Fixed)
            b.clicked.connect(lambda checked, n=name: controller.set_tool(n if checked else None))
            tools.addWidget(b, i // 3, i % 3)
            self.tool_buttons[name] = b
        layout.addLayout(tools)

        form = QtWidgets.QFormLayout()
        self.radius = QtWidgets.QDoubleSpinBox()
        self.radius.setRange(0.5, 100.0)
        self.radius.setSuffix(" mm")
        self.radius.setValue(controller.radius_mm)
        self.sphere = QtWidgets.QCheckBox("3D sphere")
        brush_row = QtWidgets.QHBoxLayout()
        brush_row.addWidget(self.radius)
        brush_row.addWidget(self.sphere)
        form.addRow("Brush radius", brush_row)
        self.low, self.high = QtWidgets.QDoubleSpinBox(), QtWidgets.QDoubleSpinBox()
        for spin, value in ((self.low, controller.low), (self.high, controller.high)):
            spin.setRange(-100000, 100000)
            spin.setValue(value)
        thr = QtWidgets.QHBoxLayout()
        thr.addWidget(self.low)
        thr.addWidget(QtWidgets.QLabel("to"))
        thr.addWidget(self.high)
        form.addRow("Threshold", thr)
        self.overwrite = QtWidgets.QCheckBox("Paint over other labels")
        self.overwrite.setToolTip("Off: tools only paint empty voxels and the eraser only clears the "
                                  "active label, so other labels are never changed. Locked labels are "
                                  "kept either way.")
        form.addRow(self.overwrite)
        layout.addLayout(form)
        self.grow_box = RegionGrowBox(controller.grow)
        layout.addWidget(self.grow_box)

        ops = QtWidgets.QGridLayout()
        for i, (text, op) in enumerate([("Fill between slices", "interpolate"), ("Smooth", "smooth"),
                                        ("Fill holes", "fill_holes"), ("Keep largest", "largest"),
                                        ("Replace with…", "replace"), ("Erase label", "erase")]):
            b = QtWidgets.QPushButton(text)
            b.clicked.connect(lambda _=False, o=op: self.operation.emit(o))
            ops.addWidget(b, i // 2, i % 2)
        layout.addLayout(ops)
        row = QtWidgets.QHBoxLayout()
        self.undo_button, self.redo_button = QtWidgets.QPushButton("Undo"), QtWidgets.QPushButton("Redo")
        row.addWidget(self.undo_button)
        row.addWidget(self.redo_button)
        layout.addLayout(row)

        self.stats = QtWidgets.QTableWidget(0, 8)
        self.stats.setHorizontalHeaderLabels(["Label", "Name", "Voxels", "Volume mm³", "Mean", "Std", "Min", "Max"])
        self.stats.verticalHeader().hide()
        self.stats.horizontalHeader().setSectionResizeMode(QtWidgets.QHeaderView.ResizeToContents)
        self.stats.setEditTriggers(QtWidgets.QAbstractItemView.NoEditTriggers)
        layout.addWidget(QtWidgets.QLabel("Statistics"))
        layout.addWidget(self.stats, 1)
        self.export_stats = QtWidgets.QPushButton("Export statistics as CSV…")
        self.export_stats.clicked.connect(lambda: self.operation.emit("stats_csv"))
        layout.addWidget(self.export_stats)

        self.new_map.clicked.connect(lambda: session.add_label_map())
        self.add_label.clicked.connect(self._add_label)
        self.remove_label.clicked.connect(self._remove_label)
        self.map_combo.currentIndexChanged.connect(self._map_chosen)
        self.table.itemSelectionChanged.connect(self._row_chosen)
        self.table.itemChanged.connect(self._item_changed)
        self.table.cellDoubleClicked.connect(self._pick_colour)
        self.radius.valueChanged.connect(lambda v: setattr(controller, "radius_mm", float(v)))
        self.sphere.toggled.connect(lambda on: setattr(controller, "brush_3d", bool(on)))
        self.low.valueChanged.connect(lambda v: setattr(controller, "low", float(v)))
        self.high.valueChanged.connect(lambda v: setattr(controller, "high", float(v)))
        self.low.valueChanged.connect(self.grow_box.range_changed)
        self.high.valueChanged.connect(self.grow_box.range_changed)
        self.overwrite.toggled.connect(lambda on: setattr(controller, "overwrite", bool(on)))
        controller.tool_changed.connect(self._tool_changed)
        session.label_layers_changed.connect(self.refresh)
        session.active_label_changed.connect(self.refresh)
        session.volume_changed.connect(self.refresh)
        self._watched = None
        self.refresh()

    # --- model -> widgets ---------------------------------------------------------------
    def refresh(self) -> None:
        maps = self.session.label_maps
        self.map_combo.blockSignals(True)
        self.map_combo.clear()
        self.map_combo.addItems([m.name for m in maps])
        if self.session.active_labels in maps:
            self.map_combo.setCurrentIndex(maps.index(self.session.active_labels))
        self.map_combo.blockSignals(False)
        labels = self.session.active_labels
        if self._watched is not labels:
            if self._watched is not None:
                self._watched.table_changed.disconnect(self.refresh_table)
            if labels is not None:
                labels.table_changed.connect(self.refresh_table)
            self._watched = labels
        self.refresh_table()

    def refresh_table(self) -> None:
        """Update the rows in place (items are reused: deleting them under a pending key or mouse
        event crashed PySide6 now and then)."""
        labels = self.session.active_labels
        rows = list(labels.table) if labels is not None else []
        self.table.blockSignals(True)
        self.table.setRowCount(len(rows))
        for row, lab in enumerate(rows):
            swatch, value, name, visible, locked, opacity = (self._cell(row, c) for c in range(len(COLUMNS)))
            swatch.setBackground(QtGui.QColor(*lab.colour))
            for item in (swatch, value):
                item.setFlags(Qt.ItemIsEnabled | Qt.ItemIsSelectable)
            value.setText(str(lab.value))
            name.setText(lab.name)
            for item, on in ((visible, lab.visible), (locked, lab.locked)):
                item.setFlags(Qt.ItemIsEnabled | Qt.ItemIsSelectable | Qt.ItemIsUserCheckable)
                item.setCheckState(Qt.Checked if on else Qt.Unchecked)
            opacity.setText(f"{lab.opacity:.2f}")
            if lab.value == self.session.active_value:
                self.table.selectRow(row)
        self.table.blockSignals(False)

    def _cell(self, row: int, col: int) -> QtWidgets.QTableWidgetItem:
        item = self.table.item(row, col)
        if item is None:
            item = QtWidgets.QTableWidgetItem("")
            self.table.setItem(row, col, item)
        return item

    def show_statistics(self, rows: list[dict]) -> None:
        self.stats.setRowCount(0)
        for r, s in enumerate(rows):
            self.stats.insertRow(r)
            size = s.get("volume_mm3") if s.get("volume_mm3") is not None else s.get("area_mm2")
            values = [s["label"], s["name"], s["voxels"], _fmt(size, ".1f"), _fmt(s["mean"], ".1f"),
                      _fmt(s["std"], ".1f"), _fmt(s["min"], ".6g"), _fmt(s["max"], ".6g")]
            for c, v in enumerate(values):
                self.stats.setItem(r, c, QtWidgets.QTableWidgetItem(str(v)))

    def _tool_changed(self, tool: str) -> None:
        for name, b in self.tool_buttons.items():
            b.setChecked(name == tool)

    # --- widgets -> model ---------------------------------------------------------------
    def _map_chosen(self, index: int) -> None:
        if 0 <= index < len(self.session.label_maps):
            self.session.set_active(self.session.label_maps[index])

    def _row_value(self, row: int) -> int | None:
        item = self.table.item(row, 1)
        return int(item.text()) if item is not None else None

    def _row_chosen(self) -> None:
        rows = {i.row() for i in self.table.selectedItems()}
        if rows:
            value = self._row_value(min(rows))
            if value is not None and value != self.session.active_value:
                self.session.active_value = value
                self.session.active_label_changed.emit()

    def _item_changed(self, item) -> None:
        labels = self.session.active_labels
        value = self._row_value(item.row())
        lab = labels.table.get(value) if labels is not None and value is not None else None
        if lab is None:
            return
        col = item.column()
        if col == 2:
            lab.name = item.text()
        elif col == 3:
            lab.visible = item.checkState() == Qt.Checked
        elif col == 4:
            lab.locked = item.checkState() == Qt.Checked
        elif col == 5:
            try:
                lab.opacity = min(1.0, max(0.0, float(item.text())))
            except ValueError:
                pass
        labels.table_changed.emit()

    def _pick_colour(self, row: int, col: int) -> None:
        labels = self.session.active_labels
        value = self._row_value(row)
        if col != 0 or labels is None or value is None:
            return
        colour = QtWidgets.QColorDialog.getColor(QtGui.QColor(*labels.table.get(value).colour), self)
        if colour.isValid():
            labels.table.get(value).colour = (colour.red(), colour.green(), colour.blue())
            labels.table_changed.emit()

    def _add_label(self) -> None:
        labels = self.session.ensure_labels()
        lab = labels.table.add()
        self.session.set_active(value=lab.value)
        labels.table_changed.emit()

    def _remove_label(self) -> None:
        labels = self.session.active_labels
        value = self.session.active_value
        if labels is None or labels.table.get(value) is None:
            return
        if labels.data.max() and (labels.data == value).any():
            labels.replace(value, 0)  # undoable; the table row goes with it
        labels.table.remove(value)
        remaining = [lab.value for lab in labels.table]
        self.session.set_active(value=remaining[0] if remaining else 1)
        labels.table_changed.emit()
