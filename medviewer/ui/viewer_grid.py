"""The view layouts: one view, 1x3 and 2x2 multi-planar (axial, coronal, sagittal + cursor info),
2x2 with the 3D view in the fourth pane, the 3D view alone, and the compare layouts 1x2 and 2x2
(several open images side by side, each pane its own image and plane: medviewer/ui/compare_pane.py).

The 3D view (VTK) is made on first use, so that opening the viewer does not import VTK (0.9 s).
In the compare layouts a pane showing the primary image uses the grid's own views (the annotation
tools are wired to them); other images get views made on demand, kept as hidden children of the grid
while unused and deleted when their image leaves the workspace. Linked panes of one plane share
zoom and pan: the same pixels per mm and the same world point in the middle of the pane."""
from __future__ import annotations

import html

import numpy as np

from medviewer.core.events import Event
from medviewer.core.linking import Linker
from medviewer.core.session import Session
from medviewer.core.slicing import PLANES
from medviewer.core.workspace import ImageEntry, Workspace
from medviewer.ui.compare_pane import ComparePane
from medviewer.ui.qt import QtCore, QtWidgets, Qt, Signal
from medviewer.ui.slice_view import SliceView

LAYOUTS = ("single", "1x3", "2x2", "2x2-3d", "3d", "compare-1x2", "compare-2x2")
LAYOUTS_3D = ("2x2-3d", "3d")
COMPARE_LAYOUTS = {"compare-1x2": (1, 2), "compare-2x2": (2, 2)}  # rows, columns


def _unsubscribe(view: SliceView) -> None:
    """Take the view's methods off its session's events (and those of the session's display and
    MPR planes models), before the view is deleted."""
    session = view.session
    for model in (session, session.image_display, session.planes, getattr(session, "fusion", None)):
        for event in vars(model).values() if model is not None else ():
            if isinstance(event, Event):
                for callback in list(event._callbacks):
                    if getattr(callback, "__self__", None) is view:
                        event.disconnect(callback)


def default_slots(entries: list[ImageEntry], count: int) -> list[tuple[ImageEntry, str]]:
    """What the panes show at first: each image axial (the primary first), then the images again
    in the other planes, while panes are left."""
    slots = []
    for plane in PLANES:
        for entry in entries:
            flat = entry.volume is not None and entry.volume.is_2d
            if len(slots) < count and not (flat and plane != "axial"):
                slots.append((entry, plane))
    while len(slots) < count:
        slots.append((entries[len(slots) % len(entries)], "axial"))
    return slots


class CursorInfo(QtWidgets.QLabel):
    """The fourth cell of the 2x2 layout: where the crosshair is and what is there."""

    def __init__(self, session: Session):
        super().__init__()
        self.session = session
        self.setAlignment(Qt.AlignLeft | Qt.AlignTop)
        self.setStyleSheet("background: #111; color: #ddd; padding: 10px; font-family: monospace;")
        self.setWordWrap(True)
        session.cursor_changed.connect(lambda *_: self.refresh())
        session.window_changed.connect(lambda *_: self.refresh())

    def refresh(self) -> None:
        v = self.session.volume
        if v is None or not self.isVisible():
            self.setText("")
            return
        p = self.session.probe()
        w = self.session.window
        self.setText(
            f"<b>{html.escape(self.session.title)}</b><br>{v.describe()}<br><br>"
            f"voxel (x, y, z): {p['index']}<br>"
            f"world (mm, LPS): ({p['world'][0]:.1f}, {p['world'][1]:.1f}, {p['world'][2]:.1f})<br>"
            f"value: {p['value']} {p['unit']}<br>window W {w.width:.0f} / L {w.level:.0f}<br><br>"
            "<span style='color:#e88'>Not for clinical use</span>")


