"""Clean-up of one label: smoothing, hole filling, keeping the largest island.

Each function returns ``(region, values)``: ``region`` is a tuple of (z, y, x) slices of the
label array, ``values`` the new content of that box (same dtype as the labels, shaped like
``labels[region]``). The box is the tightest one around the voxels that change, so applying is
one call that stores exactly that box on the undo stack::

    labelmap.set_region(region, values, "smooth label 3")

``set_region`` keeps locked labels (a locked ``value`` is therefore left as it is) and one
``undo()`` restores the previous content exactly. Voxels that lose ``value`` become 0; voxels
that gain it are taken from the background (0) only, unless ``overwrite=True`` (then other,
unlocked labels are painted over too). Nothing to change: empty slices and ``values.size == 0``
(``set_region`` then returns 0 and pushes nothing). Compute and apply on the same labels state.
"""
from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

Region = tuple[slice, slice, slice]


def _nothing(labels: np.ndarray):
    return (slice(0, 0),) * 3, np.zeros((0, 0, 0), labels.dtype)


def _value_box(labels: np.ndarray, value: int, margin=(0, 0, 0)) -> Region | None:
    """Bounding box (z, y, x slices) of `value`, grown by `margin` (z, y, x voxels), clipped."""
    if value == 0:
        return None
    boxes = ndi.find_objects((labels == value).view(np.uint8))
    if not boxes:
        return None
    return tuple(slice(max(b.start - m, 0), min(b.stop + m, n))  # type: ignore[return-value]
                 for b, m, n in zip(boxes[0], margin, labels.shape))


def _result(labels: np.ndarray, box: Region, old: np.ndarray, new: np.ndarray, value: int, overwrite: bool):
    """New box content (voxels leaving `value` -> 0, joining it -> value), cropped to the changes."""
    current = labels[box]
    values = current.copy()
    values[old & ~new] = 0
    gain = new & ~old
    if not overwrite:
        gain &= current == 0
    values[gain] = value
    changed = values != current
    if not changed.any():
        return _nothing(labels)
    sub = ndi.find_objects(changed.view(np.uint8))[0]
    region = tuple(slice(b.start + s.start, b.start + s.stop) for b, s in zip(box, sub))
    return region, np.ascontiguousarray(values[sub])


def _box_kernel(spacing_xyz, radius_mm: float) -> np.ndarray:
    """Box footprint (z, y, x): radius_mm // spacing voxels each side per axis (Slicer's kernel)."""
    r = np.floor(radius_mm / np.asarray(spacing_xyz, float)[::-1] + 1e-9).astype(int)
    return np.ones(tuple(2 * r + 1), bool)


def smooth(labels: np.ndarray, value: int, spacing, radius_mm: float = 1.0, method: str = "open_close",
           overwrite: bool = False):
    """Smooth the surface of `value` with a box kernel reaching `radius_mm` each side (per axis
    radius_mm // spacing voxels, as Slicer sizes its kernel in mm; an axis whose spacing exceeds
    the radius is left alone, so thick slices are smoothed in-plane only).
    method "open_close": opening (removes specks and spurs thinner than the kernel) then closing
    (fills gaps and notches narrower than it); "median": majority vote in the kernel (also rounds
    corners). The volume border is not background: nothing erodes just for touching it."""
    if method not in ("open_close", "median"):
        raise ValueError(f"unknown smoothing method {method!r}; use 'open_close' or 'median'")
    kernel = _box_kernel(spacing, radius_mm)
    margin = tuple(2 * (n // 2) + 1 for n in kernel.shape)
    box = _value_box(labels, value, margin)
    if box is None:
        return _nothing(labels)
    old = labels[box] == value
    pad = [(m, m) for m in margin]
    work = np.pad(old, pad, mode="edge")
    if method == "open_close":
        work = ndi.binary_closing(ndi.binary_opening(work, kernel), kernel)
    else:
        work = ndi.median_filter(work.view(np.uint8), footprint=kernel, mode="nearest").astype(bool)
    new = work[tuple(slice(m, w - m) for m, w in zip(margin, work.shape))]
    return _result(labels, box, old, new, value, overwrite)


def fill_holes(labels: np.ndarray, value: int, normal_axis: int | None = None, overwrite: bool = False):
    """Fill the holes of `value`: regions not reachable from outside through non-`value`
    voxels (face connectivity). normal_axis None: 3D holes (enclosed in every direction); 0/1/2:
    each slice normal to that index axis on its own (fills a drawn ring on every slice)."""
    box = _value_box(labels, value)
    if box is None:
        return _nothing(labels)
    old = labels[box] == value
    if normal_axis is None:
        new = ndi.binary_fill_holes(old)
    else:
        ax = 2 - normal_axis
        structure = ndi.generate_binary_structure(3, 1)
        structure[tuple(np.array([0, 2]) if a == ax else slice(None) for a in range(3))] = False
        pad = [(1, 1) if a == ax else (0, 0) for a in range(3)]  # end slices must not count as border
        new = ndi.binary_fill_holes(np.pad(old, pad), structure)
        new = new[tuple(slice(1, -1) if a == ax else slice(None) for a in range(3))]
    return _result(labels, box, old, new, value, overwrite)


def keep_largest_component(labels: np.ndarray, value: int, connectivity: int = 1):
    """Erase (set to 0) every island of `value` but the largest. connectivity 1: faces (6
    neighbours, ITK's default), 2: +edges (18), 3: +corners (26). Ties keep the first in array
    order."""
    box = _value_box(labels, value)
    if box is None:
        return _nothing(labels)
    old = labels[box] == value
    islands, n = ndi.label(old, ndi.generate_binary_structure(3, connectivity))
    if n <= 1:
        return _nothing(labels)
    largest = int(np.argmax(np.bincount(islands.ravel())[1:])) + 1
    return _result(labels, box, old, islands == largest, value, overwrite=False)
