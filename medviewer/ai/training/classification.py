"""Train a 2D image classifier (folder-per-class data) into a model folder the registry accepts.

    train_classification(data_dir, out_dir, image_size=128, epochs=30, ...) -> metrics dict

data_dir holds one subfolder per class (sorted names give the class order, e.g. NORMAL, PNEUMONIA;
the last class is the "positive" one for sensitivity/specificity). Images are read with
medviewer.io.discover.open_volume, made grey, resized to image_size x image_size, scaled to [0, 1]
and z-scored per image (preprocess_image, also what inference must do). The split into training
and validation is patient-wise (patient_id), stratified by class, with a fixed seed.
The manifest's input.intensity records how many coloured pixels the training images have (none in
the Kermany X-rays: grey stored as RGB), so that the model refuses a colour picture
(ai.training.contract, checked by ai.inference.check_input).
No torch here: the training loop is medviewer.ai.backends.classification_train, imported lazily.
"""
from __future__ import annotations

import json
import os
import re
import shlex
import time
from pathlib import Path
from typing import Callable

import numpy as np

from medviewer.ai.metrics import (binary_metrics_ci, fit_temperature, reliability, roc_curve, softmax,
                                  youden_threshold)
from medviewer.ai.preprocess import TEXT_MASK, mask_burned_in_text, to_unit_grey
from medviewer.ai.registry import sha256_of
from medviewer.ai.training.checkpoints import CHECKPOINT, discard_checkpoints
from medviewer.ai.training.contract import XRAY_ADVICE, XRAY_DESCRIPTION, colour_contract
from medviewer.ai.training.model_card import write_model_card
from medviewer.core.errors import MedViewerError

IMAGE_EXTENSIONS = {".jpeg", ".jpg", ".png", ".bmp", ".tif", ".tiff", ".dcm", ".nii", ".gz", ".mha", ".nrrd"}
DATA_SOURCE = ("Kermany D, Zhang K, Goldbaum M (2018). Labeled Optical Coherence Tomography (OCT) and "
               "Chest X-Ray Images for Classification. Mendeley Data, v2. doi:10.17632/rscbjbr9sj.2 "
               "(official training split, paediatric chest X-rays, resized to 224x224)")
DATA_LICENCE = "CC BY 4.0 (attribution required)"

_PERSON = re.compile(r"^(person\d+)_", re.IGNORECASE)
_IM = re.compile(r"^((?:[A-Za-z0-9]+-)?IM-\d+)", re.IGNORECASE)
_TRAILING = re.compile(r"^(.*)-\d+$")


def patient_id(path: str | os.PathLike) -> str:
    """The patient a file name belongs to in the Kermany chest X-ray naming.

    person1000_bacteria_2931.jpeg -> person1000; IM-0115-0001.jpeg -> IM-0115;
    IM-0553-0001-0002.jpeg -> IM-0553 (further images of the same patient);
    NORMAL2-IM-1427-0001.jpeg -> NORMAL2-IM-1427. Other names: the stem without a trailing -NNNN."""
    name = Path(path).name
    stem = name.split(".")[0]
    m = _PERSON.match(stem)
    if m:
        return m.group(1).lower()
    m = _IM.match(stem)
    if m:
        return m.group(1).upper()
    m = _TRAILING.match(stem)
    return m.group(1) if m else stem


def discover_classes(data_dir: str | os.PathLike) -> tuple[list[str], list[tuple[str, int]]]:
    """(class names, [(file, class index)]) from a folder with one subfolder per class."""
    root = Path(data_dir)
    if not root.is_dir():
        raise MedViewerError(f"{root}: no such folder")
    classes = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if len(classes) < 2:
        raise MedViewerError(f"{root}: needs one subfolder per class (at least two)")
    items = []
    for index, cls in enumerate(classes):
        files = sorted(p for p in (root / cls).rglob("*") if p.is_file() and not p.name.startswith(".")
                       and p.suffix.lower() in IMAGE_EXTENSIONS)
        if not files:
            raise MedViewerError(f"{root / cls}: no images")
        items.extend((str(f), index) for f in files)
    return classes, items


