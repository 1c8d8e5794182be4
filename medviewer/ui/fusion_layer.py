"""The fused image drawn over a slice view (the session's `fusion`, core/fusion.py).

One RGBA ImageItem per SliceView, over the heat maps and under the label layers. On every slice
the view shows (`render()`, called from `SliceView._show_slice`), the moving image is resampled
onto the view plane's pixel grid in world mm — the voxel grid's slice, or the turned plane of an
oblique view (core/oblique.py) — and composed with the fixed plane (overlay, checkerboard,
difference); then the view's display rotation/flip is applied like to every other layer. The
moving plane is cached per plane and fusion version, so a window or opacity change only
recomposes. Hidden while the fusion is off.
"""
from __future__ import annotations

import numpy as np

from medviewer.core import oblique
from medviewer.ui.qt import QtCore, pg


class FusionLayer:
    def __init__(self, view) -> None:
        self.view = view
        self.item = pg.ImageItem(axisOrder="row-major")
        self.item.setZValue(8)  # over the image and heat maps (5), under the label layers (11+)
        self.item.setVisible(False)
        view.viewbox.addItem(self.item)
        self._cache: tuple | None = None  # (key, moving plane)
        self._lut = np.zeros((256, 4), np.uint8)  # the colour table of the picture shown
        self.fusion = view.session.fusion
        self.fusion.changed.connect(self.render)
        view.session.window_changed.connect(self._on_window)
        view.destroyed.connect(self._detach)  # a compare pane's view may go before its session

    def _detach(self, *_) -> None:
        self.fusion.changed.disconnect(self.render)
        self.view.session.window_changed.disconnect(self._on_window)

    def _on_window(self, *_) -> None:
        if self.view._lut16 is None:  # an int16 image's new window redraws the whole slice, this layer too
            self.render()

    def rgba(self) -> np.ndarray:
        """The picture shown, as (rows, cols, 4) uint8 RGBA in display order."""
        return self._lut[self.item.image]

    def pixel_grid(self):
        """(origin, axis_u, axis_v, shape, (column mm, row mm)) of the plane the view shows, before
        its display rotation/flip: world mm of pixel (0, 0)'s centre and of one step along a row
        and a column."""
        view, volume = self.view, self.view.session.volume
        o = view.oblique_plane
        if o is not None:
            r, d, _ = o.axes.T
            origin = o.world(0.5 * o.pixel, 0.5 * o.pixel, view.plane_offset)
            return origin, o.pixel * r, o.pixel * d, (o.n_rows, o.n_cols), (o.pixel, o.pixel)
        g, k = view.geometry_, view._slice_index
        origin = volume.index_to_world(g.index_from_pixel(0, 0, k))
        u = volume.index_to_world(g.index_from_pixel(1, 0, k)) - origin
        v = volume.index_to_world(g.index_from_pixel(0, 1, k)) - origin
        return origin, u, v, (g.n_v, g.n_h), (g.h_spacing, g.v_spacing)

    def fixed_plane(self) -> np.ndarray:
        """The fixed image's values on the same plane and grid (float32)."""
        view, volume = self.view, self.view.session.volume
        o = view.oblique_plane
        if o is not None:
            return oblique.reslice(volume.data, volume, o, view.plane_offset, order=1)
        return view.geometry_.slice(volume.data, view._slice_index).astype(np.float32)

    def moving_plane(self) -> tuple[np.ndarray, tuple[float, float]]:
        origin, u, v, shape, pixel_mm = self.pixel_grid()
        key = (self.fusion.version, tuple(np.round(origin, 9)), tuple(np.round(u, 9)), tuple(np.round(v, 9)), shape)
        if self._cache is None or self._cache[0] != key:
            self._cache = (key, self.fusion.plane(self.view.session.volume, origin, u, v, shape))
        return self._cache[1], pixel_mm

    def render(self) -> None:
        view = self.view
        if (not self.fusion.active or view.geometry_ is None or view._slice_index < 0
                or view.session.volume is None):
            self.item.setVisible(False)
            self._cache = None
            return
        moving, pixel_mm = self.moving_plane()
        fixed = None if self.fusion.mode == "overlay" else self.fixed_plane()  # an overlay needs only the moving
        indices, self._lut = self.fusion.indexed(fixed, moving, view.session.window, pixel_mm)
        if view.oblique_plane is None:
            indices = view._transform(indices)
        # uint8 indices with a 256-row table and no levels: pyqtgraph's indexed-colour fast path
        self.item.setLookupTable(self._lut)
        self.item.setLevels(None)
        self.item.setImage(np.ascontiguousarray(indices), autoLevels=False)
        w, h = view._display_extent()
        self.item.setRect(QtCore.QRectF(0, 0, w, h))
        self.item.setVisible(True)
