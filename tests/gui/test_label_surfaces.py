"""Label surfaces in 3D (issue 13): exact in world coordinates, seamless across bricks, re-meshed only
where an edit landed, styled from the label table, and drawn in the labels' colours."""
from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest

from medviewer.core.heatmap import HeatMap
from medviewer.core.labels import LabelMap
from medviewer.core.volume import Volume
from medviewer.processing.label_tools import brush, stroke
from tests.conftest import shared

pytest.importorskip("vtkmodules")

from medviewer.ui.view3d.label_mesher import BrickGrid, label_surface  # noqa: E402
from medviewer.ui.view3d.label_surfaces import LabelSurfaces  # noqa: E402
from medviewer.ui.view3d.surface_export import export_surfaces, signed_volume  # noqa: E402

SHOTS = Path("/tmp/shots")


def rotation(z_deg: float, y_deg: float, x_deg: float) -> np.ndarray:
    cz, sz = np.cos(np.radians(z_deg)), np.sin(np.radians(z_deg))
    cy, sy = np.cos(np.radians(y_deg)), np.sin(np.radians(y_deg))
    cx, sx = np.cos(np.radians(x_deg)), np.sin(np.radians(x_deg))
    rz = np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
    ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    rx = np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
    return rz @ ry @ rx


def sphere_on_oblique_grid(radius_mm: float = 10.0):
    """A labelled ball of known world centre on an anisotropic, rotated grid with an offset origin."""
    shape = (16, 30, 36)  # (z, y, x)
    volume = Volume(np.zeros(shape, np.int16), spacing=(0.8, 1.1, 2.3), origin=(-40.0, 25.0, 60.0),
                    direction=rotation(25, -10, 15))
    centre = volume.index_to_world((17.3, 14.6, 7.4))
    z, y, x = np.mgrid[:shape[0], :shape[1], :shape[2]]
    world = volume.index_to_world(np.stack([x, y, z], -1).reshape(-1, 3))
    inside = (np.linalg.norm(world - centre, axis=1) <= radius_mm).reshape(shape)
    labels = LabelMap(shape, data=inside.astype(np.uint8))
    return volume, labels, centre


def read_vtk(path: Path):
    from vtkmodules.vtkIOGeometry import vtkOBJReader, vtkSTLReader
    from vtkmodules.vtkIOPLY import vtkPLYReader
    reader = {".stl": vtkSTLReader, ".obj": vtkOBJReader, ".ply": vtkPLYReader}[path.suffix]()
    reader.SetFileName(str(path))
    reader.Update()
    return reader.GetOutput()


def mass_volume(polydata) -> float:
    from vtkmodules.vtkFiltersCore import vtkMassProperties
    mass = vtkMassProperties()
    mass.SetInputData(polydata)
    mass.Update()
    return mass.GetVolume()


def points(polydata) -> np.ndarray:
    from vtkmodules.util.numpy_support import vtk_to_numpy
    return vtk_to_numpy(polydata.GetPoints().GetData()).astype(float)


def parse_binary_stl(path: Path) -> np.ndarray:
    """A second, independent reader: (n, 3, 3) triangle corners from a binary STL."""
    raw = path.read_bytes()
    (count,) = struct.unpack_from("<I", raw, 80)
    assert len(raw) == 84 + 50 * count
    records = np.frombuffer(raw, np.dtype([("n", "<f4", 3), ("v", "<f4", (3, 3)), ("a", "<u2")]), count, 84)
    return records["v"].astype(float)


def open_edges(polydata) -> int:
    from vtkmodules.vtkFiltersCore import vtkFeatureEdges
    edges = vtkFeatureEdges()
    edges.SetInputData(polydata)
    edges.BoundaryEdgesOn()
    edges.NonManifoldEdgesOn()
    edges.FeatureEdgesOff()
    edges.ManifoldEdgesOff()
    edges.Update()
    return edges.GetOutput().GetNumberOfCells()


