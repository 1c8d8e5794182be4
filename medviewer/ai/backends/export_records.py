"""Whether a model folder's network export (TorchScript or ONNX) may be used, without torch.

An export is written by ai.backends.export (scripts/export_models.py) and recorded in the
manifest under its kind ("torchscript", "onnx"):

    {"file": ..., "sha256": <the file's>, "weights_sha256": <the weights' it was made from>,
     "network_sha256": <digest of the manifest's network>, "max_abs_difference": ..., ...}

    export_problem(spec, kind) -> '' when that record is current (its file inside the folder with
        the recorded SHA-256, made from the weights and network the manifest declares now), else
        why not (one line): a stale export is ignored, never run.
    trusted_problem(spec, kind) -> export_problem, and '' only for the built-in models' folder:
        exports are taken from the models installed with MedViewer only (a TorchScript file carries
        code; an ONNX graph may name custom operators), never from a user's folder.
    exported_path(spec, kind) -> the file to load, or None.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

from medviewer.ai.model_files import resolve_inside
from medviewer.ai.registry import ModelSpec, sha256_of
from medviewer.core.errors import MedViewerError
from medviewer.io.messages import clean_text

NAMES = {"torchscript": "TorchScript", "onnx": "ONNX"}


def network_sha256(spec: ModelSpec) -> str:
    """A digest of the manifest's network (class and arguments), recorded with an export."""
    text = json.dumps(spec.manifest.get("network"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def trusted_roots() -> list[Path]:
    """Folders whose model folders may bring an export: the built-in models."""
    from medviewer.resources import resources_dir

    try:
        return [resources_dir() / "models"]
    except MedViewerError:
        return []


def export_problem(spec: ModelSpec, kind: str = "torchscript") -> str:
    name = NAMES[kind]
    record = spec.manifest.get(kind)
    if not isinstance(record, dict):
        return f"no {name} export recorded in the manifest"
    try:
        path = resolve_inside(spec.folder, record.get("file"))
    except MedViewerError as exc:
        return str(exc)
    if not path.is_file():
        return f"the {name} file {clean_text(record.get('file'))} is missing"
    if str(record.get("weights_sha256", "")).lower() != str(spec.sha256).lower():
        return f"the {name} export was made from other weights (run scripts/export_models.py)"
    if record.get("network_sha256") != network_sha256(spec):
        return f"the {name} export was made for another network (run scripts/export_models.py)"
    if sha256_of(path).lower() != str(record.get("sha256", "")).lower():
        return f"the {name} file does not match its SHA-256"
    return ""


def trusted_problem(spec: ModelSpec, kind: str = "torchscript") -> str:
    folder = Path(spec.folder).resolve()
    if not any(root.resolve() in (folder, *folder.parents) for root in trusted_roots()):
        return f"{NAMES[kind]} exports are used for built-in models only"
    return export_problem(spec, kind)


def exported_path(spec: ModelSpec, kind: str = "torchscript") -> Path | None:
    return None if trusted_problem(spec, kind) else resolve_inside(spec.folder, spec.manifest[kind]["file"])
