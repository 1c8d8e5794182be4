"""A Volume as a SimpleITK image and back, for the processing filters.

``to_image(volume, dtype)`` copies the voxels into a SimpleITK image. A 3D volume keeps its full
geometry (spacing, origin, direction: N4 and resampling work in world space). A one-slice volume
becomes a 2D image so that 2D filters see a 2D neighbourhood; it carries only the in-plane spacing
(identity direction, zero origin), since a slice's in-plane corner of its 3x3 direction need not
be a 2D direction at all (a sagittal slice's is singular) and no filter here needs more.
``like(volume, image)`` is the result on the input's grid (geometry and metadata copied from the
input: filters that keep the grid); ``from_image(volume, image)`` takes the new grid from the
image (resample, crop: a 2D image's new spacing, the slice's first voxel staying where it was
unless ``origin`` is given) and the rest (modality, metadata) from the input.
(medviewer.io.writer has its own conversion for writing: processing and io are independent layers.)
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
    if flat:
        image.SetSpacing(volume.spacing[:2])
    else:
        image.SetSpacing(volume.spacing)
        image.SetOrigin(volume.origin)
        image.SetDirection(tuple(float(v) for v in np.asarray(volume.direction).ravel()))
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
    if image.GetDimension() == 2:
        kw = dict(spacing=tuple(image.GetSpacing()) + volume.spacing[2:])
    else:
        kw = dict(spacing=image.GetSpacing(), origin=image.GetOrigin(),
                  direction=np.reshape(image.GetDirection(), (3, 3)))
    kw.update(changes)
    return volume.copy_geometry(array_of(image), **kw)
