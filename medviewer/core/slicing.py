"""Axial, coronal and sagittal planes of a volume, oriented as radiology viewers show them.

Radiological convention (Slicer, OHIF, ITK-SNAP): the patient's right is on the screen's left;
axial views are seen from the feet with anterior up, coronal from the front with superior up,
sagittal from the patient's left with anterior on the screen's left. Which index axis plays which
role is read from the direction cosines, so sagittal or coronal acquisitions show correctly too.
"""
from __future__ import annotations

from dataclasses import dataclass
from itertools import permutations

import numpy as np

from medviewer.core.volume import Volume

PLANES = ("axial", "coronal", "sagittal")
# world axes in LPS: 0 = x (towards Left), 1 = y (towards Posterior), 2 = z (towards Superior)
_PLANE_AXES = {  # plane: (normal world axis, horizontal world axis, vertical world axis)
    "axial": (2, 0, 1),
    "coronal": (1, 0, 2),
    "sagittal": (0, 1, 2),
}
# screen direction wanted for increasing world coordinate: +1 = rightwards/downwards
_SCREEN_SIGN = {
    "axial": (+1, +1),  # right = L, down = P
    "coronal": (+1, -1),  # right = L, down = I
    "sagittal": (+1, -1),  # right = P, down = I
}
_LETTERS = {0: ("R", "L"), 1: ("A", "P"), 2: ("I", "S")}  # (negative end, positive end)


def world_axis_of_index_axes(direction: np.ndarray) -> tuple[int, int, int]:
    """For index axes (x, y, z), the world axis each is most aligned with (a permutation)."""
    a = np.abs(np.asarray(direction, dtype=float))
    best = max(permutations(range(3)), key=lambda p: sum(a[p[i], i] for i in range(3)))
    return tuple(int(v) for v in best)  # type: ignore[return-value]


@dataclass(frozen=True)
class PlaneGeometry:
    plane: str
    normal_axis: int  # index axis (0 = x, 1 = y, 2 = z) fixed by the plane
    h_axis: int  # index axis along the screen's horizontal
    v_axis: int  # index axis along the screen's vertical, top to bottom
    h_flip: bool  # screen left-to-right runs towards decreasing index
    v_flip: bool
    h_spacing: float
    v_spacing: float
    n_h: int
    n_v: int
    n_slices: int
    labels: tuple[str, str, str, str]  # left, right, top, bottom

    def slice(self, data: np.ndarray, k: int) -> np.ndarray:
        """The 2D (rows = vertical, columns = horizontal) view of slice k; no copy."""
        k = int(np.clip(k, 0, self.n_slices - 1))
        index = [slice(None)] * data.ndim
        index[2 - self.normal_axis] = k  # numpy axes are (z, y, x); basic indexing gives a view
        plane = data[tuple(index)]
        remaining = [a for a in (2, 1, 0) if a != self.normal_axis]  # index axes in numpy order
        if remaining[0] != self.v_axis:
            plane = np.swapaxes(plane, 0, 1)
        if self.v_flip:
            plane = plane[::-1]
        if self.h_flip:
            plane = plane[:, ::-1]
        return plane

    def box_slice(self, shape_zyx, region, mask: np.ndarray, k: int) -> np.ndarray | None:
        """Slice k (as slice() gives it) of a volume of `shape_zyx` that holds `mask` in the box
        `region` ((z, y, x) slices) and zeros elsewhere, without making that volume; None when
        slice k misses the box."""
        axis = 2 - self.normal_axis
        span = region[axis]
        if not span.start <= k < span.stop:
            return None
        shape = list(shape_zyx)
        shape[axis] = 1
        plane = np.zeros(shape, np.uint8)
        box = list(region)
        box[axis] = slice(0, 1)
        plane[tuple(box)] = np.take(mask, [k - span.start], axis=axis)
        return self.slice(plane, 0)

    def index_from_pixel(self, col: float, row: float, k: float) -> np.ndarray:
        """(x, y, z) voxel index of screen pixel (col, row) on slice k."""
        ijk = np.zeros(3)
        ijk[self.h_axis] = (self.n_h - 1 - col) if self.h_flip else col
        ijk[self.v_axis] = (self.n_v - 1 - row) if self.v_flip else row
        ijk[self.normal_axis] = k
        return ijk

    def pixel_from_index(self, ijk) -> tuple[float, float, float]:
        """(col, row, slice) of an (x, y, z) voxel index."""
        col = float(ijk[self.h_axis])
        row = float(ijk[self.v_axis])
        if self.h_flip:
            col = self.n_h - 1 - col
        if self.v_flip:
            row = self.n_v - 1 - row
        return col, row, float(ijk[self.normal_axis])

    @property
    def extent_mm(self) -> tuple[float, float]:
        return self.n_h * self.h_spacing, self.n_v * self.v_spacing


def plane_geometry(volume: Volume, plane: str) -> PlaneGeometry:
    if plane not in _PLANE_AXES:
        raise ValueError(f"unknown plane {plane!r}; use one of {PLANES}")
    world_of = world_axis_of_index_axes(volume.direction)  # index axis -> world axis
    index_of = {w: i for i, w in enumerate(world_of)}  # world axis -> index axis
    normal_w, h_w, v_w = _PLANE_AXES[plane]
    h_sign, v_sign = _SCREEN_SIGN[plane]
    n_axis, h_axis, v_axis = index_of[normal_w], index_of[h_w], index_of[v_w]
    d = volume.direction
    h_flip = np.sign(d[h_w, h_axis]) * h_sign < 0
    v_flip = np.sign(d[v_w, v_axis]) * v_sign < 0
    size = volume.size
    neg_h, pos_h = _LETTERS[h_w]
    neg_v, pos_v = _LETTERS[v_w]
    left, right = (neg_h, pos_h) if h_sign > 0 else (pos_h, neg_h)
    top, bottom = (neg_v, pos_v) if v_sign > 0 else (pos_v, neg_v)
    return PlaneGeometry(
        plane=plane, normal_axis=n_axis, h_axis=h_axis, v_axis=v_axis, h_flip=bool(h_flip),
        v_flip=bool(v_flip), h_spacing=volume.spacing[h_axis], v_spacing=volume.spacing[v_axis],
        n_h=size[h_axis], n_v=size[v_axis], n_slices=size[n_axis], labels=(left, right, top, bottom))
