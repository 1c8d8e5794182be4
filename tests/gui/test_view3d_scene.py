"""Scene3D on an offscreen (EGL) render window, without Qt: pixels of real renderings.

Volume rendering of the demo CT and of synthetic volumes with known blobs and spheres: presets,
camera presets in LPS world, picking, clipping, MIP, downsampling past the 3D-texture limit, and the
reasons given for a 2D image and for a machine without OpenGL.
"""
from __future__ import annotations

import numpy as np
import pytest

from medviewer.core.errors import MedViewerError
from medviewer.core.volume import Volume
from tests.conftest import DEMO

SIZE = 160


@pytest.fixture(scope="module", autouse=True)
def needs_opengl():
    from medviewer.ui.view3d.vtk_bridge import opengl_problem
    problem = opengl_problem()
    if problem:
        pytest.skip(problem)


@pytest.fixture
def scene():
    from medviewer.ui.view3d.scene import Scene3D
    from medviewer.ui.view3d.vtk_bridge import offscreen_render_window
    s = Scene3D(offscreen_render_window(SIZE, SIZE))
    yield s
    s.close()


@pytest.fixture(scope="module")
def demo_volume():
    from medviewer.io import discover
    return discover(DEMO / "ct_chest_20").sources[0].load()


def ball(shape_zyx, centre_xyz, radius) -> np.ndarray:
    z, y, x = np.indices(shape_zyx)
    cx, cy, cz = centre_xyz
    return (x - cx) ** 2 + (y - cy) ** 2 + (z - cz) ** 2 <= radius ** 2


def ct(data_mask: np.ndarray, **geometry) -> Volume:
    """A CT volume: air (-1000 HU) with bone (1200 HU) where the mask is."""
    data = np.where(data_mask, 1200, -1000).astype(np.int16)
    return Volume(data=data, modality="CT", **geometry)


def foreground(rgb: np.ndarray) -> np.ndarray:
    """Pixels that are not the background."""
    from medviewer.ui.view3d.scene import BACKGROUND
    bg = np.round(np.asarray(BACKGROUND) * 255)
    return np.abs(rgb.astype(int) - bg).sum(axis=2) > 30


def centroid(rgb: np.ndarray) -> np.ndarray:
    """(column, row) of the foreground, as fractions of the width and height (row 0 at the top)."""
    rows, cols = np.nonzero(foreground(rgb))
    assert rows.size > 20, "nothing was rendered"
    return np.array([cols.mean() / rgb.shape[1], rows.mean() / rgb.shape[0]])


def test_demo_ct_renders_and_changes_with_the_preset(scene, demo_volume):
    scene.set_volume(demo_volume)
    scene.set_camera("S")
    assert scene.preset == "CT bone" and scene.downsampled is None
    bone = scene.capture()
    assert bone.shape == (SIZE, SIZE, 3) and bone.dtype == np.uint8
    assert foreground(bone).mean() > 0.05  # the chest fills a good part of the view
    assert scene.first_frame_ms is not None and scene.first_frame_ms > 0
    scene.set_preset("CT soft tissue")
    soft = scene.capture()
    assert np.abs(soft.astype(int) - bone).mean() > 5
    scene.set_preset("CT lung")
    lung = scene.capture()
    assert np.abs(lung.astype(int) - soft).mean() > 5
    with pytest.raises(MedViewerError, match="unknown volume-rendering preset"):
        scene.set_preset("CT-Bone-typo")


def test_opacity_editor_moves_the_ramp(scene, demo_volume):
    scene.set_volume(demo_volume)
    scene.set_camera("S")
    window, level = scene.opacity_ramp
    before = scene.capture()
    assert scene.shift_opacity(0, 400) == (window, level + 400)  # fewer voxels pass the ramp
    after = scene.capture()
    assert foreground(after).sum() < foreground(before).sum()
    scene.set_preset("CT bone")  # a preset starts from its own ramp again
    assert scene.opacity_ramp == (window, level)


