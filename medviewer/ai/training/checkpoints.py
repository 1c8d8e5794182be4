"""Where a training run keeps its best epoch while it runs (MODEL_DIR/checkpoints/best.pt).

The file is rewritten each time validation improves, so an interrupted run (Ctrl+C, a crash, a
time limit) still leaves its best weights; it is removed once model.pt and manifest.json exist.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

CHECKPOINT = os.path.join("checkpoints", "best.pt")


def discard_checkpoints(out_dir: str | os.PathLike) -> None:
    folder = Path(out_dir) / Path(CHECKPOINT).parent
    if folder.is_dir():
        shutil.rmtree(folder, ignore_errors=True)
