"""What both training loops share about time: the epochs a time budget allows, a cosine learning
rate over the planned steps (re-planned after every epoch from its measured time, so the decay
ends when the budget does even on a machine that slows down), the resumable state
written after every epoch, and the per-epoch seeds that make a resumed run the same as an
uninterrupted one."""
from __future__ import annotations

import math
import os
import time
from pathlib import Path

import torch

from medviewer.core.tempfiles import write_path_atomically

LAST = os.path.join("checkpoints", "last.pt")


class Budget:
    """A hard time budget: `minutes` for the whole run, from `started` (time.monotonic()).

    reserve_s is kept for what follows the loop (final evaluation, writing the model); the loop
    stops before an epoch that would not end before that, or mid-epoch when it is reached."""

    def __init__(self, started: float, minutes: float | None, reserve_s: float = 0.0):
        self.started, self.minutes, self.reserve_s = started, minutes, reserve_s

    @property
    def deadline(self) -> float | None:
        return None if self.minutes is None else self.started + 60.0 * self.minutes - self.reserve_s

    def left(self) -> float:
        return math.inf if self.deadline is None else self.deadline - time.monotonic()

    def epochs_that_fit(self, epoch_s: float, done: int, wanted: int) -> int:
        """How many epochs in all (done + more) end before the deadline, at epoch_s each."""
        if self.deadline is None or epoch_s <= 0:
            return wanted
        return max(done, min(wanted, done + int(self.left() // epoch_s)))


def eta_text(epochs_left: int, epoch_s: float, budget: Budget) -> str:
    """The time the run still needs (the epochs left, then the final evaluation), as m:ss."""
    s = max(0.0, epochs_left * epoch_s + budget.reserve_s)
    return f"{int(s // 60)}:{int(s % 60):02d}"


class CosineSchedule:
    """Linear warm-up then cosine decay to 1% over `total` steps; `replan(total)` stretches or
    shrinks the decay from the current step (used when the budget allows fewer epochs)."""

    def __init__(self, optimiser: torch.optim.Optimizer, lr: float, total: int, warmup: int):
        self.opt, self.lr, self.total, self.warmup, self.step_n = optimiser, lr, max(total, 1), warmup, 0
        self._apply()

    def _apply(self) -> None:
        s = self.step_n
        if s < self.warmup:
            f = (s + 1) / self.warmup
        else:
            span = max(self.total - self.warmup, 1)
            f = 0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * min((s - self.warmup) / span, 1.0)))
        for g in self.opt.param_groups:
            g["lr"] = self.lr * f

    def step(self) -> None:
        self.step_n += 1
        self._apply()

    def replan(self, total: int) -> None:
        self.total = max(int(total), self.step_n + 1)
        self._apply()


def save_last(path: str | os.PathLike, state: dict) -> None:
    """The resumable state (network, optimiser, schedule, epoch, best so far) after an epoch."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    write_path_atomically(str(path), lambda tmp: torch.save(state, tmp), suffix=".pt")


def load_last(path: str | os.PathLike) -> dict | None:
    if not Path(path).is_file():
        return None
    return torch.load(str(path), map_location="cpu", weights_only=True)


def seed_epoch(seed: int, epoch: int) -> int:
    """The seed of one epoch's shuffling and augmentation, so resuming at epoch k draws what an
    uninterrupted run would have drawn."""
    s = (int(seed) * 1_000_003 + int(epoch)) % (2 ** 31 - 1)
    torch.manual_seed(s)
    return s


def save_epoch(path: str | os.PathLike, net, opt, sched: CosineSchedule, best, *, planned: int, epoch: int,
               epoch_s: float, elapsed_s: float) -> None:
    """save_last of a training loop's state after `epoch` (best: a backends.checkpoint.BestCheckpoint)."""
    save_last(path, {"net": net.state_dict(), "opt": opt.state_dict(), "step": sched.step_n, "planned": planned,
                     "epoch": epoch, "best_score": best.score, "best_epoch": best.epoch, "since": best.since,
                     "best_net": best.state, "epoch_s": epoch_s, "elapsed_s": elapsed_s})


def resume_from(path: str | os.PathLike | None, net, opt, sched: CosineSchedule, best, steps_per_epoch: int, *,
                epochs: int, score_name: str, progress) -> dict:
    """Where a training loop starts: {"epoch" (the last epoch done), "planned", "epoch_s" (that
    epoch's seconds), "elapsed_s" (the earlier runs' seconds), "resumed" (the epoch resumed after,
    or None)}. With a state save_epoch wrote at `path`, it is loaded into net, opt, sched and best
    and the resume is reported; with none (or path None: no resume asked), a fresh start."""
    state = load_last(path) if path else None
    if state is None:
        return {"epoch": 0, "planned": epochs, "epoch_s": 0.0, "elapsed_s": 0.0, "resumed": None}
    net.load_state_dict(state["net"])
    opt.load_state_dict(state["opt"])
    sched.step_n = int(state["step"])
    sched.replan(int(state["planned"]) * steps_per_epoch)
    best.score, best.epoch, best.since = float(state["best_score"]), int(state["best_epoch"]), int(state["since"])
    best.state = state["best_net"]
    epoch = int(state["epoch"])
    progress(f"resumed after epoch {epoch} (best epoch {best.epoch}, {score_name} {best.score:.4f})")
    return {"epoch": epoch, "planned": int(state["planned"]), "epoch_s": float(state["epoch_s"]),
            "elapsed_s": float(state.get("elapsed_s", 0.0)), "resumed": epoch}


def replan(budget: Budget, sched: CosineSchedule, planned: int, *, epoch_s: float, done: int, wanted: int,
           steps_per_epoch: int, progress) -> int:
    """After an epoch: the epochs the budget now allows (the schedule re-planned when that changed)."""
    if budget.deadline is None:
        return planned
    now_planned = budget.epochs_that_fit(epoch_s, done, wanted)
    if now_planned != planned:
        sched.replan(now_planned * steps_per_epoch)
        progress(f"time budget: {now_planned} epochs planned at {epoch_s:.0f} s each")
    return now_planned
