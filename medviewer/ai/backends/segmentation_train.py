"""The torch/MONAI half of medviewer.ai.training.segmentation: the training loop.

Data arrive as numpy arrays already normalised and padded (N, z, y, x) with uint8 labels. Each
sample is a random crop of PATCH voxels from its padded volume (the network is fully
convolutional: inference runs on the whole padded volume), then augmented: a flip along x (the
left-right axis; a mirrored hippocampus is still a hippocampus and the anterior/posterior labels
do not change under a left-right flip - never along y or z), a random rotation and zoom (MONAI
RandAffined, nearest neighbour for labels), and intensity scale, shift and gamma of the nonzero
voxels. Loss MONAI DiceCELoss; the epoch with the best validation mean Dice is kept. Training
stops after `patience` epochs without improvement, at `epochs`, or at the time budget (the
number of epochs that fit is re-planned after every epoch and the cosine learning rate decays
over it). The resumable state is written after every epoch; each epoch's draws come from
seed_epoch(seed, epoch).
"""
from __future__ import annotations

import importlib
import time
from typing import Callable

import numpy as np
import torch

from medviewer.ai.backends.checkpoint import BestCheckpoint, software_versions, weights_saver
from medviewer.ai.backends.train_schedule import (Budget, CosineSchedule, eta_text, replan, resume_from,
                                                  save_epoch, seed_epoch)
from medviewer.ai.training.progress_bar import ProgressBar

PATCH = (40, 56, 40)
AUGMENTATION = {"crop": f"random {PATCH[0]}x{PATCH[1]}x{PATCH[2]} (z,y,x) crop of the padded volume",
                "flip": "x (left-right) axis, p=0.5; never y or z",
                "affine": {"class": "monai.transforms.RandAffined",
                           "args": {"prob": 0.5, "rotate_range": [0.26, 0.26, 0.26], "scale_range": [0.12, 0.12, 0.12],
                                    "mode": ["bilinear", "nearest"], "padding_mode": "zeros"}},
                "intensity": "nonzero voxels * U(0.85, 1.15) + U(-0.15, 0.15), p=0.5; gamma U(0.7, 1.5) on the "
                             "nonzero voxels rescaled to [0, 1], p=0.3"}
TTA = "mean of the softmax of the volume and of its x (left-right) mirror"


def build(network: dict) -> torch.nn.Module:
    module_name, _, class_name = network["class"].rpartition(".")
    return getattr(importlib.import_module(module_name), class_name)(**network.get("args", {}))


@torch.no_grad()
def predict_probabilities(net: torch.nn.Module, images: np.ndarray, batch_size: int = 4,
                          mirror: bool = False) -> np.ndarray:
    """Softmax (N, C, z, y, x) float32 of normalised, padded images (N, z, y, x); with mirror, the
    mean with the prediction of the x-mirrored input mirrored back (test-time augmentation)."""
    net.eval()
    out = []
    for i in range(0, len(images), batch_size):
        x = torch.from_numpy(np.ascontiguousarray(images[i:i + batch_size]))[:, None]
        p = torch.softmax(net(x), 1)
        if mirror:
            p = 0.5 * (p + torch.softmax(net(torch.flip(x, dims=[-1])), 1).flip(dims=[-1]))
        out.append(p.numpy())
    return np.concatenate(out)


def predict_labels(net: torch.nn.Module, images: np.ndarray, batch_size: int = 4, mirror: bool = False) -> np.ndarray:
    return predict_probabilities(net, images, batch_size, mirror).argmax(1).astype(np.uint8)


def _augment(x: torch.Tensor, y: torch.Tensor, rng: np.random.Generator, affine) -> tuple[torch.Tensor, torch.Tensor]:
    xs, ys = [], []
    for xi, yi in zip(x, y):
        patch = [min(p, n) for n, p in zip(xi.shape[1:], PATCH)]  # a grid smaller than the patch: all of it
        starts = [int(rng.integers(0, n - p + 1)) for n, p in zip(xi.shape[1:], patch)]
        crop = tuple(slice(s, s + p) for s, p in zip(starts, patch))
        xi, yi = xi[(slice(None),) + crop], yi[(slice(None),) + crop]
        if rng.random() < 0.5:
            xi, yi = torch.flip(xi, dims=[-1]), torch.flip(yi, dims=[-1])
        d = affine({"image": xi, "label": yi.float()})
        xi, yi = torch.as_tensor(d["image"]).float(), torch.as_tensor(d["label"]).round().long()
        nz = xi != 0
        if rng.random() < 0.3 and nz.any():
            v = xi[nz]
            lo, hi = float(v.min()), float(v.max())
            if hi > lo:
                g = float(rng.uniform(0.7, 1.5))
                xi = torch.where(nz, ((xi - lo) / (hi - lo)).clamp(0, 1) ** g * (hi - lo) + lo, xi)
        if rng.random() < 0.5:
            xi = torch.where(nz, xi * float(rng.uniform(0.85, 1.15)) + float(rng.uniform(-0.15, 0.15)), xi)
        xs.append(xi)
        ys.append(yi)
    return torch.stack(xs), torch.stack(ys)


