"""Train a 3D segmentation network (MSD layout: imagesTr/ + labelsTr/) into a registry model folder.

    train_segmentation(data_dir, out_dir, size=(48, 64, 48), epochs=200, minutes=12, ...) -> metrics

data_dir holds imagesTr/NAME.nii.gz and labelsTr/NAME.nii.gz (one file = one patient/case) and
optionally dataset.json (label names). Every volume is z-scored over its nonzero voxels (zeros stay
0; normalise_zscore_nonzero, also what inference does) and centre padded/cropped to `size` (z, y, x;
divisible by 16). The split into training and validation is by case, with a fixed seed.
The manifest's input.extent_mm records the physical extent of the training-side cases (along the
first case's axes, as input.direction), so that the model refuses, say, a whole head
(ai.training.contract, checked by ai.inference.check_input).
Metrics here are numpy/scipy only (Dice, 95% Hausdorff in mm); no torch in this module: the
training loop is medviewer.ai.backends.segmentation_train, imported lazily.
"""
from __future__ import annotations

import json
import os
import shlex
import time
from pathlib import Path
from typing import Callable

import numpy as np

from medviewer.ai.inference import physical_extent
from medviewer.ai.metrics import bootstrap_ci, dice, hausdorff95, voxel_prf, with_ci
from medviewer.ai.preprocess import centre_pad_crop, normalise_zscore_nonzero
from medviewer.ai.registry import sha256_of
from medviewer.ai.training.contract import extent_contract
from medviewer.ai.training.model_card import write_model_card
from medviewer.ai.training.checkpoints import CHECKPOINT, discard_checkpoints
from medviewer.core.errors import MedViewerError

DATA_SOURCE = "Medical Segmentation Decathlon Task04 Hippocampus (Simpson et al. 2019), a subset"
DATA_LICENCE = "CC BY-SA 4.0"
TRAINING_SIDE = "training-side cases of the split (not the validation or test cases)"
DEFAULT_LABELS = {"1": {"name": "anterior", "colour": [255, 80, 80]},
                  "2": {"name": "posterior", "colour": [80, 160, 255]}}
NIFTI_SUFFIXES = (".nii.gz", ".nii")
EXTENT_DESCRIPTION = "hippocampus crops"
EXTENT_ADVICE = "crop it to the hippocampus first"


# --- data -----------------------------------------------------------------------------------
def discover_cases(data_dir: str | os.PathLike) -> list[tuple[str, str, str]]:
    """[(case name, image path, label path)] of an MSD-style folder, sorted by name."""
    root = Path(data_dir)
    images, labels = root / "imagesTr", root / "labelsTr"
    if not images.is_dir() or not labels.is_dir():
        raise MedViewerError(f"{root}: expected imagesTr/ and labelsTr/ (Medical Segmentation Decathlon layout)")
    cases = []
    for img in sorted(images.iterdir()):
        if img.name.startswith(".") or not img.name.endswith(NIFTI_SUFFIXES):
            continue
        lab = labels / img.name
        if lab.is_file():
            name = img.name[: -len(next(s for s in NIFTI_SUFFIXES if img.name.endswith(s)))]
            cases.append((name, str(img), str(lab)))
    if not cases:
        raise MedViewerError(f"{root}: no image with a label of the same name")
    return cases


def case_split(n: int, val_fraction: float = 0.15, seed: int = 0) -> tuple[list[int], list[int]]:
    """Indices (train, validation) of n cases (one case = one patient), numpy default_rng(seed)."""
    order = np.random.default_rng(seed).permutation(n)
    n_val = max(1, int(round(val_fraction * n))) if n > 1 else 0
    return sorted(int(i) for i in order[n_val:]), sorted(int(i) for i in order[:n_val])


def case_split_three(n: int, val_fraction: float = 0.10, test_fraction: float = 0.15, seed: int = 0,
                     ) -> tuple[list[int], list[int], list[int]]:
    """Indices (train, validation, test) of n cases: test drawn first (seed), then validation
    from the rest (seed + 1)."""
    rest, test = case_split(n, test_fraction, seed)
    sub_train, sub_val = case_split(len(rest), val_fraction / (1 - test_fraction), seed + 1)
    return sorted(rest[i] for i in sub_train), sorted(rest[i] for i in sub_val), test


