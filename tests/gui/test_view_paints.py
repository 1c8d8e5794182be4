"""A slice change paints each view that changed once (issue 14: the text overlay used to be a
translucent child widget, which made Qt paint every view but the first a second time: two linked
compare panes cost 2.1-2.4x one pane instead of under 2x). The overlay's text is still painted:
the slice number changes on screen."""
import numpy as np

from medviewer.ui.qt import QtCore, QtWidgets
from tests.gui.test_main_window import grab


class _PaintCounter(QtCore.QObject):
    def __init__(self, widget):
        super().__init__()
        self.count = 0
        widget.installEventFilter(self)

    def eventFilter(self, obj, ev):
        if ev.type() == QtCore.QEvent.Paint:
            self.count += 1
        return False


def _settle(app):
    for _ in range(5):
        app.processEvents()


def test_a_crosshair_move_paints_each_view_once(demo_window):
    win = demo_window(1400, 850)
    win.set_layout("1x3")
    app = QtWidgets.QApplication.instance()
    _settle(app)
    views = [win.grid.views[p] for p in ("axial", "coronal", "sagittal")]
    counters = [_PaintCounter(v.graphics.viewport()) for v in views]
    moves = 6
    for k in range(moves):
        cursor = win.session.cursor.copy()
        cursor += (3, 3, 1)  # every view shows another slice
        win.session.set_cursor(cursor)
        _settle(app)
    assert [c.count for c in counters] == [moves] * 3


def test_the_slice_number_is_painted_over_the_image(demo_window):
    win = demo_window(1000, 700)
    win.set_layout("single", "axial")
    view = win.grid.views["axial"]
    app = QtWidgets.QApplication.instance()
    _settle(app)
    top_left = lambda: grab(view)[2:24, 2:160].astype(int)  # noqa: E731  where "Axial k / n" is drawn
    before = top_left()
    assert (before.max(axis=-1) > 120).sum() > 30  # text, not the black background
    view.set_slice((int(win.session.cursor[2]) + 5) % win.session.volume.shape[0])
    _settle(app)
    assert np.abs(top_left() - before).sum() > 0  # the number changed on screen
