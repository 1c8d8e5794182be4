"""Fitting an anomaly detector on normal images (folder-per-class data, e.g. chest_xray/train).

    train_anomaly(data_dir, out_dir, normal="NORMAL", method="isolation_forest", limit=400) -> metrics

The detector sees only the NORMAL images of the training side of a patient-wise split. It is then
checked on the validation side: image-level ROC AUC of the anomaly score (mean of the top 5% of
the map) for NORMAL against every other class. Written as a registry model folder (manifest.json +
model.skops with its SHA-256), run by the AI panel and `medviewer infer` like any other model.
The manifest's input.intensity records the coloured-pixel fraction of the fitted images (none in
grey X-rays), so that the detector refuses a colour picture (ai.training.contract).
"""
from __future__ import annotations

import json
import os
import shlex
import time
from pathlib import Path
from typing import Callable

import numpy as np

from medviewer.ai.registry import sha256_of
from medviewer.ai.training.contract import XRAY_ADVICE, XRAY_DESCRIPTION, colour_contract
from medviewer.core.errors import MedViewerError


def anomaly_split(items: list[tuple[str, int]], k_normal: int, *, limit: int | None, val_limit: int,
                  seed: int) -> tuple[list[int], list[int], list[int]]:
    """(images fitted on, normal validation images, other validation images): NORMAL images of
    the patient-wise training side (at most `limit`, drawn with the seed), and up to val_limit of
    each kind from the validation side."""
    from medviewer.ai.training.classification import patient_split

    train_idx, val_idx = patient_split(items, seed=seed)
    rng = np.random.default_rng(seed)
    fit_idx = [i for i in train_idx if items[i][1] == k_normal]
    if limit:
        fit_idx = sorted(rng.choice(fit_idx, size=min(limit, len(fit_idx)), replace=False).tolist())
    val_normal = [i for i in val_idx if items[i][1] == k_normal]
    val_other = [i for i in val_idx if items[i][1] != k_normal]
    val_normal = sorted(rng.choice(val_normal, size=min(val_limit, len(val_normal)), replace=False).tolist())
    val_other = sorted(rng.choice(val_other, size=min(val_limit, len(val_other)), replace=False).tolist())
    return fit_idx, val_normal, val_other


def train_anomaly(data_dir: str | os.PathLike, out_dir: str | os.PathLike, *, normal: str = "NORMAL",
                  method: str = "isolation_forest", limit: int | None = 400, val_limit: int = 200, seed: int = 0,
                  name: str = "cxr-anomaly", version: str = "1.0", modality: str = "XR",
                  command: str | None = None, progress: Callable[[str], None] = print) -> dict:
    from medviewer.ai.anomaly import (
        FEATURES, PATCH, SIZE, STRIDE, fit_anomaly_detector, grid_shape, image_score, patch_map)
    from medviewer.ai.backends.sklearn_io import save
    from medviewer.ai.metrics import roc_auc
    from medviewer.ai.preprocess import zscore
    from medviewer.ai.training.classification import discover_classes, load_images

    started = time.monotonic()
    classes, items = discover_classes(data_dir)
    if normal not in classes:
        raise MedViewerError(f"{data_dir}: no {normal!r} subfolder (found {', '.join(classes)})")
    k_normal = classes.index(normal)
    fit_idx, val_normal, val_other = anomaly_split(items, k_normal, limit=limit,
                                                   val_limit=val_limit, seed=seed)
    if len(fit_idx) < 2 or not val_normal or not val_other:
        raise MedViewerError(f"{data_dir}: too few images to fit and check an anomaly detector")
    progress(f"fitting {method} on the patches of {len(fit_idx)} {normal} images "
             f"(validation: {len(val_normal)} {normal}, {len(val_other)} other, split by patient)")
    colour: list[float] = []
    pictures = [zscore(p) for p in load_images([items[i][0] for i in fit_idx], SIZE, progress, colour=colour)]
    t = time.monotonic()
    model, scores = fit_anomaly_detector(pictures, method, seed)
    fit_seconds = time.monotonic() - t
    val = val_normal + val_other
    val_pictures = [zscore(p) for p in load_images([items[i][0] for i in val], SIZE, progress)]
    val_scores = np.array([image_score(patch_map(model, scores, p)) for p in val_pictures])
    truth = np.array([items[i][1] != k_normal for i in val])
    auc = roc_auc(truth, val_scores)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    weights = out / "model.skops"
    save({"model": model, "training_scores": scores}, weights)
    metrics = {"image_roc_auc": round(float(auc), 4), "n_fit_images": len(fit_idx),
               "n_fit_patches": len(fit_idx) * int(np.prod(grid_shape())), "n_val_normal": len(val_normal), "n_val_other": len(val_other),
               "fit_seconds": round(fit_seconds, 1), "train_seconds": round(time.monotonic() - started, 1),
               "measured_on": f"validation images (patient-wise split): {normal} vs the other classes, "
                              "image score = mean of the top 5% of the map"}
    if command is None:
        command = (f"medviewer train anomaly --data {shlex.quote(str(data_dir))} --out {shlex.quote(str(out_dir))} "
                   f"--method {method} --limit {limit} --seed {seed}")
    manifest = {
        "name": name, "version": version, "task": "anomaly", "framework": "scikit-learn",
        "description": f"Unusual regions in chest X-rays: {method.replace('_', ' ')} over patch features, "
                       f"fitted on {normal} images only.",
        "input": {"modality": modality, "dims": 2, "channels": 1, "size": [SIZE, SIZE],
                  "normalisation": "zscore",
                  "preprocessing": f"grey, resize to {SIZE}x{SIZE}, z-score; {PATCH}x{PATCH} patches every "
                                   f"{STRIDE} px; features {', '.join(FEATURES)}",
                  "intensity": colour_contract(colour, description=XRAY_DESCRIPTION, advice=XRAY_ADVICE,
                                               measured_on=f"fitted {normal} images")},
        "outputs": {"map": "percentile of the patch anomaly score among the normal training patches (0..1)",
                    "score": "mean of the top 5% of the map"},
        "estimator": method, "weights": weights.name, "sha256": sha256_of(weights), "metrics": metrics,
        "training": {"data": f"{data_dir} ({normal} only, patient-wise training side)", "seed": seed,
                     "hardware": "CPU", "command": command},
        "licence": "model: CC BY 4.0 (fitted on CC BY 4.0 data)",
        "intended_use": "research and demonstration, not for clinical use",
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    progress(f"wrote {weights} ({weights.stat().st_size / 1e6:.2f} MB): validation image AUC {auc:.3f}")
    return metrics
