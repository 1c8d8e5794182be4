"""Preprocessing that training and inference share (numpy only, no torch).

X-rays: grey, resized (box filter then bilinear), scaled to [0, 1], burned-in text masked,
z-scored per image. Volumes: z-score over the nonzero voxels and centre pad/crop to the network's
grid. Inference and training both call these, so what a model saw in training is what it sees.
"""
from __future__ import annotations

import functools

import numpy as np

from medviewer.core.errors import MedViewerError


@functools.lru_cache(maxsize=32)
def _resize_plan(h: int, w: int, size: int):
    """Index and weight arrays of a bilinear resize (h, w) -> (size, size), half-pixel centres."""
    ys = np.clip((np.arange(size) + 0.5) * h / size - 0.5, 0, h - 1)
    xs = np.clip((np.arange(size) + 0.5) * w / size - 0.5, 0, w - 1)
    y0 = np.floor(ys).astype(np.intp)
    x0 = np.floor(xs).astype(np.intp)
    y1 = np.minimum(y0 + 1, h - 1)
    x1 = np.minimum(x0 + 1, w - 1)
    wy = (ys - y0).astype(np.float32)[:, None]
    wx = (xs - x0).astype(np.float32)[None, :]
    return y0, y1, x0, x1, wy, wx


def _box_factor(h: int, w: int, size: int) -> int:
    """The power of two the image is box-filtered by before the bilinear step (halving while both
    sides stay at least twice the target), so that detail does not alias."""
    k = 1
    while h // k >= 2 * size and w // k >= 2 * size:
        k *= 2
    return k


