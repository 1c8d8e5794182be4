"""Trust per prediction: the decision rule, the TTA interval and flag, the OOD distance and the
entropy map on hand-computed cases (numpy only), then the shipped v2 models: output shapes,
determinism, the interval around the probability, the flags in words."""
from pathlib import Path

import numpy as np
import pytest

from medviewer.ai.registry import ModelSpec, read_manifest
from medviewer.core.errors import MedViewerError
from tests.conftest import DEMO, REPO

XRAY = DEMO / "xray" / "chest_xray_pneumonia.jpeg"
MRI = DEMO / "mri_hippocampus" / "hippocampus_001.nii.gz"


def _spec(**manifest) -> ModelSpec:
    return ModelSpec(folder=Path("."), manifest={"name": "m", "task": "classification",
                                                 "outputs": {"classes": ["NORMAL", "PNEUMONIA"]}, **manifest})


def test_decision_threshold_and_interval_by_hand():
    from medviewer.ai.tasks.decision import classification_result, decide

    classes = ["NORMAL", "PNEUMONIA"]
    probs = np.array([[0.45, 0.55], [0.5, 0.5], [0.62, 0.38]])
    assert decide(probs, classes, None, None).tolist() == [1, 0, 0]  # argmax, the first of a tie
    assert decide(probs, classes, 0.6, "PNEUMONIA").tolist() == [0, 0, 0]
    assert decide(probs, classes, 0.38, "PNEUMONIA").tolist() == [1, 1, 1]  # >= threshold
    r = classification_result(_spec(decision={"threshold": 0.52, "positive_class": "PNEUMONIA", "rule": "J"}), probs)
    assert r.prediction == "PNEUMONIA" and r.probability == 0.55 and r.rule == "J"
    assert r.interval == (0.38, 0.55) and r.interval_class == "PNEUMONIA" and r.tta_variants == 2
    assert r.uncertain and "threshold 0.520" in r.flags()[0]
    steady = classification_result(_spec(decision={"threshold": 0.3, "positive_class": "PNEUMONIA"}), probs)
    assert not steady.uncertain and steady.flags() == []
    single = classification_result(_spec(), probs[:1])
    assert single.interval is None and single.threshold is None and not single.uncertain
    with pytest.raises(MedViewerError, match="positive_class 'X'"):
        classification_result(_spec(decision={"threshold": 0.5, "positive_class": "X"}), probs)
    with pytest.raises(MedViewerError, match="3 outputs for 2 classes"):
        classification_result(_spec(), np.ones((1, 3)) / 3)


def test_temperature_is_read_and_checked():
    from medviewer.ai.tasks.decision import temperature_of

    assert temperature_of(_spec()) == 1.0
    assert temperature_of(_spec(calibration={"temperature": 2.5})) == 2.5
    for bad in (0, -1, "x", None):
        with pytest.raises(MedViewerError, match="temperature"):
            temperature_of(_spec(calibration={"temperature": bad}))


def test_ood_distance_by_hand(tmp_path):
    from medviewer.ai.tasks.trust import OODReference

    np.savez(tmp_path / "ood.npz", mean=np.array([1.0, 2.0]), precision=np.array([[4.0, 0.0], [0.0, 1.0]]))
    spec = ModelSpec(folder=tmp_path, manifest={"name": "m", "ood": {"file": "ood.npz", "threshold": 2.0}})
    ref = OODReference.of(spec)
    assert ref.distance(np.array([2.0, 2.0])) == pytest.approx(2.0)  # sqrt(1 * 4 * 1)
    assert ref.distance(np.array([1.0, 5.0])) == pytest.approx(3.0)  # sqrt(3 * 1 * 3)
    assert ref.threshold == 2.0 and OODReference.of(ModelSpec(folder=tmp_path, manifest={"name": "m"})) is None
    with pytest.raises(MedViewerError, match="3 features"):
        ref.distance(np.zeros(3))
    np.save(tmp_path / "bad.npy", np.zeros(2))
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(MedViewerError, match="not an out-of-distribution reference"):
        OODReference.of(ModelSpec(folder=tmp_path, manifest={"name": "m", "ood": {"file": "bad.npz"}}))


