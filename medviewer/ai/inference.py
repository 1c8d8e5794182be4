"""The input contract of a registered model: may it run on this image?

Every inference task (ai.tasks, the template that runs a model: pre -> predict -> invert -> post)
calls check_input before anything runs; the AI panel calls it to grey out models. Inputs that
break the model's declared contract are refused with the reason: a 3D volume for a 2D model, the
wrong modality, and -- where the manifest records what the training images were like (input.extent_mm,
input.intensity; see ai.registry) -- an image outside that training distribution: a whole head for
a model trained on hippocampus crops, a colour picture for a model trained on grey X-rays.
check_input is cheap (the AI panel calls it for every model on every image switch): the extent of
the grid is O(1); pixels are only read, subsampled to about SAMPLE_VOXELS, for an RGB image (its
colour) or when the grid is too large (the box around its nonzero voxels).
The figures are measured with the same functions (physical_extent, colour_fraction) by the trainers.
numpy only: no torch here.
"""
from __future__ import annotations

import numpy as np

from medviewer.ai.registry import ModelSpec
from medviewer.core.errors import MedViewerError
from medviewer.core.volume import Volume

# modalities a model declared for one of these also accepts (radiographs come as CR, DX or XR)
MODALITY_FAMILIES = [{"XR", "CR", "DX", "RG"}]


class IncompatibleInput(MedViewerError):
    pass


def _same_modality(declared: str, actual: str) -> bool:
    if not declared or not actual or declared == actual:
        return True
    return any(declared in fam and actual in fam for fam in MODALITY_FAMILIES)


def check_input(spec: ModelSpec, volume: Volume) -> str:
    """'' when the model can run on this image, else why not. Contract fields a manifest does not
    have are not checked (user-made models, older manifests)."""
    contract = spec.input
    dims = contract.get("dims")
    if dims == 2 and not volume.is_2d:
        return f"{spec.name} is a 2D model and this image is a {volume.size[2]}-slice volume"
    if dims == 3 and volume.is_2d:
        return f"{spec.name} is a 3D model and this image is 2D"
    declared = str(contract.get("modality", "")).upper()
    if not _same_modality(declared, volume.modality.upper()):
        return f"{spec.name} expects {declared} images and this one is {volume.modality}"
    if contract.get("extent_mm"):
        reason = _check_extent(spec.name, contract["extent_mm"], volume, contract.get("direction"))
        if reason:
            return reason
    colour = (contract.get("intensity") or {}).get("colour_fraction")
    if colour and volume.is_rgb:
        return _check_colour(spec.name, contract["intensity"], volume)
    return ""


# --- the training distribution: physical extent and colour ----------------------------------------
WORLD_AXES = ("left-right", "front-back", "up-down")  # LPS x, y, z
SAMPLE_VOXELS = 2_000_000  # pixel data looked at by check_input is subsampled to about this many


def _step(shape: tuple[int, ...]) -> int:
    n = int(np.prod(shape))
    return max(1, int(np.ceil((n / SAMPLE_VOXELS) ** (1.0 / max(1, len(shape))))))


