"""View3D under Qt's offscreen platform: frames from an offscreen VTK window painted into the
widget, mouse events through VTK's interactor, picking moves the session cursor, renders are
coalesced, cursor moves cost nothing while nothing 3D follows them, and the reasons it shows
instead of a rendering (a 2D image, no OpenGL)."""
from __future__ import annotations

import numpy as np
import pytest

from medviewer.core.labels import LabelMap
from medviewer.core.session import Session
from medviewer.core.volume import Volume
from tests.conftest import DEMO
from tests.gui.test_view3d_scene import SPHERE, foreground, sphere_volume, surface_point

pytestmark = pytest.mark.usefixtures("needs_opengl")


@pytest.fixture(scope="module")
def needs_opengl():
    from medviewer.ui.view3d.vtk_bridge import opengl_problem
    problem = opengl_problem()
    if problem:
        pytest.skip(problem)


def make_view(qtbot, session, size=(220, 200)):
    from medviewer.ui.view3d.view_widget import View3D
    view = View3D(session)
    qtbot.addWidget(view)
    view.resize(*size)
    view.show()
    qtbot.waitUntil(lambda: view.frames_rendered > 0, timeout=20000)
    settle(qtbot, view)
    return view


def settle(qtbot, view):
    """Let the pending render (if any) happen."""
    qtbot.waitUntil(lambda: not any(t.isActive() for t in (view._render_timer, view._surface_timer,
                                                           view._resize_timer)), timeout=20000)


@pytest.fixture
def sphere_session():
    session = Session()
    session.set_volume(sphere_volume())
    return session


def test_view_shows_the_demo_ct_rendering(qtbot):
    from medviewer.io import discover
    session = Session()
    session.set_volume(discover(DEMO / "ct_chest_20").sources[0].load())
    view = make_view(qtbot, session)
    assert view.problem is None and view.offscreen
    view.scene.set_camera("S")
    rgb = view.capture()
    assert rgb.shape == (200, 220, 3) and foreground(rgb).mean() > 0.05
    shown = view._canvas.grab().toImage()  # what the widget paints is the rendered frame
    centre = shown.pixelColor(110, 100)
    assert abs(centre.red() - int(rgb[100, 110, 0])) <= 2 and abs(centre.blue() - int(rgb[100, 110, 2])) <= 2
    view.close()


def test_renders_are_coalesced_into_one_frame(qtbot, sphere_session):
    view = make_view(qtbot, sphere_session)
    before = view.frames_rendered
    view.scene.set_preset("CT angiography")
    view.scene.set_camera("L")
    view.scene.shift_opacity(100, 50)
    view.scene.set_orthographic(True)
    settle(qtbot, view)
    assert view.frames_rendered == before + 1
    view.close()


def test_cursor_moves_cost_nothing_unless_planes_or_crosshair_clip_are_on(qtbot, sphere_session):
    view = make_view(qtbot, sphere_session)
    before = view.frames_rendered
    for z in range(5, 15):
        sphere_session.set_cursor((30, 34, z))
    assert not view._render_timer.isActive()
    settle(qtbot, view)
    assert view.frames_rendered == before
    view.scene.show_planes(True, sphere_session.cursor)
    settle(qtbot, view)
    before = view.frames_rendered
    plane = view.scene._planes[2]
    for z in range(20, 26):
        sphere_session.set_cursor((30, 34, z))
    settle(qtbot, view)
    assert view.frames_rendered == before + 1  # six moves, one frame
    volume = sphere_session.volume  # the axial plane is at slice 25, the last cursor
    assert np.allclose(plane.GetMapper().GetSlicePlane().GetOrigin(), volume.index_to_world((30, 34, 25)))
    assert np.allclose(plane.GetMapper().GetSlicePlane().GetNormal(), volume.direction[:, 2])
    view.close()


def _widget_pos(view, display_xy):
    """VTK display coordinates (origin bottom-left) -> a QPoint on the canvas."""
    from medviewer.ui.qt import QtCore
    x, y = display_xy
    return QtCore.QPoint(round(x), view._canvas.height() - 1 - round(y))


