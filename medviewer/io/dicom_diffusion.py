"""Diffusion weighting of a classic DICOM image: b-value and gradient direction.

Where the vendors put it (the places dcm2niix reads):
- standard: DiffusionBValue (0018,9087), DiffusionGradientOrientation (0018,9089), at the top level
  or in an MR Diffusion Sequence (0018,9117);
- Siemens: the CSA image header's B_value / DiffusionGradientDirection, or (0019,100C)/(0019,100E);
- Philips: (2001,1003) b-factor, gradient (2005,10B0/10B1/10B2) and the direction label (2001,1004),
  "I" for the isotropic (trace) image that the scanner derives and stores with the DWI volumes.
Gradients are unit vectors in the patient (LPS) frame, as DICOM defines them. A b > 0 image with no
direction (or a zero vector, or the label "I") is a derived trace image, not a diffusion volume.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue

from medviewer.io import siemens_csa


@dataclass(frozen=True)
class Diffusion:
    b: float
    gradient: tuple[float, float, float] | None  # unit vector, LPS; None for b=0 and trace images
    trace: bool = False  # derived isotropic image (b > 0 without a direction)

    def key(self) -> tuple:
        """What tells diffusion volumes apart (rounded, so that repeats compare equal)."""
        g = None if self.gradient is None else tuple(round(v, 3) + 0.0 for v in self.gradient)
        return ("dwi", round(self.b), g, self.trace)


def _values(ds: Dataset, tag: tuple[int, int]) -> list[float] | None:
    element = ds.get(tag)
    if element is None:
        return None
    value = element.value
    if isinstance(value, (bytes, bytearray)):  # private tags read without a dictionary (UN)
        return None
    items = list(value) if isinstance(value, (list, tuple, MultiValue)) else [value]
    try:
        out = [float(v) for v in items]
    except (TypeError, ValueError):
        return None
    return out if out and all(math.isfinite(v) for v in out) else None


def _unit(vector) -> tuple[float, float, float] | None:
    if vector is None or len(vector) < 3:
        return None
    v = np.array(vector[:3], dtype=float)
    norm = float(np.linalg.norm(v))
    if not math.isfinite(norm) or norm < 1e-3:
        return None
    return tuple(float(x) for x in v / norm)  # type: ignore[return-value]


def _make(b: float, gradient, label: str = "") -> Diffusion | None:
    if not math.isfinite(b) or b < 0 or b > 1e5:
        return None
    unit = _unit(gradient)
    if b < 1:  # b=0 images carry no direction
        return Diffusion(0.0, None)
    if unit is None or label == "I":
        return Diffusion(float(b), None, trace=True)
    return Diffusion(float(b), unit)


def _standard(ds: Dataset) -> Diffusion | None:
    for source in (ds, *(list(ds.get("MRDiffusionSequence", []) or [])[:1])):
        b = _values(source, (0x0018, 0x9087))
        if b is None:
            continue
        gradient = _values(source, (0x0018, 0x9089))
        if gradient is None:
            seq = source.get("DiffusionGradientDirectionSequence") or []
            gradient = _values(seq[0], (0x0018, 0x9089)) if len(seq) else None
        label = str(source.get("DiffusionDirectionality", "")).upper()
        return _make(b[0], gradient, "I" if label == "ISOTROPIC" else "")
    return None


def _siemens(ds: Dataset) -> Diffusion | None:
    csa = siemens_csa.image_header(ds)
    b = siemens_csa.first(csa, "B_value")
    gradient = siemens_csa.first(csa, "DiffusionGradientDirection", 3)
    if b is None:
        public = _values(ds, (0x0019, 0x100C)) if str(ds.get("Manufacturer", "")).upper().startswith("SIEMENS") else None
        if public is None:
            return None
        b = public[0]
        gradient = _values(ds, (0x0019, 0x100E))
    return _make(float(b), gradient)


def _philips(ds: Dataset) -> Diffusion | None:
    if not str(ds.get("Manufacturer", "")).upper().startswith("PHILIPS"):
        return None
    b = _values(ds, (0x2001, 0x1003))
    if b is None:
        return None
    parts = [_values(ds, (0x2005, 0x10B0 + k)) for k in range(3)]
    gradient = [p[0] for p in parts] if all(p is not None for p in parts) else None
    label = ds.get((0x2001, 0x1004))
    text = label.value if label is not None else ""
    if isinstance(text, (bytes, bytearray)):
        text = text.decode("latin-1", "replace")
    return _make(b[0], gradient, str(text).strip("\x00 ").upper())


def diffusion_of(ds: Dataset) -> Diffusion | None:
    """The diffusion weighting the header records, or None for an image without any."""
    try:
        for reader in (_standard, _philips, _siemens):
            found = reader(ds)
            if found is not None:
                return found
    except (AttributeError, TypeError, ValueError, KeyError, IndexError):
        return None
    return None
