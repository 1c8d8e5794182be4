"""The torch/MONAI half of medviewer.ai.training.classification: the training loop.

Data arrive as numpy arrays of grey images in [0, 1]; augmentation (MONAI RandAffine: small
rotation and zoom, no flip - chest X-rays have a left and a right) is applied per image, then the
per-image z-score that inference also applies. The loss is class-weighted cross-entropy; the
epoch with the best validation ROC AUC is kept, and training stops after `patience` epochs
without improvement, at `epochs`, or before an epoch that would not end before `deadline`.
"""
from __future__ import annotations

import importlib
import time
from typing import Callable

import numpy as np
import torch

from medviewer.ai.backends.checkpoint import BestCheckpoint, software_versions, weights_saver
from medviewer.ai.training.progress_bar import ProgressBar

from medviewer.ai.training.classification import roc_auc

AUGMENTATION = {"class": "monai.transforms.RandAffine",
                "args": {"prob": 0.8, "rotate_range": [0.15], "scale_range": [0.1, 0.1],
                         "translate_range": [4, 4], "padding_mode": "border"}}


def _build(network: dict) -> torch.nn.Module:
    module_name, _, class_name = network["class"].rpartition(".")
    return getattr(importlib.import_module(module_name), class_name)(**network.get("args", {}))


def _zscore(x: torch.Tensor) -> torch.Tensor:
    flat = x.flatten(1)
    mean = flat.mean(1).view(-1, 1, 1, 1)
    std = flat.std(1, unbiased=False).clamp_min(1e-6).view(-1, 1, 1, 1)
    return (x - mean) / std


@torch.no_grad()
def predict(net: torch.nn.Module, images: np.ndarray, batch_size: int = 128) -> np.ndarray:
    """Softmax probabilities (N, n_classes) of [0, 1] images (N, H, W)."""
    net.eval()
    out = []
    for i in range(0, len(images), batch_size):
        x = torch.from_numpy(np.ascontiguousarray(images[i:i + batch_size]))[:, None]
        out.append(torch.softmax(net(_zscore(x)), dim=1).numpy())
    return np.concatenate(out) if out else np.zeros((0, 2), np.float32)


def train_network(network: dict, x_train: np.ndarray, y_train: np.ndarray, x_val: np.ndarray,
                  y_val: np.ndarray, *, n_classes: int, epochs: int, batch_size: int, lr: float, seed: int,
                  patience: int, deadline: float | None, checkpoint_path: str | None = None,
                  progress: Callable[[str], None] = print) -> dict:
    from monai.transforms import RandAffine
    from monai.utils import set_determinism

    set_determinism(seed=seed)
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    net = _build(network)
    augment = RandAffine(**AUGMENTATION["args"])
    augment.set_random_state(seed=seed)
    counts = np.bincount(y_train, minlength=n_classes).astype(np.float64)
    weights = counts.sum() / (n_classes * np.maximum(counts, 1))
    loss_fn = torch.nn.CrossEntropyLoss(weight=torch.tensor(weights, dtype=torch.float32))
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=1e-4)
    steps_per_epoch = max(1, int(np.ceil(len(x_train) / batch_size)))
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=epochs * steps_per_epoch,
                                                pct_start=0.1, anneal_strategy="cos")
    positive = n_classes - 1
    best = BestCheckpoint(patience, checkpoint_path)
    epochs_run, stopped = 0, "max epochs"
    last_epoch_s, seen, train_s = 0.0, 0, 0.0
    for epoch in range(1, epochs + 1):
        if deadline is not None and epochs_run and time.monotonic() + last_epoch_s > deadline:
            stopped = "time budget"
            break
        t0 = time.monotonic()
        net.train()
        order = rng.permutation(len(x_train))
        bar = ProgressBar(int(np.ceil(len(order) / batch_size)), f"epoch {epoch}/{epochs}")
        total, n, cut = 0.0, 0, False
        for i in range(0, len(order), batch_size):
            idx = order[i:i + batch_size]
            if len(idx) < 2 and n:  # BatchNorm needs 2 samples
                continue
            batch = torch.stack([torch.as_tensor(augment(torch.from_numpy(x_train[j][None])))
                                 for j in idx]).float()
            target = torch.from_numpy(y_train[idx])
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(net(_zscore(batch)), target)
            loss.backward()
            opt.step()
            sched.step()
            total += float(loss.detach()) * len(idx)
            n += len(idx)
            bar.update(1, f"loss {total / n:.4f}")
            if deadline is not None and epochs_run and time.monotonic() > deadline:
                cut = True
                break
        bar.close()
        train_s += time.monotonic() - t0
        seen += n
        if cut:
            stopped = "time budget (mid-epoch, partial epoch discarded)"
            break
        prob = predict(net, x_val)
        auc = roc_auc(y_val == positive, prob[:, positive])
        acc = float((prob.argmax(1) == y_val).mean())
        epochs_run = epoch
        last_epoch_s = time.monotonic() - t0
        better = best.update(net, auc, prob, epoch)
        progress(f"epoch {epoch}/{epochs}: loss {total / max(n, 1):.4f}, val AUC {auc:.4f}, val acc {acc:.4f}, "
                 f"{n / max(last_epoch_s, 1e-9):.0f} img/s, {last_epoch_s:.0f} s" + (" *best" if better else ""))
        if best.exhausted:
            stopped = f"early stop (no better validation AUC in {patience} epochs)"
            break
    best.restore(net, lambda: predict(net, x_val))
    progress(f"stopped: {stopped}; best epoch {best.epoch} (val AUC {best.score:.4f})")
    return {"save": weights_saver(net), "val_prob": best.output, "epochs_run": epochs_run, "best_epoch": best.epoch,
            "stopped": stopped, "class_weights": [round(float(w), 4) for w in weights],
            "images_per_second": round(seen / train_s, 1) if train_s else None,
            "augmentation": AUGMENTATION,
            "software": software_versions()}
