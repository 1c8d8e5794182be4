"""What to paint: brush, stroke, polygon/lasso, rectangle, ellipse, paint bucket, interpolation.

Every tool returns ``(region, mask)``: ``region`` is a tuple of three slices (z, y, x) into the
label array and ``mask`` a bool array shaped like ``labels[region]``, cropped to the tightest
bounding box and clipped to the volume. Apply it with one undoable call::

    labelmap.paint(region, mask, active_value, "brush")           # draw
    labelmap.paint(region, mask, 0, "erase", only=active_value)   # erase one label

Nothing to paint gives zero-length slices and an empty mask (``mask.size == 0``); ``paint``
then changes nothing. Points are continuous voxel indices (x, y, z) as the viewer produces them
(index (x, y, z) is array [z, y, x]; voxel centres sit on integers); sizes are in mm, measured
with ``spacing`` (x, y, z). ``normal_axis`` is the index axis (0 = x, 1 = y, 2 = z) normal to
the view (``PlaneGeometry.normal_axis``); 2D tools draw on the slice through the first point.
"""
from __future__ import annotations

import numpy as np
import SimpleITK as sitk
from scipy import ndimage as ndi

Region = tuple[slice, slice, slice]
_EPS = 1e-9


def empty() -> tuple[Region, np.ndarray]:
    return (slice(0, 0),) * 3, np.zeros((0, 0, 0), bool)


def _round(v) -> np.ndarray:
    return np.floor(np.asarray(v, float) + 0.5).astype(int)  # half-up, like the viewer's pixel pick


def crop(region: Region, mask: np.ndarray) -> tuple[Region, np.ndarray]:
    """Shrink (region, mask) to the bounding box of the True voxels."""
    if not mask.any():
        return empty()
    box = ndi.find_objects(mask.view(np.uint8))[0]
    return tuple(slice(r.start + b.start, r.start + b.stop) for r, b in zip(region, box)), mask[box]


def _box(shape, lo_xyz, hi_xyz):
    """Inclusive (x, y, z) bounds clipped to the volume -> (lo, hi) or None when empty."""
    size = np.array(shape[:3][::-1])
    lo = np.maximum(np.asarray(lo_xyz), 0).astype(int)
    hi = np.minimum(np.asarray(hi_xyz), size - 1).astype(int)
    return None if np.any(lo > hi) else (lo, hi)


def _region(lo, hi) -> Region:
    return tuple(slice(int(lo[a]), int(hi[a]) + 1) for a in (2, 1, 0))  # type: ignore[return-value]


def _path_box(shape, pts, reach):
    """Inclusive (lo, hi) index box of a path widened by ``reach`` (x, y, z voxels), always
    holding the voxels under the path's points, clipped to the volume; None when outside."""
    lo = np.minimum(np.ceil(pts.min(0) - reach), _round(pts.min(0)))
    hi = np.maximum(np.floor(pts.max(0) + reach), _round(pts.max(0)))
    return _box(shape, lo, hi)


def _mark_voxels(mask, points_xyz, lo, hi) -> None:
    """Set the voxels under the points in a mask covering the box lo..hi."""
    idx = _round(points_xyz)
    idx = idx[np.all((idx >= lo) & (idx <= hi), axis=1)] - lo
    mask[idx[:, 2], idx[:, 1], idx[:, 0]] = True


