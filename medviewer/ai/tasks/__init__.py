"""Inference tasks: one template (base.InferTask: check -> pre -> predict -> invert -> post, timed,
cancellable, device choice and out-of-memory fallback), one subclass per kind of run, typed
results (results.py). torch, MONAI and scikit-learn are imported only when a task runs, and
nothing here imports ai.training.

    make_task("classify" | "segment" | "gradcam" | "occlusion" | "anomaly", spec, **options)
        -> a task; task(volume, device=None, progress=None, cancel=None) -> Result
"""
from __future__ import annotations

from medviewer.core.errors import MedViewerError

TASKS = ("classify", "segment", "gradcam", "occlusion", "anomaly")


def make_task(name: str, spec, **options):
    """The task that runs `name` with this model (the classical or the torch classifier by the
    manifest's framework). Options: mask (ROI classifiers), target (explanations), tta (number of
    test-time variants of a torch classifier)."""
    if name == "classify":
        if spec.manifest.get("framework") == "scikit-learn":
            from medviewer.ai.tasks.classical import ClassicalClassification

            return ClassicalClassification(spec, mask=options.get("mask"))
        from medviewer.ai.tasks.classification import Classification

        return Classification(spec, **{k: v for k, v in options.items() if k == "tta"})
    if name == "segment":
        from medviewer.ai.tasks.segmentation import Segmentation

        return Segmentation(spec)
    if name in ("gradcam", "occlusion"):
        from medviewer.ai.tasks.explanation import Explanation

        return Explanation(spec, name, target=options.get("target"))
    if name == "anomaly":
        from medviewer.ai.tasks.anomaly import AnomalyMap

        return AnomalyMap(spec)
    raise MedViewerError(f"unknown task {name!r}; use one of {', '.join(TASKS)}")
