"""Small docked panels: layers and measurements."""
from __future__ import annotations

from medviewer.core.session import Session
from medviewer.ui.qt import Qt, QtCore, QtWidgets


class LayerPanel(QtWidgets.QWidget):
    """The layers drawn in the views, top first, each with visibility and opacity.

    The image, the label maps and the heat maps (probability, explanation and anomaly maps; their
    visibility and opacity are the heat map's own settings, shared with the AI panel)."""

    def __init__(self, session: Session, grid, parent=None):
        super().__init__(parent)
        self.session, self.grid = session, grid
        self.list = QtWidgets.QListWidget()
        self.opacity = QtWidgets.QSlider(Qt.Horizontal)
        self.opacity.setRange(0, 100)
        self.opacity.setValue(100)
        layout = QtWidgets.QVBoxLayout(self)
        layout.addWidget(self.list)
        row = QtWidgets.QHBoxLayout()
        row.addWidget(QtWidgets.QLabel("Opacity"))
        row.addWidget(self.opacity)
        layout.addLayout(row)
        self._layers: dict[str, list] = {}  # name -> image items in every view
        self._heatmaps: dict[str, object] = {}  # name -> HeatMap
        self.list.itemChanged.connect(self._visibility_changed)
        self.opacity.valueChanged.connect(self._opacity_changed)
        self.list.currentItemChanged.connect(self._current_changed)
        session.volume_changed.connect(self._schedule_reset)
        session.label_layers_changed.connect(self._schedule_reset)
        session.heatmaps_changed.connect(self._schedule_reset)
        self._reset_pending = False

    def _schedule_reset(self) -> None:
        """Rebuild after the current event (a first brush stroke adds a layer mid mouse event;
        deleting list items under a pending event is what crashed PySide6 now and then)."""
        if not self._reset_pending:
            self._reset_pending = True
            QtCore.QTimer.singleShot(0, self._reset)

    def _reset(self) -> None:
        self._reset_pending = False
        self.list.blockSignals(True)
        self.list.clear()
        self._layers.clear()
        self._heatmaps.clear()
        self.list.blockSignals(False)
        self.add_layer(f"Image: {self.session.source_id}", [v.image_item for v in self.grid.views.values()])
        for labels in self.session.label_maps:
            items = [item for v in self.grid.views.values() for lm, item, _ in v._layer_items if lm is labels]
            self.add_layer(f"Labels: {labels.name}", items)
        for heatmap in self.session.heatmaps:
            name = f"Heat map: {heatmap.name}"
            self._heatmaps[name] = heatmap
            self.add_layer(name, [], checked=heatmap.visible)

    def add_layer(self, name: str, items: list, checked: bool | None = None) -> None:
        item = QtWidgets.QListWidgetItem(name)
        item.setFlags(item.flags() | Qt.ItemIsUserCheckable)
        if checked is None:
            checked = all(i.isVisible() for i in items)
        item.setCheckState(Qt.Checked if checked else Qt.Unchecked)
        self.list.blockSignals(True)
        self.list.insertItem(0, item)
        self.list.blockSignals(False)
        self._layers[name] = items
        self.list.setCurrentItem(item)

    def _visibility_changed(self, item) -> None:
        heatmap = self._heatmaps.get(item.text())
        if heatmap is not None:
            heatmap.set(visible=item.checkState() == Qt.Checked)
            return
        for gi in self._layers.get(item.text(), []):
            gi.setVisible(item.checkState() == Qt.Checked)

    def _current_changed(self, item, _previous) -> None:
        heatmap = self._heatmaps.get(item.text()) if item is not None else None
        if heatmap is not None:
            self.opacity.blockSignals(True)
            self.opacity.setValue(round(heatmap.opacity * 100))
            self.opacity.blockSignals(False)
        elif item is not None and self._layers.get(item.text()):
            self.opacity.blockSignals(True)
            self.opacity.setValue(round(self._layers[item.text()][0].opacity() * 100))
            self.opacity.blockSignals(False)

    def _opacity_changed(self, value: int) -> None:
        item = self.list.currentItem()
        if item is not None:
            heatmap = self._heatmaps.get(item.text())
            if heatmap is not None:
                heatmap.set(opacity=value / 100.0)
                return
            for gi in self._layers.get(item.text(), []):
                gi.setOpacity(value / 100.0)


class MeasurementPanel(QtWidgets.QWidget):
    """Every distance and angle of this image; select to jump there, Delete to remove."""

    def __init__(self, session: Session, grid, parent=None):
        super().__init__(parent)
        self.session, self.grid = session, grid
        self.list = QtWidgets.QListWidget()
        self.delete_button = QtWidgets.QPushButton("Delete")
        layout = QtWidgets.QVBoxLayout(self)
        layout.addWidget(self.list)
        layout.addWidget(self.delete_button)
        self.delete_button.clicked.connect(self.delete_selected)
        self.list.itemDoubleClicked.connect(self._jump)
        session.measurements_changed.connect(self.refresh)

    def refresh(self) -> None:
        """Rows are updated in place; only surplus rows are removed (see AnnotationPanel)."""
        ms = self.session.measurements
        while self.list.count() > len(ms):
            self.list.takeItem(self.list.count() - 1)
        for row, m in enumerate(ms):
            item = self.list.item(row)
            if item is None:
                item = QtWidgets.QListWidgetItem()
                self.list.addItem(item)
            item.setText(f"{m.kind.capitalize()} {m.label()}  ({m.plane} {m.slice_index + 1})")
            item.setData(Qt.UserRole, m.id)

    def delete_selected(self) -> None:
        item = self.list.currentItem()
        if item is not None:
            self.session.remove_measurement(item.data(Qt.UserRole))

    def _jump(self, item) -> None:
        m = next((m for m in self.session.measurements if m.id == item.data(Qt.UserRole)), None)
        if m is not None and m.plane in self.grid.views:
            self.grid.views[m.plane].set_slice(m.slice_index)

    def keyPressEvent(self, ev) -> None:
        if ev.key() in (Qt.Key_Delete, Qt.Key_Backspace):
            self.delete_selected()
        else:
            super().keyPressEvent(ev)
