"""Label commands: `medviewer stats IMAGE LABELS`, `medviewer surfaces IMAGE LABELS --out F.stl`
and `medviewer convert ... --seg/--reference`.

LABELS may be a label image (.nii, .nii.gz, .nrrd, .seg.nrrd), a DICOM SEG or an RT
Structure Set; DICOM label objects are placed on the image through their references.
"""
from __future__ import annotations

import json
import os

from medviewer.core.errors import MedViewerError


def add_parsers(sub, convert) -> None:
    """Add the `stats` command and the label options of `convert` to the main parser."""
    stats = sub.add_parser("stats", help="per-label voxel counts, volumes and intensity statistics")
    stats.add_argument("image", help="image file, folder or DICOMDIR")
    stats.add_argument("labels", help="label image (.nii, .nii.gz, .nrrd, .seg.nrrd), DICOM SEG or RTSTRUCT")
    stats.add_argument("--json", action="store_true", help="print a JSON list")
    stats.add_argument("--csv", metavar="FILE", help="also write the table as CSV")
    stats.add_argument("--series", help="series id or 1-based number when IMAGE holds several")
    stats.add_argument("--resample", action="store_true",
                       help="resample labels of another grid onto the image (nearest neighbour)")
    surf = sub.add_parser("surfaces", help="write label surfaces as STL, OBJ or PLY in world coordinates "
                                           "(for 3D printing and other tools)")
    surf.add_argument("image", help="the image the labels belong to: file, folder or DICOMDIR")
    surf.add_argument("labels", help="label image (.nii, .nii.gz, .nrrd, .seg.nrrd), DICOM SEG or RTSTRUCT")
    surf.add_argument("--out", required=True, metavar="FILE",
                      help="FILE.stl, .obj or .ply; with several labels one file per label, "
                           "named FILE_VALUE_NAME.ext")
    surf.add_argument("--label", type=int, metavar="VALUE", help="only this label, written to FILE itself")
    surf.add_argument("--space", choices=["LPS", "RAS"], default="LPS",
                      help="world coordinates: LPS (DICOM, ITK, 3D Slicer; default) or RAS")
    surf.add_argument("--series", help="series id or 1-based number when IMAGE holds several")
    surf.add_argument("--resample", action="store_true",
                      help="resample labels of another grid onto the image (nearest neighbour)")
    convert.add_argument("--seg", action="store_true",
                         help="write the labels in INPUT as a DICOM SEG of the --reference series")
    convert.add_argument("--reference", metavar="DICOM_FOLDER",
                         help="the image the labels belong to (needed for --seg and for reading a SEG)")


def _load_reference(path: str, series: str | None):
    from medviewer.cli import _report_problems, warning
    from medviewer.io import discover

    found = discover(path)
    _report_problems(found)
    source = found.find(series)
    volume = source.load()
    for w in volume.warnings:
        warning(w)
    return source, volume


def load_any_labels(path: str, source, volume, resample: bool = False):
    """A LabelMap on VOLUME's grid from a label image, a DICOM SEG or an RTSTRUCT
    (medviewer.io.label_io.read_any_labels, the reader the GUI uses too)."""
    from medviewer.io.label_io import LabelGeometryMismatch, read_any_labels

    try:
        return read_any_labels(path, source, volume)
    except LabelGeometryMismatch as exc:
        if not resample:
            raise MedViewerError(f"{exc} (use --resample to resample them onto the image)") from None
        from medviewer.cli import warning

        warning(f"{exc}; resampled (nearest neighbour)")
        return read_any_labels(path, source, volume, resample=True)


def cmd_stats(args) -> int:
    from medviewer.cli import check_output_file
    from medviewer.processing.label_stats import label_statistics, write_csv

    if args.csv:
        check_output_file("--csv", args.csv)
    if not os.path.exists(args.labels):
        raise MedViewerError(f"{args.labels}: no such file")
    source, volume = _load_reference(args.image, args.series)
    labelmap = load_any_labels(args.labels, source, volume, args.resample)
    stats = label_statistics(volume, labelmap)
    if args.csv:
        write_csv(stats, args.csv)
    if args.json:
        print(json.dumps(stats, indent=1))
        return 0
    size_key, unit = ("area_mm2", "mm2") if volume.is_2d else ("volume_mm3", "mm3")
    print(f"{'label':>5}  {'name':<24} {'voxels':>10} {unit:>12} {'mean':>10} {'std':>10} {'min':>9} "
          f"{'max':>9} {'median':>9}")
    for row in stats:
        nums = [row[k] for k in ("mean", "std", "min", "max", "median")]
        text = " ".join(f"{v:>{w}.4g}" if v is not None else f"{'-':>{w}}" for v, w in zip(nums, (10, 10, 9, 9, 9)))
        print(f"{row['label']:>5}  {row['name'][:24]:<24} {row['voxels']:>10} {row[size_key]:>12.6g} {text}")
    if not stats:
        print("(no labels)")
    return 0


def cmd_surfaces(args) -> int:
    """`surfaces IMAGE LABELS --out FILE.stl|.obj|.ply [--label N] [--space LPS|RAS]`."""
    from medviewer.cli import check_output_file

    check_output_file("--out", args.out)
    if not os.path.exists(args.labels):
        raise MedViewerError(f"{args.labels}: no such file")
    from medviewer.ui.view3d.surface_export import export_surfaces, surface_format  # VTK, lazily

    surface_format(args.out)
    source, volume = _load_reference(args.image, args.series)
    if volume.is_2d:
        raise MedViewerError(f"{args.image}: a 2D image has no label surfaces to write")
    labelmap = load_any_labels(args.labels, source, volume, args.resample)
    for path in export_surfaces(labelmap, volume, args.out, space=args.space, label=args.label):
        print(f"wrote {path}")
    return 0


def cmd_convert_labels(args) -> int:
    """`convert LABELS OUT.dcm --seg --reference DIR`, `convert SEG.dcm OUT.nii.gz --reference DIR`,
    and `convert LABELS OUT.nrrd --reference IMAGE` (label formats on the reference grid)."""
    from medviewer.io.label_io import LABEL_EXTENSIONS, label_extension, save_labels

    if not args.reference:
        raise MedViewerError(f"{args.input}: --seg needs --reference DICOM_FOLDER (the series the labels belong to)")
    out_is_labels = label_extension(args.output) in LABEL_EXTENSIONS
    if args.seg and out_is_labels:
        raise MedViewerError(f"{args.output}: --seg writes a DICOM SEG; name the output .dcm")
    if not args.seg and not out_is_labels:
        hint = " (add --seg to write a DICOM SEG)" if args.output.lower().endswith(".dcm") else ""
        raise MedViewerError(f"{args.output}: labels are written as {', '.join(LABEL_EXTENSIONS)}{hint}")
    source, volume = _load_reference(args.reference, args.series)
    labelmap = load_any_labels(args.input, source, volume)
    if args.seg:
        from medviewer.io.dicom_seg import blank_uid_warning, write_seg

        if getattr(source, "kind", "") != "dicom":
            raise MedViewerError(f"{args.reference}: a DICOM SEG needs a DICOM series as --reference")
        write_seg(labelmap, volume, source, args.output)
        from medviewer.cli import warning

        blank = blank_uid_warning(source)
        if blank:
            warning(blank)
        what = "DICOM SEG"
    else:
        save_labels(labelmap, volume, args.output)
        what = "labels"
    present = labelmap.values_present()
    print(f"wrote {args.output} ({what}, {len(present)} label(s) present: {', '.join(map(str, present)) or 'none'})")
    return 0
