import numpy as np
import pytest

from medviewer.core import Volume


def _oblique():
    a = np.deg2rad(20)
    return np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1.0]])


def test_index_world_round_trip_with_oblique_direction_and_anisotropic_spacing():
    v = Volume(np.zeros((4, 5, 6), np.int16), spacing=(0.5, 0.7, 3.0), origin=(10, -20, 30), direction=_oblique())
    ijk = np.array([[0, 0, 0], [5, 4, 3], [2.5, 1.25, 0.5]])
    xyz = v.index_to_world(ijk)
    assert np.allclose(xyz[0], (10, -20, 30))
    # one step along x moves 0.5 mm along the first direction column
    assert np.allclose(v.index_to_world((1, 0, 0)) - v.origin, 0.5 * _oblique()[:, 0])
    assert np.allclose(v.world_to_index(xyz), ijk)
    assert np.allclose(v.affine @ np.r_[ijk[1], 1], np.r_[xyz[1], 1])


def test_shape_size_and_value_lookup_use_itk_axis_order():
    data = np.arange(2 * 3 * 4).reshape(2, 3, 4)
    v = Volume(data)
    assert v.shape == (2, 3, 4) and v.size == (4, 3, 2)
    assert v.value_at((3, 2, 1)) == data[1, 2, 3]
    assert v.contains_index((3, 2, 1)) and not v.contains_index((4, 0, 0))


def test_2d_image_is_a_volume_of_one_slice_and_rgb_keeps_channels():
    grey = Volume(np.ones((7, 9), np.uint8))
    assert grey.shape == (1, 7, 9) and grey.is_2d and not grey.is_rgb
    rgb = Volume(np.zeros((1, 7, 9, 3), np.uint8), is_2d=True)
    assert rgb.is_rgb and rgb.size == (9, 7, 1)


def test_orientation_code_names_axes_like_itk():
    assert Volume(np.zeros((1, 1, 1))).orientation_code() == "LPS"
    ras = np.diag([-1.0, -1.0, 1.0])
    assert Volume(np.zeros((1, 1, 1)), direction=ras).orientation_code() == "RAS"


@pytest.mark.parametrize("kwargs", [dict(data=np.zeros((2, 2, 2, 2))), dict(data=np.zeros(5)),
                                    dict(data=np.zeros((2, 2, 2)), spacing=(1, 0, 1))])
def test_invalid_volumes_are_refused(kwargs):
    with pytest.raises(ValueError):
        Volume(**kwargs)


def test_copy_geometry_keeps_the_grid():
    v = Volume(np.zeros((3, 4, 5)), spacing=(1, 2, 3), origin=(1, 1, 1), direction=_oblique(), modality="CT")
    labels = v.copy_geometry(np.zeros((3, 4, 5), np.uint8))
    assert labels.spacing == v.spacing and labels.origin == v.origin
    assert np.allclose(labels.direction, v.direction) and labels.modality == "CT"
