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
from medviewer.ai.registry import sha256_of
from medviewer.ai.training.contract import extent_contract
from medviewer.ai.training.checkpoints import CHECKPOINT, discard_checkpoints
from medviewer.core.errors import MedViewerError

DATA_SOURCE = "Medical Segmentation Decathlon Task04 Hippocampus (Simpson et al. 2019), a subset"
DATA_LICENCE = "CC BY-SA 4.0"
TRAINING_SIDE = "training-side cases of the split (not the validation cases)"
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


def normalise_zscore_nonzero(data: np.ndarray) -> np.ndarray:
    """float32 z-score over the nonzero voxels; zero voxels stay 0 (MONAI NormalizeIntensity nonzero)."""
    a = np.asarray(data, dtype=np.float32)
    mask = a != 0
    if not mask.any():
        return np.zeros_like(a)
    vals = a[mask]
    std = float(vals.std())
    out = np.zeros_like(a)
    out[mask] = (vals - float(vals.mean())) / (std if std > 1e-6 else 1.0)
    return out


def centre_pad_crop(a: np.ndarray, size: tuple[int, ...], value: float = 0) -> tuple[np.ndarray, tuple]:
    """`a` centre padded (with value) and/or cropped to `size`; returns (out, (pads, crops)) that
    `uncrop` inverts for the region the input covered."""
    pads, crops = [], []
    for n, s in zip(a.shape, size):
        if n <= s:
            before = (s - n) // 2
            pads.append((before, s - n - before))
            crops.append(slice(0, n))
        else:
            start = (n - s) // 2
            pads.append((0, 0))
            crops.append(slice(start, start + s))
    out = np.pad(a[tuple(crops)], pads, mode="constant", constant_values=value)
    return out, (pads, crops)


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


# --- metrics --------------------------------------------------------------------------------
def dice(pred: np.ndarray, truth: np.ndarray) -> float:
    """Dice of two boolean masks; 1.0 when both are empty."""
    p, t = np.asarray(pred, bool), np.asarray(truth, bool)
    denom = int(p.sum()) + int(t.sum())
    return 1.0 if denom == 0 else 2.0 * int((p & t).sum()) / denom


def _surface(mask: np.ndarray) -> np.ndarray:
    from scipy.ndimage import binary_erosion

    return mask & ~binary_erosion(mask, structure=np.ones((3,) * mask.ndim, bool), border_value=0)


def hausdorff95(pred: np.ndarray, truth: np.ndarray, spacing_zyx=(1.0, 1.0, 1.0)) -> float:
    """Symmetric 95th-percentile Hausdorff distance (mm) between the surfaces of two masks:
    max of the two directed 95th percentiles of surface-voxel to surface distances (as MONAI's
    compute_hausdorff_distance, percentile=95). 0.0 when both are empty, nan when one is."""
    from scipy.ndimage import distance_transform_edt

    p, t = np.asarray(pred, bool), np.asarray(truth, bool)
    if not p.any() and not t.any():
        return 0.0
    if not p.any() or not t.any():
        return float("nan")
    sp, st = _surface(p), _surface(t)
    sampling = [float(s) for s in spacing_zyx][: p.ndim]
    to_t = distance_transform_edt(~st, sampling=sampling)
    to_p = distance_transform_edt(~sp, sampling=sampling)
    return float(max(np.percentile(to_t[sp], 95), np.percentile(to_p[st], 95)))


def label_metrics(preds: list[np.ndarray], truths: list[np.ndarray], labels: list[int],
                  spacings_zyx: list | None = None) -> dict:
    """Mean over cases of Dice and HD95 per label, plus the mean over labels."""
    spacings_zyx = spacings_zyx or [(1.0, 1.0, 1.0)] * len(preds)
    out: dict = {"dice": {}, "hd95_mm": {}}
    for lab in labels:
        d = [dice(p == lab, t == lab) for p, t in zip(preds, truths)]
        h = [hausdorff95(p == lab, t == lab, s) for p, t, s in zip(preds, truths, spacings_zyx)]
        h = [v for v in h if np.isfinite(v)]
        out["dice"][str(lab)] = round(float(np.mean(d)), 4) if d else float("nan")
        out["hd95_mm"][str(lab)] = round(float(np.mean(h)), 3) if h else float("nan")
    out["dice"]["mean"] = round(float(np.mean([out["dice"][str(lab)] for lab in labels])), 4)
    out["hd95_mm"]["mean"] = round(float(np.mean([out["hd95_mm"][str(lab)] for lab in labels])), 3)
    return out


def default_network(n_labels: int = 3) -> dict:
    return {"class": "monai.networks.nets.UNet",
            "args": {"spatial_dims": 3, "in_channels": 1, "out_channels": n_labels,
                     "channels": [8, 16, 32, 64], "strides": [2, 2, 2], "num_res_units": 1,
                     "norm": "batch"}}


