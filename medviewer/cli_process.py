"""`medviewer process INPUT OUTPUT --op NAME [--param NAME=VALUE ...]` and `medviewer process --list`.

Runs one image processing operation (medviewer.ai.clustering.all_operations(): the same
registry and run_operation as the GUI's Process panel) on INPUT and writes OUTPUT: an image
(.nii, .nii.gz, .nrrd, .mha) for image and overlay operations, a label file (.nii.gz, .nrrd,
.seg.nrrd ... with its colour tables) for label operations. Parameters not given take the
operation's defaults for the image (`--list` shows each with its range). The output extension
and folder are checked before any work; a bad parameter is one line naming it and its range.
"""
from __future__ import annotations

import sys

from medviewer.core.errors import MedViewerError


def add_parser(sub) -> None:
    proc = sub.add_parser("process", help="run an image processing operation (denoise, enhance, edges, "
                                          "morphology, threshold, cluster, resample, crop) and write the result")
    proc.add_argument("input", nargs="?", help="image file, folder or DICOMDIR")
    proc.add_argument("output", nargs="?", help="output image (.nii, .nii.gz, .nrrd, .mha) or, for label "
                                                "operations, label file (.nii.gz, .nrrd, .seg.nrrd)")
    proc.add_argument("--op", metavar="NAME", help="the operation (see --list)")
    proc.add_argument("--param", action="extend", nargs="+", default=[], metavar="NAME=VALUE",
                      help="a parameter of the operation (repeatable)")
    proc.add_argument("--series", help="series id or 1-based number when INPUT holds several")
    proc.add_argument("--list", action="store_true", help="list the operations with their parameters")


def parse_params(items: list[str]) -> dict[str, str]:
    params: dict[str, str] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise MedViewerError(f"--param {item!r}: write NAME=VALUE, e.g. --param sigma=1.5")
        params[name.strip()] = value.strip()
    return params


def list_operations(ops) -> str:
    lines, group = [], None
    for op in ops.values():
        if op.group != group:
            group = op.group
            lines.append(f"{group}:")
        lines.append("  " + op.usage().replace("\n", "\n  "))
    return "\n".join(lines)


def _check_output(op, path: str) -> None:
    from medviewer.cli import check_output_file
    from medviewer.io.label_io import LABEL_EXTENSIONS, label_extension
    from medviewer.io.writer import check_target, check_writable

    check_output_file("OUTPUT", path)
    if op.output == "labels":
        if label_extension(path) not in LABEL_EXTENSIONS:
            raise MedViewerError(f"{path}: {op.name} makes a label map; write it as one of "
                                 + ", ".join(LABEL_EXTENSIONS))
        check_target(path)
    else:
        check_writable(path)


def cmd_process(args) -> int:
    from medviewer.ai.clustering import all_operations
    from medviewer.processing.operations import checked_params, check_input, get, run_operation

    ops = all_operations()
    if args.list:
        print(list_operations(ops))
        return 0
    if not args.input or not args.output or not args.op:
        raise MedViewerError("process needs INPUT, OUTPUT and --op NAME (or --list)")
    op = get(args.op)
    params = parse_params(args.param)
    for name in params:
        op.param(name)  # an unknown parameter before the image is read
    _check_output(op, args.output)
    from medviewer.cli_labels import _load_reference

    _, volume = _load_reference(args.input, args.series)
    check_input(op, volume)
    values = checked_params(op, volume, params)
    result = run_operation(op.name, volume, values, progress=_progress())
    if op.output == "labels":
        from medviewer.io.label_io import save_labels

        written = save_labels(result.labels, volume, args.output)
        counts = {lab.name: int((result.labels.data == lab.value).sum()) for lab in result.labels.table}
        print(f"wrote {written[0]} ({result.description}: "
              + ", ".join(f"{name} {n} voxels" for name, n in counts.items()) + ")")
    else:
        from medviewer.io import write_volume

        write_volume(result.volume, args.output)
        print(f"wrote {args.output} ({result.description}; {result.volume.describe()})")
    return 0


def _progress():
    """Progress on stderr in tenths, when stderr is a terminal."""
    if not sys.stderr.isatty():
        return None
    shown = [-1]

    def show(fraction: float, message: str) -> None:
        tenth = int(fraction * 10)
        if tenth > shown[0]:
            shown[0] = tenth
            print(f"\r{message} {int(fraction * 100):3d} %", end="" if tenth < 10 else "\n",
                  file=sys.stderr, flush=True)
    return show
