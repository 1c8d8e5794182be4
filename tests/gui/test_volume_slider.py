"""The volume bar on a 4D NIfTI (4 time points, each with its own values) and, where the shared
data has one, a DICOM series of several volumes: the pixels on screen become the chosen volume's
while slice, crosshair, zoom/pan, window, labels (undo, autosave) and measurements stay; volumes
are read on the loader's worker and only the last one asked for is shown."""
from __future__ import annotations

import dataclasses
import threading
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from medviewer.core.display import Window
from medviewer.io import discover
from medviewer.ui.qt import QtCore
from medviewer.io.volume_4d import group_key, volume_groups
from medviewer.ui.volume_slider import VolumeCache, volume_caption

pytest.importorskip("pytestqt")

from medviewer.ui.main_window import MainWindow  # noqa: E402

T, Z, Y, X = 4, 8, 32, 32
SHARED_DICOM = Path(__file__).resolve().parents[3] / "shared" / "data" / "dicom"


def volume_values(t: int) -> np.ndarray:
    """Time point t: 100·t plus the column index, so every volume and every column differs."""
    return (100 * t + np.broadcast_to(np.arange(X), (Z, Y, X))).astype(np.int16)


def plain(source, **changes):
    """An ImageSource with the source's fields and some changed (FileImage has its own __init__)."""
    from medviewer.io.sources import ImageSource

    fields = {f.name: getattr(source, f.name) for f in dataclasses.fields(ImageSource)}
    return ImageSource(**{**fields, **changes})


def write_4d(path: Path, t: int = T) -> Path:
    frames = []
    for k in range(t):
        image = sitk.GetImageFromArray(volume_values(k))
        image.SetSpacing((1.5, 1.5, 3.0))
        image.SetOrigin((-20.0, 10.0, 5.0))
        frames.append(image)
    sitk.WriteImage(sitk.JoinSeries(frames), str(path))
    return path


@pytest.fixture
def fmri(tmp_path) -> Path:
    return write_4d(tmp_path / "bold.nii.gz")


def open_window(qtbot, path) -> MainWindow:
    w = MainWindow()
    qtbot.addWidget(w)
    w.resize(1400, 850)
    w.show()
    w.open_paths([str(path)], wait=True)
    assert w.session.volume is not None
    return w


@pytest.fixture
def win(qtbot, fmri):
    w = open_window(qtbot, fmri)
    w.set_layout("1x3")
    QtCore.QCoreApplication.processEvents()
    return w


def grab(view) -> np.ndarray:
    QtCore.QCoreApplication.processEvents()
    image = view.graphics.grab().toImage()
    image = image.convertToFormat(image.Format.Format_RGB32)
    w, h = image.width(), image.height()
    arr = np.frombuffer(image.constBits(), np.uint8, count=image.bytesPerLine() * h).reshape(h, image.bytesPerLine())
    return arr[:, : w * 4].reshape(h, w, 4)[..., 2::-1].copy()


def grey_at(view, ijk) -> float:
    col, row, _ = view.geometry_.pixel_from_index(ijk)
    x, y = view._mm_from_pixel(col, row)
    p = view.graphics.mapFromScene(view.viewbox.mapViewToScene(QtCore.QPointF(x, y)))
    return float(grab(view)[int(p.y()), int(p.x())].mean())


def expected_grey(value: float, window: Window) -> float:
    return float(np.clip((value - window.low) * 255.0 / window.width, 0, 255))


def switch(qtbot, win, index: int) -> None:
    bar = win.volume_bar
    bar.request(index)
    qtbot.waitUntil(lambda: not bar.busy() and bar.shown == index, timeout=30_000)
    QtCore.QCoreApplication.processEvents()


# --- Qt-free -------------------------------------------------------------------------------
def test_volumes_of_a_4d_file_are_one_group_in_order(fmri, tmp_path):
    sources = discover(str(fmri)).sources
    assert len(sources) == T
    rows = volume_groups(list(reversed(sources)))
    assert len(rows) == 1 and [s.volume_index for s in rows[0]] == list(range(T))
    # the same file name in another folder is another acquisition
    (tmp_path / "sub-02").mkdir()
    other = write_4d(tmp_path / "sub-02" / "bold.nii.gz", 2)
    both = sources + discover(str(other)).sources
    assert [len(r) for r in volume_groups(both)] == [T, 2]
    assert group_key(sources[0]) != group_key(discover(str(other)).sources[0])
    a, b = plain(sources[0], id="a", volume_group=""), plain(sources[0], id="b", volume_group="")
    assert volume_groups([a, b]) == [[a], [b]]


