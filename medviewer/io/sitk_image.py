"""NIfTI, Analyze, NRRD, MHA/MHD, PNG and JPEG through SimpleITK, with SimpleITK's geometry."""
from __future__ import annotations

import os

import numpy as np
import SimpleITK as sitk

from medviewer.core.errors import ImageReadError
from medviewer.core.volume import Volume
from medviewer.io.header_checks import check_data_size, check_header, layout
from medviewer.io.messages import os_reason, plain_reason
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
            volume_group=os.path.abspath(path) if dim == 4 else "", volume_index=timepoint or 0)

    def load(self) -> Volume:
        """The voxels, held once (read_pixels: a SimpleITK buffer numpy can write, that the
        writer hands back to SimpleITK without a copy; NIfTI read straight into it instead of
        through ITK's two copies); checked against the available memory first (TooLarge, one
        line naming the file)."""
        return self._read(middle_only=False)

    def preview(self) -> Volume:
        """The middle slice only: a thumbnail need not read the whole file."""
        return self._read(middle_only=True)

    def _read(self, middle_only: bool) -> Volume:
        if not os.path.isfile(self.path):
            raise ImageReadError(self.path, "the file is no longer there")
        data, dim = read_pixels(self.path, self.description, self.timepoint, middle_only)
        if data.ndim > (2 if dim == 2 else 3) and data.shape[-1] not in (3, 4):
            raise ImageReadError(self.path, f"{data.shape[-1]}-component pixels are not supported")
        if dim == 2:
            data = data[np.newaxis]
        # a file of one slice is a 2D image, as a single DICOM slice is; it keeps its 3D geometry
        return Volume(data=data, spacing=self.spacing, origin=self.origin, direction=self.direction,
                      modality=self.modality, is_2d=dim == 2 or data.shape[0] == 1,
                      warnings=list(self.warnings),
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


# --- reading the voxels into one buffer ------------------------------------------------------
STREAMING = {".nii", ".nii.gz"}  # ITK's NIfTI IO reads a region without reading the whole file
SLAB_BYTES = 32 * 2**20  # a slab ITK reads at once (it holds a slab twice while reading it)
GZ_SLABS = 8  # a .nii.gz slab restarts decompression from the file's start: few, larger slabs
GZ_CHUNK = 4 * 2**20  # what gzip decompresses at once into the buffer


def read_pixels(path: str, description: str, timepoint: int | None,
                middle_only: bool = False) -> tuple[np.ndarray, int]:
    """(writeable array on a SimpleITK buffer, the file's dimension): the voxels of the file, of
    time point TIMEPOINT of a 4D file, or of its middle slice only. Checked against the available
    memory (TooLarge) and the file's length before anything is allocated. NIfTI is read straight
    into the buffer (or, when ITK converts the values, in z slabs); other formats whole, by ITK,
    which gives its buffer to the array."""
    from medviewer.core.memory import check_fits, human
    from medviewer.io.sitk_buffer import new_image, writeable_array

    reader = sitk.ImageFileReader()
    reader.SetFileName(path)
    try:
        reader.ReadImageInformation()
    except RuntimeError as exc:
        raise ImageReadError(path, f"cannot read the {description} file: {plain_reason(exc, description)}") from exc
    dim = reader.GetDimension()
    full = [int(s) for s in reader.GetSize()]
    size = full[:3] if dim >= 3 else full[:2]
    z0, nz = (size[2] // 2, 1) if middle_only and dim >= 3 else (0, size[2] if dim >= 3 else 1)
    pixel_id, comps = reader.GetPixelID(), int(reader.GetNumberOfComponents())
    itemsize = sitk.GetArrayViewFromImage(sitk.Image([1] * dim, pixel_id, comps)).itemsize
    slice_bytes = size[0] * size[1] * comps * itemsize
    nbytes = slice_bytes * nz
    streams = extension_of(path) in STREAMING and dim >= 3
    slabs = GZ_SLABS if path.lower().endswith(".gz") else max(1, -(-nbytes // SLAB_BYTES))
    step = max(1, -(-nz // slabs)) if streams else nz
    # besides the volume: ITK's two copies of a slab, or of the whole file when it cannot stream
    whole = slice_bytes * (size[2] if dim >= 3 else 1) * (full[3] if dim == 4 else 1)
    extra = 2 * slice_bytes * step if streams else 2 * whole
    shape = "x".join(str(v) for v in size[:2] + [nz][:dim - 2])
    check_fits(nbytes + extra, f"{path}: the {shape} image ({human(nbytes)})")
    check_complete(path)  # before anything is allocated: ITK reads a short file's end as zeros

    def region(first: int, count: int) -> None:
        reader.SetExtractSize(size[:2] + [count][:dim - 2] + [0][:dim - 3])  # 0: a 4D file's t collapses
        reader.SetExtractIndex([0, 0, first][:dim] + [timepoint or 0][:dim - 3])

    try:
        if not streams:
            if dim == 4 or middle_only and dim == 3:
                region(z0, nz)
            image = reader.Execute()
            check_complete(path, image)
            return writeable_array(image), dim
        _, data = new_image(size[:2] + [nz], pixel_id, comps)
        if _read_nifti_voxels(path, reader, data, z0, timepoint or 0):
            return data, dim
        for first in range(0, nz, step):
            count = min(step, nz - first)
            region(z0 + first, count)
            slab = reader.Execute()  # kept in a name: a view must not outlive its image
            data[first:first + count] = sitk.GetArrayViewFromImage(slab)
            del slab
        return data, dim
    except RuntimeError as exc:
        raise ImageReadError(path, f"cannot read the {description} file: "
                                   f"{plain_reason(exc, description)}") from exc


_NIFTI_DTYPES = {2: "u1", 4: "i2", 8: "i4", 16: "f4", 64: "f8", 256: "i1", 512: "u2", 768: "u4",
                 1024: "i8", 1280: "u8"}


def _nifti_stored_dtype(path: str, reader: sitk.ImageFileReader) -> np.dtype | None:
    """The dtype (with its byte order) of a single-file NIfTI's voxels when ITK reads them as
    they are stored (a plain scalar type, no scl_slope/scl_inter scaling), from the header ITK
    read; None otherwise."""
    import gzip

    keys = set(reader.GetMetaDataKeys())
    if not {"datatype", "scl_slope", "scl_inter", "vox_offset"} <= keys:
        return None
    try:
        code = int(reader.GetMetaData("datatype"))
        slope, inter = float(reader.GetMetaData("scl_slope")), float(reader.GetMetaData("scl_inter"))
        with (gzip.open(path, "rb") if path.lower().endswith(".gz") else open(path, "rb")) as fp:
            sizeof_hdr = fp.read(4)
    except (ValueError, OSError, EOFError):
        return None
    if code not in _NIFTI_DTYPES or slope not in (0.0, 1.0) or inter != 0.0:
        return None
    order = "<" if int.from_bytes(sizeof_hdr, "little") in (348, 540) else ">"
    return np.dtype(order + _NIFTI_DTYPES[code])


def _read_nifti_voxels(path: str, reader: sitk.ImageFileReader, data: np.ndarray, z0: int,
                       timepoint: int) -> bool:
    """Read slices z0.. of time point TIMEPOINT of a NIfTI file straight into DATA (one pass, no
    second buffer; ITK's reader holds a slab twice and restarts a .gz for every slab). False,
    with DATA untouched, when ITK would convert the stored values (_nifti_stored_dtype)."""
    dtype = _nifti_stored_dtype(path, reader)
    if dtype is None or data.dtype != dtype.newbyteorder("=") or data.ndim != 3:
        return False
    nz, ny, nx = data.shape
    plane = ny * nx * dtype.itemsize
    start = int(float(reader.GetMetaData("vox_offset"))) + (timepoint * reader.GetSize()[2] + z0) * plane
    target = memoryview(data.reshape(-1).view(np.uint8))
    import gzip
    import zlib

    try:
        with (gzip.open(path, "rb") if path.lower().endswith(".gz") else open(path, "rb")) as fp:
            fp.seek(start)
            done = 0
            while done < len(target):
                n = fp.readinto(target[done:done + GZ_CHUNK])
                if not n:
                    raise ImageReadError(path, f"the file is truncated (the voxels end after {start + done} bytes)")
                done += n
            size = reader.GetSize()
            if z0 + nz == size[2] and timepoint + 1 == (size[3] if len(size) == 4 else 1):
                while fp.read(1 << 20):  # to the end: gzip checks the stream's CRC and length there
                    pass
    except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
        raise ImageReadError(path, "the compressed file is truncated or corrupt") from exc
    except OSError as exc:
        raise ImageReadError(path, f"cannot read the file: {os_reason(exc)}") from exc
    if not dtype.isnative:
        data.byteswap(inplace=True)
    return True
