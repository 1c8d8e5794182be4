"""Classification with a torch network (the pneumonia CNN and user-made MONAI classifiers).

    Classification(spec, tta=TTA_VARIANTS)(volume, device, progress, cancel) -> ClassificationResult

pre: the X-ray as the network was trained on it (classifier_input: grey, resized to input.size,
  [0, 1]; burned-in text masked when the manifest has input.text_mask; z-scored per image), plus
  `tta` perturbed variants of it (ai.tasks.trust.xray_variants; 0 = none);
predict: one batch through the network; with an `ood` block in the manifest, the pooled features
  the last layer (net.fc) sees come with the logits from the same pass
  (on the CPU the model's ONNX export under ONNX Runtime when it has a current one,
  ai.backends.onnx_runtime, so torch is not imported; else ai.backends.torch_loader.logits_and_features:
  eager network or TorchScript export);
post: calibrated probabilities (manifest calibration.temperature), the decision at the manifest's
  threshold, the interval over the variants and the "uncertain" flag (ai.tasks.decision), and the
  out-of-distribution distance and flag (ai.tasks.trust.OODReference).
"""
from __future__ import annotations

import numpy as np

from medviewer.ai.metrics import softmax
from medviewer.ai.preprocess import mask_burned_in_text, to_unit_grey, zscore
from medviewer.ai.tasks.base import InferTask, Run
from medviewer.ai.tasks.decision import classification_result, temperature_of
from medviewer.ai.tasks.results import ClassificationResult
from medviewer.ai.tasks.trust import TTA_VARIANTS, OODReference, xray_variants


def input_size(spec) -> int:
    return int(spec.input.get("size", [128, 128])[0])


def unit_picture(spec, data: np.ndarray) -> np.ndarray:
    """(H, W) [0, 1] grey picture at the network's size, burned-in text masked when the manifest
    says the model was trained so (input.text_mask; older manifests: not masked)."""
    unit = to_unit_grey(data, input_size(spec))
    text_mask = spec.input.get("text_mask")
    if isinstance(text_mask, dict):
        keys = ("bright_min", "tophat_min", "background_max", "footprint")
        unit = mask_burned_in_text(unit, **{k: text_mask[k] for k in keys if k in text_mask})
    return unit


def classifier_input(spec, data: np.ndarray) -> np.ndarray:
    """(1, H, W) float32: what the network is given (ai.preprocess.preprocess_xray for a model with
    input.text_mask, preprocess_image for the others)."""
    return zscore(unit_picture(spec, data))[np.newaxis]


class Classification(InferTask):
    kind, title = "classification", "classification"

    def pre(self, run: Run) -> np.ndarray:
        unit = unit_picture(self.spec, run.volume.data)
        n = int(self.options.get("tta", TTA_VARIANTS))
        pictures = [unit] + (xray_variants(unit, n) if n > 0 else [])
        run.say(f"classifying with {self.spec.name}" + (f" (+{n} test-time variants)" if n else ""), 0.1)
        return np.stack([zscore(p) for p in pictures])[:, np.newaxis]

    def predict(self, run: Run, batch: np.ndarray, device: str, window):
        want = OODReference.of(self.spec) is not None
        if device == "cpu":  # the ONNX export under ONNX Runtime when there is one: no torch import
            from medviewer.ai.backends.onnx_runtime import onnx_classifier

            with run.timed("load"):
                onnx = onnx_classifier(self.spec)
            if onnx is not None:
                logits, features = onnx.logits_and_features(batch)
                return logits, features if want else None
        import torch

        from medviewer.ai.backends.torch_loader import logits_and_features

        net = self.network(run, device)
        with torch.inference_mode():
            x = torch.from_numpy(batch).to(device)
            with torch.autocast(device_type="cuda", enabled=device.startswith("cuda")):
                logits, features = logits_and_features(net, x) if want else (net(x), None)
        return logits.float().cpu().numpy(), None if features is None else features.float().flatten(1).cpu().numpy()

    def post(self, run: Run, out) -> ClassificationResult:
        logits, features = out
        t = temperature_of(self.spec)
        result = classification_result(self.spec, softmax(logits, t), softmax(logits[:1])[0], t)
        reference = OODReference.of(self.spec)
        if reference is not None:
            result.ood_distance = reference.distance(features[0])
            result.ood_threshold = reference.threshold
            result.out_of_distribution = result.ood_distance > reference.threshold
        return result

