"""The torch/MONAI half of medviewer.ai.training.classification: the training loop.

Data arrive as numpy arrays of grey images in [0, 1] (burned-in text already masked); augmentation
(MONAI RandAffine: rotation, zoom and shift, no flip - chest X-rays have a left and a right;
RandAdjustContrast; RandGaussianNoise) is applied per image, then the per-image z-score that
inference also applies. The loss is class-weighted cross-entropy; the epoch with the best
validation ROC AUC is kept. Training stops after `patience` epochs without improvement, at
`epochs`, or at the time budget: after every epoch the number of epochs that fit is re-planned
and the cosine learning rate decays over it, so a budgeted run still ends annealed. After every
epoch the resumable state is written (checkpoints/last.pt); each epoch's shuffle and augmentation
come from seed_epoch(seed, epoch), so a resumed run continues as the uninterrupted one would.
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
from medviewer.ai.metrics import roc_auc
from medviewer.ai.training.progress_bar import ProgressBar

AUGMENTATION = [
    {"class": "monai.transforms.RandAffine",
     "args": {"prob": 0.9, "rotate_range": [0.2], "scale_range": [0.15, 0.15], "translate_range": [12, 12],
              "padding_mode": "border"}},
    {"class": "monai.transforms.RandAdjustContrast", "args": {"prob": 0.5, "gamma": [0.7, 1.5]}},
    {"class": "monai.transforms.RandGaussianNoise", "args": {"prob": 0.3, "mean": 0.0, "std": 0.02}},
]


def build(network: dict) -> torch.nn.Module:
    module_name, _, class_name = network["class"].rpartition(".")
    return getattr(importlib.import_module(module_name), class_name)(**network.get("args", {}))


def _zscore(x: torch.Tensor) -> torch.Tensor:
    flat = x.flatten(1)
    mean = flat.mean(1).view(-1, 1, 1, 1)
    std = flat.std(1, unbiased=False).clamp_min(1e-6).view(-1, 1, 1, 1)
    return (x - mean) / std


@torch.no_grad()
def predict_logits(net: torch.nn.Module, images: np.ndarray, batch_size: int = 64) -> np.ndarray:
    """Logits (N, n_classes) of [0, 1] images (N, H, W)."""
    net.eval()
    out = []
    for i in range(0, len(images), batch_size):
        x = torch.from_numpy(np.ascontiguousarray(images[i:i + batch_size]))[:, None]
        out.append(net(_zscore(x)).double().numpy())
    return np.concatenate(out) if out else np.zeros((0, 2))


@torch.no_grad()
def penultimate_features(net: torch.nn.Module, images: np.ndarray, batch_size: int = 64) -> np.ndarray:
    """The pooled features the last linear layer sees (N, d): what the out-of-distribution score uses."""
    net.eval()
    fc, net.fc = net.fc, torch.nn.Identity()
    try:
        out = [net(_zscore(torch.from_numpy(np.ascontiguousarray(images[i:i + batch_size]))[:, None])).double().numpy()
               for i in range(0, len(images), batch_size)]
    finally:
        net.fc = fc
    return np.concatenate(out)


def _augmenter(seed: int):
    from monai.transforms import Compose, RandAdjustContrast, RandAffine, RandGaussianNoise

    kinds = {"RandAffine": RandAffine, "RandAdjustContrast": RandAdjustContrast, "RandGaussianNoise": RandGaussianNoise}
    chain = Compose([kinds[a["class"].rsplit(".", 1)[1]](**a["args"]) for a in AUGMENTATION])
    chain.set_random_state(seed=seed)
    return chain


def train_network(network: dict, x_train: np.ndarray, y_train: np.ndarray, x_val: np.ndarray,
                  y_val: np.ndarray, *, n_classes: int, epochs: int, batch_size: int, lr: float, seed: int,
                  patience: int, budget: Budget, checkpoint_path: str | None = None,
                  last_path: str | None = None, resume: bool = False,
                  progress: Callable[[str], None] = print) -> dict:
    from monai.utils import set_determinism

    set_determinism(seed=seed)
    torch.manual_seed(seed)
    net = build(network)
    counts = np.bincount(y_train, minlength=n_classes).astype(np.float64)
    weights = counts.sum() / (n_classes * np.maximum(counts, 1))
    loss_fn = torch.nn.CrossEntropyLoss(weight=torch.tensor(weights, dtype=torch.float32))
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=1e-4)
    steps_per_epoch = max(1, int(np.ceil(len(x_train) / batch_size)))
    sched = CosineSchedule(opt, lr, epochs * steps_per_epoch, warmup=max(1, steps_per_epoch // 2))
    positive = n_classes - 1
    best = BestCheckpoint(patience, checkpoint_path)
    seen, train_s = 0, 0.0
    start = resume_from(last_path if resume else None, net, opt, sched, best, steps_per_epoch, epochs=epochs,
                        score_name="val AUC", progress=progress)
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
        order = np.random.default_rng(s).permutation(len(x_train))
        augment = _augmenter(s)
        bar = ProgressBar(steps_per_epoch, f"epoch {epoch}/{planned}")
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
            if budget.left() <= 0:
                cut = True
                break
        bar.close()
        train_s += time.monotonic() - t0
        seen += n
        if cut and epochs_run:
            stopped = "time budget (mid-epoch, partial epoch discarded)"
            break
        logits = predict_logits(net, x_val)
        prob = torch.softmax(torch.from_numpy(logits), 1).numpy()
        auc = roc_auc(y_val == positive, prob[:, positive])
        acc = float((prob.argmax(1) == y_val).mean())
        epochs_run = epoch
        last_epoch_s = time.monotonic() - t0
        # re-planned after every epoch: the machine may get slower or faster
        planned = replan(budget, sched, planned, epoch_s=last_epoch_s, done=epoch, wanted=epochs,
                         steps_per_epoch=steps_per_epoch, progress=progress)
        better = best.update(net, auc, logits, epoch)
        if last_path:
            save_epoch(last_path, net, opt, sched, best, planned=planned, epoch=epoch, epoch_s=last_epoch_s,
                       elapsed_s=before_s + time.monotonic() - budget.started)
        progress(f"epoch {epoch}/{planned}: loss {total / max(n, 1):.4f}, val AUC {auc:.4f}, val acc {acc:.4f}, "
                 f"{n / max(last_epoch_s, 1e-9):.0f} img/s, {last_epoch_s:.0f} s, "
                 f"ETA {eta_text(planned - epoch, last_epoch_s, budget)}"
                 + (" *best" if better else ""))
        if cut:  # the budget ended inside the first epoch: the partly trained network is all there is
            stopped = "time budget (within the first epoch, kept)"
            break
        if best.exhausted:
            stopped = f"early stop (no better validation AUC in {patience} epochs)"
            break
    best.restore(net, lambda: predict_logits(net, x_val))
    progress(f"stopped: {stopped}; best epoch {best.epoch} (val AUC {best.score:.4f})")
    return {"net": net, "save": weights_saver(net), "epochs_run": epochs_run, "best_epoch": best.epoch,
            "stopped": stopped, "planned_epochs": planned, "resumed_after_epoch": resumed_from,
            "seconds_before_resume": round(before_s, 1),
            "class_weights": [round(float(w), 4) for w in weights],
            "images_per_second": round(seen / train_s, 1) if train_s else None,
            "augmentation": AUGMENTATION, "software": software_versions()}

