"""`medviewer process` as users and scripts call it: the written image is the library call's result
on the input's grid, label operations write a label file with named labels, bad input is one line."""
from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from tests.conftest import DEMO
from tests.e2e.test_cli import medviewer

MRI = DEMO / "mri_hippocampus" / "hippocampus_001.nii.gz"


def test_gaussian_writes_the_smoothed_image_on_the_input_grid(tmp_path):
    out = tmp_path / "smooth.nrrd"
    proc = medviewer("process", MRI, out, "--op", "gaussian", "--param", "sigma=1.5")
    assert f"wrote {out}" in proc.stdout and "Gaussian σ 1.5 mm" in proc.stdout
    source, written = sitk.ReadImage(str(MRI)), sitk.ReadImage(str(out))
    expected = sitk.SmoothingRecursiveGaussian(sitk.Cast(source, sitk.sitkFloat32), 1.5)
    np.testing.assert_allclose(sitk.GetArrayFromImage(written), sitk.GetArrayFromImage(expected), atol=1e-5)
    for get in ("GetSpacing", "GetOrigin", "GetDirection"):
        assert getattr(written, get)() == pytest.approx(getattr(source, get)())


def test_kmeans_writes_a_label_file_with_named_classes(tmp_path):
    out = tmp_path / "classes.nii.gz"
    proc = medviewer("process", MRI, out, "--op", "kmeans", "--param", "classes=3", "seed=0")
    assert "class 1 (darkest)" in proc.stdout
    labels = sitk.GetArrayFromImage(sitk.ReadImage(str(out)))
    image = sitk.GetArrayFromImage(sitk.ReadImage(str(MRI)))
    assert set(np.unique(labels)) == {0, 1, 2, 3}
    means = [image[labels == k].mean() for k in (1, 2, 3)]
    assert means == sorted(means)  # class 1 darkest
    assert (labels[image == image.min()] == 0).all()
    table = (tmp_path / "classes.label.txt").read_text()
    assert "class 3 (brightest)" in table


def test_crop_writes_the_box_where_it_was(tmp_path):
    out = tmp_path / "crop.nii.gz"
    medviewer("process", MRI, out, "--op", "crop", "--param", "x0=5", "x1=20", "y0=10", "y1=30", "z0=2", "z1=9")
    source, written = sitk.ReadImage(str(MRI)), sitk.ReadImage(str(out))
    assert written.GetSize() == (16, 21, 8)
    assert written.GetOrigin() == pytest.approx(source.TransformIndexToPhysicalPoint((5, 10, 2)))
    np.testing.assert_array_equal(sitk.GetArrayFromImage(written), sitk.GetArrayFromImage(source)[2:10, 10:31, 5:21])


def test_list_names_every_operation_with_its_parameters():
    proc = medviewer("process", "--list")
    for name in ("gaussian", "nlmeans", "clahe", "n4", "canny", "close", "adaptive-threshold", "kmeans", "gmm", "crop"):
        assert f"  {name} (" in proc.stdout
    assert "sigma=1.0  a number from 0.01 to 50 mm" in proc.stdout


@pytest.mark.parametrize("args, words", [
    (["--op", "gaussian", "--param", "sigma=-1"], ["parameter sigma", "0.01 to 50 mm"]),
    (["--op", "gaussian", "--param", "size=3"], ["no parameter 'size'", "sigma"]),
    (["--op", "gaussian", "--param", "sigma"], ["NAME=VALUE"]),
    (["--op", "sharpen"], ["unknown operation 'sharpen'", "laplacian-sharpen"]),
    (["--op", "otsu", "--out-ext"], None),  # argparse usage error
])
def test_bad_options_are_one_line(tmp_path, args, words):
    proc = medviewer("process", MRI, tmp_path / "out.nii.gz", *args, check=False)
    if words is None:
        assert proc.returncode == 2
        return
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("medviewer: error: ")
    for w in words:
        assert w in lines[0]
    assert not (tmp_path / "out.nii.gz").exists()


def test_wrong_output_kind_is_refused_before_any_work(tmp_path):
    proc = medviewer("process", MRI, tmp_path / "labels.png", "--op", "otsu", check=False)
    assert proc.returncode == 1 and "otsu makes a label map" in proc.stderr
    proc = medviewer("process", MRI, tmp_path / "image.png", "--op", "median", check=False)
    assert proc.returncode == 1 and "cannot write '.png'" in proc.stderr
    assert list(tmp_path.iterdir()) == []


def test_rgb_input_is_refused(tmp_path):
    rgb = tmp_path / "rgb.png"
    sitk.WriteImage(sitk.Compose([sitk.Image(8, 8, sitk.sitkUInt8)] * 3), str(rgb))
    proc = medviewer("process", rgb, tmp_path / "out.nii.gz", "--op", "median", check=False)
    assert proc.returncode == 1 and "needs a greyscale image" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