def stroke(shape, spacing, points_xyz, radius_mm: float, normal_axis: int | None = None):
    """Voxels within ``radius_mm`` of the polyline through ``points_xyz`` (swept dabs, no gaps).
    With ``normal_axis`` the stroke lies on the slice of the first point (discs), else in 3D
    (spheres/capsules). The voxel under every path point is always included (1-voxel brush)."""
    pts = np.asarray(points_xyz, float).reshape(-1, 3).copy()
    if len(pts) == 0:
        return empty()
    sp = np.asarray(spacing, float)
    reach = np.full(3, float(radius_mm)) / sp * (1 + _EPS) + _EPS
    if normal_axis is not None:
        pts[:, normal_axis] = _round(pts[0, normal_axis])
        reach[normal_axis] = 0.0
    box = _path_box(shape, pts, reach)
    if box is None:
        return empty()
    lo, hi = box
    mask = np.zeros(tuple(hi[::-1] - lo[::-1] + 1), bool)
    r2 = float(radius_mm) ** 2 * (1 + _EPS)
    if len(pts) > 1:  # cut long segments so each one's box stays close to its capsule
        piece = max(2 * float(reach.max()), 16.0)
        cuts = [np.linspace(0, 1, int(np.ceil(np.abs(b - a).max() / piece)) + 1)[:-1, None] * (b - a) + a
                for a, b in zip(pts[:-1], pts[1:])]
        pts = np.concatenate(cuts + [pts[-1:]])
    segments = [(pts[0], pts[0])] if len(pts) == 1 else list(zip(pts[:-1], pts[1:]))
    for a, b in segments:
        s_lo = np.maximum(np.ceil(np.minimum(a, b) - reach), lo).astype(int)
        s_hi = np.minimum(np.floor(np.maximum(a, b) + reach), hi).astype(int)
        if np.any(s_lo > s_hi):
            continue
        # per index axis, mm offsets of the sub-box voxels from a; broadcast in (z, y, x) order
        rel = [(np.arange(s_lo[i], s_hi[i] + 1) - a[i]) * sp[i] for i in range(3)]
        rel = [r.reshape([-1 if 2 - i == j else 1 for j in range(3)]) for i, r in enumerate(rel)]
        d = (b - a) * sp
        length2 = float(d @ d)
        if length2 > 0:
            t = np.clip((rel[0] * d[0] + rel[1] * d[1] + rel[2] * d[2]) / length2, 0.0, 1.0)
            dist2 = sum((rel[i] - t * d[i]) ** 2 for i in range(3))
        else:
            dist2 = rel[0] ** 2 + rel[1] ** 2 + rel[2] ** 2
        sub = tuple(slice(s_lo[i] - lo[i], s_hi[i] - lo[i] + 1) for i in (2, 1, 0))
        mask[sub] |= dist2 <= r2
    # the voxel under each point and a thin (8/26-connected) line along each segment
    centre = [pts[:1]] + [a + np.linspace(0, 1, int(np.ceil(np.abs(b - a).max())) + 1)[:, None] * (b - a)
                          for a, b in segments if np.any(a != b)]
    _mark_voxels(mask, np.concatenate(centre), lo, hi)
    return crop(_region(lo, hi), mask)


def brush(shape_zyx, spacing_xyz, center_xyz, radius_mm: float, normal_axis: int | None = None):
    """One dab: a disc (mm) on the slice through ``center_xyz`` normal to ``normal_axis``, or a
    sphere (an ellipsoid in voxels) when ``normal_axis`` is None. Only the bounding box is built."""
    return stroke(shape_zyx, spacing_xyz, [center_xyz], radius_mm, normal_axis)


def oblique_stroke(shape_zyx, index_to_world, points_xyz, radius_mm: float, normal):
    """A brush stroke on a rotated plane (oblique MPR): the voxels whose centres lie within half a
    voxel of the plane (half the voxel's extent along the plane's world ``normal``: the voxels the
    plane cuts, so the disc shows filled on the plane) and, projected on the plane, within
    ``radius_mm`` of the path (discs swept along it). ``index_to_world`` is the 3x3 linear part
    of the index -> world map (direction @ diag(spacing)); the plane passes through the first
    point; the voxel under every path point is always included."""
    pts = np.asarray(points_xyz, float).reshape(-1, 3)
    if len(pts) == 0:
        return empty()
    a_mat = np.asarray(index_to_world, float)
    n = np.asarray(normal, float) / np.linalg.norm(normal)
    half = 0.5 * float(np.abs(n @ a_mat).sum()) * (1 + _EPS) + _EPS
    world = (pts - pts[0]) @ a_mat.T
    world -= np.outer(world @ n, n)  # the path, on the plane through the first point
    reach = np.hypot(float(radius_mm), half) * np.linalg.norm(np.linalg.inv(a_mat), axis=1) + _EPS
    box = _path_box(shape_zyx, pts, reach)
    if box is None:
        return empty()
    lo, hi = box
    z, y, x = np.meshgrid(*(np.arange(lo[i], hi[i] + 1) for i in (2, 1, 0)), indexing="ij")
    q = np.stack([x, y, z], axis=-1).astype(float) - pts[0]
    q = q @ a_mat.T  # world offsets from the first point, (z, y, x, 3)
    dist = q @ n
    q -= dist[..., None] * n
    r2 = float(radius_mm) ** 2 * (1 + _EPS)
    near = np.zeros(dist.shape, bool)
    segments = [(world[0], world[0])] if len(world) == 1 else list(zip(world[:-1], world[1:]))
    for a, b in segments:
        d = b - a
        length2 = float(d @ d)
        t = np.clip((q - a) @ d / length2, 0.0, 1.0)[..., None] if length2 > 0 else 0.0
        near |= np.sum((q - a - t * d) ** 2, axis=-1) <= r2
    mask = near & (np.abs(dist) <= half)
    _mark_voxels(mask, pts, lo, hi)
    return crop(_region(lo, hi), mask)


