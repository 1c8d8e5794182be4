"""Write volumes to NIfTI, NRRD and MetaImage with their geometry (via SimpleITK).

Every file goes through a temporary beside the target and a rename (medviewer.core.tempfiles:
`write_atomically` and `publish` are re-exported here for the other io writers)."""
from __future__ import annotations

import os

import numpy as np
import SimpleITK as sitk

from medviewer.core.errors import ImageWriteError
from medviewer.core.memory import check_fits
from medviewer.core.tempfiles import publish, write_atomically, write_path_atomically  # noqa: F401 (re-exported)
from medviewer.core.volume import Volume
from medviewer.io.sitk_buffer import image_behind
from medviewer.io.sitk_image import extension_of
from medviewer.io.messages import os_reason, plain_reason

WRITABLE = (".nii", ".nii.gz", ".nrrd", ".mha", ".mhd")


def to_sitk(volume: Volume) -> sitk.Image:
    """The SimpleITK image of a volume, vector pixels for RGB. A slice with patient geometry (a
    DICOM slice of any orientation, a one-slice NIfTI) is a 3D image of one slice with the full
    direction and origin, as SimpleITK reads it; a 2D picture without any (PNG, JPEG:
    metadata 'oriented' False) stays 2D. A volume read by medviewer.io is handed over on its own
    buffer (sitk_buffer), others are copied once, after a memory check."""
    as_2d = volume.is_2d and not volume.metadata.get("oriented", False)
    data = volume.data[0] if as_2d else volume.data
    image = image_behind(data)
    if image is None or image.GetDimension() != (2 if as_2d else 3):
        if data.dtype == np.float16 or data.dtype == bool:
            data = data.astype(np.float32 if data.dtype == np.float16 else np.uint8)
        copies = data.nbytes * (1 if data.flags.c_contiguous else 2)
        check_fits(copies, f"writing the {'x'.join(map(str, volume.size))} {data.dtype} image")
        image = sitk.GetImageFromArray(np.ascontiguousarray(data), isVector=volume.is_rgb)
    n = image.GetDimension()
    image.SetSpacing(volume.spacing[:n])
    image.SetOrigin(volume.origin[:n])
    image.SetDirection(tuple(float(v) for v in volume.direction[:n, :n].ravel()))
    set_file_notes(image, volume.metadata.get("file_notes", ""))
    return image


def set_file_notes(image: sitk.Image, notes: str) -> None:
    """NOTES as the file's description: the NIfTI descrip (80 bytes), the NRRD/MHA comment."""
    if notes:
        image.SetMetaData("ITK_FileNotes", str(notes)[:79])


def write_volume(volume: Volume, path: str) -> str:
    """Write atomically (temporary file, then rename). Returns the path written. Raises
    ImageWriteError naming the file, with a reason in plain words; the old file, if any, is intact
    and no temporary is left (one left by a killed save is removed by the next save)."""
    path = os.fspath(path)
    check_writable(path)
    return write_image(to_sitk(volume), path)


def check_writable(path: str) -> None:
    """ImageWriteError unless PATH has a writable extension and can be created or replaced."""
    ext = extension_of(path)
    if ext not in WRITABLE:
        raise ImageWriteError(f"{path}: cannot write '{ext or 'no extension'}' files; use one of "
                              + ", ".join(WRITABLE))
    check_target(path)


def write_image(image: sitk.Image, path: str) -> str:
    """Write a SimpleITK image (any dimension) the way write_volume does."""
    path = os.fspath(path)
    check_writable(path)
    ext = extension_of(path)
    if ext == ".mhd":  # header + .raw pair: the pair cannot be renamed atomically as one
        try:
            sitk.WriteImage(image, path, useCompression=False)
        except RuntimeError as exc:
            raise ImageWriteError(f"{path}: cannot write: {plain_reason(exc, writing=True)}") from exc
        return path
    try:
        write_path_atomically(path, lambda tmp: sitk.WriteImage(
            image, tmp, useCompression=ext in (".nii.gz", ".nrrd", ".mha")), suffix=ext)
    except RuntimeError as exc:
        raise ImageWriteError(f"{path}: cannot write: {plain_reason(exc, writing=True)}") from exc
    except OSError as exc:
        raise ImageWriteError(f"{path}: cannot write: {os_reason(exc)}") from exc
    return path


def check_target(path: str) -> None:
    """ImageWriteError unless PATH can be a new or replaced file: its folder exists, it is no folder."""
    folder = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
        raise ImageWriteError(f"{path}: is a folder; give a file name")
    if not os.path.isdir(folder):
        what = "is a file, not a folder" if os.path.exists(folder) else "does not exist"
        raise ImageWriteError(f"{path}: folder {folder} {what}")
