"""Text and scale bar painted over a slice view: orientation letters, slice number, window, mm bar.

They are painted by the view's own QGraphicsView, in its foreground pass (`OverlayGraphicsView`),
not by a child widget on top of it: a translucent child widget made Qt repaint the viewport under
it as a second paint pass whenever its text changed in another pass than the scene (a slice change
painted every view but the first twice; two linked compare panes cost 2.1-2.4x one pane). Changing
the text asks the scene for an update, which Qt merges with the scene's own changes into one paint.
"""
from __future__ import annotations

from medviewer.ui.qt import Qt, QtCore, QtGui, pg

NICE_LENGTHS = (1, 2, 5, 10, 20, 50, 100, 200, 500)


def scale_bar_length(pixels_per_mm: float, target_px: float = 100.0) -> float:
    """The longest 'nice' length (mm) whose bar is at most target_px long."""
    if pixels_per_mm <= 0:
        return 0.0
    fitting = [n for n in NICE_LENGTHS if n * pixels_per_mm <= target_px]
    return float(fitting[-1] if fitting else NICE_LENGTHS[0])


class OverlayGraphicsView(pg.GraphicsView):
    """A pyqtgraph GraphicsView that paints its ViewOverlay over the scene in the same pass."""

    overlay: "ViewOverlay | None" = None

    def drawForeground(self, painter: QtGui.QPainter, rect) -> None:
        super().drawForeground(painter, rect)
        if self.overlay is not None:
            painter.save()
            painter.resetTransform()  # viewport pixels
            self.overlay.paint(painter, self.viewport().width(), self.viewport().height())
            painter.restore()


class ViewOverlay:
    def __init__(self, graphics: OverlayGraphicsView, title: str, colour: tuple[int, int, int]):
        self.graphics = graphics
        graphics.overlay = self
        self.title = title
        self.colour = QtGui.QColor(*colour)
        self.letters: tuple[str, str, str, str] | None = None
        self.slice_text = ""
        self.window_text = ""
        self.pixels_per_mm = 0.0
        self.show_scale_bar = True  # False for an image whose pixel spacing is unknown

    def update(self) -> None:
        """Repaint with the scene's next paint pass (merged with its own changes)."""
        scene = self.graphics.scene()
        if scene is not None:
            scene.update()

    def set_letters(self, letters) -> None:
        self.letters = letters
        self.update()

    def set_slice(self, index: int, count: int) -> None:
        self.slice_text = f"{self.title}  {index + 1} / {count}"
        self.update()

    def set_window(self, window, modality: str) -> None:
        self.window_text = f"W {window.width:.0f}  L {window.level:.0f}"
        self.update()

    def set_scale(self, pixels_per_mm: float) -> None:
        self.pixels_per_mm = pixels_per_mm
        self.update()

    def paint(self, p: QtGui.QPainter, w: int, h: int) -> None:
        p.setRenderHint(QtGui.QPainter.Antialiasing)
        font = p.font()
        font.setPointSize(10)
        font.setBold(True)
        p.setFont(font)
        p.setPen(self.colour)
        p.drawText(QtCore.QRect(6, 4, w - 12, 20), Qt.AlignLeft | Qt.AlignTop, self.slice_text)
        p.setPen(QtGui.QColor(230, 230, 230))
        p.drawText(QtCore.QRect(6, h - 24, w - 12, 20), Qt.AlignLeft | Qt.AlignBottom, self.window_text)
        if self.letters:
            left, right, top, bottom = self.letters
            p.setPen(QtGui.QColor(255, 235, 120))
            p.drawText(QtCore.QRect(4, 0, 30, h), Qt.AlignLeft | Qt.AlignVCenter, left)
            p.drawText(QtCore.QRect(w - 34, 0, 30, h), Qt.AlignRight | Qt.AlignVCenter, right)
            p.drawText(QtCore.QRect(0, 22, w, 20), Qt.AlignHCenter | Qt.AlignTop, top)
            p.drawText(QtCore.QRect(0, h - 22, w, 20), Qt.AlignHCenter | Qt.AlignBottom, bottom)
        length = scale_bar_length(self.pixels_per_mm, target_px=min(120.0, w / 4)) if self.show_scale_bar else 0
        if length:
            px = length * self.pixels_per_mm
            x1, y = w - 12, h - 14
            p.setPen(QtGui.QPen(QtGui.QColor(230, 230, 230), 2))
            p.drawLine(QtCore.QPointF(x1 - px, y), QtCore.QPointF(x1, y))
            p.drawLine(QtCore.QPointF(x1 - px, y - 4), QtCore.QPointF(x1 - px, y + 4))
            p.drawLine(QtCore.QPointF(x1, y - 4), QtCore.QPointF(x1, y + 4))
            p.drawText(QtCore.QRectF(x1 - px - 40, y - 22, px + 40, 16), Qt.AlignRight, f"{length:g} mm")
