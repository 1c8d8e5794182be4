"""The workspace of open images and linked cursors / windows in world coordinates (no Qt)."""
from __future__ import annotations

import numpy as np
import pytest

from medviewer.core.display import Window
from medviewer.core.linking import Linker, inverse_point
from medviewer.core.session import Session
from medviewer.core.volume import Volume
from medviewer.core.workspace import Workspace
from tests.conftest import shared
from tests.support.compare_study import resampled


def rotation_z(degrees: float) -> np.ndarray:
    t = np.radians(degrees)
    return np.array([[np.cos(t), -np.sin(t), 0], [np.sin(t), np.cos(t), 0], [0, 0, 1]])


def image(shape_zyx, spacing, origin, direction=np.eye(3), frame="", modality="MR") -> Volume:
    rng = np.random.default_rng(len(shape_zyx) + int(spacing[0] * 10))
    meta = {"FrameOfReferenceUID": frame} if frame else {}
    return Volume(rng.integers(0, 1000, shape_zyx).astype(np.int16), spacing=spacing, origin=origin,
                  direction=direction, modality=modality, metadata=meta)


def primary_with(volume: Volume) -> Session:
    session = Session()
    session.set_volume(volume, "a", title="T1 (series 3)")
    return session


def voxel_world(session: Session) -> np.ndarray:
    return session.volume.index_to_world(session.cursor)


def half_voxel(volume: Volume) -> float:
    return 0.5 * float(np.linalg.norm(volume.spacing)) + 1e-9


@pytest.fixture
def two_grids():
    """Two images of one frame on different grids: 1 mm isotropic vs 0.7 x 0.9 x 3 mm, turned 20°."""
    a = image((40, 50, 60), (1.0, 1.0, 1.0), (-30.0, -25.0, -20.0), frame="1.2.3")
    b = image((14, 60, 70), (0.7, 0.9, 3.0), (-10.0, -40.0, -22.0), rotation_z(20), frame="1.2.3")
    ws = Workspace(primary_with(a))
    entry = ws.add(b, "T2 (series 4)")
    return ws, Linker(ws), entry


def test_workspace_entries_ids_and_removal():
    ws = Workspace(primary_with(image((4, 5, 6), (1, 1, 1), (0, 0, 0))))
    seen = []
    ws.changed.connect(lambda: seen.append(len(ws.entries)))
    b = ws.add(image((4, 5, 6), (1, 1, 1), (0, 0, 0)), "B")
    c = ws.add(b.volume.copy_geometry(b.volume.data), "Gaussian of B", derived_from=b.id, operation="gaussian")
    assert [e.id for e in ws.entries] == ["image-1", "image-2", "image-3"]
    assert ws.primary.title == "T1 (series 3)" and c.session.title == "Gaussian of B"
    assert ws.get("image-3") is c and ws.entry_of(c.session) is c and ws.entry_of(Session()) is None
    with pytest.raises(KeyError, match="image-9"):
        ws.get("image-9")
    with pytest.raises(ValueError):
        ws.remove(ws.primary)
    ws.set_title(c, "Gaussian σ 1.0 mm of B")
    assert c.title == c.session.title == "Gaussian σ 1.0 mm of B"
    ws.remove(b)
    assert c.derived_from is None and seen == [2, 3, 3, 2]
    assert ws.add(b.volume, "D").id == "image-4"  # ids are never reused


def test_linked_cursor_lands_on_the_same_world_point(two_grids):
    ws, linker, b = two_grids
    a = ws.primary
    rng = np.random.default_rng(0)
    inside = 0
    for ijk in rng.integers(0, a.volume.size, (40, 3)):
        a.session.set_cursor(ijk)
        in_b = b.volume.world_to_index(voxel_world(a.session))
        expected_inside = bool(np.all(in_b > -0.5) and np.all(in_b < np.asarray(b.volume.size) - 0.5))
        assert linker.outside(b) == (not expected_inside)
        if expected_inside:
            inside += 1
            assert np.linalg.norm(voxel_world(b.session) - voxel_world(a.session)) <= half_voxel(b.volume)
    assert inside >= 8
    a.session.set_cursor((30, 25, 20))
    # and the other way: scrolling the second image moves the primary
    b.session.move_along(2, 1)
    assert np.linalg.norm(voxel_world(a.session) - voxel_world(b.session)) <= half_voxel(a.volume)


