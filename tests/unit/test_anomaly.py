"""Anomaly maps: patch features, the shipped cxr-anomaly detector on real X-rays, a tiny fit on
shared data that the registry accepts, and skops files that are refused when they are not safe."""
import json

import numpy as np
import pytest

pytest.importorskip("sklearn")
pytest.importorskip("skops")

from medviewer.ai.registry import check_weights, discover_models, read_manifest  # noqa: E402
from tests.conftest import DEMO, REPO, shared  # noqa: E402

SHIPPED = REPO / "resources" / "models" / "cxr-anomaly"
XRAY = DEMO / "xray" / "chest_xray_pneumonia.jpeg"


def test_patch_features_cover_the_picture_in_raster_order():
    from medviewer.ai.anomaly import FEATURES, SIZE, grid_shape, patch_features

    picture = np.zeros((SIZE, SIZE), np.float32)
    picture[:16, :16] = 5.0  # first patch only
    feats = patch_features(picture)
    n_r, n_c = grid_shape()
    assert feats.shape == (n_r * n_c, len(FEATURES))
    assert feats[0, 0] == pytest.approx(5.0) and feats[1, 0] == pytest.approx(2.5)  # next patch half in
    assert feats[-1, FEATURES.index("row")] == pytest.approx(2.0)


def test_shipped_detector_maps_the_demo_xray():
    from medviewer.ai.tasks.anomaly import AnomalyMap
    from medviewer.io import open_volume

    spec = read_manifest(SHIPPED)
    assert check_weights(spec) == "" and (SHIPPED / "model.skops").stat().st_size < 2e6
    assert spec.metrics["image_roc_auc"] > 0.8
    volume = open_volume(XRAY)
    result = AnomalyMap(spec)(volume)
    assert result.map.shape == volume.shape and 0 <= result.map.data.min() <= result.map.data.max() <= 1
    assert result.score > 0.9  # the demo X-ray is a pneumonia case


def test_validation_normals_score_lower_than_pneumonia():
    """On held-out patients (the training script's validation side), as the manifest's AUC claims."""
    from medviewer.ai.tasks.anomaly import AnomalyMap
    from medviewer.ai.training.classification import discover_classes, patient_split
    from medviewer.ai.metrics import roc_auc
    from medviewer.io import open_volume

    spec = read_manifest(SHIPPED)
    classes, items = discover_classes(shared("chest_xray", "train"))
    _, val = patient_split(items, seed=0)
    rng = np.random.default_rng(1)
    picked = [i for k in range(len(classes))
              for i in rng.choice([j for j in val if items[j][1] == k], size=15, replace=False)]
    scores = [AnomalyMap(spec)(open_volume(items[i][0])).score for i in picked]
    truth = [classes[items[i][1]] != "NORMAL" for i in picked]
    assert roc_auc(np.array(truth), np.array(scores)) > 0.75


def test_tiny_fit_makes_a_registry_model(tmp_path):
    from medviewer.ai.training.anomaly import train_anomaly

    out = tmp_path / "tiny-anomaly"
    metrics = train_anomaly(shared("chest_xray", "train"), out, limit=20, val_limit=10, name="tiny-anomaly",
                            progress=lambda s: None)
    assert metrics["n_fit_images"] == 20 and 0 <= metrics["image_roc_auc"] <= 1
    entry = [e for e in discover_models([str(tmp_path)]) if e.name == "tiny-anomaly"][0]
    assert entry.available, entry.reason
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["framework"] == "scikit-learn" and manifest["weights"] == "model.skops"


def test_unsafe_or_damaged_model_files_are_refused(tmp_path):
    import skops.io as sio

    from medviewer.ai.backends.sklearn_io import load
    from medviewer.ai.registry import ManifestError, sha256_of
    from medviewer.core.errors import MedViewerError

    folder = tmp_path / "evil"
    folder.mkdir()
    sio.dump({"model": np.float64, "hook": print}, folder / "model.skops")  # builtins.print: not allowed
    manifest = json.loads((SHIPPED / "manifest.json").read_text())
    manifest.update(name="evil", sha256=sha256_of(folder / "model.skops"))
    (folder / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(MedViewerError):
        load(read_manifest(folder))
    (folder / "model.skops").write_bytes(b"not a zip")
    manifest["sha256"] = sha256_of(folder / "model.skops")
    (folder / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(MedViewerError, match="cannot load the model"):
        load(read_manifest(folder))
    manifest["weights"] = "model.pkl"
    (folder / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ManifestError, match="skops"):
        read_manifest(folder)