def test_a_click_on_the_volume_moves_the_cursor_there_and_a_drag_rotates(qtbot, sphere_session):
    from medviewer.ui.qt import Qt
    from tests.gui.test_view3d_scene import _display_of
    view = make_view(qtbot, sphere_session)
    volume = sphere_session.volume
    target = surface_point(volume, (0.3, -0.9, 0.2))
    pos = _widget_pos(view, _display_of(view.scene, volume.index_to_world(target)))
    moved = []
    sphere_session.cursor_changed.connect(moved.append)
    qtbot.mouseClick(view._canvas, Qt.MouseButton.LeftButton, pos=pos)
    assert moved, "the click did not move the cursor"
    assert np.max(np.abs(sphere_session.cursor - target)) <= 1.0, (sphere_session.cursor, target)

    camera = view.scene.renderer.GetActiveCamera()
    start = np.array(camera.GetPosition())
    cursor = sphere_session.cursor.copy()
    before = view.capture()
    qtbot.mousePress(view._canvas, Qt.MouseButton.LeftButton, pos=pos)
    for dx in range(5, 60, 5):
        qtbot.mouseMove(view._canvas, pos=pos + type(pos)(dx, 0))
    qtbot.mouseRelease(view._canvas, Qt.MouseButton.LeftButton, pos=pos + type(pos)(60, 0))
    settle(qtbot, view)
    assert np.linalg.norm(np.array(camera.GetPosition()) - start) > 10  # the trackball turned it
    assert np.array_equal(sphere_session.cursor, cursor)  # a drag is not a click
    assert np.abs(view.capture().astype(int) - before).mean() > 1
    view.close()


def test_a_click_on_a_label_surface_moves_the_cursor_there(qtbot, sphere_session):
    from medviewer.ui.qt import Qt
    from tests.gui.test_view3d_scene import _display_of
    view = make_view(qtbot, sphere_session)
    if view.scene.surfaces is None:
        pytest.skip("label_surfaces is not there yet")
    volume = sphere_session.volume
    labels = LabelMap(volume.shape, "sphere", data=(volume.data > 0).astype(np.uint8))
    sphere_session.add_label_map(labels)
    view.scene.set_render_mode("surface")
    settle(qtbot, view)
    assert view.scene.surfaces.actors(), "no surface was made for the label"
    assert foreground(view.capture()).sum() > 200
    target = surface_point(volume, (-0.4, -0.8, 0.3))
    qtbot.mouseClick(view._canvas, Qt.MouseButton.LeftButton,
                     pos=_widget_pos(view, _display_of(view.scene, volume.index_to_world(target))))
    assert np.max(np.abs(sphere_session.cursor - target)) <= 1.0, (sphere_session.cursor, target)
    # an edit re-meshes on the surface timer and the view follows: erase the front half
    before = foreground(view.capture()).sum()
    cy = SPHERE["centre"][1]
    labels.paint((slice(None), slice(0, cy), slice(None)), labels.data[:, :cy, :] > 0, 0, "erase")
    assert view._surface_timer.isActive()
    settle(qtbot, view)
    after = view.capture()
    assert foreground(after).sum() != before
    qtbot.mouseClick(view._canvas, Qt.MouseButton.LeftButton,
                     pos=_widget_pos(view, _display_of(view.scene, volume.index_to_world(target))))
    assert sphere_session.cursor[1] >= cy - 1  # the front is gone: the click lands on the cut face
    view.close()


def test_a_2d_image_shows_the_reason_and_a_volume_brings_the_rendering_back(qtbot, sphere_session):
    from medviewer.ui.view3d.view_widget import View3D
    session = Session()
    session.set_volume(Volume(data=np.zeros((64, 64), np.uint8)))
    view = View3D(session)
    qtbot.addWidget(view)
    view.resize(220, 200)
    view.show()
    assert view.problem == "the 3D view needs a volume: this image is 2D (a single slice)"
    assert view._message.isVisible() and view._message.text() == view.problem
    shot = view.capture()
    assert shot.shape[:2] == (200, 220)  # the message, not an exception
    session.set_volume(sphere_volume())
    qtbot.waitUntil(lambda: view.frames_rendered > 0, timeout=20000)
    assert view.problem is None and not view._message.isVisible()
    assert foreground(view.capture()).sum() > 100
    view.close()


def test_a_downsampled_volume_says_so(qtbot, sphere_session):
    from medviewer.ui.view3d.view_widget import View3D
    view = View3D(sphere_session, max_texture_3d=32)
    qtbot.addWidget(view)
    view.resize(220, 200)
    view.show()
    qtbot.waitUntil(lambda: view.frames_rendered > 0, timeout=20000)
    assert view._notice.isVisible() and view._notice.text().startswith("downsampled 2x for rendering")
    view.close()


def test_no_opengl_shows_the_reason_and_never_touches_vtk(qtbot, monkeypatch, sphere_session):
    from medviewer.ui.view3d import view_widget, vtk_bridge
    reason = "3D view unavailable: no usable OpenGL 3.2 here (simulated)"
    monkeypatch.setattr(vtk_bridge, "opengl_problem", lambda: reason)
    monkeypatch.setattr(view_widget.bridge, "offscreen_render_window",
                        lambda *a: pytest.fail("made a render window without OpenGL"))
    view = view_widget.View3D(sphere_session)
    qtbot.addWidget(view)
    view.resize(220, 200)
    view.show()
    assert view.problem == reason and view.scene is None
    sphere_session.set_cursor((1, 2, 3))  # the session goes on without it
    sphere_session.set_volume(sphere_volume())
    view.request_render()
    assert view.capture().shape == (200, 220, 3)
    view.close()


