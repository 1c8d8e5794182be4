"""Oblique MPR: the three slice planes turned about the crosshair, resliced by interpolation.

Unrotated, a view shows the voxel grid (core/slicing.py): for an oblique acquisition that is
the acquisition's own axes, without staircase. ``MprPlanes`` holds one rotation (3x3, world LPS)
per view plane; a rotate gesture in one view turns the *other two* planes about that view's
normal (Slicer's slice-intersection rotation), so the three planes stay perpendicular. A rotated
view is an ``ObliquePlane``: screen right ``r``, screen down ``d`` and normal ``n`` (orthonormal,
world), pixels of the smallest voxel spacing, covering the whole volume. View coordinates (x, y)
in mm and the plane offset ``w`` along ``n`` map to world ``X = (u0 + x) r + (v0 + y) d + w n``.
Pure numpy/scipy.
"""
from __future__ import annotations

from dataclasses import dataclass
from itertools import product

import numpy as np
from scipy import ndimage as ndi

from medviewer.core.events import Event
from medviewer.core.slicing import PLANES, PlaneGeometry, plane_geometry, world_axis_of_index_axes
from medviewer.core.volume import Volume

_TOL = 1e-9
_LETTERS = (("R", "L"), ("A", "P"), ("I", "S"))  # world axis: (negative end, positive end)


def rotation_about(axis, angle_rad: float) -> np.ndarray:
    """Right-handed rotation by ``angle_rad`` about the world vector ``axis`` (Rodrigues)."""
    k = np.asarray(axis, float)
    k = k / np.linalg.norm(k)
    kx = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
    return np.eye(3) + np.sin(angle_rad) * kx + (1 - np.cos(angle_rad)) * kx @ kx


def swept_angle(axis, v0, v1) -> float:
    """Signed angle (radians, right-handed about ``axis``) that turns direction v0 onto v1."""
    v0, v1 = np.asarray(v0, float), np.asarray(v1, float)
    return float(np.arctan2(np.dot(axis, np.cross(v0, v1)), np.dot(v0, v1)))


def grid_axes(volume: Volume, geometry: PlaneGeometry) -> np.ndarray:
    """Columns: world directions of an unrotated view's screen right, screen down and normal
    (towards increasing slice index)."""
    d = volume.direction / np.linalg.norm(volume.direction, axis=0)
    right = d[:, geometry.h_axis] * (-1 if geometry.h_flip else 1)
    down = d[:, geometry.v_axis] * (-1 if geometry.v_flip else 1)
    return np.column_stack([right, down, d[:, geometry.normal_axis]])


def plane_normal(volume: Volume, plane: str, rotation) -> np.ndarray:
    """World normal of a view plane (axial, coronal, sagittal) turned by ``rotation``."""
    d = volume.direction / np.linalg.norm(volume.direction, axis=0)
    normal_axis = plane_geometry(volume, plane).normal_axis
    return np.asarray(rotation, float) @ d[:, normal_axis]


def in_view(axes: np.ndarray, world_vector) -> np.ndarray:
    """A world direction in a view's (x right, y down) coordinates."""
    return np.asarray(world_vector, float) @ axes[:, :2]


def obliquity_deg(volume: Volume) -> float:
    """How far (degrees) the voxel grid is turned from the patient axes (0 for a straight scan)."""
    d = volume.direction / np.linalg.norm(volume.direction, axis=0)
    world = world_axis_of_index_axes(d)
    cosines = [abs(d[world[i], i]) for i in range(3)]
    return float(np.degrees(np.arccos(np.clip(min(cosines), -1.0, 1.0))))


def patient_axes_rotation(volume: Volume) -> np.ndarray:
    """The rotation that turns each index axis onto its nearest patient (world) axis: applied
    to all three planes it reslices an oblique acquisition to straight axial/coronal/sagittal."""
    d = volume.direction / np.linalg.norm(volume.direction, axis=0)
    world = world_axis_of_index_axes(d)
    p = np.zeros((3, 3))
    for i in range(3):
        p[world[i], i] = np.sign(d[world[i], i]) or 1.0
    return p @ np.linalg.inv(d)


