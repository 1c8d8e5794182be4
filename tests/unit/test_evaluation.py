"""medviewer evaluate: the wiring against hand-computed small cases (inference replaced by a task
whose answers are written in the images), and the shipped models on a few real labelled images."""
import json
import os

import numpy as np
import pytest
from PIL import Image

from medviewer.ai.registry import ModelSpec
from medviewer.core.errors import MedViewerError
from tests.conftest import REPO, shared

# --- hand-computed cases: the "model" reads its answer from the image -----------------------------
NORMAL_P = [0.1, 0.2, 0.61, 0.71]
PNEUMONIA_P = [0.4, 0.65, 0.8, 0.9]


def _folder_per_class(root, values: dict):
    for cls, ps in values.items():
        (root / cls).mkdir(parents=True)
        for n, p in enumerate(ps):
            Image.fromarray(np.full((8, 8), int(round(p * 100)), np.uint8)).save(root / cls / f"{n}.png")
    return root


def _spec(tmp_path, task="classification", **manifest):
    base = {"name": "fake", "task": task, "input": {"dims": 2}, "weights": "none",
            "outputs": {"classes": ["NORMAL", "PNEUMONIA"]}}
    return ModelSpec(folder=tmp_path, manifest={**base, **manifest})


@pytest.fixture
def fake_tasks(monkeypatch):
    """make_task replaced: classify -> probability = pixel value / 100 (calibrated) and 1 - it
    (uncalibrated), threshold 0.62, temperature 2; anomaly -> score = pixel / 100; segment -> the
    image itself as the label map."""
    from medviewer.ai import tasks
    from medviewer.ai.tasks.results import AnomalyResult, ClassificationResult, SegmentationResult

    def make_task(name, spec, **options):
        def run(volume, device=None, progress=None, cancel=None):
            v = float(np.asarray(volume.data).max()) / 100
            if name == "classify":
                return ClassificationResult(probabilities={"NORMAL": 1 - v, "PNEUMONIA": v},
                                            prediction="PNEUMONIA" if v >= 0.62 else "NORMAL",
                                            uncalibrated={"NORMAL": v, "PNEUMONIA": 1 - v}, temperature=2.0,
                                            threshold=0.62, positive_class="PNEUMONIA", rule="Youden's J")
            if name == "anomaly":
                return AnomalyResult(map=volume, score=v)
            labels = volume.copy_geometry(np.asarray(volume.data).astype(np.uint8))
            return SegmentationResult(labels=labels, probabilities=labels, uncertainty=labels)
        return run

    monkeypatch.setattr(tasks, "make_task", make_task)


def test_classification_uses_the_manifest_threshold_and_calibration(tmp_path, fake_tasks):
    from medviewer.ai.evaluation import evaluate

    data = _folder_per_class(tmp_path / "data", {"NORMAL": NORMAL_P, "PNEUMONIA": PNEUMONIA_P})
    r = evaluate(_spec(tmp_path), str(data), n_boot=200)
    assert r["threshold"] == 0.62 and r["threshold_rule"] == "Youden's J" and r["temperature"] == 2.0
    # >= 0.62: pneumonia 0.65, 0.8, 0.9 caught, 0.4 missed; normal 0.71 is a false positive
    assert (r["tp"], r["fn"], r["tn"], r["fp"]) == (3, 1, 3, 1)
    assert r["accuracy"]["value"] == 0.75 and r["sensitivity"]["value"] == 0.75
    assert r["roc_auc"]["value"] == pytest.approx(13 / 16)  # 13 of the 16 (pneumonia, normal) pairs ordered
    # ECE by hand: bins 0.1, 0.2, 0.4, 0.71, 0.8, 0.9 alone, 0.61 and 0.65 share [0.6, 0.7)
    ece = ((0.1 + 0.2 + 0.71 + 0.6 + 0.2 + 0.1) + 2 * abs(0.63 - 0.5)) / 8
    assert r["ece"]["value"] == pytest.approx(ece, abs=1e-4)
    assert r["ece"]["ci95"][0] <= r["ece"]["value"] <= r["ece"]["ci95"][1]
    assert r["ece_uncalibrated"]["value"] > r["ece"]["value"]  # the uncalibrated answers are inverted
    assert r["accuracy"]["ci95"][0] < 0.75 < r["accuracy"]["ci95"][1]
    assert len(r["roc"]["fpr"]) == 9 and r["reliability"]["bins"][0]["n"] == 1


