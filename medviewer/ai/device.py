"""Choosing the compute device: CUDA > MPS > CPU, overridable by the user.

torch is imported inside the functions: importing this module does not load it.
"""
from __future__ import annotations

import os

from medviewer.core.errors import MedViewerError

VALID = ("auto", "cpu", "cuda", "mps")


def _available(torch) -> dict[str, bool]:
    mps = getattr(torch.backends, "mps", None)
    return {
        "cuda": bool(torch.cuda.is_available()),
        "mps": bool(mps is not None and mps.is_available()),
        "cpu": True,
    }


def choose_device(requested: str | None = None) -> str:
    """The torch device string to run on. `requested` (or MEDVIEWER_DEVICE) may be auto,
    cpu, cuda, cuda:N or mps; asking for a device that is absent is an error with the reason."""
    import torch

    requested = (requested or os.environ.get("MEDVIEWER_DEVICE") or "auto").strip().lower()
    kind = requested.split(":", 1)[0]
    if kind not in VALID:
        raise MedViewerError(f"unknown device {requested!r}; use one of {', '.join(VALID)} (or cuda:N)")
    available = _available(torch)
    if kind == "auto":
        return next(d for d in ("cuda", "mps", "cpu") if available[d])
    if not available[kind]:
        raise MedViewerError(f"device {requested!r} is not available here "
                             f"(available: {', '.join(d for d, ok in available.items() if ok)})")
    if kind == "cuda" and ":" in requested:
        index = int(requested.split(":", 1)[1])
        if index >= torch.cuda.device_count():
            raise MedViewerError(f"device {requested!r}: only {torch.cuda.device_count()} CUDA device(s)")
    return requested