# blob at index (48, 32, 32) of a 64^3 grid, on the +x side; where it appears depends on where +x
# points in LPS world: identity direction -> patient left (L), flipped x -> patient right (R)
@pytest.mark.parametrize("flip", [False, True])
@pytest.mark.parametrize("view", ["A", "P", "S", "I"])
def test_camera_presets_show_a_lateral_blob_on_the_expected_side(scene, view, flip):
    direction = np.diag([-1.0 if flip else 1.0, 1.0, 1.0])
    scene.set_volume(ct(ball((64, 64, 64), (48, 32, 32), 6), direction=direction, origin=(10, -20, 30)))
    scene.set_camera(view)
    column = centroid(scene.capture())[0]
    on_left_of_patient = not flip
    # looking from the front (A) or from below (I), the patient's left is on the image right
    expect_right = on_left_of_patient == (view in ("A", "I"))
    assert (column > 0.6) if expect_right else (column < 0.4), (view, flip, column)


@pytest.mark.parametrize("view, where", [("A", "top"), ("L", "top"), ("R", "top"), ("P", "top")])
def test_superior_is_up_in_side_views(scene, view, where):
    scene.set_volume(ct(ball((64, 64, 64), (32, 32, 52), 6)))  # near the top slice: superior
    scene.set_camera(view)
    assert centroid(scene.capture())[1] < 0.4


@pytest.mark.parametrize("view, expect", [("L", "right"), ("R", "left"), ("S", "bottom"), ("I", "bottom")])
def test_posterior_blob(scene, view, expect):
    scene.set_volume(ct(ball((64, 64, 64), (32, 52, 32), 6)))  # +y: posterior
    scene.set_camera(view)
    col, row = centroid(scene.capture())
    assert {"right": col > 0.6, "left": col < 0.4, "bottom": row > 0.6}[expect], (view, col, row)


def _display_of(scene, world) -> tuple[float, float]:
    r = scene.renderer
    r.SetWorldPoint(*world, 1.0)
    r.WorldToDisplay()
    x, y, _ = r.GetDisplayPoint()
    return x, y


SPHERE = dict(centre=(30, 34, 28), radius=16, spacing=(1.0, 1.0, 1.5), origin=(-40.0, 25.0, 100.0))


def sphere_volume(**changes) -> Volume:
    g = dict(SPHERE, **changes)
    cx, cy, cz = g["centre"]
    sx, sy, sz = g["spacing"]
    z, y, x = np.indices((56, 64, 64))
    inside = ((x - cx) * sx) ** 2 + ((y - cy) * sy) ** 2 + ((z - cz) * sz) ** 2 <= g["radius"] ** 2
    return ct(inside, spacing=g["spacing"], origin=g["origin"])


def surface_point(volume: Volume, unit) -> np.ndarray:
    """The (x, y, z) index of the sphere's surface point in world direction `unit`."""
    unit = np.asarray(unit, float) / np.linalg.norm(unit)
    centre_world = volume.index_to_world(SPHERE["centre"])
    return volume.world_to_index(centre_world + unit * SPHERE["radius"])


@pytest.mark.parametrize("unit", [(0, -1, 0), (0.4, -0.8, 0.3), (-0.5, -0.7, -0.4)])
def test_pick_on_the_rendered_volume_finds_the_sphere_surface(scene, unit):
    volume = sphere_volume()
    scene.set_volume(volume)
    scene.set_camera("A")  # from the anterior: every point with a -y direction is in front
    expected = surface_point(volume, unit)
    picked = scene.pick(*_display_of(scene, volume.index_to_world(expected)))
    assert picked is not None
    assert np.max(np.abs(np.asarray(picked) - expected)) <= 1.0, (picked, expected)


def test_pick_beside_the_volume_finds_nothing(scene):
    scene.set_volume(sphere_volume())
    scene.set_camera("A")
    assert scene.pick(2, 2) is None


