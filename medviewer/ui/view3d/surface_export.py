"""Label surfaces to STL, OBJ or PLY in world coordinates, for 3D printing and other tools.

    export_surfaces(labelmap, volume, "out/hippo.stl")             # one file per label present
    export_surfaces(labelmap, volume, "anterior.ply", label=1)     # just that label, that name

Each label becomes one closed, watertight mesh (label_mesher.label_surface: the same bricked,
smoothed surface the 3D view shows, seams merged), written in world millimetres: LPS by default
(as DICOM, ITK and 3D Slicer since 4.11), or RAS (x and y negated). The space is named where the
format has room for a comment (the STL header, a PLY comment, an OBJ comment line:
"SPACE=LPS", which Slicer reads). Triangles face outwards in world space whatever the grid's
handedness. With several labels the file names say the label: STEM_VALUE_NAME.EXT.
PLY files carry the label colour on every vertex.
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from medviewer.core.errors import MedViewerError
from medviewer.core.labels import palette_colour
from medviewer.ui.view3d.label_mesher import BrickGrid, label_surface, triangles
from medviewer.ui.view3d.vtk_bridge import grid_to_world_array, setup

FORMATS = (".stl", ".obj", ".ply")
SPACES = ("LPS", "RAS")


def surface_format(path) -> str:
    ext = Path(path).suffix.lower()
    if ext not in FORMATS:
        raise MedViewerError(f"{path}: surfaces are written as {', '.join(FORMATS)}")
    return ext


def _file_for(path: Path, value: int, name: str) -> Path:
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("_.")[:48] or f"label{value}"
    return path.with_name(f"{path.stem}_{value}_{safe}{path.suffix}")


def world_matrix(volume, space: str = "LPS") -> np.ndarray:
    """4x4 grid-frame mm -> world mm in the chosen space."""
    if space not in SPACES:
        raise MedViewerError(f"unknown coordinate space {space!r}; use LPS or RAS")
    matrix = grid_to_world_array(volume)
    if space == "RAS":
        matrix = np.diag([-1.0, -1.0, 1.0, 1.0]) @ matrix
    return matrix


def _to_world(surface, matrix: np.ndarray):
    """Points to world in place; cells reversed when that would turn them inside out."""
    from vtkmodules.util.numpy_support import vtk_to_numpy
    from vtkmodules.vtkFiltersCore import vtkReverseSense
    points = vtk_to_numpy(surface.GetPoints().GetData())
    points[:] = points @ matrix[:3, :3].T.astype(points.dtype) + matrix[:3, 3].astype(points.dtype)
    surface.GetPoints().Modified()
    if signed_volume(surface) >= 0:
        return surface
    reverse = vtkReverseSense()
    reverse.SetInputData(surface)
    reverse.ReverseCellsOn()
    reverse.Update()
    return reverse.GetOutput()


def signed_volume(surface) -> float:
    """Enclosed volume (mm^3) by the divergence theorem: negative when triangles face inwards."""
    from vtkmodules.util.numpy_support import vtk_to_numpy
    points = vtk_to_numpy(surface.GetPoints().GetData()).astype(np.float64)
    tri = triangles(surface)
    a, b, c = points[tri[:, 0]], points[tri[:, 1]], points[tri[:, 2]]
    return float(np.einsum("ij,ij->i", a, np.cross(b, c)).sum() / 6.0)


def _write(surface, path: Path, ext: str, header: str, colour) -> None:
    setup()
    if ext == ".stl":
        from vtkmodules.vtkIOGeometry import vtkSTLWriter
        writer = vtkSTLWriter()
        writer.SetFileTypeToBinary()
        writer.SetHeader(header[:79])
    elif ext == ".ply":
        from vtkmodules.util.numpy_support import numpy_to_vtk
        from vtkmodules.vtkIOPLY import vtkPLYWriter
        rgb = np.tile(np.asarray(colour, np.uint8), (surface.GetNumberOfPoints(), 1))
        array = numpy_to_vtk(rgb, deep=True)
        array.SetName("RGB")
        surface.GetPointData().AddArray(array)
        writer = vtkPLYWriter()
        writer.SetFileTypeToBinary()
        writer.SetArrayName("RGB")
        writer.SetColorModeToDefault()
        writer.AddComment(header)
    else:
        from vtkmodules.vtkIOGeometry import vtkOBJWriter
        writer = vtkOBJWriter()
    writer.SetInputData(surface)
    writer.SetFileName(str(path))
    ok = writer.Write()
    if not ok or not path.is_file() or path.stat().st_size == 0:
        raise MedViewerError(f"{path}: could not be written")
    if ext == ".obj":  # vtkOBJWriter has no comment of its own: the space goes on the first line
        text = path.read_text()
        path.write_text(f"# {header}\n{text}")


def export_surfaces(labelmap, volume, path, space: str = "LPS", label: int | None = None) -> list[Path]:
    """Write the surface of every label present (or only `label`) and return the files written."""
    path = Path(path)
    ext = surface_format(path)
    matrix = world_matrix(volume, space)
    if tuple(labelmap.data.shape) != tuple(volume.shape[:3]):
        raise MedViewerError(f"{path}: the labels' grid {labelmap.data.shape} is not the image's {volume.shape[:3]}")
    present = labelmap.values_present()
    if label is not None and label not in present:
        raise MedViewerError(f"label {label} is not in the label map "
                             f"(present: {', '.join(map(str, present)) or 'none'})")
    values = [label] if label is not None else present
    if not values:
        raise MedViewerError(f"{path}: the label map is empty, there is no surface to write")
    if not path.parent.is_dir():
        raise MedViewerError(f"{path}: the folder {path.parent} does not exist")
    grid = BrickGrid(labelmap.data.shape)
    written = []
    for value in values:
        entry = labelmap.table.get(value)
        name = entry.name if entry is not None else f"Label {value}"
        colour = entry.colour if entry is not None else palette_colour(value)
        surface = _to_world(label_surface(labelmap.data, value, volume.spacing, grid), matrix)
        target = path if label is not None else _file_for(path, value, name)
        header = re.sub(r"[^ -~]", "_", f"MedViewer label {value} {name} SPACE={space}")
        _write(surface, target, ext, header, colour)
        written.append(target)
    return written


def export_session_surfaces(session, path, space: str = "LPS") -> list[str]:
    """The 3D panel's export: the session's active label map on its image (a file per label)."""
    volume, labels = session.volume, session.active_labels
    if volume is None or volume.is_2d:
        raise MedViewerError(f"{path}: label surfaces need a 3D image")
    if labels is None:
        raise MedViewerError(f"{path}: there is no label map to export (open or paint labels first)")
    return [str(p) for p in export_surfaces(labels, volume, path, space=space)]
