"""What an inference task returns: typed results (numpy and core.Volume only, no torch).

Every result carries the device it ran on and its per-stage timings (seconds: load, pre, predict,
invert, post, ...). The GUI, the command line and the evaluation read these fields; record()
gives the JSON the command line prints.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from medviewer.core.volume import Volume


@dataclass(kw_only=True)
class Result:
    device: str = "cpu"
    timings: dict[str, float] = field(default_factory=dict)


@dataclass(kw_only=True)
class ClassificationResult(Result):
    """probabilities: calibrated (softmax(logits / temperature); a classical model's own
    probabilities). prediction: the positive class when its probability >= threshold (models with a
    decision), else the most probable class. interval: the lowest and highest probability of
    `interval_class` over the test-time augmentation variants (None without TTA); uncertain: the
    variants do not all give the same prediction (for a binary model with a threshold: the interval
    contains it). ood_distance: Mahalanobis distance of the network's pooled features to the
    training images' (None without an OOD model); out_of_distribution: above ood_threshold."""
    probabilities: dict[str, float]
    prediction: str
    uncalibrated: dict[str, float] | None = None
    temperature: float = 1.0
    threshold: float | None = None
    positive_class: str | None = None
    rule: str = ""
    interval: tuple[float, float] | None = None
    interval_class: str | None = None
    tta_variants: int = 0
    uncertain: bool = False
    ood_distance: float | None = None
    ood_threshold: float | None = None
    out_of_distribution: bool = False

    @property
    def probability(self) -> float:
        """The calibrated probability of the predicted class."""
        return self.probabilities[self.prediction]

    def flags(self) -> list[str]:
        """The warnings about this prediction, in words (empty when there is nothing to say)."""
        out = []
        if self.uncertain:
            where = f"the threshold {self.threshold:.3f}" if self.threshold is not None else "the decision"
            out.append(f"uncertain: small shifts, zooms and contrast changes of the image move the "
                       f"probability across {where}")
        if self.out_of_distribution:
            out.append(f"out of distribution: this image is unlike the training images (feature distance "
                       f"{self.ood_distance:.1f} > {self.ood_threshold:.1f}); do not trust the prediction")
        return out

    def record(self) -> dict:
        rec: dict = {"probabilities": {k: round(v, 6) for k, v in self.probabilities.items()},
                     "prediction": self.prediction}
        if self.threshold is not None:
            rec["threshold"] = self.threshold
        if self.interval is not None:
            rec["interval"] = {"class": self.interval_class, "low": round(self.interval[0], 6),
                               "high": round(self.interval[1], 6)}
            rec["uncertain"] = self.uncertain
        if self.ood_distance is not None:
            rec["ood_distance"] = round(self.ood_distance, 4)
            rec["out_of_distribution"] = self.out_of_distribution
        return rec


@dataclass(kw_only=True)
class SegmentationResult(Result):
    """labels: uint8 on the input's grid; probabilities: the highest foreground probability per
    voxel; uncertainty: the entropy of the mean class probabilities (over the test-time mirror
    variants when the model has them), divided by log(classes): 0 = certain, 1 = all classes equal.
    tta: the augmentations averaged ("x mirror"), empty without."""
    labels: Volume
    probabilities: Volume
    uncertainty: Volume
    tta: tuple[str, ...] = ()


@dataclass(kw_only=True)
class MapResult(Result):
    """A float map in [0, 1] on the input's grid."""
    map: Volume


@dataclass(kw_only=True)
class AnomalyResult(MapResult):
    score: float


@dataclass(kw_only=True)
class ExplanationResult(MapResult):
    """method: gradcam or occlusion; target: the class (or "foreground") explained; probability:
    the model's probability of it (classifiers); note: why a map is empty, when it is."""
    method: str
    target: str
    probability: float | None = None
    note: str = ""