def letters(axes: np.ndarray) -> tuple[str, str, str, str]:
    """Orientation letters (left, right, top, bottom) of a view whose right/down are axes[:, 0/1]."""
    def end(v):
        a = int(np.argmax(np.abs(v)))
        return _LETTERS[a][1] if v[a] > 0 else _LETTERS[a][0]

    right, down = axes[:, 0], axes[:, 1]
    return end(-right), end(right), end(-down), end(down)


class MprPlanes:
    """The orientation of the three MPR planes and the exact point they pass through."""

    def __init__(self) -> None:
        self.rotations = {p: np.eye(3) for p in PLANES}
        self._turned: set[str] = set()  # the planes whose rotation is not the identity
        self.version = 0  # counts the changes of the rotations (views cache what they derive)
        self.centre: np.ndarray | None = None  # world mm, set by an oblique view (click, scroll)
        self.changed = Event()  # () the rotations changed
        self.moved = Event()  # () the exact centre moved within the cursor's voxel

    def is_rotated(self, plane: str | None = None) -> bool:
        return bool(self._turned) if plane is None else plane in self._turned

    def _changed(self) -> None:
        self._turned = {p for p in PLANES if not np.allclose(self.rotations[p], np.eye(3), atol=1e-12)}
        self.version += 1
        self.changed.emit()

    def rotate(self, about: str, axis, angle_rad: float) -> None:
        """Turn the planes other than ``about`` by ``angle_rad`` about the world vector ``axis``
        (the normal of the view ``about``)."""
        if angle_rad == 0:
            return
        r = rotation_about(axis, angle_rad)
        for p in PLANES:
            if p != about:
                self.rotations[p] = r @ self.rotations[p]
        self._changed()

    def set_all(self, rotation) -> None:
        self.rotations = {p: np.array(rotation, float) for p in PLANES}
        self._changed()

    def reset(self) -> None:
        """Back to the voxel-grid planes."""
        was = self.is_rotated() or self.centre is not None
        self.rotations = {p: np.eye(3) for p in PLANES}
        self.centre = None
        if was:
            self._changed()

    def pivot(self, volume: Volume, cursor) -> np.ndarray:
        """Where the planes cross (world): the exact centre an oblique view set, as long as it
        still lies in the cursor's voxel; else the cursor voxel's centre."""
        return crossing_point(volume, self.centre, cursor)


def crossing_point(volume: Volume, centre, cursor) -> np.ndarray:
    """`centre` (world) while it lies in the cursor's voxel, else the cursor voxel's centre."""
    if centre is not None:
        ijk = np.round(volume.world_to_index(centre))
        if np.array_equal(ijk, np.round(np.asarray(cursor, float))):
            return np.asarray(centre, float)
    return volume.index_to_world(cursor)


@dataclass(frozen=True)
class ObliquePlane:
    axes: np.ndarray  # columns r (screen right), d (screen down), n (normal), world unit vectors
    u0: float  # X . r of the view's left edge
    v0: float  # X . d of the view's top edge
    w_range: tuple[float, float]  # X . n over the volume
    pixel: float  # mm per output pixel (the smallest voxel spacing)
    n_cols: int
    n_rows: int
    step: float  # scroll step (mm along n): every step changes some voxel index by one
    half_voxel: float  # half a voxel's extent along n (mm)

    @property
    def normal(self) -> np.ndarray:
        return self.axes[:, 2]

    @property
    def extent_mm(self) -> tuple[float, float]:
        return self.n_cols * self.pixel, self.n_rows * self.pixel

    def world(self, x: float, y: float, w: float) -> np.ndarray:
        r, d, n = self.axes.T
        return (self.u0 + x) * r + (self.v0 + y) * d + w * n

    def view_xy(self, world) -> tuple[float, float, float]:
        """(x, y) view mm and offset w of a world point."""
        u, v, w = np.asarray(world, float) @ self.axes
        return float(u - self.u0), float(v - self.v0), float(w)

    def slice_number(self, w: float) -> tuple[int, int]:
        """(index, count) of the plane at offset w in steps across the volume (the overlay's
        'slice k / n')."""
        lo, hi = self.w_range
        count = int(np.floor((hi - lo) / self.step)) + 1
        return int(np.clip(np.round((w - lo) / self.step), 0, count - 1)), count

    def meets(self, volume: Volume, region, w: float) -> bool:
        """Whether the plane at offset w passes through the voxels of a (z, y, x) region."""
        spans = [region[2 - i].indices(volume.shape[2 - i])[:2] for i in range(3)]  # (x, y, z)
        lo = [start - 0.5 for start, _ in spans]
        hi = [stop - 0.5 for _, stop in spans]
        corners = volume.index_to_world(np.array(list(product(*zip(lo, hi)))))
        along = corners @ self.normal - w
        return bool(along.min() <= 0 <= along.max())

    def index_grid(self, volume: Volume, w: float) -> np.ndarray:
        """(3, rows, cols) continuous (x, y, z) index of every output pixel centre at offset w."""
        inv = np.linalg.inv(volume.direction @ np.diag(volume.spacing))
        r, d, _ = self.axes.T
        base = inv @ (self.world(0.5 * self.pixel, 0.5 * self.pixel, w) - np.asarray(volume.origin))
        dc, dr = inv @ (self.pixel * r), inv @ (self.pixel * d)
        cols = np.arange(self.n_cols)
        rows = np.arange(self.n_rows)
        return (base[:, None, None] + dc[:, None, None] * cols[None, None, :]
                + dr[:, None, None] * rows[None, :, None])


