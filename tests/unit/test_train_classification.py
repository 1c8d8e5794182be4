"""Training the chest X-ray classifier: patient-wise split, metrics, a tiny real training run whose
model folder the registry accepts, and the shipped pneumonia-cnn model on the demo X-ray."""
import hashlib
import json
import os

import numpy as np
import pytest

from medviewer.ai.registry import REQUIRED, discover_models, read_manifest
from medviewer.ai.metrics import binary_metrics, roc_auc
from medviewer.ai.preprocess import preprocess_image
from medviewer.ai.training.classification import patient_id, patient_split
from tests.conftest import DEMO, REPO, shared

SHIPPED = REPO / "resources" / "models" / "pneumonia-cnn"


def test_patient_id_kermany_names():
    assert patient_id("x/PNEUMONIA/person1000_bacteria_2931.jpeg") == "person1000"
    assert patient_id("person1000_virus_1681.jpeg") == "person1000"
    assert patient_id("person447_virus_921_1.jpeg") == "person447"
    assert patient_id("IM-0115-0001.jpeg") == "IM-0115"
    assert patient_id("IM-0553-0001-0002.jpeg") == "IM-0553"  # more images of the same patient
    assert patient_id("NORMAL2-IM-1427-0001.jpeg") == "NORMAL2-IM-1427"
    assert patient_id("scan-0007.png") == "scan"


def test_patient_split_has_no_overlap_and_is_stratified():
    items = []
    for p in range(60):
        items += [(f"NORMAL/IM-{p:04d}-{k:04d}.jpeg", 0) for k in range(1, 1 + p % 3 + 1)]
    for p in range(150):
        items += [(f"PNEUMONIA/person{p}_{kind}_{p * 7 + k}.jpeg", 1)
                  for k, kind in enumerate(["bacteria", "virus"][: 1 + p % 2])]
    train, val = patient_split(items, val_fraction=0.18, seed=0)
    assert sorted(train + val) == list(range(len(items)))
    train_p = {patient_id(items[i][0]) for i in train}
    val_p = {patient_id(items[i][0]) for i in val}
    assert not train_p & val_p
    for label in (0, 1):
        n = sum(1 for _, c in items if c == label)
        n_val = sum(1 for i in val if items[i][1] == label)
        assert 0.15 * n <= n_val <= 0.25 * n
    assert patient_split(items, seed=0) == (train, val)  # fixed seed: same split
    assert patient_split(items, seed=1) != (train, val)


def test_auc_and_metrics():
    labels = np.array([0, 0, 1, 1])
    assert roc_auc(labels, np.array([0.1, 0.4, 0.35, 0.8])) == pytest.approx(0.75)
    assert roc_auc(labels, np.array([0.5, 0.5, 0.5, 0.5])) == pytest.approx(0.5)
    assert roc_auc(labels, np.array([0.1, 0.2, 0.3, 0.4])) == 1.0
    m = binary_metrics(labels.astype(bool), np.array([0.1, 0.6, 0.7, 0.2]))
    assert (m["sensitivity"], m["specificity"], m["accuracy"]) == (0.5, 0.5, 0.5)


def test_preprocess_grey_resized_zscored():
    rgb = np.zeros((1, 50, 40, 3), np.uint8)
    rgb[0, :, 20:] = 200
    x = preprocess_image(rgb, 32)
    assert x.shape == (1, 32, 32) and x.dtype == np.float32
    assert abs(float(x.mean())) < 1e-4 and float(x.std()) == pytest.approx(1.0, abs=1e-3)
    assert preprocess_image(rgb[0, ..., 0][None], 32) == pytest.approx(x, abs=1e-4)


