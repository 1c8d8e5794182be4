"""Autosave and label statistics of a large label map run off the GUI thread: the call returns at
once, the work lands later, and edits made meanwhile are saved by the next autosave."""
import time

import numpy as np

from medviewer.ui.qt import QtCore


def test_autosave_and_statistics_do_not_block_the_window(demo_window, qtbot):
    from medviewer.io import recovery

    win = demo_window()
    session = win.session
    # a big label map: the demo CT stacked to 300 slices would be the real case; 20 x 512^2 here,
    # filled with a pattern that does not compress to nothing
    labels = session.add_label_map()
    rng = np.random.default_rng(0)
    labels.set_region((slice(None),) * 3, (rng.random(labels.data.shape) < 0.3).astype(np.uint8), "noise")
    wiring = win.annotation
    t = time.perf_counter()
    recovery.save_recovery("same work, on this thread", session.label_maps)
    inline = time.perf_counter() - t
    t = time.perf_counter()
    wiring.autosave()
    started = time.perf_counter() - t
    assert wiring._autosaver.busy
    assert started < inline / 3, (started, inline)  # the compression runs on its thread
    # an edit made while the autosave is written makes the labels dirty again
    mask = np.ones((1, 4, 4), bool)
    labels.paint((slice(0, 1), slice(0, 4), slice(0, 4)), mask, 2, "brush")
    qtbot.waitUntil(lambda: not wiring._autosaver.busy, timeout=30_000)
    assert wiring.recovery_available() and wiring._dirty_since_autosave
    wiring.autosave()
    qtbot.waitUntil(lambda: not wiring._autosaver.busy, timeout=30_000)
    back = recovery.load_recovery(wiring.image_key(), labels.data.shape)
    assert np.array_equal(back[-1].data, labels.data)

    shown = []
    wiring.panel.show_statistics = lambda rows: shown.append(rows)
    t = time.perf_counter()
    wiring.statistics()
    inline = time.perf_counter() - t
    t = time.perf_counter()
    wiring.refresh_statistics()
    assert time.perf_counter() - t < inline / 3
    qtbot.waitUntil(lambda: bool(shown), timeout=30_000)
    rows = {r["label"]: r for r in shown[-1]}
    assert rows[1]["voxels"] == int((labels.data == 1).sum()) and rows[2]["voxels"] == 16
    QtCore.QCoreApplication.processEvents()
