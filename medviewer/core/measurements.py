"""Distance and angle measurements in world millimetres (numpy only). On an image whose pixel
spacing is unknown (a JPEG, a DICOM without PixelSpacing) the "millimetres" are pixels, and a
distance says so (``calibrated=False``: "px", not "mm")."""
from __future__ import annotations

from dataclasses import dataclass, field
from itertools import count

import numpy as np

_ids = count(1)


@dataclass
class Measurement:
    kind: str  # "distance" (2 points) or "angle" (3 points, the vertex in the middle)
    points: np.ndarray  # (N, 3) LPS world mm
    plane: str = ""
    slice_index: int = -1
    id: int = field(default_factory=lambda: next(_ids))
    calibrated: bool = True  # False: the image has no pixel spacing, a distance is in pixels

    def __post_init__(self) -> None:
        self.points = np.asarray(self.points, dtype=float).reshape(-1, 3)
        need = {"distance": 2, "angle": 3}.get(self.kind)
        if need is None:
            raise ValueError(f"unknown measurement kind {self.kind!r}")
        if len(self.points) != need:
            raise ValueError(f"a {self.kind} needs {need} points, got {len(self.points)}")

    @property
    def value(self) -> float:
        p = self.points
        if self.kind == "distance":
            return float(np.linalg.norm(p[1] - p[0]))
        a, b = p[0] - p[1], p[2] - p[1]
        na, nb = np.linalg.norm(a), np.linalg.norm(b)
        if na == 0 or nb == 0:
            return 0.0
        return float(np.degrees(np.arccos(np.clip(np.dot(a, b) / (na * nb), -1.0, 1.0))))

    @property
    def unit(self) -> str:
        if self.kind == "angle":
            return "°"
        return "mm" if self.calibrated else "px"

    def label(self) -> str:
        return f"{self.value:.1f} {self.unit}"

    def to_dict(self) -> dict:
        return {"kind": self.kind, "points": self.points.tolist(), "plane": self.plane,
                "slice_index": self.slice_index, "value": self.value, "unit": self.unit,
                "calibrated": self.calibrated}

    @classmethod
    def from_dict(cls, d: dict) -> "Measurement":
        return cls(kind=d["kind"], points=np.asarray(d["points"]), plane=d.get("plane", ""),
                   slice_index=int(d.get("slice_index", -1)), calibrated=bool(d.get("calibrated", True)))
