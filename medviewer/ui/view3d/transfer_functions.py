"""Volume-rendering transfer functions: 3D Slicer's presets and the opacity-ramp editor.

The numbers are Slicer's, copied unchanged from Modules/Loadable/VolumeRendering/Resources/presets.xml
(in its own notation: a count, then x and opacity pairs or x, r, g, b quadruples), so that a
rendering here looks like the same preset in Slicer. The editor moves the opacity ramp as a
window/level: the ramp's window is the span of the interior points (the first and last points are
the ends of the scalar range), its level their centre; colours move with it, as in Slicer's shift.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def _pairs(text: str, width: int) -> tuple[tuple[float, ...], ...]:
    values = [float(v) for v in text.split()]
    count, values = int(values[0]), values[1:]
    if count != len(values) or count % width:
        raise ValueError(f"bad Slicer transfer-function string: {text!r}")
    return tuple(tuple(values[i:i + width]) for i in range(0, count, width))


@dataclass(frozen=True)
class Preset:
    name: str
    slicer_name: str
    scalar_opacity: str  # Slicer's strings, as in presets.xml
    color_transfer: str
    gradient_opacity: str
    shade: bool
    ambient: float
    diffuse: float
    specular: float
    specular_power: float
    relative_to: float | None = None  # MR presets: x scaled so that this value is the image's 99.5th percentile

    @property
    def opacity_points(self) -> tuple[tuple[float, float], ...]:
        return _pairs(self.scalar_opacity, 2)  # type: ignore[return-value]

    @property
    def colour_points(self) -> tuple[tuple[float, float, float, float], ...]:
        return _pairs(self.color_transfer, 4)  # type: ignore[return-value]

    @property
    def gradient_points(self) -> tuple[tuple[float, float], ...]:
        return _pairs(self.gradient_opacity, 2)  # type: ignore[return-value]

    @property
    def ramp(self) -> tuple[float, float]:
        """(window, level) of the opacity ramp as Slicer defines it."""
        xs = [x for x, _ in self.opacity_points]
        inner = xs[1:-1] if len(xs) > 2 else xs
        return max(inner[-1] - inner[0], 1.0), (inner[-1] + inner[0]) / 2


PRESETS: dict[str, Preset] = {p.name: p for p in (
    Preset("CT bone", "CT-Bone",
           "8 -3024 0 -16.4458 0 641.385 0.715686 3071 0.705882",
           "16 -3024 0 0 0 -16.4458 0.729412 0.254902 0.301961 641.385 0.905882 0.815686 0.552941 3071 1 1 1",
           "4 0 1 255 1", True, 0.1, 0.9, 0.2, 10),
    Preset("CT soft tissue", "CT-Soft-Tissue",
           "10 -2048 0 -167.01 0 -160 1 240 1 3661 1",
           "20 -2048 0 0 0 -167.01 0 0 0 -160 0.0556356 0.0556356 0.0556356 240 1 1 1 3661 1 1 1",
           "4 0 1 255 1", False, 0.2, 1, 0, 1),
    Preset("CT lung", "CT-Lung",
           "12 -1000 0 -600 0 -599 0.15 -400 0.15 -399 0 2952 0",
           "24 -1000 0.3 0.3 1 -600 0 0 1 -530 0.134704 0.781726 0.0724558 -460 0.929244 1 0.109473 "
           "-400 0.888889 0.254949 0.0240258 2952 1 0.3 0.3",
           "6 0 1 985.12 1 988 1", True, 0.2, 1, 0, 1),
    Preset("CT angiography", "CT-AAA",
           "12 -3024 0 143.556 0 166.222 0.686275 214.389 0.696078 419.736 0.833333 3071 0.803922",
           "24 -3024 0 0 0 143.556 0.615686 0.356863 0.184314 166.222 0.882353 0.603922 0.290196 "
           "214.389 1 1 1 419.736 1 0.937033 0.954531 3071 0.827451 0.658824 1",
           "4 0 1 255 1", True, 0.1, 0.9, 0.2, 10),
    Preset("MR default", "MR-Default",
           "12 0 0 20 0 40 0.15 120 0.3 220 0.375 1024 0.5",
           "24 0 0 0 0 20 0.168627 0 0 40 0.403922 0.145098 0.0784314 120 0.780392 0.607843 0.380392 "
           "220 0.847059 0.835294 0.788235 1024 1 1 1",
           "4 0 1 255 1", True, 0.2, 1, 0, 1, relative_to=1024),
    Preset("MR angio", "MR-Angio",
           "12 -2048 0 151.354 0 158.279 0.4375 190.112 0.580357 200.873 0.732143 3661 0.741071",
           "24 -2048 0 0 0 151.354 0 0 0 158.279 0.74902 0.376471 0 190.112 1 0.866667 0.733333 "
           "200.873 0.937255 0.937255 0.937255 3661 1 1 1",
           "4 0 1 255 1", True, 0.2, 1, 0, 1),
    # the maximum-intensity projection mode uses these (Slicer's CT-MIP and MR-MIP)
    Preset("CT MIP", "CT-MIP",
           "8 -3024 0 -637.62 0 700 1 3071 1",
           "16 -3024 0 0 0 -637.62 1 1 1 700 1 1 1 3071 1 1 1",
           "4 0 1 255 1", False, 0.1, 0.9, 0.2, 10),
    Preset("MR MIP", "MR-MIP",
           "8 0 0 98.3725 0 416.637 1 2800 1",
           "16 0 1 1 1 98.3725 1 1 1 416.637 1 1 1 2800 1 1 1",
           "4 0 1 255 1", False, 0.2, 1, 0, 1, relative_to=2800),
)}
VOLUME_PRESETS = tuple(name for name in PRESETS if "MIP" not in name)


def default_preset(modality: str, mip: bool = False) -> str:
    ct = modality.upper() == "CT"
    if mip:
        return "CT MIP" if ct else "MR MIP"
    return "CT bone" if ct else "MR default"


def initial_ramp(preset: Preset, high: float) -> tuple[float, float]:
    """(window, level) to start from: the preset's own, or for a relative preset scaled so that its
    reference value falls on `high` (the image's bright end)."""
    window, level = preset.ramp
    if preset.relative_to and high > 0:
        scale = high / preset.relative_to
        return window * scale, level * scale
    return window, level


def mapped_x(preset: Preset, window: float, level: float, xs) -> np.ndarray:
    """Preset x positions moved to the ramp (window, level)."""
    window0, level0 = preset.ramp
    return level + (np.asarray(xs, dtype=float) - level0) * (max(window, 1e-6) / window0)


def volume_property(preset: Preset, window: float | None = None, level: float | None = None,
                    prop=None):
    """A vtkVolumeProperty (new, or `prop` updated) for the preset with its ramp at (window, level)."""
    from vtkmodules.vtkCommonDataModel import vtkPiecewiseFunction
    from vtkmodules.vtkRenderingCore import vtkColorTransferFunction, vtkVolumeProperty
    w0, l0 = preset.ramp
    window = w0 if window is None else window
    level = l0 if level is None else level
    opacity = vtkPiecewiseFunction()
    points = preset.opacity_points
    for x, (_, a) in zip(mapped_x(preset, window, level, [p[0] for p in points]), points):
        opacity.AddPoint(float(x), a)
    colour = vtkColorTransferFunction()
    points = preset.colour_points
    for x, (_, r, g, b) in zip(mapped_x(preset, window, level, [p[0] for p in points]), points):
        colour.AddRGBPoint(float(x), r, g, b)
    prop = prop or vtkVolumeProperty()
    prop.SetScalarOpacity(opacity)
    prop.SetColor(colour)
    if all(a == 1 for _, a in preset.gradient_points):  # every preset here: no gradient pass needed
        prop.DisableGradientOpacityOn()
    else:
        gradient = vtkPiecewiseFunction()
        for x, a in preset.gradient_points:
            gradient.AddPoint(x, a)
        prop.SetGradientOpacity(gradient)
        prop.DisableGradientOpacityOff()
    prop.SetInterpolationTypeToLinear()
    prop.SetShade(int(preset.shade))
    prop.SetAmbient(preset.ambient)
    prop.SetDiffuse(preset.diffuse)
    prop.SetSpecular(preset.specular)
    prop.SetSpecularPower(preset.specular_power)
    return prop
