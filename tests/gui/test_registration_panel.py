"""The "Register" dock driven as a reader would: a moved copy of an image opened beside it is
registered onto it in the background; the result is a new image on the fixed grid with the
checkerboard over the fixed image, the transform relates the two entries, and can be saved;
landmarks placed by clicks in the two panes give the TRE; Cancel and bad input change nothing.
On an image built in the test (CI) and on a real MRI."""
import os
import threading

import numpy as np
import pytest
import SimpleITK as sitk

from medviewer.ui.qt import Qt

from tests.gui.workspace_images import built_image, known_rigid, moved_copy, points_inside, real_mri

IMAGES = {"built": built_image, "real": real_mri}


@pytest.fixture(params=sorted(IMAGES))
def setup(request, window, tmp_path):
    """(window, fixed entry, moving entry, the known transform fixed world -> moving world)."""
    win = window(IMAGES[request.param](tmp_path / f"{request.param}.nii.gz"))
    fixed = win.workspace.primary
    truth = known_rigid(fixed.volume)
    moving = win.workspace.add(moved_copy(fixed.volume, truth), "moved copy")
    win.registration_panel.set_images(fixed, moving)
    return win, fixed, moving, truth


def _mean_error(transform, truth, points) -> float:
    return float(np.mean([np.linalg.norm(np.subtract(transform.TransformPoint(tuple(p)), truth.TransformPoint(tuple(p))))
                          for p in points]))


def _finish(qtbot, panel, start, timeout=120_000):
    with qtbot.waitSignal(panel.controls.finished, timeout=timeout) as blocker:
        assert start()
    return blocker.args[0]