def test_clip_box_removes_the_clipped_half(scene):
    volume = sphere_volume()
    scene.set_volume(volume)
    scene.set_camera("A")  # +x (patient left) on the image right
    whole = foreground(scene.capture())
    scene.set_clip_box(((0, 30), (0, 63), (0, 55)))  # keep x <= the sphere's centre
    half = foreground(scene.capture())
    centre_col = _display_of(scene, volume.index_to_world(SPHERE["centre"]))[0]
    assert half.sum() < 0.65 * whole.sum()
    assert not half[:, int(centre_col) + 3:].any()  # nothing right of the cut plane
    assert half[:, :int(centre_col) - 3].sum() > 0.9 * whole[:, :int(centre_col) - 3].sum()
    scene.set_clip_box(None)
    assert (foreground(scene.capture()) == whole).mean() > 0.99


def test_clip_by_the_crosshair_cuts_the_octant_facing_the_camera(scene):
    volume = sphere_volume()
    scene.set_volume(volume)
    scene.set_camera("A")
    camera = scene.renderer.GetActiveCamera()
    camera.Azimuth(30)
    camera.Elevation(25)
    scene.renderer.ResetCameraClippingRange()
    whole = scene.capture()
    scene.set_clip_crosshair(True, SPHERE["centre"])
    cut = scene.capture()
    assert np.abs(cut.astype(int) - whole).sum(axis=2).astype(bool).mean() > 0.02
    # the front-most point of that octant is gone: the ray through it now goes deeper
    front = surface_point(volume, np.array(camera.GetPosition()) - volume.index_to_world(SPHERE["centre"]))
    xy = _display_of(scene, volume.index_to_world(front))
    picked = scene.pick(*xy)
    assert picked is None or np.linalg.norm(np.asarray(picked) - front) > 4
    scene.set_clip_crosshair(False)
    assert np.abs(scene.capture().astype(int) - whole).max() <= 2


def test_mip_differs_from_composite_and_surface_mode_hides_the_volume(scene, demo_volume):
    scene.set_volume(demo_volume)
    scene.set_camera("S")
    composite = scene.capture()
    scene.set_render_mode("mip")
    assert scene.preset == "CT MIP"
    mip = scene.capture()
    assert np.abs(mip.astype(int) - composite).mean() > 5
    # a grey projection: white times opacity, over the (bluish) background
    from medviewer.ui.view3d.scene import BACKGROUND
    bright = mip[mip.mean(axis=2) > 100].astype(int)
    tint = (BACKGROUND[2] - BACKGROUND[0]) * 255
    assert len(bright) > 50 and np.all(bright[:, 2] - bright[:, 0] <= tint + 1)
    scene.set_render_mode("surface")
    assert not foreground(scene.capture()).any()  # no labels: nothing to show
    scene.set_render_mode("volume")
    assert scene.preset == "CT bone"
    with pytest.raises(MedViewerError, match="render mode"):
        scene.set_render_mode("holographic")


def test_a_volume_past_the_texture_limit_is_downsampled_and_says_so(scene):
    from medviewer.ui.view3d.scene import Scene3D
    from medviewer.ui.view3d.vtk_bridge import offscreen_render_window
    small = Scene3D(offscreen_render_window(SIZE, SIZE), max_texture_3d=32)
    volume = sphere_volume()
    small.set_volume(volume)
    assert small.downsampled == "downsampled 2x for rendering: 64 > 32 texels"
    assert small._image.GetDimensions() == (32, 32, 28)
    small.set_camera("A")
    assert foreground(small.capture()).sum() > 100
    expected = surface_point(volume, (0, -1, 0))
    picked = small.pick(*_display_of(small, volume.index_to_world(expected)))
    assert np.max(np.abs(np.asarray(picked) - expected)) <= 2.0  # full-resolution index, coarser data
    small.close()
    scene.set_volume(volume)
    assert scene.downsampled is None


