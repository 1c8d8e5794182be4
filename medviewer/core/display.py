"""Window/level: the radiology presets and automatic windows (numpy only)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from medviewer.core.errors import MedViewerError


class UnknownPreset(MedViewerError, KeyError):
    pass

# (width, level) in HU, the values radiology viewers ship (Slicer, OHIF, Horos)
CT_PRESETS: dict[str, tuple[float, float]] = {
    "brain": (80.0, 40.0),
    "subdural": (250.0, 75.0),
    "stroke": (40.0, 40.0),
    "lung": (1500.0, -600.0),
    "mediastinum": (350.0, 50.0),
    "abdomen": (400.0, 50.0),  # soft tissue
    "liver": (150.0, 30.0),
    "bone": (1800.0, 400.0),
}
ALIASES = {"soft-tissue": "abdomen", "soft_tissue": "abdomen", "soft": "abdomen"}


@dataclass
class Window:
    width: float
    level: float

    @property
    def low(self) -> float:
        return self.level - self.width / 2.0

    @property
    def high(self) -> float:
        return self.level + self.width / 2.0

    def adjusted(self, dwidth: float, dlevel: float, minimum_width: float = 1e-3) -> "Window":
        return Window(max(minimum_width, self.width + dwidth), self.level + dlevel)


def preset(name: str) -> Window:
    key = ALIASES.get(name.lower(), name.lower())
    if key not in CT_PRESETS:
        raise UnknownPreset(f"unknown window preset {name!r}; choose from {', '.join(CT_PRESETS)}")
    return Window(*CT_PRESETS[key])


def auto_window(data: np.ndarray, low_pct: float = 1.0, high_pct: float = 99.0,
                max_samples: int = 2_000_000) -> Window:
    """Percentile window for MR, X-ray and other uncalibrated images (ITK-SNAP/napari style)."""
    flat = np.asarray(data).ravel()
    if flat.size > max_samples:  # a strided sample is enough for percentiles and keeps it fast
        flat = flat[:: flat.size // max_samples + 1]
    flat = flat[np.isfinite(flat)] if flat.dtype.kind == "f" else flat
    if flat.size == 0:
        return Window(1.0, 0.5)
    lo, hi = np.percentile(flat, [low_pct, high_pct])
    if hi <= lo:
        lo, hi = float(flat.min()), float(flat.max())
    if hi <= lo:
        hi = lo + 1.0
    return Window(float(hi - lo), float((hi + lo) / 2.0))


def default_window(data: np.ndarray, modality: str, metadata: dict | None = None) -> Window:
    """CT opens in a soft-tissue window; MR in a window from its own histogram (the 1st-99th
    percentiles: an MR header's window often spans the scanner's whole range, which shows a dark,
    flat image, and MR values are not calibrated anyway, as ITK-SNAP and Slicer do); other images
    in the file's own window when it has one, else a percentile one."""
    metadata = metadata or {}
    if modality == "CT":
        return preset("abdomen")
    if modality == "MR":
        return auto_window(data)
    if "WindowWidth" in metadata and "WindowCenter" in metadata and metadata["WindowWidth"] > 0:
        return Window(float(metadata["WindowWidth"]), float(metadata["WindowCenter"]))
    return auto_window(data)
