"""Fusion: another image (the "moving" one) shown over the session's image (the "fixed" one).

`Fusion` is a session's fusion state (no Qt): the moving volume, an optional SimpleITK transform
that maps a world point of the fixed image (LPS mm) to the moving image's world (ITK's
fixed -> moving convention, as a registration returns it), the mode ("off", "overlay",
"checkerboard", "difference") and how it is shown (opacity, colour map, threshold, checker size,
the moving image's window). Views subscribe to `changed` and redraw.

The moving image is resampled on the fly, one view plane at a time: `plane()` takes the plane's
pixel grid in world (origin + col * axis_u + row * axis_v, mm) and returns the moving values there
(trilinear, float32, NaN outside the moving image), through SimpleITK's ResampleImageFilter onto a
one-slice output grid (C++, multi-threaded, any transform, B-spline included; one filter kept per
image and transform, so that a plane sets only its grid). A point inside a voxel's extent (half a
voxel beyond the outer centres) takes the image's values, as ITK resamples. When there is no
transform and the plane's pixels are voxel centres of the moving image along two of its index
axes (a processing or registration result on the fixed grid), the plane is read from the voxels:
the same values, without interpolating. SimpleITK is imported when an image is first fused.

`indexed()` turns a fixed plane and the moving plane into the picture a view draws over the fixed
image, as a uint8 index image and its RGBA colour table (pyqtgraph colours it in C; `compose()`
gives the same picture as RGBA): overlay (the moving values in a colour map, transparent below
the threshold and outside), checkerboard (squares of the fixed and the moving image, each grey in
its own window, opaque), difference (|fixed - moving| after normalising each by its window, in a
colour map).
"""
from __future__ import annotations

import os
from itertools import product

import numpy as np

from medviewer.core.colormaps import NAMES as COLOUR_MAPS, colour_table
from medviewer.core.display import Window, default_window
from medviewer.core.errors import MedViewerError
from medviewer.core.events import Event
from medviewer.core.memory import check_fits
from medviewer.core.volume import Volume

MODES = ("off", "overlay", "checkerboard", "difference")
COLOURS = COLOUR_MAPS + ("grey",)
_DISPLAY = ("opacity", "colormap", "threshold", "checker_mm", "window")


def _table(name: str, n: int = 256) -> np.ndarray:
    """(n, 3) uint8 RGB of a colour map, dark to bright."""
    if name == "grey":
        return np.repeat(np.linspace(0, 255, n).round().astype(np.uint8)[:, None], 3, axis=1)
    return colour_table(name, n)


def _title(volume: Volume) -> str:
    """What an error calls an image: its file's name, else what it is."""
    path = str(volume.metadata.get("path") or "")
    name = "".join(c if c.isprintable() else "?" for c in os.path.basename(path.rstrip("/\\")))
    return name or volume.describe()


