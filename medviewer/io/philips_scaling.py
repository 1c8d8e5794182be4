"""Philips value scaling: display values (the DICOM rescale) or floating-point values.

Philips stores a private scale slope SS (2005,100E) beside the public RescaleSlope RS and
RescaleIntercept RI. The public rescale gives display values, DV = SV * RS + RI (what every viewer
shows, and MedViewer's default); quantitative work (relaxometry, ASL, phase in Hz) needs the
floating-point values FP = DV / (RS * SS), which is what dcm2niix writes by default. Per frame:
some Philips series scale every slice differently.
"""
from __future__ import annotations

import copy
from dataclasses import replace

from medviewer.core.errors import MedViewerError

MODES = ("display", "fp")
NOTE = "values: Philips floating-point (FP = DV / (RS x SS), private scale slope 2005,100E)"


def floating_point(source):
    """A copy of the DICOM series SOURCE whose values are Philips floating-point values.
    MedViewerError when the series has no private scale slope."""
    from medviewer.io.dicom_series import DicomSeries

    frames = getattr(source, "frames", None)
    if not isinstance(source, DicomSeries) or not frames or any(f.philips_scale is None for f in frames):
        raise MedViewerError(f"{source.id}: --philips-scaling fp needs the Philips private scale slope "
                             "(2005,100E) in every image; this series has none, so its values stay display values")
    scaled = copy.copy(source)  # the same series, geometry and grouping; only the values differ
    scaled.frames = [replace(f, slope=1.0 / f.philips_scale[0], intercept=f.intercept / (f.slope * f.philips_scale[0]))
                     for f in frames]
    scaled.warnings = list(source.warnings)
    scaled.value_note = NOTE
    return scaled


def apply(source, mode: str):
    """SOURCE with the values MODE asks for ("display": as it is)."""
    if mode not in MODES:
        raise MedViewerError(f"--philips-scaling must be one of {', '.join(MODES)}, not {mode!r}")
    return source if mode == "display" else floating_point(source)
