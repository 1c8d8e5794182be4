"""The inference service without Qt: jobs queue per device, report progress from the worker,
cancel between tiles, fail without taking anything down, and never modify their input."""
import json
import shutil
import threading

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("monai")

from medviewer.ai.registry import read_manifest  # noqa: E402
from medviewer.ai.service import InferenceService  # noqa: E402
from tests.conftest import DEMO, REPO  # noqa: E402

CNN = REPO / "resources" / "models" / "pneumonia-cnn"
UNET = REPO / "resources" / "models" / "hippocampus-unet"


@pytest.fixture
def service():
    s = InferenceService("cpu")
    yield s
    s.shutdown(wait=10)


@pytest.fixture(scope="module")
def volumes():
    from medviewer.io import open_volume

    return (open_volume(DEMO / "xray" / "chest_xray_pneumonia.jpeg"),
            open_volume(DEMO / "mri_hippocampus" / "hippocampus_001.nii.gz"))


def test_jobs_run_in_order_on_a_worker_thread_with_progress_and_timings(service, volumes):
    xray, mri = volumes
    before = mri.data.copy()
    threads, fractions = set(), []

    def on_progress(job):
        threads.add(threading.current_thread().name)
        fractions.append(job.fraction)

    first = service.submit("segment", read_manifest(UNET), mri)
    first.on_progress(on_progress)
    second = service.submit("classify", read_manifest(CNN), xray)
    assert first.wait(60) and second.wait(60)
    assert (first.state, second.state) == ("done", "done")
    assert threads == {"medviewer-inference-cpu"} and threading.current_thread().name not in threads
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    assert second.started_at >= first.finished_at  # it waited for the first: no race
    assert {"queued", "pre", "predict", "post", "total"} <= set(first.timings)
    assert second.result.prediction == "PNEUMONIA" and first.device == "cpu"
    assert np.array_equal(mri.data, before)
    late = []
    first.on_done(late.append)  # registered after the end: called at once
    assert late == [first]


def test_cancel_before_start_and_mid_run(service, volumes):
    _, mri = volumes
    big = mri.copy_geometry(np.pad(mri.data, ((30, 30), (40, 40), (30, 30))))
    started = threading.Event()
    running = service.submit("segment", read_manifest(UNET), big)
    running.on_progress(lambda job: started.set() if "tile 2/" in job.message else None)
    waiting = service.submit("classify", read_manifest(UNET), mri)
    waiting.cancel()
    assert started.wait(60)
    running.cancel()
    assert running.wait(30) and waiting.wait(30)
    assert running.state == "cancelled" and running.result is None
    assert waiting.state == "cancelled" and "before it started" in waiting.message


def test_a_failing_job_reports_and_the_worker_goes_on(tmp_path, service, volumes):
    xray, mri = volumes
    folder = tmp_path / "broken"
    shutil.copytree(CNN, folder)
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["outputs"]["classes"] = ["A", "B", "C"]
    (folder / "manifest.json").write_text(json.dumps(manifest))
    bad = service.submit("classify", read_manifest(folder), xray)
    wrong = service.submit("segment", read_manifest(UNET), xray)  # a 2D image for a 3D model
    good = service.submit("classify", read_manifest(CNN), xray)
    assert bad.wait(60) and wrong.wait(60) and good.wait(60)
    assert bad.state == "failed" and "2 outputs for 3 classes" in bad.error
    assert wrong.state == "failed" and "3D model and this image is 2D" in wrong.error
    assert good.state == "done"


def test_unknown_task_and_shutdown(volumes):
    from medviewer.core.errors import MedViewerError

    s = InferenceService("cpu")
    with pytest.raises(MedViewerError, match="unknown task"):
        s.submit("dream", read_manifest(CNN), volumes[0])
    s.shutdown(wait=5)
    with pytest.raises(MedViewerError, match="shut down"):
        s.submit("classify", read_manifest(CNN), volumes[0])
