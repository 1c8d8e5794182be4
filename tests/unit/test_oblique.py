"""Oblique MPR (core/oblique.py): a rotated plane resliced with trilinear interpolation matches
SimpleITK's Resample of the same plane; the grid plane reproduces the slice; rotations keep the
three planes perpendicular; the oblique brush paints the voxels the plane cuts within the radius."""
import numpy as np
import pytest
import SimpleITK as sitk

from medviewer.core import Volume
from medviewer.core.oblique import (MprPlanes, letters, obliquity_deg, patient_axes_rotation, plane_for,
                                    reslice, rotation_about)
from medviewer.core.slicing import PLANES, plane_geometry
from medviewer.processing.label_tools import oblique_stroke


def _rotated_volume():
    """A smooth random volume on an oblique, anisotropic grid (a tilted acquisition)."""
    rng = np.random.default_rng(7)
    from scipy import ndimage

    data = ndimage.gaussian_filter(rng.normal(size=(14, 20, 22)), 1.5).astype(np.float32) * 1000
    direction = rotation_about([1, 2, 0.5], np.radians(17))
    return Volume(data, spacing=(0.9, 1.2, 2.0), origin=(-10.0, 5.0, 30.0), direction=direction)


def _sitk_plane(volume, plane, w, cval):
    image = sitk.GetImageFromArray(volume.data)
    image.SetSpacing(volume.spacing)
    image.SetOrigin(volume.origin)
    image.SetDirection(volume.direction.flatten().tolist())
    ref = sitk.Image(plane.n_cols, plane.n_rows, 1, sitk.sitkFloat32)
    ref.SetSpacing((plane.pixel, plane.pixel, 1.0))
    ref.SetOrigin(tuple(plane.world(0.5 * plane.pixel, 0.5 * plane.pixel, w)))
    ref.SetDirection(plane.axes.flatten().tolist())  # columns r, d, n
    out = sitk.Resample(image, ref, sitk.Transform(), sitk.sitkLinear, cval, sitk.sitkFloat32)
    return sitk.GetArrayFromImage(out)[0]


@pytest.mark.parametrize("plane_name", PLANES)
def test_oblique_reslice_matches_simpleitk_resample(plane_name):
    v = _rotated_volume()
    g = plane_geometry(v, plane_name)
    rotation = rotation_about([0.3, -1, 0.7], np.radians(28)) @ rotation_about([1, 0, 0], np.radians(-12))
    plane = plane_for(v, g, rotation)
    centre = v.index_to_world(np.array(v.size) / 2 - 0.3)
    w = float(centre @ plane.normal)
    ours = reslice(v.data, v, plane, w, order=1, cval=-5000.0)
    theirs = _sitk_plane(v, plane, w, -5000.0)
    assert ours.shape == theirs.shape == (plane.n_rows, plane.n_cols)
    inside = theirs != -5000.0
    assert inside.mean() > 0.2  # the plane crosses a good part of the volume
    # ITK and we keep the same voxels (up to points within 1e-4 voxel of the half-voxel border)
    assert np.mean((ours != -5000.0) != inside) < 0.002
    both = inside & (ours != -5000.0)
    np.testing.assert_allclose(ours[both], theirs[both], atol=0.05)  # values ~ +-500


def test_the_unrotated_plane_through_a_voxel_is_that_slice():
    data = np.arange(5 * 6 * 7, dtype=np.int16).reshape(5, 6, 7)
    v = Volume(data, spacing=(0.8, 0.8, 2.5))
    for name in PLANES:
        g = plane_geometry(v, name)
        plane = plane_for(v, g, np.eye(3))
        if min(g.h_spacing, g.v_spacing) != 0.8 or g.h_spacing != g.v_spacing:
            continue  # only the axial plane has square pixels of the smallest spacing
        k = 3
        w = float(v.index_to_world([k, k, k]) @ plane.normal)
        np.testing.assert_allclose(reslice(data, v, plane, w, order=1), g.slice(data, k), atol=1e-4)
        assert np.array_equal(reslice(data, v, plane, w, order=0), g.slice(data, k))
        assert plane.step == pytest.approx(v.spacing[g.normal_axis])
        assert (plane.n_cols, plane.n_rows) == (g.n_h, g.n_v)


