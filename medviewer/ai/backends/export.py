"""Exports of a model folder's network: TorchScript, so that inference needs torch but not MONAI,
and ONNX for classifiers, so that a CPU classification needs neither (ai.backends.onnx_runtime).

    export_torchscript(folder) -> Path
        writes model.ts beside the weights: the manifest's MONAI network with its verified weights,
        compiled with torch.jit.script (shape-generic: sliding windows and batches of any size),
        checked equal to the eager network (max |difference| <= TOLERANCE on seeded inputs of the
        model's input size, batch 1 and 2, over CHECK_CALLS calls: TorchScript's profiling executor
        optimises the graph after the first calls), then records it in manifest.json:

            "torchscript": {"file": "model.ts", "sha256": ..., "weights_sha256": <the weights'>,
                            "network_sha256": <digest of the manifest's network>, "torch": "2.13.0",
                            "max_abs_difference": 0.0, "checked_on": "..."}

        Idempotent: a current export (same weights, same network, file intact) is left as it is.
    (export_records.export_problem(spec, kind) says whether a folder's export is current.)

    export_onnx(folder) -> Path
        classifiers with a last layer `fc` only: writes model.onnx (torch.onnx.export, opset
        ONNX_OPSET, batch size free) with two outputs, logits and the pooled features (the input of
        fc, for the out-of-distribution score), checked equal to the eager network under ONNX Runtime
        (max |difference| <= TOLERANCE, batch 1, 2 and 9: an image with its 8 test-time variants),
        recorded in manifest.json under "onnx" like the TorchScript export. Idempotent.

Classifiers with a last layer `fc` (MONAI ResNet) are exported with a second method,
logits_and_features(x) -> (logits, the input of fc), which torch_loader.logits_and_features calls.
The loader uses an export only for built-in models (torch_loader.scripted_problem says why).
"""
from __future__ import annotations

import copy
import json
import os
import time
import warnings
from pathlib import Path

import torch

from medviewer.ai.backends.export_records import NAMES, export_problem, network_sha256
from medviewer.ai.backends.torch_loader import jit_load, load_network
from medviewer.ai.model_files import resolve_inside
from medviewer.ai.registry import ModelSpec, read_manifest, sha256_of
from medviewer.core.errors import MedViewerError
from medviewer.io.messages import library_reason

TORCHSCRIPT_FILE = "model.ts"
ONNX_FILE = "model.onnx"
ONNX_OPSET = 17
TOLERANCE = 1e-5
CHECK_CALLS = 3


class _WithFeatures(torch.nn.Module):
    """A network split at its last layer: forward(x) == net(x); logits_and_features(x) also gives
    the last layer's input (the pooled features)."""

    def __init__(self, net: torch.nn.Module):
        super().__init__()
        self.body = copy.deepcopy(net)
        self.body.fc = torch.nn.Identity()
        self.head = net.fc

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))

    @torch.jit.export
    def logits_and_features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = self.body(x)
        return self.head(features), features


def example_inputs(spec: ModelSpec) -> list[torch.Tensor]:
    """Seeded N(0, 1) inputs of the model's input size (z-scored images look like this), batch 1 and 2."""
    contract = spec.input
    size = [int(v) for v in contract.get("size") or [64] * int(contract["dims"])]
    if len(size) != int(contract["dims"]):
        raise MedViewerError(f"{spec.folder}: input.size {size} does not give {contract['dims']} sizes")
    generator = torch.Generator().manual_seed(0)
    channels = int(contract.get("channels", 1))
    return [torch.randn((batch, channels, *size), generator=generator) for batch in (1, 2)]


def _outputs(module, x: torch.Tensor) -> list[torch.Tensor]:
    if hasattr(module, "logits_and_features"):
        return list(module.logits_and_features(x))
    return [module(x)]


def max_difference(eager: torch.nn.Module, scripted: torch.nn.Module, inputs: list[torch.Tensor]) -> float:
    """The largest |eager - scripted| over every output, input and CHECK_CALLS calls of `scripted`."""
    worst = 0.0
    with torch.inference_mode():
        for x in inputs:
            expected = _outputs(eager, x)
            for _ in range(CHECK_CALLS):
                got = _outputs(scripted, x)
                for e, g in zip(expected, got):
                    if e.shape != g.shape:
                        return float("inf")
                    worst = max(worst, float((e - g).abs().max()))
    return worst


def _manifest_path(spec: ModelSpec) -> Path:
    path = Path(spec.folder) / "manifest.json"
    if not path.is_file():
        raise MedViewerError(f"{spec.folder}: the export records itself in manifest.json; this model has "
                             "a YAML manifest (convert it to manifest.json first)")
    return path


