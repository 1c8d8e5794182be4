"""A classifier's ONNX export run by ONNX Runtime on the CPU: the first result of a one-image
`medviewer infer` without importing torch (about 2.5 s of a 3 s budget on this machine).

    onnx_classifier(spec) -> OnnxClassifier | None
        the built-in model's current ONNX export (ai.backends.export_records: recorded in the
        manifest, made from the weights and network declared now, written by
        ai.backends.export.export_onnx and checked equal to the eager network to 1e-5), or None:
        onnxruntime not installed, no current export, not a built-in model. Cached per folder
        (reloaded when the file changes).
    OnnxClassifier.logits_and_features(batch (N, 1, H, W) float32) -> (logits (N, C), features (N, F))
    set_threads(n): intra-op threads of the sessions made after (the GUI's worker leaves a core free).

torch-free: the caller falls back to the torch network when this gives None.
"""
from __future__ import annotations

import importlib.util

import numpy as np

from medviewer.ai.backends.export_records import exported_path
from medviewer.ai.registry import ModelSpec
from medviewer.core.errors import MedViewerError
from medviewer.io.messages import library_reason

_sessions: dict[str, tuple[float, int, "OnnxClassifier"]] = {}
_threads = [0]  # 0: ONNX Runtime's default (one per core)


def set_threads(n: int | None) -> None:
    _threads[0] = max(0, int(n or 0))


def available() -> bool:
    return importlib.util.find_spec("onnxruntime") is not None


class OnnxClassifier:
    def __init__(self, path, threads: int):
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.log_severity_level = 3  # errors only: no warnings on the user's terminal
        try:
            self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # noqa: BLE001 - a broken file is one line, never a traceback
            raise MedViewerError(f"{path}: ONNX Runtime cannot load it: {library_reason(exc)}") from None
        self.input = self.session.get_inputs()[0].name
        self.outputs = [o.name for o in self.session.get_outputs()]

    def logits_and_features(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        logits, features = self.session.run(self.outputs[:2], {self.input: np.ascontiguousarray(batch, np.float32)})
        return np.asarray(logits, np.float32), np.asarray(features, np.float32).reshape(len(batch), -1)


def onnx_classifier(spec: ModelSpec) -> OnnxClassifier | None:
    if spec.task != "classification" or not available():
        return None
    path = exported_path(spec, "onnx")
    if path is None:
        return None
    key, mtime = str(path), path.stat().st_mtime
    cached = _sessions.get(key)
    if cached is None or cached[0] != mtime or cached[1] != _threads[0]:
        _sessions[key] = (mtime, _threads[0], OnnxClassifier(path, _threads[0]))
    return _sessions[key][2]
