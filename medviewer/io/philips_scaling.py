"""Philips value scaling: display values (the DICOM rescale) or floating-point values.

Philips stores a private scale slope SS (2005,100E) beside the public RescaleSlope RS and
RescaleIntercept RI. The public rescale gives display values, DV = SV * RS + RI (what every viewer
shows, and MedViewer's default); quantitative work (relaxometry, ASL, phase in Hz) needs the
floating-point values FP = DV / (RS * SS), which is what dcm2niix writes by default. Per frame:
some Philips series scale every slice differently.
"""
from __future__ import annotations

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
    scaled = []
    for f in frames:
        ss, _si = f.philips_scale
        rs, ri = f.slope, f.intercept
        scaled.append(replace(f, slope=1.0 / ss, intercept=ri / (rs * ss)))
    copy = DicomSeries(source.id, scaled, [w for w in source.warnings])
    copy.volume_group, copy.volume_index, copy.diffusion = source.volume_group, source.volume_index, source.diffusion
    copy.description, copy.linked_labels = source.description, list(source.linked_labels)
    copy.value_note = NOTE
    return copy


def apply(source, mode: str):
    """SOURCE with the values MODE asks for ("display": as it is)."""
    if mode not in MODES:
        raise MedViewerError(f"--philips-scaling must be one of {', '.join(MODES)}, not {mode!r}")
    return source if mode == "display" else floating_point(source)
