"""Region growing from a seed: ITK's ConnectedThreshold and ConfidenceConnected, bounded, in 2D or 3D.

One entry point for the viewer::

    result = grow_region(volume.data, volume.spacing, seed_xyz, GrowParams(plane_axis=2),
                         progress=lambda fraction, message: ..., cancel=lambda: token.cancelled)
    if result.stopped: ...           # "max volume": the region leaks past params' limit
    labelmap.paint(result.region, result.mask, value, "region growing")

``data`` is a scalar (z, y, x) array, ``spacing`` (x, y, z) mm, ``seed_xyz`` a continuous voxel
index (x, y, z) rounded half-up like the viewer's pick. ``result.region``/``result.mask`` follow
``label_tools``: (z, y, x) slices and a bool mask shaped like ``data[region]``, cropped to the
region's bounding box; nothing connected to the seed gives empty slices and ``mask.size == 0``.
``result.interval`` is the (low, high) intensity interval (inclusive) that was used: the given one
for "threshold", ITK's confidence interval of the last pass for "confidence".

``GrowParams.plane_axis`` = None grows in 3D (6-connected); 0, 1 or 2 grows only inside the
slice through the seed normal to that index axis (x, y, z; 4-connected, like SimpleITK's 2D
filters on that slice; the confidence neighbourhood is then a square in the slice).

Maximum volume (``max_volume_ml`` and/or ``max_voxels``, the smaller wins): growing stops as soon as
the region is known to be bigger (no whole-volume pass for a leak) and the result is flagged
``stopped == "max volume"``. Its mask is then the part of the too-big region found so far that
is nearest the seed (the seed's connected part of it inside the ball around the seed that holds
at most the limit's voxels), so a preview shows where the region leaks. A confidence pass that
hits the limit ends the iterations (statistics of a cut region mean nothing).

Progress and cancel are plain callables: ``progress(fraction, message)`` with fractions rising from
0 to 1 (once per box of each pass, once at the end); ``cancel()`` is asked between slabs of a few
slices, around each connected-component pass and every 10 ms during a big one, and True raises
``core.errors.Cancelled`` (nothing returned; the data is never written). The callables are
called on the thread that runs ``grow_region``.

``connected_threshold`` and ``confidence_connected`` keep their old call shape (unbounded, 3D)
and give results identical to SimpleITK's (engine and speed: ``growing_box``).
"""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from medviewer.core.errors import Cancelled
from medviewer.processing.growing_box import component, seed_index
from medviewer.processing.growing_box import grow as _grow
from medviewer.processing.label_tools import Region, crop, empty

MODES = ("confidence", "threshold")


@dataclass(frozen=True)
class GrowParams:
    """What to grow. "threshold": voxels in [low, high]. "confidence": ITK's ConfidenceConnected
    (mean +- multiplier*std of the (2*radius+1)-voxel cube around the seed, re-estimated over the
    grown region ``iterations`` times).

    Defaults are for a click in a small structure, tried on the demo chest CT: with ITK's usual
    multiplier 2.5 a seed in a contrast-filled vessel or the lung base grows into the liver or
    the whole body (0.12-3 L); 2.0 keeps those local (0.6-2 mL) at the cost of ~15 % fewer voxels
    in a noisy homogeneous structure (the aorta); 100 mL (a 5.8 cm ball) flags and bounds a
    leak. 2D in the clicked view (``plane_axis`` = the view's normal) leaks far less often than 3D
    (2 of 42 small enhancing structures flagged instead of 27), so it is the better default for
    a click; None (3D) stays the default here, as the UI knows the view."""
    mode: str = "confidence"
    low: float | None = None
    high: float | None = None
    multiplier: float = 2.0
    iterations: int = 3
    radius: int = 1
    plane_axis: int | None = None
    max_volume_ml: float | None = 100.0
    max_voxels: int | None = None

    def __post_init__(self):
        if self.mode not in MODES:
            raise ValueError(f"region growing mode must be one of {MODES}, got {self.mode!r}")
        if self.mode == "threshold":
            if self.low is None or self.high is None or not float(self.low) <= float(self.high):
                raise ValueError(f"threshold growing needs low <= high, got {self.low}..{self.high}")
        if not self.multiplier >= 0 or self.iterations < 0 or self.radius < 0:
            raise ValueError("confidence growing needs multiplier >= 0, iterations >= 0 and radius >= 0")
        if self.plane_axis not in (None, 0, 1, 2):
            raise ValueError(f"plane_axis must be None (3D) or 0, 1, 2 (x, y, z), got {self.plane_axis!r}")
        for name in ("max_volume_ml", "max_voxels"):
            value = getattr(self, name)
            if value is not None and not value > 0:
                raise ValueError(f"{name} must be positive or None, got {value}")

    def limit(self, spacing) -> int | None:
        """The maximum number of voxels (None: unbounded) for voxels of this spacing (x, y, z)."""
        limits = [] if self.max_voxels is None else [int(self.max_voxels)]
        if self.max_volume_ml is not None:
            limits.append(max(int(self.max_volume_ml * 1000.0 / _voxel_mm3(spacing)), 1))
        return min(limits) if limits else None


