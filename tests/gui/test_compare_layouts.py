"""Several images side by side: compare layouts, linked cursors / zoom / pan in world coordinates,
unlinking, points outside the other image, the hanging rule, Open beside, user window presets."""
from __future__ import annotations

import numpy as np
import pytest

from medviewer.core.display import Window
from medviewer.ui.qt import QtCore, Qt
from tests.conftest import DEMO, shared
from tests.support.compare_study import SeriesSpec, resampled, write_study


@pytest.fixture
def study(tmp_path):
    """T1 1 x 1 x 3 mm and T2 0.8 x 0.8 x 4 mm (a smaller box, shifted), one frame of reference."""
    return write_study(tmp_path / "study", [
        SeriesSpec("T1", 3, shape=(12, 40, 40), spacing=(1.0, 1.0, 3.0), origin=(-20.0, -20.0, -18.0)),
        SeriesSpec("T2", 4, shape=(7, 30, 34), spacing=(0.8, 0.8, 4.0), origin=(-12.0, -14.0, -13.0))])


@pytest.fixture
def side_by_side(window, study):
    win = window(study["T1"])
    win.open_beside([str(study["T2"])], wait=True)
    return win


def world_of(session) -> np.ndarray:
    return session.volume.index_to_world(session.cursor)


def half_voxel(volume) -> float:
    return 0.5 * float(np.linalg.norm(volume.spacing)) + 1e-6


def centre_world(view) -> np.ndarray:
    (x0, x1), (y0, y1) = view.viewbox.viewRange()
    ijk = view.index_at(QtCore.QPointF((x0 + x1) / 2, (y0 + y1) / 2))
    return view.session.volume.index_to_world(ijk)


def click(view, world) -> None:
    """A navigate click where `world` lies on the view's plane."""
    x, y = view._view_xy(view.session.volume.world_to_index(world))
    view.left_at(QtCore.QPointF(x, y), dragging=False)


def test_open_beside_shows_both_and_links_cursors_on_the_world_point(side_by_side, qtbot):
    win = side_by_side
    a, b = win.grid.compare_panes()
    assert win.grid.layout_name == "compare-1x2" and win.actions_.layout_actions["compare-1x2"].isChecked()
    assert a.entry is win.workspace.primary and a.view is win.grid.views["axial"]  # annotation tools work there
    assert b.entry.title == "T2 (series 4)" and b.view.session is b.entry.session and b.view.isVisible()
    for world in ([0.0, 0.0, 0.0], [5.0, -6.0, 9.0], [-7.0, 8.0, -9.0]):
        click(a.view, world)
        assert not win.linker.outside(b.entry) and b.outside_label.text() == ""
        assert np.linalg.norm(world_of(b.entry.session) - world_of(win.session)) <= half_voxel(b.entry.volume)
        # the other pane shows the slice through that point
        assert b.view._slice_index == b.entry.session.cursor[2]
    # scrolling the second pane scrolls the first, on the same world point
    b.view.scroll(1)
    assert np.linalg.norm(world_of(win.session) - world_of(b.entry.session)) <= half_voxel(win.session.volume)


def test_linked_zoom_and_pan_share_scale_and_world_centre(side_by_side, qtbot):
    win = side_by_side
    a, b = win.grid.compare_panes()
    qtbot.waitUntil(lambda: abs(a.view.pixels_per_mm() - b.view.pixels_per_mm()) < 1e-6, timeout=3000)
    a.view.zoom(2.0)
    a.view.viewbox.translateBy((4.0, -3.0))
    assert b.view.pixels_per_mm() == pytest.approx(a.view.pixels_per_mm(), rel=1e-3)
    assert np.linalg.norm(centre_world(b.view)[:2] - centre_world(a.view)[:2]) < 0.5
    # unlinked: zoom and cursor stay
    b.link_button.click()
    assert not b.entry.linked
    ppm, cursor = b.view.pixels_per_mm(), b.entry.session.cursor.copy()
    a.view.zoom(1.5)
    click(a.view, [3.0, 3.0, 3.0])
    assert b.view.pixels_per_mm() == pytest.approx(ppm) and np.array_equal(b.entry.session.cursor, cursor)
    b.link_button.click()  # linked again: it joins the shown point
    assert np.linalg.norm(world_of(b.entry.session) - world_of(win.session)) <= half_voxel(b.entry.volume)


def test_a_point_outside_the_other_image_is_marked_and_leaves_its_cursor(side_by_side):
    win = side_by_side
    a, b = win.grid.compare_panes()
    click(a.view, [0.0, 0.0, 0.0])
    before = b.entry.session.cursor.copy()
    click(a.view, [-19.0, -19.0, 0.0])  # inside T1, left of and behind T2's box
    assert win.linker.outside(b.entry) and b.outside_label.text() == "outside the image"
    assert np.array_equal(b.entry.session.cursor, before)
    click(a.view, [1.0, 1.0, 0.0])
    assert b.outside_label.text() == ""