# --- export -------------------------------------------------------------------------------------
def test_stl_of_a_sphere_has_its_volume_and_centre_in_world_lps(tmp_path):
    volume, labels, centre = sphere_on_oblique_grid(10.0)
    (path,) = export_surfaces(labels, volume, tmp_path / "ball.stl")
    assert path.name == "ball_1_Label_1.stl"  # the file name says the label
    assert path.read_bytes()[:80].rstrip(b"\0 ").endswith(b"SPACE=LPS")
    mesh = read_vtk(path)
    truth = 4.0 / 3.0 * np.pi * 10.0 ** 3
    assert mass_volume(mesh) == pytest.approx(truth, rel=0.03)
    assert open_edges(mesh) == 0  # watertight
    pts = points(mesh)
    assert np.allclose(pts.mean(0), centre, atol=0.3)
    assert np.linalg.norm(pts - centre, axis=1).mean() == pytest.approx(10.0, abs=0.3)
    # the same file through plain numpy: same triangles, outward (positive signed volume)
    tri = parse_binary_stl(path)
    assert len(tri) == mesh.GetNumberOfCells()
    signed = np.einsum("ij,ij->i", tri[:, 0], np.cross(tri[:, 1], tri[:, 2])).sum() / 6.0
    assert signed == pytest.approx(truth, rel=0.03)
    assert np.allclose(tri.reshape(-1, 3).mean(0), centre, atol=0.3)


def test_ras_export_negates_x_and_y_and_stays_outward(tmp_path):
    volume, labels, centre = sphere_on_oblique_grid(8.0)
    (path,) = export_surfaces(labels, volume, tmp_path / "ras.stl", space="RAS", label=1)
    assert path == tmp_path / "ras.stl"  # a chosen label goes to the name given
    tri = parse_binary_stl(path)
    assert np.allclose(tri.reshape(-1, 3).mean(0), centre * [-1, -1, 1], atol=0.3)
    assert np.einsum("ij,ij->i", tri[:, 0], np.cross(tri[:, 1], tri[:, 2])).sum() > 0


def test_left_handed_grid_still_writes_outward_triangles(tmp_path):
    volume, labels, centre = sphere_on_oblique_grid(8.0)
    volume.direction = volume.direction @ np.diag([1.0, 1.0, -1.0])  # slices stacked the other way
    (path,) = export_surfaces(labels, volume, tmp_path / "lh.stl")
    tri = parse_binary_stl(path)
    assert np.einsum("ij,ij->i", tri[:, 0], np.cross(tri[:, 1], tri[:, 2])).sum() > 0


def test_obj_and_ply_reopen_in_vtk_with_the_stl_bounds(tmp_path):
    volume, labels, _ = sphere_on_oblique_grid(9.0)
    labels.paint((slice(2, 6), slice(2, 8), slice(2, 8)), np.ones((4, 6, 6), bool), 2)
    bounds = {}
    for ext in (".stl", ".obj", ".ply"):
        paths = export_surfaces(labels, volume, tmp_path / f"m{ext}")
        assert [p.name for p in paths] == [f"m_1_Label_1{ext}", f"m_2_Label_2{ext}"]
        bounds[ext] = [np.array(read_vtk(p).GetBounds()) for p in paths]
    for ext in (".obj", ".ply"):
        for a, b in zip(bounds[".stl"], bounds[ext]):
            assert np.allclose(a, b, atol=1e-3)
    assert (tmp_path / "m_1_Label_1.obj").read_text().startswith("# MedViewer label 1 Label 1 SPACE=LPS")
    ply = read_vtk(tmp_path / "m_2_Label_2.ply")
    colours = ply.GetPointData().GetScalars()
    assert colours is not None and tuple(colours.GetTuple3(0)) == labels.table.get(2).colour


