"""Classical models on radiomics features of annotated ROIs: every model type goes round the trip
train -> save (skops, registry manifest) -> load -> infer, and the command line does the same."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("sklearn")
pytest.importorskip("skops")

from medviewer.ai.classical import MODEL_TYPES  # noqa: E402
from tests.conftest import DEMO  # noqa: E402

MRI = DEMO / "mri_hippocampus" / "hippocampus_001.nii.gz"


def _cube(shape, centre, r=2):
    z, y, x = centre
    mask = np.zeros(shape, bool)
    mask[max(z - r, 0):z + r + 1, max(y - r, 0):y + r + 1, max(x - r, 0):x + r + 1] = True
    return mask


def _roi_centres(volume, n_per_class, seed):
    """Centres of 5x5x5 cubes in bright and in dark tissue of the real MRI (the classes differ in
    intensity and texture, as benign and malignant lesions would in another study)."""
    from scipy import ndimage

    data = volume.data.astype(float)
    local = ndimage.uniform_filter(data, 5)
    inner = np.zeros(data.shape, bool)
    inner[3:-3, 3:-3, 3:-3] = True
    hi, lo = np.percentile(local[inner], [80, 30])
    rng = np.random.default_rng(seed)
    out, taken = {}, []
    for name, where in (("bright", (local >= hi) & inner), ("dark", (local <= lo) & (local > 5) & inner)):
        candidates = np.argwhere(where)
        out[name] = []
        for i in rng.permutation(len(candidates)):  # separate cubes: each one is its own ROI
            c = candidates[i]
            if all(np.abs(c - t).max() > 5 for t in taken):
                out[name].append(tuple(int(v) for v in c))
                taken.append(c)
            if len(out[name]) == n_per_class:
                break
    return out


@pytest.fixture(scope="module")
def training_set(tmp_path_factory):
    from medviewer.core.labels import LabelMap, LabelTable
    from medviewer.io import open_volume
    from medviewer.io.label_io import save_labels

    folder = tmp_path_factory.mktemp("rois")
    volume = open_volume(MRI)
    pairs = []
    for k in range(3):  # three annotation sessions on the image, each with its own ROIs
        centres = _roi_centres(volume, 5, seed=k)
        table = LabelTable()
        table.add(name="dark", value=1)
        table.add(name="bright", value=2)
        labels = LabelMap(volume.shape, "rois", table=table)
        for value, name in ((1, "dark"), (2, "bright")):
            for c in centres[name]:
                labels.data[_cube(volume.shape, c) & (labels.data == 0)] = value
        path = folder / f"rois_{k}.nii.gz"
        save_labels(labels, volume, str(path))
        pairs.append((str(MRI), str(path)))
    test = _roi_centres(volume, 3, seed=99)
    return volume, pairs, test


def test_every_model_type_round_trips_and_classifies_a_new_roi(tmp_path, training_set):
    from medviewer.ai.classical import save_model
    from medviewer.ai.tasks.classical import ClassicalClassification
    from medviewer.ai.registry import check_weights, discover_models, read_manifest
    from medviewer.ai.training.radiomics_models import train_roi_classifier

    volume, pairs, test = training_set
    out = train_roi_classifier(pairs, tmp_path / "best", folds=3, progress=lambda f, m: None)
    assert set(out["results"]) == set(MODEL_TYPES) and out["classes"] == ["bright", "dark"]
    assert out["n"] == 30 and os.path.getsize(out["roc_png"]) > 10_000
    assert "CV ROC AUC" in out["table"] and (tmp_path / "best" / "comparison.json").is_file()
    for kind, result in out["results"].items():
        assert 0 <= result["cv_auc"] <= 1 and np.array(result["confusion"]).sum() == out["n"]
        folder = tmp_path / kind
        trained = out["manifest"]["input"]
        save_model(result, folder, name=f"roi-{kind}", kind=kind, classes=out["classes"],
                   feature_names=trained["feature_names"], extraction=trained["features"], modality="",
                   dims=3, training={}, description=kind, n_examples=out["n"])
        spec = read_manifest(folder)
        assert check_weights(spec) == "" and spec.manifest["framework"] == "scikit-learn"
        probs = ClassicalClassification(spec, mask=_cube(volume.shape, test["bright"][0]))(volume).probabilities
        assert set(probs) == {"bright", "dark"} and sum(probs.values()) == pytest.approx(1.0)
    assert {e.name for e in discover_models([str(tmp_path)]) if e.available} >= {f"roi-{k}" for k in MODEL_TYPES}
    # the models that separate the classes in cross-validation get clear new ROIs right
    for kind in ("svm", "random_forest", "logistic_regression"):
        assert out["results"][kind]["cv_auc"] > 0.9, kind
        spec = read_manifest(tmp_path / kind)
        for name in ("bright", "dark"):
            for centre in test[name]:
                result = ClassicalClassification(spec, mask=_cube(volume.shape, centre))(volume)
                assert result.prediction == name, (kind, name, result)


def test_cli_trains_a_roi_classifier_and_infer_uses_it(tmp_path, training_set):
    volume, pairs, test = training_set
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    out = tmp_path / "cli-model"
    args = [sys.executable, "-m", "medviewer", "train", "roi-classifier", "--images", *[p[0] for p in pairs],
            "--labels", *[p[1] for p in pairs], "--out", str(out), "--model-types", "svm,random_forest",
            "--folds", "3"]
    proc = subprocess.run(args, capture_output=True, text=True, timeout=600, env=env)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    assert summary["chosen"] in ("svm", "random_forest") and set(summary["cv_roc_auc"]) == {"svm", "random_forest"}
    from medviewer.core.labels import LabelMap
    from medviewer.io.label_io import save_labels

    roi = LabelMap(volume.shape, "new")
    roi.data[_cube(volume.shape, test["dark"][0])] = 1
    save_labels(roi, volume, str(tmp_path / "new.nii.gz"))
    proc = subprocess.run([sys.executable, "-m", "medviewer", "infer", "--model", "cli-model", "--models", str(tmp_path),
                           str(MRI), "--mask", str(tmp_path / "new.nii.gz"), "--json"],
                          capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr
    line = json.loads(proc.stdout)
    assert line["prediction"] == "dark" and set(line["probabilities"]) == {"bright", "dark"}


def test_bad_training_sets_are_refused(tmp_path):
    from medviewer.ai.classical import fit_models
    from medviewer.core.errors import MedViewerError

    x = np.random.default_rng(0).normal(size=(6, 3))
    with pytest.raises(MedViewerError, match="at least two classes"):
        fit_models(x, np.zeros(6, int), ["a", "b"])
    with pytest.raises(MedViewerError, match="at least 2 examples"):
        fit_models(x, np.array([0, 0, 0, 0, 0, 1]), ["a", "b"])
    x[0, 0] = np.nan
    with pytest.raises(MedViewerError, match="NaN"):
        fit_models(x, np.array([0, 0, 0, 1, 1, 1]), ["a", "b"])


@pytest.mark.parametrize("name", ["pneumonia-svm", "pneumonia-rf"])
def test_shipped_radiomics_classifiers_answer_like_the_cnn(name):
    from medviewer.ai.registry import check_weights, read_manifest
    from tests.conftest import REPO

    folder = REPO / "resources" / "models" / name
    spec = read_manifest(folder)
    assert check_weights(spec) == "" and spec.class_names == ["NORMAL", "PNEUMONIA"]
    assert spec.metrics["validation"]["roc_auc"]["value"] > 0.9 and spec.metrics["test"]["roc_auc"]["value"] > 0.9
    assert (folder / "model.skops").stat().st_size < 10e6
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    proc = subprocess.run([sys.executable, "-m", "medviewer", "infer", "--model", name,
                           str(DEMO / "xray" / "chest_xray_pneumonia.jpeg"), "--json"],
                          capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr
    line = json.loads(proc.stdout)
    assert set(line) == {"input", "probabilities", "prediction", "threshold"}
    assert line["threshold"] == spec.manifest["decision"]["threshold"]
    assert set(line["probabilities"]) == {"NORMAL", "PNEUMONIA"} and line["prediction"] == "PNEUMONIA"


def test_shipped_radiomics_classifiers_on_held_out_patients():
    """A few test-side (patient-wise held out: never trained on, never chose anything) shared X-rays
    of each class."""
    from medviewer.ai.tasks.classical import ClassicalClassification
    from medviewer.ai.registry import read_manifest
    from medviewer.ai.training.classification import discover_classes, train_val_test_split
    from medviewer.io import open_volume
    from tests.conftest import REPO, shared

    classes, items = discover_classes(shared("chest_xray", "train"))
    _, _, val = train_val_test_split(items, seed=0)
    picked = [i for k in range(2) for i in [j for j in val if items[j][1] == k][:10]]
    for name in ("pneumonia-svm", "pneumonia-rf"):
        spec = read_manifest(REPO / "resources" / "models" / name)
        right = sum(ClassicalClassification(spec)(open_volume(items[i][0])).prediction == classes[items[i][1]]
                    for i in picked)
        assert right >= 16, (name, right)
