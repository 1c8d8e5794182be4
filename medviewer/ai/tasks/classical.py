"""Classification with a classical (scikit-learn) model on radiomics features of the whole image
or of an ROI (ai.classical; CPU only, torch is never imported).

    ClassicalClassification(spec, mask=None)(volume, progress=progress, cancel=cancel)
        -> ClassificationResult

pre: the model's features (ai.classical.feature_row); predict: the pipeline's predict_proba;
post: the decision (the manifest's threshold when it has one, ai.tasks.decision).
"""
from __future__ import annotations

import numpy as np

from medviewer.ai.tasks.base import InferTask, Run
from medviewer.ai.tasks.decision import classification_result
from medviewer.ai.tasks.results import ClassificationResult


class ClassicalClassification(InferTask):
    kind, title = "classification", "classification"
    torch, framework = False, "scikit-learn"

    def pre(self, run: Run) -> np.ndarray:
        from medviewer.ai.classical import feature_row

        run.say(f"radiomics features for {self.spec.name}", 0.1)
        return feature_row(self.spec, run.volume.data, run.volume.spacing, self.options.get("mask"))

    def predict(self, run: Run, row: np.ndarray, device: str, window) -> np.ndarray:
        from medviewer.ai.backends.sklearn_io import load

        return load(self.spec).predict_proba(row[np.newaxis])[0]

    def post(self, run: Run, probs: np.ndarray) -> ClassificationResult:
        return classification_result(self.spec, probs)
