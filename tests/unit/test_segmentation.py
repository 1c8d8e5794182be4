"""3D segmentation: Dice/HD95 against hand-computed cases, padding, a tiny real training run whose
model folder the registry accepts, and the shipped hippocampus-unet model on the demo MRI."""
import json

import numpy as np
import pytest

from medviewer.ai.registry import REQUIRED, check_weights, discover_models, read_manifest
from medviewer.ai.metrics import dice, hausdorff95, label_metrics
from medviewer.ai.preprocess import centre_pad_crop, normalise_zscore_nonzero
from medviewer.ai.training.segmentation import case_split
from tests.conftest import DEMO, REPO, shared

SHIPPED = REPO / "resources" / "models" / "hippocampus-unet"
DEMO_MRI = DEMO / "mri_hippocampus" / "hippocampus_001.nii.gz"
DEMO_XRAY = DEMO / "xray" / "chest_xray_pneumonia.jpeg"


def test_dice_hand_computed():
    a = np.zeros((4, 4, 4), bool)
    b = np.zeros((4, 4, 4), bool)
    a[0, 0, :4] = True  # 4 voxels
    b[0, 0, 2:4] = True  # 2 voxels, both inside a
    assert dice(a, b) == pytest.approx(2 * 2 / 6)
    assert dice(a, a) == 1.0
    assert dice(a, np.zeros_like(a)) == 0.0
    assert dice(np.zeros_like(a), np.zeros_like(a)) == 1.0  # both empty: agreement


def test_hausdorff95_hand_computed():
    a = np.zeros((1, 1, 10), bool)
    b = np.zeros((1, 1, 10), bool)
    a[0, 0, 1] = True
    b[0, 0, 4] = True
    assert hausdorff95(a, b) == pytest.approx(3.0)
    assert hausdorff95(a, b, spacing_zyx=(1, 1, 2.5)) == pytest.approx(7.5)  # mm along x
    assert hausdorff95(a, a) == 0.0
    assert hausdorff95(np.zeros_like(a), np.zeros_like(a)) == 0.0
    assert np.isnan(hausdorff95(a, np.zeros_like(a)))
    # a 5x5x5 cube against the same cube shifted by 2 voxels along z: every surface distance <= 2
    c = np.zeros((12, 12, 12), bool)
    d = np.zeros_like(c)
    c[2:7, 2:7, 2:7] = True
    d[4:9, 2:7, 2:7] = True
    assert hausdorff95(c, d) == pytest.approx(2.0)
    m = label_metrics([c.astype(np.uint8)], [d.astype(np.uint8)], [1])
    assert m["dice"]["1"] == pytest.approx(2 * 75 / 250, abs=1e-4)
    assert m["hd95_mm"]["1"] == pytest.approx(2.0)


def test_normalise_and_pad():
    a = np.zeros((3, 5, 7), np.float32)
    a[1, 1:4, 2:6] = np.arange(12).reshape(3, 4)
    n = normalise_zscore_nonzero(a)
    assert n[0].max() == 0 and n[a == 0].max() == 0
    nz = n[a != 0]  # a[1, 1, 2] == 0 stays 0 too
    assert nz.mean() == pytest.approx(0, abs=1e-5) and nz.std() == pytest.approx(1, abs=1e-4)
    p, (pads, crops) = centre_pad_crop(a, (16, 16, 16))
    assert p.shape == (16, 16, 16) and pads[0] == (6, 7)
    inner = tuple(slice(b, s - e) for (b, e), s in zip(pads, (16, 16, 16)))
    assert np.array_equal(p[inner], a)
    c, _ = centre_pad_crop(np.ones((20, 4, 4)), (16, 16, 16))
    assert c.shape == (16, 16, 16)


def test_case_split_is_fixed_and_disjoint():
    train, val = case_split(217, 0.15, seed=0)
    assert len(val) == 33 and not set(train) & set(val) and sorted(train + val) == list(range(217))
    assert case_split(217, 0.15, seed=0) == (train, val)


