"""Build a model's network and load its weights safely: the network is a class of
monai.networks.nets, the weights a state dict read with torch.load(weights_only=True), and both
only after registry.check_weights has passed the files (ai.model_files).

    load_network(spec, device="cpu", eager=False) -> module in eval mode
        the model's TorchScript export (model.ts, written by ai.backends.export) when the model is
        a built-in one and the export is current -- so that inference does not import MONAI (about
        6 s) -- else the MONAI network with its verified weights. eager=True always gives the MONAI
        network (Grad-CAM's hooks, anything that reaches into its layers by name). Both give the
        same outputs (export checks them equal to 1e-5) and both work with logits_and_features.
    logits_and_features(net, x) -> (logits, pooled features)
        one forward pass; the features are the input of the network's last layer (`net.fc`: what
        the network gives with fc replaced by torch.nn.Identity), for out-of-distribution scores.
    scripted_path(spec) -> Path | None
        the export load_network would use, or None (and why not: scripted_problem(spec)).

A TorchScript file carries code, so one is used only from the built-in models' folder (installed
with MedViewer, like its own code), only when the manifest's `torchscript` record names a file
inside the folder with a matching SHA-256, made from the weights and network the manifest declares
now. A user's model folder is always built from its declared MONAI class (ai.model_files refuses
TorchScript there); a stale export (new weights, another network) is ignored, never run.
"""
from __future__ import annotations

import pickle
import warnings
from collections.abc import Mapping
from pathlib import Path

import torch

from medviewer.ai.backends.export_records import exported_path, trusted_problem
from medviewer.ai.model_files import NETWORK_MODULE, network_problem
from medviewer.ai.registry import ModelSpec, check_weights
from medviewer.core.errors import MedViewerError
from medviewer.io.messages import clean_text, library_reason


def build_network(spec: ModelSpec) -> torch.nn.Module:
    network = spec.manifest.get("network")
    problem = network_problem(network)  # a manifest must not make us import or run arbitrary code
    if problem:
        raise MedViewerError(f"{spec.folder}: {problem}")
    import monai.networks.nets as nets

    path = network["class"]
    cls = getattr(nets, path.rpartition(".")[2], None)
    if not (isinstance(cls, type) and issubclass(cls, torch.nn.Module)):
        raise MedViewerError(f"{spec.folder}: {clean_text(path)} is not a network class of {NETWORK_MODULE}")
    try:
        return cls(**network.get("args", {}))
    except Exception as exc:  # noqa: BLE001 - any argument the class rejects (TypeError, ValueError, ...)
        raise MedViewerError(f"{spec.folder}: cannot build {path}: {library_reason(exc)}") from exc


def _state_dict(spec: ModelSpec, device: str) -> dict:
    """The weights as torch.load(weights_only=True) reads them, refused unless names -> tensors."""
    try:
        state = torch.load(str(spec.weights_path), map_location=device, weights_only=True)
    except pickle.UnpicklingError:  # its message advises weights_only=False: never that
        raise MedViewerError(f"{spec.folder}: the weights file holds more than tensors "
                             "(torch.load with weights_only=True refused it)") from None
    except Exception as exc:  # noqa: BLE001 - damaged archives (RuntimeError, EOFError, OSError ...)
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise MedViewerError(f"{spec.folder}: cannot read the weights: {clean_text(first, 200) or type(exc).__name__}") from None
    if not (isinstance(state, Mapping) and all(isinstance(k, str) and isinstance(v, torch.Tensor)
                                               for k, v in state.items())):
        raise MedViewerError(f"{spec.folder}: the weights file is not a state dict (names -> tensors)")
    return dict(state)


def scripted_problem(spec: ModelSpec) -> str:
    """'' when load_network would use the model's TorchScript export, else why not (one line)."""
    return trusted_problem(spec, "torchscript")


def scripted_path(spec: ModelSpec) -> Path | None:
    return exported_path(spec, "torchscript")


def jit_load(path: Path) -> torch.nn.Module:
    """torch.jit.load on the CPU, without torch 2.13's advice to move to torch.export (whose
    programs need far more of torch to load: the point of an export here is a fast first run)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning, message=r".*torch\.jit")
        return torch.jit.load(str(path), map_location="cpu")


def _load_scripted(spec: ModelSpec, path: Path, device: str) -> torch.nn.Module:
    try:
        module = jit_load(path)
    except Exception as exc:  # noqa: BLE001 - a damaged archive, a torch too old for it
        raise MedViewerError(f"{spec.folder}: cannot load the TorchScript export: {library_reason(exc)}") from None
    return module.to(device).eval()


def load_network(spec: ModelSpec, device: str = "cpu", eager: bool = False) -> torch.nn.Module:
    """The network in eval mode on `device`, with the verified weights loaded (see the module doc)."""
    reason = check_weights(spec)
    if reason:
        raise MedViewerError(f"{spec.folder}: cannot load the model: {reason}")
    if not eager:
        path = scripted_path(spec)
        if path is not None:
            return _load_scripted(spec, path, device)
    net = build_network(spec)
    state = _state_dict(spec, device)
    try:
        net.load_state_dict(state)
        net.to(device)
    except (RuntimeError, ValueError, KeyError) as exc:
        raise MedViewerError(f"{spec.folder}: the weights do not fit {spec.manifest['network']['class']}: "
                             f"{library_reason(exc)}") from exc
    return net.eval()


def logits_and_features(net: torch.nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(the network's output, the input of its last layer `fc`) from one forward pass."""
    if isinstance(net, torch.jit.ScriptModule):
        if not hasattr(net, "logits_and_features"):
            raise MedViewerError("this TorchScript network has no pooled features (no last layer fc)")
        return net.logits_and_features(x)
    fc = getattr(net, "fc", None)
    if not isinstance(fc, torch.nn.Module):
        raise MedViewerError(f"{type(net).__name__} has no last layer fc: no pooled features")
    seen: list[torch.Tensor] = []
    handle = fc.register_forward_pre_hook(lambda module, args: seen.append(args[0]))
    try:
        logits = net(x)
    finally:
        handle.remove()
    return logits, seen[-1]
