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

import functools
import json
import os
import re
import shlex
import time
from pathlib import Path
from typing import Callable

import numpy as np

from medviewer.ai.registry import sha256_of
from medviewer.ai.training.checkpoints import CHECKPOINT, discard_checkpoints
from medviewer.ai.training.contract import XRAY_ADVICE, XRAY_DESCRIPTION, colour_contract
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


@functools.lru_cache(maxsize=32)
def _resize_plan(h: int, w: int, size: int):
    """Index and weight arrays of a bilinear resize (h, w) -> (size, size), half-pixel centres."""
    ys = np.clip((np.arange(size) + 0.5) * h / size - 0.5, 0, h - 1)
    xs = np.clip((np.arange(size) + 0.5) * w / size - 0.5, 0, w - 1)
    y0 = np.floor(ys).astype(np.intp)
    x0 = np.floor(xs).astype(np.intp)
    y1 = np.minimum(y0 + 1, h - 1)
    x1 = np.minimum(x0 + 1, w - 1)
    wy = (ys - y0).astype(np.float32)[:, None]
    wx = (xs - x0).astype(np.float32)[None, :]
    return y0, y1, x0, x1, wy, wx


def _box_factor(h: int, w: int, size: int) -> int:
    """The power of two the image is box-filtered by before the bilinear step (halving while both
    sides stay at least twice the target), so that detail does not alias."""
    k = 1
    while h // k >= 2 * size and w // k >= 2 * size:
        k *= 2
    return k


