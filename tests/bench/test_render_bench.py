"""Slice-change repaint of the viewer against bare pyqtgraph, measured in the same run.

Run: python -m pytest tests/bench/test_render_bench.py --bench -s
Criterion (issue 3): median <= 8 ms for a 512x512 CT slice with a label overlay, and at most 1.5x
bare pyqtgraph drawing the same thing (an ImageItem for the slice and one for the label overlay,
updated and repainted in a same-sized view). The ratio to a single bare ImageItem without the
overlay is printed too.
"""
import os
import statistics
import time

import numpy as np

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("MEDVIEWER_NO_DIALOGS", "1")

from tests.conftest import DEMO  # noqa: E402

MAX_MS, MAX_RATIO, ROUNDS = 8.0, 1.5, 5


def _label_lut() -> np.ndarray:
    lut = np.zeros((256, 4), np.uint8)
    lut[1] = (255, 60, 60, 110)
    lut[2] = (60, 160, 255, 160)
    return lut


def _demo_window(tmp_path, monkeypatch):
    """The real main window, 1200x900, with the demo CT in a single axial view."""
    monkeypatch.setenv("MEDVIEWER_SETTINGS", str(tmp_path / "s.ini"))
    monkeypatch.setenv("MEDVIEWER_DATA_DIR", str(tmp_path / "d"))
    from medviewer.ui.main_window import MainWindow
    from medviewer.ui.qt import application

    app = application()
    win = MainWindow()
    win.resize(1200, 900)
    win.show()
    win.open_paths([str(DEMO / "ct_chest_20")], wait=True)
    win.set_layout("single", "axial")
    app.processEvents()
    return app, win, win.grid.views["axial"]


def test_slice_change_repaint(tmp_path, monkeypatch):
    from medviewer.ui.qt import pg

    app, win, view = _demo_window(tmp_path, monkeypatch)
    volume = win.session.volume
    labels = np.zeros(volume.data.shape, np.uint8)
    labels[volume.data > -300] = 1
    labels[volume.data > 300] = 2
    view.set_label_volume(labels, _label_lut())
    app.processEvents()
    size = view.graphics.size()

    bare = pg.GraphicsView()
    vb = pg.ViewBox(lockAspect=True, invertY=True)
    bare.setCentralItem(vb)
    item = pg.ImageItem(axisOrder="row-major")
    vb.addItem(item)
    bare.resize(size)
    bare.show()
    item.setImage(volume.data[0], autoLevels=False, levels=(-160, 240))
    overlay = pg.ImageItem(axisOrder="row-major")
    overlay.setLookupTable(_label_lut())
    vb.addItem(overlay)
    vb.autoRange()
    app.processEvents()

    def bare_image(k):
        item.setImage(volume.data[k], autoLevels=False, levels=(-160, 240))
        bare.viewport().repaint()

    def bare_image_and_overlay(k):
        item.setImage(volume.data[k], autoLevels=False, levels=(-160, 240))
        overlay.setImage(labels[k], autoLevels=False)
        bare.viewport().repaint()

    def medviewer_view(k):
        view.set_slice(k)
        view.graphics.viewport().repaint()

    runs = {"medviewer SliceView + labels": medviewer_view,
            "bare ImageItem + label item": bare_image_and_overlay,
            "bare ImageItem, no labels": bare_image}
    times = {name: [] for name in runs}
    n = volume.shape[0]
    for _ in range(ROUNDS):  # interleaved, so that machine load hits all alike
        for name, fn in runs.items():
            if name == "bare ImageItem, no labels":
                overlay.setVisible(False)
            for k in range(n):
                t = time.perf_counter()
                fn(k)
                times[name].append(time.perf_counter() - t)
            overlay.setVisible(True)
    med = {name: statistics.median(t) * 1000 for name, t in times.items()}
    ours = med["medviewer SliceView + labels"]
    ratio = ours / med["bare ImageItem + label item"]
    print(f"\nSlice change + repaint, 512x512 CT with label overlay, view {size.width()}x{size.height()} px, "
          f"{ROUNDS * n} changes each")
    print(f"{'':32s}median ms   p90 ms   medviewer / this")
    for name, t in times.items():
        print(f"{name:32s}{med[name]:9.2f} {np.percentile(t, 90) * 1000:8.2f} {ours / med[name]:12.2f}")
    print(f"criterion: median {ours:.2f} <= {MAX_MS} ms; ratio to bare pyqtgraph with the same overlay "
          f"{ratio:.2f} <= {MAX_RATIO}")
    win.close()
    bare.close()
    assert ours <= MAX_MS
    assert ratio <= MAX_RATIO


def _dab_times(win, view, centres, rounds=3):
    """Brush dabs through the annotation controller, each followed by the view's repaint."""
    ctl = win.annotation.controller
    ctl.set_tool("brush")
    ctl.radius_mm = 5.0
    times = []
    for r in range(rounds):
        win.session.set_active(value=1 + r % 2)
        for ijk in centres:
            t = time.perf_counter()
            ctl.handle(view, "click", np.asarray(ijk, float))
            view.graphics.viewport().repaint()
            times.append(time.perf_counter() - t)
    return times


def test_brush_dab_with_repaint(tmp_path, monkeypatch):
    """Issue 4: a brush dab incl. the overlay repaint <= 5 ms on 512x512, <= 16 ms on 2048x2048."""
    import SimpleITK as sitk
    from scipy import ndimage

    app, win, view = _demo_window(tmp_path, monkeypatch)
    z = int(win.session.cursor[2])
    rng = np.random.default_rng(0)
    ct = _dab_times(win, view, [(x, y, z) for x, y in rng.integers(60, 450, (40, 2))])
    assert np.count_nonzero(win.session.active_labels.data) > 40 * 50

    xray = sitk.GetArrayFromImage(sitk.ReadImage(str(DEMO / "xray" / "chest_xray_pneumonia.jpeg")))
    if xray.ndim == 3:  # the demo JPEG is stored as RGB: make a greyscale radiograph of it
        xray = xray.mean(axis=2)
    big = ndimage.zoom(xray.astype(np.float32), 2048 / xray.shape[0], order=1).astype(np.uint8)
    path = tmp_path / "xray_2048.png"
    sitk.WriteImage(sitk.GetImageFromArray(big), str(path))
    win.open_paths([str(path)], wait=True)
    view = win.grid.visible_views()[0]
    app.processEvents()
    xr = _dab_times(win, view, [(x, y, 0) for x, y in rng.integers(100, 1900, (40, 2))])
    painted = int(np.count_nonzero(win.session.active_labels.data))
    assert painted > 40 * 60  # 40 dabs of ~78 voxels (r 5 mm at 1 mm), some overlapping
    m_ct, m_xr = statistics.median(ct) * 1000, statistics.median(xr) * 1000
    print(f"\nBrush dab (r 5 mm) + repaint, median of {len(ct)}: 512x512 CT {m_ct:.2f} ms (p90 "
          f"{np.percentile(ct, 90) * 1000:.2f}), 2048x2048 X-ray {m_xr:.2f} ms (p90 {np.percentile(xr, 90) * 1000:.2f})")
    win.annotation.unsaved = lambda: False
    win.close()
    assert m_ct <= 5.0
    assert m_xr <= 16.0