def _plane(points_xyz, normal_axis: int):
    """Slice index k and the in-plane index axes (row axis, column axis) in numpy order."""
    pts = np.asarray(points_xyz, float).reshape(-1, 3)
    k = int(_round(pts[0, normal_axis]))
    row_axis, col_axis = [2 - ax for ax in (0, 1, 2) if ax != 2 - normal_axis]  # index axes
    return pts, k, row_axis, col_axis


def _planar(shape, k, normal_axis, row_axis, col_axis, r_lo, r_hi, c_lo, c_hi, fill2d):
    """Build (region, mask) on slice k from a 2D callback over rows r_lo..r_hi, cols c_lo..c_hi."""
    lo, hi = np.zeros(3), np.zeros(3)
    lo[normal_axis] = hi[normal_axis] = k
    lo[row_axis], hi[row_axis], lo[col_axis], hi[col_axis] = r_lo, r_hi, c_lo, c_hi
    box = _box(shape, lo, hi)
    if box is None:
        return empty()
    lo, hi = box
    mask2d = fill2d(np.arange(lo[row_axis], hi[row_axis] + 1), np.arange(lo[col_axis], hi[col_axis] + 1))
    return crop(_region(lo, hi), np.expand_dims(mask2d, 2 - normal_axis))


def polygon(shape, points_xyz, normal_axis: int):
    """Filled polygon (or lasso: a freehand path, closed automatically) on the slice of the first
    point: voxels whose centres are inside (even-odd rule) plus the voxels along the outline."""
    if len(points_xyz) == 0:
        return empty()
    pts, k, ra, ca = _plane(points_xyz, normal_axis)
    v, u = pts[:, ra], pts[:, ca]
    v0, v1, u0, u1 = v, np.roll(v, -1), u, np.roll(u, -1)

    def fill(rows, cols):
        out = np.zeros((len(rows), len(cols) + 1), np.int32)
        r = rows[:, None].astype(float)
        cross = ((v0 <= r) & (r < v1)) | ((v1 <= r) & (r < v0))  # half-open: each crossing once
        with np.errstate(divide="ignore", invalid="ignore"):
            x = np.where(cross, u0 + (r - v0) * (u1 - u0) / (v1 - v0), np.inf)
        x.sort(axis=1)
        n_pairs = x.shape[1] // 2
        start = np.clip(np.ceil(x[:, 0:2 * n_pairs:2]), cols[0], cols[-1] + 1)
        stop = np.clip(np.floor(x[:, 1:2 * n_pairs:2]) + 1, cols[0], cols[-1] + 1)
        ok = np.isfinite(x[:, 1:2 * n_pairs:2]) & (stop > start)
        row_i = np.broadcast_to(np.arange(len(rows))[:, None], ok.shape)[ok]
        np.add.at(out, (row_i, (start[ok] - cols[0]).astype(int)), 1)
        np.add.at(out, (row_i, (stop[ok] - cols[0]).astype(int)), -1)
        mask = np.cumsum(out, axis=1)[:, :-1] > 0
        steps = [np.linspace(0, 1, int(np.ceil(max(abs(b - a), abs(d - c)))) + 1)
                 for a, b, c, d in zip(v0, v1, u0, u1)]
        line_v = _round(np.concatenate([a + s * (b - a) for a, b, s in zip(v0, v1, steps)]))
        line_u = _round(np.concatenate([c + s * (d - c) for c, d, s in zip(u0, u1, steps)]))
        keep = (line_v >= rows[0]) & (line_v <= rows[-1]) & (line_u >= cols[0]) & (line_u <= cols[-1])
        mask[line_v[keep] - rows[0], line_u[keep] - cols[0]] = True
        return mask

    r_lo, r_hi = _round(v.min()), _round(v.max())
    c_lo, c_hi = _round(u.min()), _round(u.max())
    return _planar(shape, k, normal_axis, ra, ca, r_lo, r_hi, c_lo, c_hi, fill)


def rectangle(shape, corner_a_xyz, corner_b_xyz, normal_axis: int):
    """All voxels from the one under corner a to the one under corner b, on a's slice."""
    pts, k, ra, ca = _plane([corner_a_xyz, corner_b_xyz], normal_axis)
    lo, hi = _round(pts.min(0)), _round(pts.max(0))
    return _planar(shape, k, normal_axis, ra, ca, lo[ra], hi[ra], lo[ca], hi[ca],
                   lambda rows, cols: np.ones((len(rows), len(cols)), bool))


