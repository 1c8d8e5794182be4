"""Colour maps for heat maps (probability, explanation and anomaly maps), as 256-entry RGB tables.

Piecewise-linear through published control points (matplotlib's viridis/inferno samples, the
classic jet and hot); shared by the viewer's heat map layers and the PNG overlays written by the
command line, so both show a map the same way.
"""
from __future__ import annotations

import numpy as np

from medviewer.core.errors import MedViewerError

_POINTS = {
    "inferno": [(0, 0, 4), (40, 11, 84), (101, 21, 110), (159, 42, 99), (212, 72, 66), (245, 125, 21),
                (250, 193, 39), (252, 255, 164)],
    "viridis": [(68, 1, 84), (59, 82, 139), (33, 145, 140), (94, 201, 98), (253, 231, 37)],
    "jet": [(0, 0, 128), (0, 0, 255), (0, 255, 255), (255, 255, 0), (255, 0, 0), (128, 0, 0)],
    "hot": [(0, 0, 0), (230, 0, 0), (255, 210, 0), (255, 255, 255)],
}
NAMES = tuple(_POINTS)


def colour_table(name: str, n: int = 256) -> np.ndarray:
    """(n, 3) uint8 RGB from the low to the high end of the map."""
    if name not in _POINTS:
        raise MedViewerError(f"unknown colour map {name!r}; use one of {', '.join(NAMES)}")
    points = np.array(_POINTS[name], float)
    at = np.linspace(0, 1, len(points))
    x = np.linspace(0, 1, n)
    return np.stack([np.interp(x, at, points[:, c]) for c in range(3)], -1).round().astype(np.uint8)


def heat_rgba(values: np.ndarray, name: str = "inferno", threshold: float = 0.0, opacity: float = 0.6,
              vmin: float = 0.0, vmax: float = 1.0) -> np.ndarray:
    """RGBA uint8 for an array of map values: the colour of each value, transparent below threshold."""
    table = colour_table(name)
    span = max(vmax - vmin, 1e-12)
    idx = np.clip(((np.asarray(values, float) - vmin) / span * 255).round(), 0, 255).astype(np.uint8)
    rgba = np.empty(idx.shape + (4,), np.uint8)
    rgba[..., :3] = table[idx]
    rgba[..., 3] = np.where(np.asarray(values) >= threshold, int(round(255 * opacity)), 0)
    return rgba
