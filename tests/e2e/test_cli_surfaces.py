"""`medviewer surfaces IMAGE LABELS --out FILE` as a user or a script calls it: files another tool
opens at the right place in world coordinates, and one-line refusals."""
from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from tests.e2e.test_cli import medviewer
from tests.gui.test_label_surfaces import parse_binary_stl, rotation

pytest.importorskip("vtkmodules")


@pytest.fixture(scope="module")
def oblique_pair(tmp_path_factory):
    """An oblique image and a label file on its grid (written by SimpleITK, as another tool would):
    a ball of 9 mm (label 1) and a box (label 3), with their world centres."""
    folder = tmp_path_factory.mktemp("surfaces")
    shape = (18, 32, 40)
    image = sitk.GetImageFromArray(np.zeros(shape, np.int16))
    image.SetSpacing((0.8, 1.1, 2.3))
    image.SetOrigin((-40.0, 25.0, 60.0))
    image.SetDirection(tuple(rotation(25, -10, 15).ravel()))
    z, y, x = np.mgrid[:shape[0], :shape[1], :shape[2]]
    ijk = np.stack([x, y, z], -1).reshape(-1, 3).astype(float)
    world = np.array([image.TransformContinuousIndexToPhysicalPoint(p) for p in ((18.2, 15.1, 8.6),)])
    centre = world[0]
    affine = np.array(image.GetDirection()).reshape(3, 3) @ np.diag(image.GetSpacing())
    points = ijk @ affine.T + np.array(image.GetOrigin())
    labels = (np.linalg.norm(points - centre, axis=1) <= 9.0).reshape(shape).astype(np.uint8)
    labels[2:5, 2:8, 30:38] = 3
    box_centre = np.array(image.TransformContinuousIndexToPhysicalPoint((33.5, 4.5, 3.0)))
    lab = sitk.GetImageFromArray(labels)
    lab.CopyInformation(image)
    sitk.WriteImage(image, str(folder / "image.nii.gz"))
    sitk.WriteImage(lab, str(folder / "labels.nii.gz"))
    return folder, centre, box_centre


def test_surfaces_command_writes_one_stl_per_label_in_world_lps(oblique_pair, tmp_path):
    folder, centre, box_centre = oblique_pair
    done = medviewer("surfaces", folder / "image.nii.gz", folder / "labels.nii.gz", "--out", tmp_path / "s.stl")
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["s_1_Label_1.stl", "s_3_Label_3.stl"]
    assert done.stdout.count("wrote ") == 2
    ball = parse_binary_stl(tmp_path / "s_1_Label_1.stl")
    signed = np.einsum("ij,ij->i", ball[:, 0], np.cross(ball[:, 1], ball[:, 2])).sum() / 6.0
    assert signed == pytest.approx(4 / 3 * np.pi * 9.0 ** 3, rel=0.04)
    assert np.allclose(ball.reshape(-1, 3).mean(0), centre, atol=0.3)
    box = parse_binary_stl(tmp_path / "s_3_Label_3.stl").reshape(-1, 3)
    assert np.allclose((box.min(0) + box.max(0)) / 2, box_centre, atol=0.5)


def test_surfaces_command_one_label_in_ras_and_ply(oblique_pair, tmp_path):
    folder, centre, _ = oblique_pair
    out = tmp_path / "ball.ply"
    medviewer("surfaces", folder / "image.nii.gz", folder / "labels.nii.gz", "--out", out, "--label", "1",
              "--space", "RAS")
    from vtkmodules.util.numpy_support import vtk_to_numpy
    from vtkmodules.vtkIOPLY import vtkPLYReader
    reader = vtkPLYReader()
    reader.SetFileName(str(out))
    reader.Update()
    points = vtk_to_numpy(reader.GetOutput().GetPoints().GetData())
    assert np.allclose(points.mean(0), centre * [-1, -1, 1], atol=0.3)
    assert b"SPACE=RAS" in out.read_bytes()[:400]


@pytest.mark.parametrize("extra, message", [
    (["--out", "{tmp}/x.vtk"], "surfaces are written as .stl, .obj, .ply"),
    (["--out", "{tmp}/x.stl", "--label", "2"], "label 2 is not in the label map (present: 1, 3)"),
    (["--out", "{tmp}/nowhere/x.stl"], "no such folder"),
])
def test_surfaces_command_refuses_in_one_line(oblique_pair, tmp_path, extra, message):
    folder, _, _ = oblique_pair
    args = [a.format(tmp=tmp_path) for a in extra]
    done = medviewer("surfaces", folder / "image.nii.gz", folder / "labels.nii.gz", *args, check=False)
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("medviewer: error: ") and message in lines[0], done.stderr
