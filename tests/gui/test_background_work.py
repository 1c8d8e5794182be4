"""Autosave and label statistics run off the GUI thread: the call returns while the work is still
held on its worker thread, the result lands later on the GUI thread, and edits made meanwhile are
saved by the next autosave. Checked by where and when the work runs, never by how long it takes."""
import threading

import numpy as np

from medviewer.ui.qt import QtCore


def _held(fn, ran_on: list, release: threading.Event):
    """fn, recording its thread and waiting for `release` first (so the GUI can be seen free)."""
    def wrapper(*args, **kwargs):
        ran_on.append(threading.current_thread())
        assert release.wait(60), "never released"
        return fn(*args, **kwargs)
    return wrapper


def test_autosave_and_statistics_do_not_block_the_window(demo_window, qtbot, monkeypatch):
    from medviewer.io import recovery
    from medviewer.processing import label_stats

    win = demo_window()
    session = win.session
    labels = session.add_label_map()
    rng = np.random.default_rng(0)
    labels.set_region((slice(None),) * 3, (rng.random(labels.data.shape) < 0.3).astype(np.uint8), "noise")
    wiring = win.annotation
    gui = threading.current_thread()

    ran_on, release = [], threading.Event()
    monkeypatch.setattr(recovery, "write_recovery", _held(recovery.write_recovery, ran_on, release))
    wiring.autosave()  # returns although the write is held on its thread
    qtbot.waitUntil(lambda: bool(ran_on), timeout=30_000)
    assert ran_on[0] is not gui and wiring.autosave_running() and not wiring.recovery_available()
    # the window still handles events and edits while the autosave is written ...
    mask = np.ones((1, 4, 4), bool)
    labels.paint((slice(0, 1), slice(0, 4), slice(0, 4)), mask, 2, "brush", overwrite=True)
    QtCore.QCoreApplication.processEvents()
    assert wiring._dirty_since_autosave  # ... and an edit made meanwhile makes the labels dirty again
    release.set()
    qtbot.waitUntil(lambda: not wiring.autosave_running(), timeout=30_000)
    assert wiring.recovery_available()
    wiring.autosave()
    qtbot.waitUntil(lambda: not wiring.autosave_running(), timeout=30_000)
    back = recovery.load_recovery(wiring.image_key(), labels.data.shape)
    assert np.array_equal(back[-1].data, labels.data)

    shown, ran_on, release = [], [], threading.Event()
    wiring.panel.show_statistics = lambda rows: shown.append((threading.current_thread(), rows))
    monkeypatch.setattr(label_stats, "label_statistics", _held(label_stats.label_statistics, ran_on, release))
    wiring.refresh_statistics()
    qtbot.waitUntil(lambda: bool(ran_on), timeout=30_000)
    assert ran_on[0] is not gui and not shown
    release.set()
    qtbot.waitUntil(lambda: bool(shown), timeout=30_000)
    thread, rows = shown[-1]
    assert thread is gui  # the panel is filled on the GUI thread
    rows = {r["label"]: r for r in rows}
    assert rows[1]["voxels"] == int((labels.data == 1).sum()) and rows[2]["voxels"] == 16