def patient_split(items: list[tuple[str, int]], val_fraction: float = 0.18, seed: int = 0,
                  ) -> tuple[list[int], list[int]]:
    """Indices (train, validation) of items: patient-wise (a patient's images all go to one side),
    stratified by class (patients are grouped per class, by the class of their first image)."""
    rng = np.random.default_rng(seed)
    by_patient: dict[tuple[int, str], list[int]] = {}
    for i, (path, label) in enumerate(items):
        by_patient.setdefault((label, patient_id(path)), []).append(i)
    # a patient id seen under two classes is one person: keep all its images together
    owner: dict[str, tuple[int, str]] = {}
    groups: dict[tuple[int, str], list[int]] = {}
    for key in sorted(by_patient):
        pid = key[1]
        target = owner.setdefault(pid, key)
        groups.setdefault(target, []).extend(by_patient[key])
    train, val = [], []
    for label in sorted({k[0] for k in groups}):
        keys = sorted(k for k in groups if k[0] == label)
        order = rng.permutation(len(keys))
        n_images = sum(len(groups[k]) for k in keys)
        taken = 0
        for j in order:
            members = groups[keys[j]]
            if taken < val_fraction * n_images:
                val.extend(members)
                taken += len(members)
            else:
                train.extend(members)
    return sorted(train), sorted(val)


def train_val_test_split(items: list[tuple[str, int]], val_fraction: float = 0.15, test_fraction: float = 0.15,
                         seed: int = 0) -> tuple[list[int], list[int], list[int]]:
    """Indices (train, validation, test), patient-wise and stratified by class: the test patients
    are drawn first (seed), then validation patients from the rest (seed + 1)."""
    rest, test = patient_split(items, val_fraction=test_fraction, seed=seed)
    sub_train, sub_val = patient_split([items[i] for i in rest], val_fraction=val_fraction / (1 - test_fraction),
                                       seed=seed + 1)
    return sorted(rest[i] for i in sub_train), sorted(rest[i] for i in sub_val), test



def load_images(paths: list[str], image_size: int, progress: Callable[[str], None] = print,
                colour: list | None = None, mask_text: bool = False, deadline: float | None = None) -> np.ndarray:
    """(N, image_size, image_size) float32 in [0, 1], read with open_volume (burned-in text masked
    with mask_text, as ai.preprocess.preprocess_xray does). With `colour` (a list), each image's
    coloured-pixel fraction (ai.inference.colour_fraction) is appended to it. With `deadline`
    (time.monotonic()), reading stops there and the images read so far are returned."""
    from medviewer.ai.inference import colour_fraction
    from medviewer.io.discover import open_volume

    out = np.empty((len(paths), image_size, image_size), np.float32)
    start = time.monotonic()
    for i, path in enumerate(paths):
        if deadline is not None and time.monotonic() > deadline:
            progress(f"time budget: read {i} of {len(paths)} images")
            return out[:i]
        data = open_volume(path).data
        if colour is not None:
            colour.append(colour_fraction(data))
        out[i] = to_unit_grey(data, image_size)
        if mask_text:
            out[i] = mask_burned_in_text(out[i])
        if (i + 1) % 1000 == 0:
            progress(f"read {i + 1}/{len(paths)} images ({time.monotonic() - start:.0f} s)")
    return out


def default_network(image_size: int, n_classes: int) -> dict:
    """A ResNet-18 layout (two basic blocks per stage), narrow (16-128 channels), stride-2 stem."""
    return {"class": "monai.networks.nets.ResNet",
            "args": {"block": "basic", "layers": [2, 2, 2, 2], "block_inplanes": [16, 32, 64, 128],
                     "spatial_dims": 2, "n_input_channels": 1, "num_classes": n_classes, "conv1_t_stride": 2}}


OOD_FILE = "ood.npz"
OOD_PERCENTILE = 99.0