def _resize_bilinear(image: np.ndarray, size: int) -> np.ndarray:
    """Bilinear resize of a 2D array to size x size (float32; half-pixel centres); box-filters
    first (2x2 means while both sides stay at least twice the target) so detail does not alias."""
    h, w = image.shape
    k = _box_factor(h, w, size)
    while k > 1:  # 2x2 means (strided sums are ~10x faster than a reshaped mean); to float on the way
        image = image[: h // 2 * 2, : w // 2 * 2]
        quarters = [image[i::2, j::2].astype(np.float32, copy=False) for i in (0, 1) for j in (0, 1)]
        image = quarters[0] + quarters[1]
        image += quarters[2]
        image += quarters[3]
        image *= np.float32(0.25)
        h, w = image.shape
        k //= 2
    image = np.asarray(image, np.float32)
    y0, y1, x0, x1, wy, wx = _resize_plan(h, w, size)
    rows0, rows1 = image[y0], image[y1]
    top = rows0[:, x0] + (rows0[:, x1] - rows0[:, x0]) * wx
    bottom = rows1[:, x0] + (rows1[:, x1] - rows1[:, x0]) * wx
    return top + (bottom - top) * wy


def to_unit_grey(data: np.ndarray, image_size: int) -> np.ndarray:
    """A volume's data ((1, H, W), (1, H, W, 3|4), (H, W) or (H, W, 3|4)) as a grey float32
    (image_size, image_size) image in [0, 1] (uint8 divided by 255, others min-max scaled over
    the full image). Resizing is linear, so the scaling is applied after it (same result, and a
    full-size radiograph is never copied as floats)."""
    a = np.asarray(data)
    if a.ndim == 4 and a.shape[0] == 1 and a.shape[-1] in (3, 4):
        a = a[0]
    elif a.ndim == 3 and a.shape[0] == 1:
        a = a[0]
    if a.ndim == 3 and a.shape[-1] in (3, 4):
        grey = a[..., :3].astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
        lo, hi = (0.0, 255.0) if a.dtype == np.uint8 else (float(grey.min()), float(grey.max()))
        a = grey
    elif a.ndim == 2:
        lo, hi = (0.0, 255.0) if a.dtype == np.uint8 else (float(a.min()), float(a.max()))
    else:
        raise MedViewerError(f"expected a 2D image, got shape {np.asarray(data).shape}")
    if hi <= lo:
        return np.zeros((image_size, image_size), np.float32)
    small = _resize_bilinear(a, image_size)
    small -= np.float32(lo)
    small *= np.float32(1.0 / (hi - lo))
    return np.clip(small, 0.0, 1.0, out=small)


def zscore(image: np.ndarray) -> np.ndarray:
    image = np.array(image, np.float32)  # a copy, normalised in place
    mean, std = float(image.mean()), float(image.std())
    image -= np.float32(mean)
    image *= np.float32(1.0 / (std if std > 1e-6 else 1.0))
    return image


def preprocess_image(data: np.ndarray, image_size: int) -> np.ndarray:
    """What the shipped classifier expects: a (1, image_size, image_size) float32 array,
    grey, resized, scaled to [0, 1] and z-scored per image."""
    return zscore(to_unit_grey(data, image_size))[np.newaxis]


def roc_auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve (Mann-Whitney, ties counted half); nan with one class only."""
    labels = np.asarray(labels).astype(bool)
    scores = np.asarray(scores, dtype=np.float64)
    n_pos, n_neg = int(labels.sum()), int((~labels).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(len(scores), dtype=np.float64)
    sorted_scores = scores[order]
    i = 0
    while i < len(scores):  # average ranks over ties
        j = i
        while j + 1 < len(scores) and sorted_scores[j + 1] == sorted_scores[i]:
            j += 1
        ranks[order[i:j + 1]] = (i + j) / 2.0 + 1.0
        i = j + 1
    return float((ranks[labels].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def roc_curve(labels: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(false positive rates, true positive rates) over all thresholds."""
    labels = np.asarray(labels).astype(bool)
    order = np.argsort(-np.asarray(scores, dtype=np.float64), kind="mergesort")
    tp = np.concatenate([[0], np.cumsum(labels[order])])
    fp = np.concatenate([[0], np.cumsum(~labels[order])])
    return fp / max(fp[-1], 1), tp / max(tp[-1], 1)


def binary_metrics(labels: np.ndarray, prob_positive: np.ndarray, threshold: float = 0.5) -> dict:
    labels = np.asarray(labels).astype(bool)
    pred = np.asarray(prob_positive) >= threshold
    tp, tn = int((pred & labels).sum()), int((~pred & ~labels).sum())
    fp, fn = int((pred & ~labels).sum()), int((~pred & labels).sum())
    n = len(labels)
    return {"accuracy": round((tp + tn) / n, 4) if n else float("nan"),
            "sensitivity": round(tp / (tp + fn), 4) if tp + fn else float("nan"),
            "specificity": round(tn / (tn + fp), 4) if tn + fp else float("nan"),
            "roc_auc": round(roc_auc(labels, prob_positive), 4),
            "threshold": threshold, "tp": tp, "tn": tn, "fp": fp, "fn": fn}


def load_images(paths: list[str], image_size: int, progress: Callable[[str], None] = print,
                colour: list | None = None) -> np.ndarray:
    """(N, image_size, image_size) float32 in [0, 1], read with open_volume. With `colour` (a
    list), each image's coloured-pixel fraction (ai.inference.colour_fraction) is appended to it."""
    from medviewer.ai.inference import colour_fraction
    from medviewer.io.discover import open_volume

    out = np.empty((len(paths), image_size, image_size), np.float32)
    start = time.monotonic()
    for i, path in enumerate(paths):
        data = open_volume(path).data
        if colour is not None:
            colour.append(colour_fraction(data))
        out[i] = to_unit_grey(data, image_size)
        if (i + 1) % 1000 == 0:
            progress(f"read {i + 1}/{len(paths)} images ({time.monotonic() - start:.0f} s)")
    return out


def default_network(image_size: int, n_classes: int) -> dict:
    return {"class": "monai.networks.nets.ResNet",
            "args": {"block": "basic", "layers": [1, 1, 1, 1], "block_inplanes": [16, 32, 64, 128],
                     "spatial_dims": 2, "n_input_channels": 1, "num_classes": n_classes}}


def train_classification(data_dir: str | os.PathLike, out_dir: str | os.PathLike, *, image_size: int = 128,
                         epochs: int = 30, batch_size: int = 32, lr: float = 1e-3, seed: int = 0,
                         max_minutes: float | None = None, patience: int = 6, val_fraction: float = 0.18,
                         name: str = "pneumonia-cnn", version: str = "1.0", modality: str = "XR",
                         limit_per_class: int | None = None, command: str | None = None,
                         progress: Callable[[str], None] = print) -> dict:
    """Train, keep the best epoch by validation ROC AUC, write out_dir/model.pt + manifest.json.
    Returns the manifest's metrics. max_minutes bounds the whole run (reading included): the
    epoch running when it is reached is the last one. limit_per_class (tests) takes the first N
    files of each class."""
    started = time.monotonic()
    classes, items = discover_classes(data_dir)
    if limit_per_class:
        items = [it for c in range(len(classes)) for it in [x for x in items if x[1] == c][:limit_per_class]]
    train_idx, val_idx = patient_split(items, val_fraction=val_fraction, seed=seed)
    if not train_idx or not val_idx:
        raise MedViewerError(f"{data_dir}: too few patients to split into training and validation")
    labels = np.array([label for _, label in items], dtype=np.int64)
    progress(f"{len(items)} images in {len(classes)} classes ({', '.join(classes)}); "
             f"{len(train_idx)} training, {len(val_idx)} validation (patient-wise, seed {seed})")
    colour: list[float] = []
    images = load_images([p for p, _ in items], image_size, progress, colour=colour)
    network = default_network(image_size, len(classes))

    from medviewer.ai.backends.classification_train import train_network

    result = train_network(
        network, images[train_idx], labels[train_idx], images[val_idx], labels[val_idx],
        n_classes=len(classes), epochs=epochs, batch_size=batch_size, lr=lr, seed=seed, patience=patience,
        deadline=None if max_minutes is None else started + 60.0 * max_minutes,
        checkpoint_path=str(Path(out_dir) / CHECKPOINT), progress=progress)

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    weights = out / "model.pt"
    result["save"](weights)
    discard_checkpoints(out)
    prob = result["val_prob"]  # (n_val, n_classes) of the best epoch
    val_labels = labels[val_idx]
    positive = len(classes) - 1
    metrics = binary_metrics(val_labels == positive, prob[:, positive])
    metrics.update({"positive_class": classes[positive], "n_train": len(train_idx), "n_val": len(val_idx),
                    "n_val_per_class": {c: int((val_labels == i).sum()) for i, c in enumerate(classes)},
                    "epochs_run": result["epochs_run"], "best_epoch": result["best_epoch"],
                    "stopped": result["stopped"], "train_seconds": round(time.monotonic() - started, 1),
                    "images_per_second": result["images_per_second"],
                    "measured_on": "patient-wise validation split of the training data"})
    if command is None:
        command = (f"python scripts/train_shipped_models.py --data {shlex.quote(str(data_dir))} --out "
                   f"{shlex.quote(str(out_dir))} --image-size {image_size} --epochs {epochs} --batch-size "
                   f"{batch_size} --lr {lr} --seed {seed}" + (f" --minutes {max_minutes:g}" if max_minutes else ""))
    manifest = {
        "name": name, "version": version, "task": "classification",
        "description": "Paediatric chest X-ray: normal vs pneumonia (small 2D ResNet).",
        "input": {"modality": modality, "dims": 2, "channels": 1, "size": [image_size, image_size],
                  "normalisation": "zscore",
                  "preprocessing": "grey (ITU-R 601 luma), bilinear resize, uint8/255 to [0, 1] "
                                   "(other types min-max), then z-score per image",
                  "intensity": colour_contract([colour[i] for i in train_idx], description=XRAY_DESCRIPTION,
                                               advice=XRAY_ADVICE, measured_on="training images (patient-wise "
                                               "training side, not the validation images)")},
        "outputs": {"classes": classes, "activation": "softmax"},
        "network": network, "weights": weights.name, "sha256": sha256_of(weights),
        "metrics": metrics,
        "training": {"data": DATA_SOURCE, "data_licence": DATA_LICENCE,
                     "data_classes": {c: int((labels == i).sum()) for i, c in enumerate(classes)},
                     "split": f"patient-wise, stratified by class, {val_fraction:.0%} of each class's images "
                              f"to validation, numpy default_rng seed {seed}",
                     "seed": seed, "image_size": image_size, "epochs_max": epochs, "batch_size": batch_size,
                     "lr": lr, "optimiser": "AdamW (weight decay 1e-4), one-cycle LR (10% warm-up, cosine decay)",
                     "loss": "class-weighted cross-entropy",
                     "class_weights": result["class_weights"], "patience": patience,
                     "augmentation": result["augmentation"],
                     "early_stopping": "best validation ROC AUC, patience "
                                       f"{patience} epochs",
                     "software": result["software"], "command": command},
        "licence": "weights: CC BY 4.0 (trained on CC BY 4.0 data)",
        "intended_use": "research and demonstration, not for clinical use",
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    _roc_png(out / "roc.png", val_labels == positive, prob[:, positive], metrics["roc_auc"], name)
    progress(f"wrote {weights} ({weights.stat().st_size / 1e6:.2f} MB) and manifest.json: "
             + ", ".join(f"{k} {metrics[k]}" for k in ("accuracy", "sensitivity", "specificity", "roc_auc")))
    return metrics


def _roc_png(path: Path, labels: np.ndarray, scores: np.ndarray, auc: float, name: str) -> None:
    from medviewer.io.roc_png import write_roc_png

    fpr, tpr = roc_curve(labels, scores)
    write_roc_png(path, [{"label": f"{name} (validation)", "fpr": fpr.tolist(), "tpr": tpr.tolist(), "auc": auc}],
                  title=f"ROC curve: {name}, validation split")
