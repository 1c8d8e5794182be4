"""What a reader expects when an image opens (issue 11, item 8): series named by description and
number (never a UID), the crosshair, measurement points and tools never leave the volume, and the
status bar says so when the mouse is off the image."""
import numpy as np
import pytest
from PySide6.QtCore import QPointF

from tests.conftest import DEMO


@pytest.fixture
def win(demo_window):
    return demo_window(1400, 850)


def test_layers_status_bar_and_cursor_panel_name_the_series_not_its_uid(win, qtbot):
    from medviewer.ui import hand_over

    hand_over.flush()
    rows = [win.layer_panel.list.item(r).text() for r in range(win.layer_panel.list.count())]
    assert "Image: CT Body 3.0" in rows
    assert win.statusBar().currentMessage().startswith("CT Body 3.0:")
    assert win.session.title == "CT Body 3.0" and win.session.source_id.startswith("noUID-")
    win.open_paths([str(DEMO / "mri_hippocampus" / "hippocampus_001.nii.gz")], wait=True)
    assert win.session.title == "hippocampus_001.nii.gz"
    assert "Image: hippocampus_001.nii.gz" in [win.layer_panel.list.item(r).text()
                                               for r in range(win.layer_panel.list.count())]


def test_a_dicom_series_with_a_number_is_called_by_it(qtbot, win):
    from pydicom.data import get_testdata_file

    win.open_paths([get_testdata_file("CT_small.dcm")], wait=True)
    assert win.session.title == "CT series (series 1)"  # no description: the modality and the number
    assert "1.3.6" not in win.session.title


def test_the_crosshair_and_measurements_stay_inside_the_volume(win, qtbot):
    view = win.grid.views["coronal"]
    size = np.array(win.session.volume.size)
    view.left_at(QPointF(-50, -50), dragging=False)
    assert (win.session.cursor >= 0).all() and (win.session.cursor < size).all()
    view.left_at(QPointF(1e5, 1e5), dragging=False)
    assert (win.session.cursor < size).all()
    view.set_tool("distance")
    view.left_at(QPointF(-80, -80), dragging=False)
    view.left_at(QPointF(1e5, 20), dragging=False)
    m = win.session.measurements[-1]
    volume = win.session.volume
    for point in m.points:
        ijk = volume.world_to_index(point)
        assert (ijk >= -1e-6).all() and (ijk <= size - 1 + 1e-6).all()


def test_the_status_bar_says_when_the_mouse_is_off_the_image(win):
    probe = win.session.probe((-5, 3, 2))
    win.show_probe(probe)
    assert win.status_index.text() == "outside the image" and win.status_value.text() == ""
    win.show_probe(win.session.probe((10, 20, 3)))
    assert win.status_index.text() == "voxel (10, 20, 3)" and win.status_value.text().endswith("HU")


def test_a_seg_beside_its_series_opens_as_a_label_layer_without_a_dialog(win, qtbot, tmp_path):
    import shutil

    from medviewer.io import discover
    from medviewer.io.dicom_seg import write_seg
    from tests.unit.test_dicom_seg import ct_labels

    series = discover(str(DEMO / "ct_chest_20")).find(None)
    volume = series.load()
    folder = tmp_path / "study"
    shutil.copytree(DEMO / "ct_chest_20", folder)
    expected = ct_labels(volume)
    write_seg(expected, volume, series, str(folder / "tumour_seg.dcm"))
    problems = list(win.problems)
    win.open_paths([str(folder)], wait=True)
    assert len(win.sources) == 1 and win.problems == problems  # no second "series", no warning
    names = [m.name for m in win.session.label_maps]
    assert names == ["tumour_seg.dcm"]
    assert np.array_equal(win.session.label_maps[0].data, expected.data)
    assert "tumour_seg.dcm" in win.statusBar().currentMessage()


def test_an_image_without_pixel_spacing_has_no_mm_scale_bar(win, qtbot):
    from tests.gui.test_main_window import grab

    view = win.grid.active_view()
    assert view.overlay.show_scale_bar  # the CT: a 100 mm bar
    win.open_paths([str(DEMO / "xray" / "chest_xray_pneumonia.jpeg")], wait=True)
    view = win.grid.active_view()
    assert not win.session.volume.spacing_known and not view.overlay.show_scale_bar
    assert "spacing unknown" in win.statusBar().currentMessage()
    view.set_tool("distance")
    from PySide6.QtCore import QPointF

    view.left_at(QPointF(10, 10), dragging=False)
    view.left_at(QPointF(40, 50), dragging=False)
    assert win.session.measurements[-1].label().endswith(" px")
    assert grab(view).std() > 10
