import numpy as np
import pytest

from medviewer.core import Volume
from medviewer.core.display import Window, auto_window, default_window, preset
from medviewer.core.measurements import Measurement
from medviewer.core.session import Session
from medviewer.core.slicing import plane_geometry


def _lps_volume():
    data = np.arange(4 * 5 * 6).reshape(4, 5, 6)  # z=4, y=5, x=6
    return Volume(data, spacing=(0.5, 0.8, 2.0))


def test_axial_plane_of_an_lps_volume_is_the_z_slice_unflipped():
    v = _lps_volume()
    g = plane_geometry(v, "axial")
    assert (g.normal_axis, g.h_axis, g.v_axis, g.h_flip, g.v_flip) == (2, 0, 1, False, False)
    assert g.labels == ("R", "L", "A", "P")
    assert np.array_equal(g.slice(v.data, 2), v.data[2])
    assert (g.h_spacing, g.v_spacing, g.n_slices) == (0.5, 0.8, 4)


def test_coronal_and_sagittal_put_superior_at_the_top():
    v = _lps_volume()
    cor = plane_geometry(v, "coronal")
    assert cor.labels == ("R", "L", "S", "I") and cor.v_flip and not cor.h_flip
    s = cor.slice(v.data, 3)  # y = 3
    assert s.shape == (4, 6) and np.array_equal(s[0], v.data[3, 3, :])  # top row = highest z
    sag = plane_geometry(v, "sagittal")
    assert sag.labels == ("A", "P", "S", "I")
    s = sag.slice(v.data, 1)  # x = 1
    assert s.shape == (4, 5) and np.array_equal(s[-1], v.data[0, :, 1])


def test_pixel_index_round_trip_for_every_plane():
    v = _lps_volume()
    for plane in ("axial", "coronal", "sagittal"):
        g = plane_geometry(v, plane)
        ijk = np.array([4, 3, 1])
        col, row, k = g.pixel_from_index(ijk)
        assert np.array_equal(g.index_from_pixel(col, row, k), ijk)
        assert g.slice(v.data, int(k))[int(row), int(col)] == v.data[1, 3, 4]


def test_ras_stored_volume_is_still_shown_radiologically():
    data = np.arange(2 * 3 * 4).reshape(2, 3, 4)
    v = Volume(data, direction=np.diag([-1.0, -1.0, 1.0]))  # x towards R, y towards A (NIfTI-like)
    g = plane_geometry(v, "axial")
    assert g.h_flip and g.v_flip
    # screen top-left must be the voxel most to the patient's right and anterior
    top_left = g.index_from_pixel(0, 0, 0)
    world = v.index_to_world(top_left)
    corners = v.index_to_world(np.array([[0, 0, 0], [3, 2, 0]]))
    assert world[0] == corners[:, 0].min() and world[1] == corners[:, 1].min()


def test_sagittal_acquisition_is_detected_from_the_direction():
    # index x runs posterior, y inferior, z towards left: a sagittal MR stack
    d = np.array([[0, 0, 1.0], [1, 0, 0], [0, -1.0, 0]])
    v = Volume(np.zeros((7, 8, 9)), direction=d)
    assert plane_geometry(v, "sagittal").normal_axis == 2
    assert plane_geometry(v, "axial").normal_axis == 1


def test_presets_and_auto_window():
    assert (preset("lung").width, preset("lung").level) == (1500, -600)
    assert preset("soft-tissue") == preset("abdomen")
    with pytest.raises(KeyError):
        preset("nope")
    data = np.concatenate([np.zeros(50), np.linspace(100, 200, 10000), [1e6] * 50])
    w = auto_window(data)
    assert 99 <= w.low <= 102 and 198 <= w.high <= 201  # outliers ignored
    assert default_window(data, "CT") == preset("abdomen")
    assert default_window(data, "CR", {"WindowWidth": 300.0, "WindowCenter": 150.0}) == Window(300, 150)
    # MR: the image's own histogram, not the header's (often the scanner's whole) range
    assert default_window(data, "MR", {"WindowWidth": 2e6, "WindowCenter": 1e6}) == w


def test_a_real_mr_opens_with_its_histogram_window_not_the_header_range():
    pydicom = pytest.importorskip("pydicom")
    from pydicom.data import get_testdata_file

    from medviewer.io import discover

    path = get_testdata_file("MR2_J2KI.dcm")  # header window 2000/1000 for pixels 0..600
    header = pydicom.dcmread(path, stop_before_pixels=True)
    volume = discover(path).sources[0].load()
    window = default_window(volume.data, volume.modality, volume.metadata)
    assert (float(header.WindowWidth), float(header.WindowCenter)) == (2000.0, 1000.0)
    lo, hi = np.percentile(volume.data, [1, 99])
    assert window == Window(float(hi - lo), float((hi + lo) / 2)) and window.high <= volume.data.max()


def test_measurements_in_mm_and_degrees():
    d = Measurement("distance", [[0, 0, 0], [3, 4, 0]])
    assert d.value == pytest.approx(5.0) and d.label() == "5.0 mm"
    a = Measurement("angle", [[1, 0, 0], [0, 0, 0], [0, 2, 0]])
    assert a.value == pytest.approx(90.0)
    assert Measurement.from_dict(d.to_dict()).value == pytest.approx(5.0)
    with pytest.raises(ValueError):
        Measurement("distance", [[0, 0, 0]])


def test_session_cursor_is_clamped_and_events_fire():
    s = Session()
    seen = []
    s.cursor_changed.connect(lambda c: seen.append(tuple(c)))
    s.set_volume(_lps_volume(), "v")
    assert tuple(s.cursor) == (3, 2, 2)
    s.move_along(2, 10)
    assert s.cursor[2] == 3 and seen[-1] == (3, 2, 3)
    probe = s.probe((1, 2, 3))
    assert probe["value"] == _lps_volume().data[3, 2, 1]
    assert np.allclose(probe["world"], (0.5, 1.6, 6.0))