def ellipse(shape, spacing, corner_a_xyz, corner_b_xyz, normal_axis: int):
    """Ellipse inscribed in ``rectangle(corner_a, corner_b)`` (its axes reach the outer edges of
    the rectangle's end voxels). ``spacing`` is accepted for a uniform call shape: an inscribed
    ellipse is the same set of voxels whatever the spacing."""
    pts, k, ra, ca = _plane([corner_a_xyz, corner_b_xyz], normal_axis)
    lo, hi = _round(pts.min(0)), _round(pts.max(0))
    centre, semi = (lo + hi) / 2.0, (hi - lo + 1) / 2.0

    def fill(rows, cols):
        dv = ((rows - centre[ra]) / semi[ra])[:, None]
        du = ((cols - centre[ca]) / semi[ca])[None, :]
        return dv ** 2 + du ** 2 <= 1.0 + _EPS

    return _planar(shape, k, normal_axis, ra, ca, lo[ra], hi[ra], lo[ca], hi[ca], fill)


def flood_fill_slice(labels: np.ndarray, seed_xyz, normal_axis: int):
    """Paint bucket: the 4-connected region, on the seed's slice, of voxels holding the seed's
    current label value (0 included: fills the background enclosed by a drawn outline)."""
    seed = _round(np.asarray(seed_xyz, float)[:3])
    if _box(labels.shape, seed, seed) is None:
        return empty()
    ra, ca = [2 - ax for ax in (0, 1, 2) if ax != 2 - normal_axis]
    index = [slice(None)] * 3
    index[2 - normal_axis] = int(seed[normal_axis])
    plane = labels[tuple(index)]
    comp, _ = ndi.label(plane == labels[seed[2], seed[1], seed[0]])
    mask2d = comp == comp[seed[ra], seed[ca]]
    lo, hi = seed.copy(), seed.copy()
    lo[ra], lo[ca], hi[ra], hi[ca] = 0, 0, plane.shape[0] - 1, plane.shape[1] - 1
    return crop(_region(lo, hi), np.expand_dims(mask2d, 2 - normal_axis))


def threshold_limit(image_data: np.ndarray, region: Region, mask: np.ndarray, low: float, high: float):
    """Keep only mask voxels whose intensity is in [low, high] (threshold-limited paint, live
    preview). Returns (region, mask) with the same region (RGB images use the channel mean)."""
    values = image_data[region]
    if values.ndim == 4:
        values = values.mean(axis=3)
    return region, mask & (values >= low) & (values <= high)


def interpolate_between_slices(labels: np.ndarray, value: int, normal_axis: int, spacing=(1.0, 1.0, 1.0),
                               method: str = "auto"):
    """Fill the slices (normal to ``normal_axis``) lying between slices that contain ``value``.
    method "morphological": SimpleITK's MorphologicalContourInterpolator (ITK-SNAP's; only in
    SimpleITK builds with that remote module, the PyPI wheel lacks it); "distance": shape-based
    interpolation of signed distance maps in mm (from ``spacing``); "auto": the first available.
    Returns (region, mask) of voxels to set to ``value`` that do not hold it yet; apply with
    ``paint(region, mask, value, "interpolate", only=0)`` to fill background only."""
    mci = getattr(sitk, "MorphologicalContourInterpolator", None)
    if method not in ("auto", "distance", "morphological"):
        raise ValueError(f"unknown interpolation method {method!r}")
    if method == "morphological" and mci is None:
        raise RuntimeError("this SimpleITK build has no MorphologicalContourInterpolator")
    if value == 0:
        return empty()
    present = labels == value
    boxes = ndi.find_objects(present.view(np.uint8))
    if not boxes:
        return empty()
    box = boxes[0]
    mb = present[box]
    ax = 2 - normal_axis  # numpy axis of the slices
    if mci is not None and method != "distance":
        out = sitk.GetArrayFromImage(mci(sitk.GetImageFromArray(mb.astype(np.uint8)), label=1, axis=normal_axis))
        return crop(box, (out == 1) & ~mb)
    m = np.moveaxis(mb, ax, 0)
    sampling = [spacing[2 - a] for a in (0, 1, 2) if a != ax]
    new = np.zeros_like(m)
    slices = np.flatnonzero(m.any(axis=(1, 2)))
    for i, j in zip(slices[:-1], slices[1:]):
        if j - i < 2:
            continue
        da, db = _signed_distance(m[i], sampling), _signed_distance(m[j], sampling)
        for s in range(i + 1, j):
            t = (s - i) / (j - i)
            new[s] = (1 - t) * da + t * db <= 0
    return crop(box, np.moveaxis(new, 0, ax) & ~mb)


def _signed_distance(mask2d: np.ndarray, sampling) -> np.ndarray:
    """Negative inside, positive outside, zero half-way between boundary voxel centres (mm)."""
    padded = np.pad(mask2d, 1)
    inside = ndi.distance_transform_edt(padded, sampling=sampling)
    outside = ndi.distance_transform_edt(~padded, sampling=sampling)
    half = 0.5 * min(sampling)
    return np.where(padded, half - inside, outside - half)[1:-1, 1:-1]