def test_ctrl_drag_edits_the_opacity_ramp_instead_of_rotating(qtbot, sphere_session):
    from medviewer.ui.qt import QtCore, Qt
    view = make_view(qtbot, sphere_session)
    camera = view.scene.renderer.GetActiveCamera()
    start = np.array(camera.GetPosition())
    window, level = view.scene.opacity_ramp
    before = view.frames_rendered
    ctrl = Qt.KeyboardModifier.ControlModifier
    pos = QtCore.QPoint(40, 100)
    qtbot.mousePress(view._canvas, Qt.MouseButton.LeftButton, ctrl, pos)
    for dx in range(10, 110, 10):  # right by 100 px and up by 20 px
        qtbot.mouseMove(view._canvas, pos + QtCore.QPoint(dx, -dx // 5))
    qtbot.mouseRelease(view._canvas, Qt.MouseButton.LeftButton, ctrl, pos + QtCore.QPoint(100, -20))
    settle(qtbot, view)
    new_window, new_level = view.scene.opacity_ramp
    assert new_level == pytest.approx(level + window * 100 / 220, rel=0.05)  # a canvas width moves it one window
    assert new_window > window
    assert np.allclose(camera.GetPosition(), start)  # no rotation
    assert sphere_session.cursor.tolist() == [s // 2 for s in sphere_session.volume.size]  # no pick either
    assert view.frames_rendered > before
    view.close()


def test_flush_meshes_pending_edits_and_renders_now_and_a_new_image_is_announced(qtbot, sphere_session):
    view = make_view(qtbot, sphere_session)
    if view.scene.surfaces is None:
        pytest.skip("label_surfaces is not there yet")
    announced = []
    view.scene_changed.connect(lambda: announced.append(view.problem))
    volume = sphere_session.volume
    sphere_session.add_label_map(LabelMap(volume.shape, "sphere", data=(volume.data > 0).astype(np.uint8)))
    view.scene.set_render_mode("surface")
    before = view.frames_rendered
    view.flush()  # no event loop turn: the surface is meshed and the frame is there
    assert view.frames_rendered == before + 1 and not view.scene.surfaces.pending()
    assert view.scene.surfaces.actors()
    sphere_session.set_volume(Volume(data=np.zeros((32, 32), np.uint8)))
    sphere_session.set_volume(sphere_volume())
    assert announced == ["the 3D view needs a volume: this image is 2D (a single slice)", None]
    view.close()


def test_a_hidden_view_does_not_render_until_it_is_shown(qtbot, sphere_session):
    from medviewer.ui.view3d.view_widget import View3D
    view = View3D(sphere_session)  # made for a layout that is not on the screen yet
    qtbot.addWidget(view)
    view.resize(220, 200)
    view.scene.set_preset("CT angiography")
    qtbot.wait(50)
    assert view.frames_rendered == 0
    view.show()
    qtbot.waitUntil(lambda: view.frames_rendered == 1, timeout=20000)
    settle(qtbot, view)
    assert view.frames_rendered == 1 and foreground(view.capture()).sum() > 100
    view.close()


def test_a_resize_renders_once_when_the_size_settles(qtbot, sphere_session):
    view = make_view(qtbot, sphere_session)
    before = view.frames_rendered
    for width in range(230, 330, 10):  # a user dragging the window edge
        view.resize(width, 200)
        qtbot.wait(1)
    settle(qtbot, view)
    assert view.frames_rendered == before + 1
    assert view.render_window.GetSize() == (320, 200)
    assert view.capture().shape == (200, 320, 3)
    view.close()


def test_a_surface_that_cannot_be_made_is_said_under_the_rendering(qtbot, sphere_session, monkeypatch):
    from medviewer.core.heatmap import HeatMap
    view = make_view(qtbot, sphere_session)
    if view.scene.surfaces is None or not hasattr(view.scene.surfaces, "problems"):
        pytest.skip("label_surfaces is not there yet")
    monkeypatch.setenv("MEDVIEWER_MEMORY_LIMIT", "100K")  # too little for the heat map's surface
    sphere_session.add_heatmap(HeatMap(np.ones(sphere_session.volume.shape, np.float32), "big map", threshold=0.5))
    settle(qtbot, view)
    assert view._notice.isVisible() and view._notice.text().startswith("heat map 'big map': no 3D surface")
    assert view.problem is None  # the rendering stays
    view.close()