def test_a_point_outside_the_other_image_leaves_its_cursor_and_marks_it(two_grids):
    ws, linker, b = two_grids
    a = ws.primary
    a.session.set_cursor((30, 25, 20))
    before = b.session.cursor.copy()
    marks = []
    linker.outside_changed.connect(lambda e: marks.append((e.id, linker.outside(e))))
    a.session.set_cursor((0, 0, 39))  # a corner of A far above B's 42 mm slab
    assert linker.outside(b) and np.array_equal(b.session.cursor, before)
    a.session.set_cursor((30, 25, 20))
    assert not linker.outside(b) and marks == [("image-2", True), ("image-2", False)]


def test_unlinked_entry_stays_and_relinks_onto_the_shared_point(two_grids):
    ws, linker, b = two_grids
    a = ws.primary
    b.set_linked(False)
    before = b.session.cursor.copy()
    a.session.set_cursor((32, 27, 20))  # inside both
    assert np.array_equal(b.session.cursor, before)
    b.session.set_cursor((1, 1, 1))  # and the unlinked one does not drive the others
    assert tuple(a.session.cursor) == (32, 27, 20)
    b.set_linked(True)  # re-linked: it joins the point the others show
    assert np.linalg.norm(voxel_world(b.session) - voxel_world(a.session)) <= half_voxel(b.volume)
    linker.enabled = False
    a.session.set_cursor((30, 30, 30))
    assert np.linalg.norm(voxel_world(b.session) - voxel_world(a.session)) > half_voxel(b.volume)


def test_frames_of_reference_decide_what_links():
    a = image((10, 10, 10), (1, 1, 1), (0, 0, 0), frame="1.2.3")
    ws = Workspace(primary_with(a))
    linker = Linker(ws)
    other_study = ws.add(image((10, 10, 10), (1, 1, 1), (0, 0, 0), frame="9.9.9"), "prior")
    no_frame = ws.add(image((10, 10, 10), (1, 1, 1), (0, 0, 0)), "file")
    derived = ws.add(no_frame.volume.copy_geometry(no_frame.volume.data), "smoothed", derived_from=no_frame.id)
    assert linker.world_in(other_study, (1, 2, 3), ws.primary) is None
    assert linker.world_in(no_frame, (1, 2, 3), ws.primary) is None
    assert linker.linked_with(no_frame) == [derived]
    photo = image((1, 10, 10), (1, 1, 1), (0, 0, 0))
    photo.metadata["oriented"] = False  # a JPEG: pixel coordinates, no patient world
    xray, xray_copy = ws.add(photo, "photo"), ws.add(photo, "photo again")
    assert linker.world_in(xray, (1, 2, 0), no_frame) is None
    assert linker.linked_with(xray) == [xray_copy]
    start = other_study.session.cursor.copy()
    ws.primary.session.set_cursor((1, 2, 3))
    assert np.array_equal(other_study.session.cursor, start)  # another frame: not moved


def test_a_transform_relates_two_frames_both_ways():
    import SimpleITK as sitk

    a = image((30, 30, 30), (1, 1, 1), (0, 0, 0), frame="1.2.3")
    b = image((30, 30, 30), (1, 1, 1), (0, 0, 0), frame="4.5.6")
    ws = Workspace(primary_with(a))
    linker = Linker(ws)
    moving = ws.add(b, "prior")
    transform = sitk.Euler3DTransform((15, 15, 15), 0.0, 0.0, np.radians(10), (4.0, -3.0, 2.0))
    ws.set_transform(moving, transform, ws.primary)  # primary world -> prior world
    p = np.array([12.0, 9.0, 20.0])
    assert np.allclose(linker.world_in(moving, p, ws.primary), transform.TransformPoint(tuple(p)))
    assert np.allclose(linker.world_in(ws.primary, transform.TransformPoint(tuple(p)), moving), p, atol=1e-6)
    ws.primary.session.set_cursor((12, 9, 20))
    expected = np.asarray(transform.TransformPoint((12.0, 9.0, 20.0)))
    assert np.linalg.norm(voxel_world(moving.session) - expected) <= half_voxel(b)


