"""`medviewer evaluate`: a registered model measured on a labelled dataset.

Classification: a folder with one subfolder per class -> accuracy, sensitivity, specificity
(the last class is the positive one, as in training) and ROC AUC, plus the ROC points.
Segmentation: an MSD-style folder (imagesTr/, labelsTr/) -> Dice and 95% Hausdorff per label,
each case on its own grid.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from medviewer.ai.registry import ModelSpec
from medviewer.core.errors import MedViewerError


def evaluate(spec: ModelSpec, data_dir: str, device: str | None = None, limit: int | None = None,
             progress: Callable[[str], None] = lambda _line: None) -> dict:
    if spec.task == "classification":
        return _classification(spec, data_dir, device, limit, progress)
    return _segmentation(spec, data_dir, device, limit, progress)


def _classification(spec, data_dir, device, limit, progress) -> dict:
    from medviewer.ai.inference import classify
    from medviewer.ai.training.classification import binary_metrics, discover_classes, roc_curve
    from medviewer.io import open_volume

    classes, items = discover_classes(data_dir)
    if classes != spec.class_names:
        raise MedViewerError(f"{data_dir}: class folders {classes} do not match the model's {spec.class_names}")
    if limit:
        items = [it for c in range(len(classes)) for it in [i for i in items if i[1] == c][:limit]]
    positive = spec.class_names[-1]
    labels, scores = [], []
    for n, (path, label) in enumerate(items, 1):
        scores.append(classify(spec, open_volume(path), device)["probabilities"][positive])
        labels.append(label == len(classes) - 1)
        if n % 200 == 0:
            progress(f"{n}/{len(items)} images")
    metrics = binary_metrics(np.array(labels), np.array(scores))
    fpr, tpr = roc_curve(np.array(labels), np.array(scores))
    return {"model": spec.name, "task": "classification", "n": len(items), "positive_class": positive,
            **metrics, "roc": {"fpr": [float(v) for v in fpr], "tpr": [float(v) for v in tpr]}}


def _segmentation(spec, data_dir, device, limit, progress) -> dict:
    from medviewer.ai.segmentation_inference import segment
    from medviewer.ai.training.segmentation import dice, discover_cases, hausdorff95
    from medviewer.io import open_volume

    cases = discover_cases(data_dir)[:limit] if limit else discover_cases(data_dir)
    values = sorted(int(v) for v in spec.outputs["labels"])
    per_label = {v: {"dice": [], "hd95_mm": []} for v in values}
    for n, (_name, image_path, label_path) in enumerate(cases, 1):
        volume = open_volume(image_path)
        truth = open_volume(label_path).data
        pred = segment(spec, volume, device)["labels"].data
        spacing_zyx = tuple(reversed(volume.spacing))
        for v in values:
            per_label[v]["dice"].append(dice(pred == v, truth == v))
            per_label[v]["hd95_mm"].append(hausdorff95(pred == v, truth == v, spacing_zyx))
        if n % 20 == 0:
            progress(f"{n}/{len(cases)} cases")
    names = {int(k): d.get("name", str(k)) for k, d in spec.outputs["labels"].items()}
    out = {"model": spec.name, "task": "segmentation", "n": len(cases), "labels": {}}
    for v, m in per_label.items():
        out["labels"][names[v]] = {"dice": round(float(np.mean(m["dice"])), 4),
                                   "hd95_mm": round(float(np.nanmean(m["hd95_mm"])), 3)}
    out["mean_dice"] = round(float(np.mean([m["dice"] for m in out["labels"].values()])), 4)
    return out
