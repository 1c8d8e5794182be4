"""The inference template (ai.tasks.base.InferTask) with tiny networks: stage order and timings,
cancel between stages, the contract check before anything runs, the out-of-memory ladder, and the
manifest's calibration / decision / OOD / text-mask / mirror-TTA keys applied by the classification
and segmentation tasks (checked against the same network run by hand)."""
import hashlib
import json
import subprocess
import sys

import numpy as np
import pytest

from medviewer.ai.registry import read_manifest
from medviewer.core.errors import Cancelled, MedViewerError
from medviewer.core.volume import Volume
from tests.conftest import DEMO

torch = pytest.importorskip("torch")
pytest.importorskip("monai")

XRAY = DEMO / "xray" / "chest_xray_pneumonia.jpeg"
RESNET = {"class": "monai.networks.nets.ResNet",
          "args": {"block": "basic", "layers": [1, 1, 1, 1], "block_inplanes": [8, 8, 8, 16], "spatial_dims": 2,
                   "n_input_channels": 1, "num_classes": 2}}
UNET = {"class": "monai.networks.nets.UNet",
        "args": {"spatial_dims": 3, "in_channels": 1, "out_channels": 3, "channels": [4, 8], "strides": [2],
                 "num_res_units": 0}}


def _folder(folder, network, manifest, seed=0):
    import monai.networks.nets as nets

    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    net = getattr(nets, network["class"].rsplit(".", 1)[1])(**network["args"]).eval()
    torch.save(net.state_dict(), folder / "model.pt")
    manifest = {"version": "0", "network": network, "weights": "model.pt",
                "sha256": hashlib.sha256((folder / "model.pt").read_bytes()).hexdigest(),
                "intended_use": "research and demonstration, not for clinical use", **manifest}
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return read_manifest(folder), net


def _classifier(folder, **keys):
    return _folder(folder, RESNET, {
        "name": "tiny-cnn", "task": "classification",
        "input": {"modality": "XR", "dims": 2, "channels": 1, "size": [48, 48], **keys.pop("input", {})},
        "outputs": {"classes": ["NORMAL", "PNEUMONIA"]}, **keys})


@pytest.fixture(scope="module")
def xray():
    from medviewer.io import open_volume

    return open_volume(XRAY)


def _logits_and_features(net, x):
    """The reference: the eager network, and its pooled features with fc replaced by Identity
    (the design's definition of the OOD features)."""
    with torch.no_grad():
        logits = net(torch.from_numpy(x)).numpy()
        fc, net.fc = net.fc, torch.nn.Identity()
        features = net(torch.from_numpy(x)).numpy()
        net.fc = fc
    return logits.astype(np.float64), features.astype(np.float64)


# --- the template ------------------------------------------------------------------------------
class Recorder:
    """A task that records the stages it ran (a tiny torch network in predict)."""

    def __new__(cls, spec, cancel_after=None):
        from medviewer.ai.tasks.base import InferTask
        from medviewer.ai.tasks.results import MapResult

        class Task(InferTask):
            kind, title, framework = "classification", "recorder", "torch"

            def __init__(self, spec):
                super().__init__(spec)
                self.stages = []

            def pre(self, run):
                self.stages.append("pre")
                return np.ones((1, 1, 8, 8), np.float32)

            def predict(self, run, data, device, window):
                self.stages.append(("predict", device))
                return torch.nn.functional.avg_pool2d(torch.from_numpy(data), 2).numpy()

            def invert(self, run, out):
                self.stages.append("invert")
                return out[0]

            def post(self, run, out):
                self.stages.append("post")
                return MapResult(map=run.volume.copy_geometry(np.zeros(run.volume.shape, np.float32)))

        return Task(spec)


def test_stages_run_in_order_timed_and_typed(tmp_path, xray):
    spec, _ = _classifier(tmp_path / "m")
    task = Recorder(spec)
    messages = []
    result = task(xray, "cpu", progress=lambda f, m: messages.append((f, m)))
    assert task.stages == ["pre", ("predict", "cpu"), "invert", "post"]
    assert set(result.timings) == {"pre", "predict", "invert", "post"} and result.device == "cpu"
    assert all(v >= 0 for v in result.timings.values()) and messages[-1] == (1.0, "done")