# --- training -------------------------------------------------------------------------------
def train_segmentation(data_dir: str | os.PathLike, out_dir: str | os.PathLike, *,
                       size: tuple[int, int, int] = (48, 64, 48), epochs: int = 200,
                       minutes: float | None = None, batch_size: int = 4, lr: float = 3e-3, seed: int = 0,
                       patience: int = 15, val_fraction: float = 0.15, limit: int | None = None,
                       name: str = "hippocampus-unet", version: str = "1.0", modality: str = "MR",
                       command: str | None = None, progress: Callable[[str], None] = print) -> dict:
    """Train, keep the epoch with the best validation mean Dice, write out_dir/model.pt and
    manifest.json; returns the manifest's metrics. `minutes` bounds the whole run (reading
    included); `limit` (tests) takes the first N cases. size is (z, y, x), each divisible by 16."""
    started = time.monotonic()
    size = tuple(int(s) for s in size)
    if len(size) != 3 or any(s % 16 for s in size):
        raise MedViewerError(f"size {size} must be three numbers divisible by 16")
    cases = discover_cases(data_dir)
    if limit:
        cases = cases[:limit]
    train_idx, val_idx = case_split(len(cases), val_fraction, seed)
    if not train_idx or not val_idx:
        raise MedViewerError(f"{data_dir}: too few cases to split into training and validation")
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
    progress(f"{len(cases)} cases; {len(train_idx)} training, {len(val_idx)} validation (by case, seed {seed}); "
             f"size (z,y,x) {size}")
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

    from medviewer.ai.backends.segmentation_train import train_network

    def val_score(pred: np.ndarray, truth: np.ndarray) -> float:
        return float(np.mean([np.mean([dice(p == lab, t == lab) for lab in labels])
                              for p, t in zip(pred, truth)]))

    result = train_network(network, images[train_idx], targets[train_idx], images[val_idx], targets[val_idx],
                           epochs=epochs, batch_size=batch_size, lr=lr, seed=seed, patience=patience,
                           deadline=None if minutes is None else started + 60.0 * minutes,
                           score=val_score, checkpoint_path=str(Path(out_dir) / CHECKPOINT),
                           progress=progress)
    # metrics on each validation case's own grid (padding removed)
    preds, truths = [], []
    for k, i in enumerate(val_idx):
        _, (pads, crops) = centre_pad_crop(np.zeros(raw_shapes[i], np.uint8), size)
        inner = tuple(slice(b, s - a) for (b, a), s in zip(pads, size))
        preds.append(result["val_pred"][k][inner])
        truths.append(targets[i][inner])
    metrics = label_metrics(preds, truths, labels)
    metrics.update({"labels": {str(lab): label_names[str(lab)]["name"] for lab in labels},
                    "n_train": len(train_idx), "n_val": len(val_idx), "epochs": result["epochs_run"],
                    "best_epoch": result["best_epoch"], "stopped": result["stopped"],
                    "train_seconds": round(time.monotonic() - started, 1),
                    "measured_on": "validation cases (split by case) at the training resolution, "
                                   "Dice/HD95 per case then averaged; HD95 with scipy distance transforms"})
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    weights = out / "model.pt"
    result["save"](weights)
    discard_checkpoints(out)
    if command is None:
        command = (f"python scripts/train_shipped_models.py --task segmentation --data "
                   f"{shlex.quote(str(data_dir))} --out {shlex.quote(str(out_dir))} --epochs {epochs} "
                   f"--seed {seed}" + (f" --minutes {minutes:g}" if minutes else ""))
    manifest = {
        "name": name, "version": version, "task": "segmentation",
        "description": "Hippocampus (anterior and posterior parts) in cropped T1 MRI, small 3D MONAI UNet.",
        "input": {"modality": modality, "dims": 3, "channels": 1, "spacing": train_spacing,
                  "spacing_axes": "x,y,z mm", "direction": train_direction, "size": list(size),
                  "size_axes": "z,y,x", "normalisation": "zscore-nonzero",
                  "preprocessing": "z-score over nonzero voxels (zeros stay 0), centre zero-pad to size; "
                                   "larger volumes: sliding window of size",
                  "extent_mm": extent_contract([extents[i] for i in train_idx], description=EXTENT_DESCRIPTION,
                                               advice=EXTENT_ADVICE, measured_on=TRAINING_SIDE)},
        "outputs": {"labels": {str(lab): label_names[str(lab)] for lab in labels}, "activation": "softmax"},
        "network": network, "weights": weights.name, "sha256": sha256_of(weights),
        "metrics": metrics,
        "training": {"source": DATA_SOURCE, "licence": DATA_LICENCE, "n_cases": len(cases),
                     "split": f"by case (one file = one patient), {val_fraction:.0%} to validation, "
                              f"numpy default_rng seed {seed}",
                     "val_cases": [cases[i][0] for i in val_idx], "seed": seed, "size": list(size),
                     "epochs_max": epochs, "batch_size": batch_size, "lr": lr,
                     "optimiser": "AdamW (weight decay 1e-4), one-cycle LR", "loss": "MONAI DiceCELoss",
                     "augmentation": result["augmentation"], "patience": patience,
                     "early_stopping": f"best validation mean Dice, patience {patience} epochs",
                     "software": result["software"], "command": command},
        "licence": "weights: CC BY-SA 4.0 (trained on CC BY-SA 4.0 data)",
        "intended_use": "research and demonstration, not for clinical use",
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    progress(f"wrote {weights} ({weights.stat().st_size / 1e6:.2f} MB) and manifest.json: "
             f"Dice {metrics['dice']}, HD95 mm {metrics['hd95_mm']}")
    return metrics
