"""TorchScript exports (ai.backends.export) and the loader that prefers them (ai.backends.torch_loader):
outputs equal to the eager MONAI network to 1e-5 on real images, deterministic, idempotent, used only
for built-in models and only while current, and loaded without importing MONAI."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import REPO, SHARED_DATA

torch = pytest.importorskip("torch")
pytest.importorskip("monai")

from medviewer.ai.backends import torch_loader  # noqa: E402
from medviewer.ai.backends.export import TOLERANCE, export_torchscript  # noqa: E402
from medviewer.ai.registry import read_manifest  # noqa: E402

MODELS = [REPO / "resources" / "models" / "pneumonia-cnn", REPO / "resources" / "models" / "hippocampus-unet"]
XRAYS = ["PNEUMONIA/person1000_bacteria_2931.jpeg", "PNEUMONIA/person1000_virus_1681.jpeg"]


@pytest.fixture(scope="module")
def resources(tmp_path_factory):
    """A resources folder of its own (MEDVIEWER_RESOURCES) whose models are copies of MODELS,
    each exported once: built-in models for the loader."""
    root = tmp_path_factory.mktemp("resources")
    (root / "demo").mkdir()
    for source in MODELS:
        if (source / "manifest.json").is_file():
            shutil.copytree(source, root / "models" / source.name, ignore=shutil.ignore_patterns("model.ts"))
            export_torchscript(root / "models" / source.name)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MEDVIEWER_RESOURCES", str(root))
        yield root


def _built_in(resources, source: Path, copy_as: str | None = None) -> Path:
    """The exported built-in copy of `source` (a fresh copy named `copy_as`, for tests that change it)."""
    folder = resources / "models" / source.name
    if not folder.is_dir():
        pytest.skip(f"no model folder at {source}")
    if copy_as is None:
        return folder
    shutil.copytree(folder, resources / "models" / copy_as)
    return resources / "models" / copy_as


def _real_inputs(spec) -> list[np.ndarray]:
    """Preprocessed real images of the model's kind (two X-rays, two hippocampus crops), or seeded
    noise of the input size where ../shared/data is absent."""
    from medviewer.ai import preprocess
    from medviewer.io import open_volume

    size = [int(v) for v in spec.input["size"]]
    if spec.input["dims"] == 2:
        files = [SHARED_DATA / "chest_xray" / "train" / f for f in XRAYS]
        prep = ((lambda d: preprocess.preprocess_xray(d, size[0])) if spec.input.get("text_mask")
                else (lambda d: preprocess.preprocess_image(d, size[0])))
    else:
        files = sorted((SHARED_DATA / "hippocampus" / "imagesTr").glob("hippocampus_00*.nii.gz"))[:2]
        prep = (lambda d: preprocess.centre_pad_crop(preprocess.normalise_zscore_nonzero(d), tuple(size))[0][None])
    if not all(f.is_file() for f in files) or not files:
        rng = np.random.default_rng(0)
        return [rng.standard_normal((1, *size)).astype(np.float32) for _ in range(2)]
    return [np.ascontiguousarray(prep(open_volume(str(f)).data), dtype=np.float32) for f in files]


@pytest.mark.parametrize("source", MODELS, ids=lambda p: p.name)
def test_the_export_equals_the_eager_network_on_real_images_and_is_deterministic(resources, source):
    folder = _built_in(resources, source)
    path = export_torchscript(folder)
    spec = read_manifest(folder)
    record = spec.manifest["torchscript"]
    assert path == folder / "model.ts" and record["file"] == "model.ts"
    assert record["weights_sha256"] == spec.sha256 and record["max_abs_difference"] <= TOLERANCE
    scripted = torch_loader.load_network(spec, "cpu")
    eager = torch_loader.load_network(spec, "cpu", eager=True)
    assert isinstance(scripted, torch.jit.ScriptModule) and not isinstance(eager, torch.jit.ScriptModule)
    with torch.inference_mode():
        for image in _real_inputs(spec):
            x = torch.from_numpy(image[None])
            expected = eager(x)
            outputs = [scripted(x) for _ in range(3)]  # the profiling executor re-optimises after 2 calls
            for out in outputs:
                assert out.shape == expected.shape
                assert float((out - expected).abs().max()) <= TOLERANCE
            assert all(torch.equal(outputs[0], o) for o in outputs[1:])  # deterministic


@pytest.mark.parametrize("source", [MODELS[0]], ids=lambda p: p.name)
def test_pooled_features_are_the_input_of_the_last_layer_in_both_forms(resources, source):
    folder = _built_in(resources, source)
    spec = read_manifest(folder)
    eager = torch_loader.load_network(spec, eager=True)
    scripted = torch_loader.load_network(spec)
    x = torch.from_numpy(_real_inputs(spec)[0][None])
    with torch.inference_mode():
        logits, features = torch_loader.logits_and_features(eager, x)
        s_logits, s_features = torch_loader.logits_and_features(scripted, x)
        fc = eager.fc
        eager.fc = torch.nn.Identity()
        try:
            reference = eager(x)  # the design's definition: the network with fc replaced by Identity
        finally:
            eager.fc = fc
        head = fc(reference)
    assert torch.equal(features, reference) and torch.equal(logits, head)
    assert float((s_features - features).abs().max()) <= TOLERANCE
    assert float((s_logits - logits).abs().max()) <= TOLERANCE


def test_export_is_idempotent_and_redone_when_the_weights_change(resources):
    folder = _built_in(resources, MODELS[0], copy_as="retrained")
    path = export_torchscript(folder)
    stamp, manifest_text = path.stat().st_mtime_ns, (folder / "manifest.json").read_text()
    assert export_torchscript(folder) == path
    assert path.stat().st_mtime_ns == stamp and (folder / "manifest.json").read_text() == manifest_text
    # new weights (a retrained model): the old export is stale, never used, and a new one is made
    spec = read_manifest(folder)
    state = torch.load(folder / "model.pt", weights_only=True)
    state = {k: (v + 0.01 if v.is_floating_point() else v) for k, v in state.items()}
    torch.save(state, folder / "model.pt")
    manifest = json.loads(manifest_text)
    from medviewer.ai.registry import sha256_of

    manifest["sha256"] = sha256_of(folder / "model.pt")
    (folder / "manifest.json").write_text(json.dumps(manifest))
    stale = read_manifest(folder)
    assert "other weights" in torch_loader.scripted_problem(stale)
    assert not isinstance(torch_loader.load_network(stale), torch.jit.ScriptModule)
    export_torchscript(folder)
    fresh = read_manifest(folder)
    assert fresh.manifest["torchscript"]["weights_sha256"] == manifest["sha256"] != spec.sha256
    assert isinstance(torch_loader.load_network(fresh), torch.jit.ScriptModule)


def test_an_export_is_used_only_for_built_in_models_and_only_intact(resources, tmp_path):
    folder = _built_in(resources, MODELS[0], copy_as="tampered")
    # the same folder outside the built-in models: a user's folder, always built from its MONAI class
    user = tmp_path / "user-models" / folder.name
    shutil.copytree(folder, user)
    assert "built-in models only" in torch_loader.scripted_problem(read_manifest(user))
    assert not isinstance(torch_loader.load_network(read_manifest(user)), torch.jit.ScriptModule)
    # a changed TorchScript file is not run
    with open(folder / "model.ts", "ab") as fp:
        fp.write(b"\0")
    spec = read_manifest(folder)
    assert "SHA-256" in torch_loader.scripted_problem(spec)
    assert not isinstance(torch_loader.load_network(spec), torch.jit.ScriptModule)
    # a record naming a file outside the folder is refused with the reason
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["torchscript"]["file"] = "../../../outside.ts"
    (folder / "manifest.json").write_text(json.dumps(manifest))
    assert "outside the model's folder" in torch_loader.scripted_problem(read_manifest(folder))


def test_loading_an_export_does_not_import_monai(resources):
    folder = _built_in(resources, MODELS[0])
    code = ("import sys, torch\n"
            "from pathlib import Path\n"
            "from medviewer.ai.backends.torch_loader import load_network\n"
            "from medviewer.ai.registry import read_manifest\n"
            f"net = load_network(read_manifest(Path({str(folder)!r})))\n"
            "print(type(net).__name__, 'monai' in sys.modules)\n")
    env = {**os.environ, "MEDVIEWER_RESOURCES": str(resources)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=REPO,
                         timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["RecursiveScriptModule", "False"]
