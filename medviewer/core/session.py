"""What the reader is looking at: the image, the cursor, the window, measurements (no Qt).

Views subscribe to the events and redraw; tools and the command line change the session.
"""
from __future__ import annotations

import numpy as np

from medviewer.core.display import Window, auto_window, default_window, preset
from medviewer.core.events import Event
from medviewer.core.measurements import Measurement
from medviewer.core.volume import Volume


class Session:
    def __init__(self) -> None:
        self.volume: Volume | None = None
        self.source_id: str = ""
        self.cursor = np.zeros(3, dtype=int)  # (x, y, z) voxel index
        self.window = Window(400.0, 40.0)
        self.invert = False
        self.measurements: list[Measurement] = []
        self.volume_changed = Event()  # ()
        self.cursor_changed = Event()  # (cursor)
        self.window_changed = Event()  # (window, invert)
        self.measurements_changed = Event()  # ()

    # --- image --------------------------------------------------------------------
    def set_volume(self, volume: Volume, source_id: str = "",
                   measurements: list[Measurement] | None = None) -> None:
        self.volume = volume
        self.source_id = source_id
        self.cursor = np.array([s // 2 for s in volume.size], dtype=int)
        self.window = self._default_window(volume)
        self.invert = bool(volume.invert_display)
        self.measurements = list(measurements or [])
        self.volume_changed.emit()
        self.window_changed.emit(self.window, self.invert)
        self.cursor_changed.emit(self.cursor)
        self.measurements_changed.emit()

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

    # --- measurements -------------------------------------------------------------
    def add_measurement(self, m: Measurement) -> None:
        self.measurements.append(m)
        self.measurements_changed.emit()

    def remove_measurement(self, measurement_id: int) -> None:
        self.measurements = [m for m in self.measurements if m.id != measurement_id]
        self.measurements_changed.emit()
