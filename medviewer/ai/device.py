"""Choosing the compute device: CUDA > MPS > CPU, overridable by the user.

torch is imported inside the functions: importing this module does not load it. When the
installed torch is a CPU-only build (its torch/version.py, read as text, names no CUDA or ROCm) and
this is not a Mac (MPS), "auto" and "cpu" are answered without importing torch at all, so that a
CPU run that needs no torch (an ONNX export, a scikit-learn model) does not pay for it.
"""
from __future__ import annotations

import importlib.util
import os
import re
import sys
from pathlib import Path

from medviewer.core.errors import MedViewerError

VALID = ("auto", "cpu", "cuda", "mps")


def _available(torch) -> dict[str, bool]:
    mps = getattr(torch.backends, "mps", None)
    return {
        "cuda": bool(torch.cuda.is_available()),
        "mps": bool(mps is not None and mps.is_available()),
        "cpu": True,
    }


def cpu_only_build() -> bool:
    """True when the installed torch can only run on the CPU here: a build without CUDA/ROCm
    (torch/version.py says cuda = None and hip = None) and no Apple MPS (not macOS)."""
    if sys.platform == "darwin":
        return False
    spec = importlib.util.find_spec("torch")
    if spec is None or not spec.submodule_search_locations:
        return False
    try:
        text = (Path(list(spec.submodule_search_locations)[0]) / "version.py").read_text(encoding="utf-8")
    except OSError:
        return False
    return all(re.search(rf"^{name}\b[^=\n]*=\s*None\s*$", text, re.MULTILINE) for name in ("cuda", "hip"))


def choose_device(requested: str | None = None) -> str:
    """The torch device string to run on. `requested` (or MEDVIEWER_DEVICE) may be auto,
    cpu, cuda, cuda:N or mps; asking for a device that is absent is an error with the reason."""
    requested = (requested or os.environ.get("MEDVIEWER_DEVICE") or "auto").strip().lower()
    kind = requested.split(":", 1)[0]
    if kind not in VALID:
        raise MedViewerError(f"unknown device {requested!r}; use one of {', '.join(VALID)} (or cuda:N)")
    if kind in ("auto", "cpu") and cpu_only_build():
        return "cpu"
    import torch

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
