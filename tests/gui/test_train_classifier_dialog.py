"""The "Train classifier" dialog driven by pytest-qt: ROIs of two classes labelled on the real MRI,
an SVM and a random forest trained in the background, their ROC curves and comparison shown, the
chosen model registered and run from the AI panel on a new ROI."""
import os

import numpy as np
import pytest

pytest.importorskip("sklearn")
pytest.importorskip("skops")

from medviewer.ui.qt import QtCore  # noqa: E402
from tests.conftest import DEMO  # noqa: E402
from tests.unit.test_classical_models import _cube, _roi_centres  # noqa: E402

MRI = DEMO / "mri_hippocampus" / "hippocampus_001.nii.gz"


@pytest.fixture
def window(qtbot):
    from medviewer.ui.main_window import MainWindow

    w = MainWindow()
    qtbot.addWidget(w)
    w.resize(1400, 850)
    w.show()
    w.open_paths([str(MRI)], wait=True)
    return w


def _label_rois(session, seed):
    """Annotate as a user would: a label map with labels named after the classes, painted cubes."""
    labels = session.add_label_map(name=f"rois {seed}")
    labels.table.labels.clear()
    labels.table.add(name="dark", value=1)
    labels.table.add(name="bright", value=2)
    centres = _roi_centres(session.volume, 5, seed=seed)
    for value, name in ((1, "dark"), (2, "bright")):
        for c in centres[name]:
            mask = _cube(session.volume.shape, c)
            region = tuple(slice(int(a.min()), int(a.max()) + 1) for a in np.nonzero(mask))
            labels.paint(region, mask[region], value, "brush")
    return labels


def test_train_svm_and_random_forest_from_rois_then_classify_a_new_roi(window, qtbot, tmp_path):
    session = window.session
    dialog = window.open_train_classifier()
    for seed in range(3):  # three annotation sessions on the image
        _label_rois(session, seed)
        assert dialog.add_current() is not None
    assert dialog.pair_list.count() == 3
    for kind, box in dialog.type_checks.items():
        box.setChecked(kind in ("svm", "random_forest"))
    dialog.folds_spin.setValue(3)
    with qtbot.waitSignal(dialog.finished_training, timeout=300_000) as blocker:
        assert dialog.start()
        qtbot.waitUntil(lambda: dialog.progress.value() > 0, timeout=60_000)  # progress shows while it runs
    result = blocker.args[0]
    assert result is not None and set(result["results"]) == {"svm", "random_forest"}
    assert dialog.table.rowCount() == 2
    curves = [item for item in dialog.plot.listDataItems() if len(item.xData) > 2]
    assert len(curves) == 2  # a ROC curve per model (plus the chance line)
    for r in result["results"].values():
        assert r["cv_auc"] > 0.9
    shots = os.environ.get("MEDVIEWER_SHOTS") or str(tmp_path)
    QtCore.QCoreApplication.processEvents()
    dialog.grab().save(os.path.join(shots, "train_dialog.png"))

    folder = dialog.register("random_forest", name="mri-rois")
    assert folder and folder.endswith("mri-rois-random-forest")
    panel = window.ai_panel
    assert any(e.name == "mri-rois-random-forest" for e in panel.entries)
    # a new ROI, drawn in a new label map, its label selected
    new = session.add_label_map(name="new roi")
    centre = _roi_centres(session.volume, 3, seed=99)["bright"][0]
    mask = _cube(session.volume.shape, centre)
    region = tuple(slice(int(a.min()), int(a.max()) + 1) for a in np.nonzero(mask))
    new.paint(region, mask[region], 1, "brush")
    session.set_active(new, 1)
    assert panel.select_model("mri-rois-random-forest")
    with qtbot.waitSignal(panel.run_finished, timeout=120_000) as done:
        panel.run()
    job = done.args[0]
    assert job.state == "done", job.error
    assert set(panel.probabilities) == {"bright", "dark"} and job.result.prediction == "bright"
    assert panel.class_bars["bright"].value() > 500


def test_cancel_training_changes_nothing(window, qtbot):
    session = window.session
    dialog = window.open_train_classifier()
    _label_rois(session, 0)
    dialog.add_current()
    for kind, box in dialog.type_checks.items():
        box.setChecked(True)
    with qtbot.waitSignal(dialog.finished_training, timeout=300_000) as blocker:
        dialog.start()
        dialog.cancel()
    assert blocker.args[0] is None and "cancelled" in dialog.status.text().lower()
    assert dialog.result is None and not dialog.register_button.isEnabled()
