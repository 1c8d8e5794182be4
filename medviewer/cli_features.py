"""`medviewer features IMAGE MASK`: IBSI radiomics features of an ROI, as JSON lines or CSV."""
from __future__ import annotations

import csv
import json
import math
import sys

import numpy as np

from medviewer.core.errors import MedViewerError


def add_parser(sub) -> None:
    from medviewer.processing.radiomics import ALL_AGGREGATIONS, FAMILIES

    p = sub.add_parser("features", help="IBSI radiomics features of an image inside a mask")
    p.add_argument("image", help="image file or DICOM folder")
    p.add_argument("mask", help="label map / mask on the image's grid (NIfTI, NRRD, ...)")
    p.add_argument("--label", type=int, help="the label value of the ROI (default: every nonzero voxel)")
    p.add_argument("--aggregation", action="append", choices=ALL_AGGREGATIONS, metavar="AGG",
                   help="texture aggregation, as IBSI spells it (repeatable): " + "; ".join(ALL_AGGREGATIONS)
                        + " (default: all)")
    p.add_argument("--family", action="append", choices=list(FAMILIES), help="feature family (repeatable; default all)")
    group = p.add_mutually_exclusive_group()
    group.add_argument("--bin-number", type=int, default=None, help="fixed bin number discretisation (default 32)")
    group.add_argument("--bin-size", type=float, help="fixed bin size discretisation (e.g. 25 HU)")
    p.add_argument("--resample", type=float, metavar="MM", help="resample to isotropic voxels of MM first")
    out = p.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true", help="print a JSON list of {family, feature, ibsi_code, "
                                                         "aggregation, value}")
    out.add_argument("--csv", action="store_true", help="print CSV with the same columns")


def load_roi_arrays(image_path: str, mask_path: str, label: int | None):
    """(image volume, boolean mask) checked to share the grid."""
    from medviewer.io import open_volume

    image = open_volume(image_path)
    mask = open_volume(mask_path)
    if image.is_rgb:
        raise MedViewerError(f"{image_path}: radiomics needs a grey image, this one is colour")
    if mask.shape != image.shape or not np.allclose(mask.spacing, image.spacing, rtol=1e-3) or not np.allclose(
            mask.origin, image.origin, atol=1e-2 * min(image.spacing)):
        raise MedViewerError(f"the mask {mask_path} ({mask.size[0]}x{mask.size[1]}x{mask.size[2]}, spacing "
                             f"{'x'.join(f'{s:g}' for s in mask.spacing)}) does not match the image "
                             f"({image.size[0]}x{image.size[1]}x{image.size[2]}, spacing "
                             f"{'x'.join(f'{s:g}' for s in image.spacing)}): resample it onto the image first")
    data = mask.data if not mask.is_rgb else mask.data[..., 0]
    roi = data == label if label is not None else data != 0
    if not roi.any():
        present = [int(v) for v in np.unique(data) if v][:10]
        raise MedViewerError(f"{mask_path}: no voxel with label {label}" + (f" (labels present: {present})"
                             if present else " (the mask is empty)") if label is not None
                             else f"{mask_path}: the mask is empty")
    return image, roi


def check_label(label: int | None) -> None:
    """--label names an ROI: 1 or more (0 is the background)."""
    if label is not None and label < 1:
        raise MedViewerError(f"--label {label}: must be at least 1 (0 is the background)")


def cmd_features(args) -> int:
    from medviewer.cli import check_number
    from medviewer.processing.radiomics import compute_features

    check_number("--bin-number", args.bin_number, 1, inclusive=True)
    check_number("--bin-size", args.bin_size)
    check_number("--resample", args.resample)
    check_label(args.label)
    image, roi = load_roi_arrays(args.image, args.mask, args.label)
    resample = (args.resample,) * 3 if args.resample is not None else None
    bin_number = args.bin_number if args.bin_number is not None else (None if args.bin_size is not None else 32)
    feats = compute_features(image.data, roi, image.spacing, families=args.family, aggregations=args.aggregation,
                             bin_number=bin_number, bin_size=args.bin_size, resample_to=resample)
    rows = [f.as_dict() for f in feats]
    for r in rows:
        if isinstance(r["value"], float) and math.isnan(r["value"]):
            r["value"] = None  # JSON has no NaN: IBSI's undefined values are null
    if args.csv:
        writer = csv.DictWriter(sys.stdout, fieldnames=["family", "feature", "ibsi_code", "aggregation", "value"])
        writer.writeheader()
        writer.writerows(rows)
    elif args.json:
        print(json.dumps(rows, indent=1))
    else:
        width = max(len(r["feature"]) for r in rows)
        for r in rows:
            value = "nan" if r["value"] is None else f"{r['value']:.6g}"
            print(f"{r['family']:20} {r['feature']:{width}} {r['ibsi_code']:5} {r['aggregation']:24} {value}")
    return 0