def test_register_a_moved_copy_turns_on_the_checkerboard(setup, qtbot, tmp_path):
    win, fixed, moving, truth = setup
    panel = win.registration_panel
    fixed_before = fixed.volume.data.copy()
    panel.set_method("rigid", "mi")
    assert _finish(qtbot, panel, panel.run) is True, panel.controls.status.text()
    result = panel.result
    assert _mean_error(result.transform, truth, points_inside(fixed.volume)) < 0.5  # mm
    registered = win.workspace.entries[-1]
    assert registered.title == "moved copy registered (rigid, MI)"
    assert registered.derived_from == moving.id
    assert registered.volume.shape == fixed.volume.shape and registered.volume.origin == fixed.volume.origin
    # the moving entry now links through the transform
    assert moving.transform is result.transform and moving.transform_fixed == fixed.id
    fusion = fixed.session.fusion
    assert fusion.mode == "checkerboard" and fusion.moving is registered.volume
    assert win.grid.layout_name == "compare-1x2"
    assert [p.entry for p in win.grid.compare_panes()[:2]] == [fixed, registered]
    # the registered image lines up with the fixed one (the middle of the box, where the moved
    # copy kept its data), far better than the moved copy taken as it is
    from medviewer.processing.registration import resample

    z, y, x = fixed.volume.shape
    middle = (slice(z // 4, 3 * z // 4), slice(y // 4, 3 * y // 4), slice(x // 4, 3 * x // 4))
    as_is = resample(moving.volume, fixed.volume, sitk.Transform(3, sitk.sitkIdentity))

    def r(volume):
        return np.corrcoef(fixed.volume.data[middle].ravel(), volume.data[middle].ravel())[0, 1]

    assert r(registered.volume) > 0.85 and r(registered.volume) > r(as_is) + 0.2
    np.testing.assert_array_equal(fixed.volume.data, fixed_before)
    assert panel.tre_label.text() == ""  # no landmarks, no TRE
    # Save transform: SimpleITK reads back the same mapping
    path = panel.save_transform(str(tmp_path / "moved_to_fixed.tfm"))
    assert path and os.path.exists(path)
    back = sitk.ReadTransform(path)
    for p in points_inside(fixed.volume, 4):
        np.testing.assert_allclose(back.TransformPoint(tuple(p)), result.transform.TransformPoint(tuple(p)), atol=1e-6)


def test_landmarks_placed_by_clicks_in_the_two_panes_give_the_tre(setup, qtbot):
    """Points clicked in the fixed pane and their partners in the moving pane (where the known
    motion put them); Register from landmarks recovers the motion and shows the TRE."""
    win, fixed, moving, truth = setup
    panel = win.registration_panel
    panel.place_button.click()
    assert win.grid.layout_name == "compare-1x2"
    panes = win.grid.compare_panes()
    assert [p.entry for p in panes[:2]] == [fixed, moving]
    # a real click in the fixed pane's view puts a fixed point where the view says the cursor is
    viewport = panes[0].view.graphics.viewport()
    with qtbot.waitSignal(win.grid.pane_clicked, timeout=5_000) as clicked:
        qtbot.mouseClick(viewport, Qt.LeftButton, pos=viewport.rect().center())
    entry, world = clicked.args
    assert entry is fixed
    assert panel.pairs == [[tuple(float(v) for v in world), None]]
    panel.clear_landmarks()
    points = points_inside(fixed.volume, 5)
    for p in points:  # fixed point, then its partner: the same anatomy in the moving image
        win.grid.pane_clicked.emit(fixed, p)
        win.grid.pane_clicked.emit(moving, np.asarray(truth.TransformPoint(tuple(p))))
    assert panel.table.rowCount() == 5 and len(panel.complete_pairs()[0]) == 5
    # each pane marks its landmarks on the slice through them
    from medviewer.ui import hand_over

    for pane, entry, world in ((panes[0], fixed, points[2]), (panes[1], moving, truth.TransformPoint(tuple(points[2])))):
        ijk = entry.volume.world_to_index(np.asarray(world))
        entry.session.set_cursor(ijk)
        hand_over.flush()
        marks = {n: (x, y) for n, x, y in panel.marks.marks_in(pane.view)}
        assert 3 in marks
        np.testing.assert_allclose(marks[3], pane.view._view_xy(ijk), atol=1e-6)
    assert panel.landmark_button.isEnabled()
    assert _finish(qtbot, panel, panel.run_landmarks) is True, panel.controls.status.text()
    assert panel.result.tre_mm < 1e-3
    assert _mean_error(panel.result.transform, truth, points_inside(fixed.volume, 8, seed=9)) < 1e-3
    assert "Target registration error" in panel.tre_label.text() and "mm" in panel.tre_label.text()
    assert fixed.session.fusion.mode == "checkerboard"
    # an intensity registration with the landmarks placed reports its TRE too
    assert _finish(qtbot, panel, panel.run) is True
    assert panel.result.tre_mm is not None and panel.result.tre_mm < 0.5
    # delete a pair: the table follows
    panel.table.selectRow(0)
    panel.delete_button.click()
    assert panel.table.rowCount() == 4


def test_carry_labels_from_moving_to_fixed(setup, qtbot):
    win, fixed, moving, truth = setup
    panel = win.registration_panel
    # a label on the moving image: a box around the moving position of a fixed point
    centre = np.round(moving.volume.world_to_index(truth.TransformPoint(tuple(points_inside(fixed.volume, 1)[0])))).astype(int)
    labels = moving.session.add_label_map(name="lesion")
    x, y, z = centre
    region = (slice(z - 2, z + 3), slice(y - 2, y + 3), slice(x - 2, x + 3))
    labels.paint(region, np.ones((5, 5, 5), bool), 1, "brush")
    assert _finish(qtbot, panel, panel.run) is True
    assert _finish(qtbot, panel, panel.carry_labels) is True, panel.controls.status.text()
    carried = fixed.session.active_labels
    assert carried is not None and carried.data.shape == fixed.volume.shape
    assert carried.name == "lesion (registered)"
    # the carried box lies around the fixed point (within a voxel)
    found = np.argwhere(carried.data == 1).mean(axis=0)[::-1]  # (x, y, z)
    expected = fixed.volume.world_to_index(points_inside(fixed.volume, 1)[0])
    assert np.abs(found - expected).max() < 1.0


def test_cancel_changes_nothing(setup, qtbot, monkeypatch):
    """The registration runs on a worker thread (the window answers while it runs: progress is
    shown); Cancel stops it and nothing changes."""
    from medviewer.ui import registration_panel

    win, fixed, moving, truth = setup
    panel = win.registration_panel
    entries = list(win.workspace.entries)
    threads = []
    real = registration_panel._register

    def recorded(*args, **kwargs):
        threads.append(threading.current_thread())
        return real(*args, **kwargs)

    monkeypatch.setattr(registration_panel, "_register", recorded)
    panel.set_method("bspline", "mi")
    with qtbot.waitSignal(panel.controls.finished, timeout=120_000) as blocker:
        assert panel.run()
        assert not panel.run()  # one registration at a time
        qtbot.waitUntil(lambda: panel.controls.progress.value() > 0, timeout=60_000)
        assert panel.running and threads and threads[0] is not threading.main_thread()
        panel.controls.cancel_button.click()
    assert blocker.args == [False]
    assert panel.controls.status.text() == "Cancelled: nothing was changed."
    assert win.workspace.entries == entries
    assert moving.transform is None and fixed.session.fusion.mode == "off"
    assert panel.result is None and not panel.save_button.isEnabled()


def test_a_2d_image_onto_a_3d_one_says_why_and_changes_nothing(window, qtbot, tmp_path):
    win = window(built_image(tmp_path / "a.nii.gz"))
    fixed = win.workspace.primary
    flat = win.workspace.add(fixed.volume.copy_geometry(fixed.volume.data[18:19].copy(), is_2d=True), "one slice")
    panel = win.registration_panel
    panel.set_images(fixed, flat)
    assert _finish(qtbot, panel, panel.run) is False
    text = panel.controls.status.text()
    assert text and "\n" not in text and "Traceback" not in text and "2D" in text
    assert len(win.workspace.entries) == 2 and flat.transform is None and fixed.session.fusion.mode == "off"


def test_an_image_with_nothing_to_register_says_why(window, qtbot, tmp_path):
    """A blank moving image: the metric has nothing to work on; one line, nothing changed."""
    win = window(built_image(tmp_path / "a.nii.gz"))
    fixed = win.workspace.primary
    blank = win.workspace.add(fixed.volume.copy_geometry(np.zeros_like(fixed.volume.data)), "blank")
    panel = win.registration_panel
    panel.set_images(fixed, blank)
    assert _finish(qtbot, panel, panel.run) is False
    text = panel.controls.status.text()
    assert "nothing to register" in text and "\n" not in text
    assert len(win.workspace.entries) == 2 and blank.transform is None and fixed.session.fusion.mode == "off"


def test_images_that_do_not_overlap_say_so(window, qtbot, tmp_path):
    win = window(built_image(tmp_path / "a.nii.gz"))
    fixed = win.workspace.primary
    far = fixed.volume.copy_geometry(fixed.volume.data.copy(), origin=(5000.0, 5000.0, 5000.0))
    panel = win.registration_panel
    panel.set_images(fixed, win.workspace.add(far, "far away"))
    panel.set_method("rigid", "mi", start="none")  # the files' world coordinates as they are
    assert _finish(qtbot, panel, panel.run) is False
    assert "overlap" in panel.controls.status.text()
    assert len(win.workspace.entries) == 2 and fixed.session.fusion.mode == "off"


def test_screenshot_of_the_checkerboard_after_registration(window, qtbot, tmp_path):
    win = window(real_mri(tmp_path / "real.nii.gz") if os.path.isdir(_shared()) else built_image(tmp_path / "a.nii.gz"),
                 (1500, 900))
    fixed = win.workspace.primary
    moving = win.workspace.add(moved_copy(fixed.volume, known_rigid(fixed.volume)), "moved copy")
    panel = win.registration_panel
    panel.set_images(fixed, moving)
    win.docks["Register"].raise_()
    assert _finish(qtbot, panel, panel.run) is True
    qtbot.wait(50)
    shots = os.environ.get("MEDVIEWER_SHOTS") or str(tmp_path)
    path = os.path.join(shots, "register_checkerboard.png")
    assert win.grab().save(path)


def _shared():
    from tests.conftest import SHARED_DATA

    return str(SHARED_DATA / "brain_t1")


def test_a_new_primary_image_drops_the_result_and_the_landmarks(window, qtbot, tmp_path):
    """Another file opened in place of the fixed image: the last transform and the landmark pairs
    belonged to the old one, so Save transform / Carry labels are off and the pairs are gone."""
    from medviewer.ui import hand_over

    win = window(built_image(tmp_path / "a.nii.gz"))
    fixed = win.workspace.primary
    moving = win.workspace.add(moved_copy(fixed.volume, known_rigid(fixed.volume)), "moved copy")
    panel = win.registration_panel
    panel.set_images(fixed, moving)
    assert _finish(qtbot, panel, panel.run) is True
    panel.add_point(0, points_inside(fixed.volume, 1)[0])
    assert panel.save_button.isEnabled() and panel.pairs
    win.open_paths([built_image(tmp_path / "b.nii.gz")], wait=True)
    hand_over.flush()
    assert panel.result is None and not panel.save_button.isEnabled() and not panel.carry_button.isEnabled()
    assert panel.pairs == [] and panel.table.rowCount() == 0
