"""NIfTI, Analyze, NRRD, MHA/MHD, PNG and JPEG through SimpleITK, with SimpleITK's geometry."""
from __future__ import annotations

import os

import numpy as np
import SimpleITK as sitk

from medviewer.core.errors import ImageReadError
from medviewer.core.volume import Volume
from medviewer.io.header_checks import check_data_size, check_header, layout
from medviewer.io.messages import plain_reason
from medviewer.io.sources import ImageSource

EXTENSIONS = {
    ".nii": "NIfTI", ".nii.gz": "NIfTI", ".hdr": "Analyze 7.5 / NIfTI pair", ".nrrd": "NRRD",
    ".nhdr": "NRRD", ".mha": "MetaImage", ".mhd": "MetaImage", ".png": "PNG", ".jpg": "JPEG",
    ".jpeg": "JPEG",
}
# data files that belong to a header listed above, not images by themselves
COMPANIONS = {".img", ".raw", ".zraw", ".img.gz"}
# Raster formats record no patient geometry: their spacing is a placeholder (or, from JFIF/pHYs
# density, a print resolution), so they load with spacing_known False.
RASTER = {".png", ".jpg", ".jpeg"}


def extension_of(path: str) -> str:
    name = os.path.basename(path).lower()
    for ext in (".nii.gz", ".img.gz"):
        if name.endswith(ext):
            return ext
    return os.path.splitext(name)[1]


def _to_3d(values, fill: float) -> tuple[float, float, float]:
    values = list(values)[:3]
    return tuple(float(v) for v in values + [fill] * (3 - len(values)))  # type: ignore[return-value]


def _direction_3d(direction, dim: int) -> np.ndarray:
    d = np.asarray(direction, dtype=float).reshape(dim, dim)
    out = np.eye(3)
    n = min(dim, 3)
    out[:n, :n] = d[:n, :n]
    return out


class FileImage(ImageSource):
    """An image file read with SimpleITK; a 4D file gives one source per time point."""

    def __init__(self, path: str, reader: sitk.ImageFileReader, timepoint: int | None = None):
        self.path = path
        self.timepoint = timepoint
        dim = reader.GetDimension()
        size = list(reader.GetSize())
        warnings = []
        name = os.path.basename(path)
        source_id = name
        self.dimension = dim
        if dim == 4:
            warnings.append(f"4D image: time point {timepoint + 1} of {size[3]}")
            source_id = f"{name}[{timepoint}]"
        fmt = EXTENSIONS.get(extension_of(path), reader.GetImageIO())
        super().__init__(
            id=source_id, kind="file", modality=_modality(path), description=fmt,
            size=tuple(int(s) for s in (size + [1, 1])[:3]), spacing=_to_3d(reader.GetSpacing(), 1.0),
            origin=_to_3d(reader.GetOrigin(), 0.0), direction=_direction_3d(reader.GetDirection(), dim),
            files=[path], transfer_syntaxes=[], warnings=warnings,
            spacing_known=extension_of(path) not in RASTER,
            components=int(reader.GetNumberOfComponents()),
            volume_group=name if dim == 4 else "", volume_index=timepoint or 0)

    def load(self) -> Volume:
        if not os.path.isfile(self.path):
            raise ImageReadError(self.path, "the file is no longer there")
        try:
            image = sitk.ReadImage(self.path)
        except RuntimeError as exc:
            raise ImageReadError(self.path, f"cannot read the {self.description} file: "
                                            f"{plain_reason(exc, self.description)}") from exc
        check_complete(self.path, image)
        if self.dimension == 4:
            size = list(image.GetSize())
            image = sitk.Extract(image, size[:3] + [0], [0, 0, 0, self.timepoint])
        data = sitk.GetArrayFromImage(image)
        vector = image.GetNumberOfComponentsPerPixel() > 1
        is_2d = image.GetDimension() == 2
        if vector and data.shape[-1] not in (3, 4):
            raise ImageReadError(self.path, f"{data.shape[-1]}-component pixels are not supported")
        if is_2d:
            data = data[np.newaxis]
        return Volume(data=data, spacing=self.spacing, origin=self.origin, direction=self.direction,
                      modality=self.modality, is_2d=is_2d, warnings=list(self.warnings),
                      metadata={"source": "file", "path": self.path, "format": self.description,
                                "oriented": extension_of(self.path) not in RASTER,
                                "spacing_known": self.spacing_known})


def check_complete(path: str, image: sitk.Image | None = None) -> None:
    """ITK fills a truncated file's missing voxels silently: raise ImageReadError when the file
    holds less data than its header promises (header_checks: the file size, the gzip trailer, the
    PNG chunks, the JPEG end-of-image marker). IMAGE is not needed (kept for the callers)."""
    found = layout(path)
    if found is not None:
        check_data_size(path, found)


def _modality(path: str) -> str:
    return "XR" if extension_of(path) in RASTER else ""


def inspect_file(path: str) -> list[FileImage]:
    """Read the header of an image file; raises ImageReadError with the reason."""
    if os.path.isdir(path):
        raise ImageReadError(path, "this is a folder, not an image file")
    if not os.path.isfile(path):
        raise ImageReadError(path, "no such file")
    if os.path.getsize(path) == 0:
        raise ImageReadError(path, "the file is empty")
    check_header(path)  # before ITK sees it: a hostile header can crash it or make it allocate GBs
    reader = sitk.ImageFileReader()
    reader.SetFileName(path)
    try:
        reader.ReadImageInformation()
    except RuntimeError as exc:
        fmt = EXTENSIONS.get(extension_of(path), "image")
        raise ImageReadError(path, f"not a readable {fmt} file: {plain_reason(exc, fmt if fmt != 'image' else '')}") from exc
    dim = reader.GetDimension()
    if dim not in (2, 3, 4):
        raise ImageReadError(path, f"{dim}D images are not supported")
    if any(s <= 0 for s in reader.GetSpacing()):
        raise ImageReadError(path, f"invalid voxel spacing {reader.GetSpacing()} in the header")
    if dim == 4:
        return [FileImage(path, reader, t) for t in range(reader.GetSize()[3])]
    return [FileImage(path, reader)]