class ViewerGrid(QtWidgets.QWidget):
    active_changed = Signal(str)
    pane_clicked = Signal(object, object)  # (ImageEntry, world point LPS mm): a navigate click in a compare pane

    def __init__(self, session: Session, parent=None, workspace: Workspace | None = None,
                 linker: Linker | None = None):
        super().__init__(parent)
        self.session = session
        self.workspace: Workspace | None = None
        self.linker: Linker | None = None
        self._panes: list[ComparePane] = []
        self._extra_views: dict[tuple, SliceView] = {}  # (entry id, plane, n) -> a view of another session
        self._syncing_range = False
        self._active_pane_view: SliceView | None = None  # the compare pane view the user worked in last
        self.views = {plane: SliceView(session, plane) for plane in PLANES}
        self.info = CursorInfo(session)
        self._view3d = None
        self.layout_name = "1x3"
        self.single_plane = "axial"
        self.active_plane = "axial"
        for view in self.views.values():
            view.activated.connect(self._set_active)
        self._grid = QtWidgets.QGridLayout(self)
        self._grid.setContentsMargins(0, 0, 0, 0)
        self._grid.setSpacing(2)
        self.set_layout("1x3")
        self.set_workspace(workspace or Workspace(session), linker)

    def _set_active(self, plane: str) -> None:
        if plane != self.active_plane:
            self.active_plane = plane
            self.active_changed.emit(plane)

    def set_layout(self, name: str, plane: str | None = None) -> None:
        if name not in LAYOUTS:
            raise ValueError(f"unknown layout {name!r}; use one of {LAYOUTS}")
        volume = self.session.volume
        if volume is not None and volume.is_2d and name not in COMPARE_LAYOUTS:
            name = "single"  # a 2D image has one plane, and no 3D view
            plane = "axial"
        self.layout_name = name
        if plane:
            self.single_plane = plane
        # the cells stay children of the grid and are only hidden: reparenting the views to None
        # (top-level for a moment) on every image switch made the next QListWidget.clear() in a
        # panel crash in shiboken (issue 11; tests/gui/test_soak.py holds the regression test)
        for i in reversed(range(self._grid.count())):
            widget = self._grid.itemAt(i).widget()
            self._grid.removeWidget(widget)
            widget.hide()
        if name not in COMPARE_LAYOUTS:
            self._release_pane_views()
        if name in COMPARE_LAYOUTS:
            cells = self._compare_cells(*COMPARE_LAYOUTS[name])
        elif name == "single":
            cells = [(self.views[self.single_plane], 0, 0)]
            self._set_active(self.single_plane)
        elif name == "1x3":
            cells = [(self.views[p], 0, i) for i, p in enumerate(PLANES)]
        elif name == "3d":
            cells = [(self.view3d(), 0, 0)]
        else:
            fourth = self.view3d() if name == "2x2-3d" else self.info
            cells = [(self.views["axial"], 0, 0), (self.views["coronal"], 0, 1),
                     (self.views["sagittal"], 1, 0), (fourth, 1, 1)]
        self._cells = [widget for widget, _, _ in cells]
        for widget, row, col in cells:
            self._grid.addWidget(widget, row, col)
            widget.show()
        self.info.refresh()
        if name in COMPARE_LAYOUTS:
            self._refresh_outside()
            QtCore.QTimer.singleShot(0, self, self._fit_compare)  # once the panes have their size

    def showEvent(self, ev) -> None:
        super().showEvent(ev)
        self.info.refresh()

    def view3d(self):
        """The 3D view, made on first use (VTK is imported then)."""
        if self._view3d is None:
            from medviewer.ui.view3d.view_widget import View3D

            self._view3d = View3D(self.session, self)
            self._view3d.hide()
        return self._view3d

    @property
    def showing_3d(self) -> bool:
        return self._view3d is not None and self._view3d in self._cells

    def close_3d(self) -> None:
        """Release VTK's window before the widgets go (VTK wants the widget closed before Finalize)."""
        if self._view3d is not None:
            self._view3d.close()

    def visible_views(self) -> list[SliceView]:
        if self.layout_name in COMPARE_LAYOUTS:
            return [pane.view for pane in self.compare_panes() if pane.view is not None]
        return [v for v in self.views.values() if v in self._cells]

    def active_view(self) -> SliceView:
        return self.views[self.active_plane]

    def fit_all(self) -> None:
        if self.layout_name in COMPARE_LAYOUTS:
            self._fit_compare()  # linked panes then share the first one's zoom and centre
            return
        for view in self.visible_views():
            view.fit()

    # --- the compare layouts ----------------------------------------------------------------
    def set_workspace(self, workspace: Workspace, linker: Linker | None = None) -> None:
        """The open images the compare panes choose from, and the linker that relates them."""
        self.workspace = workspace
        self.linker = linker if linker is not None else Linker(workspace)
        workspace.changed.connect(self._workspace_changed)
        self.linker.outside_changed.connect(lambda entry: self._refresh_outside())
        self._workspace_changed()

    def active_entry(self) -> ImageEntry:
        """The image the user works on: in a compare layout the pane last clicked, scrolled or
        windowed in; otherwise (and at first) the primary."""
        for pane in self.compare_panes():
            if pane.view is not None and pane.view is self._active_pane_view and pane.entry is not None:
                return pane.entry
        return self.workspace.primary

    def active_session(self) -> Session:
        return self.active_entry().session

    def compare_panes(self) -> list[ComparePane]:
        """The panes of the compare layout shown (none in the other layouts)."""
        count = {name: r * c for name, (r, c) in COMPARE_LAYOUTS.items()}.get(self.layout_name, 0)
        return self._panes[:count]

    def show_beside(self, entry: ImageEntry, plane: str | None = None, pane: int = 1) -> ComparePane:
        """Show `entry` in compare pane `pane` (a 1x2 layout unless a compare layout is shown)."""
        if self.layout_name not in COMPARE_LAYOUTS:
            self.set_layout("compare-1x2" if pane < 2 else "compare-2x2")
        target = self.compare_panes()[min(pane, len(self.compare_panes()) - 1)]
        target.chosen = True
        self._place(target, entry, plane or target.plane)
        return target

    def _compare_cells(self, rows: int, cols: int) -> list:
        count = rows * cols
        while len(self._panes) < count:
            pane = ComparePane(len(self._panes), self)
            pane.hide()
            pane.entry_chosen.connect(lambda entry, plane, pane=pane: self._chosen(pane, entry, plane))
            pane.list_entries(self.workspace.entries)
            self._panes.append(pane)
        for pane in self._panes:
            self._park(pane.release_view())
        defaults = default_slots(self.workspace.entries, count)
        for pane, (entry, plane) in zip(self._panes[:count], defaults):
            if pane.chosen and pane.entry in self.workspace.entries:
                entry, plane = pane.entry, pane.plane
            self._place(pane, entry, plane)
        return [(pane, i // cols, i % cols) for i, pane in enumerate(self._panes[:count])]

    def _chosen(self, pane: ComparePane, entry: ImageEntry, plane: str) -> None:
        pane.chosen = True
        if pane in self.compare_panes():
            self._place(pane, entry, plane)
            self._follow_range(pane)
        else:
            pane.entry, pane.plane = entry, plane

    def _place(self, pane: ComparePane, entry: ImageEntry, plane: str) -> None:
        if entry.volume is not None and entry.volume.is_2d:
            plane = "axial"
        used = {p.view for p in self.compare_panes() if p is not pane and p.view is not None}
        view = self._view_for(entry, plane, used)
        self._park(pane.show_entry(entry, plane, view))
        pane.set_outside(self.linker.outside(entry))

    def _view_for(self, entry: ImageEntry, plane: str, used: set) -> SliceView:
        if entry is self.workspace.primary and self.views[plane] not in used:
            self._hook(self.views[plane])
            return self.views[plane]
        n = 0
        while self._extra_views.get((entry.id, plane, n)) in used:
            n += 1
        view = self._extra_views.get((entry.id, plane, n))
        if view is None or view.session is not entry.session:
            view = self._extra_views[(entry.id, plane, n)] = SliceView(entry.session, plane, self)
            view.hide()
        self._hook(view)
        return view

    def _hook(self, view: SliceView) -> None:
        """Linked zoom / pan, and pane_clicked, for a view shown in a pane (once per view)."""
        if getattr(view, "_compare_hooked", False):
            return
        view._compare_hooked = True
        view.viewbox.sigRangeChanged.connect(lambda *_: self._range_changed(view))
        view.activated.connect(lambda *_: setattr(self, "_active_pane_view", view))
        view.graphics.scene().sigMouseClicked.connect(lambda ev: self._clicked(view, ev))

    def _park(self, view: SliceView | None) -> None:
        """A view no pane shows: hidden, a child of the grid (never of None, issue 11)."""
        if view is not None:
            view.hide()
            if view.parent() is not self:
                view.setParent(self)

    def _release_pane_views(self) -> None:
        for pane in self._panes:
            self._park(pane.release_view())

    def _workspace_changed(self) -> None:
        entries = self.workspace.entries
        for key in [k for k in self._extra_views if all(e.id != k[0] for e in entries)]:
            view = self._extra_views.pop(key)
            for pane in self._panes:
                if pane.view is view:
                    pane.release_view()
            view.hide()
            _unsubscribe(view)  # whoever still holds the image's session never reaches the deleted view
            view.deleteLater()  # its image has gone; the grid stays its parent until then
        for pane in self._panes:
            if pane.entry is not None and pane.entry not in entries:
                pane.chosen, pane.entry = False, None
            pane.list_entries(entries)
        if self.layout_name in COMPARE_LAYOUTS:
            shown = self.compare_panes()
            defaults = default_slots(entries, len(shown))
            for pane, (entry, plane) in zip(shown, defaults):
                if not pane.chosen and (pane.entry is not entry or pane.plane != plane or pane.view is None):
                    self._place(pane, entry, plane)
                elif pane.chosen and pane.view is not None:
                    pane.show_entry(pane.entry, pane.plane, pane.view)  # the link button and combos

    def _refresh_outside(self) -> None:
        for pane in self._panes:
            if pane.entry is not None:
                pane.set_outside(pane.entry.linked and self.linker.outside(pane.entry))
                pane.link_button.blockSignals(True)
                pane.link_button.setChecked(pane.entry.linked)
                pane.link_button.blockSignals(False)

    def _fit_compare(self) -> None:
        panes = [p for p in self.compare_panes() if p.view is not None]
        for pane in panes:
            pane.view.fit()
        for pane in panes:  # linked panes of one plane take the first one's zoom and centre
            if pane.linked and any(p.linked and p.plane == pane.plane for p in panes if p is not pane):
                self._range_changed(pane.view)
                break

    def _follow_range(self, pane: ComparePane) -> None:
        """A pane that joins takes the zoom and centre of a linked pane of its plane."""
        leader = next((p for p in self.compare_panes() if p is not pane and p.view is not None and p.linked
                       and p.plane == pane.plane), None)
        if leader is not None and pane.linked:
            self._range_changed(leader.view)
        elif pane.view is not None:
            pane.view.fit()

    def _range_changed(self, view: SliceView) -> None:
        if self._syncing_range or not self.linker.enabled:
            return
        panes = [p for p in self.compare_panes() if p.view is not None and p.isVisible()]
        source = next((p for p in panes if p.view is view), None)
        if source is None or not source.linked or view.geometry_ is None:
            return
        targets = [p for p in panes if p is not source and p.linked and p.plane == source.plane
                   and p.view.geometry_ is not None]
        ppm = view.pixels_per_mm()
        if not targets or ppm <= 0:
            return
        (x0, x1), (y0, y1) = view.viewbox.viewRange()
        centre = view.index_at(QtCore.QPointF((x0 + x1) / 2, (y0 + y1) / 2))
        world = view.session.volume.index_to_world(centre)
        self._syncing_range = True
        try:
            for pane in targets:
                there = self.linker.world_in(pane.entry, world, source.entry)
                if there is None:
                    continue
                other = pane.view
                x, y = other._view_xy(other.session.volume.world_to_index(there))
                half_w = other.viewbox.width() / ppm / 2
                half_h = other.viewbox.height() / ppm / 2
                if half_w > 0 and half_h > 0 and np.isfinite([x, y]).all():
                    other.viewbox.setRange(xRange=(x - half_w, x + half_w), yRange=(y - half_h, y + half_h),
                                           padding=0)
        finally:
            self._syncing_range = False

    def _clicked(self, view: SliceView, ev) -> None:
        """A navigate-tool left click in a compare pane: pane_clicked(entry, world)."""
        if ev.button() != Qt.LeftButton or view.geometry_ is None or view.tool != "navigate" or view.annotating():
            return
        pane = next((p for p in self.compare_panes() if p.view is view), None)
        if pane is None or not view.viewbox.sceneBoundingRect().contains(ev.scenePos()):
            return
        ijk = view.index_at(view.viewbox.mapSceneToView(ev.scenePos()), inside=True)
        self.pane_clicked.emit(pane.entry, view.session.volume.index_to_world(ijk))
