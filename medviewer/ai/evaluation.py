"""`medviewer evaluate`: a registered model measured on a labelled dataset, every figure with a
bootstrap 95% confidence interval (ai.metrics: percentile bootstrap over the images or cases,
stratified by class for classifiers).

Classification: a folder with one subfolder per class. The prediction is what inference gives
(ai.tasks): calibrated probabilities (the manifest's temperature) and the manifest's decision
threshold (positive class when its probability >= threshold; 0.5 without one); accuracy,
sensitivity, specificity, balanced accuracy and ROC AUC, the ROC points, and calibration: the
expected calibration error (10 equal-width bins) and the reliability-diagram bins of the calibrated
probability, and of the uncalibrated one where the model has a temperature.
Anomaly (cxr-anomaly): the same folder layout; ROC AUC of the image-level anomaly score, the
normal class (NORMAL) against all the others.
Segmentation: an MSD-style folder (imagesTr/, labelsTr/); per label, the mean over cases of Dice,
95% Hausdorff distance and voxel-wise precision / recall / F1, and per connected component
(lesion-wise: a true component is found when predictions cover >= 10% of it) precision / recall /
F1 over the components of all cases; each case on its own grid.

split: "all" (the whole folder), or "validation" / "test": the model's own split of that folder as
its manifest records it (the case names of a segmentation model; the seed of the patient-wise split
of a classifier), so the test figures are on images the model never chose anything on.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from medviewer.ai.registry import ModelSpec
from medviewer.core.errors import MedViewerError

SPLITS = ("all", "validation", "test")
N_BOOT = 2000
NORMAL = "NORMAL"


def evaluate(spec: ModelSpec, data_dir: str, device: str | None = None, limit: int | None = None,
             progress: Callable[[str], None] = lambda _line: None, split: str = "all",
             n_boot: int = N_BOOT) -> dict:
    if split not in SPLITS:
        raise MedViewerError(f"unknown split {split!r}; use {', '.join(SPLITS)}")
    if spec.task == "classification":
        return _classification(spec, data_dir, device, limit, progress, split, n_boot)
    if spec.task == "anomaly":
        return _anomaly(spec, data_dir, limit, progress, split, n_boot)
    if spec.task == "segmentation":
        from medviewer.ai.evaluation_segmentation import evaluate_segmentation

        return evaluate_segmentation(spec, data_dir, device, limit, progress, split, n_boot)
    raise MedViewerError(f"{spec.name}: no evaluation for {spec.task} models")


def ci(statistic, *arrays, n_boot: int = N_BOOT, stratify=None, digits: int = 4) -> dict:
    """{"value": statistic(*arrays), "ci95": [lo, hi]} (ai.metrics bootstrap)."""
    from medviewer.ai.metrics import bootstrap_ci, with_ci

    return with_ci(statistic(*arrays), bootstrap_ci(statistic, *arrays, n_boot=n_boot, stratify=stratify),
                   digits)


def no_split(spec: ModelSpec) -> MedViewerError:
    return MedViewerError(f"{spec.name}: its manifest records no validation/test split; "
                          "evaluate it with --split all (on data it was not trained on)")


def _class_items(spec: ModelSpec, data_dir: str, split: str, limit: int | None):
    """(classes, [(path, class index)]) of a folder per class, the model's split of it, limit per class."""
    from medviewer.ai.training.classification import discover_classes, train_val_test_split

    classes, items = discover_classes(data_dir)
    if split != "all":
        training = spec.manifest.get("training") or {}
        if "test" not in str(training.get("split", "")):
            raise no_split(spec)
        _train, val, test = train_val_test_split(items, seed=int(training.get("seed", 0)))
        items = [items[i] for i in (val if split == "validation" else test)]
    if limit:
        items = [it for c in range(len(classes)) for it in [i for i in items if i[1] == c][:limit]]
    if not items:
        raise MedViewerError(f"{data_dir}: no images to evaluate")
    return classes, items


def _classification(spec, data_dir, device, limit, progress, split, n_boot) -> dict:
    from medviewer.ai.metrics import binary_metrics_ci, expected_calibration_error, reliability, roc_curve
    from medviewer.ai.tasks import make_task
    from medviewer.io import open_volume

    classes, items = _class_items(spec, data_dir, split, limit)
    if classes != spec.class_names:
        raise MedViewerError(f"{data_dir}: class folders {classes} do not match the model's {spec.class_names}")
    task = make_task("classify", spec, tta=0)
    calibrated, uncalibrated, first = [], [], None
    for n, (path, _label) in enumerate(items, 1):
        result = task(open_volume(path), device)
        first = first or result
        positive = result.positive_class or classes[-1]
        calibrated.append(result.probabilities[positive])
        uncalibrated.append((result.uncalibrated or result.probabilities)[positive])
        if n % 200 == 0:
            progress(f"{n}/{len(items)} images")
    positive = first.positive_class or classes[-1]
    labels = np.array([label == classes.index(positive) for _path, label in items])
    p, raw = np.array(calibrated), np.array(uncalibrated)
    threshold = first.threshold if first.threshold is not None else 0.5
    rule = first.rule if first.threshold is not None else "0.5 (the manifest has no decision threshold)"
    out = {"model": spec.name, "task": "classification", "split": split, "n": len(items),
           "positive_class": positive, "threshold_rule": rule, "temperature": first.temperature,
           **binary_metrics_ci(labels, p, threshold, n_boot=n_boot)}
    out["ece"] = ci(expected_calibration_error, labels, p, n_boot=n_boot, stratify=labels)
    out["reliability"] = reliability(labels, p)
    if first.temperature != 1.0:
        out["ece_uncalibrated"] = ci(expected_calibration_error, labels, raw, n_boot=n_boot, stratify=labels)
        out["reliability_uncalibrated"] = reliability(labels, raw)
    fpr, tpr = roc_curve(labels, p)
    out["roc"] = {"fpr": [float(v) for v in fpr], "tpr": [float(v) for v in tpr]}
    return out


def _anomaly(spec, data_dir, limit, progress, split, n_boot) -> dict:
    from medviewer.ai.metrics import roc_auc, roc_curve
    from medviewer.ai.tasks import make_task
    from medviewer.io import open_volume

    if split != "all":
        raise no_split(spec)
    classes, items = _class_items(spec, data_dir, split, limit)
    if NORMAL not in classes or len(classes) < 2:
        raise MedViewerError(f"{data_dir}: an anomaly model is evaluated on a {NORMAL} folder and at least "
                             f"one other (found {', '.join(classes)})")
    task = make_task("anomaly", spec)
    scores = []
    for n, (path, _label) in enumerate(items, 1):
        scores.append(task(open_volume(path)).score)
        if n % 100 == 0:
            progress(f"{n}/{len(items)} images")
    normal = classes.index(NORMAL)
    labels = np.array([label != normal for _path, label in items])
    s = np.array(scores, np.float64)
    fpr, tpr = roc_curve(labels, s)
    return {"model": spec.name, "task": "anomaly", "split": split, "n": len(items),
            "n_normal": int((~labels).sum()), "n_other": int(labels.sum()),
            "positive_class": f"not {NORMAL} ({', '.join(c for c in classes if c != NORMAL)})",
            "score": "image anomaly score (mean of the top 5% of the map)",
            "roc_auc": ci(roc_auc, labels, s, n_boot=n_boot, stratify=labels),
            "median_score": {"normal": round(float(np.median(s[~labels])), 4),
                             "other": round(float(np.median(s[labels])), 4)},
            "roc": {"fpr": [float(v) for v in fpr], "tpr": [float(v) for v in tpr]}}
