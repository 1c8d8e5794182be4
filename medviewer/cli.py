"""The command line: `medviewer [PATH...]`, `medviewer info`, `medviewer convert`, `medviewer stats`."""
from __future__ import annotations

import argparse
from collections import Counter
import json
import os
import sys
from pathlib import Path

from medviewer import __version__
from medviewer.core.errors import MedViewerError

COMMANDS = ("info", "convert", "view", "screenshot", "stats", "surfaces", "models", "infer", "train", "evaluate",
            "features", "process", "register")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="medviewer",
        description="MedViewer: medical image viewer with AI assistance (research and demonstration, "
                    "not for clinical use). With no command, opens PATH... (or the demo study).")
    parser.add_argument("--version", action="version", version=f"medviewer {__version__}")
    sub = parser.add_subparsers(dest="command")

    view = sub.add_parser("view", help="open images (the default command)")
    view.add_argument("paths", nargs="*", help="files or folders; none opens the demo study")

    info = sub.add_parser("info", help="list every series/volume found under PATH")
    info.add_argument("path", help="file, folder or DICOMDIR")
    info.add_argument("--json", action="store_true", help="print a JSON list")

    convert = sub.add_parser("convert", help="write a volume to .nii, .nii.gz, .nrrd or .mha")
    convert.add_argument("input", help="file, folder or DICOMDIR")
    convert.add_argument("output", help="output file (.nii, .nii.gz, .nrrd, .mha)")
    convert.add_argument("--series", help="series id (from `medviewer info`) or its 1-based number")
    convert.add_argument("--4d", dest="four_d", action="store_true",
                         help="write all volumes of the series (time points, diffusion directions) as one "
                              "4D image, with .bval/.bvec beside a NIfTI for diffusion series")
    convert.add_argument("--philips-scaling", choices=("display", "fp"), default="display",
                         help="Philips values: display values (the DICOM rescale, default) or fp, the "
                              "floating-point values of the private scale slope (as dcm2niix writes them)")
    from medviewer.cli_labels import add_parsers

    add_parsers(sub, convert)  # `stats`, and `convert --seg/--reference` for label maps

    models = sub.add_parser("models", help="list the AI models found, with their availability")
    models.add_argument("--json", action="store_true", help="print a JSON list")
    models.add_argument("--models", action="append", default=[], metavar="DIR",
                        help="also look for model folders in DIR (repeatable)")

    from medviewer.cli_ai import add_parsers as add_ai_parsers

    add_ai_parsers(sub)  # `infer` and `train`
    from medviewer.cli_features import add_parser as add_features_parser

    add_features_parser(sub)
    from medviewer.cli_process import add_parser as add_process_parser

    add_process_parser(sub)  # `process`
    from medviewer.cli_register import add_parser as add_register_parser

    add_register_parser(sub)  # `register`

    ev = sub.add_parser("evaluate", help="measure a model on a labelled dataset")
    ev.add_argument("--model", required=True, help="model name (see `medviewer models`)")
    ev.add_argument("--data", required=True, help="classification: a folder per class; segmentation: MSD folder")
    ev.add_argument("--device", help="auto, cpu, cuda, cuda:N or mps")
    ev.add_argument("--limit", type=int, help="at most N images per class (classification) or N cases")
    ev.add_argument("--split", choices=("all", "validation", "test"), default="all",
                    help="all of --data (default), or the model's own validation or test split of it "
                         "(as its manifest records: the test split was never used to choose anything)")
    ev.add_argument("--json", action="store_true", help="print the metrics as JSON")
    ev.add_argument("--roc-png", metavar="FILE",
                    help="write the ROC curve as a PNG (classification and anomaly models)")
    ev.add_argument("--out", metavar="DIR",
                    help="write DIR/evaluation.json (the full result, ROC points included) and, for "
                         "classification, DIR/roc_<model>.png (unless --roc-png names another file) and "
                         "DIR/reliability_<model>.png (the calibration diagram)")
    ev.add_argument("--models", action="append", default=[], metavar="DIR", help="extra model folder")

    shot = sub.add_parser("screenshot", help="render the viewer offscreen to a PNG")
    shot.add_argument("input", help="file, folder or DICOMDIR")
    shot.add_argument("--out", required=True, help="PNG file to write")
    shot.add_argument("--layout", choices=["single", "mpr", "2x2", "2x2-3d", "3d", "compare-1x2", "compare-2x2"],
                      help="3d: the 3D view alone (volume rendering and label surfaces); 2x2-3d: three "
                           "slice views and the 3D view; compare-1x2 / compare-2x2: INPUT and the --compare "
                           "images side by side, linked (default: mpr, or a compare layout with --compare)")
    shot.add_argument("--compare", action="append", default=[], metavar="IMAGE",
                      help="open IMAGE (file or folder) beside INPUT, in the next compare pane (repeatable, "
                           "up to 3)")
    shot.add_argument("--fusion", choices=["overlay", "checkerboard", "difference"],
                      help="show the first --compare image fused over INPUT (resampled onto its planes, through "
                           "world coordinates): a colour overlay, a checkerboard or the difference; any 2D "
                           "layout (default compare-1x2: the fusion | the --compare image)")
    group = shot.add_mutually_exclusive_group()
    group.add_argument("--preset", help="window preset: brain, lung, bone, abdomen, mediastinum, auto ...; "
                                        "with --layout 3d a volume-rendering preset: ct-bone, ct-soft-tissue, "
                                        "ct-lung, ct-angiography, mr-default, mr-angio")
    group.add_argument("--window", type=float, help="window width (use with --level)")
    shot.add_argument("--level", type=float, help="window level (centre)")
    shot.add_argument("--slice", type=int, help="slice number in the (first) view, 1-based as shown")
    shot.add_argument("--labels", metavar="FILE", help="a label map (NIfTI, NRRD, DICOM SEG ...) to show "
                                                       "over the image and as surfaces in 3D")
    shot.add_argument("--render", choices=["volume", "mip", "surface"],
                      help="3D layouts: volume rendering (default), maximum intensity projection, or "
                           "the label surfaces alone")
    shot.add_argument("--camera", choices=["A", "P", "L", "R", "S", "I"],
                      help="3D layouts: look from the anterior, posterior, left, right, superior, inferior")
    shot.add_argument("--size", help="window size WIDTHxHEIGHT (default 1400x850)")
    shot.add_argument("--series", help="series id or 1-based number when INPUT holds several")
    shot.add_argument("--model", help="run this model from the AI panel first and show its result")
    shot.add_argument("--explain", choices=["gradcam", "occlusion"], help="also show the model's explanation map")
    shot.add_argument("--device", help="auto, cpu, cuda, cuda:N or mps (default auto)")
    shot.add_argument("--models", action="append", default=[], metavar="DIR", help="extra model folder")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one command. Exit codes: 0 done; 1 an error, reported on stderr as one line
    `medviewer: error: <reason>` (for an unexpected one, a second line names the log file holding
    the stack); 2 a usage error (argparse); 130 interrupted (Ctrl+C). Never a traceback."""
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        if not argv or (argv[0] not in COMMANDS and not argv[0].startswith("-")):
            argv = ["view"] + argv
        args = _parser().parse_args(argv)
        _clean_stale_temporaries()
        if args.command in ("view", "screenshot", "train"):  # the GUI's messages; long jobs with workers
            return _run(args, argv)
        import warnings

        from medviewer.io.native_output import native_output_silenced

        # pydicom's warnings about a file's encoding repeat its bytes; the reader says what matters
        warnings.filterwarnings("ignore", category=UserWarning, module="pydicom")
        with native_output_silenced():  # C libraries' own complaints about a file stay off the terminal
            return _run(args, argv)
    except MedViewerError as exc:
        error(str(exc))
        return 1
    except KeyboardInterrupt:
        print("medviewer: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `medviewer info --json | head`: the reader left; nothing to tell it
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        except (OSError, ValueError, AttributeError):
            pass
        return 1
    except Exception as exc:  # a bug or an unforeseen failure: one line, the stack in a log file
        return unexpected(exc, "medviewer " + " ".join(argv))


def error(message: str) -> None:
    """Print a refusal or failure: one line on stderr, `medviewer: error: ...`."""
    from medviewer.io.messages import clean_text

    print(f"medviewer: error: {clean_text(message, limit=2000)}", file=sys.stderr, flush=True)


def warning(message: str) -> None:
    """Print something the user should know that did not stop the command."""
    from medviewer.io.messages import clean_text

    print(f"medviewer: warning: {clean_text(message, limit=2000)}", file=sys.stderr, flush=True)


def unexpected(exc: BaseException, context: str) -> int:
    """Report an exception nobody planned for: the reason, and the log file with the stack. Returns 1."""
    from medviewer.io.error_log import report

    reason, log = report(exc, context)
    error(reason)
    if log is not None:
        print(f"medviewer: the details are in {log}", file=sys.stderr, flush=True)
    else:
        print("medviewer: (no log file could be written for the details)", file=sys.stderr, flush=True)
    return 1


def _clean_stale_temporaries() -> None:
    """Remove temporary files that killed autosaves left in the data folder (never fails a command)."""
    try:
        from medviewer.io.recovery import clean_stale_temporaries

        clean_stale_temporaries()
    except Exception:
        pass


def _run(args, argv: list[str]) -> int:
    if args.command == "info":
        return cmd_info(args.path, args.json)
    if args.command == "convert":
        if args.seg or args.reference:
            from medviewer.cli_labels import cmd_convert_labels

            return cmd_convert_labels(args)
        return cmd_convert(args.input, args.output, args.series, four_d=args.four_d,
                           philips_scaling=args.philips_scaling)
    if args.command == "stats":
        from medviewer.cli_labels import cmd_stats

        return cmd_stats(args)
    if args.command == "surfaces":
        from medviewer.cli_labels import cmd_surfaces

        return cmd_surfaces(args)
    if args.command == "train":
        from medviewer.cli_ai import cmd_train

        return cmd_train(args, argv)
    if args.command == "process":
        from medviewer.cli_process import cmd_process

        return cmd_process(args)
    if args.command == "register":
        from medviewer.cli_register import cmd_register

        return cmd_register(args)
    if args.command == "features":
        from medviewer.cli_features import cmd_features

        return cmd_features(args)
    if args.command == "evaluate":
        return cmd_evaluate(args)
    if args.command == "infer":
        from medviewer.cli_ai import cmd_infer

        return cmd_infer(args)
    if args.command == "models":
        return cmd_models(args.models, args.json)
    if args.command == "screenshot":
        from medviewer.app import run_screenshot

        check_screenshot_options(args)
        return run_screenshot(args)
    if args.command == "view":
        from medviewer.app import run_viewer

        return run_viewer(args.paths)
    _parser().print_help()
    return 2


# --- checks of option values, made before any work starts ------------------------------------
def check_model_dirs(dirs: list[str] | None) -> None:
    """Every --models DIR must be an existing folder."""
    for d in dirs or []:
        if not os.path.exists(d):
            raise MedViewerError(f"--models {d}: no such folder")
        if not os.path.isdir(d):
            raise MedViewerError(f"--models {d}: is a file, not a folder (give the folder holding the models)")


def check_device(device: str | None) -> None:
    """--device must be auto, cpu, cuda, cuda:N or mps (whether it is present is checked when used)."""
    import re

    from medviewer.ai.device import VALID

    if device is not None and not re.fullmatch(r"(auto|cpu|mps|cuda(:\d+)?)", device.strip().lower()):
        raise MedViewerError(f"--device {device!r}: unknown device; use one of {', '.join(VALID)} (or cuda:N)")


def check_number(option: str, value, minimum: float = 0, inclusive: bool = False) -> None:
    """OPTION's value (when given) must be a finite number above MINIMUM (at least it, when inclusive)."""
    import math

    if value is None:
        return
    if not math.isfinite(value) or value < minimum or (value == minimum and not inclusive):
        bound = ("a finite number" if minimum == float("-inf") else f"at least {minimum:g}" if inclusive
                 else "a positive number" if minimum == 0 else f"above {minimum:g}")
        raise MedViewerError(f"{option} {value:g}: must be {bound}")


