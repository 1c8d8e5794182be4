"""Explanation maps: Grad-CAM and occlusion on the shipped models, on the input's grid, and the
model-randomisation sanity check of Adebayo et al. (2018): a map that survives randomising the
model's weights explains the image, not the model."""
import json
import shutil

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("monai")

from medviewer.ai.registry import read_manifest, sha256_of  # noqa: E402
from tests.conftest import DEMO, REPO  # noqa: E402

CNN = REPO / "resources" / "models" / "pneumonia-cnn"
UNET = REPO / "resources" / "models" / "hippocampus-unet"
XRAY = DEMO / "xray" / "chest_xray_pneumonia.jpeg"
MRI = DEMO / "mri_hippocampus" / "hippocampus_001.nii.gz"


def explain(spec, volume, method, device=None, progress=None, cancel=None, target=None):
    """An explanation through the inference template (ai.tasks.explanation)."""
    from medviewer.ai.tasks.explanation import Explanation

    return Explanation(spec, method, target=target)(volume, device, progress=progress, cancel=cancel)


def _spearman(a, b) -> float:
    from scipy.stats import spearmanr

    return float(spearmanr(a.ravel(), b.ravel()).statistic)


def _randomised(tmp_path, folder, seed=1):
    """A copy of a model folder whose weights are re-initialised (all layers, 'cascading' to the end)."""
    import torch

    from medviewer.ai.backends.torch_loader import build_network

    out = tmp_path / f"{folder.name}-random"
    shutil.copytree(folder, out)
    spec = read_manifest(out)
    torch.manual_seed(seed)
    net = build_network(spec)  # fresh initialisation
    torch.save(net.state_dict(), out / spec.manifest["weights"])
    manifest = json.loads((out / "manifest.json").read_text())
    manifest["name"] += "-random"
    manifest["sha256"] = sha256_of(out / spec.manifest["weights"])
    (out / "manifest.json").write_text(json.dumps(manifest))
    return read_manifest(out)


@pytest.fixture(scope="module")
def xray():
    from medviewer.io import open_volume

    return open_volume(XRAY)


@pytest.mark.parametrize("method", ["gradcam", "occlusion"])
def test_explanation_of_the_classifier_is_on_the_image_grid(xray, method):

    seen = []
    result = explain(read_manifest(CNN), xray, method, device="cpu", progress=lambda f, m: seen.append(f))
    m = result.map
    assert m.shape == xray.shape and m.spacing == xray.spacing and m.data.dtype == np.float32
    assert m.data.min() >= 0 and m.data.max() == pytest.approx(1.0)
    assert result.target == "PNEUMONIA" and seen[-1] == 1.0
    assert (m.data > 0.5).mean() < 0.6  # it points somewhere, not everywhere


@pytest.mark.parametrize("method", ["gradcam", "occlusion"])
def test_randomising_the_weights_changes_the_map(tmp_path, xray, method):

    trained = explain(read_manifest(CNN), xray, method, device="cpu").map.data
    random = explain(_randomised(tmp_path, CNN), xray, method, device="cpu", target="PNEUMONIA").map.data
    rho = _spearman(trained, random)
    print(f"{method}: Spearman rank correlation trained vs randomised weights = {rho:.3f}")
    assert rho < 0.5  # substantially different (Adebayo et al. report < 0.5 for faithful methods)


def test_occlusion_of_the_segmentation_model_points_at_the_hippocampus():
    from medviewer.ai.tasks.segmentation import Segmentation
    from medviewer.io import open_volume

    spec = read_manifest(UNET)
    volume = open_volume(MRI)
    result = explain(spec, volume, "occlusion", device="cpu")
    heat = result.map.data
    mask = Segmentation(spec)(volume, "cpu").labels.data > 0
    assert heat.shape == volume.shape
    assert heat[mask].mean() > 2 * heat[~mask].mean()


def test_gradcam_refuses_a_segmentation_model_and_unknown_methods(xray):
    from medviewer.ai.inference import IncompatibleInput
    from medviewer.core.errors import MedViewerError
    from medviewer.io import open_volume

    with pytest.raises(IncompatibleInput, match="Grad-CAM explains CNN classifiers"):
        explain(read_manifest(UNET), open_volume(MRI), "gradcam", device="cpu")
    with pytest.raises(MedViewerError, match="unknown explanation method"):
        explain(read_manifest(CNN), xray, "lime", device="cpu")
    with pytest.raises(IncompatibleInput, match="3D model"):
        explain(read_manifest(UNET), xray, "occlusion", device="cpu")


def test_cancel_stops_occlusion_between_batches(xray):
    from medviewer.core.errors import Cancelled

    calls = []
    with pytest.raises(Cancelled):
        explain(read_manifest(CNN), xray, "occlusion", device="cpu",
                progress=lambda f, m: calls.append(f), cancel=lambda: len(calls) >= 3)
    assert len(calls) == 3


def test_occlusion_explains_a_classical_radiomics_model_too(xray):
    pytest.importorskip("sklearn")
    from medviewer.ai.inference import IncompatibleInput

    spec = read_manifest(REPO / "resources" / "models" / "pneumonia-svm")
    seen = []
    result = explain(spec, xray, "occlusion", progress=lambda f, m: seen.append(m))
    heat = result.map.data
    assert heat.shape == xray.shape and heat.max() == pytest.approx(1.0) and result.target == "PNEUMONIA"
    assert sum("block" in m for m in seen) == 64
    with pytest.raises(IncompatibleInput, match="classical"):
        explain(spec, xray, "gradcam")