def _nonzero_box(data: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """(first, last) (x, y, z) voxel index of the box around the nonzero voxels (None if none is
    found). Large arrays are looked at on a subsampled grid (about SAMPLE_VOXELS), then the few
    full-resolution slices next to each face are read, so the box of anything at least one sample
    step wide is exact; isolated specks between the samples are ignored."""
    shape = data.shape[:3]
    s = _step(shape)
    nz = np.asarray(data[::s, ::s, ::s]) != 0
    if nz.ndim == 4:
        nz = nz.any(-1)
    first, last = [], []
    for axis in (2, 1, 0):  # x, y, z
        hit = np.flatnonzero(nz.any(axis=tuple(a for a in range(3) if a != axis)))
        if hit.size == 0:
            return None
        lo, hi = int(hit[0]) * s, int(hit[-1]) * s
        if s > 1:  # the slices between the last empty sample and the first nonzero one
            lo = next((i for i in range(max(0, lo - s + 1), lo) if np.take(data, i, axis=axis).any()), lo)
            hi = next((i for i in range(min(shape[axis] - 1, hi + s - 1), hi, -1)
                       if np.take(data, i, axis=axis).any()), hi)
        first.append(lo)
        last.append(hi)
    return np.array(first), np.array(last)


def physical_extent(volume: Volume, direction=None, nonzero: bool = False) -> np.ndarray:
    """(3,) mm that the image covers along each axis of `direction` (3x3, columns = the model's
    axes in LPS, row-major as in the manifest; default the image's own axes): the whole voxel grid
    (voxel edges, so a 35-voxel row of 1 mm is 35 mm), or with nonzero=True the box around its
    nonzero voxels (zero is background/padding to a model that normalises over nonzero voxels)."""
    first, last = np.zeros(3), np.asarray(volume.size, float) - 1
    if nonzero:
        box = _nonzero_box(volume.data)
        if box is not None:
            first, last = box
    frame = volume.direction if direction is None else np.asarray(direction, float).reshape(3, 3)
    corners = np.array([[(last if (k >> a) & 1 else first)[a] + (0.5 if (k >> a) & 1 else -0.5)
                         for a in range(3)] for k in range(8)])
    along = volume.index_to_world(corners) @ frame  # coordinates along the frame's axes
    return np.round(along.max(0) - along.min(0), 4)


def colour_fraction(data: np.ndarray) -> float:
    """Fraction of the pixels whose R, G and B differ by more than 10% of the value range (255 for
    uint8, else the image's own range); 0.0 for a grey image, even one stored as RGB. Subsampled."""
    a = np.asarray(data)
    if a.ndim != 4:
        return 0.0
    s = _step(a.shape[:3])
    rgb = a[::s, ::s, ::s, :3]
    hi, lo = rgb.max(-1), rgb.min(-1)
    span = 255.0 if a.dtype == np.uint8 else float(hi.max()) - float(lo.min())
    if span <= 0:
        return 0.0
    return float(((hi.astype(np.float64) - lo) > 0.1 * span).mean())


def _mm(values) -> str:
    return "×".join(f"{float(v):.1f}".removesuffix(".0") for v in np.round(values, 1)) + " mm"


def _axes_of(direction, k: int) -> str:
    if direction is None:
        return " × ".join("xyz"[:k]) + " of the image grid"
    frame = np.asarray(direction, float).reshape(3, 3)
    return " × ".join(WORLD_AXES[int(np.argmax(np.abs(frame[:, a])))] for a in range(k))


def _check_extent(name: str, ext: dict, volume: Volume, direction) -> str:
    low_seen, high_seen = np.asarray(ext["min"], float), np.asarray(ext["max"], float)
    k = len(low_seen)
    tolerance = float(ext.get("tolerance", 1.5))
    low, high = low_seen / tolerance, high_seen * tolerance
    grid = physical_extent(volume, direction)[:k]
    if (grid >= low).all() and (grid <= high).all():
        return ""
    typical = np.asarray(ext.get("median", (low_seen + high_seen) / 2), float)
    trained = (f"{name} was trained on {ext.get('description', 'images')} of about {_mm(typical)} "
               f"({_axes_of(direction, k)})")
    if (grid < low).any():
        return f"{trained}; this image covers only {_mm(grid)}, less than the {_mm(low)} it needs"
    content = physical_extent(volume, direction, nonzero=True)[:k]
    if (content >= low).all() and (content <= high).all():
        return ""  # a crop on a larger grid padded with zeros: what the network saw in training
    covers = f"this image covers {_mm(grid)}"
    if np.abs(content - grid).max() >= 1:
        covers += f" (its nonzero voxels {_mm(content)})"
    if (content < low).any():
        return f"{trained}; {covers}: its nonzero part is smaller than the {_mm(low)} it needs"
    advice = ext.get("advice")
    return f"{trained}; {covers}, more than the {_mm(high)} it accepts" + (f": {advice}" if advice else "")


def _check_colour(name: str, intensity: dict, volume: Volume) -> str:
    spec = intensity["colour_fraction"]
    limit = float(spec.get("limit", spec.get("max", 0.0)))
    fraction = colour_fraction(volume.data)
    if fraction <= limit:
        return ""
    advice = intensity.get("advice")
    seen = float(spec.get("max", 0.0))
    seen_text = "no coloured pixels" if seen == 0 else f"at most {seen:.0%} of their pixels coloured"
    return (f"{name} was trained on {intensity.get('description', 'grey images')} ({seen_text}); "
            f"{fraction:.0%} of this image's pixels are coloured" + (f": {advice}" if advice else ""))