def load_case(image_path: str, label_path: str | None, size: tuple[int, int, int]):
    """(normalised padded image (z,y,x) float32, padded labels uint8 or None, Volume)."""
    from medviewer.io import open_volume

    vol = open_volume(image_path)
    if vol.data.ndim != 3:
        raise MedViewerError(f"{image_path}: expected a grey 3D volume, got shape {vol.data.shape}")
    x, _ = centre_pad_crop(normalise_zscore_nonzero(vol.data), size)
    y = None
    if label_path is not None:
        lab = open_volume(label_path)
        if lab.shape != vol.shape:
            raise MedViewerError(f"{label_path}: label grid {lab.shape} differs from the image {vol.shape}")
        y, _ = centre_pad_crop(np.asarray(lab.data).astype(np.uint8), size)
    return x, y, vol


def case_metrics(preds: list[np.ndarray], truths: list[np.ndarray], labels: list[int],
                 spacings_zyx: list | None = None, seed: int = 0) -> dict:
    """Per label: Dice, HD95 (mm), voxel-wise precision / recall / F1, each the mean over cases
    with a 95% bootstrap interval over cases; and the mean Dice over labels (with its interval)."""
    spacings_zyx = spacings_zyx or [(1.0, 1.0, 1.0)] * len(preds)
    out: dict = {"per_label": {}, "n_cases": len(preds)}
    per_case_mean = np.zeros(len(preds))
    for lab in labels:
        rows = {"dice": [], "hd95_mm": [], "precision": [], "recall": [], "f1": []}
        for p, t, s in zip(preds, truths, spacings_zyx):
            rows["dice"].append(dice(p == lab, t == lab))
            rows["hd95_mm"].append(hausdorff95(p == lab, t == lab, s))
            prf = voxel_prf(p == lab, t == lab)
            for k in ("precision", "recall", "f1"):
                rows[k].append(prf[k])
        per_case_mean += np.array(rows["dice"]) / len(labels)
        entry = {}
        for k, v in rows.items():
            v = np.array(v, np.float64)
            v = v[np.isfinite(v)]
            entry[k] = with_ci(v.mean() if len(v) else float("nan"), bootstrap_ci(np.mean, v, seed=seed),
                               3 if k == "hd95_mm" else 4)
        out["per_label"][str(lab)] = entry
    out["mean_dice"] = with_ci(per_case_mean.mean(), bootstrap_ci(np.mean, per_case_mean, seed=seed))
    out["per_case_mean_dice"] = [round(float(v), 4) for v in per_case_mean]
    return out


def default_network(n_labels: int = 3) -> dict:
    return {"class": "monai.networks.nets.UNet",
            "args": {"spatial_dims": 3, "in_channels": 1, "out_channels": n_labels,
                     "channels": [16, 32, 64, 128], "strides": [2, 2, 2], "num_res_units": 2,
                     "norm": "instance"}}


