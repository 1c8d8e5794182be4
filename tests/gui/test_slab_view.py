"""Thick slabs on the slice views (issue 13): a 10 mm MIP of the demo CT shows, on screen, the
maximum over the slab's slices; the reading toolbar sets every view; labels stay the one slice;
with the slab off the plain slice path is used (the slab code is never called)."""
import numpy as np
import pytest

from medviewer.core import slab
from medviewer.ui.reading_toolbar import ReadingToolbar
from medviewer.ui.slice_view import window_table_int16
from tests.gui.test_main_window import grab, screen_xy


@pytest.fixture
def win(demo_window):
    w = demo_window(1400, 850)
    w.set_layout("single", "axial")
    return w


def _expected_mip(volume, k, mm):
    lo, hi = slab.slab_range(k, volume.shape[0], mm, volume.spacing[2])
    assert hi - lo >= 3, "the demo CT's 10 mm slab should hold several slices"
    return volume.data[lo:hi].max(axis=0), volume.data[k]


def test_a_10_mm_mip_of_the_demo_ct_shows_the_maximum_on_screen(win, qtbot):
    session, view = win.session, win.grid.views["axial"]
    volume = session.volume
    k = int(session.cursor[2])
    bar = ReadingToolbar(win.grid)
    bar.set_slab("mip", 10.0)
    assert all(v.slab_mode == "mip" and v.slab_mm == 10.0 for v in win.grid.views.values())
    mip, single = _expected_mip(volume, k, 10.0)
    table = window_table_int16(session.window, session.invert)
    # the image handed to pyqtgraph is the windowed maximum, exactly
    assert np.array_equal(view.image_item.image, table[mip.view(np.uint16)])
    assert "MIP 10 mm" in view.overlay.slice_text and "(paint: centre)" in view.overlay.slice_text
    # on screen: at voxels where the slab's maximum is much brighter than the slice itself
    g_mip, g_one = table[mip.view(np.uint16)].astype(int), table[single.view(np.uint16)].astype(int)
    ys, xs = np.nonzero(g_mip - g_one > 60)
    inner = (ys > 20) & (ys < 490) & (xs > 20) & (xs < 490)
    ys, xs = ys[inner][::max(1, inner.sum() // 400)], xs[inner][::max(1, inner.sum() // 400)]
    assert len(ys) >= 100
    pixels = grab(view)
    shown = np.array([pixels[int(r), int(c)].mean() for c, r in (screen_xy(view, (x, y, k)) for x, y in zip(xs, ys))])
    assert np.median(np.abs(shown - g_mip[ys, xs])) <= 15
    assert np.median(shown - g_one[ys, xs]) >= 40  # not the plain slice
    bar.set_slab("off", 10.0)  # back to the plain slice
    assert np.array_equal(view.image_item.image, table[single.view(np.uint16)])
    assert "MIP" not in view.overlay.slice_text


def test_minip_and_average_follow_the_scroll_and_labels_stay_the_centre_slice(win, qtbot):
    session, view = win.session, win.grid.views["axial"]
    volume = session.volume
    labels = session.add_label_map(name="slab")
    k = int(session.cursor[2])
    labels.paint((slice(k, k + 1), slice(100, 140), slice(100, 140)), np.ones((1, 40, 40), bool), 1)
    view.set_slab("average", 10.0)
    table = window_table_int16(session.window, session.invert)
    for step in (0, 1):
        view.scroll(step)
        kk = int(session.cursor[2])
        lo, hi = slab.slab_range(kk, volume.shape[0], 10.0, volume.spacing[2])
        mean = np.rint(volume.data[lo:hi].mean(axis=0, dtype=np.float32)).astype(np.int16)
        assert np.array_equal(view.image_item.image, table[mean.view(np.uint16)])
        item = next(it for lm, it, _ in view._layer_items if lm is labels)
        shown = item.image
        if kk == k:
            assert shown.shape == (512, 512) and shown[120, 120] == 1  # the painted slice only
        else:
            assert not shown.any()  # the neighbouring slice holds no label, though the slab spans k
    view.set_slab("minip", 10.0)
    kk = int(session.cursor[2])
    lo, hi = slab.slab_range(kk, volume.shape[0], 10.0, volume.spacing[2])
    assert np.array_equal(view.image_item.image, table[volume.data[lo:hi].min(axis=0).view(np.uint16)])
    with pytest.raises(ValueError):
        view.set_slab("median", 5.0)


def test_with_the_slab_off_slice_changes_never_touch_the_slab_code(win, qtbot, monkeypatch):
    view = win.grid.views["axial"]

    def boom(*_args, **_kwargs):
        raise AssertionError("slab code called with the slab off")

    monkeypatch.setattr(slab, "slab", boom)
    for k in range(win.session.volume.shape[0]):
        view.set_slice(k)
    view.set_slab("mip", 0.0)  # thickness 0 is off too
    view.set_slice(3)
    assert view.slab_mode == "off"
    assert np.array_equal(view.image_item.image,
                          window_table_int16(win.session.window, False)[win.session.volume.data[3].view(np.uint16)])
