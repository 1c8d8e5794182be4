"""Annotation tools driven by the slice views' mouse events (a tool is a function of the event).

Brush, eraser and threshold-limited paint draw discs (or spheres) of a radius in mm along the
drag path, one undo step per stroke (a LabelMap edit block from press to release); polygon (click
vertices, double-click closes), lasso (drag), rectangle and ellipse (drag a box), flood fill on the
slice and region growing (click a seed). Locked labels are never overwritten, and no tool paints
over (or erases) a voxel of another label unless `overwrite` is on ("Paint over other labels",
Slicer's "modify other segments"): LabelMap.paint() enforces both.

On a turned (oblique MPR) plane the brushes paint the voxels the plane cuts within the radius
(label_tools.oblique_stroke), the 3D brush its spheres; the slice-bound shape tools are refused
with a message until the planes are reset.
"""
from __future__ import annotations

import numpy as np

from medviewer.core.session import Session
from medviewer.processing import label_tools
from medviewer.ui.qt import QtCore, Signal
from medviewer.ui.region_grow_tool import RegionGrowTool

BRUSHES = ("brush", "eraser", "threshold")
TOOLS = BRUSHES + ("polygon", "lasso", "rectangle", "ellipse", "fill", "grow")
TOOL_NAMES = {"polygon": "Polygon", "lasso": "Lasso", "rectangle": "Rectangle", "ellipse": "Ellipse",
              "fill": "Flood fill", "grow": "Region growing"}


