"""A heat map drawn over its image, written as a PNG (Pillow): what `medviewer infer --explain`
and the AI panel's "Export PNG" produce.

The image is shown in its display window (grey, MONOCHROME1 inverted); the map is blended on top
through a colour map, transparent below the threshold, with a colour bar and a caption. For a
volume the axial slice where the map is strongest is drawn (its number is in the caption).
"""
from __future__ import annotations

import os

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from medviewer.core.colormaps import colour_table, heat_rgba
from medviewer.core.display import default_window
from medviewer.core.errors import ImageWriteError, MedViewerError
from medviewer.core.volume import Volume
from medviewer.io.messages import os_reason
from medviewer.io.writer import write_atomically

BAR_WIDTH, MARGIN = 18, 10


def _grey(volume: Volume, k: int) -> np.ndarray:
    plane = volume.data[k]
    if volume.is_rgb:
        plane = plane[..., :3].astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
        w = default_window(plane[None], "", {})
    else:
        w = default_window(volume.data, volume.modality, volume.metadata)
    grey = np.clip((plane.astype(np.float32) - w.low) / max(w.high - w.low, 1e-6), 0, 1)
    if volume.invert_display:
        grey = 1 - grey
    return (grey * 255).astype(np.uint8)


def strongest_slice(heat: np.ndarray) -> int:
    return int(np.argmax(heat.reshape(heat.shape[0], -1).sum(1))) if heat.shape[0] > 1 else 0


def render_overlay(volume: Volume, heat: np.ndarray, colormap: str = "inferno", threshold: float = 0.2,
                   opacity: float = 0.5, caption: str = "", min_size: int = 512) -> Image.Image:
    if heat.shape != volume.shape:
        raise MedViewerError(f"the map {heat.shape} is not on the image's grid {volume.shape}")
    k = strongest_slice(heat)
    base = Image.fromarray(_grey(volume, k)).convert("RGBA")
    over = Image.fromarray(heat_rgba(heat[k], colormap, threshold, opacity), "RGBA")
    picture = Image.alpha_composite(base, over).convert("RGB")
    # pixels to mm: stretch to the true aspect ratio, then scale up small images
    sx, sy = volume.spacing[0], volume.spacing[1]
    w, h = picture.size
    if abs(sx - sy) > 1e-3 * max(sx, sy):
        w = int(round(w * sx / min(sx, sy)))
        h = int(round(h * sy / min(sx, sy)))
    scale = max(1.0, min_size / max(w, h))
    picture = picture.resize((int(round(w * scale)), int(round(h * scale))), Image.BILINEAR)
    font = ImageFont.load_default(size=14)
    bar_h = picture.height - 2 * MARGIN
    canvas = Image.new("RGB", (picture.width + BAR_WIDTH + 60, picture.height + 26), (0, 0, 0))
    canvas.paste(picture, (0, 0))
    table = colour_table(colormap)
    column = table[::-1][np.linspace(0, 255, bar_h).astype(int)]
    bar = Image.fromarray(np.repeat(column[:, None, :], BAR_WIDTH, axis=1).astype(np.uint8), "RGB")
    x0 = picture.width + MARGIN
    canvas.paste(bar, (x0, MARGIN))
    draw = ImageDraw.Draw(canvas)
    draw.text((x0 + BAR_WIDTH + 4, MARGIN), "1.0", fill=(255, 255, 255), font=font)
    draw.text((x0 + BAR_WIDTH + 4, MARGIN + bar_h - 14), "0.0", fill=(255, 255, 255), font=font)
    ty = MARGIN + int(round((1 - threshold) * bar_h))
    draw.line([(x0 - 3, ty), (x0 + BAR_WIDTH + 3, ty)], fill=(255, 255, 255), width=1)
    where = f"slice {k + 1}/{volume.shape[0]} · " if volume.shape[0] > 1 else ""
    draw.text((6, picture.height + 5), f"{caption} {where}threshold {threshold:.2f} · not for clinical use",
              fill=(230, 230, 230), font=font)
    return canvas


def write_overlay_png(path: str | os.PathLike, volume: Volume, heat: np.ndarray, **options) -> str:
    path = os.fspath(path)
    image = render_overlay(volume, heat, **options)
    try:
        write_atomically(path, lambda fh: image.save(fh, format="PNG"), suffix=".png")
    except OSError as exc:
        raise ImageWriteError(f"{path}: cannot write: {os_reason(exc)}") from exc
    return path
