"""What the training images were like, written into the manifest's input contract by the trainers.

    extent_contract(extents, description=..., advice=..., measured_on=...) -> input.extent_mm
    colour_contract(fractions, description=..., advice=..., measured_on=...) -> input.intensity

The figures are measured with the functions check_input uses (ai.inference.physical_extent and
colour_fraction), so a model refuses exactly what lies outside what it was measured on, widened by
the tolerance. The field names are documented in ai.registry. numpy only.
"""
from __future__ import annotations

import numpy as np

# accepted extent per axis: [min / EXTENT_TOLERANCE, max * EXTENT_TOLERANCE] of the training images.
# Hand-made crops are looser than a dataset's; 1.5 keeps a crop rotated by 25 degrees and refuses
# anything much bigger than the structure (a hemisphere, a whole head).
EXTENT_TOLERANCE = 1.5
# coloured pixels accepted above the training images' largest fraction: room for a coloured
# annotation or burnt-in text, not for a colour picture or a screenshot with a heat map
COLOUR_TOLERANCE = 0.05


def extent_contract(extents, *, description: str, advice: str = "", measured_on: str,
                    tolerance: float = EXTENT_TOLERANCE) -> dict:
    """input.extent_mm from the (N, 3) extents (mm along the model's axes) of the training images."""
    e = np.asarray(extents, float)
    if e.ndim != 2 or not len(e):
        raise ValueError("extent_contract needs one (x, y, z) extent per training image")

    def mm(values) -> list[float]:
        return [round(float(v), 1) for v in values]

    out = {"min": mm(e.min(0)), "max": mm(e.max(0)), "median": mm(np.median(e, 0)), "tolerance": tolerance,
           "axes": "x, y, z of input.direction (mm)", "description": description,
           "measured_on": f"{len(e)} {measured_on}: the box around each image's nonzero voxels"}
    if advice:
        out["advice"] = advice
    return out


def colour_contract(fractions, *, description: str, advice: str = "", measured_on: str,
                    tolerance: float = COLOUR_TOLERANCE) -> dict:
    """input.intensity from the coloured-pixel fractions (ai.inference.colour_fraction) of the
    training images."""
    f = np.asarray(fractions, float)
    if not f.size:
        raise ValueError("colour_contract needs one fraction per training image")
    out = {"colour_fraction": {"min": round(float(f.min()), 4), "max": round(float(f.max()), 4),
                               "limit": round(float(f.max()) + tolerance, 4),
                               "coloured_pixel": "R, G and B differ by more than 10% of the value range"},
           "description": description, "measured_on": f"{f.size} {measured_on}"}
    if advice:
        out["advice"] = advice
    return out


# what the shipped chest X-ray models say (their training images are grey JPEGs stored as RGB)
XRAY_DESCRIPTION = "grey chest X-rays"
XRAY_ADVICE = "open the X-ray itself, not a colour picture or a screenshot with coloured overlays"
