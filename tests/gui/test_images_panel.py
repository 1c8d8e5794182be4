"""The "Images" dock: the open images listed, each shown beside, fused over the primary, saved and
removed. On an image built in the test (CI) and on a real MRI."""
import numpy as np
import pytest
import SimpleITK as sitk

from tests.gui.workspace_images import built_image, known_rigid, moved_copy, real_mri

IMAGES = {"built": built_image, "real": real_mri}


@pytest.fixture(params=sorted(IMAGES))
def win(request, window, tmp_path):
    return window(IMAGES[request.param](tmp_path / f"{request.param}.nii.gz"))


def _smoothed(win):
    primary = win.workspace.primary
    data = sitk.GetArrayFromImage(sitk.SmoothingRecursiveGaussian(
        sitk.GetImageFromArray(primary.volume.data.astype(np.float32)), 2.0))
    return win.workspace.add(primary.volume.copy_geometry(data), "smoothed", derived_from=primary.id,
                             operation="Gaussian σ 2.0 mm")


def test_the_list_follows_the_workspace(win, qtbot):
    from medviewer.ui import hand_over

    panel = win.images_panel
    assert panel.list.count() == 1 and "(primary)" in panel.list.item(0).text()
    assert not panel.remove_button.isEnabled()  # the primary cannot be removed
    entry = _smoothed(win)
    hand_over.flush()
    assert [panel.list.item(i).text() for i in range(panel.list.count())][1] == "smoothed"
    assert panel.selected() is entry and panel.remove_button.isEnabled()


def test_show_beside_and_fuse_over_primary(win, qtbot):
    panel = win.images_panel
    entry = _smoothed(win)
    panel.select(entry)
    panel.beside_button.click()
    assert win.grid.layout_name == "compare-1x2"
    assert [p.entry for p in win.grid.compare_panes()[:2]] == [win.workspace.primary, entry]
    assert panel.fuse_over_primary()
    fusion = win.workspace.primary.session.fusion
    assert fusion.mode == "overlay" and fusion.moving is entry.volume and fusion.transform is None


def test_fuse_uses_the_registration_transform(win, qtbot):
    primary = win.workspace.primary
    truth = known_rigid(primary.volume)
    moving = win.workspace.add(moved_copy(primary.volume, truth), "moved")
    win.workspace.set_transform(moving, truth, primary)
    panel = win.images_panel
    panel.select(moving)
    assert panel.fuse_over_primary()
    assert primary.session.fusion.transform is truth


def test_fusing_images_that_do_not_overlap_says_why(win, qtbot):
    primary = win.workspace.primary
    far = win.workspace.add(primary.volume.copy_geometry(primary.volume.data.copy(), origin=(9000.0, 0.0, 0.0)),
                            "far away")
    panel = win.images_panel
    panel.select(far)
    assert not panel.fuse_over_primary()
    assert "overlap" in panel.status.text() and "\n" not in panel.status.text()
    assert primary.session.fusion.mode == "off"


def test_save_as_writes_what_is_shown(win, qtbot, tmp_path):
    entry = _smoothed(win)
    panel = win.images_panel
    panel.select(entry)
    path = panel.save_as(str(tmp_path / "smoothed.nii.gz"))
    assert path
    back = sitk.ReadImage(path)
    np.testing.assert_allclose(sitk.GetArrayFromImage(back), entry.volume.data, rtol=1e-6)
    np.testing.assert_allclose(back.GetSpacing(), entry.volume.spacing)
    np.testing.assert_allclose(back.GetOrigin(), entry.volume.origin, atol=1e-4)
    bad = panel.save_as(str(tmp_path / "no" / "such" / "folder" / "x.nii.gz"))
    assert bad is None and "Could not save" in panel.status.text() and "\n" not in panel.status.text()


def test_remove_closes_the_image_and_its_fusion(win, qtbot):
    from medviewer.ui import hand_over

    entry = _smoothed(win)
    panel = win.images_panel
    panel.select(entry)
    assert panel.fuse_over_primary()
    panel.select(entry)
    panel.beside_button.click()
    assert panel.remove()
    hand_over.flush()
    assert win.workspace.entries == [win.workspace.primary]
    assert win.workspace.primary.session.fusion.mode == "off"
    assert panel.list.count() == 1
    assert all(p.entry is not entry for p in win.grid.compare_panes())


def test_a_registration_result_is_shown_beside_its_fixed_image(win, qtbot):
    """A result resampled onto the fixed grid is compared with the fixed image, not with the moving
    image it was computed from."""
    from medviewer.processing.registration import resample

    primary = win.workspace.primary
    truth = known_rigid(primary.volume)
    moving = win.workspace.add(moved_copy(primary.volume, truth), "moved")
    moving_grid = moving.volume.copy_geometry(moving.volume.data[:-2])  # another grid than the fixed one
    moving = win.workspace.add(moving_grid, "moved, cropped")
    result = win.workspace.add(resample(moving.volume, primary.volume, truth), "moved registered",
                               derived_from=moving.id, operation="registered (rigid, MI)")
    panel = win.images_panel
    panel.select(result)
    panel.beside_button.click()
    assert [p.entry for p in win.grid.compare_panes()[:2]] == [primary, result]