@dataclass(frozen=True, eq=False)
class GrowResult:
    """What grew: ``region``/``mask`` to paint, its size, the interval used, why it stopped."""
    region: Region
    mask: np.ndarray
    voxels: int
    volume_ml: float
    interval: tuple[float, float]
    stopped: str = ""  # "" complete, "max volume" when it hit the limit (mask: the part nearest the seed)
    seconds: float = 0.0


def _voxel_mm3(spacing) -> float:
    return float(np.prod(np.asarray(spacing, float)[:3]))


class _Steps:
    """Progress (monotone, clamped to [0, 1]) and cancel for one run of ``passes`` grow passes."""

    def __init__(self, progress, cancel, passes: int):
        self.progress, self.cancel, self.passes = progress, cancel, passes
        self.done, self.last = 0, 0.0

    def check(self) -> None:
        if self.cancel is not None and self.cancel():
            raise Cancelled("region growing cancelled")

    def tell(self, fraction: float, message: str) -> None:
        self.last = min(max(fraction, self.last), 1.0)
        if self.progress is not None:
            self.progress(self.last, message)
        self.check()

    def box(self, box_fraction: float) -> None:
        inside = min(max(box_fraction, 0.0), 1.0) ** (1 / 3)
        what = f"pass {self.done + 1} of {self.passes}" if self.passes > 1 else "growing"
        self.tell((self.done + 0.95 * inside) / self.passes, f"region growing: {what}")


def _itk_bounds(dtype: np.dtype, mean: float, var: float, multiplier: float, seed_value: float):
    """ITK's interval: mean +- multiplier*std, widened to hold the seed, clipped to the pixel
    type and cast to it (truncation towards zero for integer types)."""
    std = float(np.sqrt(max(var, 0.0)))
    lower, upper = min(mean - multiplier * std, seed_value), max(mean + multiplier * std, seed_value)
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        return float(np.trunc(max(lower, info.min))), float(np.trunc(min(upper, info.max)))
    return float(dtype.type(lower)), float(dtype.type(upper))


def _nearest_part(region: Region, mask: np.ndarray, seed_zyx, spacing, limit: int, check):
    """The seed's connected part of `mask` inside the ball around the seed that holds at most
    `limit` of its voxels."""
    idx = np.nonzero(mask)
    local = tuple(int(seed_zyx[k] - region[k].start) for k in range(3))
    sp = np.asarray(spacing, float)[:3][::-1]
    d2 = sum(((idx[k] - local[k]) * sp[k]) ** 2 for k in range(3))
    if d2.size > limit:
        keep = d2 < np.partition(d2, limit - 1)[limit - 1]
        cut = np.zeros(mask.shape, bool)
        cut[tuple(i[keep] for i in idx)] = True
        cut[local] = True
        mask = component(cut, local, check)
    return crop(region, mask)


def _run(data, seed, in_range, start, limit, steps: _Steps):
    region, mask, complete = _grow(data, seed, in_range, start, max_voxels=limit,
                                   check=steps.check, report=steps.box)
    steps.done += 1
    return region, mask, complete


