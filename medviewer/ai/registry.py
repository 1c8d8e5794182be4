"""The model registry: a model is a folder with a manifest and its weights (MONAI bundle-like).

manifest.json (or .yaml) declares what a model is, what it accepts and what it returns:

    {"name": "hippocampus-unet", "version": "1.0", "task": "segmentation",
     "input": {"modality": "MR", "dims": 3, "channels": 1, "spacing": [1, 1, 1],
               "normalisation": "zscore"},
     "outputs": {"labels": {"1": {"name": "anterior", "colour": [255, 0, 0]}, ...}},
     "network": {"class": "monai.networks.nets.UNet", "args": {...}}   # monai.networks.nets only
     "weights": "model.pt", "sha256": "...", "metrics": {...}, "training": {...},
     "licence": "...", "intended_use": "research and demonstration, not for clinical use"}

The input contract follows MONAI bundle metadata's network_data_format in spirit: what the network
was trained on, checked before it runs (ai.inference.check_input) so that an image outside it is
refused with the reason. Beyond modality and dims, two optional fields describe the training
images themselves; each is written by the trainers (ai.training.contract), measured on the images
the model was trained on, and a field a manifest lacks is simply not checked (user-made models,
older manifests):

    "extent_mm": {"min": [x, y, z], "max": [x, y, z], "median": [x, y, z],   # mm, training images
                  "tolerance": 1.5,          # accepted: min / tolerance .. max * tolerance, per axis
                  "axes": "x, y, z of input.direction (mm)",   # the image's own axes without one
                  "description": "hippocampus crops", "advice": "crop it to the hippocampus first",
                  "measured_on": "184 training-side cases ..."}
        the physical field of view: the box around each image's nonzero voxels, in mm along the
        model's axes (input.direction). An image is refused when its grid and its nonzero part
        (zero is padding to a model normalised over nonzero voxels) are both outside the accepted
        range, or its grid is smaller.
    "intensity": {"colour_fraction": {"min": 0.0, "max": 0.0, "limit": 0.05,
                                      "coloured_pixel": "R, G and B differ by more than 10% ..."},
                  "description": "grey chest X-rays", "advice": "...", "measured_on": "..."}
        grey images stored as RGB are accepted (made grey as before); an RGB image with more than
        `limit` of its pixels coloured is refused.

The shipped 2D chest X-ray models record intensity but no extent_mm: their training JPEGs carry no
pixel spacing and were resized to 224x224 (aspect not kept), so no millimetre or pixel extent
describes them; every input is resized to input.size anyway.

The manifest itself is not hashed (only the weights are), so these figures can be added to a
shipped model without retraining it.

Built-in models live in resources/models/, users add folders to <user data dir>/models, to
MEDVIEWER_MODELS or pass --models DIR. A model is available only when `infer` will load it
(check_weights): a network class of monai.networks.nets, a weights file inside the model's folder
(symlinks followed), present, with the declared SHA-256, and holding only what the loader accepts
(a torch state dict that weights_only=True reads, a skops file of trusted types: ai.model_files).
Anything else makes the model unavailable with the reason in one line; it never stops the others
from loading. The contents are looked at once per SHA-256 in a process. No torch or scikit-learn
here: the files are hashed and parsed, never loaded (see ai.backends.torch_loader, sklearn_io).
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from medviewer.ai.model_files import content_problem, network_problem, resolve_inside, shown
from medviewer.core.errors import MedViewerError

TASKS = ("classification", "segmentation", "anomaly")
FRAMEWORKS = ("torch", "scikit-learn")  # scikit-learn models are stored with skops (no pickle)
REQUIRED = ("name", "version", "task", "input", "outputs", "weights", "sha256", "intended_use")
MANIFEST_NAMES = ("manifest.json", "manifest.yaml", "manifest.yml")
MAX_MANIFEST_BYTES = 1 << 20  # the shipped manifests are 2-12 kB
_hash_cache: dict[tuple[str, int, int], str] = {}


class ManifestError(MedViewerError):
    pass


@dataclass
class ModelSpec:
    folder: Path
    manifest: dict[str, Any]

    def __getattr__(self, key: str) -> Any:  # name, version, task, input, outputs, metrics ...
        try:
            return self.manifest[key]
        except KeyError:
            raise AttributeError(key) from None

    @property
    def weights_path(self) -> Path:
        """The weights file, symlinks resolved; UnsafeModelFile when it lies outside the folder."""
        return resolve_inside(self.folder, self.manifest["weights"])

    @property
    def class_names(self) -> list[str]:
        return list(self.manifest["outputs"].get("classes", []))


@dataclass
class ModelEntry:
    folder: Path
    source: str  # "built-in", "user", "--models"
    spec: ModelSpec | None = None
    reason: str = ""  # why the model is unavailable ("" when it is available)
    extra: dict = field(default_factory=dict)

    @property
    def available(self) -> bool:
        return self.spec is not None and not self.reason

    @property
    def name(self) -> str:
        return self.spec.name if self.spec is not None else self.folder.name

    def info(self) -> dict[str, Any]:
        m = self.spec.manifest if self.spec is not None else {}
        return {"name": self.name, "version": m.get("version", ""), "task": m.get("task", ""),
                "available": self.available, "reason": self.reason, "source": self.source,
                "folder": str(self.folder), "input": m.get("input", {}), "metrics": m.get("metrics", {}),
                "intended_use": m.get("intended_use", "")}


def read_manifest(folder: Path) -> ModelSpec:
    """Parse and check a model folder's manifest; raises ManifestError with the reason."""
    path = next((folder / n for n in MANIFEST_NAMES if (folder / n).is_file()), None)
    if path is None:
        raise ManifestError(f"{folder}: no manifest.json or manifest.yaml")
    try:
        real = resolve_inside(folder, path.name)
        if real.stat().st_size > MAX_MANIFEST_BYTES:
            raise ManifestError(f"{path}: the manifest is {real.stat().st_size} bytes; a manifest is a few kB")
        text = real.read_text(encoding="utf-8")
        if path.suffix == ".json":
            manifest = json.loads(text)
        else:
            import yaml

            if any(isinstance(e, yaml.AliasEvent) for e in yaml.parse(text)):  # aliases can nest
                raise ManifestError(f"{path}: YAML anchors and aliases are not accepted in a manifest")
            manifest = yaml.safe_load(text)
    except ManifestError:
        raise
    except MedViewerError as exc:
        raise ManifestError(f"{path}: {exc}") from exc
    except Exception as exc:  # OSError, ValueError, ImportError, yaml.YAMLError and friends
        from medviewer.io.messages import library_reason

        raise ManifestError(f"{path}: cannot read the manifest: {library_reason(exc)}") from exc
    if not isinstance(manifest, dict):
        raise ManifestError(f"{path}: the manifest must be a mapping of fields")
    missing = [k for k in REQUIRED if k not in manifest]
    if missing:
        raise ManifestError(f"{path}: missing field(s) {', '.join(missing)}")
    if not isinstance(manifest["name"], str) or not manifest["name"] or not manifest["name"].isprintable():
        raise ManifestError(f"{path}: the name must be plain printable text")
    if manifest["task"] not in TASKS:
        raise ManifestError(f"{path}: task {shown(manifest['task'])!r} is not one of {', '.join(TASKS)}")
    if not isinstance(manifest["input"], dict) or manifest["input"].get("dims") not in (2, 3):
        raise ManifestError(f"{path}: input must give dims 2 or 3")
    problem = _contract_problem(manifest["input"])
    if problem:
        raise ManifestError(f"{path}: {problem}")
    if manifest["task"] == "classification" and not manifest["outputs"].get("classes"):
        raise ManifestError(f"{path}: a classifier must list its output classes")
    if manifest["task"] == "segmentation" and not manifest["outputs"].get("labels"):
        raise ManifestError(f"{path}: a segmentation model must list its output labels")
    framework = manifest.get("framework", "torch")
    if framework not in FRAMEWORKS:
        raise ManifestError(f"{path}: framework {shown(framework)!r} is not one of {', '.join(FRAMEWORKS)}")
    if framework == "scikit-learn":
        if not str(manifest["weights"]).endswith(".skops"):
            raise ManifestError(f"{path}: scikit-learn models are stored as .skops files (never pickle)")
        return ModelSpec(folder=folder, manifest=manifest)
    if manifest["task"] == "anomaly":
        raise ManifestError(f"{path}: anomaly models are scikit-learn models")
    network = manifest.get("network", {})
    if not isinstance(network, dict) or not (network.get("torchscript") or network.get("class")):
        raise ManifestError(f"{path}: network must name a class (e.g. monai.networks.nets.UNet)")
    return ModelSpec(folder=folder, manifest=manifest)


