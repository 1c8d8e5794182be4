"""What both training loops share: keeping the best checkpoint with patience, saving weights
for torch.load(weights_only=True), and the software versions for the manifest."""
from __future__ import annotations

import copy
import os
import platform
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from medviewer.core.tempfiles import write_path_atomically


class BestCheckpoint:
    """The best-scoring state so far (higher is better) and the epochs since it improved."""

    def __init__(self, patience: int, path: str | os.PathLike | None = None):
        """With `path`, the best state is also written there each time it improves, so an
        interrupted run leaves its best epoch on disk (loadable with weights_only=True)."""
        self.patience, self.path = patience, path
        self.score, self.state, self.output, self.epoch, self.since = -1.0, None, None, 0, 0

    def update(self, net: torch.nn.Module, score: float, output: Any, epoch: int) -> bool:
        better = score > self.score
        if better:
            self.score, self.state, self.output, self.epoch = score, copy.deepcopy(net.state_dict()), output, epoch
            self.since = 0
            if self.path is not None:
                Path(self.path).parent.mkdir(parents=True, exist_ok=True)
                state = {k: v.detach().cpu().contiguous() for k, v in self.state.items()}
                write_path_atomically(str(self.path), lambda tmp: torch.save(state, tmp), suffix=".pt")
        else:
            self.since += 1
        return better

    @property
    def exhausted(self) -> bool:
        return self.since >= self.patience

    def restore(self, net: torch.nn.Module, fallback_output: Callable[[], Any]) -> None:
        """Load the best state into `net`; with no full epoch, keep the net as it is."""
        if self.state is None:
            self.output, self.state, self.epoch = fallback_output(), net.state_dict(), 0
        net.load_state_dict(self.state)


def weights_saver(net: torch.nn.Module) -> Callable[[Any], None]:
    def save(path) -> None:
        torch.save({k: v.detach().cpu().contiguous() for k, v in net.state_dict().items()}, str(path))
    return save


def software_versions() -> dict[str, Any]:
    import monai

    return {"torch": torch.__version__, "monai": monai.__version__, "numpy": np.__version__,
            "python": platform.python_version(), "threads": torch.get_num_threads()}
