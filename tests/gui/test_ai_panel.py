"""The AI panel, offscreen: the shipped models run in the background from the panel, their results
match the command line's, cancel leaves nothing behind, a mask is editable and undoable, heat maps
are drawn and exported. Screenshots go to $MEDVIEWER_SHOTS (default: the test's tmp folder)."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("monai")

from medviewer.ui.qt import QtCore  # noqa: E402
from tests.conftest import DEMO, REPO  # noqa: E402
from tests.gui.test_main_window import grab  # noqa: E402

XRAY = DEMO / "xray" / "chest_xray_pneumonia.jpeg"
MRI = DEMO / "mri_hippocampus" / "hippocampus_001.nii.gz"
CT = DEMO / "ct_chest_20"


def _shot(window, tmp_path, name):
    folder = os.environ.get("MEDVIEWER_SHOTS") or str(tmp_path)
    path = os.path.join(folder, f"ai_{name}.png")
    QtCore.QCoreApplication.processEvents()
    window.grab().save(path)
    return path


def _run(qtbot, panel, model, task=None, timeout=120_000):
    assert panel.select_model(model), [e.name for e in panel.entries]
    with qtbot.waitSignal(panel.run_finished, timeout=timeout) as blocker:
        job = panel.run(task)
        assert job is not None
    assert blocker.args[0] is job
    return job


def _cli(*args):
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    proc = subprocess.run([sys.executable, "-m", "medviewer", *map(str, args)], capture_output=True,
                          text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_models_are_listed_with_incompatible_ones_greyed_with_the_reason(window):
    w = window(XRAY)
    panel = w.ai_panel
    names = {e.name: panel.compatibility(e) for e in panel.entries}
    assert names["pneumonia-cnn"] == "" and names["cxr-anomaly"] == ""
    assert "3D model and this image is 2D" in names["hippocampus-unet"]
    item = next(panel.model_list.item(i) for i in range(panel.model_list.count())
                if "hippocampus-unet" in panel.model_list.item(i).text())
    assert not (item.flags() & QtCore.Qt.ItemIsEnabled) and "2D" in item.toolTip()
    assert not panel.select_model("hippocampus-unet")


def test_classifier_bars_match_the_cli_and_gradcam_is_drawn_over_the_lungs(window, qtbot, tmp_path):
    w = window(XRAY)
    panel = w.ai_panel
    view = w.grid.active_view()
    before = grab(view)
    job = _run(qtbot, panel, "pneumonia-cnn")
    assert job.state == "done" and job.device == "cpu"
    cli = json.loads(_cli("infer", "--model", "pneumonia-cnn", XRAY, "--json", "--device", "cpu"))
    assert panel.probabilities.keys() == cli["probabilities"].keys()
    for name, p in cli["probabilities"].items():
        assert panel.probabilities[name] == pytest.approx(p, abs=1e-5)
        assert panel.class_bars[name].value() == round(1000 * p)
    assert cli["prediction"] == "PNEUMONIA" and "PNEUMONIA" in panel.result_label.text()
    # the decision rule, the (calibrated) probability and its interval under test-time augmentation
    trust = panel.trust_label.text()
    assert "Decision:" in trust and "probability of pneumonia" in trust.lower()
    low, high = cli["interval"]["low"], cli["interval"]["high"]
    assert f"{low:.3f}–{high:.3f}" in trust and ("Uncertain" in trust) == cli["uncertain"]
    if "threshold" in cli:
        assert f"≥ {cli['threshold']:.3f}" in trust
    assert "not for clinical use" in panel.card.toPlainText()
    assert {"queued", "pre", "predict", "total"} <= set(job.timings)

    job = _run(qtbot, panel, "pneumonia-cnn", "gradcam")
    assert job.state == "done", job.error
    heat = w.session.heatmaps[-1]
    assert heat.kind == "explanation" and heat.data.shape == w.session.volume.shape
    assert 0.0 <= heat.data.min() and heat.data.max() == pytest.approx(1.0)
    # the map is strongest inside the chest, not in the corners
    h, wd = heat.data.shape[1:]
    centre = heat.data[0, h // 4: 3 * h // 4, wd // 4: 3 * wd // 4].mean()
    corners = np.mean([heat.data[0, :h // 8, :wd // 8].mean(), heat.data[0, :h // 8, -wd // 8:].mean()])
    assert centre > corners
    after = grab(view)
    changed = np.abs(after.astype(int) - before.astype(int)).sum(-1) > 30
    assert changed.mean() > 0.05  # the overlay is on screen
    # colour: the overlay adds saturated pixels to a grey X-ray
    saturation = after.max(-1).astype(int) - after.min(-1)
    assert (saturation > 60).mean() > 0.03
    _shot(w, tmp_path, "xray_gradcam")
    assert len(panel.history.get(w.session.source_id, [])) == 2 and panel.history_list.count() == 2

    png = panel.export_heatmap(str(tmp_path / "gradcam.png"), kind="png")
    nii = panel.export_heatmap(str(tmp_path / "gradcam.nii.gz"), kind="nifti")
    from medviewer.io import open_volume

    saved = open_volume(nii)
    assert np.allclose(saved.data, heat.data) and os.path.getsize(png) > 10_000

    # display settings reach the layer
    panel.opacity_slider.setValue(80)
    panel.threshold_slider.setValue(50)
    panel.colormap_combo.setCurrentText("jet")
    assert (heat.opacity, heat.threshold, heat.colormap) == (0.8, 0.5, "jet")
    assert heat.lut()[100, 3] == 0 and heat.lut()[200, 3] > 0


def test_segmentation_mask_matches_the_cli_is_editable_and_undoable(window, qtbot, tmp_path):
    w = window(MRI)
    panel = w.ai_panel
    job = _run(qtbot, panel, "hippocampus-unet")
    assert job.state == "done", job.error
    layer = w.session.active_labels
    assert layer is not None and layer.name.startswith("hippocampus-unet")
    assert {lab.name for lab in layer.table} == {"anterior", "posterior"}
    out = tmp_path / "cli"
    _cli("infer", "--model", "hippocampus-unet", MRI, "--out", out, "--device", "cpu")
    from medviewer.io import open_volume

    cli_mask = open_volume(out / "hippocampus_001.nii.gz").data
    assert np.array_equal(layer.data, cli_mask)  # voxel for voxel
    assert any(h.kind == "probability" for h in w.session.heatmaps)
    uncertainty = next(h for h in w.session.heatmaps if h.kind == "uncertainty")
    cli_uncertainty = open_volume(out / "hippocampus_001_uncertainty.nii.gz").data
    assert np.allclose(uncertainty.data, cli_uncertainty, atol=1e-6) and 0 <= uncertainty.data.min()
    assert uncertainty.data.max() <= 1 and "Uncertainty map" in panel.trust_label.text()
    _shot(w, tmp_path, "mri_segmentation")

    # edit with a tool, undo the edit, then undo the accepted mask itself
    k = int(np.argmax((layer.data > 0).sum((1, 2))))
    region = (slice(k, k + 1), slice(None), slice(None))
    mask = np.zeros((1,) + layer.data.shape[1:], bool)
    mask[0, :5, :5] = True
    assert layer.paint(region, mask, 2, "brush") == 25
    layer.undo()
    assert np.array_equal(layer.data, cli_mask)
    layer.undo()
    assert not layer.data.any()
    layer.redo()
    assert np.array_equal(layer.data, cli_mask)

    # save it as an annotator would: the file holds the model's mask on the image's grid
    assert layer.paint(region, mask, 2, "brush") == 25
    saved = tmp_path / "edited.nii.gz"
    w.annotation.save_labels(str(saved))
    written = open_volume(saved)
    assert np.array_equal(written.data, layer.data) and written.spacing == w.session.volume.spacing


def test_cancel_mid_run_leaves_no_overlay_and_two_runs_queue(window, qtbot):
    w = window(MRI)
    panel = w.ai_panel
    assert panel.select_model("hippocampus-unet")
    layers, heatmaps = list(w.session.label_maps), list(w.session.heatmaps)
    first = panel.run("occlusion")  # seconds long: many batches
    second = panel.run()            # queued behind it, not racing
    qtbot.waitUntil(lambda: first.state == "running" and first.fraction > 0.1, timeout=60_000)
    assert second.state == "queued"
    said = []  # what the panel says when the run ends (the queued run's progress follows at once)
    panel.run_finished.connect(lambda job: said.append((job, panel.stage_label.text())))
    with qtbot.waitSignal(panel.run_finished, timeout=30_000):
        first.cancel()
    assert first.state == "cancelled" and first.result is None
    assert w.session.heatmaps == heatmaps and w.session.label_maps == layers
    assert said[0][0] is first and "cancelled" in said[0][1]
    qtbot.waitUntil(lambda: second.done(), timeout=60_000)
    assert second.state == "done"


def test_a_failing_model_reports_and_leaves_the_labels_alone(window, qtbot, tmp_path):
    import shutil

    w = window(XRAY)
    folder = tmp_path / "models" / "broken-cnn"
    shutil.copytree(REPO / "resources" / "models" / "pneumonia-cnn", folder)
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["name"] = "broken-cnn"
    manifest["outputs"]["classes"] = ["A", "B", "C"]  # the network gives 2 outputs
    (folder / "manifest.json").write_text(json.dumps(manifest))
    panel = w.ai_panel
    panel.model_dirs = [str(tmp_path / "models")]
    panel.reload_models()
    labels = w.session.ensure_labels()
    labels.paint((slice(0, 1), slice(0, 10), slice(0, 10)), np.ones((1, 10, 10), bool), 1)
    snapshot = labels.data.copy()
    job = _run(qtbot, panel, "broken-cnn")
    assert job.state == "failed" and "outputs for 3 classes" in job.error
    assert "failed" in panel.stage_label.text()
    assert np.array_equal(labels.data, snapshot) and w.session.volume is not None


def test_anomaly_map_is_shown_as_a_heat_map(window, qtbot, tmp_path):
    w = window(XRAY)
    job = _run(qtbot, w.ai_panel, "cxr-anomaly")
    assert job.state == "done", job.error
    heat = w.session.heatmaps[-1]
    assert heat.kind == "anomaly" and 0 <= heat.data.min() and heat.data.max() <= 1
    assert 0 <= job.result.score <= 1
    _shot(w, tmp_path, "xray_anomaly")


def test_closing_the_window_during_a_run_is_safe(window, qtbot):
    w = window(MRI)
    assert w.ai_panel.select_model("hippocampus-unet")
    job = w.ai_panel.run("occlusion")
    qtbot.waitUntil(lambda: job.state == "running", timeout=60_000)
    w.close()
    assert job.wait(30)
    assert job.state == "cancelled"


def test_heat_maps_are_listed_in_the_layers_panel(window, qtbot):
    from medviewer.core.heatmap import HeatMap

    w = window(XRAY)
    heat = w.session.add_heatmap(HeatMap(np.linspace(0, 1, w.session.volume.data[..., 0].size, dtype=np.float32)
                                         .reshape(w.session.volume.shape), "test map"))
    panel = w.layer_panel
    qtbot.waitUntil(lambda: any(panel.list.item(i).text() == "Heat map: test map" for i in range(panel.list.count())))
    item = next(panel.list.item(i) for i in range(panel.list.count()) if panel.list.item(i).text() == "Heat map: test map")
    panel.list.setCurrentItem(item)
    panel.opacity.setValue(30)
    assert heat.opacity == pytest.approx(0.3)
    item.setCheckState(QtCore.Qt.Unchecked)
    assert not heat.visible
    view = w.grid.active_view()
    assert not any(it.isVisible() for h, it, _ in view._heat_items if h is heat)


def test_the_card_of_a_v2_model_gives_each_split_with_intervals_the_threshold_and_calibration():
    from medviewer.ai.registry import read_manifest
    from medviewer.ui.ai_panel import _card

    spec = read_manifest(REPO / "resources" / "models" / "pneumonia-cnn")
    card = _card(spec)
    test = spec.manifest["metrics"]["test"]["roc_auc"]
    assert "<i>Validation:</i>" in card and "<i>Test:</i>" in card
    assert f"roc_auc {test['value']:.3g} [{test['ci95'][0]:.3g}, {test['ci95'][1]:.3g}]" in card
    assert f"≥ {spec.manifest['decision']['threshold']:.3f}" in card and "temperature" in card
