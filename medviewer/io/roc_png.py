"""ROC curves drawn to a PNG with Pillow (no matplotlib): axes, grid, chance diagonal, legend.

`write_roc_png(path, curves)` takes one or more curves, each a dict
``{"label": str, "fpr": [...], "tpr": [...], "auc": float}`` (as `medviewer evaluate` computes them),
and writes the plot atomically. The picture is drawn at twice its size and scaled down, which smooths
the lines and text.
"""
from __future__ import annotations

import math
import os

from PIL import Image, ImageDraw, ImageFont

from medviewer.core.errors import ImageWriteError, MedViewerError
from medviewer.io.messages import os_reason
from medviewer.io.writer import write_atomically

WIDTH, HEIGHT = 640, 600
SCALE = 2  # drawn at SCALE x the size, then downsampled (anti-aliasing)
# plot area in output pixels: left, top, right, bottom
PLOT = (84, 52, 616, 520)
TICKS = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)
X_LABEL = "False positive rate (1 - specificity)"
Y_LABEL = "True positive rate (sensitivity)"
# distinct colours (the "tab10" palette), cycled when there are more curves
COLOURS = ((31, 119, 180), (214, 39, 40), (44, 160, 44), (255, 127, 14), (148, 103, 189),
           (140, 86, 75), (227, 119, 194), (23, 190, 207), (188, 189, 34), (127, 127, 127))
WHITE, BLACK = (255, 255, 255), (0, 0, 0)
GRID, CHANCE, LEGEND_EDGE = (226, 226, 226), (150, 150, 150), (170, 170, 170)


def write_roc_png(path: str | os.PathLike, curves: list[dict], title: str = "ROC curve") -> str:
    """Draw `curves` on one ROC plot and write it to `path` (PNG, atomically). Returns the path."""
    return _write(path, _render(_check(curves), title))


def write_reliability_png(path: str | os.PathLike, curves: list[dict], title: str = "Reliability diagram") -> str:
    """A reliability diagram: each curve {"label", "predicted": [...], "observed": [...]} (bin
    means, ai.metrics.reliability) over the diagonal of perfect calibration; the label should
    carry the ECE. Same drawing as the ROC plot, with its own axis names."""
    checked = _check([{"label": c.get("label"), "fpr": c.get("predicted", []), "tpr": c.get("observed", [])}
                      for c in curves])
    return _write(path, _render(checked, title, x_label="Mean predicted probability (bin)",
                                y_label="Observed fraction positive", diagonal="perfect calibration"))


def _write(path, image) -> str:
    path = os.fspath(path)
    try:
        write_atomically(path, lambda fh: image.save(fh, format="PNG", optimize=True), suffix=".png")
    except OSError as exc:
        raise ImageWriteError(f"{path}: cannot write the ROC plot ({os_reason(exc)})") from exc
    return path


def _check(curves) -> list[tuple[str, list[float], list[float], float | None]]:
    if not curves:
        raise MedViewerError("ROC plot: no curves to draw")
    out = []
    for n, curve in enumerate(curves, 1):
        label = str(curve.get("label") or f"curve {n}")
        try:
            fpr = [float(v) for v in curve["fpr"]]
            tpr = [float(v) for v in curve["tpr"]]
        except KeyError as exc:
            raise MedViewerError(f"ROC plot: {label!r} has no {exc.args[0]!r} values") from exc
        except (TypeError, ValueError) as exc:
            raise MedViewerError(f"ROC plot: {label!r} has non-numeric rates ({exc})") from exc
        if not fpr or not tpr:
            raise MedViewerError(f"ROC plot: {label!r} has no points")
        if len(fpr) != len(tpr):
            raise MedViewerError(f"ROC plot: {label!r} has {len(fpr)} false positive rates "
                                 f"but {len(tpr)} true positive rates")
        if not all(math.isfinite(v) and -1e-9 <= v <= 1 + 1e-9 for v in fpr + tpr):
            raise MedViewerError(f"ROC plot: {label!r} has rates outside [0, 1]")
        auc = curve.get("auc")
        auc = float(auc) if auc is not None else None
        out.append((label, fpr, tpr, auc))
    return out


def _font(size: int):
    # Pillow >= 10.1 (pyproject): a scalable font; the bitmap one would be unreadably small here
    return ImageFont.load_default(size=size * SCALE)


def _text_size(draw: ImageDraw.ImageDraw, text: str, font) -> tuple[int, int]:
    left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
    return right - left, bottom - top


