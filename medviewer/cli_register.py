"""`medviewer register FIXED MOVING --out RESAMPLED [--transform rigid|affine|bspline] [--metric mi|ms]
[--landmarks FIXED.csv MOVING.csv] [--save-transform FILE.tfm] [--labels LABELS --labels-out OUT]`.

Registers MOVING onto FIXED with medviewer.processing.registration (the code the GUI's Register
panel runs) and writes the moving image resampled on the fixed image's grid (the fixed geometry);
``--save-transform`` writes the transform (fixed world -> moving world, ITK's convention) as an ITK
transform file that 3D Slicer and SimpleITK read; ``--labels`` (a label file of the moving image)
are carried to the fixed grid (nearest neighbour) and written to ``--labels-out``. Landmarks (CSV
label,x,y,z in LPS mm, or 3D Slicer .fcsv / .mrk.json; pairs by order) start the registration
from their rigid fit and the target registration error is printed; ``--landmarks-only`` uses the
closed-form landmark fit alone. Every output path is checked before any work.
"""
from __future__ import annotations

import os

from medviewer.core.errors import MedViewerError


def add_parser(sub) -> None:
    reg = sub.add_parser("register", help="register MOVING onto FIXED (rigid, affine, B-spline; mutual information "
                                          "or mean squares) and write it on the fixed grid")
    reg.add_argument("fixed", help="the fixed (reference) image: file, folder or DICOMDIR")
    reg.add_argument("moving", help="the image to move onto the fixed one")
    reg.add_argument("--out", required=True, metavar="RESAMPLED",
                     help="the moving image on the fixed grid (.nii, .nii.gz, .nrrd, .mha)")
    reg.add_argument("--transform", choices=["rigid", "affine", "bspline"], default="rigid",
                     help="rigid, affine (after rigid) or bspline (after rigid and affine); default rigid")
    reg.add_argument("--metric", choices=["mi", "ms"], default="mi",
                     help="mi: Mattes mutual information (any contrasts, default); ms: mean squares (same contrast)")
    reg.add_argument("--init", choices=["geometry", "moments", "none"], default="geometry",
                     help="start: image centres on top of each other (geometry, default), intensity centroids "
                          "(moments), or the files' world coordinates as they are (none: one frame of reference)")
    reg.add_argument("--landmarks", nargs=2, metavar=("FIXED_POINTS", "MOVING_POINTS"),
                     help="point pairs (CSV label,x,y,z in LPS mm, or Slicer .fcsv / .mrk.json): the start, and "
                          "the target registration error printed")
    reg.add_argument("--landmarks-only", action="store_true",
                     help="the closed-form landmark fit alone (--transform rigid or affine), no intensity registration")
    reg.add_argument("--save-transform", metavar="FILE",
                     help="write the transform as an ITK transform file (.tfm, .h5; .mat for rigid/affine)")
    reg.add_argument("--labels", metavar="LABELS", help="a label file of the moving image, carried to the fixed grid")
    reg.add_argument("--labels-out", metavar="OUT", help="where the carried labels go (.nii.gz, .nrrd, .seg.nrrd)")
    reg.add_argument("--fixed-series", help="series id or 1-based number when FIXED holds several")
    reg.add_argument("--moving-series", help="series id or 1-based number when MOVING holds several")


def _check_outputs(args) -> None:
    from medviewer.cli import check_output_file
    from medviewer.io.label_io import LABEL_EXTENSIONS, label_extension
    from medviewer.io.writer import check_target, check_writable
    from medviewer.processing.transform_files import EXTENSIONS

    check_output_file("--out", args.out)
    check_writable(args.out)
    if args.save_transform:
        check_output_file("--save-transform", args.save_transform)
        if not args.save_transform.lower().endswith(EXTENSIONS):
            raise MedViewerError(f"--save-transform {args.save_transform}: an ITK transform file is "
                                 + ", ".join(EXTENSIONS))
    if bool(args.labels) != bool(args.labels_out):
        raise MedViewerError("--labels and --labels-out go together: the moving image's labels and where the "
                             "carried labels are written")
    if args.labels_out:
        check_output_file("--labels-out", args.labels_out)
        if label_extension(args.labels_out) not in LABEL_EXTENSIONS:
            raise MedViewerError(f"--labels-out {args.labels_out}: write labels as one of {', '.join(LABEL_EXTENSIONS)}")
        check_target(args.labels_out)
    if args.landmarks_only and not args.landmarks:
        raise MedViewerError("--landmarks-only needs --landmarks FIXED_POINTS MOVING_POINTS")
    if args.landmarks_only and args.transform == "bspline":
        raise MedViewerError("--landmarks-only fits a rigid or affine transform; use --transform rigid or affine")


def cmd_register(args) -> int:
    from medviewer.cli_labels import _load_reference, load_any_labels
    from medviewer.cli_process import _progress
    from medviewer.io import write_volume
    from medviewer.processing.landmarks import read_points, target_registration_error
    from medviewer.processing.registration import (RegistrationSettings, carry_labels, register,
                                                   register_from_landmarks)

    _check_outputs(args)
    landmarks = None
    if args.landmarks:
        (fixed_points, _), (moving_points, _) = (read_points(p) for p in args.landmarks)
        if len(fixed_points) != len(moving_points):
            raise MedViewerError(f"{args.landmarks[0]} holds {len(fixed_points)} points and {args.landmarks[1]} "
                                 f"{len(moving_points)}: the landmarks pair up by order")
        landmarks = (fixed_points, moving_points)
    if args.labels and not os.path.exists(args.labels):
        raise MedViewerError(f"{args.labels}: no such file")
    _, fixed = _load_reference(args.fixed, args.fixed_series)
    moving_source, moving = _load_reference(args.moving, args.moving_series)
    labels = load_any_labels(args.labels, moving_source, moving) if args.labels else None
    if args.landmarks_only:
        result = register_from_landmarks(fixed, moving, *landmarks, kind=args.transform)
    else:
        settings = RegistrationSettings(transform=args.transform, metric=args.metric, initialisation=args.init)
        result = register(fixed, moving, settings, landmarks=landmarks, progress=_progress())
    write_volume(result.resampled, args.out)
    print(f"wrote {args.out} ({result.description}; on the fixed grid: {result.resampled.describe()})")
    if not args.landmarks_only:
        print(f"metric {result.metric_value:.6g} after {result.iterations} iterations ({result.stop_reason.strip()})")
    if landmarks is not None:
        mean, per = target_registration_error(result.transform, *landmarks)
        print(f"target registration error over {len(per)} landmark pairs: mean {mean:.3f} mm, max {per.max():.3f} mm")
    if args.save_transform:
        from medviewer.processing.transform_files import save_transform

        save_transform(result.transform, args.save_transform)
        print(f"wrote {args.save_transform} (ITK transform, fixed world -> moving world, LPS mm)")
    if labels is not None:
        from medviewer.io.label_io import save_labels

        carried = carry_labels(labels, moving, fixed, result.transform)
        written = save_labels(carried, fixed, args.labels_out)
        present = carried.values_present()
        print(f"wrote {written[0]} (labels carried to the fixed grid, nearest neighbour; "
              f"{len(present)} label(s) present: {', '.join(map(str, present)) or 'none'})")
    return 0
