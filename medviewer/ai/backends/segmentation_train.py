"""The torch/MONAI half of medviewer.ai.training.segmentation: the training loop.

Data arrive as numpy arrays already normalised and padded (N, z, y, x) with uint8 labels.
Augmentation, per sample: a flip along x (the left-right axis; the crops are of either the left or
the right hippocampus, so a mirrored one is still a plausible hippocampus, and the anterior/posterior
labels do not change under a left-right flip - no flips along y or z, which would swap anterior and
posterior or superior and inferior), and a small intensity scale/shift of the nonzero voxels.
Loss MONAI DiceCELoss; the epoch with the best validation mean Dice (score callback) is kept;
training stops after `patience` epochs without improvement, at `epochs`, or before an epoch that
would not end before `deadline`.
"""
from __future__ import annotations

import importlib
import time
from typing import Callable

import numpy as np
import torch

from medviewer.ai.backends.checkpoint import BestCheckpoint, software_versions, weights_saver
from medviewer.ai.training.progress_bar import ProgressBar

AUGMENTATION = {"flip": "x (left-right) axis, p=0.5; never y or z",
                "intensity": "nonzero voxels * U(0.9, 1.1) + U(-0.1, 0.1), p=0.5"}


def _build(network: dict) -> torch.nn.Module:
    module_name, _, class_name = network["class"].rpartition(".")
    return getattr(importlib.import_module(module_name), class_name)(**network.get("args", {}))


@torch.no_grad()
def predict_labels(net: torch.nn.Module, images: np.ndarray, batch_size: int = 8) -> np.ndarray:
    """argmax labels (N, z, y, x) uint8 of normalised, padded images (N, z, y, x)."""
    net.eval()
    out = []
    for i in range(0, len(images), batch_size):
        x = torch.from_numpy(np.ascontiguousarray(images[i:i + batch_size]))[:, None]
        out.append(net(x).argmax(1).to(torch.uint8).numpy())
    return np.concatenate(out)


def _augment(x: torch.Tensor, y: torch.Tensor, rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    xs, ys = [], []
    for xi, yi in zip(x, y):
        if rng.random() < 0.5:
            xi, yi = torch.flip(xi, dims=[-1]), torch.flip(yi, dims=[-1])
        if rng.random() < 0.5:
            nz = xi != 0
            xi = torch.where(nz, xi * float(rng.uniform(0.9, 1.1)) + float(rng.uniform(-0.1, 0.1)), xi)
        xs.append(xi)
        ys.append(yi)
    return torch.stack(xs), torch.stack(ys)


def train_network(network: dict, x_train: np.ndarray, y_train: np.ndarray, x_val: np.ndarray,
                  y_val: np.ndarray, *, epochs: int, batch_size: int, lr: float, seed: int, patience: int,
                  deadline: float | None, score: Callable[[np.ndarray, np.ndarray], float],
                  checkpoint_path: str | None = None,
                  progress: Callable[[str], None] = print) -> dict:
    from monai.losses import DiceCELoss
    from monai.utils import set_determinism

    set_determinism(seed=seed)
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    net = _build(network)
    loss_fn = DiceCELoss(to_onehot_y=True, softmax=True)
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=1e-4)
    steps_per_epoch = max(1, int(np.ceil(len(x_train) / batch_size)))
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=epochs * steps_per_epoch + 1,
                                                pct_start=0.05, anneal_strategy="cos")
    xt = torch.from_numpy(np.ascontiguousarray(x_train))[:, None]
    yt = torch.from_numpy(np.ascontiguousarray(y_train).astype(np.int64))[:, None]
    best = BestCheckpoint(patience, checkpoint_path)
    epochs_run, stopped, last_epoch_s = 0, "max epochs", 0.0
    for epoch in range(1, epochs + 1):
        if deadline is not None and epochs_run and time.monotonic() + last_epoch_s > deadline:
            stopped = "time budget"
            break
        t0 = time.monotonic()
        net.train()
        order = rng.permutation(len(xt))
        bar = ProgressBar(int(np.ceil(len(order) / batch_size)), f"epoch {epoch}/{epochs}")
        total, n = 0.0, 0
        for i in range(0, len(order), batch_size):
            idx = torch.from_numpy(order[i:i + batch_size])
            if len(idx) < 2 and n:  # BatchNorm needs 2 samples
                continue
            xb, yb = _augment(xt[idx], yt[idx], rng)
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(net(xb), yb)
            loss.backward()
            opt.step()
            sched.step()
            total += float(loss.detach()) * len(idx)
            n += len(idx)
            bar.update(1, f"loss {total / n:.4f}")
        bar.close()
        pred = predict_labels(net, x_val)
        s = score(pred, y_val)
        epochs_run = epoch
        last_epoch_s = time.monotonic() - t0
        better = best.update(net, s, pred, epoch)
        progress(f"epoch {epoch}/{epochs}: loss {total / max(n, 1):.4f}, val mean Dice {s:.4f}, "
                 f"{last_epoch_s:.1f} s" + (" *best" if better else ""))
        if best.exhausted:
            stopped = f"early stop (no better validation mean Dice in {patience} epochs)"
            break
    best.restore(net, lambda: predict_labels(net, x_val))
    progress(f"stopped: {stopped}; best epoch {best.epoch} (val mean Dice {best.score:.4f})")
    return {"save": weights_saver(net), "val_pred": best.output, "epochs_run": epochs_run,
            "best_epoch": best.epoch, "stopped": stopped, "augmentation": AUGMENTATION,
            "software": software_versions()}