def test_export_refuses_in_one_line(tmp_path):
    from medviewer.core.errors import MedViewerError
    volume, labels, _ = sphere_on_oblique_grid(8.0)
    with pytest.raises(MedViewerError, match=r"\.stl, \.obj, \.ply"):
        export_surfaces(labels, volume, tmp_path / "x.vtp")
    with pytest.raises(MedViewerError, match="label 4 is not in the label map .present: 1"):
        export_surfaces(labels, volume, tmp_path / "x.stl", label=4)
    with pytest.raises(MedViewerError, match="empty"):
        export_surfaces(LabelMap(labels.data.shape), volume, tmp_path / "x.stl")
    with pytest.raises(MedViewerError, match="does not exist"):
        export_surfaces(labels, volume, tmp_path / "no" / "x.stl")


def test_bricks_meet_without_seams():
    """A ball cut by many small bricks merges into one closed surface of the right volume."""
    n = 40
    z, y, x = np.ogrid[:n, :n, :n]
    data = (((x - 19.5) ** 2 + (y - 21) ** 2 + (z - 18) ** 2) < 14 ** 2).astype(np.uint8)
    grid = BrickGrid(data.shape, brick=8)
    assert len(grid) == 6 ** 3
    surface = label_surface(data, 1, (0.7, 0.9, 1.3), grid)
    assert open_edges(surface) == 0
    assert signed_volume(surface) == pytest.approx(data.sum() * 0.7 * 0.9 * 1.3, rel=0.03)


# --- incremental updates --------------------------------------------------------------------------
def two_label_map(shape=(70, 140, 150)):
    z, y, x = np.ogrid[:shape[0], :shape[1], :shape[2]]
    data = np.zeros(shape, np.uint8)
    data[(x - 70) ** 2 + (y - 70) ** 2 + (z - 35) ** 2 < 30 ** 2] = 1
    data[(x - 120) ** 2 + (y - 30) ** 2 + (z - 20) ** 2 < 8 ** 2] = 2
    volume = Volume(np.zeros(shape, np.int16), spacing=(0.9, 0.9, 1.5), origin=(10.0, -20.0, 5.0),
                    direction=rotation(10, 0, 5))
    return volume, LabelMap(shape, data=data)


def surfaces_of(volume, labels):
    from vtkmodules.vtkRenderingCore import vtkRenderer
    surf = LabelSurfaces(vtkRenderer())
    surf.set_volume(volume)
    surf.set_label_maps([labels])
    surf.flush()
    return surf


def meshes(surf):
    """(value, brick) -> (point count, bounds) of every surface shown."""
    out = {}
    for part in surf._maps:
        for key, actor in part.actors.items():
            data = actor.GetMapper().GetInput()
            out[key] = (data.GetNumberOfPoints(), np.round(data.GetBounds(), 6))
    return out


def same_meshes(a, b) -> bool:
    return a.keys() == b.keys() and all(a[k][0] == b[k][0] and np.array_equal(a[k][1], b[k][1]) for k in a)


def test_a_stroke_remeshes_only_the_touched_brick_and_matches_a_fresh_mesh():
    volume, labels = two_label_map()
    surf = surfaces_of(volume, labels)
    assert not surf.pending()
    before = {key: actor.GetMapper().GetInput() for key, actor in surf._maps[0].actors.items()}
    # a disc on the edge of the big ball, well inside brick (0, 1, 0) (z 0-63, y 64-127, x 0-63)
    region, mask = brush(labels.data.shape, volume.spacing, (42, 80, 30), 3.0, normal_axis=2)
    assert labels.paint(region, mask, 1) > 0
    assert surf.pending()
    surf.flush()
    assert surf.stats()["remeshed"] == 1  # label 1 in one brick; label 2 and every other brick kept
    after = {key: actor.GetMapper().GetInput() for key, actor in surf._maps[0].actors.items()}
    assert after.keys() == before.keys()
    changed = [key for key in after if after[key] is not before[key]]
    assert changed == [(1, (0, 1, 0))]
    assert same_meshes(meshes(surf), meshes(surfaces_of(volume, labels)))