def check_input_folder(option: str, path: str) -> None:
    """An input folder given with OPTION must exist and be a folder."""
    if not os.path.exists(path):
        raise MedViewerError(f"{option} {path}: no such folder")
    if not os.path.isdir(path):
        raise MedViewerError(f"{option} {path}: is a file; give a folder")


def check_output_folder(option: str, path: str) -> None:
    """An output folder given with OPTION must exist or be creatable (created here), and not be a file."""
    if os.path.isdir(path):
        return
    if os.path.exists(path):
        raise MedViewerError(f"{option} {path}: is a file, not a folder")
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as exc:
        from medviewer.io.messages import os_reason

        raise MedViewerError(f"{option} {path}: cannot create the folder ({os_reason(exc)})") from exc


def check_output_file(option: str, path: str) -> None:
    """An output file given with OPTION must be in an existing folder and not be a folder."""
    if os.path.isdir(path):
        raise MedViewerError(f"{option} {path}: is a folder; give a file name")
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        if os.path.exists(folder):
            raise MedViewerError(f"{option} {path}: {folder} is a file, not a folder")
        raise MedViewerError(f"{option} {path}: no such folder {folder}")


def check_screenshot_options(args) -> None:
    check_model_dirs(args.models)
    check_device(args.device)
    check_output_file("--out", args.out)
    if not args.out.lower().endswith(".png"):
        raise MedViewerError(f"--out {args.out}: a screenshot is a PNG; name the file .png")
    if args.size:
        parts = args.size.lower().split("x")
        if len(parts) != 2 or not all(p.strip().isdigit() for p in parts):
            raise MedViewerError(f"--size {args.size!r}: use WIDTHxHEIGHT, e.g. 1200x800")
        if not all(64 <= int(p) <= 16384 for p in parts):
            raise MedViewerError(f"--size {args.size}: width and height must be 64 to 16384 pixels")
    check_number("--window", args.window)
    check_number("--level", args.level, float("-inf"))  # any finite number
    compare_screenshot_options(args)
    three_d = args.layout in ("3d", "2x2-3d")
    if not three_d and (args.render or args.camera):
        raise MedViewerError(f"--{'render' if args.render else 'camera'} is for the 3D layouts: "
                             "add --layout 3d or --layout 2x2-3d")
    if args.labels is not None and not os.path.isfile(args.labels):
        raise MedViewerError(f"--labels {args.labels}: no such file")


