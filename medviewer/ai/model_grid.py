"""Putting an input volume on the grid a volumetric model was trained on, and its outputs back.

A 3D model sees voxels, not millimetres: it was trained on volumes with one spacing and one axis
orientation (the manifest's input.spacing and input.direction). An input with another spacing,
flipped or permuted axes, or an oblique direction is resampled (linear) onto a grid with the model's
direction and spacing that covers the input's extent; the model's per-class probabilities are then
resampled (linear) back onto the input's own voxels before the argmax, so a prediction lands on
the right voxels whatever the input's geometry. An input already on the model's grid is passed
through untouched (no interpolation at all).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import SimpleITK as sitk

from medviewer.core.volume import Volume

SPACING_TOLERANCE = 1e-3  # relative
DIRECTION_TOLERANCE = 1e-4


@dataclass
class ModelGrid:
    """The input as the model sees it, and how to bring arrays on that grid back."""
    volume: Volume  # on the model's grid
    original: Volume
    resampled: bool

    def back(self, channels: np.ndarray, background: tuple[float, ...] = ()) -> np.ndarray:
        """Per-channel arrays (C, z, y, x) on the model grid -> (C, z', y', x') on the input grid.
        Outside the model grid, channel c takes background[c] (0 when not given)."""
        if not self.resampled:
            return channels
        reference = _sitk_grid(self.original)
        out = []
        for c, channel in enumerate(channels):
            image = sitk.GetImageFromArray(np.ascontiguousarray(channel, dtype=np.float32))
            _set_geometry(image, self.volume)
            fill = float(background[c]) if c < len(background) else 0.0
            out.append(sitk.GetArrayFromImage(
                sitk.Resample(image, reference, sitk.Transform(), sitk.sitkLinear, fill, sitk.sitkFloat32)))
        return np.stack(out)


def _set_geometry(image: sitk.Image, volume: Volume) -> None:
    image.SetSpacing(volume.spacing)
    image.SetOrigin(volume.origin)
    image.SetDirection(tuple(float(v) for v in volume.direction.ravel()))


def _sitk_grid(volume: Volume) -> sitk.Image:
    image = sitk.Image([int(v) for v in volume.size], sitk.sitkUInt8)
    _set_geometry(image, volume)
    return image


def on_grid(volume: Volume, spacing, direction) -> bool:
    spacing = np.asarray(spacing, float)
    return (np.allclose(volume.direction, np.asarray(direction, float).reshape(3, 3), atol=DIRECTION_TOLERANCE)
            and np.allclose(volume.spacing, spacing, rtol=SPACING_TOLERANCE, atol=0))


def _extent(n: float) -> int:
    """Voxel count spanning n spacings: exact integers (a flip, a permutation) stay exact."""
    return int(round(n)) + 1 if abs(n - round(n)) < 1e-3 else int(np.ceil(n)) + 1


def to_model_grid(volume: Volume, spacing=None, direction=None) -> ModelGrid:
    """The input resampled onto (spacing, direction) covering its extent; untouched when it already
    is on such a grid or the model declares neither."""
    spacing = np.asarray(spacing if spacing is not None else volume.spacing, float)
    direction = np.asarray(direction if direction is not None else volume.direction, float).reshape(3, 3)
    if on_grid(volume, spacing, direction):
        return ModelGrid(volume, volume, False)
    corners = np.array([[i, j, k] for i in (0, volume.size[0] - 1) for j in (0, volume.size[1] - 1)
                        for k in (0, volume.size[2] - 1)], float)
    world = np.array([volume.index_to_world(c) for c in corners])
    in_model_axes = world @ direction  # coordinates along the model's axes
    low, high = in_model_axes.min(0), in_model_axes.max(0)
    size = [_extent(n) for n in (high - low) / spacing]
    origin = direction @ low
    data = volume.data.astype(np.float32, copy=False)
    image = sitk.GetImageFromArray(np.ascontiguousarray(data))
    _set_geometry(image, volume)
    reference = sitk.Image(size, sitk.sitkFloat32)
    reference.SetSpacing(tuple(float(s) for s in spacing))
    reference.SetOrigin(tuple(float(o) for o in origin))
    reference.SetDirection(tuple(float(v) for v in direction.ravel()))
    resampled = sitk.Resample(image, reference, sitk.Transform(), sitk.sitkLinear, 0.0, sitk.sitkFloat32)
    model_volume = Volume(sitk.GetArrayFromImage(resampled), spacing=tuple(spacing), origin=tuple(origin),
                          direction=direction, modality=volume.modality, metadata=dict(volume.metadata))
    return ModelGrid(model_volume, volume, True)
