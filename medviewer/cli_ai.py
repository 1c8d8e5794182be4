"""The AI commands: `medviewer infer` and `medviewer train` (`evaluate` and `models` are in cli)."""
from __future__ import annotations

import json
import os
import sys

from medviewer.core.errors import MedViewerError

IMAGE_EXTENSIONS = (".nii.gz", ".nii", ".nrrd", ".mha", ".mhd", ".dcm", ".png", ".jpg", ".jpeg")


def add_parsers(sub) -> None:
    infer = sub.add_parser("infer", help="run a model on images: class probabilities, label maps, "
                                         "explanation or anomaly maps written to --out")
    infer.add_argument("inputs", nargs="+", metavar="INPUT", help="files or folders (every image in a folder)")
    infer.add_argument("--model", required=True, help="model name (see `medviewer models`)")
    infer.add_argument("--device", help="auto, cpu, cuda, cuda:N or mps (default auto)")
    infer.add_argument("--json", action="store_true", help="one JSON object per input and line")
    infer.add_argument("--out", help="output folder: label and uncertainty maps (segmentation), maps (--explain, "
                                     "anomaly models)")
    infer.add_argument("--explain", choices=["gradcam", "occlusion"],
                       help="also write where the model looked, as NIfTI and as a PNG overlay (needs --out)")
    infer.add_argument("--mask", help="ROI classifiers: the label map of the ROI (on the input's grid)")
    infer.add_argument("--label", type=int, help="with --mask: the ROI's label value (default: every nonzero voxel)")
    infer.add_argument("--models", action="append", default=[], metavar="DIR", help="extra model folder")

    train = sub.add_parser("train", help="train a model: classification (folder-per-class 2D images), "
                                         "segmentation (MSD dataset), anomaly (normal images)")
    train.add_argument("task", choices=["classification", "segmentation", "anomaly", "roi-classifier"],
                       help="what to train")
    train.add_argument("--data",
                       help="classification and anomaly: one subfolder of images per class; segmentation: "
                            "an MSD dataset (imagesTr/, labelsTr/, dataset.json)")
    train.add_argument("--out", required=True, help="model folder to write (manifest + weights)")
    train.add_argument("--image-size", type=int, default=224, help="classification: network input size")
    train.add_argument("--size", type=int, nargs=3, default=[48, 64, 48],
                       help="segmentation: network input z y x (multiples of 16)")
    train.add_argument("--epochs", type=int, help="default 40 (classification), 300 (segmentation)")
    train.add_argument("--minutes", type=float, help="hard time budget for the whole run (reading and the final "
                                                      "evaluation included); ends with the best model so far")
    train.add_argument("--resume", action="store_true", help="continue an interrupted run from OUT/checkpoints/last.pt")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--normal", default="NORMAL", help="anomaly: the class folder of normal images")
    train.add_argument("--method", default="one_class_svm", choices=["one_class_svm", "isolation_forest"],
                       help="anomaly: the detector")
    train.add_argument("--limit", type=int, help="use at most N images (anomaly) or cases (segmentation)")
    train.add_argument("--name", help="model name in the manifest (default: the output folder's name)")
    train.add_argument("--images", nargs="+", help="roi-classifier: the images, in the order of --labels")
    train.add_argument("--labels", nargs="+", help="roi-classifier: a label map per image; every connected region "
                                                   "of a label is one ROI, its class the label's name")
    train.add_argument("--model-types", help="roi-classifier: comma-separated among svm, random_forest, "
                                             "logistic_regression, naive_bayes, knn, decision_tree, adaboost, mlp "
                                             "(default all)")
    train.add_argument("--choose", help="roi-classifier: the model type to save (default: best CV ROC AUC)")
    train.add_argument("--folds", type=int, default=5, help="roi-classifier: cross-validation folds")


def _stem(path: str) -> str:
    stem = os.path.basename(os.path.normpath(path))
    for ext in IMAGE_EXTENSIONS:
        if stem.lower().endswith(ext):
            return stem[: -len(ext)]
    return stem


def _check_train_options(args) -> None:
    from medviewer.cli import check_input_folder, check_number

    check_number("--epochs", args.epochs, 1, inclusive=True)
    check_number("--minutes", args.minutes)
    check_number("--limit", args.limit, 1, inclusive=True)
    check_number("--image-size", args.image_size, 16, inclusive=True)
    check_number("--folds", args.folds, 2, inclusive=True)
    if args.size and any(v < 16 or v % 16 for v in args.size):
        raise MedViewerError(f"--size {' '.join(map(str, args.size))}: each of z y x must be a multiple of 16 "
                             "(16 or more)")
    if args.data is not None and args.task != "roi-classifier":
        check_input_folder("--data", args.data)
    if os.path.isfile(args.out):
        raise MedViewerError(f"--out {args.out}: is a file; give the model folder to write")
    parent = os.path.dirname(os.path.abspath(args.out))
    while parent and not os.path.exists(parent):
        parent = os.path.dirname(parent) if os.path.dirname(parent) != parent else ""
    if parent and not os.path.isdir(parent):
        raise MedViewerError(f"--out {args.out}: {parent} is a file, not a folder")
    for option, paths in (("--images", args.images), ("--labels", args.labels)):
        for p in paths or []:
            if not os.path.exists(p):
                raise MedViewerError(f"{option} {p}: no such file or folder")