def train_network(network: dict, x_train: np.ndarray, y_train: np.ndarray, x_val: np.ndarray,
                  y_val: np.ndarray, *, epochs: int, batch_size: int, lr: float, seed: int, patience: int,
                  budget: Budget, score: Callable[[np.ndarray, np.ndarray], float],
                  checkpoint_path: str | None = None, last_path: str | None = None, resume: bool = False,
                  progress: Callable[[str], None] = print) -> dict:
    from monai.losses import DiceCELoss
    from monai.transforms import RandAffined
    from monai.utils import set_determinism

    set_determinism(seed=seed)
    torch.manual_seed(seed)
    net = build(network)
    loss_fn = DiceCELoss(to_onehot_y=True, softmax=True)
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=1e-4)
    steps_per_epoch = max(1, int(np.ceil(len(x_train) / batch_size)))
    sched = CosineSchedule(opt, lr, epochs * steps_per_epoch, warmup=steps_per_epoch)
    xt = torch.from_numpy(np.ascontiguousarray(x_train))[:, None]
    yt = torch.from_numpy(np.ascontiguousarray(y_train).astype(np.int64))[:, None]
    best = BestCheckpoint(patience, checkpoint_path)
    start = resume_from(last_path if resume else None, net, opt, sched, best, steps_per_epoch, epochs=epochs,
                        score_name="val mean Dice", progress=progress)
    epochs_run, planned, last_epoch_s, before_s = start["epoch"], start["planned"], start["epoch_s"], start["elapsed_s"]
    resumed_from, stopped = start["resumed"], "max epochs"
    for epoch in range(epochs_run + 1, epochs + 1):
        if epoch > planned:
            stopped = f"time budget ({planned} epochs planned)"
            break
        if epochs_run and budget.left() < last_epoch_s:
            stopped = "time budget"
            break
        t0 = time.monotonic()
        net.train()
        s = seed_epoch(seed, epoch)
        rng = np.random.default_rng(s)
        affine = RandAffined(keys=["image", "label"], **AUGMENTATION["affine"]["args"])
        affine.set_random_state(seed=s)
        order = rng.permutation(len(xt))
        bar = ProgressBar(steps_per_epoch, f"epoch {epoch}/{planned}")
        total, n, cut = 0.0, 0, False
        for i in range(0, len(order), batch_size):
            idx = torch.from_numpy(order[i:i + batch_size])
            if len(idx) < 2 and n:  # normalisation statistics need 2 samples
                continue
            xb, yb = _augment(xt[idx], yt[idx], rng, affine)
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(net(xb), yb)
            loss.backward()
            opt.step()
            sched.step()
            total += float(loss.detach()) * len(idx)
            n += len(idx)
            bar.update(1, f"loss {total / n:.4f}")
            if budget.left() <= 0:
                cut = True
                break
        bar.close()
        if cut and epochs_run:
            stopped = "time budget (mid-epoch, partial epoch discarded)"
            break
        pred = predict_labels(net, x_val)
        sc = score(pred, y_val)
        epochs_run = epoch
        last_epoch_s = time.monotonic() - t0
        # re-planned after every epoch: the machine may get slower or faster
        planned = replan(budget, sched, planned, epoch_s=last_epoch_s, done=epoch, wanted=epochs,
                         steps_per_epoch=steps_per_epoch, progress=progress)
        better = best.update(net, sc, None, epoch)
        if last_path:
            save_epoch(last_path, net, opt, sched, best, planned=planned, epoch=epoch, epoch_s=last_epoch_s,
                       elapsed_s=before_s + time.monotonic() - budget.started)
        progress(f"epoch {epoch}/{planned}: loss {total / max(n, 1):.4f}, val mean Dice {sc:.4f}, "
                 f"{last_epoch_s:.1f} s, "
                 f"ETA {eta_text(planned - epoch, last_epoch_s, budget)}"
                 + (" *best" if better else ""))
        if cut:  # the budget ended inside the first epoch: the partly trained network is all there is
            stopped = "time budget (within the first epoch, kept)"
            break
        if best.exhausted:
            stopped = f"early stop (no better validation mean Dice in {patience} epochs)"
            break
    best.restore(net, lambda: None)
    progress(f"stopped: {stopped}; best epoch {best.epoch} (val mean Dice {best.score:.4f})")
    return {"net": net, "save": weights_saver(net), "epochs_run": epochs_run, "best_epoch": best.epoch,
            "stopped": stopped, "planned_epochs": planned, "resumed_after_epoch": resumed_from,
            "seconds_before_resume": round(before_s, 1),
            "augmentation": AUGMENTATION, "tta": TTA, "software": software_versions()}