def test_a_registration_result_lies_in_the_fixed_world():
    """Fixed without a frame of reference, moving with one: the result, resampled onto the fixed grid
    and derived from the moving image, links to the fixed image as it is, the moving one through the
    transform."""
    import SimpleITK as sitk

    fixed = image((20, 20, 20), (1, 1, 1), (0, 0, 0))
    moving_volume = image((20, 24, 24), (0.8, 0.8, 1), (2, 2, 0), frame="4.5.6")
    ws = Workspace(primary_with(fixed))
    linker = Linker(ws)
    moving = ws.add(moving_volume, "moving")
    result = ws.add(fixed.copy_geometry(fixed.data), "moving registered (rigid, MI)", derived_from=moving.id)
    transform = sitk.TranslationTransform(3, (1.5, -2.0, 0.5))
    ws.set_transform(moving, transform, ws.primary)
    p = np.array([8.0, 9.0, 10.0])
    assert np.allclose(linker.world_in(result, p, ws.primary), p)
    assert np.allclose(linker.world_in(moving, p, result), p + (1.5, -2.0, 0.5))


def test_a_deformation_without_closed_form_inverse_is_inverted():
    import SimpleITK as sitk

    grid = sitk.Image([20, 20, 20], sitk.sitkFloat32)
    bspline = sitk.BSplineTransformInitializer(grid, [4, 4, 4])
    params = np.array(bspline.GetParameters())
    params[::7] = 1.5  # a smooth deformation of up to a few mm
    bspline.SetParameters(tuple(params))
    q = np.array([9.0, 11.0, 8.0])
    p = inverse_point(bspline, q)
    assert np.allclose(bspline.TransformPoint(tuple(p)), q, atol=1e-3)


def test_linked_window_between_images_of_one_modality(two_grids):
    ws, linker, b = two_grids
    ct = ws.add(image((10, 10, 10), (1, 1, 1), (0, 0, 0), frame="1.2.3", modality="CT"), "CT")
    ct_window = ct.session.window
    ws.primary.session.set_window(Window(300.0, 100.0))
    assert b.session.window != Window(300.0, 100.0)  # not linked unless asked
    linker.link_window = True
    ws.primary.session.set_window(Window(500.0, 200.0))
    ws.primary.session.set_invert(True)
    assert b.session.window == Window(500.0, 200.0) and b.session.invert
    assert ct.session.window == ct_window and not ct.session.invert


def test_hippocampus_resampled_copy_links_on_the_world_point():
    """A real MR and a copy resampled onto a coarser, shifted grid (as a second series would be)."""
    from medviewer.io import discover

    path = next(iter(sorted(shared("hippocampus", "imagesTr").glob("*.nii.gz"))))
    volume = discover(str(path)).sources[0].load()
    second = resampled(volume, (1.4, 0.8, 2.1), (3.0, -2.0, 1.5))
    ws = Workspace(primary_with(volume))
    linker = Linker(ws)
    b = ws.add(second, "resampled")
    inside = 0
    for ijk in [(10, 20, 15), (20, 30, 20), (25, 12, 8), (5, 40, 30)]:
        ijk = np.minimum(ijk, np.asarray(volume.size) - 1)
        ws.primary.session.set_cursor(ijk)
        if linker.outside(b):
            continue
        inside += 1
        assert np.linalg.norm(voxel_world(b.session) - voxel_world(ws.primary.session)) <= half_voxel(second)
    assert inside >= 2


def test_a_new_primary_image_is_retitled_and_drops_what_related_to_the_old_one():
    import SimpleITK as sitk

    ws = Workspace(primary_with(image((10, 10, 10), (1, 1, 1), (0, 0, 0))))
    linker = Linker(ws)
    moving = ws.add(image((10, 10, 10), (1, 1, 1), (0, 0, 0), frame="7.7"), "prior")
    smoothed = ws.add(ws.primary.volume.copy_geometry(ws.primary.volume.data), "smoothed", derived_from="image-1")
    ws.set_transform(moving, sitk.TranslationTransform(3, (1.0, 0.0, 0.0)), ws.primary)
    assert linker.world_in(moving, (0, 0, 0), ws.primary) is not None
    ws.primary.session.set_volume(image((12, 12, 12), (1, 1, 1), (0, 0, 0), frame="8.8"), "b", title="T2 (series 9)")
    ws.primary_replaced()
    assert ws.primary.title == "T2 (series 9)"
    assert moving.transform is None and smoothed.derived_from is None
    assert linker.world_in(moving, (0, 0, 0), ws.primary) is None  # another frame, no transform any more
