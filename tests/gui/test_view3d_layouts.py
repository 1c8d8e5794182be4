"""The 3D view in the main window: the 2x2-with-3D and 3D layouts, the 3D dock's controls, a 2D
image (no 3D, with the reason), no OpenGL (a message, the 2D views keep working), and a brush
stroke in a slice view that the label surface follows."""
from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import DEMO
from tests.gui.test_view3d_scene import foreground

HIPPO = DEMO / "mri_hippocampus" / "hippocampus_001.nii.gz"
HIPPO_LABELS = DEMO.parent / "demo_labels" / "hippocampus_001.nii.gz"
XRAY = DEMO / "xray" / "chest_xray_pneumonia.jpeg"


@pytest.fixture(scope="module")
def opengl():
    from medviewer.ui.view3d.vtk_bridge import opengl_problem

    problem = opengl_problem()
    if problem:
        pytest.skip(problem)


def settle(qtbot, view3d) -> None:
    qtbot.waitUntil(lambda: view3d.frames_rendered > 0, timeout=60000)
    qtbot.waitUntil(lambda: not view3d._render_timer.isActive() and not view3d._surface_timer.isActive(),
                    timeout=60000)


def test_2x2_with_3d_shows_the_rendering_in_the_fourth_pane_and_the_panel_drives_it(qtbot, window, opengl, tmp_path):
    win = window(DEMO / "ct_chest_20")
    win.actions_.layout_actions["2x2-3d"].trigger()  # View > 2x2 with 3D, as a user chooses it
    view3d = win.grid.view3d()
    settle(qtbot, view3d)
    assert win.grid.layout_name == "2x2-3d" and win.grid.showing_3d and view3d.isVisible()
    assert not win.grid.info.isVisible() and len(win.grid.visible_views()) == 3
    assert "3D" in win.docks and view3d.problem is None
    panel = win.panel_3d
    assert panel.preset.currentText() == "CT bone"  # a CT opens with the CT preset
    bone = view3d.capture()
    assert foreground(bone).mean() > 0.05
    panel.preset.textActivated.emit("CT lung")
    assert view3d.scene.preset == "CT lung"
    lung = view3d.capture()
    assert np.abs(lung.astype(int) - bone.astype(int)).mean() > 2  # another preset, another picture
    panel.mode.setCurrentIndex(1)  # MIP
    assert view3d.scene.render_mode == "mip"
    # the 2D views stay: a slice change still moves the axial view
    win.grid.views["axial"].set_slice(3)
    assert int(win.session.cursor[2]) == 3
    shot = tmp_path / "three_d.png"
    panel.save_screenshot(str(shot))
    from PIL import Image

    assert Image.open(shot).size == (view3d.capture().shape[1], view3d.capture().shape[0])
    win.set_layout("1x3")
    assert not win.grid.showing_3d and not view3d.isVisible()
    win.set_layout("3d")
    assert win.grid.visible_views() == [] and view3d.isVisible()


def test_a_2d_image_has_no_3d_layout_and_says_why(window):
    win = window(XRAY)
    for name in ("2x2-3d", "3d"):
        action = win.actions_.layout_actions[name]
        assert not action.isEnabled() and "2D image" in action.toolTip()
    win.set_layout("3d")
    assert win.grid.layout_name == "single"  # no VTK made for a 2D image
    assert not win.grid.showing_3d


def test_without_opengl_the_3d_pane_gives_the_reason_and_the_2d_views_keep_working(window, monkeypatch):
    from medviewer.ui.view3d import view_widget

    reason = "3D view unavailable: no usable OpenGL 3.2 here (test)"
    monkeypatch.setattr(view_widget.bridge, "opengl_problem", lambda: reason)
    win = window(DEMO / "ct_chest_20")
    win.set_layout("2x2-3d")
    view3d = win.grid.view3d()
    assert view3d.problem == reason
    assert any(reason in p for p in win.problems)  # reported once, in the status bar / message
    assert not win.panel_3d.preset.isEnabled() and reason in win.panel_3d.status.text()
    win.grid.views["axial"].set_slice(5)
    assert int(win.session.cursor[2]) == 5
    image = win.grid.views["axial"].image_item.image
    assert image is not None and image.std() > 0  # the slice view still shows the CT


