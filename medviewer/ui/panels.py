"""Small docked panels: layers and measurements."""
from __future__ import annotations

from medviewer.core.session import Session
from medviewer.ui import hand_over
from medviewer.ui.list_rows import list_rows
from medviewer.ui.qt import Qt, QtWidgets


class LayerPanel(QtWidgets.QWidget):
    """The layers drawn in the views, top first, each with visibility and opacity.

    The image, the label maps and the heat maps (probability, explanation and anomaly maps). The
    check boxes and the slider only mirror each layer's own DisplayState (core.display_state):
    they set it, and follow it when the AI panel or a script changes it, so a rebuilt list (a
    layer added) shows what the views show."""

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
        self._layers: list = []  # the DisplayState of each row, top row first
        self.list.itemChanged.connect(self._visibility_changed)
        self.opacity.valueChanged.connect(self._opacity_changed)
        self.list.currentRowChanged.connect(self._current_changed)
        for event in (session.volume_changed, session.label_layers_changed, session.heatmaps_changed):
            event.connect(self._schedule_reset)

    def _schedule_reset(self) -> None:
        """Rebuild after the current event (a first brush stroke adds a layer mid mouse event)."""
        hand_over.soon(self._reset, owner=self)

    def layers(self) -> list:
        """(name, DisplayState) per row, top first."""
        return [(self.list.item(row).text(), layer) for row, layer in enumerate(self._layers)]

    def _reset(self) -> None:
        for layer in self._layers:
            layer.display_changed.disconnect(self._mirror)
        session = self.session
        # drawing order, top first: label maps over heat maps over the image
        rows = [(f"Labels: {m.name}", m) for m in reversed(session.label_maps)]
        rows += [(f"Heat map: {h.name}", h) for h in reversed(session.heatmaps)]
        if session.volume is not None:
            rows.append((f"Image: {session.title}", session.image_display))
        self._layers = [layer for _, layer in rows]
        for layer in self._layers:
            layer.display_changed.connect(self._mirror)
        self.list.blockSignals(True)
        for (name, _layer), item in zip(rows, list_rows(self.list, len(rows))):
            item.setFlags(item.flags() | Qt.ItemIsUserCheckable)
            item.setText(name)
        self.list.blockSignals(False)
        self._mirror()
        if rows:
            self.list.setCurrentRow(0)

    def _mirror(self) -> None:
        """Check boxes and slider follow the layers' state."""
        self.list.blockSignals(True)
        for row, layer in enumerate(self._layers):
            self.list.item(row).setCheckState(Qt.Checked if layer.visible else Qt.Unchecked)
        self.list.blockSignals(False)
        self._current_changed(self.list.currentRow())

    def _layer_at(self, row: int):
        return self._layers[row] if 0 <= row < len(self._layers) else None

    def _visibility_changed(self, item) -> None:
        layer = self._layer_at(self.list.row(item))
        if layer is not None:
            layer.set_display(visible=item.checkState() == Qt.Checked)

    def _current_changed(self, row: int) -> None:
        layer = self._layer_at(row)
        if layer is not None:
            self.opacity.blockSignals(True)
            self.opacity.setValue(round(layer.opacity * 100))
            self.opacity.blockSignals(False)

    def _opacity_changed(self, value: int) -> None:
        layer = self._layer_at(self.list.currentRow())
        if layer is not None:
            layer.set_display(opacity=value / 100.0)


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
        """Rows are updated in place (ui.list_rows)."""
        ms = self.session.measurements
        for m, item in zip(ms, list_rows(self.list, len(ms))):
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