def test_anomaly_models_get_a_roc_auc_of_their_score_normal_against_the_rest(tmp_path, fake_tasks):
    from medviewer.ai.evaluation import evaluate

    data = _folder_per_class(tmp_path / "data", {"NORMAL": NORMAL_P, "PNEUMONIA": PNEUMONIA_P})
    r = evaluate(_spec(tmp_path, "anomaly"), str(data), n_boot=200)
    assert (r["n_normal"], r["n_other"]) == (4, 4)
    assert r["roc_auc"]["value"] == pytest.approx(13 / 16)
    lo, hi = r["roc_auc"]["ci95"]
    assert lo <= 13 / 16 <= hi and hi <= 1.0
    with pytest.raises(MedViewerError, match="NORMAL folder"):
        evaluate(_spec(tmp_path, "anomaly"), str(_folder_per_class(tmp_path / "d2", {"A": [0.1], "B": [0.2]})))


def _msd(root, cases: dict):
    import SimpleITK as sitk

    for sub in ("imagesTr", "labelsTr"):
        (root / sub).mkdir(parents=True)
    for name, (pred, truth) in cases.items():
        for sub, arr in (("imagesTr", pred), ("labelsTr", truth)):
            img = sitk.GetImageFromArray(arr.astype(np.uint8))
            img.SetSpacing((1.0, 1.0, 2.0))
            sitk.WriteImage(img, str(root / sub / f"{name}.nii.gz"))
    return root


def test_segmentation_adds_voxel_and_component_precision_recall(tmp_path, fake_tasks):
    from medviewer.ai.evaluation import evaluate

    truth = np.zeros((4, 20, 20), np.uint8)
    truth[1:3, 2:6, 2:6] = 1  # two lesions of 32 voxels
    truth[1:3, 12:16, 12:16] = 1
    pred = np.zeros_like(truth)
    pred[1:3, 2:6, 2:4] = 1  # half of the first lesion (16 voxels), the second missed
    pred[1:3, 2:6, 16:18] = 1  # and a false positive of 16 voxels
    data = _msd(tmp_path / "msd", {"case_a": (pred, truth), "case_b": (truth, truth)})
    spec = _spec(tmp_path, "segmentation", input={"dims": 3},
                 outputs={"labels": {"1": {"name": "lesion"}}}, training={"test_cases": ["case_a"]})
    r = evaluate(spec, str(data), n_boot=200)
    lesion = r["labels"]["lesion"]
    # case a: precision 16/32, recall 16/64, Dice 2*16/96; case b perfect -> the means
    assert lesion["precision"]["value"] == pytest.approx((0.5 + 1) / 2, abs=1e-4)
    assert lesion["recall"]["value"] == pytest.approx((0.25 + 1) / 2, abs=1e-4)
    assert lesion["dice"]["value"] == pytest.approx((32 / 96 + 1) / 2, abs=1e-4)
    assert lesion["f1"]["value"] == lesion["dice"]["value"]
    # components over both cases: true 4 (found 1 + 2), predicted 4 (true 1 + 2, one false positive)
    comp = lesion["components"]
    assert (comp["n_true"], comp["n_pred"]) == (4, 4)
    assert comp["recall"]["value"] == 0.75 and comp["precision"]["value"] == 0.75
    assert r["mean_dice"]["value"] == lesion["dice"]["value"]
    test_only = evaluate(spec, str(data), split="test", n_boot=50)
    assert test_only["n"] == 1 and test_only["labels"]["lesion"]["recall"]["value"] == 0.25
    with pytest.raises(MedViewerError, match="no validation/test split"):
        evaluate(spec, str(data), split="validation")


def test_a_classifier_without_a_recorded_split_refuses_validation_and_test(tmp_path, fake_tasks):
    from medviewer.ai.evaluation import evaluate

    data = _folder_per_class(tmp_path / "data", {"NORMAL": NORMAL_P, "PNEUMONIA": PNEUMONIA_P})
    with pytest.raises(MedViewerError, match="no validation/test split"):
        evaluate(_spec(tmp_path), str(data), split="test")
    with pytest.raises(MedViewerError, match="unknown split"):
        evaluate(_spec(tmp_path), str(data), split="train")