def test_planes_show_the_mpr_slices_in_3d(scene, demo_volume):
    scene.set_volume(demo_volume)
    scene.set_camera("S")
    scene.set_render_mode("surface")  # only the planes
    assert not foreground(scene.capture()).any()
    scene.set_plane_window(400, 40)
    scene.show_planes(True, (256, 256, 10))
    axial = scene.capture()
    assert foreground(axial).mean() > 0.1
    picked = scene.pick(SIZE / 2, SIZE / 2)  # a click on the axial plane: its slice
    assert picked is not None and picked[2] == 10
    scene.update_planes((256, 256, 3))
    assert scene.pick(SIZE / 2, SIZE / 2)[2] == 3
    scene.show_planes(False)
    assert not foreground(scene.capture()).any()


@pytest.mark.parametrize("volume, reason", [
    (Volume(data=np.zeros((32, 32), np.uint8)), "2D"),
    (Volume(data=np.zeros((4, 32, 32, 3), np.uint8)), "RGB"),
])
def test_images_it_cannot_render_give_the_reason(scene, volume, reason):
    with pytest.raises(MedViewerError, match=reason):
        scene.set_volume(volume)


def test_no_opengl_gives_a_reason(monkeypatch):
    from medviewer.ui.view3d import vtk_bridge
    monkeypatch.setattr(vtk_bridge, "_probe", lambda timeout=60.0: (False, "exit status -6"))
    vtk_bridge.opengl_problem.cache_clear()
    try:
        problem = vtk_bridge.opengl_problem()
    finally:
        vtk_bridge.opengl_problem.cache_clear()
    assert problem.startswith("3D view unavailable: no usable OpenGL")
    assert "\n" not in problem


def test_an_opengl_that_aborts_the_process_only_takes_down_the_probe(monkeypatch):
    from medviewer.ui.view3d import vtk_bridge
    monkeypatch.setattr(vtk_bridge, "_PROBE", "import os; os.abort()  # %r")  # what a broken driver does
    vtk_bridge.opengl_problem.cache_clear()
    try:
        worked, said = vtk_bridge._probe()
        problem = vtk_bridge.opengl_problem()
    finally:
        vtk_bridge.opengl_problem.cache_clear()
    assert not worked and said == "exit status -6"
    assert problem.startswith("3D view unavailable")


def test_the_opengl_probe_runs_vtk_in_a_child_process():
    from medviewer.ui.view3d import vtk_bridge
    worked, said = vtk_bridge._probe()
    assert worked and said.startswith("ok vtk"), said


def test_pick_and_clip_a_label_surface(scene):
    if scene.surfaces is None:
        pytest.skip("label_surfaces is not there yet")
    from medviewer.core.labels import LabelMap
    volume = sphere_volume()
    scene.set_volume(volume)
    labels = LabelMap(volume.shape, "sphere", data=(volume.data > 0).astype(np.uint8))
    scene.surfaces.set_label_maps([labels])
    scene.surfaces.flush()
    scene.set_render_mode("surface")
    scene.set_camera("A")
    whole = foreground(scene.capture())
    assert whole.sum() > 200
    for unit in ((0, -1, 0), (0.5, -0.6, -0.5)):
        expected = surface_point(volume, unit)
        picked = scene.pick(*_display_of(scene, volume.index_to_world(expected)))
        assert picked is not None and np.max(np.abs(np.asarray(picked) - expected)) <= 1.0, (picked, expected)
    scene.set_clip_box(((0, 30), (0, 63), (0, 55)))  # the box clips the surfaces too
    half = foreground(scene.capture())
    centre_col = _display_of(scene, volume.index_to_world(SPHERE["centre"]))[0]
    assert half.sum() < 0.65 * whole.sum() and not half[:, int(centre_col) + 3:].any()
    beyond = surface_point(volume, (0.8, -0.6, 0))  # a surface point in the clipped half
    picked = scene.pick(*_display_of(scene, volume.index_to_world(beyond)))
    assert picked is None or abs(picked[0] - beyond[0]) > 3


