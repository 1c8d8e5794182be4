"""The AI panel, offscreen: hippocampus-unet is greyed with the reason on a whole-head-sized volume
(its training crops are a few centimetres), and on the hippocampus crop it is enabled and runs."""
import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("monai")

from medviewer.io import open_volume, write_volume  # noqa: E402
from medviewer.ui.qt import QtCore  # noqa: E402
from tests.conftest import DEMO, REPO  # noqa: E402
from tests.unit.test_model_contract import whole_head  # noqa: E402

MRI = DEMO / "mri_hippocampus" / "hippocampus_001.nii.gz"
MODEL = "hippocampus-unet"


@pytest.fixture
def window(qtbot):
    if not (REPO / "resources" / "models" / MODEL / "manifest.json").is_file():
        pytest.skip(f"the shipped {MODEL} is not in resources/models")
    from medviewer.ui.main_window import MainWindow

    w = MainWindow()
    qtbot.addWidget(w)
    w.resize(1400, 850)
    w.show()
    return w


def _open(w, path):
    w.open_paths([str(path)], wait=True)
    assert w.session.volume is not None and w.session.volume.metadata.get("path") == str(path)


def _row(panel):
    panel.selected_entry()  # brings the list up to date with the image
    return next(panel.model_list.item(i) for i in range(panel.model_list.count())
                if panel.model_list.item(i).data(QtCore.Qt.UserRole) == MODEL)


def test_greyed_with_the_reason_on_a_whole_head_enabled_and_running_on_the_crop(window, qtbot, tmp_path):
    head = write_volume(whole_head(open_volume(MRI)), str(tmp_path / "whole_head.nii.gz"))
    panel = window.ai_panel

    _open(window, head)
    assert window.session.volume.size == (200, 200, 150)
    entry = next(e for e in panel.entries if e.name == MODEL)
    reason = panel.compatibility(entry)
    typical = "×".join(f"{v:g}" for v in entry.spec.input["extent_mm"]["median"])  # the shipped manifest's
    assert f"trained on hippocampus crops of about {typical} mm" in reason
    assert "this image covers 200×200×150 mm" in reason and "crop it to the hippocampus first" in reason
    qtbot.waitUntil(lambda: not (_row(panel).flags() & QtCore.Qt.ItemIsEnabled), timeout=10_000)
    item = _row(panel)
    assert item.toolTip() == reason and "200×200×150 mm" in item.text()
    assert not panel.select_model(MODEL)

    _open(window, MRI)  # the crop itself: the same row comes back enabled
    qtbot.waitUntil(lambda: bool(_row(panel).flags() & QtCore.Qt.ItemIsEnabled), timeout=10_000)
    assert panel.compatibility(entry) == "" and not _row(panel).toolTip()
    assert panel.select_model(MODEL)
    with qtbot.waitSignal(panel.run_finished, timeout=120_000) as blocker:
        job = panel.run()
        assert job is not None
    assert blocker.args[0] is job and job.state == "done", job.error
    layer = window.session.active_labels
    assert layer is not None and layer.name.startswith(MODEL)
    assert layer.data.shape == window.session.volume.shape
    assert set(np.unique(layer.data)) == {0, 1, 2}  # anterior and posterior both found