def test_cli_out_writes_the_reliability_diagram_and_prints_intervals(monkeypatch, tmp_path, capsys):
    import medviewer.ai.evaluation as evaluation
    from medviewer.cli import main

    if not (REPO / "resources/models/pneumonia-cnn/manifest.json").is_file():
        pytest.skip("shipped pneumonia-cnn absent")
    result = {"model": "pneumonia-cnn", "task": "classification", "n": 8, "positive_class": "PNEUMONIA",
              "temperature": 2.0, "roc_auc": {"value": 0.81, "ci95": [0.5, 1.0]},
              "roc": {"fpr": [0, 0.5, 1], "tpr": [0, 0.75, 1]},
              "reliability": {"ece": 0.27, "bins": [{"mean_predicted": 0.1, "observed": 0.0},
                                                    {"mean_predicted": 0.85, "observed": 1.0}]}}
    monkeypatch.setenv("MEDVIEWER_DATA_DIR", str(tmp_path / "user"))
    monkeypatch.setattr(evaluation, "evaluate", lambda spec, *a, **k: result)
    monkeypatch.chdir(tmp_path)
    assert main(["evaluate", "--model", "pneumonia-cnn", "--data", "x", "--out", "res"]) == 0
    out = capsys.readouterr().out
    assert "roc_auc: 0.81 [0.5, 1.0]" in out and "reliability" not in out  # bins go to the JSON and PNG
    assert sorted(os.listdir(tmp_path / "res")) == ["evaluation.json", "reliability_pneumonia-cnn.png",
                                                    "roc_pneumonia-cnn.png"]
    with Image.open(tmp_path / "res" / "reliability_pneumonia-cnn.png") as im:
        assert len(im.convert("RGB").getcolors(maxcolors=1 << 20)) > 50


# --- the shipped models on a few real images (in this process: torch is imported once) -----------
def _evaluate_shipped(name, data, **options):
    from medviewer.ai.evaluation import evaluate
    from medviewer.ai.registry import read_manifest

    folder = REPO / "resources" / "models" / name
    if not (folder / "manifest.json").is_file():
        pytest.skip(f"shipped {name} absent")
    return evaluate(read_manifest(folder), str(data), "cpu", n_boot=200, **options)


def test_evaluate_classifier_reports_the_binary_metrics_with_intervals():
    pytest.importorskip("torch")
    pytest.importorskip("monai")
    result = _evaluate_shipped("pneumonia-cnn", shared("chest_xray", "train"), limit=8)
    assert result["n"] == 16 and result["positive_class"] == "PNEUMONIA"
    assert result["tp"] + result["fn"] == 8 and result["tn"] + result["fp"] == 8
    auc = result["roc_auc"]
    assert 0.0 <= auc["ci95"][0] <= auc["value"] <= auc["ci95"][1] <= 1.0
    assert len(result["roc"]["fpr"]) == len(result["roc"]["tpr"]) and 0 <= result["ece"]["value"] <= 1
    json.dumps(result)  # what --json prints and --out writes


def test_evaluate_segmentation_reports_dice_hd95_and_precision_recall_per_label():
    pytest.importorskip("torch")
    pytest.importorskip("monai")
    result = _evaluate_shipped("hippocampus-unet", shared("hippocampus"), limit=3)
    assert result["n"] == 3 and set(result["labels"]) == {"anterior", "posterior"}
    for m in result["labels"].values():
        assert 0.5 < m["dice"]["value"] <= 1.0 and m["hd95_mm"]["value"] >= 0  # a real model, not chance
        assert 0.5 < m["precision"]["value"] <= 1 and 0.5 < m["recall"]["value"] <= 1
        assert m["components"]["n_true"] >= 3


def test_evaluate_the_anomaly_detector_separates_normal_from_pneumonia():
    pytest.importorskip("sklearn")
    result = _evaluate_shipped("cxr-anomaly", shared("chest_xray", "train"), limit=10)
    assert (result["n_normal"], result["n_other"]) == (10, 10)
    assert result["roc_auc"]["value"] > 0.6  # its validation AUC is 0.90