def _numbers(values, n: int | None = None) -> bool:
    return (isinstance(values, list) and (n is None or len(values) == n) and
            all(isinstance(v, (int, float)) and not isinstance(v, bool) and v >= 0 for v in values))


def _contract_problem(contract: dict) -> str:
    """'' when the optional training-distribution fields are well formed (or absent), else why not."""
    ext = contract.get("extent_mm")
    if ext is not None:
        if not isinstance(ext, dict) or not _numbers(ext.get("min")) or len(ext["min"]) not in (2, 3) \
                or not _numbers(ext.get("max"), len(ext["min"])):
            return "input.extent_mm needs min and max: two or three millimetre values each"
        if any(lo > hi for lo, hi in zip(ext["min"], ext["max"])):
            return "input.extent_mm: min is larger than max"
        tolerance = ext.get("tolerance", 1.5)
        if not isinstance(tolerance, (int, float)) or tolerance < 1:
            return "input.extent_mm.tolerance must be a factor of at least 1"
        if "median" in ext and not _numbers(ext["median"], len(ext["min"])):
            return "input.extent_mm.median must give one value per axis"
        direction = contract.get("direction")
        if direction is not None and not (isinstance(direction, list) and len(direction) == 9):
            return "input.direction must give 9 numbers (a row-major 3x3 matrix)"
    intensity = contract.get("intensity")
    if intensity is not None:
        colour = intensity.get("colour_fraction") if isinstance(intensity, dict) else None
        if not isinstance(intensity, dict) or (colour is not None and not (
                isinstance(colour, dict) and isinstance(colour.get("limit", colour.get("max")), (int, float))
                and 0 <= colour.get("limit", colour.get("max")) <= 1)):
            return "input.intensity.colour_fraction needs a limit between 0 and 1"
    return ""