def test_a_stroke_across_a_brick_face_updates_both_bricks_seamlessly():
    volume, labels = two_label_map()
    surf = surfaces_of(volume, labels)
    points_xyz = [(63, 50, 5), (63, 90, 5)]  # along the x = 63 face (shared by bricks bx 0 and 1)
    region, mask = stroke(labels.data.shape, volume.spacing, points_xyz, 2.0, normal_axis=2)
    labels.paint(region, mask, 3)
    surf.flush()
    touched = {brick for (_value, brick) in surf._maps[0].actors if _value == 3}
    assert touched == {(0, 0, 0), (0, 0, 1), (0, 1, 0), (0, 1, 1)}
    assert surf.stats()["remeshed"] == 4
    assert same_meshes(meshes(surf), meshes(surfaces_of(volume, labels)))


def test_painting_over_erasing_and_undo_follow_the_map():
    volume, labels = two_label_map()
    surf = surfaces_of(volume, labels)
    # label 3 painted over part of label 1 (overwrite): label 1's surface there changes too
    region = (slice(20, 40), slice(60, 80), slice(40, 60))
    labels.paint(region, np.ones((20, 20, 20), bool), 3, overwrite=True)
    surf.flush()
    assert len(BrickGrid(labels.data.shape).touching(region)) == 2  # (0, 0, 0) and (0, 1, 0)
    assert surf.stats()["remeshed"] == 4  # labels 1 and 3 in both, nothing else
    assert same_meshes(meshes(surf), meshes(surfaces_of(volume, labels)))
    # erasing label 2 entirely removes its actors; erasing label 1 from one brick removes that one
    assert surf.label_actors(labels, 2)
    labels.replace(2, 0)
    surf.flush()
    assert surf.label_actors(labels, 2) == []
    brick_region = BrickGrid(labels.data.shape).voxels((0, 1, 1))  # what the brick reads
    labels.paint(brick_region, np.ones(labels.data[brick_region].shape, bool), 0, only=1)
    surf.flush()
    assert (1, (0, 1, 1)) not in surf._maps[0].actors
    assert same_meshes(meshes(surf), meshes(surfaces_of(volume, labels)))
    for _ in range(3):
        labels.undo()
    surf.flush()
    assert surf.label_actors(labels, 2) and surf.label_actors(labels, 3) == []
    assert same_meshes(meshes(surf), meshes(surfaces_of(volume, two_label_map()[1])))


def test_colour_opacity_and_visibility_come_from_the_table_and_the_map():
    volume, labels = two_label_map()
    surf = surfaces_of(volume, labels)
    actors = surf.label_actors(labels, 1)
    label = labels.table.get(1)
    for actor in actors:
        assert tuple(round(c * 255) for c in actor.GetProperty().GetColor()) == label.colour
        assert actor.GetProperty().GetOpacity() == 1.0 and actor.GetVisibility()
        assert actor.GetUserMatrix().GetElement(0, 3) == 10.0  # grid_to_world: origin x
    label.colour = (10, 200, 30)
    label.visible = False
    labels.table_changed.emit()
    assert all(not a.GetVisibility() for a in actors)
    assert all(a.GetVisibility() for a in surf.label_actors(labels, 2))
    assert tuple(round(c * 255) for c in actors[0].GetProperty().GetColor()) == (10, 200, 30)
    label.visible, label.opacity = True, 0.25
    labels.table_changed.emit()
    labels.set_display(opacity=0.8)
    assert actors[0].GetVisibility() and actors[0].GetProperty().GetOpacity() == pytest.approx(0.4)
    labels.set_display(visible=False)
    assert not any(a.GetVisibility() for a in surf.actors())
    assert not surf.pending()  # styling never re-meshes


