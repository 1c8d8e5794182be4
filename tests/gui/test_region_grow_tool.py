"""Region growing in the viewer (issue 11, item 7): a click grows on a worker thread into a
preview, nothing is painted until it is accepted, other labels are never overwritten unless asked,
the parameters (mode, multiplier, 2D/3D, maximum volume) change the preview, and a running growth
can be cancelled."""
import threading

import numpy as np
import pytest

from medviewer.ui.qt import QtCore
from tests.gui.test_annotation import _click

SEED = (150, 250)  # the liver on the demo CT's middle slice (x, y)


@pytest.fixture
def win(demo_window):
    w = demo_window(1400, 850)
    w.grid.views["axial"].fit()
    return w


def _grow(qtbot, win, seed=SEED, **settings):
    view, ctl = win.grid.views["axial"], win.annotation.controller
    ctl.set_tool("grow")
    for key, value in settings.items():
        setattr(ctl.grow, key, value)
    z = int(win.session.cursor[2])
    _click(qtbot, view, (*seed, z))
    qtbot.waitUntil(lambda: not ctl.grow.growing and ctl.grow.result is not None, timeout=60_000)
    return ctl.grow


def test_a_click_shows_a_preview_and_nothing_is_painted_until_accepted(win, qtbot):
    session, view = win.session, win.grid.views["axial"]
    labels = session.add_label_map()
    before = labels.data.copy()
    steps = len(labels.undo_stack)
    grow = _grow(qtbot, win)
    result = grow.result
    assert grow.pending and result.voxels > 1000 and not result.stopped
    z = int(session.cursor[2])
    region = result.region
    assert region[0] == slice(z, z + 1)  # 2D by default: the clicked slice only
    assert np.array_equal(labels.data, before) and len(labels.undo_stack) == steps
    assert session.preview is not None and view.preview_item.isVisible()
    hu = session.volume.data[region][result.mask]
    low, high = result.interval
    assert hu.min() >= low and hu.max() <= high
    assert "mL" in win.annotation.panel.grow_box.status.text()
    qtbot.keyClick(view, QtCore.Qt.Key_Return)  # accept: one undo step
    painted = labels.data == session.active_value
    assert painted.sum() == result.voxels and session.preview is None and not view.preview_item.isVisible()
    assert len(labels.undo_stack) == steps + 1
    win.annotation.undo()
    assert np.array_equal(labels.data, before)


def test_escape_discards_the_preview(win, qtbot):
    labels = win.session.add_label_map()
    grow = _grow(qtbot, win)
    assert grow.pending
    qtbot.keyClick(win.grid.views["axial"], QtCore.Qt.Key_Escape)
    assert not grow.pending and win.session.preview is None and not labels.data.any()


@pytest.mark.parametrize("overwrite", [False, True])
def test_growing_never_overwrites_another_label_unless_asked(win, qtbot, overwrite):
    session = win.session
    z = int(session.cursor[2])
    labels = session.add_label_map()
    x, y = SEED
    square = np.ones((1, 6, 6), bool)
    labels.paint((slice(z, z + 1), slice(y + 8, y + 14), slice(x + 8, x + 14)), square, 1)  # inside the liver
    labels.paint((slice(z, z + 1), slice(y - 14, y - 8), slice(x - 14, x - 8)), square, 3)
    counts = {v: int((labels.data == v).sum()) for v in (1, 3)}
    session.set_active(labels, 2)
    win.annotation.panel.overwrite.setChecked(overwrite)
    grow = _grow(qtbot, win)
    region, mask = grow.result.region, grow.result.mask
    covered = {v: int((labels.data[region][mask] == v).sum()) for v in (1, 3)}
    assert covered[1] > 0 and covered[3] > 0  # the region reaches both labels
    grow.accept()
    after = {v: int((labels.data == v).sum()) for v in (1, 3)}
    if overwrite:  # the explicit choice: painted over
        assert after == {v: counts[v] - covered[v] for v in (1, 3)}
    else:
        assert after == counts
    assert (labels.data == 2).sum() == grow_painted(mask, covered, overwrite)


def grow_painted(mask, covered, overwrite):
    return int(mask.sum()) - (0 if overwrite else covered[1] + covered[3])


def test_parameters_regrow_the_preview_and_the_maximum_volume_flags_a_leak(win, qtbot):
    grow = _grow(qtbot, win)
    small = grow.result.voxels
    win.annotation.panel.grow_box.in_3d.setChecked(True)  # regrows from the same seed, in 3D
    qtbot.waitUntil(lambda: not grow.growing and grow.result is not None and grow.result.voxels != small,
                    timeout=60_000)
    assert grow.result.region[0].stop - grow.result.region[0].start > 1
    box = win.annotation.panel.grow_box
    box.max_volume.setValue(5.0)  # mL: the liver is far bigger
    qtbot.waitUntil(lambda: not grow.growing and grow.result is not None and bool(grow.result.stopped),
                    timeout=60_000)
    assert grow.result.volume_ml <= 5.0 + 1e-6 and "maximum volume" in box.status.text()


def test_growing_runs_off_the_gui_thread_and_can_be_cancelled(win, qtbot, monkeypatch):
    from medviewer.core.errors import Cancelled
    from medviewer.processing import region_growing

    ran_on, started, release = [], threading.Event(), threading.Event()
    real = region_growing.grow_region

    def held(data, spacing, seed, params, progress=None, cancel=None):
        ran_on.append(threading.current_thread())
        progress(0.3, "held by the test")
        started.set()
        assert release.wait(60)
        if cancel():
            raise Cancelled("region growing cancelled")
        return real(data, spacing, seed, params, progress=progress, cancel=cancel)

    monkeypatch.setattr(region_growing, "grow_region", held)
    labels = win.session.add_label_map()
    view, ctl = win.grid.views["axial"], win.annotation.controller
    ctl.set_tool("grow")
    _click(qtbot, view, (*SEED, int(win.session.cursor[2])))
    assert started.wait(30)
    box = win.annotation.panel.grow_box
    qtbot.waitUntil(lambda: box.progress.value() == 300, timeout=30_000)  # progress reaches the panel
    assert ran_on[0] is not threading.current_thread() and ctl.grow.growing and box.cancel_button.isEnabled()
    win.grid.views["axial"].scroll(1)  # the window works meanwhile
    box.cancel_button.click()
    release.set()
    qtbot.waitUntil(lambda: not ctl.grow.growing, timeout=30_000)
    assert "cancelled" in box.status.text() and not ctl.grow.pending
    assert win.session.preview is None and not labels.data.any()