def compare_screenshot_options(args) -> None:
    """--compare and the compare layouts: the layout defaults to one that shows every image."""
    if args.layout is None:
        args.layout = "mpr" if not args.compare else "compare-1x2" if len(args.compare) == 1 else "compare-2x2"
    panes = {"compare-1x2": 2, "compare-2x2": 4}.get(args.layout)
    if args.fusion and not args.compare:
        raise MedViewerError("--fusion fuses the first --compare image over INPUT: add --compare IMAGE")
    if args.fusion and args.layout in ("3d", "2x2-3d"):
        raise MedViewerError(f"--fusion is shown in the slice views, not in --layout {args.layout}")
    if args.compare and panes is None and not args.fusion:
        raise MedViewerError(f"--compare shows images side by side: use --layout compare-1x2 or compare-2x2, "
                             f"not {args.layout}")
    if panes is not None and len(args.compare) + 1 > panes:
        raise MedViewerError(f"--layout {args.layout} shows {panes} images; {len(args.compare) + 1} were given "
                             + ("(use compare-2x2)" if panes == 2 else "(at most 3 --compare)"))
    for path in args.compare:
        if not os.path.exists(path):
            raise MedViewerError(f"--compare {path}: no such file or folder")


def _report_problems(found) -> None:
    """Unreadable files as warnings, unless the error about finding nothing will say it."""
    if found.report_problems_separately():
        for problem in found.problems:
            warning(str(problem))