def test_pane_clicked_reports_the_image_and_world_point(side_by_side, qtbot):
    win = side_by_side
    _, b = win.grid.compare_panes()
    seen = []
    win.grid.pane_clicked.connect(lambda entry, world: seen.append((entry, np.asarray(world))))
    vb = b.view.viewbox
    target = np.array([2.0, -3.0, world_of(b.entry.session)[2]])
    x, y = b.view._view_xy(b.entry.volume.world_to_index(target))
    scene = vb.mapViewToScene(QtCore.QPointF(x, y))
    pos = b.view.graphics.mapFromScene(scene)
    qtbot.mouseClick(b.view.graphics.viewport(), Qt.LeftButton, pos=pos)
    assert len(seen) == 1 and seen[0][0] is b.entry
    assert np.linalg.norm(seen[0][1] - target) <= half_voxel(b.entry.volume) + 0.5


def test_layouts_switch_back_and_forth_and_a_removed_image_goes(side_by_side, qtbot):
    win = side_by_side
    entry = win.grid.compare_panes()[1].entry
    win.set_layout("compare-2x2")
    panes = win.grid.compare_panes()
    assert len(panes) == 4 and all(p.view is not None and p.view.isVisible() for p in panes)
    assert [p.plane for p in panes] == ["axial", "axial", "coronal", "coronal"]
    panes[3].set_plane("sagittal")
    assert panes[3].view.plane == "sagittal" and panes[3].view.session is entry.session
    win.set_layout("1x3")
    assert all(v.isVisible() and v.parent() is win.grid for v in win.grid.views.values())
    assert win.grid.compare_panes() == []
    win.set_layout("compare-2x2")
    assert win.grid.compare_panes()[3].plane == "sagittal"  # the user's choice stays
    extra = [p.view for p in win.grid.compare_panes() if p.entry is entry]
    win.workspace.remove(entry)
    assert all(p.entry is win.workspace.primary for p in win.grid.compare_panes())
    qtbot.waitUntil(lambda: not any(v is w for w in win.grid.findChildren(type(extra[0])) for v in extra), timeout=3000)
    entry.session.set_cursor((1, 1, 1))  # someone still holding the removed image's session ...
    entry.session.set_window(Window(10.0, 5.0))  # ... reaches no deleted view
    entry.session.set_volume(entry.volume)


def test_hanging_rule_opens_the_latest_series_of_each_kind(window, tmp_path):
    folder = tmp_path / "mr"
    write_study(folder, [SeriesSpec("T1", 3), SeriesSpec("T2", 4, spacing=(0.8, 0.8, 4.0)),
                         SeriesSpec("T2", 7, shape=(6, 30, 30)), SeriesSpec("FLAIR", 5, shape=(8, 36, 36))])
    win = window(folder)
    first = win.session.title
    latest = {"T1": "T1 (series 3)", "FLAIR": "FLAIR (series 5)", "T2": "T2 (series 7)"}
    latest[first.split()[0]] = first  # the opened series stands for its kind
    number = {t: int(t.split("series ")[1].rstrip(")")) for t in latest.values()}
    expected = [first] + sorted((t for t in latest.values() if t != first), key=number.get)
    assert win.grid.layout_name == "compare-2x2"
    titles = [p.entry.title for p in win.grid.compare_panes()]
    assert titles[:3] == expected and len(win.workspace.entries) == 3
    assert "Hanging rule" in win.statusBar().currentMessage()
    win.set_hanging(False)
    assert not win.hanging_enabled()


def test_a_single_series_keeps_the_mpr_layout(window, study):
    win = window(study["T1"])
    assert win.grid.layout_name == "1x3" and len(win.workspace.entries) == 1


def test_series_browser_open_beside(window, study, qtbot, tmp_path):
    from medviewer.io import discover

    win = window(study["T1"])
    source = discover(str(study["T2"])).sources[0]
    win.series_browser.set_sources([win.current_source, source])
    item = win.series_browser.list.item(1)
    menu = win.series_browser.context_actions(item)
    assert [a.text() for a in menu.actions()] == ["Open", "Open beside"]
    menu.actions()[1].trigger()
    qtbot.waitUntil(lambda: len(win.workspace.entries) == 2, timeout=10000)
    assert win.grid.layout_name == "compare-1x2" and win.grid.compare_panes()[1].entry.title == "T2 (series 4)"