def test_caption_names_the_volume_and_its_diffusion_weighting(fmri):
    source = discover(str(fmri)).sources[2]
    assert volume_caption(2, T, source) == "Volume 3 / 4"
    dwi = plain(source, diffusion=(1000.0, (0.7071, 0.0, -0.7071)))
    assert volume_caption(2, 30, dwi) == "Volume 3 / 30 · b = 1000 · g (0.71, 0.00, -0.71)"
    assert volume_caption(0, 30, plain(source, diffusion=(0.0, None))) == "Volume 1 / 30 · b = 0"


def test_cache_keeps_recent_volumes_within_its_budget(fmri):
    volumes = [s.load() for s in discover(str(fmri)).sources]
    cache = VolumeCache(max_bytes=2 * volumes[0].nbytes)
    for k, v in enumerate(volumes):
        cache.put(str(k), v)
    assert len(cache) == 2 and cache.get("0") is None and cache.get("3") is volumes[3]
    tiny = VolumeCache(max_bytes=1)
    tiny.put("0", volumes[0])
    assert tiny.get("0") is volumes[0]  # the newest is kept whatever its size


# --- the window -----------------------------------------------------------------------------
def test_a_4d_file_is_one_series_row_and_shows_the_volume_bar(win):
    bar = win.volume_bar
    assert bar.isVisible() and bar.count == T and bar.caption.text() == "Volume 1 / 4"
    browser = win.series_browser.list
    assert browser.count() == 1 and browser.item(0).text().endswith("32×32×8\n4 volumes")
    assert win.series_browser.highlighted_id() == win.session.source_id
    assert np.array_equal(win.session.volume.data, volume_values(0))


def test_switching_shows_the_volumes_pixels_and_keeps_slice_zoom_window(win, qtbot):
    session, axial = win.session, win.grid.views["axial"]
    axial.set_slice(6)
    session.set_cursor((10, 20, 6))
    axial.zoom(2.0)
    axial.viewbox.translateBy(x=3.0, y=-2.0)  # pan
    QtCore.QCoreApplication.processEvents()
    window = Window(400.0, 200.0)
    session.set_window(window)
    view_range, ppm = axial.viewbox.viewRange(), axial.pixels_per_mm()
    probe = (25, 5, 6)  # away from the crosshair lines
    assert grey_at(axial, probe) == pytest.approx(expected_grey(25, window), abs=3)

    switch(qtbot, win, 2)
    assert np.array_equal(session.volume.data, volume_values(2))
    assert grey_at(axial, probe) == pytest.approx(expected_grey(225, window), abs=3)
    coronal = win.grid.views["coronal"]
    assert grey_at(coronal, (25, 20, 6)) == pytest.approx(expected_grey(225, window), abs=3)
    assert tuple(session.cursor) == (10, 20, 6) and session.window == window
    assert axial.pixels_per_mm() == pytest.approx(ppm, rel=1e-6)
    assert np.allclose(axial.viewbox.viewRange(), view_range)
    assert win.volume_bar.caption.text() == "Volume 3 / 4"
    assert win.actions_.slice_slider.value() == 6
    assert session.source_id.endswith("[2]") and win.current_source.volume_index == 2
    assert win.series_browser.highlighted_id() == win.series_browser.sources()[0].id  # the group's row


def test_labels_undo_measurements_and_autosave_survive_a_switch(win, qtbot):
    from medviewer.core.measurements import Measurement
    from medviewer.io import recovery

    session = win.session
    labels = session.add_label_map()
    mask = np.ones((1, 4, 4), bool)
    labels.paint((slice(3, 4), slice(10, 14), slice(10, 14)), mask, 1, "brush")
    labels.paint((slice(5, 6), slice(2, 6), slice(2, 6)), mask, 1, "brush")
    session.add_measurement(Measurement("distance", np.array([[0.0, 0, 0], [10.0, 0, 0]]), plane="axial",
                                        slice_index=4))
    painted = labels.data.copy()
    key = win.annotation.image_key()

    switch(qtbot, win, 3)
    assert session.label_maps == [labels] and session.active_labels is labels
    assert np.array_equal(labels.data, painted)
    assert len(session.measurements) == 1
    assert win.annotation.image_key() == key  # the volumes share one autosave
    labels.undo()
    assert labels.data[5].sum() == 0 and labels.data[3].sum() == 16
    labels.redo()
    win.annotation.autosave()
    qtbot.waitUntil(lambda: not win.annotation.autosave_running(), timeout=30_000)
    back = recovery.load_recovery(key, labels.data.shape)
    assert np.array_equal(back[-1].data, painted)
    # the label overlay is drawn over the new volume
    axial = win.grid.views["axial"]
    axial.set_slice(3)
    pixel = grab(axial)
    assert pixel.std() > 0


