"""A DICOM study of several MR series on different grids, written from scratch for the compare tests.

Every series samples one smooth "head" (a world-space function, so two series show the same anatomy
at the same world point whatever their grid) and shares the study and frame of reference.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pydicom.uid import generate_uid

from tests.support.synthetic_dicom import new_dataset

MR_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.4"


@dataclass
class SeriesSpec:
    description: str
    number: int
    shape: tuple[int, int, int] = (12, 40, 40)  # (slices, rows, columns)
    spacing: tuple[float, float, float] = (1.0, 1.0, 3.0)  # (column, row, slice) mm
    origin: tuple[float, float, float] = (-20.0, -20.0, -18.0)
    frame: str | None = None  # FrameOfReferenceUID; None: the study's


def head(world: np.ndarray) -> np.ndarray:
    """A smooth phantom (LPS mm -> value): an ellipsoid with a bright off-centre blob."""
    x, y, z = world[..., 0], world[..., 1], world[..., 2]
    body = ((x / 18.0) ** 2 + (y / 16.0) ** 2 + (z / 15.0) ** 2) < 1.0
    blob = np.exp(-(((x - 6) ** 2 + (y + 4) ** 2 + (z - 3) ** 2) / 30.0))
    return 200.0 * body + 600.0 * blob + 0.5 * (x + 20)


def write_study(folder: Path, series: list[SeriesSpec]) -> dict[str, Path]:
    """One folder per series under FOLDER; returns description -> folder."""
    study, frame = generate_uid(), generate_uid()
    out = {}
    for spec in series:
        target = folder / f"series_{spec.number}"
        target.mkdir(parents=True, exist_ok=True)
        series_uid = generate_uid()
        nz, ny, nx = spec.shape
        sx, sy, sz = spec.spacing
        jj, ii = np.mgrid[0:ny, 0:nx]
        for k in range(nz):
            world = np.stack([spec.origin[0] + ii * sx, spec.origin[1] + jj * sy,
                              np.full(ii.shape, spec.origin[2] + k * sz)], axis=-1)
            pixels = np.clip(head(world), 0, 4000).astype(np.uint16)
            ds = new_dataset(MR_IMAGE_STORAGE, "MR")
            ds.StudyInstanceUID, ds.SeriesInstanceUID = study, series_uid
            ds.FrameOfReferenceUID = spec.frame or frame
            ds.SeriesNumber, ds.InstanceNumber = spec.number, k + 1
            ds.SeriesDescription = spec.description
            ds.SeriesDate, ds.SeriesTime = "20260101", f"{100000 + spec.number:06d}"
            ds.ImagePositionPatient = [spec.origin[0], spec.origin[1], spec.origin[2] + k * sz]
            ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
            ds.PixelSpacing = [sy, sx]
            ds.SliceThickness = sz
            ds.Rows, ds.Columns = ny, nx
            ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
            ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
            ds.PixelData = pixels.tobytes()
            ds.save_as(target / f"{k:03d}.dcm", enforce_file_format=True)
        out[spec.description] = target
    return out


def resampled(volume, spacing, shift=(0.0, 0.0, 0.0), background: float = 0.0):
    """VOLUME on another grid (SimpleITK, linear): SPACING (x, y, z) mm, the origin moved by SHIFT mm,
    the same extent; its metadata (frame of reference) kept: a second series of the same anatomy."""
    import SimpleITK as sitk

    from medviewer.processing.sitk_volume import from_image, to_image

    image = to_image(volume, dtype=None)
    size = [max(1, int(n * s / t)) for n, s, t in zip(image.GetSize(), image.GetSpacing(), spacing)]
    ref = sitk.Image(size, image.GetPixelID())
    ref.SetSpacing(tuple(float(s) for s in spacing))
    ref.SetOrigin(tuple(np.add(image.GetOrigin(), shift)))
    ref.SetDirection(image.GetDirection())
    return from_image(volume, sitk.Resample(image, ref, sitk.Transform(), sitk.sitkLinear, background))
