"""Training classical models on radiomics features.

    roi_examples(pairs, ...) -> (x, y, classes, names, rois)   ROIs drawn by annotators: every
        connected region of a label in a label map is one example, whose class is the label's name
        (e.g. labels named "benign" and "malignant", over many images);
    train_roi_classifier(pairs, out_dir, ...)                 features -> grid search with stratified
        cross-validation for each model type -> comparison table, ROC PNG -> the chosen model saved
        as a registry model folder (manifest + skops), usable by `medviewer infer` and the AI panel;
    train_image_classifiers(data_dir, out_root, ...)          the same on whole images of a
        folder-per-class dataset (the shipped pneumonia-svm and pneumonia-rf), with a patient-wise
        held-out validation split on top of the cross-validation; their manifests record the
        coloured-pixel fraction of the training images (input.intensity, ai.training.contract).
        ROI classifiers record no such figures (their check is skipped).
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Callable

import numpy as np

from medviewer.core.errors import Cancelled, MedViewerError

AGG_2D = ["2D, averaged", "2D, slice-merged", "2D"]
AGG_3D = ["3D, averaged", "3D, merged", "3D"]
IMAGE_FAMILIES = ["intensity_statistics", "intensity_histogram", "glcm", "glrlm", "glszm", "gldzm", "ngtdm",
                  "ngldm"]


def _say(progress, fraction: float, message: str) -> None:
    if progress is not None:
        progress(fraction, message)


def roi_examples(pairs: list[tuple[str, str]], *, min_voxels: int = 5, bin_number: int = 32,
                 families=None, progress=None, cancel=None):
    """Features of every labelled region. pairs: (image path, label map path)."""
    from scipy import ndimage

    from medviewer.ai.classical import feature_key
    from medviewer.io import open_volume
    from medviewer.io.label_io import load_labels
    from medviewer.processing.radiomics import compute_features

    rows, names, labels, rois = [], None, [], []
    for i, (image_path, label_path) in enumerate(pairs):
        if cancel is not None and cancel():
            raise Cancelled("feature extraction cancelled")
        _say(progress, 0.3 * i / max(len(pairs), 1), f"features of the ROIs in {os.path.basename(label_path)}")
        image = open_volume(image_path)
        if image.is_rgb:
            raise MedViewerError(f"{image_path}: ROI features need a grey image")
        labelmap = load_labels(label_path, image)
        aggregations = AGG_2D if image.is_2d else AGG_3D
        for label in labelmap.table:
            regions, n = ndimage.label(labelmap.data == label.value, structure=np.ones((3, 3, 3), bool))
            for k in range(1, n + 1):
                mask = regions == k
                if mask.sum() < min_voxels:
                    continue
                feats = compute_features(image.data, mask, image.spacing, families=families,
                                         aggregations=aggregations, bin_number=bin_number)
                keys = [feature_key(f) for f in feats]
                if names is None:
                    names = keys
                elif keys != names:
                    raise MedViewerError(f"{image_path}: 2D and 3D images cannot be mixed in one training set")
                rows.append([f.value for f in feats])
                labels.append(label.name)
                rois.append({"image": image_path, "labels": label_path, "label": label.value, "region": k,
                             "voxels": int(mask.sum())})
    if not rows:
        raise MedViewerError("no labelled ROI found (each region needs at least "
                             f"{min_voxels} voxels)")
    classes = sorted(set(labels))
    if len(classes) < 2:
        raise MedViewerError(f"all ROIs have the same class ({classes[0]}): label ROIs of at least two classes")
    return np.array(rows, np.float64), np.array([classes.index(c) for c in labels]), classes, names, rois


def _drop_undefined(x: np.ndarray, names: list[str]):
    keep = np.isfinite(x).all(0) & (np.nanstd(x, 0) > 0)
    return x[:, keep], [n for n, k in zip(names, keep) if k]


def train_roi_classifier(pairs: list[tuple[str, str]], out_dir: str | os.PathLike, *, model_types=None,
                         choose: str | None = None, name: str | None = None, folds: int = 5, seed: int = 0,
                         bin_number: int = 32, progress: Callable[[float, str], None] | None = None,
                         cancel: Callable[[], bool] | None = None) -> dict:
    """Train every model type on the ROIs, save the chosen one (default: best CV AUC) to out_dir.
    Returns {"results": ..., "chosen": type, "manifest": ..., "table": str, "roc_png": path}."""
    from medviewer.ai.classical import MODEL_TYPES, comparison_table, fit_models, save_model
    from medviewer.io.roc_png import write_roc_png

    started = time.monotonic()
    x, y, classes, names, rois = roi_examples(pairs, bin_number=bin_number, progress=progress, cancel=cancel)
    x, names = _drop_undefined(x, names)
    _say(progress, 0.3, f"{len(y)} ROIs ({', '.join(f'{c} {int((y == i).sum())}' for i, c in enumerate(classes))}), "
                        f"{len(names)} features")
    results = fit_models(x, y, classes, model_types or MODEL_TYPES, folds=folds, seed=seed,
                         progress=lambda f, m: _say(progress, 0.3 + 0.65 * f, m), cancel=cancel)
    chosen = choose or max(results, key=lambda k: results[k]["cv_auc"])
    if chosen not in results:
        raise MedViewerError(f"{chosen} was not trained (trained: {', '.join(results)})")
    out = Path(out_dir)
    dims = 2 if all(r["image"] and _is_2d(r["image"]) for r in rois[:1]) else 3
    extraction = {"region": "roi", "families": None, "bin_number": bin_number,
                  "aggregations": AGG_2D if dims == 2 else AGG_3D}
    manifest = save_model(results[chosen], out, name=name or out.name, kind=chosen, classes=classes,
                          feature_names=names, extraction=extraction, modality="", dims=dims,
                          training={"data": [{"image": a, "labels": b} for a, b in pairs], "rois": len(y),
                                    "seed": seed, "seconds": round(time.monotonic() - started, 1)},
                          description=f"{results[chosen]['title']} on IBSI radiomics features of annotated ROIs "
                                      f"({' / '.join(classes)})", n_examples=len(y))
    table = comparison_table(results)
    (out / "comparison.txt").write_text(table + "\n", encoding="utf-8")
    (out / "comparison.json").write_text(json.dumps({k: {kk: vv for kk, vv in v.items() if kk != "estimator"}
                                                     for k, v in results.items()}, indent=1, default=str))
    roc = None
    if len(classes) == 2:
        roc = write_roc_png(out / "roc.png", [{"label": r["title"], "fpr": r["roc"]["fpr"], "tpr": r["roc"]["tpr"],
                                               "auc": r["cv_auc"]} for r in results.values()],
                            title=f"ROC, {results[chosen]['folds']}-fold cross-validation ({len(y)} ROIs)")
    _say(progress, 1.0, f"saved {chosen} to {out}")
    return {"results": results, "chosen": chosen, "manifest": manifest, "table": table, "roc_png": roc,
            "classes": classes, "n": len(y)}


def _is_2d(path: str) -> bool:
    from medviewer.io import open_volume

    return open_volume(path).is_2d


def image_features(paths: list[str], extraction: dict, progress=None,
                   colour: list | None = None) -> tuple[np.ndarray, list[str]]:
    """(features per image, names); with `colour` (a list), each image's coloured-pixel fraction
    (ai.inference.colour_fraction) is appended to it."""
    from medviewer.ai.classical import extract
    from medviewer.ai.inference import colour_fraction
    from medviewer.io import open_volume

    rows, names = [], None
    start = time.monotonic()
    for i, path in enumerate(paths):
        v = open_volume(path)
        if colour is not None:
            colour.append(colour_fraction(v.data))
        n, values = extract(v.data, v.spacing, extraction)
        names = names or n
        rows.append(values)
        if progress and (i + 1) % 200 == 0:
            progress(f"features of {i + 1}/{len(paths)} images ({time.monotonic() - start:.0f} s)")
    return np.array(rows), names


def image_split(items: list[tuple[str, int]], n_classes: int, *, limit_per_class: int | None,
                seed: int) -> tuple[list[int], list[int], list[int]]:
    """(training, validation, test) indices: the patient-wise three-way split of the CNN
    (training.classification.train_val_test_split), then up to limit_per_class images of each
    class drawn from the training side with the seed (validation and test are kept whole)."""
    from medviewer.ai.training.classification import train_val_test_split

    train_idx, val_idx, test_idx = train_val_test_split(items, seed=seed)
    if not limit_per_class:
        return sorted(train_idx), sorted(val_idx), sorted(test_idx)
    rng = np.random.default_rng(seed)
    out = []
    for k in range(n_classes):
        members = [i for i in train_idx if items[i][1] == k]
        out += rng.choice(members, size=min(limit_per_class, len(members)), replace=False).tolist()
    return sorted(out), sorted(val_idx), sorted(test_idx)


def train_image_classifiers(data_dir: str | os.PathLike, out_root: str | os.PathLike, *,
                            model_types=("svm", "random_forest"), limit_per_class: int | None = None,
                            image_size: int = 224, bin_number: int = 32, folds: int = 5, seed: int = 0,
                            prefix: str = "pneumonia", progress: Callable[[str], None] = print) -> dict:
    """Whole-image radiomics classifiers for a folder-per-class dataset; one model folder per type
    (out_root/{prefix}-svm, ...). The grid search uses cross-validation on the training side; the
    decision threshold is chosen on the patient-wise validation split (Youden's J); the test
    split is measured once at the end. Every figure carries a bootstrap 95% interval."""
    from medviewer.ai.classical import comparison_table, fit_models, save_model
    from medviewer.ai.metrics import binary_metrics_ci, reliability, roc_curve, youden_threshold
    from medviewer.ai.training.classification import DATA_LICENCE, DATA_SOURCE, discover_classes
    from medviewer.ai.training.contract import XRAY_ADVICE, XRAY_DESCRIPTION, colour_contract
    from medviewer.ai.training.model_card import write_model_card
    from medviewer.io.roc_png import write_reliability_png, write_roc_png

    started = time.monotonic()
    classes, items = discover_classes(data_dir)
    train_idx, val_idx, test_idx = image_split(items, len(classes), limit_per_class=limit_per_class, seed=seed)
    extraction = {"region": "whole image", "image_size": image_size, "families": IMAGE_FAMILIES,
                  "aggregations": AGG_2D, "bin_number": bin_number,
                  "grey": "ITU-R 601 luma; bilinear resize; uint8/255 (others min-max) then x255; fixed bin number"}
    progress(f"{len(train_idx)} training, {len(val_idx)} validation and {len(test_idx)} test images "
             f"(patient-wise split, seed {seed})")
    colour: list[float] = []
    x_train, names = image_features([items[i][0] for i in train_idx], extraction, progress, colour=colour)
    x_val, _ = image_features([items[i][0] for i in val_idx], extraction, progress)
    x_test, _ = image_features([items[i][0] for i in test_idx], extraction, progress)
    keep = np.isfinite(x_train).all(0) & np.isfinite(x_val).all(0) & (x_train.std(0) > 0)
    x_train, x_val, x_test = x_train[:, keep], x_val[:, keep], x_test[:, keep]
    names = [n for n, k in zip(names, keep) if k]
    y_train = np.array([items[i][1] for i in train_idx])
    y_val = np.array([items[i][1] for i in val_idx])
    y_test = np.array([items[i][1] for i in test_idx])
    feature_seconds = time.monotonic() - started
    progress(f"{len(names)} features per image in {feature_seconds:.0f} s; grid search with {folds}-fold CV")
    results = fit_models(x_train, y_train, classes, model_types, folds=folds, seed=seed,
                         progress=lambda f, m: progress(m))
    progress(comparison_table(results))
    positive = len(classes) - 1
    curves, saved, rel_curves = [], {}, {}
    for kind, r in results.items():
        val_p = r["estimator"].predict_proba(x_val)[:, positive]
        test_p = r["estimator"].predict_proba(x_test)[:, positive]
        threshold = youden_threshold(y_val == positive, val_p)
        val_rel, test_rel = reliability(y_val == positive, val_p), reliability(y_test == positive, test_p)
        suffix = {"svm": "svm", "random_forest": "rf"}.get(kind, kind.replace("_", "-"))
        name = f"{prefix}-{suffix}"
        manifest = save_model(
            r, Path(out_root) / name, name=name, kind=kind, classes=classes, feature_names=names,
            extraction=extraction, modality="XR", dims=2,
            training={"data": f"{DATA_SOURCE}; patient-wise {len(train_idx)} training / {len(val_idx)} "
                              f"validation / {len(test_idx)} test images (seed {seed})",
                      "data_licence": DATA_LICENCE,
                      "split": "patient-wise, stratified by class: 15% test (seed), then 15% validation "
                               "(seed + 1), as the CNN's (training.classification.train_val_test_split)",
                      "hardware": "CPU", "seconds": round(time.monotonic() - started, 1),
                      "command": f"python scripts/train_shipped_models.py --task radiomics --data {data_dir}"},
            description=f"{r['title']} on IBSI radiomics features of the whole chest X-ray "
                        f"({len(names)} features, 2D aggregations): NORMAL vs PNEUMONIA.",
            n_examples=len(y_train), version="2.0")
        manifest["metrics"].update(n_train=len(train_idx), n_val=len(val_idx), n_test=len(test_idx))
        manifest["input"]["intensity"] = colour_contract(
            colour, description=XRAY_DESCRIPTION, advice=XRAY_ADVICE,
            measured_on="training images (patient-wise training side, not the validation or test images)")
        manifest["decision"] = {"threshold": round(threshold, 4), "positive_class": classes[positive],
                                "rule": "Youden's J (sensitivity + specificity - 1) maximal on the validation "
                                        "split, probability of the positive class >= threshold"}
        manifest["calibration"] = {"method": "the estimator's own probabilities (SVM: Platt scaling fitted by "
                                             "scikit-learn's internal cross-validation; random forest: vote "
                                             "fractions); ECE measured, no further scaling",
                                   "fitted_on": "training side"}
        manifest["metrics"]["validation"] = {
            **binary_metrics_ci(y_val == positive, val_p, threshold, seed=seed), "ece": val_rel["ece"],
            "measured_on": "patient-wise validation split: it chose the threshold (the grid search used "
                           "cross-validation on the training side)"}
        manifest["metrics"]["test"] = {
            **binary_metrics_ci(y_test == positive, test_p, threshold, seed=seed), "ece": test_rel["ece"],
            "measured_on": "patient-wise test split of the training data, touched once after training; "
                           "the official Kermany test split is not in this repository"}
        manifest["metrics"]["confidence_intervals"] = "95%, stratified bootstrap over images (2000 resamples)"
        manifest["reliability"] = {"validation": val_rel, "test": test_rel}
        (Path(out_root) / name / "manifest.json").write_text(json.dumps(manifest, indent=2, default=str) + "\n")
        saved[name] = manifest["metrics"]
        for split, y, prob in (("validation", y_val, val_p), ("test", y_test, test_p)):
            fpr, tpr = roc_curve(y == positive, prob)
            curves.append({"label": f"{name} ({split})", "fpr": fpr.tolist(), "tpr": tpr.tolist(),
                           "auc": manifest["metrics"][split]["roc_auc"]["value"]})
        rel_curves[name] = [{"label": f"{split} (ECE {rel['ece']:.3f})",
                             "predicted": [b["mean_predicted"] for b in rel["bins"]],
                             "observed": [b["observed"] for b in rel["bins"]]}
                            for split, rel in (("validation", val_rel), ("test", test_rel))]
        v, s = manifest["metrics"]["validation"], manifest["metrics"]["test"]
        progress(f"{name}: CV AUC {r['cv_auc']:.4f}; threshold {threshold:.3f}; validation AUC {v['roc_auc']['value']}, "
                 f"test AUC {s['roc_auc']['value']} {s['roc_auc']['ci95']}, accuracy {s['accuracy']['value']}")
    for name in saved:
        write_reliability_png(Path(out_root) / name / "reliability.png", rel_curves[name],
                              title=f"Reliability: {name}")
        write_roc_png(Path(out_root) / name / "roc.png", curves, title="ROC, patient-wise validation and test splits")
        write_model_card(Path(out_root) / name)
    return saved
