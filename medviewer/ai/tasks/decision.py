"""From class probabilities to a decision, as the manifest says (numpy only).

    calibration: {"temperature": T}  -> calibrated probabilities ai.metrics.softmax(logits, T) (absent: T = 1)
    decision: {"threshold": t, "positive_class": "PNEUMONIA", "rule": "..."}
        -> the positive class when its calibrated probability >= t, else the most probable other
           class (absent: the most probable class)

classification_result(spec, probs) turns (V, C) probabilities -- row 0 the image itself, the other
rows its test-time augmentation variants -- into a ClassificationResult: the prediction from row 0,
the interval of the positive (or predicted) class over all rows, "uncertain" when the rows do not
all decide the same class.
"""
from __future__ import annotations

import numpy as np

from medviewer.ai.tasks.results import ClassificationResult
from medviewer.core.errors import MedViewerError


def temperature_of(spec) -> float:
    t = (spec.manifest.get("calibration") or {}).get("temperature", 1.0)
    try:
        t = float(t)
    except (TypeError, ValueError):
        t = float("nan")
    if not np.isfinite(t) or t <= 0:
        raise MedViewerError(f"{spec.name}: calibration temperature {t!r} is not a positive number")
    return t


def decision_of(spec) -> tuple[float | None, str | None, str]:
    """(threshold, positive class, rule) of the manifest's decision block; (None, None, rule) without one."""
    decision = spec.manifest.get("decision") or {}
    classes = spec.class_names
    if "threshold" not in decision:
        return None, None, "the most probable class (no decision threshold chosen for this model)"
    positive = decision.get("positive_class", classes[-1])
    if positive not in classes:
        raise MedViewerError(f"{spec.name}: decision.positive_class {positive!r} is not one of its classes")
    return float(decision["threshold"]), positive, str(decision.get("rule", ""))


def decide(probs: np.ndarray, classes: list[str], threshold: float | None, positive: str | None) -> np.ndarray:
    """The decided class index of each row of (V, C) probabilities."""
    probs = np.atleast_2d(probs)
    if threshold is None:
        return probs.argmax(1)
    k = classes.index(positive)
    others = probs.copy()
    others[:, k] = -np.inf
    return np.where(probs[:, k] >= threshold, k, others.argmax(1))


def classification_result(spec, probs: np.ndarray, uncalibrated: np.ndarray | None = None,
                          temperature: float = 1.0) -> ClassificationResult:
    probs = np.atleast_2d(np.asarray(probs, np.float64))
    classes = spec.class_names
    if probs.shape[1] != len(classes):
        raise MedViewerError(f"{spec.name}: the model gives {probs.shape[1]} outputs for {len(classes)} classes")
    threshold, positive, rule = decision_of(spec)
    decided = decide(probs, classes, threshold, positive)
    prediction = classes[int(decided[0])]
    result = ClassificationResult(
        probabilities={c: float(p) for c, p in zip(classes, probs[0])}, prediction=prediction,
        uncalibrated=None if uncalibrated is None else {c: float(p) for c, p in zip(classes, uncalibrated)},
        temperature=temperature, threshold=threshold, positive_class=positive, rule=rule)
    if len(probs) > 1:
        shown = positive or prediction
        column = probs[:, classes.index(shown)]
        result.interval = (float(column.min()), float(column.max()))
        result.interval_class = shown
        result.tta_variants = len(probs) - 1
        result.uncertain = bool(len(set(decided.tolist())) > 1)
    return result