def test_a_budgeted_flush_leaves_the_rest_pending_and_maps_can_be_dropped():
    volume, labels = two_label_map()
    from vtkmodules.vtkRenderingCore import vtkRenderer
    renderer = vtkRenderer()
    surf = LabelSurfaces(renderer)
    surf.set_volume(volume)
    surf.set_label_maps([labels])
    assert surf.flush(budget_ms=0.0) == 1 and surf.pending()
    while surf.pending():
        surf.flush(budget_ms=0.0)
    assert renderer.GetActors().GetNumberOfItems() == len(surf.actors()) > 1
    surf.set_label_maps([])
    assert renderer.GetActors().GetNumberOfItems() == 0
    labels.paint((slice(0, 2),) * 3, np.ones((2, 2, 2), bool), 4)
    assert not surf.pending()  # unsubscribed


def test_a_new_spacing_remeshes_and_a_wrong_grid_is_refused():
    from medviewer.core.errors import MedViewerError
    volume, labels = two_label_map()
    surf = surfaces_of(volume, labels)
    x_max = max(a.GetMapper().GetInput().GetBounds()[1] for a in surf.actors())
    surf.set_volume(volume.copy_geometry(volume.data, spacing=(1.8, 0.9, 1.5)))
    assert surf.pending()
    surf.flush()
    assert max(a.GetMapper().GetInput().GetBounds()[1] for a in surf.actors()) == pytest.approx(2 * x_max, rel=0.01)
    with pytest.raises(MedViewerError, match="not the image's"):
        surf.set_label_maps([LabelMap((3, 3, 3))])


def test_a_heat_map_shows_its_thresholded_region_in_its_colour_map():
    from medviewer.core.colormaps import colour_table
    volume, _ = two_label_map((40, 50, 60))
    z, y, x = np.ogrid[:40, :50, :60]
    heat = HeatMap(np.exp(-((x - 30.0) ** 2 + (y - 25.0) ** 2 + (z - 20.0) ** 2) / 200.0), "p", threshold=0.5)
    from vtkmodules.vtkRenderingCore import vtkRenderer
    surf = LabelSurfaces(vtkRenderer())
    surf.set_volume(volume)
    surf.set_heatmaps([heat])
    assert surf.pending()
    surf.flush()
    (actor,) = surf.actors()
    radius_vox = np.sqrt(-200.0 * np.log(0.5))
    width = actor.GetMapper().GetInput().GetBounds()
    assert width[1] - width[0] == pytest.approx(2 * radius_vox * 0.9, rel=0.03)
    mean = heat.data[heat.data >= 0.5].mean()
    expected = colour_table("inferno")[int(heat.indices(np.array([mean]))[0])]
    assert np.allclose(np.array(actor.GetProperty().GetColor()) * 255, expected, atol=0.6)
    heat.set_display(threshold=0.9)
    assert surf.pending()
    surf.flush()
    (smaller,) = surf.actors()
    narrow = smaller.GetMapper().GetInput().GetBounds()
    assert narrow[1] - narrow[0] < width[1] - width[0]
    heat.set_display(visible=False)
    assert not smaller.GetVisibility()
    heat.set_display(threshold=2.0)
    surf.flush()
    assert surf.actors() == []


# --- rendering ------------------------------------------------------------------------------------
def render_surfaces(volume, labels, size=(480, 400), camera=None):
    from vtkmodules.vtkRenderingCore import vtkRenderer
    from medviewer.ui.view3d.vtk_bridge import capture, offscreen_render_window
    window = offscreen_render_window(*size)
    renderer = vtkRenderer()
    renderer.SetBackground(0.0, 0.0, 0.0)
    window.AddRenderer(renderer)
    surf = LabelSurfaces(renderer)
    surf.set_volume(volume)
    surf.set_label_maps([labels])
    surf.flush()
    if camera is not None:
        camera(renderer.GetActiveCamera())
    renderer.ResetCamera()
    window.Render()
    return window, renderer, surf, capture(window)


