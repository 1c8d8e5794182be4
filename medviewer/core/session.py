"""What the reader is looking at: the image, the cursor, the window, measurements (no Qt).

Views subscribe to the events and redraw; tools and the command line change the session.
"""
from __future__ import annotations

import numpy as np

from medviewer.core.display import Window, auto_window, default_window, preset
from medviewer.core.display_state import ImageDisplay
from medviewer.core.events import Event
from medviewer.core.fusion import Fusion
from medviewer.core.heatmap import HeatMap
from medviewer.core.labels import LabelMap
from medviewer.core.measurements import Measurement
from medviewer.core.oblique import MprPlanes
from medviewer.core.volume import Volume


def same_grid(a: Volume, b: Volume, tolerance_mm: float = 1e-3) -> bool:
    """Whether two volumes share one voxel grid (shape, spacing, origin, direction): a label map
    drawn on one lies on the same voxels of the other."""
    def close(u, v, tolerance):
        return float(np.max(np.abs(np.subtract(u, v)))) <= tolerance

    return (a.data.shape == b.data.shape and close(a.spacing, b.spacing, 1e-6)
            and close(a.origin, b.origin, tolerance_mm) and close(a.direction, b.direction, 1e-6))


class Session:
    def __init__(self) -> None:
        self.volume: Volume | None = None
        self.source_id: str = ""
        self.title: str = ""  # what a reader calls the image: "T1 MPRAGE (series 3)", a file name
        self.cursor = np.zeros(3, dtype=int)  # (x, y, z) voxel index
        self.window = Window(400.0, 40.0)
        self.invert = False
        self.measurements: list[Measurement] = []
        self.volume_changed = Event()  # ()
        self.image_replaced = Event()  # () another volume of the same acquisition, same grid
        self.cursor_changed = Event()  # (cursor)
        self.window_changed = Event()  # (window, invert)
        self.measurements_changed = Event()  # ()
        self.label_maps: list[LabelMap] = []
        self.active_labels: LabelMap | None = None
        self.active_value = 1
        self.label_layers_changed = Event()  # () label maps added or removed
        self.active_label_changed = Event()  # () the active map or label value changed
        self.heatmaps: list[HeatMap] = []
        self.heatmaps_changed = Event()  # () heat map layers added or removed
        self.image_display = ImageDisplay()  # the image layer's visibility and opacity
        self.preview: tuple | None = None  # (region, mask): what a tool would paint if accepted
        self.preview_changed = Event()  # ()
        self.planes = MprPlanes()  # rotation of the MPR planes about the crosshair (oblique MPR)
        self.fusion = Fusion(lambda: self.volume)  # another image fused over this one (core/fusion.py)

    # --- image --------------------------------------------------------------------
    def set_volume(self, volume: Volume, source_id: str = "",
                   measurements: list[Measurement] | None = None, title: str = "") -> None:
        self.volume = volume
        self.source_id = source_id
        self.title = title or source_id
        self.cursor = np.array([s // 2 for s in volume.size], dtype=int)
        self.window = self._default_window(volume)
        self.invert = bool(volume.invert_display)
        self.measurements = list(measurements or [])
        self.label_maps = []
        self.active_labels = None
        self.heatmaps = []
        self.image_display.set_display(visible=True, opacity=1.0)  # a new image is shown
        self.preview = None
        self.planes.reset()  # a new image opens on its voxel grid
        self.fusion.clear()  # what was fused over the previous image is not over this one
        self.volume_changed.emit()
        self.label_layers_changed.emit()  # the previous image's label maps are gone
        self.heatmaps_changed.emit()
        self.window_changed.emit(self.window, self.invert)
        self.cursor_changed.emit(self.cursor)
        self.measurements_changed.emit()

    def replace_image(self, volume: Volume, source_id: str = "") -> None:
        """Show another volume of the same acquisition (a time point, a diffusion direction, an
        echo) on the same voxel grid: the cursor, window, labels, heat maps and measurements stay."""
        if self.volume is None or not same_grid(volume, self.volume):
            raise ValueError("the new volume is not on the voxel grid of the image shown")
        self.volume = volume
        self.source_id = source_id or self.source_id
        self.image_replaced.emit()
        self.cursor_changed.emit(self.cursor)  # the value under the cursor has changed

    @staticmethod
    def _default_window(volume: Volume) -> Window:
        if volume.is_rgb:
            return Window(255.0, 127.5)
        return default_window(volume.data, volume.modality, volume.metadata)

    # --- cursor -------------------------------------------------------------------
    def set_cursor(self, ijk) -> None:
        if self.volume is None:
            return
        new = np.clip(np.round(np.asarray(ijk, dtype=float)).astype(int), 0, np.asarray(self.volume.size) - 1)
        if not np.array_equal(new, self.cursor):
            self.cursor = new
            self.cursor_changed.emit(self.cursor)

    def move_along(self, axis: int, delta: int) -> None:
        """Scroll: move the cursor by delta slices along an index axis."""
        ijk = self.cursor.copy()
        ijk[axis] += delta
        self.set_cursor(ijk)

    def probe(self, ijk=None) -> dict:
        """What the status bar shows: voxel index, world position (mm) and value."""
        if self.volume is None:
            return {}
        ijk = self.cursor if ijk is None else np.asarray(ijk)
        inside = self.volume.contains_index(ijk)
        value = self.volume.value_at(ijk) if inside else None
        return {"index": tuple(int(round(float(v))) for v in ijk),
                "world": tuple(float(v) for v in self.volume.index_to_world(ijk)),
                "value": value, "inside": inside,
                "unit": "HU" if self.volume.modality == "CT" and not self.volume.is_rgb else ""}

    # --- window -------------------------------------------------------------------
    def set_window(self, window: Window) -> None:
        self.window = window
        self.window_changed.emit(self.window, self.invert)

    def apply_preset(self, name: str) -> None:
        if name == "auto":
            self.set_window(auto_window(self.volume.data) if self.volume is not None else self.window)
        else:
            self.set_window(preset(name))

    def set_invert(self, invert: bool) -> None:
        self.invert = bool(invert)
        self.window_changed.emit(self.window, self.invert)

    # --- label maps -------------------------------------------------------------------
    def add_label_map(self, labels: LabelMap | None = None, name: str | None = None) -> LabelMap:
        """Add (or create, empty, on the image grid) a label map and make it active."""
        if self.volume is None:
            raise ValueError("open an image before adding labels")
        if labels is None:  # a new, empty map keeps the label the user has chosen
            labels = LabelMap(self.volume.shape, name or f"Labels {len(self.label_maps) + 1}")
            labels.table.add(value=self.active_value or 1)
        elif labels.data.shape != self.volume.shape:
            raise ValueError(f"label map shape {labels.data.shape} does not match the image {self.volume.shape}")
        else:
            values = [lab.value for lab in labels.table]
            self.active_value = values[0] if values else 1
        self.label_maps.append(labels)
        self.active_labels = labels
        self.label_layers_changed.emit()
        return labels

    def remove_label_map(self, labels: LabelMap) -> None:
        self.label_maps = [m for m in self.label_maps if m is not labels]
        if self.active_labels is labels:
            self.active_labels = self.label_maps[-1] if self.label_maps else None
        self.label_layers_changed.emit()

    def set_active(self, labels: LabelMap | None = None, value: int | None = None) -> None:
        if labels is not None:
            self.active_labels = labels
        if value is not None:
            self.active_value = int(value)
            if self.active_labels is not None and value and self.active_labels.table.get(value) is None:
                self.active_labels.table.add(value=value)
                self.active_labels.table_changed.emit()
        self.active_label_changed.emit()

    def ensure_labels(self) -> LabelMap:
        """The active label map, created on first use (a first stroke needs somewhere to go)."""
        return self.active_labels if self.active_labels is not None else self.add_label_map()

    # --- a tool's preview (region growing) ---------------------------------------------------
    def set_preview(self, region=None, mask=None) -> None:
        """Show what a tool would paint ((z, y, x) slices and a bool mask shaped like
        data[region]); no arguments clears it. Nothing is painted until the tool commits it."""
        self.preview = None if region is None or mask is None or not np.any(mask) else (region, mask)
        self.preview_changed.emit()

    # --- heat maps -------------------------------------------------------------------------
    def add_heatmap(self, heatmap: HeatMap, replace: bool = True) -> HeatMap:
        """Show a heat map over the image. A map of the same name or the same method (a newer
        Grad-CAM replaces the previous Grad-CAM, an anomaly map the previous anomaly map) is taken
        off the screen rather than piled under the new one; the AI panel's history can show it
        again. replace=False keeps them all."""
        if self.volume is None:
            raise ValueError("open an image before adding a heat map")
        if heatmap.data.shape != self.volume.shape:
            raise ValueError(f"heat map shape {heatmap.data.shape} does not match the image {self.volume.shape}")
        if replace:
            self.heatmaps = [h for h in self.heatmaps if h.name != heatmap.name
                             and not (heatmap.method and h.method == heatmap.method)]
        self.heatmaps.append(heatmap)
        self.heatmaps_changed.emit()
        return heatmap

    def remove_heatmap(self, heatmap: HeatMap) -> None:
        self.heatmaps = [h for h in self.heatmaps if h is not heatmap]
        self.heatmaps_changed.emit()

    # --- measurements -------------------------------------------------------------
    def add_measurement(self, m: Measurement) -> None:
        self.measurements.append(m)
        self.measurements_changed.emit()

    def remove_measurement(self, measurement_id: int) -> None:
        self.measurements = [m for m in self.measurements if m.id != measurement_id]
        self.measurements_changed.emit()
