"""Switching volumes of a 4D NIfTI in the viewer against reading the volume alone, same run.

Run: python -m pytest tests/bench/test_volume_switch_bench.py --bench -s
A 40-time-point 64x64x36 int16 series (an fMRI run), 1x3 layout. Measured (medians), each
against baselines of the same run:
- read: FileImage.load() of the same time points, nothing else; redraw: scrolling one slice in the
  axial view (the same repaint of the window's views, without a volume switch);
- switch: the volume bar asked for a volume not read yet, until it is on screen (read on the
  loader's worker, hand-over, redraw): <= 1.5x (read + redraw) + 5 ms;
- cached switch: back to a volume read before: <= 2x redraw + 5 ms;
- drag: the slider moved over 20 volumes with no event loop in between, until the last is on
  screen: exactly 2 reads (the one in flight and the last; a queue of every request reads 20) and
  <= 1.5x (those two reads + 2 redraws) + 10 ms.
The reader of a .nii.gz decompresses up to the time point it wants, so later time points take
longer to read: each switch is compared with reads of the same time points.
"""
import os
import statistics
import time

import numpy as np
import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("MEDVIEWER_NO_DIALOGS", "1")

pytestmark = pytest.mark.bench

T, SHAPE = 40, (36, 64, 64)
DRAGS = ((11, 30), (20, 39))


def _fmri(path) -> str:
    import SimpleITK as sitk

    rng = np.random.default_rng(0)
    frames = []
    for t in range(T):
        image = sitk.GetImageFromArray((rng.normal(600, 40, SHAPE) + 5 * t).astype(np.int16))
        image.SetSpacing((3.0, 3.0, 3.5))
        frames.append(image)
    sitk.WriteImage(sitk.JoinSeries(frames), str(path))
    return str(path)


def _ms(seconds: float) -> float:
    return 1000 * seconds


def test_volume_switch(tmp_path, monkeypatch):
    monkeypatch.setenv("MEDVIEWER_SETTINGS", str(tmp_path / "s.ini"))
    monkeypatch.setenv("MEDVIEWER_DATA_DIR", str(tmp_path / "d"))
    from medviewer.io import discover
    from medviewer.ui.main_window import MainWindow
    from medviewer.ui.qt import application

    path = _fmri(tmp_path / "bold.nii.gz")
    sources = discover(path).sources
    app = application()
    win = MainWindow()
    win.resize(1400, 850)
    win.show()
    win.open_paths([path], wait=True)
    win.set_layout("1x3")
    app.processEvents()
    bar, views = win.volume_bar, win.grid.visible_views()

    def until_shown(k):
        while bar.busy() or bar.shown != k:
            app.processEvents()
            time.sleep(0.0002)
        app.processEvents()

    read = {}
    for k in list(range(1, 11)) + [k for pair in DRAGS for k in pair]:
        t0 = time.perf_counter()
        sources[k].load()
        read[k] = time.perf_counter() - t0
    def scroll_time(step):
        t0 = time.perf_counter()
        views[0].scroll(step)
        app.processEvents()
        return time.perf_counter() - t0

    redraw, switch, cached = [], [], []
    for k in range(1, 11):  # each read for the first time
        redraw.append(scroll_time(1 if k % 2 else -1))
        t0 = time.perf_counter()
        bar.request(k)
        until_shown(k)
        switch.append(time.perf_counter() - t0)
    for k in (9, 10) * 5:  # interleaved with the baseline: the machine's load varies
        redraw.append(scroll_time(1 if k % 2 else -1))
        t0 = time.perf_counter()
        bar.request(k)
        until_shown(k)
        cached.append(time.perf_counter() - t0)
    d = statistics.median(redraw)

    loads = []
    load = type(sources[0]).load

    def counted(self):
        loads.append(self.volume_index)
        return load(self)

    monkeypatch.setattr(type(sources[0]), "load", counted)
    drag, drag_base, drag_reads = [], [], []
    for first, last in DRAGS:
        loads.clear()
        t0 = time.perf_counter()
        for k in range(first, last + 1):
            bar.slider.setValue(k)
        until_shown(last)
        drag.append(time.perf_counter() - t0)
        drag_base.append(read[first] + read[last] + 2 * d)
        drag_reads.append(list(loads))
    win._no_questions = True
    win.close()

    r = statistics.median(read[k] for k in range(1, 11))
    rows = [("read time points 1-10 (baseline)", _ms(r)), ("redraw: scroll one slice (baseline)", _ms(d)),
            ("switch, not read before", _ms(statistics.median(switch))),
            ("switch, cached", _ms(statistics.median(cached))),
            ("drag over 20: 2 reads + 2 redraws (baseline)", _ms(statistics.median(drag_base))),
            ("drag over 20 volumes", _ms(statistics.median(drag)))]
    print("\nvolume switch, 40 x 64x64x36 int16 .nii.gz, 1x3 views (median ms)")
    for name, value in rows:
        print(f"  {name:46s} {value:8.1f}")
    print(f"  volumes read by each drag: {drag_reads} (a queue of every request would read 20)")
    assert drag_reads == [list(pair) for pair in DRAGS]
    assert statistics.median(switch) <= 1.5 * (r + d) + 0.005
    assert statistics.median(cached) <= 2 * d + 0.005
    assert statistics.median(drag) <= 1.5 * statistics.median(drag_base) + 0.010
