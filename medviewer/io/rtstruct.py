"""Import RT Structure Sets: each ROI's closed planar contours rasterised into a label map.

Contour points (LPS mm) are mapped to voxel indices with the image geometry; each contour
is filled on the slice nearest its plane, with the even-odd rule applied across all the
ROI's contours on that slice (so an inner contour cuts a hole, as in most planning systems).
A pixel belongs to a contour when its centre lies inside. ROI k (in Structure Set order)
becomes label k, named and coloured from the file; where ROIs overlap, the later one wins.
"""
from __future__ import annotations

from collections import defaultdict

import numpy as np
import pydicom

from medviewer.core.errors import ImageReadError, MedViewerError
from medviewer.core.labels import LabelMap, LabelTable
from medviewer.core.volume import Volume

RTSTRUCT_STORAGE = "1.2.840.10008.5.1.4.1.1.481.3"
PLANE_TOL = 0.25  # a contour may stray this many slices from its slice's centre plane


class RTStructReferenceMismatch(MedViewerError):
    """The structure set was drawn on another frame of reference than the open series."""


def polygon_mask(x: np.ndarray, y: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """(rows, columns) mask of the pixel centres inside a closed polygon (even-odd rule);
    x, y are continuous column and row indices of the vertices."""
    rows, cols = shape
    mask = np.zeros(shape, bool)
    if len(x) < 3:
        return mask
    x0, y0 = np.asarray(x, float), np.asarray(y, float)
    x1, y1 = np.roll(x0, -1), np.roll(y0, -1)
    for j in range(max(0, int(np.ceil(y0.min()))), min(rows - 1, int(np.floor(y0.max()))) + 1):
        crossing = (y0 <= j) != (y1 <= j)  # half-open: a vertex on the scan line counts once
        if not crossing.any():
            continue
        xa, ya, xb, yb = x0[crossing], y0[crossing], x1[crossing], y1[crossing]
        xs = np.sort(xa + (j - ya) * (xb - xa) / (yb - ya))
        for left, right in zip(xs[0::2], xs[1::2]):
            lo, hi = max(int(np.ceil(left)), 0), min(int(np.floor(right)), cols - 1)
            if lo <= hi:
                mask[j, lo:hi + 1] = True
    return mask


def _read(path: str) -> pydicom.Dataset:
    try:
        ds = pydicom.dcmread(str(path))
    except Exception as exc:  # damaged files raise many kinds of errors
        raise ImageReadError(path, f"cannot read DICOM: {' '.join(str(exc).split())[:200]}") from exc
    if str(ds.get("SOPClassUID", "")) != RTSTRUCT_STORAGE and ds.get("Modality") != "RTSTRUCT":
        raise ImageReadError(path, "not an RT Structure Set")
    return ds


def _check_reference(path: str, ds: pydicom.Dataset, series) -> None:
    frames = getattr(series, "frames", None)
    uid = str(frames[0].header.get("FrameOfReferenceUID", "") or "") if frames else ""
    used = {str(r.get("ReferencedFrameOfReferenceUID", "")) for r in ds.get("StructureSetROISequence", [])}
    used |= {str(r.get("FrameOfReferenceUID", "")) for r in ds.get("ReferencedFrameOfReferenceSequence", [])}
    used.discard("")
    if uid and used and uid not in used:
        raise RTStructReferenceMismatch(f"{path}: the structures were drawn on frame of reference "
                                        f"{', '.join(sorted(used))}, the open series is {uid}")


def import_rtstruct(path: str, series, image: Volume) -> LabelMap:
    """The ROIs of an RTSTRUCT file as labels on IMAGE's grid (SERIES: its DicomSeries, or None)."""
    path = str(path)
    ds = _read(path)
    _check_reference(path, ds, series)
    names = {int(r.ROINumber): str(r.get("ROIName", "") or "") for r in ds.get("StructureSetROISequence", [])}
    contours = {int(c.ReferencedROINumber): c for c in ds.get("ROIContourSequence", [])
                if "ReferencedROINumber" in c}
    order = list(names) + [n for n in contours if n not in names]
    if len(order) > 255:
        raise ImageReadError(path, f"{len(order)} ROIs; at most 255 fit a label map")
    nz, ny, nx = image.shape
    data = np.zeros((nz, ny, nx), np.uint8)
    table = LabelTable()
    off_grid = 0
    for value, number in enumerate(order, 1):
        roi = contours.get(number)
        colour = roi.get("ROIDisplayColor") if roi is not None else None
        colour = tuple(int(c) for c in colour) if colour is not None and len(colour) == 3 else None
        table.add(names.get(number) or f"ROI {number}", value, colour)
        slices: dict[int, np.ndarray] = defaultdict(lambda: np.zeros((ny, nx), bool))
        for contour in (roi.get("ContourSequence", []) if roi is not None else []):
            if str(contour.get("ContourGeometricType", "")).upper() != "CLOSED_PLANAR":
                continue
            points = np.asarray([float(v) for v in contour.get("ContourData", [])], float)
            if points.size < 9 or points.size % 3:
                continue
            ijk = image.world_to_index(points.reshape(-1, 3))
            k = int(round(float(np.mean(ijk[:, 2]))))
            if not 0 <= k < nz or np.max(np.abs(ijk[:, 2] - k)) > PLANE_TOL:
                off_grid += 1
                continue
            slices[k] ^= polygon_mask(ijk[:, 0], ijk[:, 1], (ny, nx))
        for k, mask in slices.items():
            data[k][mask] = value
    if off_grid and not data.any():
        raise RTStructReferenceMismatch(f"{path}: none of the contours lies on a slice of the open image "
                                        f"({off_grid} contours off the grid)")
    name = str(ds.get("StructureSetLabel", "") or "") or "Structures"
    return LabelMap((nz, ny, nx), name=name, table=table, data=data)
