"""The Fusion dock (ui/fusion_panel.py) drives session.fusion: an image of the workspace over the
primary (through its registration transform), mode, opacity, colour map, threshold, checker size;
a refused fusion says why and changes nothing; the panel mirrors fusions set elsewhere."""
import numpy as np
import pytest
import SimpleITK as sitk

from medviewer.core.session import Session
from medviewer.core.volume import Volume
from medviewer.core.workspace import Workspace
from medviewer.io import open_volume
from medviewer.ui.fusion_panel import FusionPanel
from tests.conftest import DEMO

MRI = DEMO / "mri_hippocampus" / "hippocampus_001.nii.gz"


@pytest.fixture
def setup(qtbot):
    session = Session()
    mri = open_volume(str(MRI))
    session.set_volume(mri, title="MR")
    workspace = Workspace(session)
    moved = workspace.add(mri.copy_geometry(mri.data, origin=tuple(np.asarray(mri.origin) + 3.0)), "MR moved")
    picture = workspace.add(Volume(np.zeros((32, 32), np.uint8)), "a picture")
    panel = FusionPanel(workspace, session)
    qtbot.addWidget(panel)
    return session, workspace, moved, picture, panel


def _choose(panel, title):
    index = panel.image_combo.findText(title)
    panel.image_combo.setCurrentIndex(index)
    panel.image_combo.activated.emit(index)


def test_choosing_an_image_and_the_display_settings_set_the_fusion(setup):
    session, workspace, moved, picture, panel = setup
    assert [panel.image_combo.itemText(i) for i in range(panel.image_combo.count())] == ["None", "MR moved", "a picture"]
    panel.mode_combo.setCurrentIndex(1)
    panel.mode_combo.activated.emit(1)  # checkerboard, chosen before the image: applied with it
    _choose(panel, "MR moved")
    f = session.fusion
    assert f.moving is moved.volume and f.mode == "checkerboard" and f.transform is None
    panel.checker.setValue(12.5)
    assert f.checker_mm == 12.5
    panel.mode_combo.setCurrentIndex(0)
    panel.mode_combo.activated.emit(0)
    panel.opacity.setValue(80)
    panel.colormap_combo.setCurrentText("viridis")
    panel.colormap_combo.activated.emit(panel.colormap_combo.currentIndex())
    panel.threshold_box.setChecked(True)
    panel.threshold.setValue(40.0)
    assert (f.mode, f.opacity, f.colormap, f.threshold) == ("overlay", 0.8, "viridis", 40.0)
    panel.threshold_box.setChecked(False)
    assert f.threshold is None
    _choose(panel, "None")
    assert not f.active


def test_a_registered_image_is_fused_through_its_transform(setup):
    session, workspace, moved, picture, panel = setup
    transform = sitk.TranslationTransform(3, (3.0, 3.0, 3.0))
    workspace.set_transform(moved, transform, workspace.primary)
    _choose(panel, "MR moved")
    assert session.fusion.transform is transform
    assert "registration transform" in panel.note.text()


def test_a_2d_image_over_the_3d_one_is_refused_and_nothing_changes(setup):
    session, workspace, moved, picture, panel = setup
    _choose(panel, "MR moved")
    _choose(panel, "a picture")
    assert "2D image with a 3D one" in panel.note.text() and "\n" not in panel.note.text()
    assert session.fusion.moving is moved.volume and panel.image_combo.currentText() == "MR moved"


def test_the_panel_mirrors_a_fusion_set_elsewhere_and_new_images(setup, qtbot):
    session, workspace, moved, picture, panel = setup
    session.fusion.set(moved.volume, mode="difference", colormap="jet")
    assert panel.image_combo.currentText() == "MR moved" and panel.mode_combo.currentText() == "Difference"
    assert panel.colormap_combo.currentText() == "jet" and not panel.checker.isEnabled()
    workspace.add(session.volume.copy_geometry(session.volume.data), "a third")
    qtbot.waitUntil(lambda: panel.image_combo.findText("a third") > 0)
    assert panel.image_combo.currentText() == "MR moved"


def test_the_main_window_has_a_fusion_dock_on_its_session(demo_window):
    win = demo_window(1200, 800)
    assert "Fusion" in win.docks and win.fusion_panel.fusion is win.session.fusion
    ct = win.session.volume
    entry = win.workspace.add(ct.copy_geometry(ct.data), "CT copy")
    win.fusion_panel.refresh()
    _choose(win.fusion_panel, "CT copy")
    assert win.session.fusion.active and win.grid.views["axial"].fusion_layer.item.isVisible()
    del entry
