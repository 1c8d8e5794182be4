"""One slice view (axial, coronal or sagittal) of the session's volume, in physical millimetres.

Mouse: left click/drag moves the crosshair (or places measurement points), wheel scrolls slices,
Ctrl+wheel zooms, middle drag pans, right drag changes window (horizontal) and level (vertical),
Ctrl+Shift+left drag (or the "rotate" tool) turns the other two MPR planes about this view's
normal. Keys: arrows / Page Up / Page Down scroll, F fits the image to the view.

Unrotated, a view shows the voxel grid (core/slicing.py: numpy views, today's fast path). Once
its plane is turned (session.planes, core/oblique.py) it reslices a plane through the crosshair
with trilinear interpolation (labels: nearest voxel); clicks, the hover probe, measurements and
paint go through the same plane <-> world mapping.
"""
from __future__ import annotations

import numpy as np

from medviewer.core.display import Window
from medviewer.core.measurements import Measurement
from medviewer.core import oblique, slab
from medviewer.core.session import Session
from medviewer.core.slicing import PlaneGeometry, plane_geometry
from medviewer.ui.fusion_layer import FusionLayer
from medviewer.ui.qt import Qt, QtCore, QtGui, QtWidgets, Signal, pg
from medviewer.ui.oblique_mpr import ObliqueMpr
from medviewer.ui.view_overlay import OverlayGraphicsView, ViewOverlay

CROSSHAIR_COLOURS = {"axial": (255, 80, 80), "coronal": (80, 200, 80), "sagittal": (90, 140, 255)}
GREY = np.repeat(np.arange(256, dtype=np.uint8)[:, None], 3, axis=1)
GREY_INVERTED = GREY[::-1].copy()


def outline(plane: np.ndarray) -> np.ndarray:
    """Keep only label voxels on a boundary (a 4-neighbour holds another value)."""
    edge = np.zeros(plane.shape, bool)
    edge[1:, :] |= plane[1:, :] != plane[:-1, :]
    edge[:-1, :] |= plane[:-1, :] != plane[1:, :]
    edge[:, 1:] |= plane[:, 1:] != plane[:, :-1]
    edge[:, :-1] |= plane[:, :-1] != plane[:, 1:]
    edge[[0, -1], :] = True
    edge[:, [0, -1]] = True
    return np.where(edge, plane, 0).astype(plane.dtype, copy=False)


_INT16_VALUES = np.arange(65536, dtype=np.uint16).view(np.int16).astype(np.float32)


def window_table_int16(window: Window, invert: bool) -> np.ndarray:
    """Grey level (uint8) of every int16 value, indexed by the value's uint16 bit pattern."""
    scale = 255.0 / max(window.width, 1e-6)
    table = np.clip((_INT16_VALUES - window.low) * scale, 0, 255).astype(np.uint8)
    return 255 - table if invert else table


_EMPTY = np.zeros((1, 1), np.uint8)
ROTATE_MODIFIERS = Qt.ControlModifier | Qt.ShiftModifier


class _ViewBox(pg.ViewBox):
    """Routes mouse gestures to the owning SliceView the way radiology viewers do."""

    def __init__(self, owner: "SliceView"):
        super().__init__(lockAspect=True, invertY=True, enableMenu=False)
        self.owner = owner

    def wheelEvent(self, ev, axis=None):
        if ev.modifiers() & Qt.ControlModifier:
            super().wheelEvent(ev, axis)
        else:
            delta = ev.delta() if hasattr(ev, "delta") else ev.angleDelta().y()
            self.owner.scroll(1 if delta > 0 else -1)
            ev.accept()

    def mouseDragEvent(self, ev, axis=None):
        if ev.button() == Qt.MiddleButton:
            super().mouseDragEvent(ev, axis)  # pan
        elif ev.button() == Qt.RightButton:
            ev.accept()
            d = ev.screenPos() - ev.lastScreenPos()
            self.owner.drag_window(d.x(), d.y())
        elif ev.button() == Qt.LeftButton:
            ev.accept()
            point = self.mapSceneToView(ev.scenePos())
            if (ev.modifiers() & ROTATE_MODIFIERS) == ROTATE_MODIFIERS or (
                    self.owner.tool == "rotate" and not self.owner.annotating()):
                self.owner.rotate_drag(self.mapSceneToView(ev.lastScenePos()), point)
            elif self.owner.annotating():
                if ev.isStart():  # the drag is reported once the mouse has moved: start where it was pressed
                    self.owner.annotate("press", self.mapSceneToView(ev.buttonDownScenePos()))
                self.owner.annotate("release" if ev.isFinish() else "drag", point)
            else:
                self.owner.left_at(point, dragging=not ev.isStart())
        else:
            ev.ignore()

    def mouseClickEvent(self, ev):
        if ev.button() == Qt.LeftButton:
            ev.accept()
            point = self.mapSceneToView(ev.scenePos())
            if self.owner.annotating():
                self.owner.annotate("double" if ev.double() else "click", point)
            else:
                self.owner.left_at(point, dragging=False)
        else:
            ev.ignore()


