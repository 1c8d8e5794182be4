"""Thick slabs of a slice view: maximum (MIP), minimum (MinIP) or average intensity projection.

A slab of thickness T mm around slice k holds the slices whose centres lie within T/2 of slice
k's centre along the view's normal: ``half = floor(T / (2 * spacing))`` slices on each side, so
2 * half + 1 slices, centred on k and clipped at the ends of the volume. T = 0 (or a slab
thinner than two slice spacings) is the plain slice. MIP and MinIP keep the image's type (int16
stays int16, so the viewer's int16 window table still applies); the average is float32.
Pure numpy, no copies beyond the slab's own slices.
"""
from __future__ import annotations

import numpy as np

from medviewer.core.slicing import PlaneGeometry

MODES = ("off", "mip", "minip", "average")
MODE_NAMES = {"off": "Off", "mip": "MIP", "minip": "MinIP", "average": "Average"}
_EPS = 1e-6


def half_width(thickness_mm: float, spacing_mm: float) -> int:
    """Slices on each side of the centre slice in a slab of ``thickness_mm``."""
    if thickness_mm <= 0 or spacing_mm <= 0:
        return 0
    return int(np.floor(thickness_mm / (2.0 * spacing_mm) + _EPS))


def slab_range(k: int, n_slices: int, thickness_mm: float, spacing_mm: float) -> tuple[int, int]:
    """[start, stop) of the slices of the slab around slice k, clipped to the volume."""
    k = int(np.clip(k, 0, n_slices - 1))
    half = half_width(thickness_mm, spacing_mm)
    return max(0, k - half), min(n_slices, k + half + 1)


def project(stack: np.ndarray, mode: str, axis: int = 0) -> np.ndarray:
    """Project a stack of slices along ``axis`` (keeping it, length 1)."""
    if mode == "mip":
        return stack.max(axis=axis, keepdims=True)
    if mode == "minip":
        return stack.min(axis=axis, keepdims=True)
    if mode == "average":
        return stack.mean(axis=axis, dtype=np.float32, keepdims=True).astype(np.float32, copy=False)
    raise ValueError(f"unknown slab mode {mode!r}; use one of {MODES[1:]}")


def slab(data: np.ndarray, geometry: PlaneGeometry, k: int, mode: str, thickness_mm: float,
         spacing_mm: float) -> np.ndarray:
    """The slab of ``mode`` around slice k, oriented as ``geometry.slice(data, k)``.
    ``spacing_mm`` is the spacing along the view's normal (``volume.spacing[normal_axis]``)."""
    if mode == "off":
        return geometry.slice(data, k)
    start, stop = slab_range(k, geometry.n_slices, thickness_mm, spacing_mm)
    axis = 2 - geometry.normal_axis  # numpy axis of the view's normal
    index = [slice(None)] * data.ndim
    index[axis] = slice(start, stop)
    return geometry.slice(project(data[tuple(index)], mode, axis), 0)


def describe(mode: str, thickness_mm: float) -> str:
    """What the view's overlay says, e.g. "MIP 10 mm"; "" for the plain slice."""
    if mode == "off" or thickness_mm <= 0:
        return ""
    return f"{MODE_NAMES[mode]} {thickness_mm:g} mm"
