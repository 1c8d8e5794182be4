"""Build a model's network and load its weights safely: the network is a class of
monai.networks.nets, the weights a state dict read with torch.load(weights_only=True), and both
only after registry.check_weights has passed the files (ai.model_files)."""
from __future__ import annotations

import pickle
from collections.abc import Mapping

import torch

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


def load_network(spec: ModelSpec, device: str = "cpu") -> torch.nn.Module:
    """The network in eval mode on `device`, with the verified weights loaded."""
    reason = check_weights(spec)
    if reason:
        raise MedViewerError(f"{spec.folder}: cannot load the model: {reason}")
    net = build_network(spec)
    state = _state_dict(spec, device)
    try:
        net.load_state_dict(state)
        net.to(device)
    except (RuntimeError, ValueError, KeyError) as exc:
        raise MedViewerError(f"{spec.folder}: the weights do not fit {spec.manifest['network']['class']}: "
                             f"{library_reason(exc)}") from exc
    return net.eval()
