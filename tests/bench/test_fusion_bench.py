"""Fusion speed: one fused plane resampled on the fly, against the bare SimpleITK call and scipy.

Run: python -m pytest tests/bench/test_fusion_bench.py --bench -s
The demo CT (512x512x20, a real series) is the fixed image; the moving image is the same CT
under a rigid transform (6°, 4°, 3°, 5/-3/2 mm). For a 256² and a 512² axial plane:
- Fusion.plane (core/fusion.py: SimpleITK Resample with a one-slice reference image, built per call);
- the bare call: sitk.Resample with a prepared one-slice reference + GetArrayFromImage;
- scipy: ndimage.map_coordinates (trilinear) on the index grid of the same plane through the
  transform's matrix (an affine only: scipy cannot follow a B-spline).
Criterion: Fusion.plane median <= 1.1x the bare call, in the same run (interleaved). Then the
slice change of a SliceView with an overlay fusion on against the same view with it off
and with a moving image on the fixed grid (read from its voxels, no resampling): printed, the
cost of fusion while scrolling.
"""
import os
import statistics
import time

import numpy as np
import pytest
import SimpleITK as sitk
from scipy import ndimage

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("PYQTGRAPH_QT_LIB", "PySide6")

from medviewer.core.fusion import Fusion  # noqa: E402
from medviewer.io import open_volume  # noqa: E402
from tests.conftest import DEMO  # noqa: E402

pytestmark = pytest.mark.bench
MAX_RATIO, ROUNDS = 1.1, 30


def _rigid(volume):
    t = sitk.Euler3DTransform()
    t.SetCenter(tuple(volume.index_to_world((np.asarray(volume.size) - 1) / 2)))
    t.SetRotation(*np.radians([6.0, 4.0, 3.0]))
    t.SetTranslation((5.0, -3.0, 2.0))
    return t


def _medians(runs: dict, rounds: int = ROUNDS) -> dict:
    times = {name: [] for name in runs}
    names = list(runs)
    for r in range(rounds):  # interleaved, the order turned each round: load and caches hit all alike
        for name in names[r % len(names):] + names[:r % len(names)]:
            t = time.perf_counter()
            runs[name]()
            times[name].append(time.perf_counter() - t)
    return {name: statistics.median(t) * 1000 for name, t in times.items()}


@pytest.fixture(scope="module")
def ct():
    return open_volume(str(DEMO / "ct_chest_20"))


@pytest.mark.parametrize("n", [256, 512])
def test_plane_resample_against_bare_simpleitk_and_scipy(ct, n):
    transform = _rigid(ct)
    fusion = Fusion(lambda: ct)
    fusion.set(ct, transform=transform, mode="overlay")
    k = ct.size[2] // 2
    scale = ct.size[0] / n  # n x n pixels over the slice
    origin = ct.index_to_world(((scale - 1) / 2, (scale - 1) / 2, k))
    u = ct.direction[:, 0] * ct.spacing[0] * scale
    v = ct.direction[:, 1] * ct.spacing[1] * scale

    image = fusion._image  # the moving image as the fusion holds it
    reference = sitk.Image([n, n, 1], sitk.sitkUInt8)
    reference.SetSpacing((float(np.linalg.norm(u)), float(np.linalg.norm(v)), 1.0))
    reference.SetOrigin(tuple(origin))
    reference.SetDirection(tuple(np.column_stack([u / np.linalg.norm(u), v / np.linalg.norm(v),
                                                  np.cross(u, v) / np.linalg.norm(np.cross(u, v))]).ravel()))

    def bare():
        return sitk.GetArrayFromImage(sitk.Resample(image, reference, transform, sitk.sitkLinear, float("nan"),
                                                    sitk.sitkFloat32))[0]

    # scipy: world of each pixel -> transform (matrix) -> moving index -> map_coordinates
    m = np.asarray(transform.GetMatrix()).reshape(3, 3)
    c = np.asarray(transform.GetCenter())
    t = np.asarray(transform.GetTranslation())
    inv = np.linalg.inv(ct.direction @ np.diag(ct.spacing))
    data = ct.data.astype(np.float32)
    rows, cols = np.mgrid[0:n, 0:n]

    def scipy_plane():
        world = origin + cols[..., None] * u + rows[..., None] * v
        moved = (world - c) @ m.T + c + t
        ijk = (moved - np.asarray(ct.origin)) @ inv.T
        size = np.asarray(ct.size, float)
        outside = np.any((ijk < -0.5) | (ijk > size - 0.5), axis=-1)
        out = ndimage.map_coordinates(data, ijk[..., ::-1].transpose(2, 0, 1), order=1, mode="nearest",
                                      prefilter=False, output=np.float32)
        out[outside] = np.nan
        return out

    ours = fusion.plane(ct, origin, u, v, (n, n))
    want = bare()
    np.testing.assert_array_equal(np.isnan(ours), np.isnan(want))
    np.testing.assert_allclose(ours[np.isfinite(ours)], want[np.isfinite(want)], atol=1e-3)
    sci = scipy_plane()
    both = np.isfinite(sci) & np.isfinite(want)
    assert np.nanmax(np.abs(sci[both] - want[both])) < 1.0  # the same plane, up to rounding at the edges

    med = _medians({"Fusion.plane": lambda: fusion.plane(ct, origin, u, v, (n, n)),
                    "bare sitk.Resample": bare, "scipy map_coordinates": scipy_plane})
    ratio = med["Fusion.plane"] / med["bare sitk.Resample"]
    print(f"\nOne fused {n}x{n} plane of the 512x512x20 CT through a rigid transform, {ROUNDS} rounds "
          f"({sitk.ProcessObject.GetGlobalDefaultNumberOfThreads()} ITK threads)")
    for name, ms in med.items():
        print(f"  {name:24s} median {ms:7.2f} ms")
    print(f"  Fusion.plane / bare = {ratio:.2f} (<= {MAX_RATIO}); scipy / bare = "
          f"{med['scipy map_coordinates'] / med['bare sitk.Resample']:.2f}")
    assert ratio <= MAX_RATIO


def test_slice_change_with_fusion_on_against_off(ct, tmp_path, monkeypatch):
    monkeypatch.setenv("MEDVIEWER_SETTINGS", str(tmp_path / "s.ini"))
    from medviewer.core.session import Session
    from medviewer.ui.qt import application
    from medviewer.ui.slice_view import SliceView

    app = application()
    sessions = {"fusion off": Session(), "overlay, rigid transform": Session(), "overlay, same grid": Session()}
    for session in sessions.values():
        session.set_volume(ct)
    sessions["overlay, rigid transform"].fusion.set(ct, transform=_rigid(ct), mode="overlay", threshold=100.0)
    sessions["overlay, same grid"].fusion.set(ct.copy_geometry(ct.data), mode="overlay", threshold=100.0)
    views = {}
    for name, session in sessions.items():
        view = SliceView(session, "axial")
        view.resize(700, 700)
        view.show()
        views[name] = view
    app.processEvents()
    n = ct.shape[0]
    times = {name: [] for name in views}
    for _ in range(5):
        for name, view in views.items():
            for k in range(n):
                t = time.perf_counter()
                view.set_slice(k)
                view.graphics.viewport().repaint()
                times[name].append(time.perf_counter() - t)
    med = {name: statistics.median(t) * 1000 for name, t in times.items()}
    print(f"\nSlice change + repaint, 512x512 CT, view 700x700, {5 * n} changes each")
    for name, ms in med.items():
        print(f"  {name:26s} median {ms:7.2f} ms   / off {ms / med['fusion off']:5.2f}")
    for view in views.values():
        view.close()