def _resize_bilinear(image: np.ndarray, size: int) -> np.ndarray:
    """Bilinear resize of a 2D array to size x size (float32; half-pixel centres); box-filters
    first (2x2 means while both sides stay at least twice the target) so detail does not alias."""
    h, w = image.shape
    k = _box_factor(h, w, size)
    while k > 1:  # 2x2 means (strided sums are ~10x faster than a reshaped mean); to float on the way
        image = image[: h // 2 * 2, : w // 2 * 2]
        quarters = [image[i::2, j::2].astype(np.float32, copy=False) for i in (0, 1) for j in (0, 1)]
        image = quarters[0] + quarters[1]
        image += quarters[2]
        image += quarters[3]
        image *= np.float32(0.25)
        h, w = image.shape
        k //= 2
    image = np.asarray(image, np.float32)
    y0, y1, x0, x1, wy, wx = _resize_plan(h, w, size)
    rows0, rows1 = image[y0], image[y1]
    top = rows0[:, x0] + (rows0[:, x1] - rows0[:, x0]) * wx
    bottom = rows1[:, x0] + (rows1[:, x1] - rows1[:, x0]) * wx
    return top + (bottom - top) * wy


def to_unit_grey(data: np.ndarray, image_size: int) -> np.ndarray:
    """A volume's data ((1, H, W), (1, H, W, 3|4), (H, W) or (H, W, 3|4)) as a grey float32
    (image_size, image_size) image in [0, 1] (uint8 divided by 255, others min-max scaled over
    the full image). Resizing is linear, so the scaling is applied after it (same result, and a
    full-size radiograph is never copied as floats)."""
    a = np.asarray(data)
    if a.ndim == 4 and a.shape[0] == 1 and a.shape[-1] in (3, 4):
        a = a[0]
    elif a.ndim == 3 and a.shape[0] == 1:
        a = a[0]
    if a.ndim == 3 and a.shape[-1] in (3, 4):
        grey = a[..., :3].astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
        lo, hi = (0.0, 255.0) if a.dtype == np.uint8 else (float(grey.min()), float(grey.max()))
        a = grey
    elif a.ndim == 2:
        lo, hi = (0.0, 255.0) if a.dtype == np.uint8 else (float(a.min()), float(a.max()))
    else:
        raise MedViewerError(f"expected a 2D image, got shape {np.asarray(data).shape}")
    if hi <= lo:
        return np.zeros((image_size, image_size), np.float32)
    small = _resize_bilinear(a, image_size)
    small -= np.float32(lo)
    small *= np.float32(1.0 / (hi - lo))
    return np.clip(small, 0.0, 1.0, out=small)


def zscore(image: np.ndarray) -> np.ndarray:
    image = np.array(image, np.float32)  # a copy, normalised in place
    mean, std = float(image.mean()), float(image.std())
    image -= np.float32(mean)
    image *= np.float32(1.0 / (std if std > 1e-6 else 1.0))
    return image


def preprocess_image(data: np.ndarray, image_size: int) -> np.ndarray:
    """What the shipped classifier expects: a (1, image_size, image_size) float32 array,
    grey, resized, scaled to [0, 1] and z-scored per image."""
    return zscore(to_unit_grey(data, image_size))[np.newaxis]


def normalise_zscore_nonzero(data: np.ndarray) -> np.ndarray:
    """float32 z-score over the nonzero voxels; zero voxels stay 0 (MONAI NormalizeIntensity nonzero)."""
    a = np.asarray(data, dtype=np.float32)
    mask = a != 0
    if not mask.any():
        return np.zeros_like(a)
    vals = a[mask]
    std = float(vals.std())
    out = np.zeros_like(a)
    out[mask] = (vals - float(vals.mean())) / (std if std > 1e-6 else 1.0)
    return out


def centre_pad_crop(a: np.ndarray, size: tuple[int, ...], value: float = 0) -> tuple[np.ndarray, tuple]:
    """`a` centre padded (with value) and/or cropped to `size`; returns (out, (pads, crops)) that
    `uncrop` inverts for the region the input covered."""
    pads, crops = [], []
    for n, s in zip(a.shape, size):
        if n <= s:
            before = (s - n) // 2
            pads.append((before, s - n - before))
            crops.append(slice(0, n))
        else:
            start = (n - s) // 2
            pads.append((0, 0))
            crops.append(slice(start, start + s))
    out = np.pad(a[tuple(crops)], pads, mode="constant", constant_values=value)
    return out, (pads, crops)


TEXT_MASK = {"method": "burned-in text masked on the image resized to the network's size: bright pixels "
                       "(above 0.7) whose white top-hat (grey opening, 11x11 square) is above 0.3 and whose "
                       "opened background is below 0.35 (bright thin strokes on a dark area: 'R'/'L' "
                       "markers and labels), grown by one pixel and replaced by the opened background",
             "bright_min": 0.7, "tophat_min": 0.3, "background_max": 0.35, "footprint": 11}


def mask_burned_in_text(image: np.ndarray, bright_min: float = 0.7, tophat_min: float = 0.3,
                        background_max: float = 0.35, footprint: int = 11) -> np.ndarray:
    """A [0, 1] grey image with bright thin strokes on a dark background (burned-in markers and
    text) replaced by the local background, so a classifier cannot learn from them. Ribs and
    lung markings mostly stay: they are less bright, or their opened background is brighter."""
    from scipy.ndimage import binary_dilation, maximum_filter, minimum_filter

    a = np.asarray(image, np.float32)
    opened = maximum_filter(minimum_filter(a, size=footprint), size=footprint)
    strokes = (a > bright_min) & ((a - opened) > tophat_min) & (opened < background_max)
    if not strokes.any():
        return a
    strokes = binary_dilation(strokes, iterations=1)
    out = a.copy()
    out[strokes] = opened[strokes]
    return out


def preprocess_xray(data: np.ndarray, image_size: int, mask_text: bool = True) -> np.ndarray:
    """What the pneumonia CNN expects: (1, image_size, image_size) float32, grey, resized, in
    [0, 1], burned-in text masked (mask_text), z-scored per image."""
    unit = to_unit_grey(data, image_size)
    if mask_text:
        unit = mask_burned_in_text(unit)
    return zscore(unit)[np.newaxis]
