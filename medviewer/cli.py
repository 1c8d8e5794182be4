"""The command line: `medviewer [PATH...]`, `medviewer info`, `medviewer convert`, `medviewer stats`."""
from __future__ import annotations

import argparse
import json
import os
import sys

from medviewer import __version__
from medviewer.core.errors import MedViewerError

COMMANDS = ("info", "convert", "view", "screenshot", "stats", "models", "infer", "train", "evaluate", "features")


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

    ev = sub.add_parser("evaluate", help="measure a model on a labelled dataset")
    ev.add_argument("--model", required=True, help="model name (see `medviewer models`)")
    ev.add_argument("--data", required=True, help="classification: a folder per class; segmentation: MSD folder")
    ev.add_argument("--device", help="auto, cpu, cuda, cuda:N or mps")
    ev.add_argument("--limit", type=int, help="at most N images per class (classification) or N cases")
    ev.add_argument("--json", action="store_true", help="print the metrics as JSON")
    ev.add_argument("--roc-png", metavar="FILE",
                    help="write the ROC curve as a PNG (classification models only)")
    ev.add_argument("--out", metavar="DIR",
                    help="write DIR/evaluation.json (the full result, ROC points included) and, for "
                         "classification, DIR/roc_<model>.png (unless --roc-png names another file)")
    ev.add_argument("--models", action="append", default=[], metavar="DIR", help="extra model folder")

    shot = sub.add_parser("screenshot", help="render the viewer offscreen to a PNG")
    shot.add_argument("input", help="file, folder or DICOMDIR")
    shot.add_argument("--out", required=True, help="PNG file to write")
    shot.add_argument("--layout", choices=["single", "mpr", "2x2"], default="mpr")
    group = shot.add_mutually_exclusive_group()
    group.add_argument("--preset", help="window preset: brain, lung, bone, abdomen, mediastinum, auto ...")
    group.add_argument("--window", type=float, help="window width (use with --level)")
    shot.add_argument("--level", type=float, help="window level (centre)")
    shot.add_argument("--slice", type=int, help="slice number in the (first) view, 1-based as shown")
    shot.add_argument("--size", help="window size WIDTHxHEIGHT (default 1400x850)")
    shot.add_argument("--series", help="series id or 1-based number when INPUT holds several")
    shot.add_argument("--model", help="run this model from the AI panel first and show its result")
    shot.add_argument("--explain", choices=["gradcam", "occlusion"], help="also show the model's explanation map")
    shot.add_argument("--device", help="auto, cpu, cuda, cuda:N or mps (default auto)")
    shot.add_argument("--models", action="append", default=[], metavar="DIR", help="extra model folder")
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or (argv[0] not in COMMANDS and not argv[0].startswith("-")):
        argv = ["view"] + argv
    args = _parser().parse_args(argv)
    try:
        if args.command == "info":
            return cmd_info(args.path, args.json)
        if args.command == "convert":
            if args.seg or args.reference:
                from medviewer.cli_labels import cmd_convert_labels

                return cmd_convert_labels(args)
            return cmd_convert(args.input, args.output, args.series)
        if args.command == "stats":
            from medviewer.cli_labels import cmd_stats

            return cmd_stats(args)
        if args.command == "train":
            from medviewer.cli_ai import cmd_train

            return cmd_train(args, argv)
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

            return run_screenshot(args)
        if args.command == "view":
            from medviewer.app import run_viewer

            return run_viewer(args.paths)
        _parser().print_help()
        return 2
    except MedViewerError as exc:
        print(f"medviewer: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def _report_problems(found) -> None:
    for problem in found.problems:
        print(f"medviewer: warning: {problem}", file=sys.stderr)


def cmd_info(path: str, as_json: bool) -> int:
    from medviewer.io import discover

    found = discover(path)
    _report_problems(found)
    infos = [s.info() for s in found.sources]
    if as_json:
        print(json.dumps(infos, indent=1))
    else:
        for n, i in enumerate(infos, 1):
            print(f"[{n}] {i['id']}")
            print(f"    modality {i['modality'] or '-'}  description {i['description'] or '-'}")
            print("    size {} x {} x {}  spacing {} mm".format(*i["size"], " x ".join(f"{s:.4g}" for s in i["spacing"])))
            print("    origin ({}) mm".format(", ".join(f"{v:.4g}" for v in i["origin"])))
            print("    direction [{}]".format(" ".join(f"{v:.4g}" for v in i["direction"])))
            print(f"    files {i['files']}" + (f"  transfer syntax {', '.join(i['transfer_syntaxes'])}"
                                                 if i["transfer_syntaxes"] else ""))
            for w in i["warnings"]:
                print(f"    warning: {w}")
    if not infos:
        reason = f" ({found.problems[0]})" if found.problems else ""
        print(f"medviewer: error: no images found under {path}{reason}", file=sys.stderr)
        return 1
    return 0


def cmd_evaluate(args) -> int:
    from medviewer.ai.evaluation import evaluate
    from medviewer.ai.registry import find_model

    spec = find_model(args.model, args.models).spec
    if args.roc_png and spec.task != "classification":
        raise MedViewerError(f"--roc-png: {spec.name} is a {spec.task} model; "
                             "ROC curves are for classification models")
    if args.roc_png and not os.path.isdir(os.path.dirname(os.path.abspath(args.roc_png))):
        raise MedViewerError(f"--roc-png {args.roc_png}: no such folder")
    if args.out:
        try:
            os.makedirs(args.out, exist_ok=True)
        except OSError as exc:
            raise MedViewerError(f"{args.out}: cannot create the output folder ({exc.strerror or exc})") from exc
    result = evaluate(spec, args.data, args.device, args.limit,
                      progress=lambda line: print(line, file=sys.stderr, flush=True))
    written = []
    png = args.roc_png or (os.path.join(args.out, f"roc_{_file_stem(spec.name)}.png")
                           if args.out and result.get("task") == "classification" else None)
    if png:
        from medviewer.io.roc_png import write_roc_png

        title = f"ROC curve: {spec.name} ({result['n']} images, {result['positive_class']} positive)"
        write_roc_png(png, [{"label": spec.name, "fpr": result["roc"]["fpr"], "tpr": result["roc"]["tpr"],
                             "auc": result.get("roc_auc")}], title=title)
        result["roc_png"] = png
        written.append(png)
    if args.out:
        written.append(_write_json(os.path.join(args.out, "evaluation.json"), result))
    if args.json:
        print(json.dumps(result))
    else:
        shown = {k: v for k, v in result.items() if k not in ("roc", "roc_png")}
        print("\n".join(f"{k}: {v}" for k, v in shown.items()))
        for path in written:
            print(f"wrote {path}", file=sys.stderr)
    return 0


def _write_json(path: str, data: dict) -> str:
    """Write data as indented JSON, atomically (temporary file, then rename)."""
    from medviewer.io.writer import write_atomically

    def dump(fh) -> None:
        json.dump(data, fh, indent=1)
        fh.write("\n")

    try:
        return write_atomically(path, dump, text=True)
    except OSError as exc:
        raise MedViewerError(f"{path}: cannot write ({exc.strerror or exc})") from exc


def _file_stem(name: str) -> str:
    """A model name made safe as part of a file name."""
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name).strip(".") or "model"


def cmd_models(extra: list[str], as_json: bool) -> int:
    from medviewer.ai.registry import discover_models, model_dirs

    entries = discover_models(extra)
    if as_json:
        print(json.dumps([e.info() for e in entries], indent=1))
        return 0
    if not entries:
        print("no models found in " + ", ".join(str(d) for d, _ in model_dirs(extra)))
    for e in entries:
        state = "available" if e.available else f"unavailable: {e.reason}"
        task = e.spec.task if e.spec is not None else "?"
        print(f"{e.name}  [{task}, {e.source}]  {state}")
    return 0


def cmd_convert(src: str, dst: str, series: str | None) -> int:
    from medviewer.io import discover, write_volume
    from medviewer.io.writer import WRITABLE
    from medviewer.io.sitk_image import extension_of

    if extension_of(dst) not in WRITABLE:
        raise MedViewerError(f"{dst}: unsupported output format; use one of {', '.join(WRITABLE)}")
    found = discover(src)
    _report_problems(found)
    volume = found.find(series).load()
    for w in volume.warnings:
        print(f"medviewer: warning: {w}", file=sys.stderr)
    write_volume(volume, dst)
    print(f"wrote {dst} ({volume.describe()})")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