def cmd_info(path: str, as_json: bool) -> int:
    from medviewer.io import discover

    found = discover(path)
    _report_problems(found)
    infos = [s.info() for s in found.sources]
    groups = Counter(i["volume_group"] for i in infos if i["volume_group"])
    if as_json:
        print(json.dumps(infos, indent=1))
    else:
        for n, i in enumerate(infos, 1):
            print(f"[{n}] {i['id']}")
            print(f"    modality {i['modality'] or '-'}  description {i['description'] or '-'}")
            spacing = ("spacing {} mm".format(" x ".join(f"{s:.4g}" for s in i["spacing"])) if i["spacing_known"]
                       else "spacing unknown (pixels)")
            print("    size {} x {} x {}  {}".format(*i["size"], spacing))
            print("    origin ({}) mm".format(", ".join(f"{v:.4g}" for v in i["origin"])))
            print("    direction [{}]".format(" ".join(f"{v:.4g}" for v in i["direction"])))
            print(f"    files {i['files']}" + (f"  transfer syntax {', '.join(i['transfer_syntaxes'])}"
                                                 if i["transfer_syntaxes"] else ""))
            if i["volume_group"]:
                print(f"    volume {i['volume_index'] + 1} of {groups[i['volume_group']]} in 4D series "
                      f"{i['volume_group']}" + _diffusion_text(i["diffusion"]))
            for w in i["warnings"]:
                print(f"    warning: {w}")
            for label_file in i["linked_labels"]:
                print(f"    labels: {label_file}")
    if not infos:
        error(found.nothing_found())
        return 1
    return 0