def test_rapid_switching_shows_only_the_last_volume(win, qtbot):
    shown = []
    win.session.image_replaced.connect(lambda: shown.append(win.session.volume.data[0, 0, 0]))
    bar = win.volume_bar
    for k in (1, 2, 3, 1, 2):  # as a drag would: no event loop in between
        bar.slider.setValue(k)
    qtbot.waitUntil(lambda: not bar.busy() and bar.shown == 2, timeout=30_000)
    QtCore.QCoreApplication.processEvents()
    assert shown == [200]  # neither 1 nor 3 reached the screen
    assert np.array_equal(win.session.volume.data, volume_values(2))
    assert bar.caption.text() == "Volume 3 / 4"


def test_volumes_are_read_on_the_loader_thread_and_the_window_stays_live(win, qtbot, monkeypatch):
    from medviewer.io.sitk_image import FileImage

    ran_on, release = [], threading.Event()
    load = FileImage.load

    def held(self):
        ran_on.append(threading.current_thread())
        assert release.wait(60), "never released"
        return load(self)

    monkeypatch.setattr(FileImage, "load", held)
    bar = win.volume_bar
    bar.request(1)
    qtbot.waitUntil(lambda: bool(ran_on), timeout=30_000)
    assert ran_on[0] is not threading.current_thread() and bar.busy()
    assert bar.caption.text() == "Volume 2 / 4 …"
    win.grid.views["axial"].scroll(1)  # the window handles input while the volume is read
    assert np.array_equal(win.session.volume.data, volume_values(0))
    release.set()
    qtbot.waitUntil(lambda: bar.shown == 1 and not bar.busy(), timeout=30_000)
    assert np.array_equal(win.session.volume.data, volume_values(1))
    # read once: going back is served from the cache, without the loader
    ran_on.clear()
    switch(qtbot, win, 0)
    switch(qtbot, win, 1)
    assert ran_on == []


def test_ctrl_page_keys_step_volumes_and_page_keys_still_scroll_slices(win, qtbot):
    axial = win.grid.views["axial"]
    axial.setFocus()
    z = int(win.session.cursor[2])
    qtbot.keyClick(axial, QtCore.Qt.Key_PageUp, QtCore.Qt.ControlModifier)
    qtbot.waitUntil(lambda: win.volume_bar.shown == 1 and not win.volume_bar.busy(), timeout=30_000)
    assert int(win.session.cursor[2]) == z
    qtbot.keyClick(axial, QtCore.Qt.Key_PageDown, QtCore.Qt.ControlModifier)
    qtbot.waitUntil(lambda: win.volume_bar.shown == 0 and not win.volume_bar.busy(), timeout=30_000)
    qtbot.keyClick(axial, QtCore.Qt.Key_PageUp)
    assert int(win.session.cursor[2]) == z + 1 and win.volume_bar.shown == 0


def test_a_volume_that_cannot_be_read_is_reported_and_the_shown_one_stays(win, qtbot, monkeypatch):
    from medviewer.core.errors import ImageReadError
    from medviewer.io.sitk_image import FileImage

    def broken(self):
        raise ImageReadError(self.path, "the file is no longer there")

    monkeypatch.setattr(FileImage, "load", broken)
    with qtbot.waitSignal(win.problem, timeout=30_000) as signal:
        win.volume_bar.request(2)
    assert "no longer there" in signal.args[0] and "\n" not in signal.args[0]
    assert win.volume_bar.shown == 0 and win.volume_bar.slider.value() == 0
    assert np.array_equal(win.session.volume.data, volume_values(0))


def test_opening_a_lone_volume_hides_the_bar_and_drops_reads_in_flight(win, qtbot, tmp_path):
    lone = tmp_path / "t1.nii.gz"
    sitk.WriteImage(sitk.GetImageFromArray(np.full((4, 16, 16), 7, np.int16)), str(lone))
    bar = win.volume_bar
    bar.request(3)
    win.open_paths([str(lone)], wait=True)
    qtbot.waitUntil(lambda: not win.loader.busy(), timeout=30_000)
    QtCore.QCoreApplication.processEvents()
    assert not bar.isVisible() and bar.count == 1
    assert win.session.volume.data.shape == (4, 16, 16) and int(win.session.volume.data.max()) == 7


def test_play_goes_through_the_volumes(win, qtbot):
    bar = win.volume_bar
    win.actions_.fps.setValue(20)
    assert bar._timer.interval() == 50  # the toolbar's cine rate
    seen = set()
    win.session.image_replaced.connect(lambda: seen.add(bar.shown))
    bar.play_action.setChecked(True)
    qtbot.waitUntil(lambda: {1, 2, 3, 0} <= seen, timeout=60_000)
    bar.play_action.setChecked(False)