def _render(curves, title: str, x_label: str = X_LABEL, y_label: str = Y_LABEL,
            diagonal: str = "chance (AUC 0.500)") -> Image.Image:
    s = SCALE
    image = Image.new("RGB", (WIDTH * s, HEIGHT * s), WHITE)
    draw = ImageDraw.Draw(image)
    x0, y0, x1, y1 = (v * s for v in PLOT)

    def px(fpr: float, tpr: float) -> tuple[float, float]:
        return x0 + fpr * (x1 - x0), y1 - tpr * (y1 - y0)

    tick_font, label_font, title_font, legend_font = _font(13), _font(15), _font(17), _font(14)

    # grid, then the chance diagonal (dashed), then the frame on top
    for t in TICKS[1:-1]:
        gx, gy = px(t, t)
        draw.line([(gx, y0), (gx, y1)], fill=GRID, width=s)
        draw.line([(x0, gy), (x1, gy)], fill=GRID, width=s)
    _dashed(draw, px(0, 0), px(1, 1), fill=CHANCE, width=2 * s, dash=9 * s, gap=6 * s)
    draw.rectangle([x0, y0, x1, y1], outline=BLACK, width=s)

    # ticks and tick labels
    tick = 6 * s
    for t in TICKS:
        text = f"{t:.1f}"
        tx, ty = px(t, t)
        draw.line([(tx, y1), (tx, y1 + tick)], fill=BLACK, width=s)
        draw.line([(x0 - tick, ty), (x0, ty)], fill=BLACK, width=s)
        draw.text((tx, y1 + tick + 3 * s), text, fill=BLACK, font=tick_font, anchor="mt")
        draw.text((x0 - tick - 4 * s, ty), text, fill=BLACK, font=tick_font, anchor="rm")

    # axis labels: x under the ticks, y rotated on its own image
    draw.text(((x0 + x1) / 2, y1 + 36 * s), x_label, fill=BLACK, font=label_font, anchor="mt")
    w, h = _text_size(draw, y_label, label_font)
    pad = 4 * s
    side = Image.new("RGB", (w + 2 * pad, h + 2 * pad), WHITE)
    ImageDraw.Draw(side).text((side.width / 2, side.height / 2), y_label, fill=BLACK, font=label_font,
                              anchor="mm")
    side = side.rotate(90, expand=True)
    image.paste(side, (int(16 * s - pad), int((y0 + y1) / 2 - side.height / 2)))

    # title
    cx = (x0 + x1) / 2
    draw.text((cx, 24 * s), _fit(draw, title, title_font, 2 * min(cx, WIDTH * s - cx) - 16 * s), fill=BLACK,
              font=title_font, anchor="mm")

    # the curves: one polyline each (the ROC points are the steps), a distinct colour each
    for n, (_label, fpr, tpr, _auc) in enumerate(curves):
        colour = COLOURS[n % len(COLOURS)]
        points = [px(f, t) for f, t in zip(fpr, tpr)]
        if len(points) == 1:
            cx, cy = points[0]
            draw.ellipse([cx - 4 * s, cy - 4 * s, cx + 4 * s, cy + 4 * s], fill=colour)
        else:
            draw.line(points, fill=colour, width=3 * s, joint="curve")

    _legend(draw, curves, legend_font, (x0, y0, x1, y1), diagonal)
    return image.resize((WIDTH, HEIGHT), Image.Resampling.LANCZOS)


def _legend(draw, curves, font, plot, diagonal: str) -> None:
    """Bottom right inside the plot, where a useful ROC curve rarely passes."""
    s = SCALE
    x0, y0, x1, y1 = plot
    entries = [(f"{label} (AUC {auc:.3f})" if auc is not None and math.isfinite(auc) else
                f"{label} (AUC n/a)" if auc is not None else label) for label, _f, _t, auc in curves]
    entries.append(diagonal)
    max_text = (x1 - x0) * 0.75 - 50 * s
    entries = [_fit(draw, e, font, max_text) for e in entries]
    line_h = max(_text_size(draw, "Ag", font)[1], 10 * s) + 9 * s
    swatch, pad = 26 * s, 10 * s
    width = swatch + 8 * s + max(_text_size(draw, e, font)[0] for e in entries) + 2 * pad
    height = line_h * len(entries) + 2 * pad - 4 * s
    right, bottom = x1 - 12 * s, y1 - 12 * s
    left, top = right - width, bottom - height
    draw.rounded_rectangle([left, top, right, bottom], radius=4 * s, fill=WHITE, outline=LEGEND_EDGE, width=s)
    for n, text in enumerate(entries):
        cy = top + pad + n * line_h + (line_h - 9 * s) / 2
        sx = left + pad
        if n < len(curves):
            draw.line([(sx, cy), (sx + swatch, cy)], fill=COLOURS[n % len(COLOURS)], width=3 * s)
        else:
            _dashed(draw, (sx, cy), (sx + swatch, cy), fill=CHANCE, width=2 * s, dash=7 * s, gap=4 * s)
        draw.text((sx + swatch + 8 * s, cy), text, fill=BLACK, font=font, anchor="lm")


def _fit(draw, text: str, font, max_width: float) -> str:
    """The text, shortened with an ellipsis to fit max_width."""
    if _text_size(draw, text, font)[0] <= max_width:
        return text
    while len(text) > 1 and _text_size(draw, text + "...", font)[0] > max_width:
        text = text[:-1]
    return text.rstrip() + "..."


def _dashed(draw, start, end, fill, width: int, dash: float, gap: float) -> None:
    (ax, ay), (bx, by) = start, end
    length = math.hypot(bx - ax, by - ay)
    if length == 0:
        return
    ux, uy = (bx - ax) / length, (by - ay) / length
    pos = 0.0
    while pos < length:
        stop = min(pos + dash, length)
        draw.line([(ax + ux * pos, ay + uy * pos), (ax + ux * stop, ay + uy * stop)], fill=fill, width=width)
        pos = stop + gap