def _diffusion_text(diffusion: dict | None) -> str:
    if diffusion is None:
        return ""
    g = diffusion["gradient"]
    return f"  b={diffusion['b']:g}" + (f" gradient ({', '.join(f'{v:.4g}' for v in g)})" if g else "")


def cmd_evaluate(args) -> int:
    from medviewer.ai.evaluation import evaluate
    from medviewer.ai.registry import find_model

    check_model_dirs(args.models)
    check_device(args.device)
    check_number("--limit", args.limit, 1, inclusive=True)
    if os.path.isfile(args.data):
        raise MedViewerError(f"--data {args.data}: is a file; give a folder")
    if args.roc_png:
        check_output_file("--roc-png", args.roc_png)
    spec = find_model(args.model, args.models).spec
    if args.roc_png and spec.task not in ("classification", "anomaly"):
        raise MedViewerError(f"--roc-png: {spec.name} is a {spec.task} model; "
                             "ROC curves are for classification models (and anomaly detectors)")
    if args.out:
        check_output_folder("--out", args.out)
    result = evaluate(spec, args.data, args.device, args.limit,
                      progress=lambda line: print(line, file=sys.stderr, flush=True), split=args.split)
    written = []
    stem = _file_stem(spec.name)
    png = args.roc_png or (os.path.join(args.out, f"roc_{stem}.png")
                           if args.out and result.get("task") in ("classification", "anomaly") else None)
    if png:
        from medviewer.io.roc_png import write_roc_png

        title = f"ROC curve: {spec.name} ({result['n']} images, {result['positive_class']} positive)"
        write_roc_png(png, [{"label": spec.name, "fpr": result["roc"]["fpr"], "tpr": result["roc"]["tpr"],
                             "auc": _value(result.get("roc_auc"))}], title=title)
        result["roc_png"] = png
        written.append(png)
    if args.out and result.get("reliability"):
        result["reliability_png"] = _reliability_png(os.path.join(args.out, f"reliability_{stem}.png"), spec, result)
        written.append(result["reliability_png"])
    if args.out:
        written.append(_write_json(os.path.join(args.out, "evaluation.json"), result))
    if args.json:
        print(json.dumps(result))
    else:
        print(_evaluation_text(result))
        for path in written:
            print(f"wrote {path}", file=sys.stderr)
    return 0


def _value(metric):
    """A metric's value: {"value", "ci95"} or a plain number."""
    return metric.get("value") if isinstance(metric, dict) else metric


def _reliability_png(path: str, spec, result: dict) -> str:
    from medviewer.io.roc_png import write_reliability_png

    curves = []
    for key, what in (("reliability", f"calibrated (T = {result.get('temperature', 1.0):.3g})"),
                      ("reliability_uncalibrated", "uncalibrated (T = 1)")):
        rel = result.get(key)
        if rel and rel["bins"]:
            curves.append({"label": f"{what}: ECE {rel['ece']:.3f}", "predicted": [b["mean_predicted"] for b in rel["bins"]],
                           "observed": [b["observed"] for b in rel["bins"]]})
    title = f"Reliability: {spec.name} ({result['n']} images, {result['positive_class']})"
    return write_reliability_png(path, curves, title=title)


