"""Explanation maps (Grad-CAM, occlusion) as an inference task; the maps themselves are computed
by ai.explain (classifier_map, segmentation_map, classical_map).

    Explanation(spec, method="gradcam" | "occlusion", target=None)(volume, device, progress, cancel)
        -> ExplanationResult (map, method, target, probability, note)

check: the method exists and fits the model (Grad-CAM needs a CNN classifier; a classical model is
explained by occlusion of the whole image); predict: the map (cancel checked between occlusion
batches); timings: the template's stages, plus "explain" (the map computation itself).
"""
from __future__ import annotations

from medviewer.ai.inference import IncompatibleInput
from medviewer.ai.tasks.base import InferTask, Run
from medviewer.ai.tasks.results import ExplanationResult
from medviewer.core.errors import MedViewerError

METHODS = ("gradcam", "occlusion")
TITLES = {"gradcam": "Grad-CAM", "occlusion": "occlusion"}


class Explanation(InferTask):
    framework = None

    def __init__(self, spec, method: str, target: str | None = None, **options):
        if method not in METHODS:
            raise MedViewerError(f"unknown explanation method {method!r}; use {' or '.join(METHODS)}")
        super().__init__(spec, **options)
        self.method, self.target, self.title = method, target, TITLES[method]
        self.classical = spec.manifest.get("framework") == "scikit-learn"
        self.torch = not self.classical

    def check(self, volume) -> None:
        super().check(volume)
        spec = self.spec
        if self.method == "gradcam" and (spec.task != "classification" or self.classical):
            kind = "classical (radiomics)" if self.classical else spec.task
            raise IncompatibleInput(f"Grad-CAM explains CNN classifiers; {spec.name} is a {kind} model "
                                    "(use occlusion)")
        if spec.task not in ("classification", "segmentation"):
            raise IncompatibleInput(f"{spec.name}: no explanation for {spec.task} models")

    def predict(self, run: Run, data, device: str, window) -> dict:
        from medviewer.ai import explain

        inner: dict[str, float] = {}
        if self.classical:
            out = explain.classical_map(self.spec, run.volume, run.report, run.cancel, self.target)
            inner = out.get("timings", {})
        else:
            net = self.network(run, device, eager=True)  # Grad-CAM hooks into the module's layers
            if self.spec.task == "classification":
                out = explain.classifier_map(self.spec, run.volume, self.method, net, device, run.report,
                                             run.check_cancel, self.target, inner)
            else:
                out = explain.segmentation_map(self.spec, run.volume, net, device, run.report,
                                               run.check_cancel, inner)
        if "explain" in inner:
            run.timings["explain"] = inner["explain"]
        return out

    def post(self, run: Run, out: dict) -> ExplanationResult:
        return ExplanationResult(map=out["map"], method=self.method, target=out.get("target", ""),
                                 probability=out.get("probability"), note=out.get("note", ""))
