"""NIfTI, Analyze, NRRD, MHA/MHD, PNG and JPEG through SimpleITK, with SimpleITK's geometry."""
from __future__ import annotations

import os

import numpy as np
import SimpleITK as sitk

from medviewer.core.errors import ImageReadError
from medviewer.core.volume import Volume
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


def check_complete(path: str, image: sitk.Image) -> None:
    """ITK fills a truncated file's missing voxels silently. A JPEG must end with its end-of-image
    marker. For NIfTI, compare the bytes the
    header promises (data offset + dims x bitpix; not ITK's pixel type, which is float for scaled
    data) with the file size (.nii) or the gzip trailer's uncompressed size (ISIZE, modulo 4 GiB)."""
    ext = extension_of(path)
    if ext in (".jpg", ".jpeg"):
        _check_jpeg_end(path)
        return
    layout = _nifti_layout(path, ext) if ext in (".nii", ".nii.gz") else None
    if ext == ".nii":
        size = os.path.getsize(path)
        if layout is not None and size < sum(layout):
            raise ImageReadError(path, f"the file is truncated ({size} bytes; the header promises "
                                       f"{sum(layout)} bytes with the voxels)")
        return
    if not path.lower().endswith(".gz"):
        return
    if layout is not None:
        expected, what = sum(layout), ""
    else:
        expected = image.GetNumberOfPixels() * image.GetNumberOfComponentsPerPixel() * image.GetSizeOfPixelComponent()
        what = " of voxels"
    with open(path, "rb") as fp:
        fp.seek(-4, os.SEEK_END)
        isize = int.from_bytes(fp.read(4), "little")
    if expected < 2**32 and not (expected <= isize <= expected + 2**20):
        raise ImageReadError(path, f"the compressed file is truncated or corrupt (it unpacks to {isize} bytes, "
                                   f"the header promises {expected} bytes{what})")


def _check_jpeg_end(path: str) -> None:
    """A cut-off JPEG lacks its end-of-image marker; libjpeg would fill the rest with grey and
    print "Premature end of JPEG file" on stdout, so this is checked before it reads anything."""
    with open(path, "rb") as fp:
        fp.seek(max(os.path.getsize(path) - 65536, 0))
        if b"\xff\xd9" not in fp.read():
            raise ImageReadError(path, "the JPEG file is truncated (it has no end-of-image marker)")


def _nifti_layout(path: str, ext: str) -> tuple[int, int] | None:
    """(data offset, voxel bytes) from a single-file NIfTI-1/NIfTI-2 header; None when unknown."""
    import gzip
    import math
    import struct

    try:
        with (gzip.open(path, "rb") if ext == ".nii.gz" else open(path, "rb")) as fp:
            head = fp.read(540)
    except (OSError, EOFError, ValueError):
        return None
    for order in "<>":
        if len(head) < 348:
            return None
        (sizeof_hdr,) = struct.unpack(order + "i", head[:4])
        if sizeof_hdr == 348:
            dims = struct.unpack(order + "8h", head[40:56])
            (bitpix,) = struct.unpack(order + "h", head[72:74])
            offset = int(struct.unpack(order + "f", head[108:112])[0])
        elif sizeof_hdr == 540 and len(head) >= 540:
            (bitpix,) = struct.unpack(order + "h", head[14:16])
            dims = struct.unpack(order + "8q", head[16:80])
            (offset,) = struct.unpack(order + "q", head[168:176])
        else:
            continue
        if not 1 <= dims[0] <= 7 or bitpix <= 0 or offset < 0:
            return None
        voxels = math.prod(max(int(d), 1) for d in dims[1:dims[0] + 1])
        return int(offset), voxels * int(bitpix) // 8
    return None


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
    if extension_of(path) in (".jpg", ".jpeg"):
        _check_jpeg_end(path)
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