def _evaluation_text(result: dict, indent: str = "") -> str:
    """The result as 'key: value' lines; a metric with an interval as 'value [low, high]'."""
    lines = []
    for key, v in result.items():
        if key in ("roc", "roc_png", "reliability_png") or key.startswith("reliability"):
            continue
        if isinstance(v, dict) and "ci95" in v:
            lines.append(f"{indent}{key}: {v['value']} [{v['ci95'][0]}, {v['ci95'][1]}]")
        elif isinstance(v, dict):
            lines.append(f"{indent}{key}:")
            lines.append(_evaluation_text(v, indent + "  "))
        else:
            lines.append(f"{indent}{key}: {v}")
    return "\n".join(line for line in lines if line)


def _write_json(path: str, data: dict) -> str:
    """Write data as indented JSON, atomically (temporary file, then rename)."""
    from medviewer.io.writer import write_atomically

    def dump(fh) -> None:
        json.dump(data, fh, indent=1)
        fh.write("\n")

    try:
        return write_atomically(path, dump, suffix=".json", text=True)
    except OSError as exc:
        from medviewer.io.messages import os_reason

        raise MedViewerError(f"{path}: cannot write ({os_reason(exc)})") from exc


def _file_stem(name: str) -> str:
    """A model name made safe as part of a file name."""
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name).strip(".") or "model"


def cmd_models(extra: list[str], as_json: bool) -> int:
    from medviewer.ai.model_files import shown
    from medviewer.ai.registry import discover_models, model_dirs

    check_model_dirs(extra)
    entries = discover_models(extra)
    for d in extra:
        root = Path(d).resolve()
        if not any(e.folder.resolve() == root or root in e.folder.resolve().parents for e in entries):
            warning(f"--models {d}: no model folder in it (a model folder holds a manifest)")
    if as_json:
        print(json.dumps([e.info() for e in entries], indent=1))
        return 0
    if not entries:
        print("no models found in " + ", ".join(str(d) for d, _ in model_dirs(extra)))
    for e in entries:  # available: what `infer` loads (registry.check_weights); else the reason
        state = "available" if e.available else f"unavailable: {e.reason}"
        task = e.spec.task if e.spec is not None else "?"
        line = f"{e.name}  [{task}, {e.source}]  {state}"
        print(line if line.isprintable() else shown(line, 2000))
    return 0


def cmd_convert(src: str, dst: str, series: str | None, four_d: bool = False,
                philips_scaling: str = "display") -> int:
    from medviewer.io import discover, philips_scaling as scaling, write_volume
    from medviewer.io.sitk_image import extension_of
    from medviewer.io.writer import WRITABLE, check_target

    if extension_of(dst) not in WRITABLE:
        raise MedViewerError(f"{dst}: unsupported output format; use one of {', '.join(WRITABLE)}")
    check_target(dst)
    found = discover(src)
    _report_problems(found)
    if four_d:
        from medviewer.io.volume_4d import group_for, load_4d, write_4d

        members, left_out = group_for(found, series)
        if left_out and series is None:
            warning(f"{len(left_out)} other series not written (name one with --series): "
                    + ", ".join(f"{s.id} ({s.description})" if s.description else s.id for s in left_out))
        sources = [scaling.apply(s, philips_scaling) for s in members]
        stack = load_4d(sources)
        for w in stack.warnings:
            warning(w)
        written = write_4d(stack, dst)
        print(f"wrote {written[0]} ({stack.describe()}, {len(sources)} volume{'s' if len(sources) > 1 else ''})"
              + "".join(f"\nwrote {p}" for p in written[1:]))
        return 0
    volume = scaling.apply(found.find(series), philips_scaling).load()
    for w in volume.warnings:
        warning(w)
    write_volume(volume, dst)
    print(f"wrote {dst} ({volume.describe()})")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
