"""Model folders: manifests, SHA-256 checks, safe weight loading, and `medviewer models`."""
import hashlib
import json
import os
import subprocess
import sys

import pytest

from medviewer.ai.registry import discover_models, find_model, read_manifest
from medviewer.core.errors import MedViewerError

torch = pytest.importorskip("torch")
monai = pytest.importorskip("monai")

UNET = {"class": "monai.networks.nets.UNet",
        "args": {"spatial_dims": 2, "in_channels": 1, "out_channels": 3, "channels": [4, 8], "strides": [2]}}


def make_model(folder, name="tiny-unet", network=UNET, **overrides):
    from monai.networks.nets import UNet

    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    net = UNet(**UNET["args"])  # the weights; the manifest may name another network (tests)
    torch.save(net.state_dict(), folder / "model.pt")
    manifest = {
        "name": name, "version": "0.1", "task": "segmentation",
        "input": {"modality": "MR", "dims": 2, "channels": 1, "normalisation": "zscore"},
        "outputs": {"labels": {"1": {"name": "anterior"}, "2": {"name": "posterior"}}},
        "network": network, "weights": "model.pt",
        "sha256": hashlib.sha256((folder / "model.pt").read_bytes()).hexdigest(),
        "metrics": {"dice": 0.0}, "training": {"data": "none (test fixture)"}, "licence": "Apache-2.0",
        "intended_use": "research and demonstration, not for clinical use",
    }
    manifest.update(overrides)
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return net


@pytest.fixture(autouse=True)
def no_user_models(tmp_path, monkeypatch):
    monkeypatch.setenv("MEDVIEWER_DATA_DIR", str(tmp_path / "user"))
    monkeypatch.delenv("MEDVIEWER_MODELS", raising=False)


def test_a_valid_model_is_available_and_its_weights_load(tmp_path):
    from medviewer.ai.backends.torch_loader import load_network

    reference = make_model(tmp_path / "models" / "tiny")
    entry = find_model("tiny-unet", [str(tmp_path / "models")])
    assert entry.available and entry.source == "--models"
    net = load_network(entry.spec, "cpu")
    x = torch.randn(1, 1, 32, 32)
    reference.eval()
    with torch.no_grad():
        assert torch.allclose(net(x), reference(x))


def test_broken_models_are_unavailable_with_a_reason_and_the_others_still_load(tmp_path):
    root = tmp_path / "models"
    make_model(root / "good")
    make_model(root / "tampered", name="tampered")
    with open(root / "tampered" / "model.pt", "ab") as f:
        f.write(b"\0")
    make_model(root / "missing", name="missing")
    os.unlink(root / "missing" / "model.pt")
    (root / "badjson").mkdir()
    (root / "badjson" / "manifest.json").write_text("{not json")
    make_model(root / "badtask", name="badtask", task="detection")
    make_model(root / "evil", name="evil", network={"class": "os.system", "args": {}})
    entries = {e.folder.name: e for e in discover_models([str(root)])}
    assert entries["good"].available
    assert "SHA-256" in entries["tampered"].reason
    assert "missing" in entries["missing"].reason
    assert "cannot read the manifest" in entries["badjson"].reason
    assert "task 'detection'" in entries["badtask"].reason
    with pytest.raises(MedViewerError, match="unavailable"):
        find_model("tampered", [str(root)])
    from medviewer.ai.backends.torch_loader import load_network

    with pytest.raises(MedViewerError, match="not from"):  # a manifest cannot import arbitrary code
        load_network(read_manifest(root / "evil"))


def test_models_command_lists_availability(tmp_path):
    root = tmp_path / "models"
    make_model(root / "good")
    make_model(root / "tampered", name="tampered", sha256="0" * 64)
    env = {**os.environ, "MEDVIEWER_DATA_DIR": str(tmp_path / "user")}
    proc = subprocess.run([sys.executable, "-m", "medviewer", "models", "--models", str(root), "--json"],
                          capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 0, proc.stderr
    listed = {m["name"]: m for m in json.loads(proc.stdout)}
    assert listed["tiny-unet"]["available"] and not listed["tampered"]["available"]
    assert listed["tiny-unet"]["intended_use"].endswith("not for clinical use")