class SliceView(ObliqueMpr, QtWidgets.QWidget):
    hovered = Signal(object)  # a Session.probe() dict for the voxel under the mouse
    activated = Signal(str)  # the plane, when the user works in this view
    tool_set = Signal(str)  # the view's mouse tool changed (navigate, distance, angle, rotate)

    def __init__(self, session: Session, plane: str, parent=None):
        super().__init__(parent)
        self.session = session
        self.plane = plane
        self.geometry_: PlaneGeometry | None = None
        self.tool = "navigate"  # or "distance", "angle"
        self._pending: list[np.ndarray] = []  # measurement points being placed (world mm)
        self._slice_index = -1
        self._measure_items: list = []
        self.rotation = 0  # quarter turns, 2D images only
        self.flip_h = False
        self.slab_mode = "off"  # or "mip", "minip", "average" (core/slab.py)
        self.slab_mm = 0.0
        self.planes = session.planes  # the MPR planes' rotations, shared by the views
        self._oblique: oblique.ObliquePlane | None = None  # this view's plane, when turned
        self._w = 0.0  # the oblique plane's offset along its normal (world mm)
        self._background: float | None = None  # the image's minimum: outside the volume
        self._line_version = -1  # planes.version the crosshair lines' angles were set for

        self.graphics = OverlayGraphicsView(self)
        self.graphics.setFocusPolicy(Qt.NoFocus)
        self.viewbox = _ViewBox(self)
        self.graphics.setCentralItem(self.viewbox)
        self.image_item = pg.ImageItem(axisOrder="row-major")
        self.image_item.setLookupTable(GREY)
        self.label_item = pg.ImageItem(axisOrder="row-major")
        self.label_item.setZValue(10)
        self.preview_item = pg.ImageItem(axisOrder="row-major")  # a tool's preview (region growing)
        self.preview_item.setZValue(19)
        table = np.zeros((256, 4), np.uint8)
        table[1] = (255, 215, 0, 150)
        self.preview_item.setLookupTable(table)
        self.viewbox.addItem(self.image_item)
        self.viewbox.addItem(self.label_item)
        self.viewbox.addItem(self.preview_item)
        colour = CROSSHAIR_COLOURS.get(plane, (255, 255, 0))
        pen = pg.mkPen(colour, width=1)
        self.h_line = pg.InfiniteLine(angle=0, movable=False, pen=pen)
        self.v_line = pg.InfiniteLine(angle=90, movable=False, pen=pen)
        for line in (self.h_line, self.v_line):
            line.setZValue(20)
            self.viewbox.addItem(line, ignoreBounds=True)
        self.overlay = ViewOverlay(self.graphics, plane.capitalize(), colour)
        self.graphics.scene().sigMouseMoved.connect(self._mouse_moved)
        self.viewbox.sigRangeChanged.connect(lambda *_: self.overlay.set_scale(self.pixels_per_mm()))
        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.graphics)
        self.setFocusPolicy(Qt.StrongFocus)
        self.setMinimumSize(120, 120)

        self._labels: np.ndarray | None = None
        self._lut16: np.ndarray | None = None
        self._layer_items: list = []  # (LabelMap, ImageItem, callbacks) per label map, bottom first
        self._heat_items: list = []  # (HeatMap, ImageItem, callback), under the label layers
        self.label_outline = False
        self._threshold_preview: tuple[float, float] | None = None
        self.annotator = None  # the window's AnnotationController, when annotation tools are in use
        self.fusion_layer = FusionLayer(self)  # another image fused over this one (session.fusion)
        session.label_layers_changed.connect(self._rebuild_label_layers)
        session.heatmaps_changed.connect(self._rebuild_heatmaps)
        session.volume_changed.connect(self._on_volume)
        session.image_replaced.connect(self._on_image_replaced)
        session.cursor_changed.connect(self._on_cursor)
        session.window_changed.connect(self._on_window)
        session.measurements_changed.connect(self._draw_measurements)
        session.image_display.display_changed.connect(self._on_image_display)
        session.preview_changed.connect(self._render_preview)
        self.planes.changed.connect(self._on_planes)
        self.planes.moved.connect(lambda: self._on_cursor(self.session.cursor))
        self._on_image_display()
        if session.volume is not None:
            self._on_volume()
            self._on_cursor(session.cursor)
            self._on_window(session.window, session.invert)

    # --- model -> view ----------------------------------------------------------------
    def _on_volume(self) -> None:
        volume = self.session.volume
        self.geometry_ = plane_geometry(volume, self.plane)
        self._slice_index = -1
        self._labels = None
        self._lut16 = None
        self._background = None
        self._line_version = -1
        self.label_item.clear()
        self.image_item.clear()
        self._pending.clear()
        self._oblique = self._oblique_plane()
        self._update_title()
        self.overlay.show_scale_bar = volume.spacing_known  # no mm bar over pixels of unknown size
        self._set_letters()
        self.fit()

    def _on_image_replaced(self) -> None:
        """Another volume on the same grid (the volume slider): redraw this slice's image; the
        slice, zoom, pan and window stay."""
        volume = self.session.volume
        self._background = None  # other values outside a turned plane's volume
        if self.geometry_ is None or self._slice_index < 0:
            return
        if (self._lut16 is not None) != (volume.data.dtype == np.int16 and not volume.is_rgb):
            self._on_window(self.session.window, self.session.invert)  # another type: another table
        self._show_slice()

    def _set_rect(self) -> None:
        w, h = self._display_extent()
        rect = QtCore.QRectF(0, 0, w, h)
        for item in ([self.image_item, self.label_item, self.preview_item] + [it for _, it, _ in self._layer_items]
                     + [it for _, it, _ in self._heat_items]):
            if item.image is not None:
                item.setRect(rect)

    def _display_extent(self) -> tuple[float, float]:
        if self._oblique is not None:
            return self._oblique.extent_mm
        g = self.geometry_
        w, h = g.extent_mm
        return (h, w) if self.rotation % 2 else (w, h)

    def _transform(self, plane: np.ndarray) -> np.ndarray:
        if self.flip_h:
            plane = plane[:, ::-1]
        if self.rotation:
            plane = np.rot90(plane, -self.rotation)  # clockwise quarter turns
        return plane

    def _on_cursor(self, cursor) -> None:
        g = self.geometry_
        if g is None:
            return
        if self._oblique is not None:
            w = float(self.planes.pivot(self.session.volume, cursor) @ self._oblique.normal)
            if self._slice_index < 0 or abs(w - self._w) > 1e-6:
                self._w = w
                self._slice_index = int(g.pixel_from_index(cursor)[2])
                self._show_slice()
            self._crosshair(cursor)
            self.overlay.set_slice(*self._oblique.slice_number(self._w))
            return
        col, row, k = g.pixel_from_index(cursor)
        if int(k) != self._slice_index:
            self._slice_index = int(k)
            self._show_slice()
        if self.planes.is_rotated():
            self._crosshair(cursor)
        else:  # today's path
            x, y = self._mm_from_pixel(col, row)
            self.v_line.setPos(x)
            self.h_line.setPos(y)
        self.overlay.set_slice(self._slice_index, g.n_slices)

    def _image_plane(self) -> np.ndarray:
        """The image of the current slice, or its slab (labels and heat maps stay the one slice)."""
        g, volume = self.geometry_, self.session.volume
        data = volume.data
        if self._oblique is not None:
            plane = self._oblique_image(data)
        elif self.slab_mode == "off":
            return g.slice(data, self._slice_index)
        else:
            plane = slab.slab(data, g, self._slice_index, self.slab_mode, self.slab_mm, volume.spacing[g.normal_axis])
        if self._lut16 is not None and plane.dtype != np.int16:  # interpolated: int16 for the window table
            plane = np.rint(plane).astype(np.int16)
        return plane

    def _plane_of(self, data: np.ndarray, order: int = 0) -> np.ndarray:
        """A layer (labels: order 0, heat maps: order 1) on this view's plane, as displayed."""
        if self._oblique is not None:
            return oblique.reslice(data, self.session.volume, self._oblique, self._w, order=order)
        return self._transform(self.geometry_.slice(data, self._slice_index))

    def set_slab(self, mode: str, thickness_mm: float) -> None:
        """Show a MIP / MinIP / average slab of thickness_mm around the current slice; mode "off"
        or thickness 0 shows the plain slice."""
        if mode not in slab.MODES:
            raise ValueError(f"unknown slab mode {mode!r}; use one of {slab.MODES}")
        thickness_mm = max(0.0, float(thickness_mm))
        if thickness_mm == 0:
            mode = "off"
        if (mode, thickness_mm) == (self.slab_mode, self.slab_mm):
            return
        self.slab_mode, self.slab_mm = mode, thickness_mm
        self._update_title()
        if self.geometry_ is not None and self._slice_index >= 0:
            self._show_slice()
            self.overlay.set_slice(self._slice_index, self.geometry_.n_slices)

    def _update_title(self) -> None:
        volume = self.session.volume
        title = "Image" if volume is not None and volume.is_2d else self.plane.capitalize()
        if volume is not None and not volume.is_2d:
            if self.planes.is_rotated(self.plane):
                title += "  oblique"
            elif (degrees := oblique.obliquity_deg(volume)) >= 0.5:
                title += f"  acquisition grid, {degrees:.0f}° oblique"
        text = slab.describe(self.slab_mode, self.slab_mm)
        if text:
            title += f"  {text} (paint: centre)"  # labels are shown, and painted, on the centre slice
        self.overlay.title = title

    def _show_slice(self) -> None:
        g = self.geometry_
        volume = self.session.volume
        image = self._transform(self._image_plane())
        reshaped = self.image_item.image is None or self.image_item.image.shape[:2] != image.shape[:2]
        if self._lut16 is not None:  # int16: window through a 64K table to 8 bits (pyqtgraph's fast path)
            bits = image.view(np.uint16) if image.strides[-1] == image.itemsize else image.astype(np.uint16)
            self.image_item.setImage(self._lut16.take(bits), autoLevels=False, levels=None)
        else:
            w = self.session.window
            self.image_item.setImage(image, autoLevels=False, levels=(w.low, w.high))
        if self._threshold_preview is not None and not volume.is_rgb:
            low, high = self._threshold_preview
            raw = self._plane_of(volume.data, order=1)
            self.label_item.setImage(((raw >= low) & (raw <= high)).astype(np.uint8), autoLevels=False)
        elif self._labels is not None:
            # uint8 labels without levels take pyqtgraph's indexed-colour fast path (lut = colour table)
            self.label_item.setImage(self._plane_of(self._labels), autoLevels=False)
        for labels, item, _ in self._layer_items:
            self._render_layer(labels, item)
        for heatmap, item, _ in self._heat_items:
            self._render_heatmap(heatmap, item)
        self.fusion_layer.render()
        self._render_preview()
        if reshaped:  # the item maps pixels to mm through its rect, which needs the image size
            self._set_rect()
        self._draw_measurements()

    def _on_window(self, window: Window, invert: bool) -> None:
        volume = self.session.volume
        if volume is not None and volume.data.dtype == np.int16 and not volume.is_rgb:
            self._lut16 = window_table_int16(window, invert)
            self.image_item.setLookupTable(None)
            if self._slice_index >= 0:
                self._show_slice()
        else:
            self._lut16 = None
            rgb = volume is not None and volume.is_rgb
            self.image_item.setLookupTable(None if rgb else (GREY_INVERTED if invert else GREY))
            self.image_item.setLevels((window.low, window.high))
        self.overlay.set_window(window, self.session.volume.modality if self.session.volume else "")

    def _on_image_display(self) -> None:
        shown = self.session.image_display
        self.image_item.setVisible(shown.visible)
        self.image_item.setOpacity(shown.opacity)

    # --- label overlay (annotation layers plug in here) ----------------------------------
    def set_label_volume(self, labels: np.ndarray | None, lut: np.ndarray | None = None) -> None:
        """Show an integer label map (same grid as the image) through an RGBA colour table."""
        if labels is not None and labels.dtype != np.uint8:
            if labels.max(initial=0) > 255:
                raise ValueError("label values above 255 need a larger colour table")
            labels = labels.astype(np.uint8)
        self._labels = labels
        if labels is None:
            self.label_item.clear()
            return
        # 256 entries: pyqtgraph maps uint8 values onto the table by value * len / 256, so only a
        # full table gives label value v the colour in row v
        table = np.zeros((256, 4), np.uint8)
        table[: min(len(lut), 256)] = lut[:256]
        self.label_item.setLookupTable(table)
        self.label_item.setLevels(None)
        if self.geometry_ is not None and self._slice_index >= 0:
            self.label_item.clear()
            self._show_slice()

    # --- label map layers ------------------------------------------------------------------
    def _rebuild_label_layers(self) -> None:
        """One ImageItem per label map; its visibility and opacity mirror the map's DisplayState."""
        for labels, item, callbacks in self._layer_items:
            for event, callback in zip((labels.changed, labels.table_changed, labels.display_changed), callbacks):
                event.disconnect(callback)
            self.viewbox.removeItem(item)
        self._layer_items = []
        for z, labels in enumerate(self.session.label_maps):
            item = pg.ImageItem(axisOrder="row-major")
            item.setZValue(11 + z)
            item.setLookupTable(labels.table.lut())
            self.viewbox.addItem(item)

            def on_change(region, labels=labels, item=item):
                self._labels_changed(labels, item, region)

            def on_table(labels=labels, item=item):
                item.setLookupTable(labels.table.lut())

            def on_display(labels=labels, item=item):
                item.setVisible(labels.visible)
                item.setOpacity(labels.opacity)

            labels.changed.connect(on_change)
            labels.table_changed.connect(on_table)
            labels.display_changed.connect(on_display)
            on_display()
            self._layer_items.append((labels, item, (on_change, on_table, on_display)))
            if self.geometry_ is not None and self._slice_index >= 0:
                self._render_layer(labels, item)

    # --- heat map layers (probability, explanation, anomaly maps) ---------------------------
    def _rebuild_heatmaps(self) -> None:
        for heatmap, item, on_change in self._heat_items:
            heatmap.display_changed.disconnect(on_change)
            self.viewbox.removeItem(item)
        self._heat_items = []
        for z, heatmap in enumerate(self.session.heatmaps):
            item = pg.ImageItem(axisOrder="row-major")
            item.setZValue(5 + 0.01 * z)
            item.setLookupTable(heatmap.lut())
            self.viewbox.addItem(item)

            def on_change(heatmap=heatmap, item=item):
                item.setLookupTable(heatmap.lut())
                if self.geometry_ is not None and self._slice_index >= 0:
                    self._render_heatmap(heatmap, item)

            heatmap.display_changed.connect(on_change)
            self._heat_items.append((heatmap, item, on_change))
            if self.geometry_ is not None and self._slice_index >= 0:
                self._render_heatmap(heatmap, item)

    def _render_heatmap(self, heatmap, item) -> None:
        plane = self._plane_of(heatmap.data, order=1)
        if not heatmap.visible or plane.max(initial=-np.inf) < heatmap.threshold:
            item.setVisible(False)  # nothing above the threshold here: skip drawing the layer
            return
        reshaped = item.image is None or item.image.shape != plane.shape
        item.setImage(heatmap.indices(plane), autoLevels=False)
        item.setVisible(True)
        if reshaped:
            w, h = self._display_extent()
            item.setRect(QtCore.QRectF(0, 0, w, h))

    def _render_preview(self) -> None:
        preview = self.session.preview
        plane = None
        if preview is not None and self.geometry_ is not None and self._slice_index >= 0 and self._oblique is None:
            region, mask = preview
            plane = self.geometry_.box_slice(self.session.volume.shape, region, mask, self._slice_index)
        if plane is None or not plane.any():
            self.preview_item.setVisible(False)
            return
        plane = self._transform(plane)
        reshaped = self.preview_item.image is None or self.preview_item.image.shape != plane.shape
        self.preview_item.setImage(plane, autoLevels=False)
        self.preview_item.setVisible(True)
        if reshaped:
            w, h = self._display_extent()
            self.preview_item.setRect(QtCore.QRectF(0, 0, w, h))

    def _render_layer(self, labels, item) -> None:
        plane = self._plane_of(labels.data)
        if self.label_outline:
            plane = outline(plane)
        if not plane.any():  # an empty slice of this layer: a 1-pixel transparent image, nothing to blend
            plane = _EMPTY
        reshaped = item.image is None or item.image.shape != plane.shape
        item.setImage(plane, autoLevels=False)
        if reshaped:
            w, h = self._display_extent()
            item.setRect(QtCore.QRectF(0, 0, w, h))

    def _labels_changed(self, labels, item, region) -> None:
        if self.geometry_ is None or self._slice_index < 0:
            return
        if self._oblique is not None:
            if region is None or self._oblique.meets(self.session.volume, region, self._w):
                self._render_layer(labels, item)
            return
        axis = 2 - self.geometry_.normal_axis  # numpy axis of this view's normal
        sl = region[axis] if region is not None else slice(None)
        start, stop, _ = sl.indices(labels.data.shape[axis])
        if start <= self._slice_index < stop:
            self._render_layer(labels, item)

    def set_threshold_preview(self, limits: tuple[float, float] | None) -> None:
        """Show (or hide, with None) the voxels of this slice inside [low, high], as threshold paint will."""
        was_on, self._threshold_preview = self._threshold_preview is not None, limits
        if limits is None:
            if was_on:
                self.label_item.clear()
            return
        table = np.zeros((256, 4), np.uint8)
        table[1] = (255, 230, 0, 90)
        self.label_item.setLookupTable(table)
        self.label_item.setLevels(None)
        if self.geometry_ is not None and self._slice_index >= 0:
            self._show_slice()
            w, h = self._display_extent()
            self.label_item.setRect(QtCore.QRectF(0, 0, w, h))

    def set_outline(self, outline_mode: bool) -> None:
        self.label_outline = outline_mode
        if self.geometry_ is not None and self._slice_index >= 0:
            for labels, item, _ in self._layer_items:
                self._render_layer(labels, item)

    def set_label_visible(self, visible: bool, opacity: float = 1.0) -> None:
        self.label_item.setVisible(visible)
        self.label_item.setOpacity(opacity)

    # --- coordinates -------------------------------------------------------------------
    def _mm_from_pixel(self, col: float, row: float) -> tuple[float, float]:
        """View (mm) coordinates of the centre of geometry pixel (col, row)."""
        g = self.geometry_
        c, r = col, row
        if self.flip_h:
            c = g.n_h - 1 - c
        w, h = g.n_h, g.n_v
        for _ in range(self.rotation % 4):  # clockwise: (c, r) -> (h - 1 - r, c)
            c, r, w, h = h - 1 - r, c, h, w
        hs, vs = (g.v_spacing, g.h_spacing) if self.rotation % 2 else (g.h_spacing, g.v_spacing)
        return (c + 0.5) * hs, (r + 0.5) * vs

    def _view_xy(self, ijk) -> tuple[float, float]:
        """View coordinates (mm) of a continuous (x, y, z) index (projected on a turned plane)."""
        if self._oblique is not None:
            return self._oblique.view_xy(self.session.volume.index_to_world(ijk))[:2]
        return self._mm_from_pixel(*self.geometry_.pixel_from_index(ijk)[:2])

    def index_at(self, point: QtCore.QPointF, inside: bool = False) -> np.ndarray:
        """Continuous (x, y, z) voxel index under a view-coordinate point (mm); inside=True
        clamps it to the volume (the crosshair, measurement points and tools never leave it)."""
        if self._oblique is not None:
            volume = self.session.volume
            ijk = volume.world_to_index(self._oblique.world(point.x(), point.y(), self._w))
            return np.clip(ijk, 0, np.asarray(volume.size, float) - 1) if inside else ijk
        g = self.geometry_
        rot = self.rotation % 4
        hs, vs = (g.v_spacing, g.h_spacing) if rot % 2 else (g.h_spacing, g.v_spacing)
        c, r = point.x() / hs - 0.5, point.y() / vs - 0.5
        w, h = (g.n_v, g.n_h) if rot % 2 else (g.n_h, g.n_v)
        for _ in range(rot):  # undo one clockwise turn: (c, r) <- (r, w - 1 - c)
            c, r, w, h = r, w - 1 - c, h, w
        if self.flip_h:
            c = g.n_h - 1 - c
        ijk = g.index_from_pixel(c, r, self._slice_index)
        if inside:
            ijk = np.clip(ijk, 0, np.asarray(self.session.volume.size, float) - 1)
        return ijk

    def pixels_per_mm(self) -> float:
        (x0, x1), _ = self.viewbox.viewRange()
        width = self.viewbox.width()
        return width / (x1 - x0) if x1 > x0 and width > 0 else 0.0

    # --- user actions ------------------------------------------------------------------
    def scroll(self, delta: int) -> None:
        if self.geometry_ is None:
            return
        self.activated.emit(self.plane)
        if self._oblique is None:
            self.session.move_along(self.geometry_.normal_axis, delta)
            return
        volume, o = self.session.volume, self._oblique  # along the turned normal, in world
        w = float(np.clip(self._w + delta * o.step, *o.w_range))
        self._move_centre(self.planes.pivot(volume, self.session.cursor) + (w - self._w) * o.normal)

    def set_slice(self, k: int) -> None:
        if self.geometry_ is not None:
            ijk = self.session.cursor.copy()
            ijk[self.geometry_.normal_axis] = k
            self.session.set_cursor(ijk)

    def fit(self) -> None:
        if self.geometry_ is not None:
            w, h = self._display_extent()
            self.viewbox.setRange(QtCore.QRectF(0, 0, w, h), padding=0.02)

    def zoom(self, factor: float) -> None:
        self.viewbox.scaleBy((1 / factor, 1 / factor))

    def drag_window(self, dx: float, dy: float) -> None:
        w = self.session.window
        scale = max(w.width, 1.0) / 256.0
        self.session.set_window(w.adjusted(dx * scale, dy * scale))

    def left_at(self, point: QtCore.QPointF, dragging: bool) -> None:
        if self.geometry_ is None:
            return
        self.activated.emit(self.plane)
        ijk = self.index_at(point, inside=True)
        if self.tool in ("navigate", "rotate"):  # a click with the rotate tool moves the crosshair
            if self.planes.is_rotated():
                self._move_centre(self.session.volume.index_to_world(ijk))
            else:
                self.session.set_cursor(ijk)
            return
        if dragging:
            return
        self._pending.append(self.session.volume.index_to_world(ijk))
        need = 2 if self.tool == "distance" else 3
        if len(self._pending) == need:
            turned = self._oblique is not None  # found again by position: slice_index -1
            m = Measurement(self.tool, np.array(self._pending), plane=self.plane + (" oblique" if turned else ""),
                            slice_index=-1 if turned else self._slice_index, calibrated=self.session.volume.spacing_known)
            self._pending.clear()
            self.session.add_measurement(m)
        else:
            self._draw_measurements()

    def show_preview(self, points) -> None:
        """Draw (or clear, with None) the outline of a shape being drawn; points are voxel indices."""
        if getattr(self, "_preview", None) is None:
            self._preview = pg.PlotDataItem(pen=pg.mkPen((255, 255, 255), width=1, style=Qt.DashLine))
            self._preview.setZValue(40)
            self.viewbox.addItem(self._preview, ignoreBounds=True)
        if not points:
            self._preview.setData([], [])
            return
        xy = np.array([self._view_xy(p) for p in points])
        self._preview.setData(xy[:, 0], xy[:, 1])

    def annotating(self) -> bool:
        return self.annotator is not None and self.annotator.active()

    def annotate(self, kind: str, point: QtCore.QPointF) -> None:
        if self.geometry_ is not None and self.session.volume is not None:
            self.activated.emit(self.plane)
            self.annotator.handle(self, kind, self.index_at(point, inside=True))

    def set_tool(self, tool: str) -> None:
        self.tool = tool
        self._pending.clear()
        self._draw_measurements()
        self.tool_set.emit(tool)

    def set_display_transform(self, rotation: int, flip_h: bool) -> None:
        self.rotation, self.flip_h = rotation % 4, flip_h
        if self.geometry_ is not None:
            self._show_slice()
            self._set_rect()
            self._on_cursor(self.session.cursor)
            self.fit()

    def _mouse_moved(self, scene_pos) -> None:
        if self.geometry_ is None or not self.viewbox.sceneBoundingRect().contains(scene_pos):
            return
        ijk = self.index_at(self.viewbox.mapSceneToView(scene_pos))
        self.hovered.emit(self.session.probe(np.round(ijk)))

    def keyPressEvent(self, ev: QtGui.QKeyEvent) -> None:
        steps = {Qt.Key_Up: 1, Qt.Key_Right: 1, Qt.Key_Down: -1, Qt.Key_Left: -1}
        if ev.key() in steps:
            self.scroll(steps[ev.key()])
        elif ev.key() in (Qt.Key_PageUp, Qt.Key_PageDown) and self.geometry_ is not None:
            step = max(1, self.geometry_.n_slices // 10)
            self.scroll(step if ev.key() == Qt.Key_PageUp else -step)
        elif ev.key() == Qt.Key_F:
            self.fit()
        elif self.annotator is not None and self.annotator.key(ev.key()):
            pass
        elif ev.key() == Qt.Key_Escape:
            self._pending.clear()
            self._draw_measurements()
        else:
            super().keyPressEvent(ev)

    # --- measurements drawn on this slice ----------------------------------------------
    def _draw_measurements(self) -> None:
        if not self._measure_items and not self._pending and not self.session.measurements:
            return
        for item in self._measure_items:
            self.viewbox.removeItem(item)
        self._measure_items.clear()
        if self.geometry_ is None or self.session.volume is None:
            return
        shown = [(m.points, m.label()) for m in self.session.measurements if self._shows(m)]
        if self._pending:
            shown.append((np.array(self._pending), ""))
        volume = self.session.volume
        for points, text in shown:
            xy = np.array([self._view_xy(volume.world_to_index(p)) for p in points])
            line = pg.PlotDataItem(xy[:, 0], xy[:, 1], pen=pg.mkPen((255, 220, 0), width=2),
                                   symbol="o", symbolSize=6, symbolBrush=(255, 220, 0))
            line.setZValue(30)
            self.viewbox.addItem(line, ignoreBounds=True)
            self._measure_items.append(line)
            if text:
                label = pg.TextItem(text, color=(255, 220, 0), anchor=(0, 1))
                label.setPos(*xy[-1])
                label.setZValue(31)
                self.viewbox.addItem(label, ignoreBounds=True)
                self._measure_items.append(label)

    def resizeEvent(self, ev) -> None:
        super().resizeEvent(ev)
        self.overlay.set_scale(self.pixels_per_mm())