def test_normalised_entropy_by_hand():
    from medviewer.ai.tasks.trust import normalised_entropy

    probs = np.array([[1.0, 1 / 3, 0.5], [0.0, 1 / 3, 0.5], [0.0, 1 / 3, 0.0]])
    h = normalised_entropy(probs)
    assert h == pytest.approx([0.0, 1.0, np.log(2) / np.log(3)], abs=1e-6)


def test_xray_variants_are_small_deterministic_and_never_flipped():
    from medviewer.ai.tasks.trust import xray_variants

    rng = np.random.default_rng(1)
    unit = np.zeros((64, 64), np.float32)
    unit[:, :20] = 1.0  # bright on the left
    unit += rng.random(unit.shape).astype(np.float32) * 0.01
    a, b = xray_variants(unit, 5), xray_variants(unit, 5)
    assert len(a) == 5 and all(np.array_equal(x, y) for x, y in zip(a, b))
    for v in a:
        assert v.shape == unit.shape and v.dtype == np.float32 and 0 <= v.min() and v.max() <= 1
        assert v[:, :10].mean() > 0.8 and v[:, -20:].mean() < 0.1  # still bright on the left
        assert not np.array_equal(v, unit)


# --- the v2 model format ------------------------------------------------------------------------
def _v2(name: str):
    pytest.importorskip("torch")
    pytest.importorskip("monai")
    spec = read_manifest(REPO / "resources" / "models" / name)
    assert spec.manifest["version"].startswith("2")
    return spec


def test_v2_classifier_gives_calibrated_probability_threshold_interval_and_ood():
    from medviewer.ai.tasks.classification import Classification
    from medviewer.io import open_volume

    spec = _v2("pneumonia-cnn")
    xray = open_volume(XRAY)
    first, second = Classification(spec)(xray, "cpu"), Classification(spec)(xray, "cpu")
    assert first.record() == second.record()  # deterministic, TTA included
    m = spec.manifest
    assert first.threshold == m["decision"]["threshold"] and first.temperature == m["calibration"]["temperature"]
    p = first.probabilities["PNEUMONIA"]
    assert first.interval_class == "PNEUMONIA" and first.interval[0] <= p <= first.interval[1]
    assert (first.prediction == "PNEUMONIA") == (p >= first.threshold)
    assert first.ood_distance is not None and first.ood_distance >= 0
    assert first.out_of_distribution == (first.ood_distance > m["ood"]["threshold"])
    # a CT slice shown as an X-ray is far from the training distribution
    ct = open_volume(DEMO / "ct_chest_20")
    slice_ = ct.copy_geometry(ct.data[10:11].copy(), modality="XR", is_2d=True)
    odd = Classification(spec)(slice_, "cpu")
    assert odd.ood_distance > first.ood_distance


def test_v2_segmenter_gives_an_uncertainty_map_from_the_mirror():
    from medviewer.ai.tasks.segmentation import Segmentation
    from medviewer.io import open_volume

    spec = _v2("hippocampus-unet")
    mri = open_volume(MRI)
    a, b = Segmentation(spec)(mri, "cpu"), Segmentation(spec)(mri, "cpu")
    assert a.tta == ("x mirror",)
    for v in (a.labels, a.probabilities, a.uncertainty):
        assert v.shape == mri.shape and v.spacing == mri.spacing and np.array_equal(v.direction, mri.direction)
    assert np.array_equal(a.labels.data, b.labels.data) and np.array_equal(a.uncertainty.data, b.uncertainty.data)
    u = a.uncertainty.data
    assert u.dtype == np.float32 and 0 <= u.min() and u.max() <= 1
