"""ai.process_service: the inference service in a child process. The same results as in-process,
the parent never imports torch, cancel, warm-up, and a child that dies fails its jobs in one line
and is started again."""
from __future__ import annotations

import os
import signal
import subprocess
import sys

import numpy as np
import pytest

from tests.conftest import DEMO, REPO

pytest.importorskip("torch")

HIPPOCAMPUS = DEMO / "mri_hippocampus" / "hippocampus_001.nii.gz"
MODEL = REPO / "resources" / "models" / "hippocampus-unet"

PARENT = f"""
import sys, numpy as np
from pathlib import Path
from medviewer.ai.process_service import ProcessInferenceService
from medviewer.ai.registry import read_manifest
from medviewer.io import open_volume
spec = read_manifest(Path({str(MODEL)!r}))
volume = open_volume({str(HIPPOCAMPUS)!r})
service = ProcessInferenceService()
service.warm_up([spec])
job = service.submit("segment", spec, volume)
assert job.wait(600), "no result"
assert job.state == "done", job.error
np.save(sys.argv[1], job.result.labels.data)
print(job.result.labels.data.flags.writeable, 'torch' in sys.modules, 'monai' in sys.modules)
service.shutdown(wait=10)
"""


def test_the_child_gives_the_in_process_result_and_the_parent_never_imports_torch(tmp_path):
    out = tmp_path / "labels.npy"
    run = subprocess.run([sys.executable, "-c", PARENT, str(out)], capture_output=True, text=True, cwd=REPO,
                         env={**os.environ, "MEDVIEWER_DATA_DIR": str(tmp_path / "d")}, timeout=900)
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.stdout.split() == ["True", "False", "False"]  # writeable labels; no torch, no MONAI here
    from medviewer.ai.registry import read_manifest
    from medviewer.ai.service import run_task
    from medviewer.io import open_volume

    expected = run_task("segment", read_manifest(MODEL), open_volume(str(HIPPOCAMPUS)), "cpu",
                        lambda f, m: None, lambda: False)
    labels = np.load(out)
    assert labels.shape == expected.labels.data.shape and labels.any()
    assert np.array_equal(labels, expected.labels.data)


def test_cancel_and_a_child_that_dies(tmp_path):
    from medviewer.ai.process_service import ProcessInferenceService
    from medviewer.ai.registry import read_manifest
    from medviewer.io import open_volume

    spec, volume = read_manifest(MODEL), open_volume(str(HIPPOCAMPUS))
    service = ProcessInferenceService()
    try:
        first = service.submit("segment", spec, volume)
        first.cancel()  # before the child has even started it
        assert first.wait(600) and first.state == "cancelled"
        victim = service.submit("segment", spec, volume)
        os.kill(service.pid, signal.SIGKILL)
        assert victim.wait(60) and victim.state == "failed"
        assert "the AI process stopped" in victim.error and "\n" not in victim.error
        again = service.submit("segment", spec, volume)  # a new child
        assert again.wait(600) and again.state == "done", again.error
        assert again.result.labels.data.shape == volume.data.shape
    finally:
        service.shutdown(wait=10)


def test_a_synthetic_warm_up_input_fits_each_models_contract():
    from medviewer.ai.inference import check_input
    from medviewer.ai.process_service import synthetic_volume
    from medviewer.ai.registry import read_manifest

    for name in ("hippocampus-unet", "pneumonia-cnn", "pneumonia-svm"):
        spec = read_manifest(REPO / "resources" / "models" / name)
        assert check_input(spec, synthetic_volume(spec)) == "", name
