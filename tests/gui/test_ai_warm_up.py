"""The AI backend warmed after the window is shown (MainWindow.warm_ai_backend, app.run_viewer):
the app's service runs in a process of its own, so the GUI process never imports torch, and a Run
clicked at once still gets its result on screen."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import DEMO, REPO

PROBE = REPO / "tests" / "support" / "first_run_gui.py"


def test_a_first_run_through_the_process_service_shows_its_result_and_torch_stays_out(tmp_path):
    pytest.importorskip("torch")
    env = {**os.environ, "MEDVIEWER_SETTINGS": str(tmp_path / "s.ini"), "MEDVIEWER_DATA_DIR": str(tmp_path / "d"),
           "QT_QPA_PLATFORM": "offscreen", "MEDVIEWER_NO_DIALOGS": "1"}
    image = DEMO / "mri_hippocampus" / "hippocampus_001.nii.gz"
    out = subprocess.run([sys.executable, str(PROBE), "process", "hippocampus-unet", str(image), "0"],
                         capture_output=True, text=True, env=env, cwd=REPO, timeout=900)
    assert out.returncode == 0, out.stderr[-3000:]
    record = json.loads(out.stdout.strip().splitlines()[-1])
    assert record["torch_in_gui"] is False
    assert record["click_to_result_s"] > 0 and record["timings"]["predict"] > 0


class _Recorder:
    def __init__(self):
        self.warmed: list = []

    def warm_up(self, specs):
        self.warmed.append([s.name for s in specs])

    def shutdown(self, wait=0.0):
        pass


def test_warm_up_asks_for_the_selected_model_first_then_the_torch_models_that_fit_the_image(qtbot):
    from medviewer.ui.main_window import MainWindow

    service = _Recorder()
    win = MainWindow(ai_service=service)
    qtbot.addWidget(win)
    win.open_paths([str(DEMO / "xray" / "chest_xray_pneumonia.jpeg")], wait=True)
    assert win.ai_panel.select_model("pneumonia-svm")
    win.warm_ai_backend()
    names = service.warmed[0]
    fitting = sorted(e.name for e in win.ai_panel.entries if e.available and not win.ai_panel.compatibility(e))
    assert sorted(names) == fitting and names[0] == "pneumonia-svm"
    assert "pneumonia-cnn" in names and "hippocampus-unet" not in names  # a 3D model cannot run on the X-ray
    torch_models = [e.name for e in win.ai_panel.entries if e.name in fitting
                    and e.spec.manifest.get("framework", "torch") == "torch"]
    assert set(names[1:1 + len(torch_models)]) == set(torch_models)
    # no model fits a CT: the torch models are warmed (the import of torch is what costs)
    win.open_paths([str(DEMO / "ct_chest_20")], wait=True)
    win.warm_ai_backend()
    assert set(service.warmed[1]) == {e.name for e in win.ai_panel.entries if e.available
                                      and e.spec.manifest.get("framework", "torch") == "torch"}
    # an in-process service has nothing to warm (warming torch here would freeze the window)
    plain = MainWindow()
    qtbot.addWidget(plain)
    plain.warm_ai_backend()
