"""Anomaly maps of an X-ray by a detector fitted on normal images (ai.anomaly; CPU only).

    AnomalyMap(spec)(volume, progress=progress, cancel=cancel) -> AnomalyResult (map, score)

pre: the 128x128 z-scored picture; predict: the patch scores as percentiles among the normal
training patches at the same position; post: the map resized onto the image's pixels, and the
image-level score (mean of the top 5% of the map).
"""
from __future__ import annotations

import numpy as np

from medviewer.ai.tasks.base import InferTask, Run
from medviewer.ai.tasks.results import AnomalyResult


class AnomalyMap(InferTask):
    kind, title = "anomaly", "anomaly map"
    torch, framework = False, None

    def pre(self, run: Run) -> np.ndarray:
        from medviewer.ai.anomaly import picture_of

        return picture_of(run.volume.data)

    def predict(self, run: Run, picture: np.ndarray, device: str, window) -> np.ndarray:
        from medviewer.ai.anomaly import patch_map
        from medviewer.ai.backends.sklearn_io import load

        with run.timed("load"):
            bundle = load(self.spec)
        run.say(f"scoring patches with {self.spec.name}", 0.2)
        run.check_cancel()
        return patch_map(bundle["model"], np.asarray(bundle["training_scores"], np.float32), picture)

    def post(self, run: Run, small: np.ndarray) -> AnomalyResult:
        from medviewer.ai.anomaly import image_score
        from medviewer.ai.explain import _resize_2d

        full = np.clip(_resize_2d(small, run.volume.shape[1:3]), 0, 1)[np.newaxis]
        return AnomalyResult(map=run.volume.copy_geometry(full.astype(np.float32)), score=image_score(small))

