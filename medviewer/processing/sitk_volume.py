"""A Volume as a SimpleITK image and back, for the processing filters.

``to_image(volume, dtype)`` copies the voxels into a SimpleITK image with the volume's spacing,
origin and direction (a one-slice volume becomes a 2D image on its in-plane axes, so 2D filters
see a 2D neighbourhood; a 3D one keeps its full geometry). ``like(volume, image)`` is the
result on the input's grid (geometry and metadata copied from the input: filters that keep the
grid), ``from_image(volume, image)`` takes the grid from the image (resample, crop) and the rest
(modality, metadata) from the input. (medviewer.io.writer has its own conversion for writing:
processing and io are independent layers.)
"""
from __future__ import annotations

import numpy as np
import SimpleITK as sitk

from medviewer.core.volume import Volume


def to_image(volume: Volume, dtype=np.float32) -> sitk.Image:
    """The voxels as a SimpleITK image of DTYPE (None: the volume's own type)."""
    data = volume.data if dtype is None else volume.data.astype(dtype, copy=False)
    if data.dtype == bool:
        data = data.astype(np.uint8)
    elif data.dtype == np.float16:
        data = data.astype(np.float32)
    flat = volume.shape[0] == 1
    image = sitk.GetImageFromArray(np.ascontiguousarray(data[0] if flat else data))
    n = image.GetDimension()
    image.SetSpacing(volume.spacing[:n])
    image.SetOrigin(volume.origin[:n])
    image.SetDirection(tuple(float(v) for v in np.asarray(volume.direction)[:n, :n].ravel()))
    return image


def array_of(image: sitk.Image) -> np.ndarray:
    """The (z, y, x) voxels of a 2D or 3D image (2D: one slice)."""
    data = sitk.GetArrayFromImage(image)
    return data[np.newaxis] if image.GetDimension() == 2 else data


def like(volume: Volume, image: sitk.Image, **changes) -> Volume:
    """IMAGE's voxels on VOLUME's grid (same shape)."""
    return volume.copy_geometry(array_of(image), **changes)


def from_image(volume: Volume, image: sitk.Image, **changes) -> Volume:
    """IMAGE's voxels and grid; modality, metadata and 2D-ness from VOLUME."""
    n = image.GetDimension()
    spacing, origin = list(volume.spacing), list(volume.origin)
    direction = np.array(volume.direction, float)
    spacing[:n] = image.GetSpacing()
    origin[:n] = image.GetOrigin()
    direction[:n, :n] = np.reshape(image.GetDirection(), (n, n))
    kw = dict(spacing=tuple(spacing), origin=tuple(origin), direction=direction)
    kw.update(changes)
    return volume.copy_geometry(array_of(image), **kw)
