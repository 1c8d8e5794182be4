"""Lung fields of a frontal chest X-ray by threshold and morphology (no model).

    lung_mask(data) -> (H, W) bool, True inside the two lung fields

Aerated lung is a dark basin walled in by brighter structures (mediastinum and spine medially,
the rib cage laterally, the diaphragm below), whereas the soft tissue outside the rib cage and
the corners (where the burned-in "R"/"L" markers sit) open onto the image border. So, on the image
resized to WORK x WORK pixels:
1. grey, scaled between its 1st and 99th percentiles, smoothed (Gaussian, SMOOTH px) so that the
   ribs and the spaces between them merge;
2. basin depth = the image with its basins filled (grey-level reconstruction by erosion from the
   border, i.e. fill-holes in grey) minus the image: how far each pixel lies below the lowest rim
   that separates it from the image border; 0 on everything connected to the border downhill;
3. hysteresis threshold of the depth (pixels deeper than HIGH of the deepest, grown through those
   deeper than LOW), closed with a disk (CLOSE px) to join rib spaces;
4. per half of the image (patient's right / left), the components of at least MIN_AREA of the
   image whose centres are away from the edges are that side's lung; each side is its components'
   convex hull (holes and dense consolidation inside the rib cage count as lung field);
5. a side much smaller than the other (MIRROR_BELOW of its area: an opaque, consolidated lung
   casts no basin) is completed by the mirror image of the other side about the midline between
   the two lungs' outer edges: the side becomes the convex hull of its own part and the mirror
   image, kept within its own half.
The mask is brought back to the image's own size.

It is a field mask for scoring where a model looks (ai.explanation_scores), not a segmentation:
on the paediatric X-rays in ../shared/data it covers the lungs and leaves out the corners, the
markers, the neck, the mediastinum and the abdomen (tests/unit/test_lung_mask.py).
"""
from __future__ import annotations

import numpy as np

from medviewer.core.errors import MedViewerError

WORK = 224  # pixels: the size the steps are tuned at
SMOOTH = 3.0
HIGH, LOW = 0.25, 0.06  # of the deepest basin
CLOSE = 6
MIN_AREA = 0.01
MIRROR_BELOW = 0.6


def grey_image(data: np.ndarray) -> np.ndarray:
    """A chest X-ray given as (H, W), (1, H, W), (H, W, 3|4) or (1, H, W, 3|4) as float32 (H, W) grey."""
    a = np.asarray(data)
    if a.ndim in (3, 4) and a.shape[0] == 1 and (a.ndim == 4 or a.shape[-1] not in (3, 4)):
        a = a[0]
    if a.ndim == 3 and a.shape[-1] in (3, 4):
        a = a[..., :3].astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
    if a.ndim != 2:
        raise MedViewerError(f"lung mask: expected a 2D chest X-ray, got shape {np.asarray(data).shape}")
    return a.astype(np.float32)


def resize_plane(a: np.ndarray, shape: tuple[int, int], order: int = 1) -> np.ndarray:
    from scipy.ndimage import zoom

    out = zoom(np.asarray(a, np.float32), (shape[0] / a.shape[0], shape[1] / a.shape[1]), order=order,
               grid_mode=True, mode="nearest")
    return out[: shape[0], : shape[1]]


def basin_depth(a: np.ndarray) -> np.ndarray:
    """How far each pixel lies below the lowest rim between it and the image border (>= 0)."""
    from skimage.morphology import reconstruction

    seed = a.copy()
    seed[1:-1, 1:-1] = a.max()
    return reconstruction(seed, a, method="erosion") - a


def lung_mask(data: np.ndarray) -> np.ndarray:
    """(H, W) bool lung fields of a frontal chest X-ray (see the module docstring)."""
    from scipy import ndimage as ndi
    from skimage.filters import apply_hysteresis_threshold

    grey = grey_image(data)
    shape = grey.shape
    if min(shape) < 32:
        raise MedViewerError(f"lung mask: a {shape[0]}x{shape[1]} image is too small for a chest X-ray")
    a = resize_plane(grey, (WORK, WORK))
    lo, hi = np.percentile(a, [1, 99])
    if hi <= lo:
        return np.zeros(shape, bool)
    a = ndi.gaussian_filter(np.clip((a - lo) / (hi - lo), 0, 1), SMOOTH)
    depth = basin_depth(a)
    top = float(depth.max())
    if top <= 0:
        return np.zeros(shape, bool)
    deep = apply_hysteresis_threshold(depth, LOW * top, HIGH * top)
    deep = ndi.binary_closing(deep, structure=_disk(CLOSE), border_value=0)
    sides = _sides(deep)
    out = _mirror_small_side(sides)
    return resize_plane(out.astype(np.float32), shape) >= 0.5


def _disk(r: int) -> np.ndarray:
    y, x = np.ogrid[-r:r + 1, -r:r + 1]
    return x * x + y * y <= r * r


def _sides(deep: np.ndarray) -> list[np.ndarray]:
    """[image-left side, image-right side]: the convex hull of the components of `deep` centred in
    that half, away from the edges (8%), of at least MIN_AREA of the image."""
    from scipy import ndimage as ndi
    from skimage.morphology import convex_hull_image

    labels, n = ndi.label(deep)
    h, w = deep.shape
    index = np.arange(1, n + 1)
    areas = ndi.sum(deep, labels, index) if n else np.zeros(0)
    centres = np.array(ndi.center_of_mass(deep, labels, index)).reshape(-1, 2) if n else np.zeros((0, 2))
    inside = ((areas >= MIN_AREA * h * w) & (centres[:, 0] > 0.08 * h) & (centres[:, 0] < 0.92 * h)
              & (centres[:, 1] > 0.08 * w) & (centres[:, 1] < 0.92 * w))
    sides = []
    for left in (True, False):
        chosen = index[inside & ((centres[:, 1] < w / 2) if left else (centres[:, 1] >= w / 2))]
        part = np.isin(labels, chosen)
        sides.append(convex_hull_image(part) if part.any() else part)
    return sides


def _mirror_small_side(sides: list[np.ndarray]) -> np.ndarray:
    left, right = sides
    w = left.shape[1]
    a_left, a_right = int(left.sum()), int(right.sum())
    if min(a_left, a_right) >= MIRROR_BELOW * max(a_left, a_right) or max(a_left, a_right) == 0:
        return left | right
    big, small_is_left = (right, True) if a_left < a_right else (left, False)
    cols = np.flatnonzero(big.any(0))
    other = left if small_is_left else right
    if other.any():
        ocols = np.flatnonzero(other.any(0))
        mid = (cols[-1] + ocols[0]) / 2 if small_is_left else (ocols[-1] + cols[0]) / 2
    else:
        mid = (w - 1) / 2
    x = np.arange(w)
    source = np.rint(2 * mid - x).astype(np.intp)  # column x mirrors column 2 mid - x
    valid = (source >= 0) & (source < w)
    mirrored = np.zeros_like(big)
    mirrored[:, valid] = big[:, source[valid]]
    half = (x < mid) if small_is_left else (x > mid)
    mirrored &= half[np.newaxis, :]
    from skimage.morphology import convex_hull_image

    completed = convex_hull_image(other | mirrored) & half[np.newaxis, :] if mirrored.any() else other
    return big | completed
