"""Brush stroke to updated label surface, against bare VTK re-meshing the whole map (issue 13).

Run: python -m pytest tests/bench/test_surface_update_bench.py --bench -s
A 512x512x300 label map (0.7 x 0.7 x 1.0 mm) with one big label (an ellipsoid "body", 460 x 400 x
260 voxels) and three small ones; LabelSurfaces meshes it once, then short brush strokes
(processing.label_tools.stroke, 4 mm discs on an axial slice, as the paint tool makes them) land on
the big label's edge and on a small label. Timed: LabelMap.paint + LabelSurfaces.flush, i.e. from
the stroke to the actors holding the new surface, and the same plus one offscreen frame.
Baselines in the same run: bare VTK meshing the whole map from scratch (what an update costs without
bricks): vtkDiscreteFlyingEdges3D of every label + the same vtkWindowedSincPolyDataFilter, and
vtkSurfaceNets3D (its own smoothing). The initial full mesh is compared with the same baselines.
With ../shared/data, the same strokes on the real hippocampus labels.
Criterion: median stroke-to-surface <= 100 ms on the 512x512x300 map, and below the bare re-mesh.
"""
from __future__ import annotations

import statistics
import time

import numpy as np
import pytest

from medviewer.core.labels import LabelMap
from medviewer.core.volume import Volume
from medviewer.processing.label_tools import stroke

pytestmark = pytest.mark.bench

GOAL_MS = 100.0
SHAPE = (300, 512, 512)
SPACING = (0.7, 0.7, 1.0)
REPEATS = 3
WINDOW = (600, 600)


def big_map() -> tuple[Volume, LabelMap]:
    nz, ny, nx = SHAPE
    data = np.zeros(SHAPE, np.uint8)
    y, x = np.ogrid[:ny, :nx]
    plane = ((x - 255.5) / 230.0) ** 2 + ((y - 250.0) / 200.0) ** 2
    for z in range(nz):
        data[z][plane + ((z - 150.0) / 130.0) ** 2 <= 1.0] = 1
    z, y, x = np.ogrid[:nz, :ny, :nx]
    for value, (cx, cy, cz, r) in enumerate([(200, 220, 120, 20), (330, 300, 160, 12), (260, 150, 200, 8)], 2):
        box = (slice(cz - r, cz + r + 1), slice(cy - r, cy + r + 1), slice(cx - r, cx + r + 1))
        ball = ((x[:, :, box[2]] - cx) ** 2 + (y[:, box[1]] - cy) ** 2 + (z[box[0]] - cz) ** 2) <= r * r
        data[box][ball] = value
    volume = Volume(np.zeros((1, 1, 1), np.int16), spacing=SPACING)
    volume.data = np.broadcast_to(np.zeros((), np.int16), SHAPE)  # geometry only, no image memory
    return volume, LabelMap(SHAPE, data=data)


