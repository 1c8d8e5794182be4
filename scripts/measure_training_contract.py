#!/usr/bin/env python
"""Measure what the shipped models' training images were like and write it into their manifests.

    python scripts/measure_training_contract.py                 # print the figures
    python scripts/measure_training_contract.py --write         # update resources/models/*/manifest.json

The same figures the trainers now record (medviewer.ai.training.contract), computed on the same
images each shipped model was trained on (the split is rebuilt from the manifest's seed and
checked against what the manifest says it used), so the shipped models gain input.extent_mm /
input.intensity without retraining: weights files are not touched (only the weights are hashed).

    hippocampus-unet   input.extent_mm   the training-side cases (the manifest's val_cases and test_cases excluded)
    pneumonia-cnn      input.intensity   the patient-wise training side (metrics.n_train images)
    pneumonia-svm/-rf  input.intensity   the patient-wise training side (metrics.n_examples images, all of it)
    cxr-anomaly        input.intensity   the NORMAL images it was fitted on (metrics.n_fit_images)
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def _manifest(models: Path, name: str) -> tuple[Path, dict]:
    path = models / name / "manifest.json"
    return path, json.loads(path.read_text(encoding="utf-8"))


def hippocampus(models: Path, data: Path) -> dict:
    from medviewer.ai.inference import physical_extent
    from medviewer.ai.training.contract import extent_contract
    from medviewer.ai.training.segmentation import (
        EXTENT_ADVICE, EXTENT_DESCRIPTION, TRAINING_SIDE, case_split_three, discover_cases)
    from medviewer.io import open_volume

    path, manifest = _manifest(models, "hippocampus-unet")
    training = manifest["training"]
    cases = discover_cases(data)
    if len(cases) != training["n_cases"]:
        raise SystemExit(f"{data}: {len(cases)} cases, the manifest was trained on {training['n_cases']}")
    train_idx, val_idx, test_idx = case_split_three(len(cases), seed=int(training["seed"]))
    if ([cases[i][0] for i in val_idx] != training["val_cases"]
            or [cases[i][0] for i in test_idx] != training["test_cases"]):
        raise SystemExit("the rebuilt split differs from the manifest's val_cases / test_cases")
    direction = manifest["input"]["direction"]
    extents = [physical_extent(open_volume(cases[i][1]), direction, nonzero=True) for i in train_idx]
    ext = extent_contract(extents, description=EXTENT_DESCRIPTION, advice=EXTENT_ADVICE,
                          measured_on=TRAINING_SIDE)
    return {path: ("extent_mm", ext)}


def chest_xrays(models: Path, data: Path) -> dict:
    from medviewer.ai.inference import colour_fraction
    from medviewer.ai.training.anomaly import anomaly_split
    from medviewer.ai.training.classification import discover_classes, train_val_test_split
    from medviewer.ai.training.contract import XRAY_ADVICE, XRAY_DESCRIPTION, colour_contract
    from medviewer.ai.training.radiomics_models import image_split
    from medviewer.io import open_volume

    classes, items = discover_classes(data)
    cache: dict[int, float] = {}

    def fractions(indices) -> list[float]:
        for i in indices:
            if i not in cache:
                cache[i] = colour_fraction(open_volume(items[i][0]).data)
        return [cache[i] for i in indices]

    out = {}
    training_side = "training images (patient-wise training side, not the validation or test images)"
    path, m = _manifest(models, "pneumonia-cnn")
    train_idx, _, _ = train_val_test_split(items, seed=int(m["training"]["seed"]))
    if len(train_idx) != m["metrics"]["n_train"]:
        raise SystemExit(f"pneumonia-cnn: {len(train_idx)} training images, the manifest says {m['metrics']['n_train']}")
    out[path] = ("intensity", colour_contract(fractions(train_idx), description=XRAY_DESCRIPTION,
                                              advice=XRAY_ADVICE, measured_on=training_side))
    for name in ("pneumonia-svm", "pneumonia-rf"):
        path, m = _manifest(models, name)
        train_idx, _, _ = image_split(items, len(classes), limit_per_class=None, seed=0)  # the shipped run: all
        if len(train_idx) != m["metrics"]["n_examples"]:
            raise SystemExit(f"{name}: {len(train_idx)} training images, the manifest says {m['metrics']['n_examples']}")
        out[path] = ("intensity", colour_contract(fractions(train_idx), description=XRAY_DESCRIPTION,
                                                  advice=XRAY_ADVICE, measured_on=training_side))
    path, m = _manifest(models, "cxr-anomaly")
    fit_idx, _, _ = anomaly_split(items, classes.index("NORMAL"), limit=m["metrics"]["n_fit_images"],
                                  val_limit=m["metrics"]["n_val_other"], seed=int(m["training"]["seed"]))
    out[path] = ("intensity", colour_contract(fractions(fit_idx), description=XRAY_DESCRIPTION,
                                              advice=XRAY_ADVICE, measured_on="fitted NORMAL images"))
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", default=str(REPO / "resources" / "models"))
    p.add_argument("--hippocampus", default="/work/shared/data/hippocampus", help="MSD Task04 folder")
    p.add_argument("--chest-xray", default="/work/shared/data/chest_xray/train", help="NORMAL/ + PNEUMONIA/")
    p.add_argument("--write", action="store_true", help="update the manifests (default: print only)")
    args = p.parse_args(argv)
    models = Path(args.models)
    figures = {**hippocampus(models, Path(args.hippocampus)), **chest_xrays(models, Path(args.chest_xray))}
    for path, (key, value) in figures.items():
        print(f"{path.parent.name}: input.{key} = {json.dumps(value)}")
        if args.write:
            manifest = json.loads(path.read_text(encoding="utf-8"))
            manifest["input"][key] = value
            path.write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