def test_rotating_in_one_view_turns_the_other_two_and_keeps_them_perpendicular():
    v = _rotated_volume()
    planes = MprPlanes()
    events = []
    planes.changed.connect(lambda: events.append(1))
    axial_normal = plane_for(v, plane_geometry(v, "axial"), np.eye(3)).normal
    planes.rotate("axial", axial_normal, np.radians(30))
    assert not planes.is_rotated("axial") and planes.is_rotated("coronal") and planes.is_rotated("sagittal")
    normals = {p: plane_for(v, plane_geometry(v, p), planes.rotations[p]).normal for p in PLANES}
    cor = plane_for(v, plane_geometry(v, "coronal"), planes.rotations["coronal"])
    planes.rotate("coronal", cor.normal, np.radians(-20))
    normals = {p: plane_for(v, plane_geometry(v, p), planes.rotations[p]).normal for p in PLANES}
    for a, b in (("axial", "coronal"), ("axial", "sagittal"), ("coronal", "sagittal")):
        assert abs(normals[a] @ normals[b]) < 1e-9
    assert planes.is_rotated("axial")
    planes.reset()
    assert not planes.is_rotated() and len(events) == 3


def test_patient_axes_rotation_straightens_an_oblique_acquisition():
    v = _rotated_volume()
    assert obliquity_deg(v) > 5
    r = patient_axes_rotation(v)
    assert np.allclose(r @ r.T, np.eye(3)) and np.linalg.det(r) == pytest.approx(1.0)
    axial = plane_for(v, plane_geometry(v, "axial"), r)
    assert np.allclose(np.abs(axial.axes), np.eye(3), atol=1e-9)  # right = x, down = y, normal = z
    assert letters(axial.axes) == ("R", "L", "A", "P")
    assert obliquity_deg(Volume(np.zeros((2, 2, 2)))) == pytest.approx(0.0)


def test_oblique_brush_paints_the_voxels_the_plane_cuts_within_the_radius():
    v = _rotated_volume()
    rotation = rotation_about([1, 1, 0], np.radians(35))
    plane = plane_for(v, plane_geometry(v, "axial"), rotation)
    centre_ijk = np.array([10.2, 9.7, 6.4])
    centre = v.index_to_world(centre_ijk)
    radius = 4.0
    region, mask = oblique_stroke(v.shape, v.direction @ np.diag(v.spacing), [centre_ijk], radius, plane.normal)
    painted = np.zeros(v.shape, bool)
    painted[region] = mask
    z, y, x = np.indices(v.shape)
    world = v.index_to_world(np.stack([x, y, z], -1).reshape(-1, 3)).reshape(v.shape + (3,)) - centre
    dist = world @ plane.normal
    in_plane = np.linalg.norm(world - dist[..., None] * plane.normal, axis=-1)
    want = (np.abs(dist) <= plane.half_voxel) & (in_plane <= radius)
    want[tuple(np.round(centre_ijk).astype(int)[::-1])] = True  # the voxel under the brush, always
    assert want.sum() > 20
    assert np.array_equal(painted, want)
    # the painted disc shows filled on the plane (nearest-voxel reslice): no holes within the radius
    shown = reslice(painted.astype(np.uint8), v, plane, float(centre @ plane.normal), order=0)
    cx, cy, _ = plane.view_xy(centre)
    rows, cols = np.indices(shown.shape)
    r_mm = np.hypot((cols + 0.5) * plane.pixel - cx, (rows + 0.5) * plane.pixel - cy)
    assert shown[r_mm <= radius - max(v.spacing)].all()
    assert not shown[r_mm > radius + max(v.spacing)].any()


def test_a_turned_plane_knows_which_edited_regions_it_passes_through():
    v = _rotated_volume()
    plane = plane_for(v, plane_geometry(v, "axial"), rotation_about([1, 0, 0], np.radians(30)))
    centre = v.index_to_world([10, 10, 7])
    w = float(centre @ plane.normal)
    assert plane.meets(v, (slice(6, 9), slice(9, 12), slice(9, 12)), w)
    assert plane.meets(v, (slice(None), slice(None), slice(None)), w)
    far = (slice(0, 1), slice(0, 1), slice(0, 1))
    corner = v.index_to_world([0, 0, 0])
    assert plane.meets(v, far, float(corner @ plane.normal))
    assert not plane.meets(v, far, float(corner @ plane.normal) + 5 * max(v.spacing))