def test_cancel_is_checked_between_stages(tmp_path, xray):
    spec, _ = _classifier(tmp_path / "m")
    task = Recorder(spec)
    with pytest.raises(Cancelled, match="recorder cancelled"):
        task(xray, "cpu", cancel=lambda: "pre" in task.stages)
    assert task.stages == ["pre"]  # predict never ran


def test_the_contract_is_checked_before_anything_runs(tmp_path):
    from medviewer.ai.inference import IncompatibleInput
    from medviewer.io import open_volume

    spec, _ = _classifier(tmp_path / "m")
    task = Recorder(spec)
    with pytest.raises(IncompatibleInput, match="2D model"):
        task(open_volume(DEMO / "ct_chest_20"), "cpu")
    seg, _ = _segmenter(tmp_path / "s", mirror=False)
    with pytest.raises(IncompatibleInput, match="segmentation model, not a classification model"):
        Recorder(seg)(open_volume(XRAY), "cpu")
    assert task.stages == []


def test_out_of_memory_in_predict_falls_back_to_the_cpu(tmp_path, xray, monkeypatch):
    from medviewer.ai.tasks import base

    spec, _ = _classifier(tmp_path / "m")
    task = Recorder(spec)
    original = type(task).predict

    def predict(self, run, data, device, window):
        if device == "cuda":
            self.stages.append(("predict", device))
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 1 GiB")
        return original(self, run, data, device, window)

    monkeypatch.setattr(type(task), "predict", predict)
    monkeypatch.setattr(type(task), "choose_device", lambda self, device: "cuda")
    said = []
    result = task(xray, progress=lambda f, m: said.append(m))
    assert [s for s in task.stages if isinstance(s, tuple)] == [("predict", "cuda"), ("predict", "cpu")]
    assert result.device == "cpu" and any("running on the CPU" in m for m in said)
    assert base.run_with_fallback is not None


# --- classification: calibration, decision, OOD, text mask, TTA --------------------------------
def test_classification_applies_temperature_threshold_and_ood(tmp_path, xray):
    from medviewer.ai.metrics import softmax
    from medviewer.ai.tasks.classification import Classification, classifier_input

    spec, net = _classifier(tmp_path / "plain")
    x = classifier_input(spec, xray.data)[None]
    logits, features = _logits_and_features(net, x)
    plain = Classification(spec, tta=0)(xray, "cpu")
    assert plain.threshold is None and plain.temperature == 1.0 and plain.ood_distance is None
    assert np.allclose(list(plain.probabilities.values()), softmax(logits)[0], atol=1e-5)
    assert plain.interval is None and not plain.uncertain

    # an OOD reference centred on this very image (distance 0) and one far from it
    np.savez(tmp_path / "near.npz", mean=features[0].astype(np.float32), precision=np.eye(16, dtype=np.float32))
    far = features[0] + 3.0
    np.savez(tmp_path / "far.npz", mean=far.astype(np.float32), precision=np.eye(16, dtype=np.float32))
    for name in ("near", "far"):
        (tmp_path / "plain" / f"{name}.npz").write_bytes((tmp_path / f"{name}.npz").read_bytes())
    t = 3.7
    for threshold, expected in ((0.0, "PNEUMONIA"), (1.01, "NORMAL")):
        manifest = json.loads((tmp_path / "plain" / "manifest.json").read_text())
        manifest.update({"calibration": {"temperature": t},
                         "decision": {"threshold": threshold, "positive_class": "PNEUMONIA", "rule": "test rule"},
                         "ood": {"file": "far.npz", "threshold": 5.0}})
        (tmp_path / "plain" / "manifest.json").write_text(json.dumps(manifest))
        spec = read_manifest(tmp_path / "plain")
        r = Classification(spec, tta=0)(xray, "cpu")
        assert r.prediction == expected and r.threshold == threshold and r.rule == "test rule"
        assert np.allclose([r.probabilities["NORMAL"], r.probabilities["PNEUMONIA"]], softmax(logits, t)[0], atol=1e-5)
        assert np.allclose(list(r.uncalibrated.values()), softmax(logits)[0], atol=1e-5)
        assert r.ood_distance == pytest.approx(np.sqrt(16 * 9.0), rel=1e-4)  # |3 * ones(16)|
        assert r.out_of_distribution and any("out of distribution" in f for f in r.flags())
    manifest["ood"] = {"file": "near.npz", "threshold": 1.0}
    (tmp_path / "plain" / "manifest.json").write_text(json.dumps(manifest))
    r = Classification(read_manifest(tmp_path / "plain"), tta=0)(xray, "cpu")
    assert r.ood_distance == pytest.approx(0.0, abs=1e-3) and not r.out_of_distribution


