"""Lung fields by threshold and morphology (processing.lung_mask): a drawn chest with known lungs,
an opaque lung, and real paediatric X-rays (markers and corners left out)."""
import numpy as np
import pytest

from medviewer.core.errors import MedViewerError
from medviewer.processing.lung_mask import basin_depth, lung_mask
from tests.conftest import shared


def _ellipse(shape, cy, cx, ry, rx):
    y, x = np.ogrid[: shape[0], : shape[1]]
    return ((y - cy) / ry) ** 2 + ((x - cx) / rx) ** 2 <= 1


def _chest(size=256, opaque_left_lung=False):
    """A drawn frontal chest: dark air, a body, two darker lungs crossed by bright ribs, a bright
    mediastinum and an 'R' marker (bright strokes) in the top left corner. Returns (uint8, lungs)."""
    shape = (size, size)
    img = np.full(shape, 0.04)
    img[_ellipse(shape, 0.55 * size, 0.5 * size, 0.5 * size, 0.46 * size)] = 0.62
    right = _ellipse(shape, 0.5 * size, 0.3 * size, 0.28 * size, 0.12 * size)  # patient's right, image left
    left = _ellipse(shape, 0.5 * size, 0.7 * size, 0.28 * size, 0.12 * size)
    img[right] = 0.25
    img[left] = 0.6 if opaque_left_lung else 0.25
    for row in range(int(0.25 * size), int(0.8 * size), size // 16):  # ribs across both lungs
        img[row:row + size // 64 + 1, int(0.15 * size):int(0.85 * size)] = np.maximum(
            img[row:row + size // 64 + 1, int(0.15 * size):int(0.85 * size)], 0.5)
    img[:, int(0.44 * size):int(0.56 * size)][_ellipse(shape, 0.6 * size, 0.5 * size, 0.45 * size, 0.3 * size)
                                               [:, int(0.44 * size):int(0.56 * size)]] = 0.9
    marker = np.zeros(shape, bool)
    s = size // 32
    marker[2 * s:6 * s, 2 * s:2 * s + 2] = True  # an R: stem, bowl, leg
    marker[2 * s:2 * s + 2, 2 * s:4 * s] = True
    marker[4 * s:4 * s + 2, 2 * s:4 * s] = True
    marker[2 * s:4 * s, 4 * s:4 * s + 2] = True
    for k in range(2 * s):
        marker[4 * s + k, 2 * s + k:2 * s + k + 2] = True
    img[marker] = 1.0
    rng = np.random.default_rng(0)
    img = np.clip(img + rng.normal(0, 0.01, shape), 0, 1)
    return (img * 255).astype(np.uint8), right | left, marker


def _dice(a, b):
    return 2 * (a & b).sum() / (a.sum() + b.sum())


def test_the_drawn_lungs_are_found_and_the_marker_is_not():
    image, lungs, marker = _chest()
    mask = lung_mask(image)
    assert mask.shape == image.shape and mask.dtype == bool
    assert _dice(mask, lungs) > 0.85
    assert not (mask & marker).any()
    assert mask[:, :128].any() and mask[:, 128:].any()
    assert not mask[:, 120:136].any()  # the mediastinum is not lung


def test_an_opaque_lung_is_completed_from_its_mirror_image():
    image, lungs, _ = _chest(opaque_left_lung=True)
    mask = lung_mask(image)
    opaque = lungs.copy()
    opaque[:, :128] = False
    assert (mask & opaque).sum() > 0.7 * opaque.sum()  # the field of the consolidated lung counts
    assert _dice(mask, lungs) > 0.8


def test_the_layouts_of_an_x_ray_give_the_same_mask_and_bad_input_a_clear_error():
    image, _, _ = _chest()
    rgb = np.repeat(image[..., None], 3, -1)
    expected = lung_mask(image)
    assert np.array_equal(lung_mask(image[None]), expected)
    assert np.array_equal(lung_mask(rgb), expected)
    assert np.array_equal(lung_mask(rgb[None]), expected)
    with pytest.raises(MedViewerError, match="expected a 2D chest X-ray"):
        lung_mask(np.zeros((4, 64, 64)))
    with pytest.raises(MedViewerError, match="too small"):
        lung_mask(np.zeros((16, 16), np.uint8))
    assert not lung_mask(np.full((64, 64), 7, np.uint8)).any()  # a blank picture has no lungs


def test_basin_depth_is_how_far_below_its_rim_a_pixel_lies():
    a = np.full((9, 9), 0.5)
    a[3:6, 3:6] = 0.2  # a basin walled in at 0.5
    a[0, :] = 0.1  # a valley open to the border is no basin
    depth = basin_depth(a)
    assert np.allclose(depth[3:6, 3:6], 0.3) and np.allclose(depth[0], 0) and depth.min() >= 0


def test_real_x_rays_lungs_in_both_halves_never_the_markers_or_corners():
    from medviewer.ai.preprocess import mask_burned_in_text, to_unit_grey
    from medviewer.io import open_volume

    root = shared("chest_xray", "train")
    paths = [p for c in ("NORMAL", "PNEUMONIA") for p in sorted((root / c).iterdir())[:10]]
    markers_seen = 0
    for path in paths:
        data = open_volume(path).data
        mask = lung_mask(data)
        h, w = mask.shape
        assert (h, w) == (224, 224)
        assert 0.08 < mask.mean() < 0.5, path.name
        assert mask[:, : w // 2].mean() > 0.04 and mask[:, w // 2:].mean() > 0.04, path.name
        corners = np.zeros_like(mask)  # where the 'R' markers are burned in
        corners[: h // 6, : w // 5] = corners[: h // 6, -w // 5:] = True
        assert (mask & corners).mean() < 0.002, path.name
        unit = to_unit_grey(data, 224)
        strokes = np.abs(mask_burned_in_text(unit) - unit) > 1e-6  # bright strokes on a dark area
        markers_seen += bool((strokes & corners).any())
        assert not (mask & strokes & corners).any(), path.name
    assert markers_seen >= 10  # the markers are there to be left out
