"""medviewer evaluate with the shipped models on a few real labelled images."""
import json
import os
import subprocess
import sys

import pytest

from tests.conftest import REPO, shared

pytest.importorskip("torch")
pytest.importorskip("monai")


def _run(*args, tmp_path):
    env = {**os.environ, "MEDVIEWER_DATA_DIR": str(tmp_path / "user"), "PYTHONWARNINGS": "ignore"}
    proc = subprocess.run([sys.executable, "-m", "medviewer", "evaluate", *map(str, args), "--json"],
                          capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_evaluate_classifier_reports_the_binary_metrics(tmp_path):
    if not (REPO / "resources/models/pneumonia-cnn/manifest.json").is_file():
        pytest.skip("shipped pneumonia-cnn absent")
    data = shared("chest_xray", "train")
    result = _run("--model", "pneumonia-cnn", "--data", data, "--limit", "8", tmp_path=tmp_path)
    assert result["n"] == 16 and result["positive_class"] == "PNEUMONIA"
    assert result["tp"] + result["fn"] == 8 and result["tn"] + result["fp"] == 8
    assert 0.0 <= result["roc_auc"] <= 1.0 and len(result["roc"]["fpr"]) == len(result["roc"]["tpr"])


def test_evaluate_segmentation_reports_dice_and_hd95_per_label(tmp_path):
    if not (REPO / "resources/models/hippocampus-unet/manifest.json").is_file():
        pytest.skip("shipped hippocampus-unet absent")
    data = shared("hippocampus")
    result = _run("--model", "hippocampus-unet", "--data", data, "--limit", "3", tmp_path=tmp_path)
    assert result["n"] == 3 and set(result["labels"]) == {"anterior", "posterior"}
    for m in result["labels"].values():
        assert 0.5 < m["dice"] <= 1.0 and m["hd95_mm"] >= 0  # a real model on real cases, not chance