def plane_for(volume: Volume, geometry: PlaneGeometry, rotation) -> ObliquePlane:
    """The rotated version of one view's grid plane, large enough for the whole volume."""
    axes = np.asarray(rotation, float) @ grid_axes(volume, geometry)
    a = volume.direction @ np.diag(volume.spacing)
    size = np.asarray(volume.size, float)
    corners = np.array([volume.index_to_world(np.array(c) * size - 0.5) for c in product((0, 1), repeat=3)])
    proj = corners @ axes
    lo, hi = proj.min(0), proj.max(0)
    pixel = float(min(volume.spacing))
    n_cols, n_rows = (max(1, int(np.ceil((hi[i] - lo[i]) / pixel - 1e-6))) for i in (0, 1))
    along = np.abs(axes[:, 2] @ a)  # mm along n of one step along each index axis
    step = float(1.0 / np.max(along / np.asarray(volume.spacing) ** 2))
    return ObliquePlane(axes=axes, u0=float(lo[0]), v0=float(lo[1]), w_range=(float(lo[2]), float(hi[2])),
                        pixel=pixel, n_cols=n_cols, n_rows=n_rows, step=step,
                        half_voxel=float(0.5 * along.sum()))


def reslice(data: np.ndarray, volume: Volume, plane: ObliquePlane, w: float, order: int = 1,
            cval: float = 0) -> np.ndarray:
    """The (rows, cols) image of ``data`` (on ``volume``'s grid; (z, y, x) or (z, y, x, c)) on the
    plane at offset w: trilinear (order 1, float32) or the nearest voxel (order 0, data's type).
    A point inside a voxel's extent (half a voxel beyond the outer centres) takes the volume's
    values, as in ITK's resampling; outside it is ``cval``."""
    ijk = plane.index_grid(volume, w)
    size = np.asarray(volume.size, float)[:, None, None]
    outside = np.any((ijk < -0.5) | (ijk > size - 0.5), axis=0)
    out = np.full((plane.n_rows, plane.n_cols) + data.shape[3:], cval, data.dtype if order == 0 else np.float32)
    rows, cols = np.flatnonzero(~outside.all(axis=1)), np.flatnonzero(~outside.all(axis=0))
    if len(rows) == 0:
        return out
    box = (slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1))  # sample only where the volume is
    zyx, outside = ijk[(slice(None),) + box][::-1], outside[box]
    if order == 0:
        idx = np.clip(np.rint(zyx), 0, np.asarray(data.shape[:3])[:, None, None] - 1).astype(np.intp)
        part = data[idx[0], idx[1], idx[2]]
    else:
        channels = [data] if data.ndim == 3 else [data[..., c] for c in range(data.shape[3])]
        part = np.stack([ndi.map_coordinates(c, zyx, output=np.float32, order=1, mode="nearest", prefilter=False)
                         for c in channels], axis=-1)
        part = part[..., 0] if data.ndim == 3 else part
    part[outside] = cval
    out[box] = part
    return out
