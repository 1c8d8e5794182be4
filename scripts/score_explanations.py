"""Explanation scores of the pneumonia CNN(s) on validation X-rays: do Grad-CAM and occlusion point
at the lungs, or at the burned-in markers?

    python scripts/score_explanations.py [--model FOLDER | REV:PATH ...] [--per-class N]
        [--data ../shared/data/chest_xray/train] [--methods gradcam,occlusion,random]
        [--json FILE] [--pictures DIR]

The images are the validation split of the training data (ai.training.classification
train_val_test_split, seed 0, patient-wise: the images the shipped model chose its epoch and
threshold on, never trained on), the first N of each class in a seeded shuffle. A model is a
folder or REV:PATH, a model folder as committed at a git revision (e.g. the old model,
1d03e28:resources/models/pneumonia-cnn), copied to a temporary folder.
For each model and method it prints the mean and bootstrap 95% interval over the images of: the
fraction of the map's mass inside the lung fields (processing.lung_mask) and on burned-in markers,
the pointing game (the map's maximum inside the lungs), and deletion / insertion AUC
(ai.explanation_scores); "random" is a flat map: the chance level of each score. --pictures writes
a few overlays (lung outline in green, map in red) to look at.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from medviewer.ai.explanation_scores import marker_region, score_image  # noqa: E402
from medviewer.ai.metrics import bootstrap_ci  # noqa: E402
from medviewer.ai.registry import read_manifest  # noqa: E402

COLUMNS = ("lung_mass", "marker_mass", "pointing", "deletion_auc", "insertion_auc")
HEADINGS = ("mass in lungs", "mass on markers", "pointing game", "deletion AUC (lower)", "insertion AUC (higher)")


def validation_images(data: str, per_class: int, seed: int = 0) -> list[tuple[str, int]]:
    from medviewer.ai.training.classification import discover_classes, train_val_test_split

    _classes, items = discover_classes(data)
    _train, val, _test = train_val_test_split(items, seed=seed)
    chosen = [items[i] for i in val]
    order = np.random.default_rng(seed).permutation(len(chosen))
    out: list[tuple[str, int]] = []
    for label in sorted({lab for _p, lab in chosen}):
        out += [chosen[i] for i in order if chosen[i][1] == label][:per_class]
    return out


def model_folder(ref: str, scratch: Path) -> Path:
    """A model folder on disk: `ref` itself, or REV:PATH extracted from git into scratch."""
    if Path(ref).is_dir() or ":" not in ref:
        return Path(ref)
    rev, path = ref.split(":", 1)
    names = subprocess.run(["git", "-C", str(REPO), "ls-tree", "--name-only", f"{rev}:{path}"],
                           capture_output=True, text=True, check=True).stdout.split()
    out = scratch / f"{Path(path).name}-{rev}"
    out.mkdir(parents=True, exist_ok=True)
    for name in names:
        blob = subprocess.run(["git", "-C", str(REPO), "show", f"{rev}:{path}/{name}"], capture_output=True,
                              check=True).stdout
        (out / name).write_bytes(blob)
    return out


def summarise(rows: list[dict]) -> dict:
    out = {"n": len(rows)}
    for key in COLUMNS + ("lung_fraction",):
        values = np.array([r[key] for r in rows if key in r and np.isfinite(r[key])], np.float64)
        if len(values) == 0:
            continue
        lo, hi = bootstrap_ci(np.mean, values, n_boot=1000)
        out[key] = {"mean": round(float(values.mean()), 4), "ci95": [round(lo, 4), round(hi, 4)],
                    "n": int(len(values))}
    out["empty_maps"] = sum(1 for r in rows if r.get("note"))
    return out


def _picture(path: Path, image: np.ndarray, heat: np.ndarray, lungs: np.ndarray) -> None:
    from PIL import Image
    from scipy.ndimage import binary_erosion

    grey = image if image.ndim == 2 else image[..., :3].mean(-1)
    rgb = np.repeat(grey[..., None].astype(np.float32), 3, -1)
    rgb[..., 0] = np.clip(rgb[..., 0] * (1 - 0.6 * heat) + 255 * 0.6 * heat, 0, 255)
    edge = lungs & ~binary_erosion(lungs, iterations=1)
    rgb[edge] = (0, 255, 0)
    Image.fromarray(rgb.astype(np.uint8)).save(path)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", action="append", default=[], help="model folder or REV:PATH (repeatable)")
    ap.add_argument("--data", default=str(REPO.parent / "shared" / "data" / "chest_xray" / "train"))
    ap.add_argument("--per-class", type=int, default=50)
    ap.add_argument("--methods", default="gradcam,occlusion,random")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--json", help="write the per-image scores and the summary here")
    ap.add_argument("--pictures", help="write overlays of the first images here")
    args = ap.parse_args(argv)
    from medviewer.io import open_volume
    from medviewer.processing.lung_mask import lung_mask

    models = args.model or [str(REPO / "resources" / "models" / "pneumonia-cnn")]
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    images = validation_images(args.data, args.per_class)
    print(f"{len(images)} validation images ({args.per_class} per class) from {args.data}", file=sys.stderr)
    regions = {}
    for path, _label in images:
        data = open_volume(path).data
        lungs = lung_mask(data)
        regions[path] = (lungs, marker_region(data, lungs))
    report: dict = {"images": [p for p, _ in images], "models": {}}
    with tempfile.TemporaryDirectory() as scratch:
        for ref in models:
            spec = read_manifest(model_folder(ref, Path(scratch)))
            label = f"{spec.name} {spec.manifest.get('version', '')} ({ref})".strip()
            report["models"][label] = {}
            for method in methods:
                rows = []
                for n, (path, _label) in enumerate(images):
                    volume = open_volume(path)
                    lungs, markers = regions[path]
                    keep = bool(args.pictures) and n < 8 and method != "random"
                    row = score_image(spec, volume, method, args.device, lungs, markers, seed=n, keep_map=keep)
                    if keep:
                        pictures = Path(args.pictures)
                        pictures.mkdir(parents=True, exist_ok=True)
                        _picture(pictures / f"{_stem(spec)}_{method}_{n}.png", np.asarray(volume.data[0]),
                                 row.pop("map"), lungs)
                    rows.append(row)
                summary = summarise(rows)
                report["models"][label][method] = {"summary": summary, "rows": rows}
                print(f"{label} {method}: done ({summary['n']} images)", file=sys.stderr)
    print(table(report))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1) + "\n")
    return 0


def _stem(spec) -> str:
    return f"{spec.name}-{spec.manifest.get('version', '')}".rstrip("-")


def table(report: dict) -> str:
    head = "| model | method | images | " + " | ".join(HEADINGS) + " | lung area (chance) |"
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for label, methods in report["models"].items():
        for method, entry in methods.items():
            s = entry["summary"]
            cells = []
            for key in COLUMNS + ("lung_fraction",):
                v = s.get(key)
                cells.append(f"{v['mean']:.3f} [{v['ci95'][0]:.3f}, {v['ci95'][1]:.3f}]" if v else "n/a")
            empty = f" ({s['empty_maps']} empty)" if s.get("empty_maps") else ""
            lines.append(f"| {label} | {method} | {s['n']}{empty} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
