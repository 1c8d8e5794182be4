"""NIfTI, Analyze, NRRD, MHA/MHD, PNG and JPEG through SimpleITK, with SimpleITK's geometry."""
from __future__ import annotations

import os

import numpy as np
import SimpleITK as sitk

from medviewer.core.errors import ImageReadError
from medviewer.core.volume import Volume
from medviewer.io.sources import ImageSource

EXTENSIONS = {
    ".nii": "NIfTI", ".nii.gz": "NIfTI", ".hdr": "Analyze 7.5 / NIfTI pair", ".nrrd": "NRRD",
    ".nhdr": "NRRD", ".mha": "MetaImage", ".mhd": "MetaImage", ".png": "PNG", ".jpg": "JPEG",
    ".jpeg": "JPEG",
}
# data files that belong to a header listed above, not images by themselves
COMPANIONS = {".img", ".raw", ".zraw", ".img.gz"}
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


def _error_text(exc: Exception) -> str:
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    useful = [ln for ln in lines if "Description:" in ln or "ERROR" in ln.upper()]
    text = (useful or lines or [type(exc).__name__])[-1]
    return text.split("Description:")[-1].strip()[:300]


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
            components=int(reader.GetNumberOfComponents()))

    def load(self) -> Volume:
        try:
            image = sitk.ReadImage(self.path)
        except RuntimeError as exc:
            raise ImageReadError(self.path, f"cannot read image: {_error_text(exc)}") from exc
        _check_complete(self.path, image)
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
                                "oriented": extension_of(self.path) not in RASTER})


def _check_complete(path: str, image: sitk.Image) -> None:
    """ITK fills a truncated .gz file's missing voxels silently: compare the gzip trailer's
    uncompressed size (ISIZE, modulo 4 GiB) with the voxel data the header promises."""
    if not path.lower().endswith(".gz"):
        return
    expected = image.GetNumberOfPixels() * image.GetNumberOfComponentsPerPixel() * image.GetSizeOfPixelComponent()
    with open(path, "rb") as fp:
        fp.seek(-4, os.SEEK_END)
        isize = int.from_bytes(fp.read(4), "little")
    if expected < 2**32 and not (expected <= isize <= expected + 2**20):
        raise ImageReadError(path, f"the compressed file is truncated or corrupt (it unpacks to {isize} bytes, "
                                   f"the header promises {expected} bytes of voxels)")


def _modality(path: str) -> str:
    return "XR" if extension_of(path) in RASTER else ""


def inspect_file(path: str) -> list[FileImage]:
    """Read the header of an image file; raises ImageReadError with the reason."""
    if not os.path.isfile(path):
        raise ImageReadError(path, "no such file")
    if os.path.getsize(path) == 0:
        raise ImageReadError(path, "the file is empty")
    reader = sitk.ImageFileReader()
    reader.SetFileName(path)
    try:
        reader.ReadImageInformation()
    except RuntimeError as exc:
        fmt = EXTENSIONS.get(extension_of(path), "image")
        raise ImageReadError(path, f"not a readable {fmt} file: {_error_text(exc)}") from exc
    dim = reader.GetDimension()
    if dim not in (2, 3, 4):
        raise ImageReadError(path, f"{dim}D images are not supported")
    if any(s <= 0 for s in reader.GetSpacing()):
        raise ImageReadError(path, f"invalid voxel spacing {reader.GetSpacing()} in the header")
    if dim == 4:
        return [FileImage(path, reader, t) for t in range(reader.GetSize()[3])]
    return [FileImage(path, reader)]
