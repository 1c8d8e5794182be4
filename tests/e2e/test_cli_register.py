"""`medviewer register` as users and scripts call it: a moved, re-contrasted copy of the demo T1 MR
registered back, the outputs on the fixed grid, the transform file read by SimpleITK, labels carried,
landmarks and their TRE, and bad input refused in one line before any output is written."""
from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from tests.conftest import DEMO
from tests.e2e.test_cli import medviewer
from tests.support import registration_cases as cases

MRI = DEMO / "mri_hippocampus" / "hippocampus_001.nii.gz"


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    """(folder, fixed volume, moving volume, D) with MOVING.nii.gz = the remapped MR through D."""
    folder = tmp_path_factory.mktemp("register")
    fixed = cases.read_mr(MRI)
    deform = cases.rigid(fixed, angles=(0.06, -0.05, 0.08), shift=(2.5, -1.5, 1.0))
    moving = cases.remapped(cases.moved(fixed, deform))
    sitk.WriteImage(cases.image_of(moving), str(folder / "moving.nii.gz"))
    labels = (moving.data > np.percentile(moving.data, 70)).astype(np.uint8) * 2
    label_image = sitk.GetImageFromArray(labels)
    label_image.CopyInformation(cases.image_of(moving))
    sitk.WriteImage(label_image, str(folder / "moving_labels.nii.gz"))
    return folder, fixed, moving, deform


def test_register_writes_the_moving_image_on_the_fixed_grid(pair):
    folder, fixed, moving, deform = pair
    out, tfm, labels_out = folder / "registered.nii.gz", folder / "moving_to_fixed.tfm", folder / "carried.nii.gz"
    proc = medviewer("register", MRI, folder / "moving.nii.gz", "--out", out, "--save-transform", tfm,
                     "--labels", folder / "moving_labels.nii.gz", "--labels-out", labels_out)
    assert f"wrote {out} (registered (rigid, MI)" in proc.stdout and "ITK transform" in proc.stdout
    written, reference = sitk.ReadImage(str(out)), sitk.ReadImage(str(MRI))
    assert written.GetSize() == reference.GetSize() and np.allclose(written.GetOrigin(), reference.GetOrigin())
    assert np.allclose(written.GetSpacing(), reference.GetSpacing())
    assert np.allclose(written.GetDirection(), reference.GetDirection())
    transform = sitk.ReadTransform(str(tfm))
    points = cases.head_points(moving, cases.head_mask(fixed), most=2000)
    assert cases.tre_mm(transform, deform, points) < 0.5
    again = sitk.Resample(sitk.ReadImage(str(folder / "moving.nii.gz"), sitk.sitkFloat32), reference, transform,
                          sitk.sitkLinear, float(moving.data.min()), sitk.sitkFloat32)
    assert np.allclose(sitk.GetArrayFromImage(again), sitk.GetArrayFromImage(written), atol=1e-3)
    carried = sitk.ReadImage(str(labels_out))
    assert carried.GetSize() == reference.GetSize()
    expected = sitk.Resample(sitk.ReadImage(str(folder / "moving_labels.nii.gz")), reference, transform,
                             sitk.sitkNearestNeighbor, 0, sitk.sitkUInt8)
    assert np.array_equal(sitk.GetArrayFromImage(carried), sitk.GetArrayFromImage(expected))
    assert set(np.unique(sitk.GetArrayFromImage(carried))) == {0, 2}


def test_landmarks_print_the_tre(pair):
    folder, fixed, moving, deform = pair
    fixed_points = cases.head_points(fixed, cases.head_mask(fixed), most=300)[::50][:5]
    inverse = deform.GetInverse()
    moving_points = np.array([inverse.TransformPoint(tuple(p)) for p in fixed_points])
    (folder / "f.csv").write_text("label,x,y,z\n" + "".join(f"L{i},{p[0]},{p[1]},{p[2]}\n" for i, p in enumerate(fixed_points)))
    (folder / "m.csv").write_text("label,x,y,z\n" + "".join(f"L{i},{p[0]},{p[1]},{p[2]}\n" for i, p in enumerate(moving_points)))
    proc = medviewer("register", MRI, folder / "moving.nii.gz", "--out", folder / "lm.nii.gz", "--landmarks-only",
                     "--landmarks", folder / "f.csv", folder / "m.csv")
    line = next(ln for ln in proc.stdout.splitlines() if ln.startswith("target registration error"))
    assert "over 5 landmark pairs: mean 0.000 mm" in line and "(rigid, landmarks)" in proc.stdout
    proc = medviewer("register", MRI, folder / "moving.nii.gz", "--out", folder / "lm2.nii.gz",
                     "--landmarks", folder / "f.csv", folder / "m.csv")
    mean = float(next(ln for ln in proc.stdout.splitlines() if ln.startswith("target")).split("mean ")[1].split()[0])
    assert mean < 0.5


@pytest.mark.parametrize("extra, message", [
    (["--save-transform", "{d}/t.nii"], "an ITK transform file is"),
    (["--labels", "{d}/moving_labels.nii.gz"], "--labels and --labels-out go together"),
    (["--labels-out", "{d}/x.txt", "--labels", "{d}/moving_labels.nii.gz"], "write labels as one of"),
    (["--landmarks-only"], "--landmarks-only needs --landmarks"),
    (["--out-of-place"], "unrecognized arguments"),
])
def test_bad_options_are_refused_before_any_work(pair, extra, message):
    folder = pair[0]
    out = folder / "never.nii.gz"
    proc = medviewer("register", MRI, folder / "moving.nii.gz", "--out", out,
                     *[e.format(d=folder) for e in extra], check=False)
    assert proc.returncode in (1, 2) and message in proc.stderr and "Traceback" not in proc.stderr
    assert not out.exists()


def test_bad_images_are_one_clean_line(pair, tmp_path):
    folder, fixed, _, _ = pair
    flat = sitk.GetImageFromArray((np.arange(40 * 50) % 255).reshape(40, 50).astype(np.uint8))
    sitk.WriteImage(flat, str(tmp_path / "slice.png"))
    far = cases.image_of(fixed)
    far.SetOrigin(tuple(np.add(far.GetOrigin(), (500.0, 0.0, 0.0))))
    sitk.WriteImage(far, str(tmp_path / "far.nii.gz"))
    for moving, options, message in ((tmp_path / "slice.png", [], "2D and the fixed image is 3D"),
                                     (tmp_path / "far.nii.gz", ["--init", "none"], "do not overlap"),
                                     (tmp_path / "missing.nii.gz", [], "missing.nii.gz")):
        out = tmp_path / "out.nii.gz"
        proc = medviewer("register", MRI, moving, "--out", out, *options, check=False)
        assert proc.returncode == 1, proc.stdout + proc.stderr
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("medviewer: error: ") and message in lines[0], proc.stderr
        assert not out.exists()
