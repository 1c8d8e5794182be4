"""TorchScript exports of a model folder's network, so that inference needs torch but not MONAI.

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
    (torch_loader.export_problem(spec) says whether a folder's export is current.)

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

from medviewer.ai.backends.torch_loader import export_problem, jit_load, load_network, network_sha256
from medviewer.ai.model_files import resolve_inside
from medviewer.ai.registry import ModelSpec, read_manifest, sha256_of
from medviewer.core.errors import MedViewerError
from medviewer.io.messages import library_reason

TORCHSCRIPT_FILE = "model.ts"
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
    difference = max_difference(eager, reloaded, example_inputs(spec))
    if not difference <= TOLERANCE:
        target.unlink(missing_ok=True)
        raise MedViewerError(f"{spec.folder}: the TorchScript export differs from the network by {difference:.3g} "
                             f"(more than {TOLERANCE:g}); not exported")
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    manifest["torchscript"] = {
        "file": TORCHSCRIPT_FILE, "sha256": sha256_of(target), "weights_sha256": spec.sha256,
        "network_sha256": network_sha256(spec), "torch": torch.__version__,
        "max_abs_difference": difference,
        "checked_on": f"seeded N(0,1) inputs of batch 1 and 2 at the input size, {CHECK_CALLS} calls each "
                      f"({time.strftime('%Y-%m-%d')})"}
    _write_atomically(manifest_path, lambda tmp: tmp.write_text(json.dumps(manifest, indent=2) + "\n",
                                                                encoding="utf-8"))
    return target