def grow_region(data: np.ndarray, spacing, seed_xyz, params: GrowParams = GrowParams(),
                progress: Callable[[float, str], None] | None = None,
                cancel: Callable[[], bool] | None = None) -> GrowResult:
    """Grow from the seed as ``params`` says (see the module docstring)."""
    t0 = time.perf_counter()
    seed = seed_index(data, seed_xyz)
    axis, limit = params.plane_axis, params.limit(spacing)
    view, local = data, seed.copy()
    if axis is not None:  # a one-voxel-thick view: the engine's 3D growing is then 2D in it
        cut = [slice(None)] * 3
        cut[2 - axis] = slice(int(seed[axis]), int(seed[axis]) + 1)
        view, local[axis] = data[tuple(cut)], 0
    steps = _Steps(progress, cancel, 1 if params.mode == "threshold" else int(params.iterations) + 1)
    steps.tell(0.0, "region growing: start")
    if params.mode == "threshold":
        lower, upper = float(params.low), float(params.high)
        region, mask, complete = _run(view, local, lambda v: (v >= lower) & (v <= upper), None, limit, steps)
    else:
        region, mask, complete, (lower, upper) = _confidence(view, local, params, limit, steps)
    if axis is not None and mask.size:  # back to the volume's slice index
        k, at = 2 - axis, int(seed[axis])
        region = tuple(slice(s.start + at, s.stop + at) if n == k else s for n, s in enumerate(region))
    stopped = ""
    if not complete:
        stopped = "max volume"
        region, mask = _nearest_part(region, mask, seed[::-1], spacing, limit, steps.check)
    n = int(np.count_nonzero(mask))
    steps.tell(1.0, f"region growing: {n} voxels" + (" (stopped at the maximum volume)" if stopped else ""))
    return GrowResult(region, mask, n, n * _voxel_mm3(spacing) / 1000.0, (lower, upper), stopped,
                      time.perf_counter() - t0)


def _confidence(data, seed, params: GrowParams, limit, steps: _Steps):
    """ITK's ConfidenceConnected (stops early when the variance is 0 or the interval repeats)."""
    radius = np.full(3, max(int(params.radius), 0))
    if params.plane_axis is not None:
        radius[params.plane_axis] = 0  # a square in the slice, as ITK's 2D filter
    cube = np.ix_(*[np.clip(np.arange(seed[a] - radius[a], seed[a] + radius[a] + 1), 0, data.shape[2 - a] - 1)
                    for a in (2, 1, 0)])
    vals = data[cube].astype(np.float64).ravel()
    mean = float(vals.mean())
    var = float(((vals ** 2).sum() - mean * mean * vals.size) / (vals.size - 1)) if vals.size > 1 else 0.0
    seed_value = float(data[seed[2], seed[1], seed[0]])
    multiplier = float(params.multiplier)
    lower, upper = _itk_bounds(data.dtype, mean, var, multiplier, seed_value)
    region, mask, complete = _run(data, seed, lambda v: (v >= lower) & (v <= upper), None, limit, steps)
    for _ in range(int(params.iterations)):
        if not complete:
            break
        vals = data[region][mask].astype(np.float64)
        n = vals.size
        if n < 2:
            break
        total = float(vals.sum())
        var = (float(vals @ vals) - total * total / n) / (n - 1)
        if abs(var) < 1e-12:
            break
        bounds = _itk_bounds(data.dtype, total / n, var, multiplier, seed_value)
        if bounds == (lower, upper):
            break  # same interval, same region: converged (ITK would recompute the same result)
        lower, upper = bounds
        region, mask, complete = _run(data, seed, lambda v: (v >= lower) & (v <= upper), region, limit, steps)
    return region, mask, complete, (lower, upper)


def grow(data: np.ndarray, seed_xyz, in_range: Callable[[np.ndarray], np.ndarray],
         start: Region | None = None):
    """The 6-connected region where ``in_range(values)`` is True that contains the seed, as
    ``(region, mask)`` (unbounded; see ``growing_box.grow``)."""
    region, mask, _ = _grow(data, seed_xyz, in_range, start)
    return region, mask


def connected_threshold(volume_data: np.ndarray, spacing, seed_xyz, low: float, high: float):
    """Voxels connected (6-neighbourhood) to the seed whose intensity is in [low, high] (real
    interval, inclusive), like ``sitk.ConnectedThreshold``, as ``(region, mask)``. ``spacing``
    (x, y, z) is unused by the algorithm (connectivity is in voxels). low > high: nothing."""
    seed_index(volume_data, seed_xyz)  # a bad seed or array is a ValueError whatever the interval
    if not float(low) <= float(high):
        return empty()
    result = grow_region(volume_data, spacing, seed_xyz,
                         GrowParams("threshold", low, high, max_volume_ml=None))
    return result.region, result.mask


def confidence_connected(volume_data: np.ndarray, spacing, seed_xyz, multiplier: float = 2.5,
                         iterations: int = 3, radius: int = 1):
    """ITK's ConfidenceConnected in 3D, unbounded, as ``(region, mask)``: same result as
    ``sitk.ConfidenceConnected`` (up to floating point summation order)."""
    result = grow_region(volume_data, spacing, seed_xyz,
                         GrowParams("confidence", multiplier=multiplier, iterations=max(int(iterations), 0),
                                    radius=max(int(radius), 0), max_volume_ml=None))
    return result.region, result.mask