def display_xy(renderer, world) -> tuple[int, int]:
    """World point -> (column, row) of the captured image (top row first)."""
    from vtkmodules.vtkRenderingCore import vtkCoordinate
    coord = vtkCoordinate()
    coord.SetCoordinateSystemToWorld()
    coord.SetValue(*(float(v) for v in world))
    x, y = coord.GetComputedDoubleDisplayValue(renderer)
    height = renderer.GetRenderWindow().GetSize()[1]
    return int(round(x)), int(round(height - 1 - y))


def hue_matches(pixel, colour) -> bool:
    """A shaded pixel of a surface points the way of its colour (lighting scales it)."""
    p, c = np.asarray(pixel, float), np.asarray(colour, float)
    if p.max() < 30:
        return False
    return float(p @ c / (np.linalg.norm(p) * np.linalg.norm(c))) > 0.97


def test_surfaces_are_drawn_in_their_label_colours_where_the_labels_are():
    volume, _ = two_label_map((60, 80, 100))
    labels = LabelMap(volume.shape)
    labels.table.add(value=1, colour=(230, 40, 40))
    labels.table.add(value=2, colour=(40, 90, 230))
    labels.data[20:40, 20:60, 10:40] = 1  # two boxes side by side along x
    labels.data[20:40, 20:60, 60:90] = 2

    def from_front(camera):  # look along the image's own z axis so the boxes do not overlap
        normal = volume.direction[:, 2]
        centre = volume.index_to_world((50, 40, 30))
        camera.SetFocalPoint(*centre)
        camera.SetPosition(*(centre - 500 * normal))
        camera.SetViewUp(*(-volume.direction[:, 1]))

    window, renderer, surf, pixels = render_surfaces(volume, labels, camera=from_front)
    SHOTS.mkdir(parents=True, exist_ok=True)
    _save_png(pixels, SHOTS / "label_surfaces_boxes.png")
    for value, ijk in ((1, (25, 40, 30)), (2, (75, 40, 30)), (1, (14, 25, 30)), (2, (85, 55, 30))):
        col, row = display_xy(renderer, volume.index_to_world(ijk))
        assert hue_matches(pixels[row, col], labels.table.get(value).colour), (value, ijk, pixels[row, col])
    col, row = display_xy(renderer, volume.index_to_world((50, 40, 30)))  # the gap between them
    assert pixels[row, col].max() < 30
    labels.table.get(2).visible = False
    labels.table_changed.emit()
    window.Render()
    from medviewer.ui.view3d.vtk_bridge import capture
    hidden = capture(window)
    col, row = display_xy(renderer, volume.index_to_world((75, 40, 30)))
    assert hidden[row, col].max() < 30
    surf.close()


def real_hippocampus():
    """The first hippocampus MRI of ../shared/data and its labels (skips without the data)."""
    from medviewer.io import discover
    from medviewer.io.label_io import read_any_labels
    label_file = shared("hippocampus", "labelsTr", "hippocampus_001.nii.gz")
    image = shared("hippocampus", "imagesTr", "hippocampus_001.nii.gz")
    source = discover(str(image)).find(None)
    volume = source.load()
    return volume, read_any_labels(str(label_file), source, volume)


def test_hippocampus_surfaces_screenshot():
    """The real hippocampus labels, seen obliquely, saved for a person to look at."""
    volume, labels = real_hippocampus()

    def oblique(camera):
        camera.Azimuth(40)
        camera.Elevation(25)

    window, renderer, surf, pixels = render_surfaces(volume, labels, size=(640, 480), camera=oblique)
    SHOTS.mkdir(parents=True, exist_ok=True)
    _save_png(pixels, SHOTS / "label_surfaces.png")
    for value in labels.values_present():
        ijk = np.argwhere(labels.data == value).mean(0)[::-1]
        col, row = display_xy(renderer, volume.index_to_world(ijk))
        window_pixels = pixels[max(row - 2, 0):row + 3, max(col - 2, 0):col + 3].reshape(-1, 3)
        assert any(hue_matches(p, labels.table.get(value).colour) for p in window_pixels)
    surf.close()


