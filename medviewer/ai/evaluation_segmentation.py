"""`medviewer evaluate` for segmentation models (see ai.evaluation): per label, Dice, 95% Hausdorff
distance and voxel-wise precision / recall / F1 (mean over cases), per-component (lesion-wise)
precision / recall / F1 (over all the cases' components), each with a bootstrap 95% interval
over cases; and the mean Dice over labels.
"""
from __future__ import annotations

import numpy as np

from medviewer.core.errors import MedViewerError


def _cases(spec, data_dir: str, split: str, limit: int | None):
    from medviewer.ai.evaluation import no_split
    from medviewer.ai.training.segmentation import discover_cases

    cases = discover_cases(data_dir)
    if split != "all":
        training = spec.manifest.get("training") or {}
        names = training.get("val_cases" if split == "validation" else "test_cases")
        if not names:
            raise no_split(spec)
        wanted = set(names)
        cases = [c for c in cases if c[0] in wanted]
        if len(cases) < len(wanted):
            raise MedViewerError(f"{data_dir}: {len(wanted) - len(cases)} of the model's {split} cases "
                                 f"are not in this folder")
    cases = cases[:limit] if limit else cases
    if not cases:
        raise MedViewerError(f"{data_dir}: no cases to evaluate")
    return cases


def _mean(values) -> float:
    v = np.asarray(values, np.float64)
    v = v[np.isfinite(v)]
    return float(v.mean()) if len(v) else float("nan")


def _pooled(key: str):
    """Component precision / recall / F1 over all the cases' components, from per-case counts
    (columns tp_pred, n_pred, found, n_true)."""
    def stat(counts):
        tp_pred, n_pred, found, n_true = np.asarray(counts, np.float64).sum(0)
        precision = tp_pred / n_pred if n_pred else float("nan")
        recall = found / n_true if n_true else float("nan")
        if key == "precision":
            return precision
        if key == "recall":
            return recall
        return 2 * precision * recall / (precision + recall) if precision + recall > 0 else float("nan")
    return stat


def evaluate_segmentation(spec, data_dir, device, limit, progress, split, n_boot) -> dict:
    from medviewer.ai.evaluation import ci
    from medviewer.ai.metrics import component_prf, dice, hausdorff95, voxel_prf
    from medviewer.ai.tasks import make_task
    from medviewer.io import open_volume

    cases = _cases(spec, data_dir, split, limit)
    values = sorted(int(v) for v in spec.outputs["labels"])
    names = {int(k): d.get("name", str(k)) for k, d in spec.outputs["labels"].items()}
    keys = ("dice", "hd95_mm", "precision", "recall", "f1")
    per = {v: {k: [] for k in keys + ("components",)} for v in values}
    task = make_task("segment", spec)
    for n, (_name, image_path, label_path) in enumerate(cases, 1):
        volume = open_volume(image_path)
        truth = open_volume(label_path).data
        pred = task(volume, device).labels.data
        if pred.shape != truth.shape:
            raise MedViewerError(f"{label_path}: label grid {truth.shape} is not the image's {pred.shape}")
        spacing_zyx = tuple(reversed(volume.spacing))
        for v in values:
            p, t = pred == v, truth == v
            m = per[v]
            m["dice"].append(dice(p, t))
            m["hd95_mm"].append(hausdorff95(p, t, spacing_zyx))
            vox = voxel_prf(p, t)
            for k in ("precision", "recall", "f1"):
                m[k].append(vox[k])
            comp = component_prf(p, t)
            m["components"].append((comp["tp"], comp["n_pred"], comp["n_true"] - comp["fn"], comp["n_true"]))
        if n % 20 == 0:
            progress(f"{n}/{len(cases)} cases")
    out = {"model": spec.name, "task": "segmentation", "split": split, "n": len(cases), "labels": {}}
    for v, m in per.items():
        entry = {k: ci(_mean, np.array(m[k], np.float64), n_boot=n_boot, digits=3 if k == "hd95_mm" else 4)
                 for k in keys}
        counts = np.array(m["components"], np.float64)
        entry["components"] = {k: ci(_pooled(k), counts, n_boot=n_boot) for k in ("precision", "recall", "f1")}
        entry["components"]["n_true"] = int(counts[:, 3].sum())
        entry["components"]["n_pred"] = int(counts[:, 1].sum())
        out["labels"][names[v]] = entry
    case_mean = np.mean([per[v]["dice"] for v in values], axis=0)
    out["mean_dice"] = ci(_mean, case_mean, n_boot=n_boot)
    return out
