"""Build a model's network and load its weights safely (weights_only=True, or TorchScript)."""
from __future__ import annotations

import importlib

import torch

from medviewer.ai.registry import ModelSpec, check_weights
from medviewer.core.errors import MedViewerError

ALLOWED_PREFIXES = ("monai.networks.nets.", "torchvision.models.")


def build_network(spec: ModelSpec) -> torch.nn.Module:
    network = spec.manifest["network"]
    path = network["class"]
    if not path.startswith(ALLOWED_PREFIXES):  # a manifest must not make us import arbitrary code
        raise MedViewerError(f"{spec.folder}: network class {path!r} is not from {', '.join(ALLOWED_PREFIXES)}")
    module_name, _, class_name = path.rpartition(".")
    try:
        cls = getattr(importlib.import_module(module_name), class_name)
        return cls(**network.get("args", {}))
    except (ImportError, AttributeError, TypeError, ValueError) as exc:
        raise MedViewerError(f"{spec.folder}: cannot build {path}: {' '.join(str(exc).split())[:200]}") from exc


def load_network(spec: ModelSpec, device: str = "cpu") -> torch.nn.Module:
    """The network in eval mode on `device`, with the verified weights loaded."""
    reason = check_weights(spec)
    if reason:
        raise MedViewerError(f"{spec.folder}: {reason}")
    try:
        if spec.manifest["network"].get("torchscript"):
            net = torch.jit.load(str(spec.weights_path), map_location=device)
        else:
            net = build_network(spec)
            state = torch.load(str(spec.weights_path), map_location=device, weights_only=True)
            net.load_state_dict(state)
            net.to(device)
    except MedViewerError:
        raise
    except (RuntimeError, OSError, ValueError, KeyError) as exc:
        raise MedViewerError(f"{spec.folder}: cannot load the weights: {' '.join(str(exc).split())[:200]}") from exc
    return net.eval()