def test_a_missing_or_outside_ood_file_is_one_clear_error(tmp_path, xray):
    from medviewer.ai.tasks.classification import Classification

    spec, _ = _classifier(tmp_path / "m", ood={"file": "ood.npz", "threshold": 1.0})
    with pytest.raises(MedViewerError, match="out-of-distribution file 'ood.npz' is missing"):
        Classification(spec)(xray, "cpu")
    spec, _ = _classifier(tmp_path / "n", ood={"file": "../elsewhere.npz", "threshold": 1.0})
    with pytest.raises(MedViewerError, match="outside the model's folder"):
        Classification(spec)(xray, "cpu")


def test_text_mask_follows_the_manifest(tmp_path):
    from medviewer.ai.preprocess import TEXT_MASK, preprocess_image, preprocess_xray
    from medviewer.ai.tasks.classification import classifier_input

    old, _ = _classifier(tmp_path / "v1")
    new, _ = _classifier(tmp_path / "v2", input={"text_mask": TEXT_MASK})
    picture = np.zeros((1, 200, 200), np.uint8)
    picture[0, 20:180, 20:180] = 60
    picture[0, 30:90, 30:40] = 255  # a thin bright stroke on a dark area: a burned-in letter
    assert np.array_equal(classifier_input(old, picture), preprocess_image(picture, 48))
    assert np.array_equal(classifier_input(new, picture), preprocess_xray(picture, 48, mask_text=True))
    assert not np.array_equal(classifier_input(new, picture), classifier_input(old, picture))


def test_tta_gives_an_interval_and_flags_uncertain_when_it_straddles_the_threshold(tmp_path, xray):
    from medviewer.ai.tasks.classification import Classification

    spec, _ = _classifier(tmp_path / "m")
    base = Classification(spec, tta=0)(xray, "cpu")
    r = Classification(spec, tta=6)(xray, "cpu")
    p = base.probabilities["PNEUMONIA"]
    manifest = json.loads((tmp_path / "m" / "manifest.json").read_text())
    lo, hi = r.interval if r.interval_class == "PNEUMONIA" else (1 - r.interval[1], 1 - r.interval[0])
    assert r.tta_variants == 6  # row 0 is the image itself (batched with its variants: float rounding only)
    assert r.probabilities == pytest.approx(base.probabilities, abs=1e-6)
    assert r.interval_class == r.prediction and lo < hi
    # the same variants every call (fixed seed)
    assert Classification(spec, tta=6)(xray, "cpu").interval == r.interval
    for threshold, uncertain in (((lo + hi) / 2, True), (min(hi + 1e-3, 1.0), False)):
        manifest["decision"] = {"threshold": threshold, "positive_class": "PNEUMONIA"}
        (tmp_path / "m" / "manifest.json").write_text(json.dumps(manifest))
        d = Classification(read_manifest(tmp_path / "m"), tta=6)(xray, "cpu")
        assert d.interval_class == "PNEUMONIA" and d.uncertain is uncertain, (threshold, d.interval)
        assert (d.prediction == "PNEUMONIA") == (d.probabilities["PNEUMONIA"] >= threshold)
        assert d.probabilities["PNEUMONIA"] == pytest.approx(p, abs=1e-6)
        assert any(f.startswith("uncertain") for f in d.flags()) is uncertain


# --- segmentation: mirror TTA and the uncertainty map ---------------------------------------------
def _segmenter(folder, mirror):
    keys = {"test_time_augmentation": {"mirror_axes": ["x"]}} if mirror else {}
    return _folder(folder, UNET, {"name": "tiny-unet", "task": "segmentation",
                                  "input": {"modality": "MR", "dims": 3, "size": [16, 16, 16]},
                                  "outputs": {"labels": {"1": {"name": "a"}, "2": {"name": "b"}}}, **keys})