def test_a_brush_stroke_in_a_slice_view_moves_the_label_surface(qtbot, window, opengl, tmp_path):
    win = window(HIPPO)
    win.annotation.load_labels(str(HIPPO_LABELS))
    win.set_layout("2x2-3d")
    view3d = win.grid.view3d()
    view3d.scene.set_render_mode("surface")
    view3d.flush()
    settle(qtbot, view3d)
    surfaces = view3d.scene.surfaces
    labels = win.session.label_maps[-1]
    assert surfaces.label_actors(labels, 1) and surfaces.label_actors(labels, 2)

    def bounds_of(value):
        from vtkmodules.vtkCommonDataModel import vtkBoundingBox

        box = vtkBoundingBox()
        for actor in surfaces.label_actors(labels, value):
            box.AddBounds(actor.GetBounds())
        lo, hi = [0.0] * 3, [0.0] * 3
        box.GetMinPoint(lo)
        box.GetMaxPoint(hi)
        return np.array(lo), np.array(hi)

    before = bounds_of(1)
    # paint label 1 far outside its present extent, through the annotation controller as a user would
    volume = win.session.volume
    corner = np.array([2.0, 2.0, 17.0])  # (x, y, z) index near a corner of the 35x51x35 crop
    win.session.set_active(labels, 1)
    ctl = win.annotation.controller
    ctl.set_tool("brush")
    ctl.radius_mm = 2.0
    view = win.grid.views["axial"]
    ctl.handle(view, "press", corner)
    ctl.handle(view, "release", corner + [1, 0, 0])
    assert labels.data[17, 2, 2] == 1
    settle(qtbot, view3d)
    after = bounds_of(1)
    painted = volume.index_to_world(corner)
    grew = (after[0] < before[0] - 1) | (after[1] > before[1] + 1)
    assert grew.any(), (before, after, painted)
    assert np.all(after[0] - 2.5 <= painted) and np.all(painted <= after[1] + 2.5)  # the new surface is there
    ctl.set_tool(None)
    # the 3D dock's export writes each label's surface, in world mm, where the 3D view shows it
    from vtkmodules.vtkIOGeometry import vtkSTLReader

    written = win.panel_3d.export(str(tmp_path / "hippo.stl"))
    assert len(written) == 2 and all(str(p).endswith(".stl") for p in written)
    reader = vtkSTLReader()
    reader.SetFileName(str(next(p for p in written if "_1_" in str(p))))
    reader.Update()
    lo, hi = np.array(reader.GetOutput().GetBounds()[0::2]), np.array(reader.GetOutput().GetBounds()[1::2])
    assert np.allclose(lo, after[0], atol=0.6) and np.allclose(hi, after[1], atol=0.6)


def test_turning_the_2d_planes_turns_the_planes_in_3d(qtbot, window, opengl):
    from medviewer.core.oblique import plane_normal

    win = window(DEMO / "ct_chest_20")
    win.set_layout("2x2-3d")
    view3d = win.grid.view3d()
    settle(qtbot, view3d)
    win.panel_3d.planes.setChecked(True)  # "Show the slice planes"
    volume = win.session.volume
    win.session.planes.rotate("axial", plane_normal(volume, "axial", np.eye(3)), np.radians(20))
    scene = view3d.scene
    coronal = scene._planes[scene._plane_axes["coronal"]].GetMapper().GetSlicePlane()
    assert np.allclose(coronal.GetNormal(), plane_normal(volume, "coronal", win.session.planes.rotations["coronal"]))
    win.session.planes.reset()
    assert np.allclose(coronal.GetNormal(), plane_normal(volume, "coronal", np.eye(3)))
