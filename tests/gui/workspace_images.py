"""Images for the processing / registration / images panel tests: one built in the test (CI has no
shared data), one real MRI (../shared/data/brain_t1, halved so a registration takes seconds), and a
moved copy of either through a known rigid transform."""
from __future__ import annotations

import numpy as np
import SimpleITK as sitk

from tests.conftest import shared

# the known motion of the moved copy: 6° about z, 3° about x, shifts in mm (about the image centre)
ANGLES = (np.radians(3.0), 0.0, np.radians(6.0))
SHIFT_MM = (4.0, -3.0, 2.0)


def built_image(path) -> str:
    """A 40x44x36 head-like phantom (2 mm): nested ellipsoids of different intensities, a dark
    'ventricle' off centre (so no rotation is a symmetry), mild noise, written as NIfTI."""
    z, y, x = np.mgrid[:36, :44, :40].astype(np.float32)
    c = np.array([18.0, 22.0, 20.0])
    r = ((z - c[0]) / 15) ** 2 + ((y - c[1]) / 18) ** 2 + ((x - c[2]) / 16) ** 2
    data = np.where(r < 1, 80.0, 0.0) + np.where(r < 0.7, 60.0, 0.0)
    data -= 90.0 * (((z - 14) / 5) ** 2 + ((y - 17) / 4) ** 2 + ((x - 25) / 6) ** 2 < 1)
    data += 40.0 * np.exp(-(((z - 24) ** 2 + (y - 28) ** 2 + (x - 14) ** 2) / 20.0))
    data += np.random.default_rng(0).normal(0, 4, data.shape)
    image = sitk.GetImageFromArray(np.clip(data, 0, None).astype(np.float32))
    image.SetSpacing((2.0, 2.0, 2.0))
    image.SetOrigin((-40.0, -44.0, -36.0))
    sitk.WriteImage(image, str(path))
    return str(path)


def real_mri(path) -> str:
    """The real T1 brain MRI (128x128x62, 2x2x3 mm), halved in-plane: 64x64x62 at 4x4x3 mm."""
    image = sitk.ReadImage(str(shared("brain_t1", "KmeansTest_T1UCharRaw.nii.gz")), sitk.sitkFloat32)
    image = sitk.Shrink(image, [2, 2, 1])
    sitk.WriteImage(image, str(path))
    return str(path)


def known_rigid(volume) -> sitk.Euler3DTransform:
    """The motion that made the moved copy: fixed world -> moving world, about the image centre."""
    centre = volume.index_to_world(np.asarray(volume.size, float) / 2 - 0.5)
    transform = sitk.Euler3DTransform()
    transform.SetCenter(tuple(float(v) for v in centre))
    transform.SetRotation(*ANGLES)
    transform.SetTranslation(SHIFT_MM)
    return transform


def moved_copy(volume, transform):
    """VOLUME as seen by a scanner that moved: moving(T(x)) = fixed(x). Its grid is the fixed grid
    shifted by the translation, so the images overlap but differ in position and content."""
    from medviewer.processing.sitk_volume import from_image, to_image

    image = to_image(volume)
    grid = sitk.Image(image.GetSize(), sitk.sitkFloat32)
    grid.CopyInformation(image)
    grid.SetOrigin(tuple(o + s for o, s in zip(image.GetOrigin(), SHIFT_MM)))
    moved = sitk.Resample(image, grid, transform.GetInverse(), sitk.sitkLinear, 0.0, sitk.sitkFloat32)
    out = from_image(volume, moved)
    out.metadata = {}
    return out


def points_inside(volume, n: int = 6, seed: int = 3) -> np.ndarray:
    """N world points well inside VOLUME (the middle half of its box)."""
    rng = np.random.default_rng(seed)
    ijk = (np.asarray(volume.size, float) - 1) * rng.uniform(0.3, 0.7, (n, 3))
    return np.array([volume.index_to_world(p) for p in ijk])
