"""Training keeps its promises: a patient-wise train/validation/test split, a hard time budget
that still writes the model, resuming from the per-epoch checkpoint as if never interrupted, and
the same model from the same seed. Synthetic images made here, so CI runs it without shared data."""
from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest

from medviewer.ai.training.classification import discover_classes, patient_id, train_val_test_split


def _xray_folder(root, n_patients=14, per_patient=2, size=40):
    """Two classes of grey PNGs: PNEUMONIA has a bright blob, NORMAL does not; two images per patient."""
    from PIL import Image

    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:size, :size]
    for cls in ("NORMAL", "PNEUMONIA"):
        (root / cls).mkdir(parents=True)
        for p in range(n_patients):
            for k in range(per_patient):
                a = rng.normal(90, 20, (size, size))
                if cls == "PNEUMONIA":
                    cy, cx = rng.integers(10, size - 10, 2)
                    a += 110 * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / 30.0)
                name = f"person{p + (100 if cls == 'PNEUMONIA' else 0)}_virus_{k}.jpeg".replace(".jpeg", ".png")
                Image.fromarray(np.clip(a, 0, 255).astype(np.uint8)).save(root / cls / name)
    return root


def _train(data, out, **kw):
    torch = pytest.importorskip("torch")
    pytest.importorskip("monai")
    from medviewer.ai.training import train_classification

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return train_classification(data, out, image_size=32, batch_size=8, name="tiny-cxr",
                                    **{"epochs": 2, **kw})
    finally:
        torch.set_num_threads(threads)


