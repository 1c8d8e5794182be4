"""medviewer infer / the classification task on real images with a real (small, untrained) MONAI classifier."""
import hashlib
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from medviewer.ai.inference import IncompatibleInput, check_input
from medviewer.ai.registry import read_manifest
from medviewer.ai.tasks.classification import Classification
from medviewer.io import open_volume
from tests.conftest import DEMO

torch = pytest.importorskip("torch")
pytest.importorskip("monai")

NET = {"class": "monai.networks.nets.ResNet",
       "args": {"block": "basic", "layers": [1, 1, 1, 1], "block_inplanes": [8, 8, 8, 8], "spatial_dims": 2,
                "n_input_channels": 1, "num_classes": 2}}


def classifier_folder(folder, modality="XR"):
    import monai.networks.nets as nets

    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    args = dict(NET["args"])
    torch.save(nets.ResNet(**args).state_dict(), folder / "model.pt")
    manifest = {"name": "tiny-xr", "version": "0", "task": "classification",
                "input": {"modality": modality, "dims": 2, "channels": 1, "size": [64, 64], "normalisation": "zscore"},
                "outputs": {"classes": ["NORMAL", "PNEUMONIA"]}, "network": NET, "weights": "model.pt",
                "sha256": hashlib.sha256((folder / "model.pt").read_bytes()).hexdigest(),
                "intended_use": "research and demonstration, not for clinical use"}
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return read_manifest(folder)


def test_classify_gives_a_probability_per_class(tmp_path):
    spec = classifier_folder(tmp_path / "m")
    result = Classification(spec)(open_volume(str(DEMO / "xray" / "chest_xray_pneumonia.jpeg")), "cpu")
    probs = result.probabilities
    assert set(probs) == {"NORMAL", "PNEUMONIA"} and sum(probs.values()) == pytest.approx(1.0, abs=1e-5)
    assert result.prediction in probs and result.device == "cpu"
    assert set(result.timings) == {"pre", "load", "predict", "invert", "post"}


def test_inputs_that_break_the_contract_are_refused_before_running(tmp_path):
    spec = classifier_folder(tmp_path / "m")
    ct = open_volume(str(DEMO / "ct_chest_20"))
    assert "2D model" in check_input(spec, ct)
    with pytest.raises(IncompatibleInput, match="20-slice volume"):
        Classification(spec)(ct, "cpu")
    mr_model = classifier_folder(tmp_path / "mr", modality="MR")
    assert "expects MR" in check_input(mr_model, open_volume(str(DEMO / "xray" / "chest_xray_pneumonia.jpeg")))


def test_infer_command_prints_one_json_line_per_input_and_reports_refusals(tmp_path):
    classifier_folder(tmp_path / "models" / "tiny")
    env = {**os.environ, "MEDVIEWER_DATA_DIR": str(tmp_path / "user"), "PYTHONWARNINGS": "ignore"}
    proc = subprocess.run([sys.executable, "-m", "medviewer", "infer", "--model", "tiny-xr", "--models",
                           str(tmp_path / "models"), "--json", str(DEMO / "xray"), str(DEMO / "ct_chest_20")],
                          capture_output=True, text=True, timeout=180, env=env)
    lines = [json.loads(ln) for ln in proc.stdout.splitlines()]
    assert len(lines) == 1 and lines[0]["input"].endswith("chest_xray_pneumonia.jpeg")
    # a model without threshold or OOD reference: the probabilities, the prediction and the
    # test-time-augmentation interval with its flag
    keys = {"input", "probabilities", "prediction", "interval", "uncertain"}
    assert set(lines[0]) == keys | ({"flags"} if lines[0]["uncertain"] else set())
    assert lines[0]["interval"]["low"] <= lines[0]["interval"]["high"]
    assert proc.returncode == 1 and "2D model" in proc.stderr  # the CT was refused, with the reason
    assert np.isclose(sum(lines[0]["probabilities"].values()), 1.0)


def test_infer_segmentation_writes_a_label_map_on_the_input_grid(tmp_path):
    import SimpleITK as sitk

    from tests.conftest import REPO

    if not (REPO / "resources" / "models" / "hippocampus-unet" / "manifest.json").is_file():
        pytest.skip("the shipped hippocampus-unet is not in resources/models")
    mri = DEMO / "mri_hippocampus" / "hippocampus_001.nii.gz"
    env = {**os.environ, "MEDVIEWER_DATA_DIR": str(tmp_path / "user"), "PYTHONWARNINGS": "ignore"}
    proc = subprocess.run([sys.executable, "-m", "medviewer", "infer", "--model", "hippocampus-unet", str(mri),
                           "--out", str(tmp_path / "out"), "--json"], capture_output=True, text=True,
                          timeout=180, env=env)
    assert proc.returncode == 0, proc.stderr
    line = json.loads(proc.stdout.strip().splitlines()[-1])
    assert line["input"] == str(mri) and line["output"].endswith(os.sep + "hippocampus_001.nii.gz")
    out, src = sitk.ReadImage(line["output"]), sitk.ReadImage(str(mri))
    assert out.GetSize() == src.GetSize() and np.allclose(out.GetDirection(), src.GetDirection())
    assert np.allclose(out.GetOrigin(), src.GetOrigin()) and np.allclose(out.GetSpacing(), src.GetSpacing())
    assert set(np.unique(sitk.GetArrayFromImage(out))) == {0, 1, 2}