@pytest.mark.parametrize("mirror", [False, True])
def test_segmentation_mirror_tta_and_uncertainty_match_the_network_by_hand(tmp_path, mirror):
    from medviewer.ai.preprocess import normalise_zscore_nonzero
    from medviewer.ai.tasks.segmentation import Segmentation
    from medviewer.ai.tasks.trust import normalised_entropy

    spec, net = _segmenter(tmp_path / "m", mirror)
    rng = np.random.default_rng(0)
    data = rng.normal(100, 20, (16, 16, 16)).astype(np.float32)
    volume = Volume(data, modality="MR")
    result = Segmentation(spec)(volume, "cpu")
    x = torch.from_numpy(normalise_zscore_nonzero(data))[None, None]
    with torch.no_grad():
        probs = torch.softmax(net(x), 1)
        if mirror:
            probs = (probs + torch.softmax(net(x.flip(-1)), 1).flip(-1)) / 2
    probs = probs[0].numpy()
    assert result.tta == (("x mirror",) if mirror else ())
    assert np.allclose(result.probabilities.data, probs[1:].max(0), atol=1e-5)
    assert np.array_equal(result.labels.data, probs.argmax(0).astype(np.uint8))
    assert np.allclose(result.uncertainty.data, normalised_entropy(probs), atol=1e-5)
    assert result.uncertainty.shape == volume.shape and result.uncertainty.data.dtype == np.float32


def test_unknown_mirror_axes_are_refused(tmp_path):
    from medviewer.ai.tasks.segmentation import Segmentation

    spec, _ = _segmenter(tmp_path / "m", True)
    spec.manifest["test_time_augmentation"] = {"mirror_axes": ["w"]}
    with pytest.raises(MedViewerError, match="mirror_axes"):
        Segmentation(spec)(Volume(np.ones((16, 16, 16), np.float32), modality="MR"), "cpu")


# --- layering ----------------------------------------------------------------------------------------
def test_inference_does_not_import_training_code():
    code = ("import sys; import medviewer.ai.tasks as t; "
            "import medviewer.ai.tasks.base, medviewer.ai.tasks.classification, medviewer.ai.tasks.segmentation, "
            "medviewer.ai.tasks.classical, medviewer.ai.tasks.anomaly, medviewer.ai.tasks.explanation, "
            "medviewer.ai.service, medviewer.ai.explain; "
            "assert 'torch' not in sys.modules, 'torch imported eagerly'; "
            "from medviewer.ai.registry import read_manifest; from medviewer.io import open_volume; "
            f"v = open_volume({str(XRAY)!r}); "
            f"r = t.make_task('classify', read_manifest(__import__('pathlib').Path({str(DEMO.parent / 'models' / 'pneumonia-cnn')!r})))(v, 'cpu'); "
            "bad = sorted(m for m in sys.modules if m.startswith('medviewer.ai.training')); "
            "print(bad); assert not bad, bad")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]


def test_a_torchscript_export_gives_the_same_classification_and_ood_distance(tmp_path, xray, monkeypatch):
    """The loaded network may be the TorchScript export (ai.backends.export): its logits and pooled
    features come from one call of its logits_and_features, and the result equals the eager one."""
    from medviewer.ai.backends.export import export_torchscript
    from medviewer.ai.backends.torch_loader import jit_load
    from medviewer.ai.tasks import base
    from medviewer.ai.tasks.classification import Classification, classifier_input

    spec, net = _classifier(tmp_path / "m", ood={"file": "ood.npz", "threshold": 1e9})
    x = classifier_input(spec, xray.data)[None]
    _, features = _logits_and_features(net, x)
    np.savez(tmp_path / "m" / "ood.npz", mean=np.zeros(16, np.float32), precision=np.eye(16, dtype=np.float32))
    eager = Classification(spec, tta=2)(xray, "cpu")
    assert eager.ood_distance == pytest.approx(float(np.linalg.norm(features[0])), rel=1e-4)
    scripted = jit_load(export_torchscript(tmp_path / "m"))
    assert isinstance(scripted, torch.jit.ScriptModule)
    monkeypatch.setattr(base, "network", lambda spec, device, eager=False: scripted)
    exported = Classification(read_manifest(tmp_path / "m"), tta=2)(xray, "cpu")
    assert exported.ood_distance == pytest.approx(eager.ood_distance, rel=1e-5)
    assert exported.probabilities == pytest.approx(eager.probabilities, abs=1e-6)
    assert exported.interval == pytest.approx(eager.interval, abs=1e-6)