def ood_reference(train_features: np.ndarray, val_features: np.ndarray, out: Path) -> dict:
    """Mahalanobis distance of the network's pooled features to the training distribution
    (mean, shrunk covariance), with the flag threshold at the validation 99th percentile."""
    mean = train_features.mean(0)
    cov = np.cov(train_features - mean, rowvar=False)
    d = cov.shape[0]
    cov = 0.9 * cov + 0.1 * np.trace(cov) / d * np.eye(d)  # shrinkage towards a scaled identity
    precision = np.linalg.inv(cov)
    dist = np.sqrt(np.einsum("ij,jk,ik->i", val_features - mean, precision, val_features - mean))
    np.savez(out / OOD_FILE, mean=mean.astype(np.float32), precision=precision.astype(np.float32))
    return {"method": "Mahalanobis distance of the pooled network features (the last layer's input) to the "
                      "training images' mean, covariance shrunk 10% towards a scaled identity",
            "file": OOD_FILE, "threshold": round(float(np.percentile(dist, OOD_PERCENTILE)), 4),
            "rule": f"flagged out of distribution above the {OOD_PERCENTILE:g}th percentile of the validation images' distances",
            "validation_median": round(float(np.median(dist)), 4)}


def train_classification(data_dir: str | os.PathLike, out_dir: str | os.PathLike, *, image_size: int = 224,
                         epochs: int = 30, batch_size: int = 32, lr: float = 1e-3, seed: int = 0,
                         max_minutes: float | None = None, patience: int = 8, val_fraction: float = 0.15,
                         test_fraction: float = 0.15, name: str = "pneumonia-cnn", version: str = "2.0",
                         modality: str = "XR", limit_per_class: int | None = None, command: str | None = None,
                         resume: bool = False, mask_text: bool = True,
                         progress: Callable[[str], None] = print) -> dict:
    """Train, keep the best epoch by validation ROC AUC, fit the temperature and choose the
    threshold on validation, then measure the test split once; write out_dir/model.pt, ood.npz,
    manifest.json and the ROC / reliability PNGs. Returns the manifest's metrics.

    max_minutes is a hard budget for the whole run (reading and final evaluation included);
    resume continues from out_dir/checkpoints/last.pt; limit_per_class (tests) takes the first
    N files of each class."""
    from medviewer.ai.backends.train_schedule import LAST, Budget

    started = time.monotonic()
    classes, items = discover_classes(data_dir)
    if limit_per_class:
        items = [it for c in range(len(classes)) for it in [x for x in items if x[1] == c][:limit_per_class]]
    colour: list[float] = []
    n_found = len(items)
    if max_minutes is not None:  # read in a seeded random order: what a short budget reads is a fair sample
        items = [items[i] for i in np.random.default_rng(seed).permutation(len(items))]
    images = load_images([p for p, _ in items], image_size, progress, colour=colour, mask_text=mask_text,
                         deadline=None if max_minutes is None else started + 30.0 * max_minutes)
    items = items[:len(images)]  # a budget spent half on reading keeps what was read
    train_idx, val_idx, test_idx = train_val_test_split(items, val_fraction, test_fraction, seed)
    if not train_idx or not val_idx or not test_idx:
        raise MedViewerError(f"{data_dir}: too few patients (or too little time to read them) to split into "
                             "training, validation and test")
    labels = np.array([label for _, label in items], dtype=np.int64)
    progress(f"{len(items)} images in {len(classes)} classes ({', '.join(classes)}); {len(train_idx)} training, "
             f"{len(val_idx)} validation, {len(test_idx)} test (patient-wise, seed {seed})")
    network = default_network(image_size, len(classes))
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)

    from medviewer.ai.backends.classification_train import penultimate_features, predict_logits, train_network

    # what follows the loop: logits of validation + test + training features, about 3 validation passes
    reserve = 3.0 * len(val_idx) / 150.0 + 5.0
    budget = Budget(started, max_minutes, reserve_s=reserve)
    result = train_network(
        network, images[train_idx], labels[train_idx], images[val_idx], labels[val_idx],
        n_classes=len(classes), epochs=epochs, batch_size=batch_size, lr=lr, seed=seed, patience=patience,
        budget=budget, checkpoint_path=str(out / CHECKPOINT), last_path=str(out / LAST), resume=resume,
        progress=progress)
    net = result["net"]
    weights = out / "model.pt"
    result["save"](weights)
    positive = len(classes) - 1
    val_logits = predict_logits(net, images[val_idx])
    val_labels, test_labels = labels[val_idx], labels[test_idx]
    temperature = fit_temperature(val_logits, val_labels)
    val_raw = softmax(val_logits)[:, positive]
    val_cal = softmax(val_logits, temperature)[:, positive]
    threshold = youden_threshold(val_labels == positive, val_cal)
    # the test split, once, with everything chosen on validation
    test_logits = predict_logits(net, images[test_idx])
    test_cal = softmax(test_logits, temperature)[:, positive]
    fit_sample = np.asarray(train_idx)[np.random.default_rng(seed).permutation(len(train_idx))[:1500]]
    ood = ood_reference(penultimate_features(net, images[np.sort(fit_sample)]),
                        penultimate_features(net, images[val_idx]), out)
    val_rel, test_rel = reliability(val_labels == positive, val_cal), reliability(test_labels == positive, test_cal)
    metrics = {
        "validation": {**binary_metrics_ci(val_labels == positive, val_cal, threshold, seed=seed),
                       "ece": val_rel["ece"], "ece_before_calibration": reliability(val_labels == positive, val_raw)["ece"],
                       "measured_on": "patient-wise validation split: it chose the epoch, the temperature "
                                      "and the threshold, so these figures are optimistic"},
        "test": {**binary_metrics_ci(test_labels == positive, test_cal, threshold, seed=seed),
                 "ece": test_rel["ece"],
                 "ece_before_calibration": reliability(test_labels == positive, softmax(test_logits)[:, positive])["ece"],
                 "accuracy_at_0.5": binary_metrics_ci(test_labels == positive, test_cal, 0.5, n_boot=1, seed=seed)["accuracy"]["value"],
                 "measured_on": "patient-wise test split of the training data, touched once after training; "
                                "the official Kermany test split is not in this repository"},
        "positive_class": classes[positive], "n_train": len(train_idx), "n_val": len(val_idx),
        "n_test": len(test_idx),
        "n_per_class": {s: {c: int((labels[idx] == i).sum()) for i, c in enumerate(classes)}
                        for s, idx in (("train", train_idx), ("val", val_idx), ("test", test_idx))},
        "epochs_run": result["epochs_run"], "best_epoch": result["best_epoch"], "stopped": result["stopped"],
        "planned_epochs": result["planned_epochs"], "train_seconds": round(time.monotonic() - started, 1),
        "images_per_second": result["images_per_second"], "confidence_intervals": "95%, stratified bootstrap "
        "over images (2000 resamples, percentile)"}
    if len(items) < n_found:
        metrics["images_read"] = f"{len(items)} of {n_found} (half the time budget spent reading)"
    if result["resumed_after_epoch"] is not None:  # the seconds of the interrupted run(s) count too
        metrics["resumed_after_epoch"] = result["resumed_after_epoch"]
        metrics["train_seconds"] = round(metrics["train_seconds"] + result["seconds_before_resume"], 1)
    discard_checkpoints(out)
    if command is None:
        command = (f"python scripts/train_shipped_models.py --data {shlex.quote(str(data_dir))} --out "
                   f"{shlex.quote(str(out_dir))} --image-size {image_size} --epochs {epochs} --batch-size "
                   f"{batch_size} --lr {lr} --seed {seed}" + (f" --minutes {max_minutes:g}" if max_minutes else ""))
    manifest = {
        "name": name, "version": version, "task": "classification",
        "description": "Paediatric chest X-ray: normal vs pneumonia (2D ResNet-18 layout, 16-128 channels).",
        "input": {"modality": modality, "dims": 2, "channels": 1, "size": [image_size, image_size],
                  "normalisation": "zscore",
                  "preprocessing": "grey (ITU-R 601 luma), bilinear resize, uint8/255 to [0, 1] "
                                   "(other types min-max), " + ("burned-in text masked, " if mask_text else "")
                                   + "then z-score per image",
                  **({"text_mask": TEXT_MASK} if mask_text else {}),
                  "intensity": colour_contract([colour[i] for i in train_idx], description=XRAY_DESCRIPTION,
                                               advice=XRAY_ADVICE, measured_on="training images (patient-wise "
                                               "training side, not the validation or test images)")},
        "outputs": {"classes": classes, "activation": "softmax"},
        "calibration": {"method": "temperature scaling (softmax(logits / T))", "temperature": round(temperature, 4),
                        "fitted_on": "validation split (negative log-likelihood)"},
        "decision": {"threshold": round(threshold, 4), "positive_class": classes[positive],
                     "rule": "Youden's J (sensitivity + specificity - 1) maximal on the validation split, "
                             "calibrated probability of the positive class >= threshold"},
        "ood": ood,
        "network": network, "weights": weights.name, "sha256": sha256_of(weights),
        "metrics": metrics,
        "reliability": {"validation": val_rel, "test": test_rel},
        "training": {"data": DATA_SOURCE, "data_licence": DATA_LICENCE,
                     "data_classes": {c: int((labels == i).sum()) for i, c in enumerate(classes)},
                     "split": f"patient-wise, stratified by class: {test_fraction:.0%} of each class's images to "
                              f"test (numpy default_rng seed {seed}), then {val_fraction:.0%} to validation "
                              f"(seed {seed + 1})",
                     "seed": seed, "image_size": image_size, "epochs_max": epochs, "batch_size": batch_size,
                     "lr": lr, "optimiser": "AdamW (weight decay 1e-4), half-epoch warm-up then cosine decay "
                                            "over the epochs the time budget allows",
                     "loss": "class-weighted cross-entropy",
                     "class_weights": result["class_weights"], "patience": patience,
                     "augmentation": result["augmentation"],
                     "early_stopping": f"best validation ROC AUC, patience {patience} epochs",
                     "time_budget_minutes": max_minutes,
                     "software": result["software"], "command": command},
        "licence": "weights: CC BY 4.0 (trained on CC BY 4.0 data)",
        "intended_use": "research and demonstration, not for clinical use",
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    _plots(out, name, val_labels == positive, val_cal, test_labels == positive, test_cal, metrics, val_rel, test_rel)
    write_model_card(out)
    v, s = metrics["validation"], metrics["test"]
    progress(f"wrote {weights} ({weights.stat().st_size / 1e6:.2f} MB): threshold {threshold:.3f}, T {temperature:.3f}; "
             f"validation AUC {v['roc_auc']['value']} acc {v['accuracy']['value']}; test AUC {s['roc_auc']['value']} "
             f"{s['roc_auc']['ci95']} acc {s['accuracy']['value']} {s['accuracy']['ci95']}, ECE {s['ece']}")
    return metrics


def _plots(out: Path, name: str, val_y, val_p, test_y, test_p, metrics, val_rel, test_rel) -> None:
    from medviewer.io.roc_png import write_reliability_png, write_roc_png

    curves = []
    for split, y, p in (("validation", val_y, val_p), ("test", test_y, test_p)):
        fpr, tpr = roc_curve(y, p)
        curves.append({"label": f"{name} ({split})", "fpr": fpr.tolist(), "tpr": tpr.tolist(),
                       "auc": metrics[split]["roc_auc"]["value"]})
    write_roc_png(out / "roc.png", curves, title=f"ROC curve: {name}, validation and test splits")
    write_reliability_png(out / "reliability.png",
                          [{"label": f"{split} (ECE {rel['ece']:.3f})",
                            "predicted": [b["mean_predicted"] for b in rel["bins"]],
                            "observed": [b["observed"] for b in rel["bins"]]}
                           for split, rel in (("validation", val_rel), ("test", test_rel))],
                          title=f"Reliability: {name}, calibrated probabilities")
