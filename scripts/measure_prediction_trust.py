"""How far to trust one prediction, measured: the classification task's "uncertain" and
out-of-distribution flags and the segmentation task's uncertainty map, on held-out data of
../shared/data (the models' own test split, recorded in or derived from their manifests).

    python scripts/measure_prediction_trust.py [--cnn FOLDER] [--unet FOLDER] [--limit N]

Classification (pneumonia-cnn): on the patient-wise test split of chest_xray/train (the manifest's
seed; the split training used): accuracy at the shipped threshold overall, on the predictions
flagged uncertain and on the others, how many are flagged; the out-of-distribution flag rate on
those X-rays and on images that are not chest X-rays (CT and MR slices given as X-rays); the time
per image with and without test-time augmentation (medians).
Segmentation (hippocampus-unet): on the manifest's test cases: mean Dice with and without the
x-mirror, the mean uncertainty on wrongly and on correctly labelled voxels, and the ROC AUC of the
uncertainty as a detector of wrong voxels (inside the box around prediction and truth).
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
DATA = REPO.parent / "shared" / "data"


def _timed(call):
    t = time.perf_counter()
    out = call()
    return out, time.perf_counter() - t


def classification(folder: Path, limit: int | None) -> None:
    from medviewer.ai.registry import read_manifest
    from medviewer.ai.tasks.classification import Classification
    from medviewer.ai.training.classification import discover_classes, train_val_test_split
    from medviewer.io import open_volume

    spec = read_manifest(folder)
    classes, items = discover_classes(DATA / "chest_xray" / "train")
    seed = int(spec.manifest.get("training", {}).get("seed", 0))
    _, _, test = train_val_test_split(items, seed=seed)
    if limit:
        test = [i for c in range(len(classes)) for i in [j for j in test if items[j][1] == c][:limit]]
    with_tta, without_tta = Classification(spec), Classification(spec, tta=0)
    rows, seconds, seconds_plain = [], [], []
    for i in test:
        volume = open_volume(items[i][0])
        r, s = _timed(lambda: with_tta(volume, "cpu"))
        _, s0 = _timed(lambda: without_tta(volume, "cpu"))
        seconds.append(s)
        seconds_plain.append(s0)
        rows.append((r.prediction == classes[items[i][1]], r.uncertain, r.out_of_distribution, r.ood_distance))
    right = np.array([r[0] for r in rows])
    unsure = np.array([r[1] for r in rows])
    ood = np.array([r[2] for r in rows])
    print(f"{spec.name} v{spec.manifest.get('version')} on {len(rows)} test X-rays (patient-wise split, seed {seed}); "
          f"threshold {spec.manifest.get('decision', {}).get('threshold')}")
    print(f"  accuracy {right.mean():.3f}; flagged uncertain {unsure.sum()} ({unsure.mean():.1%}): accuracy "
          f"{right[unsure].mean() if unsure.any() else float('nan'):.3f} there, "
          f"{right[~unsure].mean() if (~unsure).any() else float('nan'):.3f} on the others")
    print(f"  out of distribution flagged on {ood.sum()} of {len(ood)} chest X-rays ({ood.mean():.1%})")
    print(f"  seconds per image (median): {statistics.median(seconds):.3f} with TTA, "
          f"{statistics.median(seconds_plain):.3f} without")
    others = []
    for path in sorted((REPO / "resources" / "demo" / "ct_chest_20").glob("*"))[:10:3]:
        others.append(open_volume(str(path)))
    for path in sorted((DATA / "hippocampus" / "imagesTr").glob("*.nii.gz"))[:3]:
        v = open_volume(str(path))
        others.append(v.copy_geometry(v.data[v.shape[0] // 2][None].copy()))
    for path in sorted((DATA / "brain_t1").rglob("*.nii*"))[:3]:
        v = open_volume(str(path))
        others.append(v.copy_geometry(v.data[v.shape[0] // 2][None].copy()))
    flagged, distances = 0, []
    for v in others:
        v = v.copy_geometry(np.asarray(v.data[:1]), modality="XR", is_2d=True)
        r = with_tta(v, "cpu")
        flagged += r.out_of_distribution
        distances.append(r.ood_distance)
    print(f"  out of distribution flagged on {flagged} of {len(others)} CT / MR slices given as X-rays "
          f"(distances {', '.join(f'{d:.1f}' for d in distances)}; threshold {spec.manifest['ood']['threshold']}; "
          f"test X-rays median {statistics.median(r[3] for r in rows):.1f})")


def segmentation(folder: Path, limit: int | None) -> None:
    from medviewer.ai.metrics import dice, roc_auc
    from medviewer.ai.registry import read_manifest
    from medviewer.ai.tasks.segmentation import Segmentation
    from medviewer.io import open_volume

    spec = read_manifest(folder)
    cases = spec.manifest.get("training", {}).get("test_cases", [])[:limit or None]
    plain_manifest = {k: v for k, v in spec.manifest.items() if k != "test_time_augmentation"}
    plain = Segmentation(type(spec)(folder=spec.folder, manifest=plain_manifest))
    mirrored = Segmentation(spec)
    d_tta, d_plain, u_wrong, u_right, aucs = [], [], [], [], []
    for name in cases:
        image = DATA / "hippocampus" / "imagesTr" / f"{name}.nii.gz"
        truth = open_volume(str(DATA / "hippocampus" / "labelsTr" / f"{name}.nii.gz")).data
        volume = open_volume(str(image))
        r, r0 = mirrored(volume, "cpu"), plain(volume, "cpu")
        labels = r.labels.data
        d_tta.append(np.mean([dice(labels == v, truth == v) for v in (1, 2)]))
        d_plain.append(np.mean([dice(r0.labels.data == v, truth == v) for v in (1, 2)]))
        near = (labels > 0) | (truth > 0)
        zs, ys, xs = np.nonzero(near)
        box = (slice(zs.min(), zs.max() + 1), slice(ys.min(), ys.max() + 1), slice(xs.min(), xs.max() + 1))
        wrong = (labels != truth)[box]
        u = r.uncertainty.data[box]
        u_wrong.append(float(u[wrong].mean()))
        u_right.append(float(u[~wrong].mean()))
        aucs.append(roc_auc(wrong.ravel(), u.ravel()))
    print(f"{spec.name} v{spec.manifest.get('version')} on {len(cases)} test cases: mean Dice "
          f"{np.mean(d_tta):.4f} with the x-mirror, {np.mean(d_plain):.4f} without")
    print(f"  uncertainty (normalised entropy) on wrong voxels {np.mean(u_wrong):.3f}, on right ones "
          f"{np.mean(u_right):.3f}; ROC AUC of the uncertainty for wrong voxels {np.nanmean(aucs):.3f} "
          f"(per case {min(aucs):.3f}-{max(aucs):.3f}, in the box around prediction and truth)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cnn", type=Path, default=REPO / "resources" / "models" / "pneumonia-cnn")
    parser.add_argument("--unet", type=Path, default=REPO / "resources" / "models" / "hippocampus-unet")
    parser.add_argument("--limit", type=int, help="at most this many images per class / cases")
    args = parser.parse_args()
    if not DATA.is_dir():
        print(f"no shared data at {DATA}")
        return 1
    classification(args.cnn, args.limit)
    segmentation(args.unet, args.limit)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