# --- training -------------------------------------------------------------------------------
def train_segmentation(data_dir: str | os.PathLike, out_dir: str | os.PathLike, *,
                       size: tuple[int, int, int] = (48, 64, 48), epochs: int = 300,
                       minutes: float | None = None, batch_size: int = 4, lr: float = 3e-3, seed: int = 0,
                       patience: int = 40, val_fraction: float = 0.10, test_fraction: float = 0.15,
                       limit: int | None = None, name: str = "hippocampus-unet", version: str = "2.0",
                       modality: str = "MR", command: str | None = None, resume: bool = False,
                       progress: Callable[[str], None] = print) -> dict:
    """Train, keep the epoch with the best validation mean Dice, then measure validation and the
    test split (once) with x-mirroring test-time augmentation; write out_dir/model.pt and
    manifest.json; returns the manifest's metrics. `minutes` is a hard budget for the whole run
    (reading and final evaluation included); resume continues from checkpoints/last.pt; `limit`
    (tests) takes the first N cases. size is (z, y, x), each divisible by 16."""
    from medviewer.ai.backends.train_schedule import LAST, Budget

    started = time.monotonic()
    size = tuple(int(s) for s in size)
    if len(size) != 3 or any(s % 16 for s in size):
        raise MedViewerError(f"size {size} must be three numbers divisible by 16")
    cases = discover_cases(data_dir)
    if limit:
        cases = cases[:limit]
    train_idx, val_idx, test_idx = case_split_three(len(cases), val_fraction, test_fraction, seed)
    if not train_idx or not val_idx or not test_idx:
        raise MedViewerError(f"{data_dir}: too few cases to split into training, validation and test")
    label_names = dict(DEFAULT_LABELS)
    ds = Path(data_dir) / "dataset.json"
    if ds.is_file():
        try:
            names = json.loads(ds.read_text(encoding="utf-8")).get("labels", {})
            for k, v in names.items():
                if k in label_names and isinstance(v, str):
                    label_names[k] = dict(label_names[k], name=v)
        except (OSError, ValueError):
            pass
    progress(f"{len(cases)} cases; {len(train_idx)} training, {len(val_idx)} validation, {len(test_idx)} test "
             f"(by case, seed {seed}); size (z,y,x) {size}")
    xs, ys, raw_shapes, spacings, directions, extents = [], [], [], [], [], []
    for _, img, lab in cases:
        x, y, vol = load_case(img, lab, size)
        xs.append(x)
        ys.append(y)
        raw_shapes.append(vol.shape)
        spacings.append(vol.spacing)
        directions.append(np.round(vol.direction, 6))
        extents.append(physical_extent(vol, directions[0], nonzero=True))  # along the recorded direction
    # the grid the network learns on: inference resamples other inputs onto it (ai.model_grid)
    train_spacing = [round(float(v), 4) for v in np.median(np.array(spacings), axis=0)]
    train_direction = [float(v) for v in directions[0].ravel()]
    if any(not np.allclose(d, directions[0], atol=1e-3) for d in directions):
        progress("warning: the training cases differ in axis orientation; the first case's is recorded")
    images, targets = np.stack(xs), np.stack(ys)
    labels = sorted(int(k) for k in label_names)
    network = default_network(len(labels) + 1)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)

    from medviewer.ai.backends.segmentation_train import TTA, predict_labels, train_network

    def val_score(pred: np.ndarray, truth: np.ndarray) -> float:
        return float(np.mean([np.mean([dice(p == lab, t == lab) for lab in labels])
                              for p, t in zip(pred, truth)]))

    reserve = 4.0 * len(val_idx) + 4.0 * len(test_idx) + 10.0  # mirrored prediction + metrics per case
    result = train_network(network, images[train_idx], targets[train_idx], images[val_idx], targets[val_idx],
                           epochs=epochs, batch_size=batch_size, lr=lr, seed=seed, patience=patience,
                           budget=Budget(started, minutes, reserve_s=reserve), score=val_score,
                           checkpoint_path=str(out / CHECKPOINT), last_path=str(out / LAST), resume=resume,
                           progress=progress)
    net = result["net"]

    def measured(idx: list[int]) -> dict:
        """Metrics on each case's own grid (padding removed), with test-time mirroring."""
        pred = predict_labels(net, images[idx], mirror=True)
        preds, truths, sp = [], [], []
        for k, i in enumerate(idx):
            _, (pads, _crops) = centre_pad_crop(np.zeros(raw_shapes[i], np.uint8), size)
            inner = tuple(slice(b, s - a) for (b, a), s in zip(pads, size))
            preds.append(pred[k][inner])
            truths.append(targets[i][inner])
            sp.append(tuple(reversed(spacings[i])))
        return case_metrics(preds, truths, labels, sp, seed=seed)

    val_m, test_m = measured(val_idx), measured(test_idx)
    val_m["measured_on"] = ("validation cases (split by case): they chose the epoch, so this figure is optimistic; "
                            "x-mirroring test-time augmentation, each case on its own grid")
    test_m["measured_on"] = ("test cases (split by case), touched once after training; x-mirroring test-time "
                             "augmentation, each case on its own grid; the Decathlon's held-out cases are not here")
    metrics = {"validation": val_m, "test": test_m,
               "labels": {str(lab): label_names[str(lab)]["name"] for lab in labels},
               "n_train": len(train_idx), "n_val": len(val_idx), "n_test": len(test_idx),
               "epochs": result["epochs_run"], "best_epoch": result["best_epoch"], "stopped": result["stopped"],
               "planned_epochs": result["planned_epochs"], "train_seconds": round(time.monotonic() - started, 1),
               "confidence_intervals": "95%, bootstrap over cases (2000 resamples, percentile)",
               "hd95": "symmetric 95th-percentile surface distance in mm (scipy distance transforms)"}
    if result["resumed_after_epoch"] is not None:  # the seconds of the interrupted run(s) count too
        metrics["resumed_after_epoch"] = result["resumed_after_epoch"]
        metrics["train_seconds"] = round(metrics["train_seconds"] + result["seconds_before_resume"], 1)
    weights = out / "model.pt"
    result["save"](weights)
    discard_checkpoints(out)
    if command is None:
        command = (f"python scripts/train_shipped_models.py --task segmentation --data "
                   f"{shlex.quote(str(data_dir))} --out {shlex.quote(str(out_dir))} --epochs {epochs} "
                   f"--seed {seed}" + (f" --minutes {minutes:g}" if minutes else ""))
    manifest = {
        "name": name, "version": version, "task": "segmentation",
        "description": "Hippocampus (anterior and posterior parts) in cropped T1 MRI, 3D MONAI UNet "
                       "(16-128 channels, two residual units per level).",
        "input": {"modality": modality, "dims": 3, "channels": 1, "spacing": train_spacing,
                  "spacing_axes": "x,y,z mm", "direction": train_direction, "size": list(size),
                  "size_axes": "z,y,x", "normalisation": "zscore-nonzero",
                  "preprocessing": "z-score over nonzero voxels (zeros stay 0), centre zero-pad to size; "
                                   "larger volumes: sliding window of size",
                  "extent_mm": extent_contract([extents[i] for i in train_idx], description=EXTENT_DESCRIPTION,
                                               advice=EXTENT_ADVICE, measured_on=TRAINING_SIDE)},
        "outputs": {"labels": {str(lab): label_names[str(lab)] for lab in labels}, "activation": "softmax"},
        "test_time_augmentation": {"mirror_axes": ["x"], "description": TTA},
        "network": network, "weights": weights.name, "sha256": sha256_of(weights),
        "metrics": metrics,
        "training": {"source": DATA_SOURCE, "licence": DATA_LICENCE, "n_cases": len(cases),
                     "split": f"by case (one file = one patient): {test_fraction:.0%} to test (numpy default_rng "
                              f"seed {seed}), then {val_fraction:.0%} of all cases to validation (seed {seed + 1})",
                     "val_cases": [cases[i][0] for i in val_idx], "test_cases": [cases[i][0] for i in test_idx],
                     "seed": seed, "size": list(size), "patch": "random 40x56x40 crops of the padded volume",
                     "epochs_max": epochs, "batch_size": batch_size, "lr": lr,
                     "optimiser": "AdamW (weight decay 1e-4), one-epoch warm-up then cosine decay over the epochs "
                                  "the time budget allows",
                     "loss": "MONAI DiceCELoss", "augmentation": result["augmentation"], "patience": patience,
                     "early_stopping": f"best validation mean Dice, patience {patience} epochs",
                     "time_budget_minutes": minutes,
                     "software": result["software"], "command": command},
        "licence": "weights: CC BY-SA 4.0 (trained on CC BY-SA 4.0 data)",
        "intended_use": "research and demonstration, not for clinical use",
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    write_model_card(out)
    progress(f"wrote {weights} ({weights.stat().st_size / 1e6:.2f} MB): validation mean Dice "
             f"{val_m['mean_dice']}, test mean Dice {test_m['mean_dice']}")
    return metrics
