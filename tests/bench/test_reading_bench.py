"""2D reading speed (issue 13): slice change with a 10 mm MIP / average slab against the plain
slice, and the oblique reslice of a 512x512 plane against SimpleITK's Resample of the same plane,
all measured in the same run (medians).

Run: python -m pytest tests/bench/test_reading_bench.py --bench -s
"""
import dataclasses
import os
import statistics
import time

import numpy as np
import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("MEDVIEWER_NO_DIALOGS", "1")

from tests.bench.test_render_bench import _demo_window  # noqa: E402

pytestmark = pytest.mark.bench
ROUNDS = 5


def _median_ms(fn, args, rounds=ROUNDS):
    times = []
    for _ in range(rounds):
        for a in args:
            t = time.perf_counter()
            fn(a)
            times.append(time.perf_counter() - t)
    return statistics.median(times) * 1000, np.percentile(times, 90) * 1000


def test_slab_slice_change(tmp_path, monkeypatch):
    app, win, view = _demo_window(tmp_path, monkeypatch)
    n = win.session.volume.shape[0]

    def change(mode):
        def run(k):
            view.set_slice(k)
            view.graphics.viewport().repaint()
        view.set_slab(mode, 10.0)
        return run

    rows = {}
    for _ in range(2):  # interleaved rounds, so that load hits all alike
        for mode in ("off", "mip", "average", "minip"):
            rows.setdefault(mode, []).append(_median_ms(change(mode), range(n), rounds=2)[0])
    med = {mode: statistics.median(v) for mode, v in rows.items()}
    print(f"\nSlice change + repaint, demo CT 512x512x{n} (2 mm slices), single axial view")
    print(f"{'slab':12s}median ms   / plain slice")
    for mode, ms in med.items():
        print(f"{mode + (' 10 mm' if mode != 'off' else ''):12s}{ms:9.2f} {ms / med['off']:12.2f}")
    win.close()


def test_oblique_reslice_512(tmp_path):
    import SimpleITK as sitk

    from medviewer.core import Volume, oblique
    from medviewer.core.slicing import plane_geometry

    rng = np.random.default_rng(0)
    data = rng.integers(-1000, 1500, size=(300, 512, 512), dtype=np.int16)
    v = Volume(data, spacing=(0.7, 0.7, 1.0))
    rotation = oblique.rotation_about([1, 1, 0], np.radians(25))
    plane = oblique.plane_for(v, plane_geometry(v, "axial"), rotation)
    plane = dataclasses.replace(plane, n_cols=512, n_rows=512)
    centre = v.index_to_world(np.array(v.size) / 2.0)
    lo = centre @ plane.axes[:, :2] - 256 * plane.pixel
    plane = dataclasses.replace(plane, u0=float(lo[0]), v0=float(lo[1]))
    w = float(centre @ plane.normal)

    image = sitk.GetImageFromArray(data)
    image.SetSpacing(v.spacing)
    ref = sitk.Image(512, 512, 1, sitk.sitkFloat32)
    ref.SetSpacing((plane.pixel, plane.pixel, 1.0))
    ref.SetOrigin(tuple(plane.world(0.5 * plane.pixel, 0.5 * plane.pixel, w)))
    ref.SetDirection(plane.axes.flatten().tolist())

    runs = {
        "medviewer reslice (trilinear)": lambda _: oblique.reslice(data, v, plane, w, order=1, cval=-1000),
        "medviewer reslice (nearest, labels)": lambda _: oblique.reslice(data, v, plane, w, order=0),
        "SimpleITK Resample (linear)": lambda _: sitk.Resample(image, ref, sitk.Transform(), sitk.sitkLinear,
                                                               -1000.0, sitk.sitkFloat32),
        "grid slice copy (today's path)": lambda _: np.ascontiguousarray(data[150]),
    }
    med = {name: _median_ms(fn, range(5)) for name, fn in runs.items()}
    ours = med["medviewer reslice (trilinear)"][0]
    print(f"\nOblique reslice of a 512x512 plane from a 512x512x300 int16 volume "
          f"(SimpleITK threads: {sitk.ProcessObject.GetGlobalDefaultNumberOfThreads()})")
    print(f"{'':40s}median ms   p90 ms   ours / this")
    for name, (m, p90) in med.items():
        print(f"{name:40s}{m:9.2f} {p90:8.2f} {ours / m:12.2f}")


def test_rotated_mpr_interaction(tmp_path, monkeypatch):
    """One step of a rotate drag (two views reslice and repaint) and a scroll in a turned view,
    against a plain slice change in the same window."""
    app, win, view = _demo_window(tmp_path, monkeypatch)
    win.set_layout("1x3")
    app.processEvents()
    views = win.grid.views
    planes = win.session.planes
    normal = views["axial"]._view_axes()[:, 2]
    n = win.session.volume.shape[0]

    def plain(k):
        views["axial"].set_slice(k)
        views["axial"].graphics.viewport().repaint()

    def rotate(_):
        planes.rotate("axial", normal, np.radians(2.0))
        for name in ("coronal", "sagittal"):
            views[name].graphics.viewport().repaint()

    def scroll(i):
        views["coronal"].scroll(1 if i % 2 else -1)
        views["coronal"].graphics.viewport().repaint()

    med = {"plain slice change (grid path)": _median_ms(plain, range(n), rounds=3)}
    planes.rotate("axial", normal, np.radians(20))
    med["rotate step (2 views reslice)"] = _median_ms(rotate, range(20), rounds=2)
    med["scroll a turned view"] = _median_ms(scroll, range(20), rounds=2)
    o = views["coronal"].oblique_plane
    print(f"\nRotated MPR, demo CT 512x512x20, 1x3 layout (turned coronal plane {o.n_cols}x{o.n_rows} px)")
    print(f"{'':34s}median ms   p90 ms")
    for name, (m, p90) in med.items():
        print(f"{name:34s}{m:9.2f} {p90:8.2f}")
    win.close()
