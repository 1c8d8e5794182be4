"""The classifier's ONNX export: equal to the eager network on real X-rays (1e-5), the same
classification through ONNX Runtime as through torch, used only while current and only for the
built-in models, and a one-image `medviewer infer` that does not import torch."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from tests.conftest import DEMO, REPO, SHARED_DATA

torch = pytest.importorskip("torch")
pytest.importorskip("monai")
pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")

from medviewer.ai.backends import export_records, onnx_runtime  # noqa: E402
from medviewer.ai.backends.export import TOLERANCE, export_onnx  # noqa: E402
from medviewer.ai.registry import read_manifest, sha256_of  # noqa: E402

CNN = REPO / "resources" / "models" / "pneumonia-cnn"
XRAYS = [DEMO / "xray" / "chest_xray_pneumonia.jpeg",
         SHARED_DATA / "chest_xray" / "train" / "NORMAL" / "IM-0115-0001.jpeg",
         SHARED_DATA / "chest_xray" / "train" / "PNEUMONIA" / "person1000_virus_1681.jpeg"]


@pytest.fixture()
def built_in(tmp_path, monkeypatch):
    """A copy of the shipped CNN inside a resources folder of its own (a built-in model)."""
    root = tmp_path / "resources"
    shutil.copytree(CNN, root / "models" / CNN.name)
    (root / "demo").symlink_to(DEMO, target_is_directory=True)
    monkeypatch.setenv("MEDVIEWER_RESOURCES", str(root))
    return root / "models" / CNN.name


def _xrays():
    from medviewer.io import open_volume

    return [open_volume(str(f)) for f in XRAYS if f.is_file()]


def test_the_shipped_export_is_current_and_a_new_one_is_byte_identical(built_in):
    spec = read_manifest(built_in)
    assert export_records.trusted_problem(spec, "onnx") == ""
    record = spec.manifest["onnx"]
    assert record["max_abs_difference"] <= TOLERANCE and record["outputs"] == ["logits", "features"]
    shipped = (built_in / "model.onnx").read_bytes()
    manifest = json.loads((built_in / "manifest.json").read_text())
    manifest.pop("onnx")
    (built_in / "manifest.json").write_text(json.dumps(manifest))
    (built_in / "model.onnx").unlink()
    path = export_onnx(built_in)
    assert path.read_bytes() == shipped  # deterministic
    assert read_manifest(built_in).manifest["onnx"]["sha256"] == record["sha256"]
    stamp = path.stat().st_mtime_ns
    assert export_onnx(built_in) == path and path.stat().st_mtime_ns == stamp  # a current export is kept


def test_onnx_equals_the_eager_network_on_real_xrays_and_gives_the_same_classification(built_in, monkeypatch):
    from medviewer.ai.backends.torch_loader import load_network, logits_and_features
    from medviewer.ai.tasks.classification import Classification, classifier_input

    spec = read_manifest(built_in)
    session = onnx_runtime.onnx_classifier(spec)
    assert session is not None
    eager = load_network(spec, "cpu", eager=True)
    volumes = _xrays()
    batch = np.stack([classifier_input(spec, v.data) for v in volumes])
    got_logits, got_features = session.logits_and_features(batch)
    with torch.inference_mode():
        logits, features = logits_and_features(eager, torch.from_numpy(batch))
    assert np.abs(got_logits - logits.numpy()).max() <= TOLERANCE
    assert np.abs(got_features - features.flatten(1).numpy()).max() <= TOLERANCE
    by_onnx = [Classification(spec)(v, "cpu").record() for v in volumes]
    monkeypatch.setattr(onnx_runtime, "available", lambda: False)  # the torch path
    by_torch = [Classification(spec)(v, "cpu").record() for v in volumes]
    for a, b in zip(by_onnx, by_torch):
        assert a["prediction"] == b["prediction"] and a["uncertain"] == b["uncertain"]
        assert a["out_of_distribution"] == b["out_of_distribution"]
        for c in a["probabilities"]:
            assert abs(a["probabilities"][c] - b["probabilities"][c]) <= 1e-5


def test_a_stale_changed_or_user_export_is_never_run(built_in, tmp_path):
    user = tmp_path / "user" / "pneumonia-cnn"
    shutil.copytree(built_in, user)
    assert "built-in models only" in export_records.trusted_problem(read_manifest(user), "onnx")
    assert onnx_runtime.onnx_classifier(read_manifest(user)) is None
    # new weights: the export was made from other weights
    state = torch.load(built_in / "model.pt", weights_only=True)
    state["fc.weight"] = state["fc.weight"] * 1.01  # a retrained last layer
    torch.save(state, built_in / "model.pt")
    manifest = json.loads((built_in / "manifest.json").read_text())
    manifest["sha256"] = sha256_of(built_in / "model.pt")
    (built_in / "manifest.json").write_text(json.dumps(manifest))
    assert "other weights" in export_records.trusted_problem(read_manifest(built_in), "onnx")
    assert onnx_runtime.onnx_classifier(read_manifest(built_in)) is None
    # a changed ONNX file
    export_onnx(built_in)
    assert onnx_runtime.onnx_classifier(read_manifest(built_in)) is not None
    with open(built_in / "model.onnx", "ab") as fp:
        fp.write(b"\0")
    assert "SHA-256" in export_records.trusted_problem(read_manifest(built_in), "onnx")
    assert onnx_runtime.onnx_classifier(read_manifest(built_in)) is None


def test_infer_with_the_onnx_export_does_not_import_torch(built_in, tmp_path):
    from medviewer.ai.device import cpu_only_build
    from tests.unit.test_infer_imports import infer_in_child

    image = DEMO / "xray" / "chest_xray_pneumonia.jpeg"
    record, heavy = infer_in_child(["--model", "pneumonia-cnn", str(image), "--json"],
                                   {"MEDVIEWER_DATA_DIR": str(tmp_path / "d")})
    assert record["prediction"] == "PNEUMONIA"
    assert record["threshold"] == read_manifest(built_in).manifest["decision"]["threshold"]
    if cpu_only_build():
        assert heavy == []
    else:  # a CUDA/ROCm build: choosing the device needs torch
        assert "monai" not in heavy
