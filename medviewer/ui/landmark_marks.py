"""The registration panel's landmarks drawn in the compare panes: a numbered green cross on each
pane that shows the landmark's image, on the slice through it (within half a voxel of the shown
slice; on a turned plane, within half a voxel of the cursor's slice along the plane's grid axis).

    marks = LandmarkMarks(grid)
    marks.set_points({fixed_entry: [(1, world), ...], moving_entry: [(1, world), ...]})

The marks follow the panes' cursors (scrolling to another slice shows its landmarks) and are
redrawn when the workspace changes; the items live in the views' view boxes (ignoring bounds, so
the zoom does not change).
"""
from __future__ import annotations

import numpy as np
import shiboken6

from medviewer.ui import hand_over
from medviewer.ui.qt import pg

COLOUR = (40, 230, 120)


class LandmarkMarks:
    def __init__(self, grid):
        self.grid = grid
        self.points: dict = {}  # ImageEntry -> [(number, world point)]
        self._sessions: set = set()
        self._drawn: list = []  # (view, item)

    def set_points(self, points: dict) -> None:
        self.points = {entry: list(pts) for entry, pts in points.items() if pts}
        sessions = {entry.session for entry in self.points}
        for session in self._sessions - sessions:
            session.cursor_changed.disconnect(self._schedule)
        for session in sessions - self._sessions:
            session.cursor_changed.connect(self._schedule)
        self._sessions = sessions
        self.draw()

    def _schedule(self, *_args) -> None:
        hand_over.soon(self.draw, owner=self.grid)

    def marks_in(self, view) -> list[tuple[int, float, float]]:
        """(number, x, y) of the marks drawn in VIEW (view coordinates, mm)."""
        return [mark for v, item in self._drawn if v is view for mark in getattr(item, "marks", [])]

    def draw(self) -> None:
        for view, item in self._drawn:
            if shiboken6.isValid(view):
                view.viewbox.removeItem(item)
        self._drawn = []
        for pane in self.grid.compare_panes():
            view, points = pane.view, self.points.get(pane.entry)
            if view is None or not points or view.geometry_ is None or view.session.volume is None:
                continue
            volume, axis = view.session.volume, view.geometry_.normal_axis
            here = float(view.session.cursor[axis])
            marks = []
            for number, world in points:
                ijk = volume.world_to_index(np.asarray(world, float))
                if abs(float(ijk[axis]) - here) <= 0.5:
                    x, y = view._view_xy(ijk)
                    marks.append((number, float(x), float(y)))
            if not marks:
                continue
            cross = pg.ScatterPlotItem([m[1] for m in marks], [m[2] for m in marks], symbol="+", size=14,
                                       pen=pg.mkPen(COLOUR, width=2), brush=None)
            cross.marks = marks
            cross.setZValue(32)
            view.viewbox.addItem(cross, ignoreBounds=True)
            self._drawn.append((view, cross))
            for number, x, y in marks:
                label = pg.TextItem(str(number), color=COLOUR, anchor=(-0.3, 1.1))
                label.setPos(x, y)
                label.setZValue(33)
                view.viewbox.addItem(label, ignoreBounds=True)
                self._drawn.append((view, label))
