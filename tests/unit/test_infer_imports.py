"""A one-image `medviewer infer` imports only what runs: a built-in model with its TorchScript export
runs without MONAI, and finding the model looks at no other model's weights."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

from tests.conftest import DEMO, REPO


def test_find_model_checks_only_the_weights_of_the_model_asked_for(monkeypatch):
    from medviewer.ai import registry

    checked = []
    real = registry.check_weights
    monkeypatch.setattr(registry, "check_weights", lambda spec: checked.append(spec.name) or real(spec))
    entry = registry.find_model("pneumonia-svm")
    assert entry.available and checked == ["pneumonia-svm"]
    checked.clear()
    assert {e.name for e in registry.discover_models()} >= {"pneumonia-svm", "pneumonia-cnn"}
    assert len(checked) > 1  # listing the models still checks every one


@pytest.mark.parametrize("model,image,out", [
    ("pneumonia-cnn", DEMO / "xray" / "chest_xray_pneumonia.jpeg", False),
    ("hippocampus-unet", DEMO / "mri_hippocampus" / "hippocampus_001.nii.gz", True)],
    ids=["pneumonia-cnn", "hippocampus-unet"])
def test_infer_with_an_exported_built_in_model_does_not_import_monai(tmp_path, model, image, out):
    pytest.importorskip("torch")
    from medviewer.ai.backends.export import export_torchscript

    root = tmp_path / "resources"
    (root / "models").mkdir(parents=True)
    (root / "demo").symlink_to(DEMO, target_is_directory=True)
    shutil.copytree(REPO / "resources" / "models" / model, root / "models" / model)
    export_torchscript(root / "models" / model)  # a no-op when the shipped model has a current export
    args = ["--model", model, str(image), "--json"] + (["--out", str(tmp_path / "out")] if out else [])
    record, heavy = infer_in_child(args, {"MEDVIEWER_RESOURCES": str(root), "MEDVIEWER_DATA_DIR": str(tmp_path / "d")})
    assert record["input"] == str(image)
    assert [m for m in heavy if m != "torch"] == []


def infer_in_child(args: list[str], env: dict[str, str]) -> tuple[dict, list[str]]:
    """`medviewer infer ARGS` in a fresh interpreter: (its first JSON record, which of torch, monai,
    sklearn and PySide6 it imported)."""
    code = ("import sys, io, contextlib, json\n"
            "from medviewer.cli import main\n"
            "buffer = io.StringIO()\n"
            "with contextlib.redirect_stdout(buffer):\n"
            f"    rc = main(['infer'] + {args!r})\n"
            "print(json.dumps({'rc': rc, 'record': buffer.getvalue(), "
            "'heavy': [m for m in ('torch', 'monai', 'sklearn', 'PySide6') if m in sys.modules]}))\n")
    env = {**os.environ, **env}
    env.pop("MEDVIEWER_MODELS", None)
    env.pop("MEDVIEWER_DEVICE", None)
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=REPO,
                         timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert result["rc"] == 0, run.stderr[-2000:]
    return json.loads(result["record"].strip().splitlines()[0]), result["heavy"]
