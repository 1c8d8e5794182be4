"""Mosaic DICOM: one stored image tiled with the slices of a whole volume.

Siemens (VB/VD/VE) EPI, fMRI and DWI store a volume as a grid of ceil(sqrt(n)) x ceil(sqrt(n))
tiles, n from the CSA image header's NumberOfImagesInMosaic (or the public-private
(0019,100A)); ImagePositionPatient is the corner of the whole grid, so the first slice lies
(stored - tile) / 2 pixels further along the row and column directions (the correction dcm2niix
and nibabel apply), and the slices follow the CSA SliceNormalVector at SpacingBetweenSlices.
UIH "SaveBySlc"/VFRAME images tile the same way; the slice count is (0065,1050) and every slice's
position is in the MRVFrameSequence (0065,1051).

`expand_mosaic(record)` turns the record of such a file into one record per slice (each with
its tile's place in the stored image); anything inconsistent leaves the file as it is, with a
reason the caller reports.
"""
from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue

from medviewer.io import siemens_csa

UIH_SLICES = (0x0065, 0x1050)
UIH_FRAMES = (0x0065, 0x1051)
SIEMENS_MOSAIC_COUNT = (0x0019, 0x100A)


def _image_type(ds: Dataset) -> list[str]:
    value = ds.get("ImageType", [])
    return [str(v).upper() for v in (value if not isinstance(value, str) else [value])]


def _number(ds: Dataset, tag: tuple[int, int]) -> float | None:
    element = ds.get(tag)
    if element is None:
        return None
    value = element.value
    if isinstance(value, (bytes, bytearray)):
        if len(value) == 2:  # US stored as UN (implicit VR, no private dictionary)
            return float(int.from_bytes(value, "little"))
        value = value.decode("latin-1", "replace").strip("\x00 ")
    if isinstance(value, (list, tuple, MultiValue)):
        value = value[0] if len(value) else None
    try:
        out = float(value)
    except (TypeError, ValueError, IndexError):
        return None
    return out if math.isfinite(out) else None


def mosaic_slices(ds: Dataset) -> tuple[str, int] | None:
    """("siemens"|"uih", slice count) when the header says the image is a mosaic."""
    kinds = _image_type(ds)
    if "MOSAIC" in kinds and "Rows" in ds:
        csa = siemens_csa.image_header(ds)
        n = siemens_csa.first(csa, "NumberOfImagesInMosaic")
        if n is None:
            n = _number(ds, SIEMENS_MOSAIC_COUNT)
        return ("siemens", int(n)) if n else ("siemens", 0)
    if "VFRAME" in kinds and UIH_SLICES in ds:
        n = _number(ds, UIH_SLICES)
        return ("uih", int(n)) if n else ("uih", 0)
    return None


def _uih_positions(ds: Dataset, n: int) -> list[np.ndarray] | None:
    element = ds.get(UIH_FRAMES)
    items = getattr(element, "value", None) if element is not None else None
    if items is None or len(items) < n:
        return None
    out = []
    for item in list(items)[:n]:
        try:
            pos = np.array([float(v) for v in item.ImagePositionPatient], dtype=float)
        except (AttributeError, TypeError, ValueError):
            return None
        if pos.size != 3 or not np.all(np.isfinite(pos)):
            return None
        out.append(pos)
    return out


def expand_mosaic(record):
    """The per-slice records of a mosaic file, or (None, reason) when the header is inconsistent;
    (None, "") when it is no mosaic. `record` is the FrameRecord of the whole stored image."""
    ds = record.header
    found = mosaic_slices(ds)
    if found is None or record.frame is not None:
        return None, ""
    vendor, n = found
    if n < 1:
        return None, "ImageType says MOSAIC but the header does not give the number of slices: shown as stored"
    grid = math.ceil(math.sqrt(n))
    rows, cols = record.rows // grid, record.columns // grid
    if rows < 1 or cols < 1 or record.rows % grid or record.columns % grid:
        return None, (f"mosaic of {n} slices does not tile the {record.columns}x{record.rows} image: "
                      "shown as stored")
    if record.orientation is None or record.position is None:
        return None, "mosaic without image position/orientation: shown as stored"
    row_dir = record.orientation[:3] / np.linalg.norm(record.orientation[:3])
    col_dir = record.orientation[3:] / np.linalg.norm(record.orientation[3:])
    dy, dx = record.pixel_spacing if record.pixel_spacing is not None else (1.0, 1.0)
    if vendor == "uih":
        positions = _uih_positions(ds, n)
        if positions is None:
            return None, "UIH mosaic without per-slice positions (MRVFrameSequence): shown as stored"
    else:
        csa = siemens_csa.image_header(ds)
        normal = siemens_csa.first(csa, "SliceNormalVector", 3)
        normal = np.array(normal, dtype=float) if normal is not None else np.cross(row_dir, col_dir)
        if not np.all(np.isfinite(normal)) or np.linalg.norm(normal) < 1e-6:
            normal = np.cross(row_dir, col_dir)
        normal = normal / np.linalg.norm(normal)
        step = _number(ds, (0x0018, 0x0088)) or record.slice_thickness or 1.0
        first = (record.position + row_dir * dx * (record.columns - cols) / 2
                 + col_dir * dy * (record.rows - rows) / 2)
        positions = [first + normal * step * k for k in range(n)]
    out = []
    for k, pos in enumerate(positions):
        tile = ((k // grid) * rows, (k % grid) * cols)
        out.append(replace(record, rows=rows, columns=cols, position=pos, tile=tile,
                           stored_shape=(record.rows, record.columns), mosaic_index=k))
    return out, ""
