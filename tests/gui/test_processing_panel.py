"""The "Process" dock driven as a reader would: choose an operation, Run, wait for the background
task; the result is a new image beside its source, an edge overlay over it, or a label map on it;
Cancel and bad input change nothing. On an image built in the test (CI) and on a real MRI."""
import os
import threading

import numpy as np
import pytest

from medviewer.ui.qt import QtCore
from tests.gui.workspace_images import built_image, real_mri

IMAGES = {"built": built_image, "real": real_mri}


@pytest.fixture(params=sorted(IMAGES))
def panel(request, window, tmp_path):
    win = window(IMAGES[request.param](tmp_path / f"{request.param}.nii.gz"))
    return win.processing_panel


def _finish(qtbot, panel, timeout=60_000):
    with qtbot.waitSignal(panel.controls.finished, timeout=timeout) as blocker:
        assert panel.run()
    return blocker.args[0]


def test_denoise_makes_an_image_beside_its_source_equal_to_the_operation(panel, qtbot):
    from medviewer.processing.operations import run_operation

    win, workspace = panel.win, panel.workspace
    primary = workspace.primary
    panel.choose("gaussian", sigma=1.5)
    params = panel.form.values()
    assert _finish(qtbot, panel) is True, panel.controls.status.text()
    assert len(workspace.entries) == 2
    entry = workspace.entries[1]
    assert entry.derived_from == primary.id and entry.operation
    expected = run_operation("gaussian", primary.volume, params)
    np.testing.assert_array_equal(entry.volume.data, expected.volume.data)
    assert entry.volume.spacing == primary.volume.spacing and entry.volume.origin == primary.volume.origin
    assert entry.title.startswith(expected.description) and primary.title in entry.title
    # shown at once beside its source
    assert win.grid.layout_name == "compare-1x2"
    assert [p.entry for p in win.grid.compare_panes()[:2]] == [primary, entry]
    assert panel.controls.progress.value() == 1000
    assert np.array_equal(primary.volume.data, win.session.volume.data)  # the source untouched


def test_cluster_gives_a_label_map_on_the_input(panel, qtbot):
    from medviewer.processing.operations import run_operation

    pytest.importorskip("sklearn")
    session = panel.workspace.primary.session
    panel.choose("kmeans")
    params = panel.form.values()
    assert _finish(qtbot, panel, timeout=120_000) is True, panel.controls.status.text()
    assert len(panel.workspace.entries) == 1  # no new image: a label layer
    labels = session.active_labels
    assert labels is not None and session.label_maps == [labels]
    expected = run_operation("kmeans", session.volume, params).labels
    np.testing.assert_array_equal(labels.data, expected.data)
    assert [lab.name for lab in labels.table] == [lab.name for lab in expected.table]
    assert len(np.unique(labels.data)) == len(labels.table) + (0 in labels.data)


def test_edges_are_shown_as_an_overlay_over_their_source(panel, qtbot):
    primary = panel.workspace.primary
    panel.choose("canny")
    assert _finish(qtbot, panel) is True, panel.controls.status.text()
    entry = panel.workspace.entries[-1]
    assert entry.derived_from == primary.id
    fusion = primary.session.fusion
    assert fusion.mode == "overlay" and fusion.moving is entry.volume and fusion.transform is None
    assert fusion.threshold is not None and fusion.threshold > 0  # the background stays clear