def test_a_translucent_label_surface_is_drawn_in_and_over_the_volume(scene):
    """Depth peeling (translucent surfaces in the right order) on a window without an alpha channel
    or with multisampling drew a blank frame on EGL/llvmpipe; Scene3D sets the window up for it."""
    from medviewer.core.labels import LabelMap, palette_colour
    volume = sphere_volume()
    scene.set_volume(volume)
    labels = LabelMap(volume.shape, "sphere", data=(volume.data > 0).astype(np.uint8))
    labels.set_display(opacity=0.4)
    scene.surfaces.set_label_maps([labels])
    scene.surfaces.flush()
    scene.set_camera("A")
    for mode in ("surface", "volume"):
        scene.set_render_mode(mode)
        rgb = scene.capture()
        assert foreground(rgb).mean() > 0.05, mode
    scene.set_render_mode("surface")
    rgb = scene.capture().astype(float)
    centre = _display_of(scene, volume.index_to_world(SPHERE["centre"]))
    h = rgb.shape[0]
    pixel = rgb[h - 1 - int(centre[1]), int(centre[0])]  # display y runs upwards
    colour = np.asarray(palette_colour(1), float)
    cos = pixel @ colour / (np.linalg.norm(pixel) * np.linalg.norm(colour))
    assert cos > 0.9, (pixel, colour)  # the label's colour, blended with the background


def test_the_planes_in_3d_turn_with_the_2d_views_oblique_mpr(scene):
    from medviewer.core.oblique import MprPlanes, plane_normal
    volume = sphere_volume()
    scene.set_volume(volume)
    scene.set_render_mode("surface")
    cursor = np.array(SPHERE["centre"], float)
    scene.show_planes(True, cursor)
    scene.set_camera("S")
    grid = scene.capture()
    planes = MprPlanes()
    axial_normal = plane_normal(volume, "axial", np.eye(3))
    planes.rotate("axial", axial_normal, np.radians(30))  # turns the coronal and sagittal planes
    scene.set_plane_rotations(planes.rotations, planes.pivot(volume, cursor))
    normals = {axis: np.array(a.GetMapper().GetSlicePlane().GetNormal()) for axis, a in enumerate(scene._planes)}
    for view in ("coronal", "sagittal", "axial"):
        axis = scene._plane_axes[view]
        assert np.allclose(normals[axis], plane_normal(volume, view, planes.rotations[view]), atol=1e-9), view
    assert abs(normals[scene._plane_axes["coronal"]] @ volume.direction[:, 1]) == pytest.approx(np.cos(np.radians(30)))
    turned = scene.capture()
    assert np.abs(turned.astype(int) - grid).mean() > 1  # seen from above, the two planes turned
    # a click on the turned coronal plane, off the grid plane, picks a point of the turned plane
    centre = volume.index_to_world(cursor)
    along = np.cross(normals[scene._plane_axes["coronal"]], axial_normal)
    target = centre + 12.0 * along / np.linalg.norm(along) + 6.0 * axial_normal
    scene.set_camera("A")
    for view in ("sagittal", "axial"):  # only the coronal plane in the way of the click
        scene._planes[scene._plane_axes[view]].SetVisibility(False)
    picked = scene.pick(*_display_of(scene, target))
    assert picked is not None
    offset = volume.index_to_world(picked) - centre
    assert abs(offset @ normals[scene._plane_axes["coronal"]]) <= 1.6  # on the turned plane (within a voxel)
    assert np.linalg.norm(volume.index_to_world(picked) - target) <= 2.5  # where the click was
    scene.set_plane_rotations(None)
    assert np.allclose(scene._planes[scene._plane_axes["coronal"]].GetMapper().GetSlicePlane().GetNormal(),
                       volume.direction[:, 1])
