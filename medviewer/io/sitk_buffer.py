"""One pixel buffer for reading, showing and writing: a SimpleITK image that numpy can write.

`sitk.GetArrayFromImage` and `sitk.GetImageFromArray` copy the voxels, and
`sitk.GetArrayViewFromImage` is read-only, so reading a file and writing it again held the
volume two or three times. `writeable_array(image)` gives a numpy array on the image's own buffer
that keeps the image alive (it is the array's base); `image_behind(array)` finds that image again
when the array is still the whole buffer, so that a writer can hand it to SimpleITK without a
copy. The image is reachable only through the array: nothing else holds it, so setting its
geometry (which makes an ITK image unique) never moves the buffer.
"""
from __future__ import annotations

import numpy as np
import SimpleITK as sitk


class _Buffer:
    """The array interface of a SimpleITK image's pixels, writeable, holding the image."""

    def __init__(self, image: sitk.Image):
        self.image = image
        view = sitk.GetArrayViewFromImage(image)  # makes the image's buffer its own
        interface = dict(view.__array_interface__)
        interface["data"] = (interface["data"][0], False)  # (address, read-only flag)
        self.address = interface["data"][0]
        self.__array_interface__ = interface


def writeable_array(image: sitk.Image) -> np.ndarray:
    """The pixels of IMAGE as a writeable (z, y, x[, c]) array without a copy. IMAGE must not be
    used elsewhere afterwards (the array owns it)."""
    return np.asarray(_Buffer(image))


def new_image(size: tuple[int, ...], pixel_id: int, components: int = 1) -> tuple[sitk.Image, np.ndarray]:
    """A zeroed SimpleITK image of SIZE (x, y[, z]) and its writeable array."""
    image = sitk.Image([int(s) for s in size], pixel_id, int(components))
    return image, writeable_array(image)


_PIXEL_IDS = {  # numpy type -> (scalar, vector) SimpleITK pixel type
    np.dtype(np.uint8): (sitk.sitkUInt8, sitk.sitkVectorUInt8),
    np.dtype(np.int8): (sitk.sitkInt8, sitk.sitkVectorInt8),
    np.dtype(np.uint16): (sitk.sitkUInt16, sitk.sitkVectorUInt16),
    np.dtype(np.int16): (sitk.sitkInt16, sitk.sitkVectorInt16),
    np.dtype(np.uint32): (sitk.sitkUInt32, sitk.sitkVectorUInt32),
    np.dtype(np.int32): (sitk.sitkInt32, sitk.sitkVectorInt32),
    np.dtype(np.uint64): (sitk.sitkUInt64, sitk.sitkVectorUInt64),
    np.dtype(np.int64): (sitk.sitkInt64, sitk.sitkVectorInt64),
    np.dtype(np.float32): (sitk.sitkFloat32, sitk.sitkVectorFloat32),
    np.dtype(np.float64): (sitk.sitkFloat64, sitk.sitkVectorFloat64),
}


def empty_array(shape: tuple[int, ...], dtype, channels: bool = False) -> np.ndarray:
    """A zeroed (z, y, x[, c]) array on a SimpleITK buffer (an ordinary array for a type
    SimpleITK has not), for a reader that fills it: the writer then needs no copy."""
    dtype = np.dtype(dtype)
    if dtype not in _PIXEL_IDS or len(shape) != (4 if channels else 3):
        return np.zeros(shape, dtype)
    scalar, vector = _PIXEL_IDS[dtype]
    size = tuple(shape[:3][::-1])
    return new_image(size, vector if channels else scalar, shape[3] if channels else 1)[1]


def image_behind(array: np.ndarray) -> sitk.Image | None:
    """The SimpleITK image whose whole buffer ARRAY is (as writeable_array made it), else None
    (a slice, a reshaped or converted copy, an ordinary numpy array)."""
    base = array
    while base is not None and not isinstance(base, _Buffer):
        base = getattr(base, "base", None)
    if base is None:
        return None
    whole = np.asarray(base)
    if (array.__array_interface__["data"][0] != base.address or array.shape != whole.shape
            or array.dtype != whole.dtype or not array.flags.c_contiguous):
        return None
    if sitk.GetArrayViewFromImage(base.image).__array_interface__["data"][0] != base.address:
        return None  # the image no longer holds this buffer (cannot happen unless it was shared)
    return base.image