class Fusion:
    """The moving image, its transform and how it is fused (one per Session).

    `fixed` (optional) returns the fixed image (the session's volume): `set()` then checks a new
    moving image against it (dimension, overlap) before anything changes."""

    def __init__(self, fixed=None) -> None:
        self._fixed = fixed
        self.moving: Volume | None = None
        self.transform = None  # SimpleITK transform, fixed world -> moving world; None: identity
        self.mode = "off"
        self.opacity = 0.5
        self.colormap = "hot"
        self.threshold: float | None = None  # moving values below it are transparent (overlay)
        self.checker_mm = 20.0
        self.window = Window(1.0, 0.5)  # the moving image's display window
        self.changed = Event()  # ()
        self._image = None  # the moving image as a SimpleITK image, made once per image
        self._resampler = None  # (version, the ResampleImageFilter set up for the image and transform)
        self.version = 0  # counts the changes of the moving image or its transform (views cache planes)

    @property
    def active(self) -> bool:
        return self.mode != "off" and self.moving is not None

    # --- state ------------------------------------------------------------------------
    def set(self, moving: Volume | None = None, transform=None, mode: str | None = None, **display) -> None:
        """Change what is fused and how; everything is checked first (a MedViewerError leaves the
        fusion as it was), then `changed` is emitted once. A new `moving` image takes `transform`
        (None: the two images share world coordinates) and a default window from its histogram;
        `transform` alone replaces the current image's transform."""
        unknown = set(display) - set(_DISPLAY)
        if unknown:
            raise MedViewerError(f"unknown fusion setting {sorted(unknown)[0]!r}; use {', '.join(_DISPLAY)}")
        if mode is not None and mode not in MODES:
            raise MedViewerError(f"unknown fusion mode {mode!r}; use one of {', '.join(MODES)}")
        values = {k: self._checked(k, v) for k, v in display.items()}
        new_moving = moving is not None and moving is not self.moving
        target = moving if moving is not None else self.moving
        new_transform = transform if (transform is not None or new_moving) else self.transform
        if transform is not None and not _is_transform(transform):
            raise MedViewerError(f"the fusion transform must be a SimpleITK transform, not {type(transform).__name__}")
        if (mode or self.mode) != "off" and target is None:
            raise MedViewerError("choose an image to fuse before choosing a fusion mode")
        image = self._image
        if new_moving or (transform is not None and target is not None):
            self.check(target, new_transform)
            if new_moving:
                image = _sitk_image(target)
        if new_moving:
            self.moving, self._image = moving, image
            if "window" not in values:
                values["window"] = default_window(moving.data, moving.modality, moving.metadata)
        if new_moving or transform is not None:
            self.transform = new_transform
            self.version += 1
        if mode is not None:
            self.mode = mode
        for key, value in values.items():
            setattr(self, key, value)
        self.changed.emit()

    def clear(self) -> None:
        """No fusion (the session's image was replaced by another one)."""
        was = self.moving is not None or self.mode != "off"
        self.moving, self._image, self.transform, self.mode = None, None, None, "off"
        self.version += 1
        if was:
            self.changed.emit()

    @staticmethod
    def _checked(key: str, value):
        if key == "opacity":
            value = float(value)
            if not 0.0 <= value <= 1.0:
                raise MedViewerError(f"fusion opacity {value:g} is outside 0..1")
        elif key == "colormap":
            if value not in COLOURS:
                raise MedViewerError(f"unknown colour map {value!r}; use one of {', '.join(COLOURS)}")
        elif key == "threshold":
            value = None if value is None else float(value)
            if value is not None and not np.isfinite(value):
                raise MedViewerError("the fusion threshold must be a finite number")
        elif key == "checker_mm":
            value = float(value)
            if not value > 0 or not np.isfinite(value):
                raise MedViewerError(f"checker size {value:g} mm must be a positive number of mm")
        elif key == "window" and not isinstance(value, Window):
            raise MedViewerError("the fusion window must be a Window")
        return value

    # --- checks -----------------------------------------------------------------------
    def check(self, moving: Volume, transform=None, fixed: Volume | None = None) -> None:
        """MedViewerError unless `moving` can be fused over the fixed image: both greyscale, both
        3D or both 2D, and some of the fixed image lies in the moving one (through `transform`)."""
        fixed = fixed if fixed is not None else (self._fixed() if self._fixed is not None else None)
        name = _title(moving)
        if fixed is not None and moving.is_2d != fixed.is_2d:
            two, three = ("the moving image", "the fixed image") if moving.is_2d else ("the fixed image", "the moving image")
            raise MedViewerError(f"{name}: cannot fuse a 2D image with a 3D one ({two} is 2D, {three} is 3D)")
        if moving.is_rgb or (fixed is not None and fixed.is_rgb):
            raise MedViewerError(f"{name}: colour (RGB) images cannot be fused; use greyscale images")
        if fixed is None:
            return
        if not overlaps(fixed, moving, transform):
            raise MedViewerError(f"{name}: the images do not overlap (no part of the fixed image lies in this one"
                                 + (" through the transform)" if transform is not None else "; register them first)"))

    # --- resampling -------------------------------------------------------------------
    def plane(self, fixed: Volume, origin, axis_u, axis_v, shape) -> np.ndarray:
        """The moving image's values (float32, NaN outside it) on a plane of the fixed image: pixel
        (row, col) lies at world origin + col * axis_u + row * axis_v (mm; axis_u and axis_v
        perpendicular), shape = (rows, cols). `fixed` names the plane's image (unused by the
        resampling itself, which is in world coordinates)."""
        if self.moving is None:
            raise MedViewerError("no image is fused")
        rows, cols = (int(v) for v in shape)
        u, v = np.asarray(axis_u, float), np.asarray(axis_v, float)
        su, sv = float(np.linalg.norm(u)), float(np.linalg.norm(v))
        if su <= 0 or sv <= 0:
            raise ValueError("the plane's pixel axes must be non-zero")
        if rows * cols > 4096 * 4096:  # a plane is small; a hostile geometry could ask for a huge one
            check_fits(rows * cols * 4 * 2, f"resampling a {cols}x{rows} fused plane")
        if self.transform is None:
            direct = _voxel_plane(self.moving, origin, u, v, (rows, cols))
            if direct is not None:
                return direct
        import SimpleITK as sitk

        u_hat, v_hat = u / su, v / sv
        resampler = self._resampler_for(sitk)
        resampler.SetSize((cols, rows, 1))
        resampler.SetOutputSpacing((su, sv, 1.0))
        resampler.SetOutputDirection(tuple(np.column_stack([u_hat, v_hat, np.cross(u_hat, v_hat)]).ravel()))
        resampler.SetOutputOrigin(tuple(float(x) for x in origin))
        out = resampler.Execute(self._image)
        return sitk.GetArrayFromImage(out)[0]

    def _resampler_for(self, sitk):
        """One ResampleImageFilter per moving image and transform (trilinear, NaN outside, float32):
        a plane then sets only its grid."""
        if self._resampler is None or self._resampler[0] != self.version:
            f = sitk.ResampleImageFilter()
            f.SetInterpolator(sitk.sitkLinear)
            f.SetDefaultPixelValue(float("nan"))
            f.SetOutputPixelType(sitk.sitkFloat32)
            f.SetTransform(self.transform if self.transform is not None else sitk.Transform(3, sitk.sitkIdentity))
            self._resampler = (self.version, f)
        return self._resampler[1]

    # --- display ----------------------------------------------------------------------
    def indexed(self, fixed_plane: np.ndarray, moving_plane: np.ndarray, fixed_window: Window,
                pixel_mm: tuple[float, float] = (1.0, 1.0)) -> tuple[np.ndarray, np.ndarray]:
        """The picture drawn over the fixed image as (indices, colour table): a (rows, cols) uint8
        image and its (256, 4) uint8 RGBA table (a view hands both to its image item, which
        colours them in C). Overlay and difference: index 0 is transparent (outside the moving
        image, below the threshold), 1..255 run through the colour map. Checkerboard: grey 0..255,
        opaque. `pixel_mm` is the (column, row) pixel size in mm: checkerboard squares are
        `checker_mm` wide, counted from the plane's first pixel's edge (square (0, 0) shows the
        fixed image; the moving image's squares show the fixed one where it has no values)."""
        moving_plane = np.asarray(moving_plane, np.float32)
        missing = np.isnan(moving_plane)
        if self.mode == "checkerboard":
            rows, cols = moving_plane.shape
            odd_col = ((np.arange(cols) + 0.5) * pixel_mm[0] // self.checker_mm) % 2 == 1
            odd_row = ((np.arange(rows) + 0.5) * pixel_mm[1] // self.checker_mm) % 2 == 1
            moving_square = np.not_equal.outer(odd_row, odd_col)  # squares (i, j) with i + j odd
            moving_square &= ~missing
            indices = _scaled(fixed_plane, fixed_window, 255)
            np.copyto(indices, _scaled(moving_plane, self.window, 255, missing), where=moving_square)
            return indices, _opaque(_table("grey"))
        if self.mode == "overlay":
            indices = _scaled(moving_plane, self.window, 254, missing) + np.uint8(1)
            if self.threshold is not None:
                missing |= moving_plane < self.threshold
            alpha = int(round(255 * self.opacity))
        elif self.mode == "difference":
            diff = np.abs(_unit(fixed_plane, fixed_window) - _unit(moving_plane, self.window))
            indices = _scaled(diff, Window(1.0, 0.5), 254, missing) + np.uint8(1)
            alpha = 255
        else:
            return np.zeros(moving_plane.shape, np.uint8), np.zeros((256, 4), np.uint8)
        indices[missing] = 0
        lut = np.zeros((256, 4), np.uint8)
        lut[1:, :3] = _table(self.colormap, 255)
        lut[1:, 3] = alpha
        return indices, lut

    def compose(self, fixed_plane: np.ndarray, moving_plane: np.ndarray, fixed_window: Window,
                pixel_mm: tuple[float, float] = (1.0, 1.0)) -> np.ndarray:
        """The same picture as (rows, cols, 4) uint8 RGBA."""
        indices, lut = self.indexed(fixed_plane, moving_plane, fixed_window, pixel_mm)
        return lut[indices]


def _unit(values: np.ndarray, window: Window) -> np.ndarray:
    """Values through a window onto 0..1 (float32; NaN stays NaN)."""
    out = np.subtract(values, np.float32(window.low), dtype=np.float32)
    out *= np.float32(1.0 / max(window.width, 1e-12))
    return np.clip(out, 0.0, 1.0, out=out)


def _scaled(values: np.ndarray, window: Window, top: int, missing: np.ndarray | None = None) -> np.ndarray:
    """Values through a window onto the integers 0..top (uint8, rounded); `missing` (NaN) gives 0."""
    out = _unit(values, window)
    out *= np.float32(top)
    out += np.float32(0.5)
    if missing is not None:
        out[missing] = 0
    return out.astype(np.uint8)


def _opaque(rgb: np.ndarray) -> np.ndarray:
    lut = np.full((len(rgb), 4), 255, np.uint8)
    lut[:, :3] = rgb
    return lut


def _voxel_plane(volume: Volume, origin, u, v, shape) -> np.ndarray | None:
    """The plane read straight from the voxels when its pixels are voxel centres of `volume` and
    its axes run along two index axes (a moving image on the fixed image's grid — a processing or
    registration result — or a grid that differs by whole voxels): what trilinear interpolation
    gives there, without interpolating. None when the plane is not such a plane."""
    inv = np.linalg.inv(volume.direction @ np.diag(volume.spacing))
    start = inv @ (np.asarray(origin, float) - np.asarray(volume.origin))
    du, dv = inv @ u, inv @ v
    steps = np.stack([start, du, dv])
    if np.max(np.abs(steps - np.rint(steps))) > 1e-6:
        return None
    start, du, dv = (np.rint(x).astype(int) for x in (start, du, dv))
    if np.count_nonzero(du) != 1 or np.count_nonzero(dv) != 1 or abs(du.sum()) != 1 or abs(dv.sum()) != 1:
        return None
    a, b = int(np.flatnonzero(du)[0]), int(np.flatnonzero(dv)[0])
    if a == b:
        return None
    c = 3 - a - b
    rows, cols = shape
    out = np.full((rows, cols), np.nan, np.float32)
    size = volume.size
    if not 0 <= start[c] < size[c]:
        return out
    cols_in, rows_in = _run_inside(start[a], du[a], cols, size[a]), _run_inside(start[b], dv[b], rows, size[b])
    if cols_in is None or rows_in is None:
        return out
    index = [slice(None)] * 3  # numpy (z, y, x) = index axes (2, 1, 0): a view of the voxels
    index[2 - a] = _voxel_slice(start[a], du[a], cols_in)
    index[2 - b] = _voxel_slice(start[b], dv[b], rows_in)
    index[2 - c] = int(start[c])
    part = volume.data[tuple(index)]
    out[rows_in[0]:rows_in[1], cols_in[0]:cols_in[1]] = part if b > a else part.T  # numpy order is (b, a) when b > a
    return out


def _run_inside(start: int, step: int, n: int, size: int) -> tuple[int, int] | None:
    """The pixels [first, stop) of n pixels at voxels start + step * p (step ±1) that lie in 0..size-1."""
    lo, hi = (max(0, -start), min(n, size - start)) if step > 0 else (max(0, start - size + 1), min(n, start + 1))
    return (int(lo), int(hi)) if hi > lo else None


def _voxel_slice(start: int, step: int, run: tuple[int, int]) -> slice:
    first, last = start + step * run[0], start + step * (run[1] - 1)
    return slice(first, last + 1) if step > 0 else slice(first, last - 1 if last > 0 else None, -1)


def _is_transform(value) -> bool:
    import SimpleITK as sitk

    return isinstance(value, sitk.Transform)


def _sitk_image(volume: Volume):
    """The moving volume as a 3D SimpleITK image with its geometry (one slice for a 2D image)."""
    import SimpleITK as sitk

    data = volume.data
    if data.dtype == bool or data.dtype == np.float16:
        data = data.astype(np.float32)
    check_fits(data.nbytes, f"fusing the {'x'.join(map(str, volume.size))} image")
    image = sitk.GetImageFromArray(np.ascontiguousarray(data))
    image.SetSpacing(volume.spacing)
    image.SetOrigin(volume.origin)
    image.SetDirection(tuple(float(v) for v in volume.direction.ravel()))
    return image


def _box_points(volume: Volume, n: int) -> np.ndarray:
    """World points on an n^3 lattice over a volume's extent (the voxels' outer faces included)."""
    size = np.asarray(volume.size, float)
    axes = [np.linspace(-0.5, s - 0.5, n if s > 1 else 1) for s in size]
    ijk = np.array(list(product(*axes)))
    return volume.index_to_world(ijk)


def overlaps(fixed: Volume, moving: Volume, transform=None, n: int = 9) -> bool:
    """Whether some of the fixed image's extent maps into the moving image's (a 9^3 lattice over
    the fixed box, through `transform` (fixed world -> moving world) when there is one; also
    true when the moving image lies wholly within one lattice cell, checked by its centre)."""
    points = _box_points(fixed, n)
    if transform is not None:
        points = np.array([transform.TransformPoint(tuple(float(c) for c in p)) for p in points])
    ijk = moving.world_to_index(points)
    size = np.asarray(moving.size, float)
    tol = 1e-6
    if np.any(np.all((ijk >= -0.5 - tol) & (ijk <= size - 0.5 + tol), axis=1)):
        return True
    centre = moving.index_to_world((size - 1) / 2)  # a small moving image inside the fixed box
    if transform is not None:
        try:
            centre = np.asarray(transform.GetInverse().TransformPoint(tuple(float(c) for c in centre)))
        except RuntimeError:  # a B-spline has no inverse: the lattice decided
            return False
    f_ijk = fixed.world_to_index(centre)
    fsize = np.asarray(fixed.size, float)
    return bool(np.all((f_ijk >= -0.5 - tol) & (f_ijk <= fsize - 0.5 + tol)))