def sha256_of(path: Path) -> str:
    st = path.stat()
    key = (str(path), st.st_size, st.st_mtime_ns)
    if key not in _hash_cache:
        digest = hashlib.sha256()
        with open(path, "rb") as fp:
            for block in iter(lambda: fp.read(1 << 20), b""):
                digest.update(block)
        _hash_cache[key] = digest.hexdigest()
    return _hash_cache[key]


def check_weights(spec: ModelSpec) -> str:
    """'' when `infer` can load this model, else the reason (one line): the network is one MedViewer
    builds, the weights file lies inside the model's folder, is there with the declared SHA-256 and
    holds only what the loader accepts (looked at once per SHA-256: ai.model_files)."""
    framework = spec.manifest.get("framework", "torch")
    if framework == "torch":
        problem = network_problem(spec.manifest.get("network"))
        if problem:
            return problem
    try:
        path = spec.weights_path
    except MedViewerError as exc:
        return str(exc)
    if not path.is_file():
        return f"weights file {shown(spec.manifest['weights'])} is missing"
    actual = sha256_of(path)
    if actual.lower() != str(spec.sha256).lower():
        return f"weights file {shown(spec.manifest['weights'])} does not match its SHA-256 (expected {shown(spec.sha256)[:12]}…, got {actual[:12]}…)"
    return content_problem(path, framework, actual)


def model_dirs(extra: list[str] | None = None) -> list[tuple[Path, str]]:
    """Where models are looked for, in order: built-in, user data dir, MEDVIEWER_MODELS, --models."""
    from medviewer.core.paths import data_dir

    dirs: list[tuple[Path, str]] = []
    try:
        from medviewer.resources import resources_dir

        dirs.append((resources_dir() / "models", "built-in"))
    except MedViewerError:
        pass
    dirs.append((data_dir() / "models", "user"))
    for d in filter(None, os.environ.get("MEDVIEWER_MODELS", "").split(os.pathsep)):
        dirs.append((Path(d), "user"))
    for d in extra or []:
        dirs.append((Path(d), "--models"))
    return dirs


def discover_models(extra: list[str] | None = None, name: str | None = None) -> list[ModelEntry]:
    """Every model folder found, available or with the reason it is not. A folder holding a
    manifest is a model; otherwise its subfolders are looked at. With `name`, only the models of
    that name (find_model: the other models' weights are not looked at)."""
    entries: list[ModelEntry] = []
    for root, source in model_dirs(extra):
        if not root.is_dir():
            continue
        folders = [root] if any((root / n).is_file() for n in MANIFEST_NAMES) else sorted(
            p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
        for folder in folders:
            entry = ModelEntry(folder=folder, source=source)
            try:
                entry.spec = read_manifest(folder)
                if name is not None and entry.spec.name != name:
                    continue
                entry.reason = check_weights(entry.spec)
            except ManifestError as exc:
                entry.reason = str(exc)
            except OSError as exc:
                entry.reason = shown(f"{folder}: {exc}", 300)
            if name is None or entry.name == name:
                entries.append(entry)
    return entries


def find_model(name: str, extra: list[str] | None = None) -> ModelEntry:
    """The available model with this name (the last found wins: user folders override built-ins)."""
    matches = discover_models(extra, name=name)
    if not matches:
        raise MedViewerError(f"no model named {name!r}; `medviewer models` lists them")
    usable = [e for e in matches if e.available]
    if not usable:
        raise MedViewerError(f"model {name!r} is unavailable: {matches[-1].reason}")
    return usable[-1]