def test_user_window_presets_are_saved_listed_and_applied_to_the_pane_in_use(side_by_side, window, study):
    win = side_by_side
    a, b = win.grid.compare_panes()
    click(b.view, world_of(b.entry.session))  # the user works in the second pane
    assert win.grid.active_entry() is b.entry
    b.entry.session.set_window(Window(321.0, 123.0))
    assert win.actions_.save_window_preset("My T2") == "My T2"
    combo = [win.actions_.preset_combo.itemText(i) for i in range(win.actions_.preset_combo.count())]
    assert "My T2" in combo and "brain" in combo
    b.entry.session.set_window(Window(50.0, 5.0))
    primary_window = win.session.window
    win.apply_preset("My T2")
    assert b.entry.session.window == Window(321.0, 123.0) and win.session.window == primary_window
    problems = len(win.problems)
    assert win.actions_.save_window_preset("lung") is None and len(win.problems) == problems + 1  # a built-in name
    again = window(study["T1"])  # another window reads the saved settings
    assert "My T2" in [again.actions_.preset_combo.itemText(i) for i in range(again.actions_.preset_combo.count())]
    again.apply_preset("My T2")
    assert again.session.window == Window(321.0, 123.0)
    again.actions_.delete_preset("My T2")
    assert "My T2" not in [again.actions_.preset_combo.itemText(i) for i in range(again.actions_.preset_combo.count())]


def test_two_x_rays_side_by_side(window):
    xray = DEMO / "xray" / "chest_xray_pneumonia.jpeg"
    win = window(xray)
    win.open_beside([str(xray)], wait=True)
    assert win.grid.layout_name == "compare-1x2"
    panes = win.grid.compare_panes()
    assert [p.plane for p in panes] == ["axial", "axial"] and not panes[1].plane_combo.isEnabled()
    click(panes[0].view, win.session.volume.index_to_world((100, 80, 0)))
    assert tuple(panes[1].entry.session.cursor) == (100, 80, 0)  # one file twice: the same point


def test_hippocampus_beside_a_resampled_copy(window, tmp_path):
    """A real MR beside a copy on a coarser, shifted grid: the cursors meet on the world point."""
    from medviewer.io import open_volume
    from medviewer.io.writer import write_volume

    path = sorted(shared("hippocampus", "imagesTr").glob("*.nii.gz"))[0]
    copy = write_volume(resampled(open_volume(str(path)), (1.3, 0.7, 2.0), (2.0, -1.5, 1.0)),
                        str(tmp_path / "resampled.nii.gz"))
    win = window(path)
    win.open_beside([str(copy)], wait=True)
    a, b = win.grid.compare_panes()
    met = 0
    for ijk in [(10, 20, 15), (20, 25, 18), (15, 30, 10)]:
        ijk = np.minimum(ijk, np.asarray(win.session.volume.size) - 1)
        click(a.view, win.session.volume.index_to_world(ijk))
        if not win.linker.outside(b.entry):
            met += 1
            assert np.linalg.norm(world_of(b.entry.session) - world_of(win.session)) <= half_voxel(b.entry.volume)
    assert met >= 2


def grey_of(widget) -> np.ndarray:
    image = widget.grab().toImage().convertToFormat(widget.grab().toImage().Format.Format_Grayscale8)
    buffer = np.frombuffer(image.constBits(), np.uint8, image.sizeInBytes())
    return buffer.reshape(image.height(), image.bytesPerLine())[:, :image.width()]


def test_every_pane_of_2x2_draws_its_image(side_by_side, qtbot):
    win = side_by_side
    win.set_layout("compare-2x2")
    qtbot.wait(50)
    for pane in win.grid.compare_panes():
        grey = grey_of(pane.view)
        assert grey.std() > 10 and (grey > 60).mean() > 0.05, (pane.entry.title, pane.plane)


def test_open_beside_in_the_background_and_a_bad_file(window, study, qtbot, tmp_path):
    win = window(study["T1"])
    broken = tmp_path / "broken.nii.gz"
    broken.write_bytes(b"\x1f\x8b not really a NIfTI")
    problems = len(win.problems)
    win.open_beside([str(broken)], wait=True)
    assert len(win.problems) > problems and "broken.nii.gz" in win.problems[-1]
    assert len(win.workspace.entries) == 1 and win.grid.layout_name == "1x3"  # nothing changed
    win.open_beside([str(study["T2"])])  # off the GUI thread, as the menu does it
    qtbot.waitUntil(lambda: len(win.workspace.entries) == 2, timeout=10000)
    assert win.grid.layout_name == "compare-1x2" and win.grid.compare_panes()[1].entry.title == "T2 (series 4)"