def _sha(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_three_way_split_is_patient_wise_stratified_and_repeatable():
    items = [(f"person{p}_bacteria_{k}.jpeg", p % 2) for p in range(60) for k in range(1 + p % 3)]
    train, val, test = train_val_test_split(items, 0.15, 0.15, seed=0)
    assert sorted(train + val + test) == list(range(len(items)))
    groups = [{patient_id(items[i][0]) for i in s} for s in (train, val, test)]
    assert not (groups[0] & groups[1]) and not (groups[0] & groups[2]) and not (groups[1] & groups[2])
    for s in (val, test):  # both classes on each side, about 15% of the images each
        assert {items[i][1] for i in s} == {0, 1}
        assert 0.08 < len(s) / len(items) < 0.25
    assert train_val_test_split(items, 0.15, 0.15, seed=0) == (train, val, test)
    assert train_val_test_split(items, 0.15, 0.15, seed=1) != (train, val, test)


def test_same_seed_gives_the_same_model_and_the_test_split_is_reported_apart(tmp_path):
    data = _xray_folder(tmp_path / "data")
    m1 = _train(data, tmp_path / "a" / "tiny-cxr")
    m2 = _train(data, tmp_path / "b" / "tiny-cxr")
    assert _sha(tmp_path / "a" / "tiny-cxr" / "model.pt") == _sha(tmp_path / "b" / "tiny-cxr" / "model.pt")
    assert m1 == {**m2, "train_seconds": m1["train_seconds"], "images_per_second": m1["images_per_second"]}
    manifest = json.loads((tmp_path / "a" / "tiny-cxr" / "manifest.json").read_text())
    assert m1["n_train"] + m1["n_val"] + m1["n_test"] == 56
    for split in ("validation", "test"):
        for key in ("accuracy", "sensitivity", "specificity", "roc_auc", "balanced_accuracy"):
            lo, hi = m1[split][key]["ci95"]
            assert lo <= m1[split][key]["value"] <= hi
        assert 0 <= m1[split]["ece"] <= 1
        assert split in m1[split]["measured_on"]
    threshold = manifest["decision"]["threshold"]
    assert 0 <= threshold <= 1 and m1["test"]["threshold"] == threshold == m1["validation"]["threshold"]
    assert "Youden" in manifest["decision"]["rule"] and manifest["calibration"]["temperature"] > 0
    assert "validation" in manifest["calibration"]["fitted_on"]
    ood = np.load(tmp_path / "a" / "tiny-cxr" / manifest["ood"]["file"])
    assert ood["precision"].shape == (ood["mean"].shape[0],) * 2 and manifest["ood"]["threshold"] > 0
    card = (tmp_path / "a" / "tiny-cxr" / "MODEL_CARD.md").read_text()
    assert "| test |" in card and "| validation |" in card and str(threshold) in card and "not for clinical use" in card
    for png in ("roc.png", "reliability.png"):
        assert (tmp_path / "a" / "tiny-cxr" / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_resume_continues_as_the_uninterrupted_run_would(tmp_path):
    data = _xray_folder(tmp_path / "data")
    _train(data, tmp_path / "whole" / "tiny-cxr", epochs=3)

    class Interrupted(Exception):
        pass

    def stop_after_epoch_2(line):
        if line.startswith("epoch 2/"):
            raise Interrupted

    out = tmp_path / "cut" / "tiny-cxr"
    with pytest.raises(Interrupted):
        _train(data, out, epochs=3, progress=stop_after_epoch_2)
    assert (out / "checkpoints" / "last.pt").is_file() and not (out / "model.pt").exists()
    lines = []
    metrics = _train(data, out, epochs=3, resume=True, progress=lines.append)
    assert any(line.startswith("resumed after epoch 2") for line in lines)
    assert [line.split(":")[0] for line in lines if line.startswith("epoch ")] == ["epoch 3/3"]
    assert metrics["resumed_after_epoch"] == 2 and metrics["epochs_run"] == 3
    assert _sha(out / "model.pt") == _sha(tmp_path / "whole" / "tiny-cxr" / "model.pt")
    assert not (out / "checkpoints").exists()


def test_time_budget_ends_the_run_and_still_writes_the_model(tmp_path):
    data = _xray_folder(tmp_path / "data")
    out = tmp_path / "m" / "tiny-cxr"
    metrics = _train(data, out, epochs=500, max_minutes=0.05)
    assert "time budget" in metrics["stopped"] and metrics["epochs_run"] < 500
    assert metrics["planned_epochs"] < 500
    assert json.loads((out / "manifest.json").read_text())["training"]["time_budget_minutes"] == 0.05
    assert (out / "model.pt").is_file() and not (out / "checkpoints").exists()


def test_budget_plans_the_epochs_that_fit_and_the_schedule_ends_annealed():
    torch = pytest.importorskip("torch")
    import time

    from medviewer.ai.backends.train_schedule import Budget, CosineSchedule

    b = Budget(time.monotonic(), minutes=1.0, reserve_s=10.0)  # 50 s for the loop
    assert b.epochs_that_fit(10.0, done=0, wanted=100) in (4, 5)
    assert b.epochs_that_fit(10.0, done=0, wanted=3) == 3
    assert Budget(time.monotonic(), None).epochs_that_fit(10.0, 0, 7) == 7
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
    sched = CosineSchedule(opt, 1.0, total=100, warmup=10)
    lrs = []
    for _ in range(40):
        sched.step()
        lrs.append(opt.param_groups[0]["lr"])
    sched.replan(50)  # fewer epochs fit: the decay finishes at step 50 instead of 100
    for _ in range(10):
        sched.step()
        lrs.append(opt.param_groups[0]["lr"])
    assert lrs[8] == pytest.approx(1.0)
    assert all(a >= b for a, b in zip(lrs[9:], lrs[10:]))
    assert lrs[-1] == pytest.approx(0.01)


def test_segmentation_same_seed_same_model_and_test_split_metrics(tmp_path):
    torch = pytest.importorskip("torch")
    pytest.importorskip("monai")
    import SimpleITK as sitk

    from medviewer.ai.training.segmentation import train_segmentation

    rng = np.random.default_rng(0)
    (tmp_path / "d" / "imagesTr").mkdir(parents=True)
    (tmp_path / "d" / "labelsTr").mkdir(parents=True)
    zz, yy, xx = np.mgrid[:36, :50, :36]
    for k in range(8):
        c = rng.integers(14, 22, 3)
        lab = ((zz - c[0]) ** 2 + (yy - c[1] - 8) ** 2 + (xx - c[2]) ** 2 < 30).astype(np.uint8)
        lab[((zz - c[0]) ** 2 + (yy - c[1] + 8) ** 2 + (xx - c[2]) ** 2) < 30] = 2
        img = rng.normal(100, 10, lab.shape) + 60 * (lab > 0)
        for arr, folder in ((img.astype(np.float32), "imagesTr"), (lab, "labelsTr")):
            sitk.WriteImage(sitk.GetImageFromArray(arr), str(tmp_path / "d" / folder / f"case_{k:03d}.nii.gz"))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        m1 = train_segmentation(tmp_path / "d", tmp_path / "a", epochs=1, progress=lambda _l: None)
        m2 = train_segmentation(tmp_path / "d", tmp_path / "b", epochs=1, progress=lambda _l: None)
    finally:
        torch.set_num_threads(threads)
    assert _sha(tmp_path / "a" / "model.pt") == _sha(tmp_path / "b" / "model.pt")
    assert m1["test"] == m2["test"] and m1["n_test"] >= 1 and m1["n_val"] >= 1
    manifest = json.loads((tmp_path / "a" / "manifest.json").read_text())
    assert manifest["test_time_augmentation"]["mirror_axes"] == ["x"]
    assert set(manifest["training"]["test_cases"]).isdisjoint(manifest["training"]["val_cases"])
    for lab in ("1", "2"):
        row = m1["test"]["per_label"][lab]
        for key in ("dice", "hd95_mm", "precision", "recall", "f1"):
            assert set(row[key]) == {"value", "ci95"}
        assert row["f1"]["value"] == pytest.approx(row["dice"]["value"], abs=1e-3)  # voxel F1 is Dice


@pytest.mark.parametrize("name", ["pneumonia-cnn", "hippocampus-unet", "pneumonia-svm", "pneumonia-rf"])
def test_each_shipped_model_card_is_its_manifest_with_both_splits(name):
    from medviewer.ai.training.model_card import card_text
    from tests.conftest import REPO

    folder = REPO / "resources" / "models" / name
    card = (folder / "MODEL_CARD.md").read_text(encoding="utf-8")
    assert card == card_text(folder)  # regenerate with python -m medviewer.ai.training.model_card FOLDER
    manifest = json.loads((folder / "manifest.json").read_text())
    for split in ("validation", "test"):
        assert manifest["metrics"][split]["measured_on"] in card
    assert "not for clinical use" in card and manifest["training"]["command"] in card