def cmd_train(args, argv: list[str]) -> int:
    _check_train_options(args)
    name = args.name or os.path.basename(os.path.abspath(args.out))
    command = "medviewer " + " ".join(argv)

    def say(line: str) -> None:
        print(line, flush=True)

    if args.task == "roi-classifier":
        return _train_roi_classifier(args, name)
    if not args.data:
        raise MedViewerError(f"train {args.task} needs --data DIR")
    if args.task == "segmentation":
        from medviewer.ai.training.segmentation import train_segmentation

        metrics = train_segmentation(args.data, args.out, size=tuple(args.size), epochs=args.epochs or 300,
                                     minutes=args.minutes, seed=args.seed, limit=args.limit, name=name,
                                     command=command, resume=args.resume, progress=say)
        metrics = {**metrics, "validation_mean_dice": metrics["validation"]["mean_dice"],
                   "test_mean_dice": metrics["test"]["mean_dice"]}
        keys = ("validation_mean_dice", "test_mean_dice", "n_train", "n_val", "n_test", "epochs", "train_seconds")
    elif args.task == "anomaly":
        from medviewer.ai.training.anomaly import train_anomaly

        metrics = train_anomaly(args.data, args.out, normal=args.normal, method=args.method,
                                limit=args.limit or 400, seed=args.seed, name=name, command=command, progress=say)
        keys = ("image_roc_auc", "n_fit_images", "n_val_normal", "n_val_other", "train_seconds")
    else:
        from medviewer.ai.training import train_classification

        metrics = train_classification(args.data, args.out, image_size=args.image_size, epochs=args.epochs or 40,
                                       max_minutes=args.minutes, seed=args.seed, name=name, command=command,
                                       resume=args.resume, progress=say)
        keys = ("validation", "test", "n_train", "n_val", "n_test", "epochs_run", "stopped", "train_seconds")
    print(json.dumps({k: metrics.get(k) for k in keys}))
    return 0


def _train_roi_classifier(args, name: str) -> int:
    from medviewer.ai.training.radiomics_models import train_roi_classifier

    if not args.images or not args.labels or len(args.images) != len(args.labels):
        raise MedViewerError("train roi-classifier needs --images and --labels, one label map per image")
    types = [t.strip() for t in args.model_types.split(",")] if args.model_types else None

    def say(fraction: float, message: str) -> None:
        print(f"[{100 * fraction:3.0f}%] {message}", file=sys.stderr, flush=True)

    out = train_roi_classifier(list(zip(args.images, args.labels)), args.out, model_types=types, choose=args.choose,
                               name=name, folds=args.folds, seed=args.seed, progress=say)
    print(out["table"])
    print(json.dumps({"chosen": out["chosen"], "model": args.out, "classes": out["classes"], "rois": out["n"],
                      "cv_roc_auc": {k: r["cv_auc"] for k, r in out["results"].items()},
                      "roc_png": out["roc_png"]}))
    return 0


def cmd_infer(args) -> int:
    """Every input is tried; each one that cannot be read or that the model refuses is reported as
    `medviewer: error: ...` and makes the exit code 1 (the others still give their results)."""
    from medviewer.ai.registry import find_model
    from medviewer.cli import check_device, check_model_dirs, check_output_folder, error, warning
    from medviewer.cli_features import check_label
    from medviewer.io import discover

    check_model_dirs(args.models)
    check_device(args.device)
    check_label(args.label)
    if args.label is not None and not args.mask:
        raise MedViewerError("--label goes with --mask (the ROI's label value in the mask)")
    if args.mask and not os.path.isfile(args.mask):
        raise MedViewerError(f"--mask {args.mask}: " + ("is a folder, not a label file" if os.path.isdir(args.mask)
                                                         else "no such file"))
    spec = find_model(args.model, args.models).spec
    needs_out = spec.task in ("segmentation", "anomaly") or args.explain
    if needs_out and not args.out:
        what = f"--explain {args.explain}" if args.explain else f"{spec.name} ({spec.task})"
        raise MedViewerError(f"{what} writes maps: give --out DIR")
    if args.out:
        check_output_folder("--out", args.out)
    failures = 0
    used_stems: set[str] = set()
    for path in args.inputs:
        try:
            found = discover(path)
        except MedViewerError as exc:
            error(str(exc))
            failures += 1
            continue
        for problem in found.problems:
            error(str(problem))
            failures += 1
        if not found.sources and not found.problems:
            error(found.nothing_found())
            failures += 1
        for source in found.sources:
            where = source.files[0] if len(source.files) == 1 else path
            stem = _unique_stem(_stem(where), getattr(source, "timepoint", None), used_stems)
            try:
                volume = source.load()
                for w in volume.warnings:
                    warning(_about(where, w))
                record = _infer_one(spec, volume, where, args, stem)
                if getattr(source, "timepoint", None) is not None:
                    record["time_point"] = source.timepoint + 1
            except MedViewerError as exc:
                error(_about(where, exc))
                failures += 1
                continue
            print(json.dumps(record) if args.json else _line(record), flush=True)
    return 1 if failures else 0


