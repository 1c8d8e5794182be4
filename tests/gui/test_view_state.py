"""View state lives on the model (issue 11): a hidden label map stays hidden when another map is
added, the layer panel and the views mirror the layers' DisplayState, a brush stroke stays one undo
step once the stack is full, a newer map of the same method replaces the older one on screen, and
an exception in a slot is reported to the user while the window keeps running."""
import numpy as np
import pytest

from medviewer.ui.qt import QtCore, QtWidgets
from tests.conftest import DEMO
from tests.gui.test_annotation import _drag
from tests.gui.test_main_window import grab, screen_xy


@pytest.fixture
def win(demo_window):
    return demo_window(1400, 850)


def _rows(panel):
    return {panel.list.item(r).text(): panel.list.item(r).checkState() == QtCore.Qt.Checked
            for r in range(panel.list.count())}


def _items_of(view, labels):
    return [item for lm, item, _ in view._layer_items if lm is labels]


def test_a_hidden_label_map_stays_hidden_when_another_is_added(win, qtbot):
    session, view = win.session, win.grid.views["axial"]
    z = int(session.cursor[2])
    first = session.add_label_map(name="first")
    first.paint((slice(z, z + 1), slice(200, 240), slice(200, 240)), np.ones((1, 40, 40), bool), 1)
    panel = win.layer_panel
    qtbot.waitUntil(lambda: "Labels: first" in _rows(panel), timeout=30_000)
    red = lambda: grab(view)[tuple(int(v) for v in screen_xy(view, (220, 220, z))[::-1])]  # noqa: E731
    assert int(red()[0]) - int(red()[2]) > 40
    row = next(r for r in range(panel.list.count()) if panel.list.item(r).text() == "Labels: first")
    panel.list.item(row).setCheckState(QtCore.Qt.Unchecked)  # the user hides it in the panel
    assert not first.visible
    assert abs(int(red()[0]) - int(red()[2])) < 10
    session.add_label_map(name="second")  # the views rebuild their label items
    qtbot.waitUntil(lambda: "Labels: second" in _rows(panel), timeout=30_000)
    assert not first.visible and _rows(panel)["Labels: first"] is False and _rows(panel)["Labels: second"]
    for v in win.grid.views.values():
        assert not any(item.isVisible() for item in _items_of(v, first))
    assert abs(int(red()[0]) - int(red()[2])) < 10  # still not drawn
    first.set_display(visible=True, opacity=0.5)  # a script (or another panel) shows it again
    assert _rows(panel)["Labels: first"] is True
    assert all(item.isVisible() and item.opacity() == 0.5 for item in _items_of(view, first))


def test_the_image_layer_mirrors_its_display_state(win, qtbot):
    panel, view = win.layer_panel, win.grid.views["axial"]
    qtbot.waitUntil(lambda: any(t.startswith("Image: ") for t in _rows(panel)), timeout=30_000)
    row = next(r for r in range(panel.list.count()) if panel.list.item(r).text().startswith("Image: "))
    panel.list.setCurrentRow(row)
    shown = grab(view).mean()
    panel.opacity.setValue(40)
    assert win.session.image_display.opacity == pytest.approx(0.4)
    assert view.image_item.opacity() == pytest.approx(0.4)
    panel.list.item(row).setCheckState(QtCore.Qt.Unchecked)
    assert not win.session.image_display.visible and not view.image_item.isVisible()
    assert grab(view).mean() < shown / 3  # only the overlay text is left
    win.open_paths([str(DEMO / "ct_chest_20")], wait=True)  # a new image is shown
    assert win.session.image_display.visible and view.image_item.isVisible()


def test_a_stroke_is_one_undo_step_once_the_stack_is_full(win, qtbot):
    session, view = win.session, win.grid.views["axial"]
    z = int(session.cursor[2])
    labels = session.add_label_map()
    for k in range(labels.undo_stack.max_steps + 5):  # 200 steps and more: the stack is full
        labels.paint((slice(z, z + 1), slice(10, 11), slice(k, k + 1)), np.ones((1, 1, 1), bool), 1 + k % 2)
    assert len(labels.undo_stack) == labels.undo_stack.max_steps
    before = labels.data.copy()
    ctl = win.annotation.controller
    ctl.set_tool("brush")
    ctl.radius_mm = 3.0
    _drag(qtbot, view, [(150 + 10 * i, 300, z) for i in range(12)])  # one stroke, many dabs
    assert (labels.data != before).sum() > 500
    assert len(labels.undo_stack) == labels.undo_stack.max_steps
    win.annotation.undo()
    assert np.array_equal(labels.data, before)  # the whole stroke, and only it
    win.annotation.redo()
    assert (labels.data != before).sum() > 500


def test_a_new_map_of_the_same_method_replaces_the_previous_one(win, qtbot):
    from medviewer.core.heatmap import HeatMap

    session = win.session
    shape = session.volume.shape
    first = session.add_heatmap(HeatMap(np.full(shape, 0.8, np.float32), "model #1 Grad-CAM", method="Grad-CAM"))
    other = session.add_heatmap(HeatMap(np.full(shape, 0.5, np.float32), "model #2 occlusion", method="occlusion"))
    second = session.add_heatmap(HeatMap(np.full(shape, 0.9, np.float32), "model #3 Grad-CAM", method="Grad-CAM"))
    assert session.heatmaps == [other, second] and first not in session.heatmaps
    view = win.grid.views["axial"]
    assert [h for h, _, _ in view._heat_items] == [other, second]


def test_an_exception_in_a_slot_is_reported_and_the_window_keeps_running(win, qtbot):
    from medviewer.ui import errors

    button = QtWidgets.QPushButton("boom", win)

    def broken_slot():
        raise ZeroDivisionError("a bug in a slot")

    button.clicked.connect(broken_slot)
    errors.install(win)
    try:
        with qtbot.waitSignal(win.problem, timeout=30_000) as said:
            button.click()
    finally:
        errors.uninstall()
    text = said.args[0]
    assert "Something went wrong" in text and "ZeroDivisionError" in text and "Traceback" not in text
    log = text.rsplit("Details: ", 1)[-1]
    assert "ZeroDivisionError: a bug in a slot" in open(log).read()
    win.grid.views["axial"].scroll(1)  # still working
    assert win.session.volume is not None and win.isVisible()