def _save_png(pixels: np.ndarray, path: Path) -> None:
    from vtkmodules.util.numpy_support import numpy_to_vtk
    from vtkmodules.vtkCommonDataModel import vtkImageData
    from vtkmodules.vtkIOImage import vtkPNGWriter
    image = vtkImageData()
    image.SetDimensions(pixels.shape[1], pixels.shape[0], 1)
    image.GetPointData().SetScalars(numpy_to_vtk(np.ascontiguousarray(pixels[::-1]).reshape(-1, 3), deep=True))
    writer = vtkPNGWriter()
    writer.SetFileName(str(path))
    writer.SetInputData(image)
    writer.Write()


def test_the_panel_exports_the_sessions_active_label_map(tmp_path):
    from medviewer.core.errors import MedViewerError
    from medviewer.core.session import Session
    from medviewer.ui.view3d.surface_export import export_session_surfaces
    volume, labels, centre = sphere_on_oblique_grid(8.0)
    session = Session()
    session.set_volume(volume)
    with pytest.raises(MedViewerError, match="no label map"):
        export_session_surfaces(session, tmp_path / "s.obj")
    session.add_label_map(labels)
    (written,) = export_session_surfaces(session, tmp_path / "s.obj")
    assert written == str(tmp_path / "s_1_Label_1.obj")
    assert np.allclose(points(read_vtk(Path(written))).mean(0), centre, atol=0.3)


def test_a_heat_map_too_large_to_copy_gives_a_reason_not_an_exception(monkeypatch):
    volume, _ = two_label_map((40, 50, 60))
    heat = HeatMap(np.ones((40, 50, 60), np.float32), "big map", threshold=0.5)
    from vtkmodules.vtkRenderingCore import vtkRenderer
    surf = LabelSurfaces(vtkRenderer())
    surf.set_volume(volume)
    surf.set_heatmaps([heat])
    monkeypatch.setenv("MEDVIEWER_MEMORY_LIMIT", "100K")
    surf.flush()
    assert surf.actors() == [] and not surf.pending()
    (problem,) = surf.problems()
    assert problem.startswith("heat map 'big map': no 3D surface (") and "\n" not in problem
    monkeypatch.delenv("MEDVIEWER_MEMORY_LIMIT")
    heat.set_display(threshold=0.4)
    surf.flush()
    assert len(surf.actors()) == 1 and surf.problems() == []


def test_random_edits_keep_the_incremental_surfaces_equal_to_a_fresh_mesh():
    """Paint, paint over, erase one label, erase all, undo and redo in random boxes, on small bricks
    (so that edits straddle faces and corners): after each flush the bricks shown equal a mesh of
    the map made from scratch."""
    from vtkmodules.vtkRenderingCore import vtkRenderer
    rng = np.random.default_rng(13)
    shape = (30, 34, 38)
    volume = Volume(np.zeros(shape, np.int16), spacing=(0.9, 1.0, 1.4))
    labels = LabelMap(shape)
    surf = LabelSurfaces(vtkRenderer(), brick=8)
    surf.set_volume(volume)
    surf.set_label_maps([labels])
    for step in range(24):
        kind = rng.choice(["paint", "over", "erase_one", "erase", "undo", "redo"], p=[.35, .2, .15, .1, .12, .08])
        lo = rng.integers(0, np.array(shape) - 2)
        hi = np.minimum(lo + rng.integers(2, 12, 3), shape)
        region = tuple(slice(int(a), int(b)) for a, b in zip(lo, hi))
        mask = rng.random(tuple(hi - lo)) < 0.8
        value = int(rng.integers(1, 4))
        if kind == "undo":
            labels.undo()
        elif kind == "redo":
            labels.redo()
        elif kind == "erase_one":
            labels.paint(region, mask, 0, only=value)
        else:
            labels.paint(region, mask, 0 if kind == "erase" else value, overwrite=kind == "over")
        if step % 3 == 2:
            surf.flush()
            fresh = LabelSurfaces(vtkRenderer(), brick=8)
            fresh.set_volume(volume)
            fresh.set_label_maps([LabelMap(shape, data=labels.data.copy())])
            fresh.flush()
            assert same_meshes(meshes(surf), meshes(fresh)), step
    assert surf.stats()["surfaces"] > 0


