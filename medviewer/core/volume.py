"""The image data model: a voxel array with its physical geometry.

Conventions follow ITK/DICOM: world coordinates are LPS millimetres; the array is
indexed (z, y, x) (row-major, as ``SimpleITK.GetArrayFromImage`` returns it);
``spacing``, ``origin`` and the columns of ``direction`` are given in (x, y, z)
order, exactly like ``SimpleITK.Image.GetSpacing/GetOrigin/GetDirection``.
A 2D image is a volume with one slice; an RGB image has a trailing channel axis.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class Volume:
    data: np.ndarray  # (z, y, x) or (z, y, x, c) for RGB
    spacing: tuple[float, float, float] = (1.0, 1.0, 1.0)  # (x, y, z) mm
    origin: tuple[float, float, float] = (0.0, 0.0, 0.0)  # world position of voxel (0,0,0), LPS mm
    direction: np.ndarray = field(default_factory=lambda: np.eye(3))  # columns: x, y, z axes in LPS
    modality: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)
    # one slice (a PNG, a single DICOM slice, a one-slice file), shown in one view; written back
    # as 2D only without patient geometry (metadata 'oriented' False), else as one 3D slice
    is_2d: bool = False
    invert_display: bool = False  # MONOCHROME1: higher values are darker
    warnings: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        data = np.asarray(self.data)
        if data.ndim == 2:
            data = data[np.newaxis]
            self.is_2d = True
        if data.ndim not in (3, 4):
            raise ValueError(f"volume data must be 2D, 3D or 3D+channels, got shape {data.shape}")
        if data.ndim == 4 and data.shape[3] not in (3, 4):
            raise ValueError(f"channel axis must hold 3 (RGB) or 4 (RGBA) values, got {data.shape[3]}")
        self.data = data
        self.spacing = tuple(float(s) for s in self.spacing)
        self.origin = tuple(float(o) for o in self.origin)
        self.direction = np.asarray(self.direction, dtype=float).reshape(3, 3)
        if len(self.spacing) != 3 or len(self.origin) != 3:
            raise ValueError("spacing and origin need three values (x, y, z)")
        if any(s <= 0 for s in self.spacing):
            raise ValueError(f"spacing must be positive, got {self.spacing}")

    # --- shape -----------------------------------------------------------------
    @property
    def shape(self) -> tuple[int, int, int]:
        """(z, y, x) voxel counts."""
        return tuple(self.data.shape[:3])  # type: ignore[return-value]

    @property
    def size(self) -> tuple[int, int, int]:
        """(x, y, z) voxel counts, as ITK reports them."""
        z, y, x = self.shape
        return (x, y, z)

    @property
    def is_rgb(self) -> bool:
        return self.data.ndim == 4

    @property
    def nbytes(self) -> int:
        return int(self.data.nbytes)

    # --- geometry ----------------------------------------------------------------
    @property
    def spacing_known(self) -> bool:
        """Whether `spacing` came from the file (False for PNG/JPEG and DICOM without any pixel
        spacing, whose 1 mm is a placeholder: show lengths in pixels, no mm scale bar)."""
        return bool(self.metadata.get("spacing_known", True))

    @property
    def affine(self) -> np.ndarray:
        """4x4 matrix mapping a homogeneous (x, y, z, 1) index to LPS world mm."""
        m = np.eye(4)
        m[:3, :3] = self.direction @ np.diag(self.spacing)
        m[:3, 3] = self.origin
        return m

    def index_to_world(self, ijk: np.ndarray | tuple) -> np.ndarray:
        """(x, y, z) continuous index (one point or an (N, 3) array) -> LPS world mm."""
        ijk = np.asarray(ijk, dtype=float)
        return ijk @ (self.direction @ np.diag(self.spacing)).T + np.asarray(self.origin)

    def world_to_index(self, xyz: np.ndarray | tuple) -> np.ndarray:
        """LPS world mm (one point or an (N, 3) array) -> (x, y, z) continuous index."""
        xyz = np.asarray(xyz, dtype=float) - np.asarray(self.origin)
        inv = np.linalg.inv(self.direction @ np.diag(self.spacing))
        return xyz @ inv.T

    def contains_index(self, ijk) -> bool:
        ijk = np.round(np.asarray(ijk, dtype=float)).astype(int)
        return bool(np.all(ijk >= 0) and np.all(ijk < np.asarray(self.size)))

    def value_at(self, ijk) -> Any:
        """Voxel value at an (x, y, z) index (rounded to the nearest voxel)."""
        i, j, k = (int(round(float(v))) for v in ijk)
        return self.data[k, j, i]

    def orientation_code(self) -> str:
        """Three letters naming where each index axis points (ITK's 'LPS' style, e.g. 'LPS' for axial DICOM)."""
        letters = (("L", "R"), ("P", "A"), ("S", "I"))
        code = ""
        for col in self.direction.T:
            axis = int(np.argmax(np.abs(col)))
            code += letters[axis][0] if col[axis] > 0 else letters[axis][1]
        return code

    def copy_geometry(self, data: np.ndarray, **changes: Any) -> "Volume":
        """A new volume on the same grid (e.g. a label map or a processed image)."""
        kw = dict(spacing=self.spacing, origin=self.origin, direction=self.direction.copy(),
                  modality=self.modality, metadata=dict(self.metadata), is_2d=self.is_2d)
        kw.update(changes)
        return Volume(data=data, **kw)

    def describe(self) -> str:
        sx, sy, sz = self.size
        spacing = (f"spacing {tuple(round(s, 4) for s in self.spacing)} mm" if self.spacing_known
                   else "spacing unknown (pixels)")
        return f"{self.modality or 'image'} {sx}x{sy}x{sz} {self.data.dtype} {spacing}"
