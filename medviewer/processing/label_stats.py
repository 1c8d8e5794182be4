"""Per-label statistics: voxel count, volume (or area for 2D images) and intensities.

Intensities are in image units (HU for CT, since the DICOM loader applies the rescale);
`std` is the population standard deviation (numpy's default, ddof=0). Labels listed in
the table but without voxels get a row with zero voxels and no intensity values. For RGB
images only counts and sizes are given. For 2D images `area_mm2` is given and
`volume_mm3` is None (a single slice has no depth).
"""
from __future__ import annotations

import csv
import io
import os

import numpy as np

from medviewer.core.errors import MedViewerError
from medviewer.core.tempfiles import write_atomically
from medviewer.core.volume import Volume

FIELDS = ["label", "name", "voxels", "volume_mm3", "area_mm2", "mean", "std", "min", "max", "median"]


def label_statistics(image: Volume, labelmap) -> list[dict]:
    """One dict per label (table entries and values present), sorted by label value."""
    labels = np.asarray(labelmap.data)
    if labels.shape != image.shape:
        raise MedViewerError(f"labels {labelmap.name!r}: shape {labels.shape} does not match the image {image.shape}")
    inside = labels != 0
    values = labels[inside]
    intensities = None if image.is_rgb else image.data[inside]
    order = np.argsort(values, kind="stable")
    values = values[order]
    if intensities is not None:
        intensities = intensities[order].astype(np.float64)
    wanted = sorted({lab.value for lab in labelmap.table} | {int(v) for v in np.unique(values)})
    sx, sy, sz = image.spacing
    rows = []
    for value in wanted:
        lo, hi = np.searchsorted(values, value, "left"), np.searchsorted(values, value, "right")
        count = int(hi - lo)
        label = labelmap.table.get(value)
        row = {"label": value, "name": label.name if label else f"Label {value}", "voxels": count,
               "volume_mm3": None if image.is_2d else count * sx * sy * sz}
        if image.is_2d:
            row["area_mm2"] = count * sx * sy
        part = intensities[lo:hi] if intensities is not None and count else None
        row.update(mean=None, std=None, min=None, max=None, median=None)
        if part is not None:
            row.update(mean=float(part.mean()), std=float(part.std()), min=float(part.min()),
                       max=float(part.max()), median=float(np.median(part)))
        rows.append(row)
    return rows


def csv_text(stats: list[dict]) -> str:
    fields = [f for f in FIELDS if any(f in row for row in stats)] or FIELDS
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=fields, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in stats:
        writer.writerow({k: ("" if row.get(k) is None else row.get(k)) for k in fields})
    return out.getvalue()


def write_csv(stats: list[dict], path: str) -> str:
    """Write the statistics as CSV (atomically: a temporary file, then a rename)."""
    path = str(path)
    text = csv_text(stats)
    if os.path.isdir(path):
        raise MedViewerError(f"{path}: is a folder; give a file name for the statistics")
    try:
        write_atomically(path, lambda fp: fp.write(text), suffix=".csv", text=True, newline="")
    except OSError as exc:
        folder = os.path.dirname(os.path.abspath(path))
        reason = f"folder {folder} does not exist" if not os.path.isdir(folder) else (exc.strerror or str(exc))
        raise MedViewerError(f"{path}: cannot write statistics: {reason}") from exc
    return path