def strokes(shape, labels: LabelMap, count: int = 9):
    """Short axial strokes (two points about 10 mm apart on the big map) at the labels' edge: two
    in three paint label 1 there, every third label 2 (a label new to the brick, on the big map)."""
    nz, ny, nx = shape
    step, length = max(ny // (3 * count), 1), max(min(14, ny // 8), 2)
    out = []
    for k in range(count):
        z = int(nz * (0.3 + 0.4 * k / count))
        y0 = ny // 2 + (k - count // 2) * step
        labelled = np.flatnonzero(labels.data[z, y0])
        x0 = int(labelled[0]) - 2 if labelled.size else nx // 4
        value = 1 if k % 3 else 2
        out.append(([(x0, y0, z), (x0 + length // 4, y0 + length, z)], value))
    return out


def _all_labels(contour, labels: LabelMap, spacing):
    """A whole-map contour filter of every label present, on the grid frame."""
    from medviewer.ui.view3d.vtk_bridge import image_data
    contour.SetInputData(image_data(labels.data, spacing))
    for i, value in enumerate(labels.values_present()):
        contour.SetValue(i, value)
    return contour


def bare_flying_edges(labels: LabelMap, spacing):
    """(ms, mesh) for bare VTK to mesh and smooth every label of the whole map (the same filters)."""
    from vtkmodules.vtkFiltersCore import vtkWindowedSincPolyDataFilter
    from vtkmodules.vtkFiltersGeneral import vtkDiscreteFlyingEdges3D
    from medviewer.ui.view3d import label_mesher
    start = time.perf_counter()
    contour = _all_labels(vtkDiscreteFlyingEdges3D(), labels, spacing)
    contour.ComputeNormalsOff()
    contour.ComputeGradientsOff()
    smooth = vtkWindowedSincPolyDataFilter()
    smooth.SetInputConnection(contour.GetOutputPort())
    smooth.SetNumberOfIterations(label_mesher.SMOOTHING_ITERATIONS)
    smooth.SetPassBand(label_mesher.SMOOTHING_PASS_BAND)
    smooth.NonManifoldSmoothingOn()
    smooth.Update()
    return (time.perf_counter() - start) * 1000.0, smooth.GetOutput()


def bare_surface_nets(labels: LabelMap, spacing) -> float:
    """ms for vtkSurfaceNets3D (with its own smoothing) of every label of the whole map."""
    from vtkmodules.vtkFiltersCore import vtkSurfaceNets3D
    start = time.perf_counter()
    _all_labels(vtkSurfaceNets3D(), labels, spacing).Update()
    return (time.perf_counter() - start) * 1000.0


def run_case(name: str, volume: Volume, labels: LabelMap) -> dict:
    from vtkmodules.vtkRenderingCore import vtkRenderer
    from medviewer.ui.view3d.label_surfaces import LabelSurfaces
    from medviewer.ui.view3d.vtk_bridge import offscreen_render_window

    fe = [bare_flying_edges(labels, volume.spacing)[0] for _ in range(REPEATS)]
    nets = [bare_surface_nets(labels, volume.spacing) for _ in range(REPEATS)]
    initial = []
    for _ in range(REPEATS):
        surf = LabelSurfaces(vtkRenderer())
        surf.set_volume(volume)
        surf.set_label_maps([labels])
        start = time.perf_counter()
        surf.flush()
        initial.append((time.perf_counter() - start) * 1000.0)
        surf.close()

    bare_frame = bare_frames(bare_flying_edges(labels, volume.spacing)[1])
    window = offscreen_render_window(*WINDOW)
    renderer = vtkRenderer()
    window.AddRenderer(renderer)
    surf = LabelSurfaces(renderer)
    surf.set_volume(volume)
    surf.set_label_maps([labels])
    surf.flush()
    renderer.ResetCamera()
    frame = statistics.median(timed_frames(window))
    update, framed, remeshed = [], [], []
    for points, value in strokes(labels.data.shape, labels):
        region, mask = stroke(labels.data.shape, volume.spacing, points, 4.0, normal_axis=2)
        start = time.perf_counter()
        with labels.edit_block("brush"):
            labels.paint(region, mask, value)
        surf.flush()
        update.append((time.perf_counter() - start) * 1000.0)
        window.Render()
        framed.append((time.perf_counter() - start) * 1000.0)
        remeshed.append(surf.stats()["remeshed"])
    stats = surf.stats()
    surf.close()
    return {"name": name, "fe": statistics.median(fe), "nets": statistics.median(nets),
            "initial": statistics.median(initial), "update": statistics.median(update),
            "framed": statistics.median(framed), "frame": frame, "bare_frame": bare_frame,
            "remeshed": remeshed, "stats": stats}


def timed_frames(window, count: int = REPEATS + 1) -> list[float]:
    """ms of each Render() of an unchanged scene (the first, which uploads, left out)."""
    window.Render()
    times = []
    for _ in range(count - 1):
        start = time.perf_counter()
        window.Render()
        times.append((time.perf_counter() - start) * 1000.0)
    return times


def bare_frames(mesh) -> float:
    """Median ms of a frame of bare VTK's whole-map mesh as one actor, same window size."""
    from vtkmodules.vtkRenderingCore import vtkActor, vtkPolyDataMapper, vtkRenderer
    from medviewer.ui.view3d.vtk_bridge import offscreen_render_window
    window = offscreen_render_window(*WINDOW)
    renderer = vtkRenderer()
    window.AddRenderer(renderer)
    mapper = vtkPolyDataMapper()
    mapper.SetInputData(mesh)
    actor = vtkActor()
    actor.SetMapper(mapper)
    renderer.AddActor(actor)
    renderer.ResetCamera()
    return statistics.median(timed_frames(window))


def report(row: dict) -> None:
    print(f"\n{row['name']}: {row['stats']['bricks']} bricks with surfaces, {row['stats']['surfaces']} actors, "
          f"{row['stats']['triangles']} triangles; (label, brick) pairs re-meshed per stroke: {row['remeshed']}")
    print(f"{'measure (median ms)':<46}{'ours':>10}{'bare FE+sinc':>14}{'ratio':>8}{'bare SurfaceNets':>18}"
          f"{'ratio':>8}")
    for label, ours in (("initial full mesh", row["initial"]), ("stroke -> updated surface", row["update"])):
        print(f"{label:<46}{ours:>10.1f}{row['fe']:>14.1f}{ours / row['fe']:>8.3f}{row['nets']:>18.1f}"
              f"{ours / row['nets']:>8.3f}")
    remesh_and_frame = row["fe"] + row["bare_frame"]
    for label, ours, bare in (("one frame, unchanged scene", row["frame"], row["bare_frame"]),
                              ("stroke -> updated surface + one frame", row["framed"], remesh_and_frame)):
        print(f"{label:<46}{ours:>10.1f}{bare:>14.1f}{ours / bare:>8.3f}")


def test_stroke_to_surface_on_a_512x512x300_map():
    volume, labels = big_map()
    row = run_case("512x512x300 synthetic map (1 big + 3 small labels)", volume, labels)
    report(row)
    assert row["update"] <= GOAL_MS
    assert row["update"] < row["fe"] and row["update"] < row["nets"]


def test_stroke_to_surface_on_the_real_hippocampus_labels():
    from tests.gui.test_label_surfaces import real_hippocampus
    volume, labels = real_hippocampus()
    row = run_case(f"hippocampus_001 {volume.size} labels", volume, labels)
    report(row)
    assert row["update"] <= GOAL_MS
