"""Oblique MPR for a slice view (a SliceView mixin, split from ui/slice_view.py).

The three planes' rotations are ``session.planes`` (core/oblique.py). A view whose plane is
turned reslices it through the planes' exact centre (``_oblique``, offset ``_w``); every view
turns its crosshair lines with the other planes; a rotate drag turns the other two planes about
this view's normal; scrolling and clicks on a turned view move the exact centre (and the cursor
to the voxel holding it); measurements made there are found again by position.
"""
from __future__ import annotations

import numpy as np

from medviewer.core import oblique, slab
from medviewer.core.measurements import Measurement
from medviewer.ui.qt import QtCore

# the planes whose intersections a view's horizontal and vertical crosshair lines are
_LINE_PLANES = {"axial": ("coronal", "sagittal"), "coronal": ("axial", "sagittal"), "sagittal": ("axial", "coronal")}


class ObliqueMpr:
    """Needs the SliceView's session, plane, geometry_, planes, _oblique, _w, _background,
    _line_version, _slice_index, h_line, v_line, overlay and its drawing methods."""

    def _oblique_plane(self) -> oblique.ObliquePlane | None:
        volume = self.session.volume
        if volume is None or volume.is_2d or not self.planes.is_rotated(self.plane):
            return None
        return oblique.plane_for(volume, self.geometry_, self.planes.rotations[self.plane])

    def _on_planes(self) -> None:
        """The planes were turned (or reset): reslice this view if its plane changed, redraw
        the crosshair lines in every view."""
        if self.geometry_ is None or self.session.volume is None:
            return
        was, self._oblique = self._oblique, self._oblique_plane()
        self._line_version = -1
        if not self.planes.is_rotated():  # back to the grid: today's horizontal and vertical lines
            self.h_line.setAngle(0)
            self.v_line.setAngle(90)
        self._update_title()
        self._set_letters()
        if was is None and self._oblique is None:
            self._on_cursor(self.session.cursor)  # only the crosshair lines turn
            return
        self._slice_index = -1  # force a redraw
        self._on_cursor(self.session.cursor)
        self._set_rect()
        if (was is None) != (self._oblique is None) or (was is not None and was.extent_mm != self._oblique.extent_mm):
            self.fit()

    @property
    def oblique_plane(self) -> oblique.ObliquePlane | None:
        """This view's turned plane; None on the voxel grid."""
        return self._oblique

    @property
    def plane_offset(self) -> float:
        """The turned plane's offset along its normal (world mm)."""
        return self._w

    def _view_axes(self) -> np.ndarray:
        """World directions of this view's right, down and normal."""
        if self._oblique is not None:
            return self._oblique.axes
        return oblique.grid_axes(self.session.volume, self.geometry_)

    def _set_letters(self) -> None:
        volume = self.session.volume
        if volume is None or not volume.metadata.get("oriented", True):
            self.overlay.set_letters(None)
        else:
            self.overlay.set_letters(oblique.letters(self._oblique.axes) if self._oblique is not None
                                     else self.geometry_.labels)

    def _crosshair(self, cursor) -> tuple[float, float]:
        """Place the crosshair lines (turned with the other planes); returns the centre (view mm)."""
        volume = self.session.volume
        if not self.planes.is_rotated():
            col, row, _ = self.geometry_.pixel_from_index(cursor)
            x, y = self._mm_from_pixel(col, row)
            self.h_line.setAngle(0)
            self.v_line.setAngle(90)
        else:
            x, y = self._view_xy(volume.world_to_index(self.planes.pivot(volume, cursor)))
            if self._line_version != self.planes.version:  # the lines turn only with the planes
                self._line_version = self.planes.version
                axes = self._view_axes()
                for line, other in zip((self.h_line, self.v_line), _LINE_PLANES[self.plane]):
                    tx, ty = oblique.in_view(axes, np.cross(axes[:, 2], oblique.plane_normal(
                        volume, other, self.planes.rotations[other])))
                    angle = np.degrees(np.arctan2(ty, tx)) if abs(tx) + abs(ty) > 1e-9 else line.angle
                    line.setAngle((angle + 90) % 180 - 90)
        self.v_line.setPos((x, y))
        self.h_line.setPos((x, y))
        return x, y

    def rotate_drag(self, previous: QtCore.QPointF, point: QtCore.QPointF) -> None:
        """Turn the other two planes about this view's normal by the angle the mouse swept
        around the crosshair."""
        volume = self.session.volume
        if self.geometry_ is None or volume is None or volume.is_2d:
            return
        self.activated.emit(self.plane)
        centre = self.planes.pivot(volume, self.session.cursor)
        if self.planes.centre is None or not np.array_equal(self.planes.centre, centre):
            self.planes.centre = centre.copy()  # turn about this exact point from now on
        v0, v1 = (volume.index_to_world(self.index_at(p)) - centre for p in (previous, point))
        normal = self._view_axes()[:, 2]
        v0, v1 = v0 - (v0 @ normal) * normal, v1 - (v1 @ normal) * normal
        if min(np.linalg.norm(v0), np.linalg.norm(v1)) < 2 * min(volume.spacing):
            return  # too close to the centre to tell an angle
        self.planes.rotate(self.plane, normal, oblique.swept_angle(normal, v0, v1))

    def _oblique_image(self, data: np.ndarray) -> np.ndarray:
        """The turned plane through the crosshair (trilinear), or its slab along the turned normal."""
        o, volume = self._oblique, self.session.volume
        if self._background is None:
            self._background = float(data.min()) if data.size else 0.0
        offsets = [self._w]
        if self.slab_mode != "off":
            half = slab.half_width(self.slab_mm, o.step)
            lo, hi = o.w_range
            offsets = [w for w in self._w + o.step * np.arange(-half, half + 1) if lo <= w <= hi] or offsets
        planes = [oblique.reslice(data, volume, o, w, order=1, cval=self._background) for w in offsets]
        if len(planes) == 1:
            return planes[0]
        return slab.project(np.stack(planes), self.slab_mode)[0]

    def _move_centre(self, world) -> None:
        """Put the planes' exact centre at a world point (kept inside the volume) and the cursor
        on the voxel holding it."""
        volume = self.session.volume
        ijk = np.clip(volume.world_to_index(world), -0.49, np.asarray(volume.size, float) - 0.51)
        before = self.session.cursor.copy()
        self.planes.centre = volume.index_to_world(ijk)
        self.session.set_cursor(ijk)  # the views follow the cursor's event to the new centre ...
        if np.array_equal(before, self.session.cursor):
            self.planes.moved.emit()  # ... or this one, within the same voxel

    def _shows(self, m: Measurement) -> bool:
        """A measurement is drawn on the slice it was made on; one made on a turned plane (and any
        measurement, on a turned view) wherever all its points lie within half a pixel of the plane."""
        if self._oblique is None and m.slice_index >= 0:
            return m.plane == self.plane and m.slice_index == self._slice_index
        if self._oblique is not None:
            return bool(np.all(np.abs(m.points @ self._oblique.normal - self._w) <= 0.5 * self._oblique.pixel))
        k = self.session.volume.world_to_index(m.points)[:, self.geometry_.normal_axis]
        return bool(np.all(np.abs(k - self._slice_index) <= 0.5))