def test_tiny_training_run_gives_a_registry_model(tmp_path):
    pytest.importorskip("torch")
    pytest.importorskip("monai")
    data = shared("hippocampus")
    from medviewer.ai.training.segmentation import train_segmentation

    out = tmp_path / "tiny-unet"
    metrics = train_segmentation(data, out, size=(32, 48, 32), epochs=1, limit=6, name="tiny-unet",
                                 progress=lambda s: None)
    assert (metrics["n_train"], metrics["n_val"], metrics["n_test"], metrics["epochs"]) == (4, 1, 1, 1)
    for split in ("validation", "test"):
        assert set(metrics[split]["per_label"]) == {"1", "2"}
        assert set(metrics[split]["per_label"]["1"]) == {"dice", "hd95_mm", "precision", "recall", "f1"}
    spec = read_manifest(out)
    assert check_weights(spec) == ""
    manifest = json.loads((out / "manifest.json").read_text())
    assert all(k in manifest for k in REQUIRED)
    assert manifest["task"] == "segmentation" and manifest["input"]["normalisation"] == "zscore-nonzero"
    assert manifest["input"]["spacing"] == [1.0, 1.0, 1.0]  # the training grid, recorded for inference
    assert manifest["input"]["direction"] == [-1.0, 0.0, 0.0, 0.0, -1.0, 0.0, 0.0, 0.0, 1.0]
    assert not (out / "checkpoints").exists()
    assert manifest["network"]["class"].startswith("monai.networks.nets.")
    entry = [e for e in discover_models([str(tmp_path)]) if e.name == "tiny-unet"][0]
    assert entry.available, entry.reason


@pytest.fixture(scope="module")
def shipped_spec():
    pytest.importorskip("torch")
    pytest.importorskip("monai")
    if not (SHIPPED / "manifest.json").is_file():
        pytest.skip("the shipped hippocampus-unet model is not there")
    return read_manifest(SHIPPED)


def test_shipped_model_on_demo_mri(shipped_spec):
    from medviewer.ai.tasks.segmentation import Segmentation
    from medviewer.io import open_volume

    assert check_weights(shipped_spec) == ""
    assert (SHIPPED / "model.pt").stat().st_size < 5e6
    volume = open_volume(DEMO_MRI)
    result = Segmentation(shipped_spec)(volume, "cpu")
    labels, probs = result.labels, result.probabilities
    assert labels.shape == volume.shape and probs.shape == volume.shape
    assert labels.spacing == volume.spacing and labels.origin == volume.origin
    assert np.array_equal(labels.direction, volume.direction)
    assert labels.data.dtype == np.uint8 and set(np.unique(labels.data)) <= {0, 1, 2}
    assert {1, 2} <= set(np.unique(labels.data))
    assert probs.data.dtype == np.float32 and probs.data.min() >= 0 and probs.data.max() <= 1
    assert result.uncertainty.shape == volume.shape and 0 <= result.uncertainty.data.min()
    assert result.uncertainty.data.max() <= 1
    assert result.device == "cpu" and {"pre", "predict", "invert", "post"} <= set(result.timings)


def test_segment_refuses_a_2d_image_and_other_modalities(tmp_path):
    from medviewer.ai.inference import IncompatibleInput
    from medviewer.ai.registry import ModelSpec
    from medviewer.ai.tasks.segmentation import Segmentation
    from medviewer.io import open_volume

    spec = ModelSpec(folder=tmp_path, manifest={
        "name": "hippocampus-unet", "task": "segmentation", "input": {"modality": "MR", "dims": 3},
        "outputs": {"labels": {"1": {"name": "a"}}}, "weights": "model.pt", "sha256": "0"})
    with pytest.raises(IncompatibleInput, match="3D model and this image is 2D"):
        Segmentation(spec)(open_volume(DEMO_XRAY), "cpu")
    ct = open_volume(DEMO_MRI)
    ct.modality = "CT"
    with pytest.raises(IncompatibleInput, match="expects MR images and this one is CT"):
        Segmentation(spec)(ct, "cpu")


def test_progress_rises_per_tile_and_cancel_stops_within_one_tile(shipped_spec):
    from medviewer.ai.tasks.segmentation import Segmentation, tile_count
    from medviewer.core.errors import Cancelled
    from medviewer.io import open_volume

    volume = open_volume(DEMO_MRI)
    big = volume.copy_geometry(np.pad(volume.data, ((30, 30), (40, 40), (30, 30))))
    seen = []
    Segmentation(shipped_spec)(big, "cpu", progress=lambda f, m: seen.append((f, m)))
    fractions = [f for f, _ in seen]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    n = tile_count(big.shape, tuple(shipped_spec.input["size"]), 0.25)
    assert n > 4 and sum("tile " in m for _, m in seen) == n

    seen.clear()
    with pytest.raises(Cancelled):
        Segmentation(shipped_spec)(big, "cpu", progress=lambda f, m: seen.append((f, m)),
                                   cancel=lambda: sum("tile " in m for _, m in seen) >= 2)
    assert sum("tile " in m for _, m in seen) == 2  # stopped before a third tile ran