def _unique_stem(stem: str, timepoint: int | None, used: set[str]) -> str:
    """Output names that do not overwrite each other: 4D time points get _t1, _t2 ...; inputs
    of the same name (from different folders) _2, _3 ..."""
    if timepoint is not None:
        stem = f"{stem}_t{timepoint + 1}"
    unique, n = stem, 1
    while unique in used:
        n += 1
        unique = f"{stem}_{n}"
    used.add(unique)
    return unique


def _about(where: str, message) -> str:
    """MESSAGE naming WHERE once (many messages name their file already)."""
    text = str(message)
    return text if text.startswith(where) or text.startswith(os.path.abspath(where)) else f"{where}: {text}"


def _line(record: dict) -> str:
    parts = [f"{record['input']}:"]
    if "prediction" in record:
        probs = "  ".join(f"{c} {p:.3f}" for c, p in record["probabilities"].items())
        parts.append(f"{record['prediction']}  ({probs})")
        if "threshold" in record:
            parts.append(f"threshold {record['threshold']:.3f}")
        if "interval" in record:
            iv = record["interval"]
            parts.append(f"{iv['class']} {iv['low']:.3f}-{iv['high']:.3f} under test-time augmentation")
        for flag in record.get("flags", []):
            parts.append(f"[{flag.split(':')[0]}]")
    if "score" in record:
        parts.append(f"anomaly score {record['score']:.3f}")
    for key in ("output", "uncertainty", "map", "png"):
        if key in record:
            parts.append(f"{key} -> {record[key]}")
    return " ".join(parts)


def _infer_one(spec, volume, where: str, args, stem: str | None = None) -> dict:
    from medviewer.ai.service import run_task
    from medviewer.io import write_volume
    from medviewer.io.overlay_png import write_overlay_png

    quiet = (lambda fraction, message: None)
    record: dict = {"input": where}
    stem = stem or _stem(where)
    if spec.task == "segmentation":
        result = run_task("segment", spec, volume, args.device, quiet, lambda: False)
        record["output"] = write_volume(result.labels, os.path.join(args.out, f"{stem}.nii.gz"))
        record["uncertainty"] = write_volume(result.uncertainty, os.path.join(args.out, f"{stem}_uncertainty.nii.gz"))
    elif spec.task == "anomaly":
        result = run_task("anomaly", spec, volume, args.device, quiet, lambda: False)
        record["score"] = round(float(result.score), 6)
        record["map"] = write_volume(result.map, os.path.join(args.out, f"{stem}_anomaly.nii.gz"))
        record["png"] = write_overlay_png(os.path.join(args.out, f"{stem}_anomaly.png"), volume,
                                          result.map.data, caption=f"{spec.name} anomaly map", threshold=0.9)
    else:
        mask = None
        if getattr(args, "mask", None):
            from medviewer.cli_features import load_roi_arrays

            _, mask = load_roi_arrays(where, args.mask, args.label)
        result = run_task("classify", spec, volume, args.device, quiet, lambda: False, mask=mask)
        record.update(result.record())
        if result.flags():
            record["flags"] = result.flags()
    if args.explain:
        explained = run_task(args.explain, spec, volume, args.device, quiet, lambda: False)
        name = f"{stem}_{args.explain}"
        record["map"] = write_volume(explained.map, os.path.join(args.out, f"{name}.nii.gz"))
        caption = f"{spec.name} {args.explain} ({explained.target})"
        record["png"] = write_overlay_png(os.path.join(args.out, f"{name}.png"), volume, explained.map.data,
                                          caption=caption)
        record["explained"] = explained.target
        if explained.note:
            record["note"] = explained.note
    return record
