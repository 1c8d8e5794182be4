"""Heat map layers: a float map on the image grid (probability, explanation or anomaly map) drawn
over the image through a colour map, with opacity and a threshold below which it is transparent.
Display settings go through set_display() (core.display_state); views redraw on display_changed."""
from __future__ import annotations

import numpy as np

from medviewer.core.colormaps import NAMES, colour_table
from medviewer.core.display_state import DisplayState


class HeatMap(DisplayState):
    DISPLAY_FIELDS = ("visible", "opacity", "colormap", "threshold", "vmin", "vmax", "name")

    def __init__(self, data: np.ndarray, name: str, colormap: str = "inferno", opacity: float = 0.5,
                 threshold: float = 0.2, vmin: float = 0.0, vmax: float = 1.0, kind: str = "map",
                 method: str = ""):
        """kind: "probability", "explanation", "anomaly" ...; method: what made it ("Grad-CAM",
        "occlusion", "anomaly map", "probability"), so that a newer map of the same method replaces
        the older one on screen (Session.add_heatmap)."""
        super().__init__(visible=True, opacity=opacity)
        self.data = np.ascontiguousarray(data, dtype=np.float32)
        if self.data.ndim != 3:
            raise ValueError(f"a heat map is (z, y, x), got shape {self.data.shape}")
        self.name, self.kind, self.method = name, kind, method
        self.colormap = self._checked("colormap", colormap)
        self.threshold, self.vmin, self.vmax = float(threshold), float(vmin), float(vmax)

    def _checked(self, key: str, value):
        if key == "colormap" and value not in NAMES:
            raise ValueError(f"unknown colour map {value!r}")
        if key in ("threshold", "vmin", "vmax"):
            return float(value)
        return super()._checked(key, value)

    def indices(self, plane: np.ndarray) -> np.ndarray:
        """uint8 colour-table indices of map values (0 = lowest)."""
        span = max(self.vmax - self.vmin, 1e-12)
        return np.clip((plane - self.vmin) * (255.0 / span), 0, 255).astype(np.uint8)

    def lut(self) -> np.ndarray:
        """(256, 4) RGBA table for indices(): the colour map, transparent below the threshold and
        fading in above it, so weak evidence stays faint."""
        table = np.zeros((256, 4), np.uint8)
        table[:, :3] = colour_table(self.colormap)
        if not self.visible:
            return table
        values = self.vmin + (self.vmax - self.vmin) * np.arange(256) / 255.0
        span = max(self.vmax - self.threshold, 1e-12)
        ramp = np.clip(0.35 + 0.65 * (values - self.threshold) / span, 0, 1)
        table[:, 3] = np.where(values >= self.threshold, np.round(255 * self.opacity * ramp), 0).astype(np.uint8)
        return table