def test_tiny_training_run_makes_an_available_model(tmp_path):
    torch = pytest.importorskip("torch")
    pytest.importorskip("monai")
    from medviewer.ai.training import train_classification

    source = shared("chest_xray", "train")
    data = tmp_path / "data"
    for cls in ("NORMAL", "PNEUMONIA"):
        (data / cls).mkdir(parents=True)
        for f in sorted(os.listdir(source / cls))[:24]:
            os.symlink(source / cls / f, data / cls / f)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        out = tmp_path / "models" / "tiny-cxr"
        lines = []
        metrics = train_classification(data, out, image_size=32, epochs=1, batch_size=16, name="tiny-cxr",
                                       progress=lines.append)
    finally:
        torch.set_num_threads(threads)
    assert any(line.startswith("epoch 1/1") for line in lines)
    manifest = json.loads((out / "manifest.json").read_text())
    assert not (out / "checkpoints").exists()  # the running checkpoint is gone once model.pt is written
    assert not [k for k in REQUIRED if k not in manifest]
    assert manifest["sha256"] == hashlib.sha256((out / "model.pt").read_bytes()).hexdigest()
    assert manifest["input"] == {**manifest["input"], "modality": "XR", "dims": 2, "channels": 1,
                                 "size": [32, 32], "normalisation": "zscore"}
    assert manifest["outputs"]["classes"] == ["NORMAL", "PNEUMONIA"]
    assert manifest["network"]["class"].startswith("monai.networks.nets.")
    assert "CC BY 4.0" in manifest["training"]["data_licence"] and "rscbjbr9sj" in manifest["training"]["data"]
    for key in ("validation", "test", "n_train", "n_val", "n_test", "epochs_run"):
        assert key in manifest["metrics"] and metrics[key] == manifest["metrics"][key]
    for key in ("accuracy", "sensitivity", "specificity", "roc_auc"):
        assert set(metrics["test"][key]) == {"value", "ci95"}
    assert metrics["n_train"] + metrics["n_val"] + metrics["n_test"] == 48 and metrics["epochs_run"] == 1
    entry = [e for e in discover_models([str(tmp_path / "models")]) if e.source == "--models"]
    assert [e.name for e in entry] == ["tiny-cxr"] and entry[0].available, entry[0].reason


def test_shipped_model_predicts_on_the_demo_xray():
    torch = pytest.importorskip("torch")
    pytest.importorskip("monai")
    if not (SHIPPED / "manifest.json").is_file():
        pytest.skip("resources/models/pneumonia-cnn not trained")
    from medviewer.ai.backends.torch_loader import load_network
    from medviewer.io.discover import open_volume

    spec = read_manifest(SHIPPED)
    net = load_network(spec)
    size = spec.input["size"][0]
    x = preprocess_image(open_volume(str(DEMO / "xray" / "chest_xray_pneumonia.jpeg")).data, size)
    with torch.no_grad():
        prob = torch.softmax(net(torch.from_numpy(x)[None]), dim=1)[0].numpy()
    assert prob.shape == (len(spec.class_names),) == (2,)
    assert np.all((prob >= 0) & (prob <= 1)) and prob.sum() == pytest.approx(1.0, abs=1e-5)


def test_progress_bar_draws_on_a_terminal_only():
    import io

    from medviewer.ai.training.progress_bar import ProgressBar

    class Tty(io.StringIO):
        def isatty(self):
            return True

    tty, log = Tty(), io.StringIO()
    for stream in (tty, log):
        bar = ProgressBar(4, "epoch 1/3", stream=stream)
        for _ in range(4):
            bar.update(1, "loss 0.5")
        bar.close()
    assert log.getvalue() == ""
    assert "epoch 1/3 [" in tty.getvalue() and "4/4" in tty.getvalue() and "#" * 28 in tty.getvalue()


def test_best_checkpoint_is_kept_on_disk_while_training(tmp_path):
    torch = pytest.importorskip("torch")
    from medviewer.ai.backends.checkpoint import BestCheckpoint

    net = torch.nn.Linear(2, 1)
    path = tmp_path / "checkpoints" / "best.pt"
    best = BestCheckpoint(patience=2, path=path)
    assert best.update(net, 0.5, None, 1) and path.is_file()
    with torch.no_grad():
        net.weight.fill_(7.0)
    assert not best.update(net, 0.4, None, 2)  # worse: the file keeps epoch 1
    saved = torch.load(str(path), weights_only=True)
    assert not torch.equal(saved["weight"], net.weight)
    assert best.update(net, 0.9, None, 3)
    assert torch.equal(torch.load(str(path), weights_only=True)["weight"], net.weight.detach())