class AnnotationController(QtCore.QObject):
    tool_changed = Signal(str)
    message = Signal(str)

    def __init__(self, session: Session, parent=None):
        super().__init__(parent)
        self.session = session
        self.tool: str | None = None
        self.radius_mm = 5.0
        self.brush_3d = False
        self.low, self.high = -100.0, 200.0  # threshold-limited paint and threshold region growing
        self.overwrite = False  # paint over / erase other labels too
        self.grow = RegionGrowTool(session, self, self)
        self._points: list[np.ndarray] = []
        self._stroke: object | None = None  # the LabelMap whose edit block a stroke holds open
        self._view = None

    # --- state ------------------------------------------------------------------------
    def active(self) -> bool:
        return self.tool is not None

    def set_tool(self, tool: str | None) -> None:
        if tool is not None and tool not in TOOLS:
            raise ValueError(f"unknown tool {tool!r}")
        self._cancel()
        self.tool = tool
        self.tool_changed.emit(tool or "navigate")

    def _cancel(self) -> None:
        if self._view is not None:
            self._view.show_preview(None)
        self._points.clear()
        self._view = None
        self._end_stroke()
        self.grow.discard()

    def _end_stroke(self) -> None:
        if self._stroke is not None:
            self._stroke.end_edit_block()
            self._stroke = None

    # --- events -----------------------------------------------------------------------
    def handle(self, view, kind: str, ijk: np.ndarray) -> None:
        if self.tool is None or self.session.volume is None:
            return
        normal = view.geometry_.normal_axis
        ijk = np.asarray(ijk, dtype=float)
        turned = getattr(view, "oblique_plane", None)
        tool = self.tool
        if turned is not None:
            if tool in BRUSHES:
                self._brush_event(self.session.ensure_labels(), kind, ijk, self._oblique_shape(turned))
            elif kind in ("press", "click"):
                self.message.emit(f"{TOOL_NAMES[tool]} works on unturned planes: reset the MPR planes "
                                  "(View > Reset MPR planes) or use the brush")
            return
        ijk[normal] = round(ijk[normal])
        if tool == "grow":  # nothing is painted until the preview is accepted
            if kind == "click":
                self.grow.click(ijk, normal)
            return
        labels = self.session.ensure_labels()
        if tool in BRUSHES:
            self._brush_event(labels, kind, ijk, self._grid_shape(None if self.brush_3d else normal))
        elif tool == "polygon":
            if kind in ("click", "press"):
                self._points.append(ijk)
                self._view = view
                view.show_preview(self._points)
            elif kind == "double" and len(self._points) >= 3:
                self._fill(labels, label_tools.polygon(labels.data.shape, np.array(self._points), normal), "polygon")
        elif tool == "lasso":
            if kind == "press":
                self._points, self._view = [ijk], view
            elif kind == "drag":
                self._points.append(ijk)
                view.show_preview(self._points + [self._points[0]])
            elif kind == "release" and len(self._points) >= 3:
                self._fill(labels, label_tools.polygon(labels.data.shape, np.array(self._points), normal), "lasso")
        elif tool in ("rectangle", "ellipse"):
            if kind == "press":
                self._points, self._view = [ijk], view
            elif kind == "drag" and self._points:
                a = self._points[0]
                view.show_preview(_box_outline(a, ijk, view.geometry_))
            elif kind == "release" and self._points:
                a = self._points[0]
                shape = labels.data.shape
                if tool == "rectangle":
                    result = label_tools.rectangle(shape, a, ijk, normal)
                else:
                    result = label_tools.ellipse(shape, self.session.volume.spacing, a, ijk, normal)
                self._fill(labels, result, tool)
        elif tool == "fill" and kind == "click":
            self._fill(labels, label_tools.flood_fill_slice(labels.data, ijk, normal), "flood fill")

    def key(self, key: int) -> bool:
        """Enter closes a polygon or accepts a region-growing preview, Escape cancels; True if the
        key was used."""
        if self.tool == "grow" and (self.grow.pending or self.grow.growing):
            if key in (QtCore.Qt.Key_Return, QtCore.Qt.Key_Enter) and self.grow.pending:
                self.grow.accept()
                return True
            if key == QtCore.Qt.Key_Escape:
                self.grow.discard()
                return True
        if key in (QtCore.Qt.Key_Return, QtCore.Qt.Key_Enter) and self.tool == "polygon" and len(self._points) >= 3:
            labels = self.session.ensure_labels()
            self._fill(labels, label_tools.polygon(labels.data.shape, np.array(self._points),
                                                   self._view.geometry_.normal_axis), "polygon")
            return True
        if key == QtCore.Qt.Key_Escape and self._points:
            self._cancel()
            return True
        return False

    # --- tools ------------------------------------------------------------------------
    def _grid_shape(self, normal):
        """Discs on the slice normal to index axis `normal` (or spheres with None) along a path."""
        volume = self.session.volume
        return lambda path: label_tools.stroke(volume.shape, volume.spacing, path, self.radius_mm, normal)

    def _oblique_shape(self, plane):
        """Discs on a turned plane along a path (spheres with the 3D brush)."""
        volume = self.session.volume
        if self.brush_3d:
            return self._grid_shape(None)
        return lambda path: label_tools.oblique_stroke(volume.shape, volume.direction @ np.diag(volume.spacing),
                                                       path, self.radius_mm, plane.normal)

    def _brush_event(self, labels, kind: str, ijk: np.ndarray, shape) -> None:
        """shape(path) -> (region, mask): what a dab (one point) or a stroke segment paints."""
        if kind in ("press", "click"):
            self._end_stroke()
            labels.begin_edit_block(self.tool)
            self._stroke = labels
            self._points = [ijk]
            self._apply_brush(labels, shape(np.array([ijk])))
        elif kind in ("drag", "release") and self._points:
            self._apply_brush(labels, shape(np.array([self._points[-1], ijk])))
            self._points.append(ijk)
        if kind in ("release", "click"):
            self._end_stroke()
            self._points = []

    def _apply_brush(self, labels, result) -> None:
        region, mask = result
        if mask is None or not mask.any():
            return
        value = self.session.active_value
        if self.tool == "eraser":
            labels.paint(region, mask, 0, "eraser", only=None if self.overwrite else value)
            return
        if self.tool == "threshold":
            region, mask = label_tools.threshold_limit(self.session.volume.data, region, mask, self.low, self.high)
        labels.paint(region, mask, value, self.tool, overwrite=self.overwrite)

    def _fill(self, labels, result, description: str) -> None:
        region, mask = result
        self._cancel()
        if mask is not None and mask.any():
            labels.paint(region, mask, self.session.active_value, description, overwrite=self.overwrite)


def _box_outline(a: np.ndarray, b: np.ndarray, geometry) -> list[np.ndarray]:
    h, v = geometry.h_axis, geometry.v_axis
    corners = []
    for hv in ((a[h], a[v]), (b[h], a[v]), (b[h], b[v]), (a[h], b[v]), (a[h], a[v])):
        p = a.copy()
        p[h], p[v] = hv
        corners.append(p)
    return corners