# --- DICOM with several volumes (the shared corpus; skipped without it) ----------------------
def _dicom_group():
    for folder in ("enhanced_mr/In/Siemens", "dcm_qa_nih/In/20180918Si"):
        path = SHARED_DICOM / folder
        if not path.is_dir():
            continue
        rows = [r for r in volume_groups(discover(str(path)).sources) if len(r) > 1 and r[0].volume_group]
        if rows:
            return path, rows[0]
    return None, None


def test_a_dicom_series_of_several_volumes_switches_in_place(qtbot):
    path, group = _dicom_group()
    if path is None:
        pytest.skip("no DICOM series of several volumes (a shared corpus, grouped by volume_group) here")
    w = open_window(qtbot, path)
    w.load_source(group[0], wait=True)
    QtCore.QCoreApplication.processEvents()
    bar = w.volume_bar
    assert bar.isVisible() and bar.count == len(group)
    window = w.session.window
    labels = w.session.add_label_map()
    w.session.set_cursor((1, 1, 0))
    expected = group[1].load().data
    switch(qtbot, w, 1)
    assert np.array_equal(w.session.volume.data, expected)
    assert w.session.window == window and w.session.label_maps == [labels]
    assert tuple(w.session.cursor) == (1, 1, 0)


def test_a_dwi_series_shows_the_b_value_and_gradient_of_the_volume(qtbot, tmp_path):
    """nibabel's Siemens DWI mosaics (b = 0 and b = 1000): one row, the bar names the weighting."""
    nibabel = pytest.importorskip("nibabel")
    import shutil

    data = Path(nibabel.__file__).parent / "nicom" / "tests" / "data"
    for name in ("siemens_dwi_0.dcm.gz", "siemens_dwi_1000.dcm.gz"):
        if not (data / name).is_file():
            pytest.skip(f"nibabel has no {name}")
        shutil.copy(data / name, tmp_path / name)
    rows = [r for r in volume_groups(discover(str(tmp_path)).sources) if len(r) == 2]
    if not rows or rows[0][1].diffusion is None:
        pytest.skip("the DICOM reader does not group these mosaics into one DWI series (yet)")
    w = open_window(qtbot, tmp_path)
    assert w.series_browser.list.count() == 1 and w.series_browser.list.item(0).text().endswith("\n2 volumes")
    assert w.volume_bar.caption.text() == "Volume 1 / 2 · b = 0"
    expected = rows[0][1].load().data
    switch(qtbot, w, 1)
    b, gradient = rows[0][1].diffusion
    assert b == 1000 and gradient is not None
    assert w.volume_bar.caption.text() == volume_caption(1, 2, rows[0][1])
    assert w.volume_bar.caption.text().startswith("Volume 2 / 2 · b = 1000 · g (")
    assert np.array_equal(w.session.volume.data, expected)


def _shifted_volume_two(monkeypatch):
    """Time point 2 reads as if on another grid (its origin 5 mm away)."""
    from medviewer.io.sitk_image import FileImage

    load = FileImage.load

    def shifted(self):
        volume = load(self)
        if self.volume_index == 2:
            volume.origin = (volume.origin[0] + 5.0,) + tuple(volume.origin[1:])
        return volume

    monkeypatch.setattr(FileImage, "load", shifted)


def test_a_volume_on_another_grid_is_refused_while_labels_are_unsaved(win, qtbot, monkeypatch):
    _shifted_volume_two(monkeypatch)
    labels = win.session.add_label_map()
    labels.paint((slice(3, 4), slice(10, 14), slice(10, 14)), np.ones((1, 4, 4), bool), 1, "brush")
    with qtbot.waitSignal(win.problem, timeout=30_000) as signal:
        win.volume_bar.request(2)
    assert "another voxel grid" in signal.args[0] and "save the labels" in signal.args[0]
    assert win.session.label_maps == [labels] and labels.data.sum() == 16
    assert np.array_equal(win.session.volume.data, volume_values(0))
    assert win.volume_bar.shown == 0 and win.volume_bar.slider.value() == 0


def test_a_volume_on_another_grid_opens_as_a_new_image_when_nothing_is_unsaved(win, qtbot, monkeypatch):
    _shifted_volume_two(monkeypatch)
    win.session.set_window(Window(50.0, 20.0))
    switch(qtbot, win, 2)
    volume = win.session.volume
    assert np.array_equal(volume.data, volume_values(2)) and volume.origin[0] == pytest.approx(-15.0)
    assert win.session.window != Window(50.0, 20.0)  # a new image gets its own window
    assert win.volume_bar.isVisible() and win.volume_bar.shown == 2


def test_a_tool_preview_of_the_previous_volume_is_dropped(win, qtbot):
    region = (slice(0, 1), slice(0, 4), slice(0, 4))
    win.session.set_preview(region, np.ones((1, 4, 4), bool))
    assert win.session.preview is not None
    switch(qtbot, win, 1)
    assert win.session.preview is None  # its voxels were chosen on the other volume's values