def test_a_label_moved_within_a_brick_with_the_same_voxel_count_is_remeshed():
    """The voxel counts of a brick do not change when a region is replaced by the same label
    shifted by a voxel (a model's mask, set_region): the label present in the edit is re-meshed."""
    volume, labels = two_label_map()
    surf = surfaces_of(volume, labels)
    region = (slice(10, 30), slice(20, 42), slice(108, 134))  # label 2's ball, in bricks bx 1 and 2
    values = labels.data[region].copy()
    assert (values == 2).sum() > 0
    shifted = np.roll(values, 1, axis=1)  # along y, within brick by 0
    assert (shifted == 2).sum() == (values == 2).sum()
    assert labels.set_region(region, shifted, "model", overwrite=True) > 0
    surf.flush()
    assert surf.stats()["remeshed"] >= 1
    assert same_meshes(meshes(surf), meshes(surfaces_of(volume, labels)))


def test_shading_runs_on_across_brick_seams():
    """The bricks' point normals equal those of the merged, watertight mesh (vtkPolyDataNormals
    on vtkCleanPolyData of all bricks): no shading seam where bricks meet, after edits too."""
    from vtkmodules.util.numpy_support import vtk_to_numpy
    from vtkmodules.vtkFiltersCore import vtkAppendPolyData, vtkCleanPolyData, vtkPolyDataNormals
    from vtkmodules.vtkRenderingCore import vtkRenderer
    shape = (30, 30, 34)
    z, y, x = np.ogrid[:shape[0], :shape[1], :shape[2]]
    data = (((x - 16.5) ** 2 + (y - 15) ** 2 + (z - 14) ** 2) < 11 ** 2).astype(np.uint8)
    volume = Volume(np.zeros(shape, np.int16), spacing=(0.7, 1.0, 1.3))
    labels = LabelMap(shape, data=data)
    surf = LabelSurfaces(vtkRenderer(), brick=8)
    surf.set_volume(volume)
    surf.set_label_maps([labels])
    surf.flush()

    def check():
        append = vtkAppendPolyData()
        for actor in surf.label_actors(labels, 1):
            append.AddInputData(actor.GetMapper().GetInput())
        append.Update()
        shown = append.GetOutput()
        clean = vtkCleanPolyData()
        clean.SetInputData(shown)
        clean.SetTolerance(0.0)
        normals = vtkPolyDataNormals()
        normals.SetInputConnection(clean.GetOutputPort())
        normals.SplittingOff()
        normals.ConsistencyOff()
        normals.Update()
        merged = normals.GetOutput()
        key = np.dtype((np.void, 12))
        merged_points = np.ascontiguousarray(vtk_to_numpy(merged.GetPoints().GetData())).view(key).ravel()
        shown_points = np.ascontiguousarray(vtk_to_numpy(shown.GetPoints().GetData())).view(key).ravel()
        order = np.argsort(merged_points)
        where = order[np.searchsorted(merged_points, shown_points, sorter=order)]
        assert np.array_equal(merged_points[where], shown_points)
        expected = vtk_to_numpy(merged.GetPointData().GetNormals())[where]
        got = vtk_to_numpy(shown.GetPointData().GetNormals())
        assert shown.GetNumberOfPoints() > merged.GetNumberOfPoints()  # there are seams
        assert np.abs(got - expected).max() < 1e-4

    check()
    region, mask = brush(shape, volume.spacing, (16, 8, 8), 3.0)  # across brick corners
    labels.paint(region, mask, 1)
    labels.paint((slice(0, 30), slice(0, 30), slice(16, 17)), np.ones((30, 30, 1), bool), 0)  # a cut
    surf.flush()
    check()
