"""View3D: the Qt widget of the 3D view, hosting a Scene3D and following the session.

On a real display it is VTK's own QVTKRenderWindowInteractor. On Qt's offscreen platform (tests,
`medviewer screenshot`) that renders garbage, so the scene draws into an offscreen (EGL) render
window whose frames are painted into the widget, and the widget's mouse and wheel events go to a
vtkGenericRenderWindowInteractor: both paths interact through VTK's trackball style. A left click
(no drag) picks and moves the session cursor there; Ctrl+left drag shifts the opacity ramp.

It stays out of the 2D views' way: a change asks for a render and the renders of one event-loop
turn become one; a cursor move costs nothing unless the planes or the crosshair clip are on;
label edits are re-meshed on a short timer, within a time budget. Where 3D cannot work (no OpenGL,
a 2D image) it shows the reason instead of a rendering and never raises.

    view = View3D(session); view.scene.set_preset("CT lung"); rgb = view.capture(); view.close()
"""
from __future__ import annotations

import numpy as np

from medviewer.core.errors import MedViewerError
from medviewer.ui.qt import QtCore, QtGui, QtWidgets, Qt
from medviewer.ui.view3d import vtk_bridge as bridge

OFFSCREEN_PLATFORMS = ("offscreen", "minimal")
CLICK_SLOP = 3  # a left press and release this close (pixels) is a click: pick, do not rotate
SURFACE_DELAY_MS = 30  # edits within this time are re-meshed together
SURFACE_BUDGET_MS = 80  # re-meshing per turn of the event loop; the rest on the next turn
RESIZE_DELAY_MS = 60  # while a window is being resized the last frame is scaled; render when it settles


class _FrameCanvas(QtWidgets.QWidget):
    """Shows the offscreen render window's frames; mouse and wheel go to the VTK interactor."""

    def __init__(self, view: "View3D") -> None:
        super().__init__(view)
        self.view = view
        self.frame: QtGui.QImage | None = None
        self.setFocusPolicy(Qt.FocusPolicy.WheelFocus)
        self.setSizePolicy(QtWidgets.QSizePolicy.Policy.Expanding, QtWidgets.QSizePolicy.Policy.Expanding)

    def show_frame(self, rgb: np.ndarray) -> None:
        h, w, _ = rgb.shape
        self.frame = QtGui.QImage(rgb.tobytes(), w, h, 3 * w, QtGui.QImage.Format.Format_RGB888).copy()
        self.update()

    def paintEvent(self, _event) -> None:
        painter = QtGui.QPainter(self)
        if self.frame is None:
            painter.fillRect(self.rect(), QtGui.QColor(0, 0, 0))
        else:
            painter.drawImage(self.rect(), self.frame)
        painter.end()

    def resizeEvent(self, event) -> None:
        ratio = self.devicePixelRatioF()
        w, h = max(1, round(self.width() * ratio)), max(1, round(self.height() * ratio))
        self.view.render_window.SetSize(w, h)
        self.view.interactor.UpdateSize(w, h)
        self.view._resize_timer.start()  # restarted by each resize: one frame when the size settles
        super().resizeEvent(event)

    def _event_info(self, event, repeat: int = 0) -> None:
        ratio = self.devicePixelRatioF()
        pos = event.position()
        mods = event.modifiers()
        self.view.interactor.SetEventInformationFlipY(
            round(pos.x() * ratio), round(pos.y() * ratio),
            int(bool(mods & Qt.KeyboardModifier.ControlModifier)),
            int(bool(mods & Qt.KeyboardModifier.ShiftModifier)), "\0", repeat)

    _PRESS = {Qt.MouseButton.LeftButton: "LeftButtonPressEvent", Qt.MouseButton.MiddleButton: "MiddleButtonPressEvent",
              Qt.MouseButton.RightButton: "RightButtonPressEvent"}
    _RELEASE = {Qt.MouseButton.LeftButton: "LeftButtonReleaseEvent",
                Qt.MouseButton.MiddleButton: "MiddleButtonReleaseEvent",
                Qt.MouseButton.RightButton: "RightButtonReleaseEvent"}

    def mousePressEvent(self, event) -> None:
        if event.button() in self._PRESS:
            self._event_info(event)
            getattr(self.view.interactor, self._PRESS[event.button()])()

    def mouseDoubleClickEvent(self, event) -> None:
        if event.button() in self._PRESS:
            self._event_info(event, repeat=1)
            getattr(self.view.interactor, self._PRESS[event.button()])()

    def mouseReleaseEvent(self, event) -> None:
        if event.button() in self._RELEASE:
            self._event_info(event)
            getattr(self.view.interactor, self._RELEASE[event.button()])()

    def mouseMoveEvent(self, event) -> None:
        self._event_info(event)
        self.view.interactor.MouseMoveEvent()

    def wheelEvent(self, event) -> None:
        ratio = self.devicePixelRatioF()
        pos = event.position()
        self.view.interactor.SetEventInformationFlipY(round(pos.x() * ratio), round(pos.y() * ratio), 0, 0, "\0", 0)
        if event.angleDelta().y() > 0:
            self.view.interactor.MouseWheelForwardEvent()
        elif event.angleDelta().y() < 0:
            self.view.interactor.MouseWheelBackwardEvent()


