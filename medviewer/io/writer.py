"""Write volumes to NIfTI, NRRD and MetaImage with their geometry (via SimpleITK)."""
from __future__ import annotations

import os
import tempfile
from typing import IO, Callable

import numpy as np
import SimpleITK as sitk

from medviewer.core.errors import ImageWriteError
from medviewer.core.volume import Volume
from medviewer.io.sitk_image import extension_of

WRITABLE = (".nii", ".nii.gz", ".nrrd", ".mha", ".mhd")


def to_sitk(volume: Volume) -> sitk.Image:
    """The SimpleITK image of a volume (2D for 2D sources, vector pixels for RGB)."""
    data = volume.data[0] if volume.is_2d else volume.data
    if data.dtype == np.float16 or data.dtype == bool:
        data = data.astype(np.float32 if data.dtype == np.float16 else np.uint8)
    image = sitk.GetImageFromArray(np.ascontiguousarray(data), isVector=volume.is_rgb)
    n = image.GetDimension()
    image.SetSpacing(volume.spacing[:n])
    image.SetOrigin(volume.origin[:n])
    image.SetDirection(tuple(float(v) for v in volume.direction[:n, :n].ravel()))
    return image


def publish(tmp: str, final: str) -> None:
    """Move a finished temporary file into place with the usual permissions (mkstemp makes 0600)."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    os.replace(tmp, final)


def write_atomically(path: str, write: Callable[[IO], None], *, suffix: str = ".tmp", text: bool = False) -> str:
    """Write a file through a temporary one beside it, then publish it (rename); on failure the
    temporary is removed and the OSError propagates. write(fh) fills the open temporary file."""
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=suffix, dir=folder)
    try:
        with (os.fdopen(fd, "w", encoding="utf-8") if text else os.fdopen(fd, "wb")) as fh:
            write(fh)
        publish(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def write_volume(volume: Volume, path: str) -> str:
    """Write atomically (temporary file, then rename). Returns the path written."""
    ext = extension_of(path)
    if ext not in WRITABLE:
        raise ImageWriteError(f"{path}: cannot write '{ext or 'no extension'}' files; use one of "
                              + ", ".join(WRITABLE))
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise ImageWriteError(f"{path}: folder {folder} does not exist")
    image = to_sitk(volume)
    base = os.path.basename(path)
    if ext == ".mhd":  # header + .raw pair: the pair cannot be renamed atomically as one
        try:
            sitk.WriteImage(image, path, useCompression=False)
        except RuntimeError as exc:
            raise ImageWriteError(f"{path}: {exc}") from exc
        return path
    fd, tmp = tempfile.mkstemp(prefix="." + base + ".", suffix=ext, dir=folder)
    os.close(fd)
    try:
        sitk.WriteImage(image, tmp, useCompression=ext in (".nii.gz", ".nrrd", ".mha"))
        publish(tmp, path)
    except (RuntimeError, OSError) as exc:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise ImageWriteError(f"{path}: {' '.join(str(exc).split())[:300]}") from exc
    return path