def _write_atomically(path: Path, write) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def export_torchscript(folder: str | os.PathLike) -> Path:
    """Write (or keep, when current) the folder's TorchScript export; returns its path."""
    spec = read_manifest(Path(folder))
    if spec.manifest.get("framework", "torch") != "torch":
        raise MedViewerError(f"{spec.folder}: a {spec.manifest['framework']} model has no network to export")
    manifest_path = _manifest_path(spec)
    target = Path(spec.folder) / TORCHSCRIPT_FILE
    if not export_problem(spec):
        return resolve_inside(spec.folder, spec.manifest["torchscript"]["file"])
    eager = load_network(spec, "cpu", eager=True)
    module = _WithFeatures(eager).eval() if isinstance(getattr(eager, "fc", None), torch.nn.Module) else eager
    with warnings.catch_warnings():  # torch 2.13 advises torch.export (see torch_loader.jit_load)
        warnings.filterwarnings("ignore", category=DeprecationWarning, message=r".*torch\.jit")
        try:
            scripted = torch.jit.script(module)
        except Exception as exc:  # noqa: BLE001 - TorchScript's compiler rejects some Python
            raise MedViewerError(f"{spec.folder}: {spec.manifest['network']['class']} cannot be compiled to "
                                 f"TorchScript: {library_reason(exc)}") from exc
        _write_atomically(target, lambda tmp: torch.jit.save(scripted, str(tmp)))
    reloaded = jit_load(target).eval()
    return _record(spec, manifest_path, "torchscript", target, max_difference(eager, reloaded, example_inputs(spec)),
                   checked_on=f"seeded N(0,1) inputs of batch 1 and 2 at the input size, {CHECK_CALLS} calls each")


def _record(spec: ModelSpec, manifest_path: Path, kind: str, target: Path, difference: float, *,
            checked_on: str, **extra) -> Path:
    """Keep the export only when it equals the network (max |difference| <= TOLERANCE) and record
    it in the manifest under `kind`; else remove it and say by how much it differs."""
    if not difference <= TOLERANCE:
        target.unlink(missing_ok=True)
        raise MedViewerError(f"{spec.folder}: the {NAMES[kind]} export differs from the network by {difference:.3g} "
                             f"(more than {TOLERANCE:g}); not exported")
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    manifest[kind] = {"file": target.name, "sha256": sha256_of(target), "weights_sha256": spec.sha256,
                      "network_sha256": network_sha256(spec), **extra, "torch": torch.__version__,
                      "max_abs_difference": difference, "checked_on": f"{checked_on} ({time.strftime('%Y-%m-%d')})"}
    _write_atomically(manifest_path, lambda tmp: tmp.write_text(json.dumps(manifest, indent=2) + "\n",
                                                                encoding="utf-8"))
    return target


class _LogitsAndFeatures(torch.nn.Module):
    """forward(x) -> (logits, pooled features): the graph ONNX export traces."""

    def __init__(self, net: torch.nn.Module):
        super().__init__()
        self.split = _WithFeatures(net)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.split.logits_and_features(x)


def onnx_difference(module: torch.nn.Module, path: Path, inputs: list[torch.Tensor]) -> float:
    """The largest |eager - ONNX Runtime| over both outputs and every input."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    worst = 0.0
    with torch.inference_mode():
        for x in inputs:
            expected = [t.flatten(1).numpy() for t in module(x)]
            got = session.run(None, {session.get_inputs()[0].name: x.numpy()})
            for e, g in zip(expected, got):
                g = g.reshape(len(x), -1)
                if e.shape != g.shape:
                    return float("inf")
                worst = max(worst, float(abs(e - g).max()))
    return worst


def export_onnx(folder: str | os.PathLike) -> Path:
    """Write (or keep, when current) a classifier's ONNX export; returns its path."""
    import importlib.util

    spec = read_manifest(Path(folder))
    for package in ("onnx", "onnxruntime"):
        if importlib.util.find_spec(package) is None:
            raise MedViewerError(f"the ONNX export needs the {package} package (pip install {package})")
    if spec.manifest.get("framework", "torch") != "torch" or spec.task != "classification":
        raise MedViewerError(f"{spec.folder}: only torch classifiers get an ONNX export")
    manifest_path = _manifest_path(spec)
    if not export_problem(spec, "onnx"):
        return resolve_inside(spec.folder, spec.manifest["onnx"]["file"])
    eager = load_network(spec, "cpu", eager=True)
    if not isinstance(getattr(eager, "fc", None), torch.nn.Module):
        raise MedViewerError(f"{spec.folder}: {spec.manifest['network']['class']} has no last layer fc: no ONNX export")
    module = _LogitsAndFeatures(eager).eval()
    example = example_inputs(spec)
    target = Path(spec.folder) / ONNX_FILE
    axes = {"image": {0: "batch"}, "logits": {0: "batch"}, "features": {0: "batch"}}
    with warnings.catch_warnings():  # torch 2.13 advises its dynamo exporter (needs onnxscript)
        warnings.simplefilter("ignore")
        try:
            _write_atomically(target, lambda tmp: torch.onnx.export(
                module, (example[0],), str(tmp), input_names=["image"], output_names=["logits", "features"],
                dynamic_axes=axes, opset_version=ONNX_OPSET, dynamo=False))
        except Exception as exc:  # noqa: BLE001 - the exporter rejects some graphs
            raise MedViewerError(f"{spec.folder}: cannot export to ONNX: {library_reason(exc)}") from exc
    generator = torch.Generator().manual_seed(1)
    inputs = example + [torch.randn((9, *example[0].shape[1:]), generator=generator)]
    import onnxruntime

    return _record(spec, manifest_path, "onnx", target, onnx_difference(module, target, inputs),
                   checked_on="seeded N(0,1) inputs of batch 1, 2 and 9 at the input size, under ONNX Runtime",
                   opset=ONNX_OPSET, outputs=["logits", "features"], onnxruntime=onnxruntime.__version__)