def _qvtk_class():
    import vtkmodules.qt
    vtkmodules.qt.PyQtImpl = "PySide6"
    from vtkmodules.qt.QVTKRenderWindowInteractor import QVTKRenderWindowInteractor
    return QVTKRenderWindowInteractor


class View3D(QtWidgets.QWidget):
    scene_changed = QtCore.Signal()  # a new image in the scene (or the reason there is none): panels re-sync

    def __init__(self, session, parent=None, max_texture_3d: int | None = None) -> None:
        super().__init__(parent)
        self.session = session
        self.scene = None
        self.problem: str | None = None  # why there is no rendering (no OpenGL, a 2D image)
        self.frames_rendered = 0
        self.render_window = None
        self.interactor = None
        self._canvas = None
        self._closed = False
        self._render_when_shown = False
        self._rendered_size: tuple[int, int] | None = None
        self._press_at: tuple[int, int] | None = None
        self._ramp_drag: tuple[int, int] | None = None  # where a Ctrl+drag of the opacity ramp is
        self._watched: list = []
        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        self._message = QtWidgets.QLabel("")
        self._message.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self._message.setWordWrap(True)
        self._message.setStyleSheet("color: #ddd; background: black; padding: 12px;")
        self._message.setSizePolicy(QtWidgets.QSizePolicy.Policy.Expanding,
                                    QtWidgets.QSizePolicy.Policy.Expanding)
        layout.addWidget(self._message)
        self._notice = QtWidgets.QLabel("")  # e.g. "downsampled 2x for rendering: ..."
        self._notice.setStyleSheet("color: #fc6; background: black; padding: 2px 6px;")
        self._notice.hide()
        layout.addWidget(self._notice)
        self._opengl_problem = bridge.opengl_problem()
        if self._opengl_problem:
            self._show_problem(self._opengl_problem)
            return
        self.offscreen = QtWidgets.QApplication.platformName() in OFFSCREEN_PLATFORMS
        self._render_timer = self._single_shot(0, self._render_now)
        self._resize_timer = self._single_shot(RESIZE_DELAY_MS, self._size_settled)
        self._surface_timer = self._single_shot(SURFACE_DELAY_MS, self._flush_surfaces)
        self._make_vtk(max_texture_3d)
        layout.insertWidget(0, self._canvas, 1)
        for event, slot in self._subscriptions():
            event.connect(slot)
        self._load_volume()

    def _single_shot(self, interval_ms: int, slot) -> QtCore.QTimer:
        timer = QtCore.QTimer(self)
        timer.setSingleShot(True)
        timer.setInterval(interval_ms)
        timer.timeout.connect(slot)
        return timer

    def _subscriptions(self):
        s = self.session
        return ((s.volume_changed, self._load_volume), (s.image_replaced, self._load_volume),
                (s.label_layers_changed, self._follow_layers), (s.heatmaps_changed, self._follow_layers),
                (s.cursor_changed, self._cursor_moved), (s.window_changed, self._window_changed),
                (s.planes.changed, self._planes_turned), (s.planes.moved, self._planes_turned))

    # --- VTK --------------------------------------------------------------------------
    def _make_vtk(self, max_texture_3d) -> None:
        from vtkmodules.vtkInteractionStyle import vtkInteractorStyleTrackballCamera
        from medviewer.ui.view3d.scene import Scene3D
        style = vtkInteractorStyleTrackballCamera()
        if self.offscreen:
            from vtkmodules.vtkRenderingUI import vtkGenericRenderWindowInteractor
            self.render_window = bridge.offscreen_render_window(max(self.width(), 1), max(self.height(), 1))
            self.interactor = vtkGenericRenderWindowInteractor()
            self.interactor.SetRenderWindow(self.render_window)
            self.interactor.EnableRenderOff()  # VTK's renders become requests, coalesced here
            self.interactor.AddObserver("RenderEvent", lambda *_: self.request_render())
            self._canvas = _FrameCanvas(self)
        else:
            self._canvas = _qvtk_class()(self)
            self.render_window = self._canvas.GetRenderWindow()
            self.interactor = self.render_window.GetInteractor()
        self.interactor.SetInteractorStyle(style)
        self._style = style
        # observers on the style replace its own handlers (which grab the mouse): they call them
        style.AddObserver("LeftButtonPressEvent", self._left_press)
        style.AddObserver("LeftButtonReleaseEvent", self._left_release)
        style.AddObserver("MouseMoveEvent", self._mouse_move)
        self.interactor.Initialize()
        self.scene = Scene3D(self.render_window, max_texture_3d, request_render=self.request_render)

    def request_render(self) -> None:
        """Render on the next turn of the event loop (many requests, one frame)."""
        if self.scene is not None and not self._closed and not self._render_timer.isActive():
            self._render_timer.start()

    def _render_now(self, even_hidden: bool = False) -> None:
        if self._closed or self.scene is None or self.problem:
            return
        if not (even_hidden or self.isVisible()):  # a hidden view (another layout) renders when shown
            self._render_when_shown = True
            return
        self._render_when_shown = False
        self._render_timer.stop()
        self._rendered_size = tuple(self.render_window.GetSize())
        self.scene.render()
        self.frames_rendered += 1
        if self.offscreen:
            self._canvas.show_frame(bridge.capture(self.render_window))

    def capture(self) -> np.ndarray:
        """What the view shows, (h, w, 3) uint8: the rendering, or the reason there is none."""
        if self.scene is not None and not self.problem:
            self._render_timer.stop()  # this frame is the one that was asked for
            self._rendered_size = tuple(self.render_window.GetSize())
            rgb = self.scene.capture()
            self.frames_rendered += 1
            if self.offscreen:
                self._canvas.show_frame(rgb)
            return rgb
        image = self.grab().toImage().convertToFormat(QtGui.QImage.Format.Format_RGB888)
        w, h = image.width(), image.height()
        rows = np.frombuffer(image.constBits(), np.uint8, image.bytesPerLine() * h).reshape(h, -1)
        return rows[:, :3 * w].reshape(h, w, 3).copy()

    def _size_settled(self) -> None:
        if tuple(self.render_window.GetSize()) != self._rendered_size:
            self.request_render()

    def showEvent(self, event) -> None:
        super().showEvent(event)
        if self._render_when_shown:
            self.request_render()

    # --- what is shown ----------------------------------------------------------------------
    def _show_problem(self, reason: str) -> None:
        self.problem = reason
        self._message.setText(reason)
        self._message.show()
        self._notice.hide()
        if self._canvas is not None:
            self._canvas.hide()

    def _show_rendering(self) -> None:
        self.problem = None
        self._message.hide()
        self._canvas.show()
        self._set_notice(self.scene.downsampled)

    def _set_notice(self, text: str | None) -> None:
        self._notice.setText(text or "")
        self._notice.setVisible(bool(text))

    def _load_volume(self) -> None:
        volume = self.session.volume
        try:
            if volume is None:
                raise MedViewerError("no image open")
            self.scene.set_volume(volume)
        except MedViewerError as exc:
            self._show_problem(str(exc))
        else:
            self.scene.set_plane_window(self.session.window.width, self.session.window.level)
            self._show_rendering()
            self._follow_layers()
            self.request_render()
        self.scene_changed.emit()

    def _follow_layers(self) -> None:
        """The session's label maps and heat maps as surfaces (re-meshed on the surface timer)."""
        surfaces = self.scene.surfaces if self.scene is not None else None
        if surfaces is None or self.problem:
            return
        showed = bool(self._watched)
        for event in self._watched:
            event.disconnect(self._surfaces_changed)
        try:
            surfaces.set_label_maps(list(self.session.label_maps))
            surfaces.set_heatmaps(list(self.session.heatmaps))
        except MedViewerError as exc:
            self._set_notice(str(exc))
        self._watched = [e for m in self.session.label_maps for e in (m.changed, m.table_changed, m.display_changed)]
        self._watched += [h.display_changed for h in self.session.heatmaps]
        for event in self._watched:
            event.connect(self._surfaces_changed)
        if showed or self._watched:  # no layers before or now: nothing to mesh or to take away
            self._surfaces_changed()

    def _surfaces_changed(self, *_args) -> None:
        if not self._surface_timer.isActive():
            self._surface_timer.start()

    def _flush_surfaces(self) -> None:
        surfaces = self.scene.surfaces if self.scene is not None else None
        if self._closed or surfaces is None:
            return
        surfaces.flush(budget_ms=SURFACE_BUDGET_MS)
        self._set_notice("; ".join(filter(None, [self.scene.downsampled, *surfaces.problems()])))
        self.request_render()
        if surfaces.pending():
            self._surface_timer.start()

    def flush(self) -> None:
        """Now, not on the timers: mesh every pending label edit and render one frame (screenshots)."""
        if self._closed or self.scene is None or self.problem:
            return
        if self.scene.surfaces is not None:
            self.scene.surfaces.flush()
        self._surface_timer.stop()
        self._render_now(even_hidden=True)

    def _planes_turned(self, *_args) -> None:
        """The 2D views' planes were turned (oblique MPR): the planes in 3D turn with them."""
        volume, planes = self.session.volume, self.session.planes
        if self.scene is None or self.problem or volume is None:
            return
        self.scene.set_plane_rotations(planes.rotations if planes.is_rotated() else None,
                                       planes.pivot(volume, self.session.cursor))

    def _cursor_moved(self, cursor) -> None:
        if self.scene is not None and not self.problem and self.scene.follows_cursor:
            self.scene.update_planes(cursor)

    def _window_changed(self, window, _invert) -> None:
        if self.scene is not None and not self.problem:
            self.scene.set_plane_window(window.width, window.level)

    # --- the mouse: a left click picks (the crosshair moves there), a drag rotates (VTK's
    # trackball), a Ctrl+left drag edits the opacity ramp (right: higher level, up: wider) -----
    def _left_press(self, style, _event) -> None:
        self._press_at = self.interactor.GetEventPosition()
        if self.interactor.GetControlKey() and self.scene is not None and not self.problem:
            self._ramp_drag = self._press_at
            return
        style.OnLeftButtonDown()

    def _mouse_move(self, style, _event) -> None:
        if self._ramp_drag is None:
            style.OnMouseMove()
            return
        x, y = self.interactor.GetEventPosition()
        dx, dy = x - self._ramp_drag[0], y - self._ramp_drag[1]
        self._ramp_drag = (x, y)
        width, height = self.render_window.GetSize()
        window = self.scene.opacity_ramp[0]
        self.scene.shift_opacity(window * dy / max(height, 1), window * dx / max(width, 1))

    def _left_release(self, style, _event) -> None:
        if self._ramp_drag is not None:
            self._ramp_drag = self._press_at = None
            return
        style.OnLeftButtonUp()
        start, self._press_at = self._press_at, None
        x, y = self.interactor.GetEventPosition()
        if start is None or max(abs(x - start[0]), abs(y - start[1])) > CLICK_SLOP or self.problem:
            return
        ijk = self.scene.pick(x, y)
        if ijk is not None:
            self.session.set_cursor(ijk)

    # --- the end ---------------------------------------------------------------------------------
    def close(self) -> bool:
        """Release VTK (the widget first, then the render window) and stop following the session."""
        if not self._closed and self.scene is not None:
            self._closed = True
            self._render_timer.stop()
            self._surface_timer.stop()
            self._resize_timer.stop()
            for event, slot in self._subscriptions():
                event.disconnect(slot)
            for event in self._watched:
                event.disconnect(self._surfaces_changed)
            self._watched = []
            self.scene.close()
            self.interactor.RemoveAllObservers()
            self._style.RemoveAllObservers()
            self._canvas.close()
            self.render_window.Finalize()
            if not self.offscreen:
                self.interactor.TerminateApp()
        self._closed = True
        return super().close()
