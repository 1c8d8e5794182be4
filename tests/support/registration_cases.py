"""Known-transform registration cases for the registration tests and bench.

A case is a FIXED volume and a MOVING one made from it by a known map D from the moving image's
world to the fixed image's (moving(y) = fixed(D(y)), SimpleITK's resampling), so the true
fixed -> moving transform is D's inverse and the target registration error of an estimate T is
exact without inverting D: ``|T(D(y)) - y|`` over the head voxels y of the moving image.

Images: a real MR (../shared/data: hippocampus T1 crops, brain_t1; the tests skip when absent) or
``synthetic_head``, a seeded T1-like phantom (scalp, skull, grey matter with a smooth texture, white
matter, ventricles) in an LPS-flipped, anisotropic grid, so CI without the shared data still runs.
"""
from __future__ import annotations

import numpy as np
import SimpleITK as sitk

from medviewer.core.volume import Volume


def volume_of(image: sitk.Image) -> Volume:
    return Volume(sitk.GetArrayFromImage(image), spacing=image.GetSpacing(), origin=image.GetOrigin(),
                  direction=np.reshape(image.GetDirection(), (3, 3)), modality="MR")


def image_of(volume: Volume) -> sitk.Image:
    image = sitk.GetImageFromArray(np.ascontiguousarray(volume.data, dtype=np.float32))
    image.SetSpacing(volume.spacing)
    image.SetOrigin(volume.origin)
    image.SetDirection(tuple(volume.direction.ravel()))
    return image


def read_mr(path, shrink: int = 1) -> Volume:
    image = sitk.ReadImage(str(path), sitk.sitkFloat32)
    if shrink > 1:
        image = sitk.Shrink(sitk.SmoothingRecursiveGaussian(image, shrink * 0.5 * min(image.GetSpacing())),
                            [shrink] * 3)
    return volume_of(image)


def synthetic_head(size=(40, 48, 36), spacing=(1.2, 1.0, 1.3), seed: int = 7) -> Volume:
    """A T1-like head phantom (x, y, z SIZE voxels), values 0..~160, with a textured cortex."""
    nx, ny, nz = size
    z, y, x = np.meshgrid(*(np.linspace(-1, 1, n) for n in (nz, ny, nx)), indexing="ij")
    r = np.sqrt((x / 0.85) ** 2 + (y / 0.9) ** 2 + (z / 0.8) ** 2)
    rng = np.random.default_rng(seed)
    texture = sitk.GetArrayFromImage(sitk.SmoothingRecursiveGaussian(
        sitk.GetImageFromArray(rng.normal(0, 1, r.shape).astype(np.float32)), 1.5))
    texture /= texture.std()
    data = np.zeros(r.shape, np.float32)
    data[r < 1.0] = 110  # scalp
    data[r < 0.9] = 20   # skull
    brain = r < 0.82
    data[brain] = 75 + 12 * texture[brain]  # grey matter
    white = np.sqrt(((x - 0.1) / 0.6) ** 2 + (y / 0.7) ** 2 + ((z + 0.1) / 0.55) ** 2) + 0.15 * texture < 0.9
    data[white & brain] = 130 + 5 * texture[white & brain]
    ventricles = (((x + 0.15) / 0.18) ** 2 + (y / 0.4) ** 2 + (z / 0.2) ** 2 < 1) | \
                 (((x - 0.25) / 0.12) ** 2 + ((y + 0.1) / 0.3) ** 2 + ((z - 0.1) / 0.2) ** 2 < 1)
    data[ventricles] = 30
    data += rng.normal(0, 2, data.shape).astype(np.float32)
    direction = np.diag([-1.0, -1.0, 1.0])
    origin = (30.0, 20.0, -15.0)
    return Volume(np.clip(data, 0, None), spacing=spacing, origin=origin, direction=direction, modality="MR")


def centre_of(volume: Volume) -> tuple:
    return tuple(volume.index_to_world((np.asarray(volume.size) - 1) / 2.0))


def rigid(volume: Volume, angles=(0.08, -0.06, 0.1), shift=(2.0, -1.5, 1.0)) -> sitk.Euler3DTransform:
    """A rigid D about the image's centre (radians, mm)."""
    return sitk.Euler3DTransform(centre_of(volume), *angles, shift)


def affine(volume: Volume) -> sitk.AffineTransform:
    """An affine D: 8% / -6% / 5% scalings, a small shear and rotation, a shift."""
    out = sitk.AffineTransform(3)
    out.SetCenter(centre_of(volume))
    out.SetMatrix(tuple((np.array([[1.08, 0.05, 0.0], [-0.04, 0.94, 0.03], [0.0, 0.06, 1.05]])).ravel()))
    out.SetTranslation((1.5, -1.0, 0.8))
    return out


def smooth_deformation(volume: Volume, amplitude_mm: float, mesh=(2, 2, 2), seed: int = 3) -> sitk.BSplineTransform:
    """A B-spline D with seeded random coefficients (normal, sd AMPLITUDE_MM) on a coarse mesh."""
    deform = sitk.BSplineTransformInitializer(image_of(volume), list(mesh), 3)
    rng = np.random.default_rng(seed)
    deform.SetParameters(tuple(rng.normal(0, amplitude_mm, len(deform.GetParameters()))))
    return deform


def moved(fixed: Volume, deform: sitk.Transform) -> Volume:
    """The moving image fixed(D(y)) on the fixed grid (linear; 0 outside)."""
    image = image_of(fixed)
    return volume_of(sitk.Resample(image, image, deform, sitk.sitkLinear, 0.0))


def remapped(volume: Volume) -> Volume:
    """Another contrast: a non-monotonic intensity map (what mean squares cannot match, MI can)."""
    v = volume.data.astype(np.float32)
    u = (v - v.min()) / max(float(v.max() - v.min()), 1e-6)
    return volume.copy_geometry((200 * np.sin(2.2 * u) ** 2 + 20 * u).astype(np.float32))


def head_mask(volume: Volume) -> np.ndarray:
    """(z, y, x) bool: the head (Otsu threshold, largest component, holes filled)."""
    image = image_of(volume)
    mask = sitk.OtsuThreshold(image, 0, 1, 128)
    mask = sitk.RelabelComponent(sitk.ConnectedComponent(mask), sortByObjectSize=True) == 1
    mask = sitk.BinaryFillhole(sitk.BinaryMorphologicalClosing(mask, [2, 2, 2]))
    return sitk.GetArrayFromImage(mask).astype(bool)


def head_points(moving: Volume, mask: np.ndarray, most: int = 4000) -> np.ndarray:
    """World points (LPS mm) of at most MOST voxels of MASK (z, y, x), evenly subsampled."""
    ijk = np.argwhere(mask)[:, ::-1].astype(float)
    step = max(1, len(ijk) // most)
    return moving.index_to_world(ijk[::step])


def tre_mm(estimate: sitk.Transform, deform: sitk.Transform, moving_points: np.ndarray) -> float:
    """Mean |estimate(D(y)) - y| over the moving points y (mm)."""
    fixed_points = [deform.TransformPoint(tuple(p)) for p in moving_points]
    mapped = np.array([estimate.TransformPoint(p) for p in fixed_points])
    return float(np.linalg.norm(mapped - moving_points, axis=1).mean())