def test_runs_on_a_worker_thread_and_cancel_adds_nothing(panel, qtbot, monkeypatch):
    """While the operation runs, the GUI thread keeps serving events (a timer fires, the panel
    says it is running); Cancel then leaves the workspace, labels and fusion as they were."""
    from medviewer.ui import processing_panel

    threads, release = [], threading.Event()
    real = processing_panel._run

    def slow(*args, **kwargs):
        threads.append(threading.current_thread())
        release.wait(30)  # until the test has looked at the window
        return real(*args, **kwargs)

    monkeypatch.setattr(processing_panel, "_run", slow)
    session = panel.workspace.primary.session
    before = session.volume.data.copy()
    panel.choose("median")
    assert panel.run()
    ticks = []
    timer = QtCore.QTimer()
    timer.timeout.connect(lambda: ticks.append(1))
    timer.start(5)
    qtbot.waitUntil(lambda: len(ticks) >= 3 and bool(threads), timeout=10_000)
    timer.stop()
    assert threads[0] is not threading.main_thread()
    assert panel.running and not panel.controls.run_button.isEnabled() and panel.controls.cancel_button.isEnabled()
    assert not panel.run()  # one run at a time
    with qtbot.waitSignal(panel.controls.finished, timeout=30_000) as blocker:
        panel.controls.cancel_button.click()
        release.set()
    assert blocker.args == [False]
    assert panel.controls.status.text() == "Cancelled: nothing was changed."
    assert len(panel.workspace.entries) == 1 and session.label_maps == []
    assert session.fusion.mode == "off"
    np.testing.assert_array_equal(session.volume.data, before)
    assert panel.controls.run_button.isEnabled() and not panel.running


def test_an_operation_that_fails_says_one_line_and_changes_nothing(window, qtbot, tmp_path):
    """An RGB photograph cannot be filtered: the panel says so in one line, nothing is added."""
    import SimpleITK as sitk

    rgb = np.zeros((24, 32, 3), np.uint8)
    rgb[..., 0] = np.arange(32, dtype=np.uint8)[None] * 8
    path = str(tmp_path / "photo.png")
    sitk.WriteImage(sitk.GetImageFromArray(rgb, isVector=True), path)
    panel = window(path).processing_panel
    panel.choose("gaussian")
    assert _finish(qtbot, panel) is False
    text = panel.controls.status.text()
    assert "\n" not in text and "Traceback" not in text and "RGB" in text
    assert len(panel.workspace.entries) == 1 and panel.workspace.primary.session.label_maps == []


def test_a_result_whose_input_was_closed_is_dropped(window, qtbot, tmp_path):
    """Denoise a derived image, remove it while the filter runs: nothing is added, one line says why."""
    win = window(built_image(tmp_path / "a.nii.gz"))
    panel, workspace = win.processing_panel, win.workspace
    other = workspace.add(workspace.primary.volume.copy_geometry(workspace.primary.volume.data * 2.0), "copy")
    panel.set_input(other)
    panel.choose("gaussian")
    with qtbot.waitSignal(panel.controls.finished, timeout=60_000) as blocker:
        assert panel.run()
        workspace.remove(other)
    assert blocker.args == [False]
    assert "closed or replaced" in panel.controls.status.text()
    assert workspace.entries == [workspace.primary]


def test_screenshot_of_a_denoised_image_beside_its_source(window, qtbot, tmp_path):
    win = window(built_image(tmp_path / "a.nii.gz"), (1500, 900))
    panel = win.processing_panel
    win.docks["Process"].raise_()
    panel.choose("gaussian", sigma=2.0)
    assert _finish(qtbot, panel) is True
    qtbot.wait(50)
    shots = os.environ.get("MEDVIEWER_SHOTS") or str(tmp_path)
    path = os.path.join(shots, "process_gaussian_beside.png")
    assert win.grab().save(path)
    assert os.path.getsize(path) > 0


def test_closing_the_window_drops_a_running_result(window, qtbot, tmp_path, monkeypatch):
    """The window closes while a filter runs: the worker is told to stop, its result never lands."""
    from medviewer.ui import hand_over, processing_panel

    release = threading.Event()
    real = processing_panel._run

    def slow(*args, **kwargs):
        release.wait(30)
        return real(*args, **kwargs)

    monkeypatch.setattr(processing_panel, "_run", slow)
    win = window(built_image(tmp_path / "a.nii.gz"))
    panel = win.processing_panel
    panel.choose("gaussian")
    assert panel.run()
    task = panel.controls.task
    win.close()
    release.set()
    assert task.wait(30)
    hand_over.flush()
    assert task.is_cancelled()
    assert win.workspace.entries == [win.workspace.primary]  # nothing was added after the close
