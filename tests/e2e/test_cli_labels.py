"""`medviewer stats` and `medviewer convert --seg/--reference` as users and scripts call them."""
from __future__ import annotations

import json

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk

from tests.conftest import DEMO
from tests.e2e.test_cli import medviewer
from tests.unit.test_dicom_seg import make_uid_copy

MRI = DEMO / "mri_hippocampus" / "hippocampus_001.nii.gz"


@pytest.fixture(scope="module")
def uid_ct(tmp_path_factory):
    return make_uid_copy(tmp_path_factory.mktemp("uid_ct"))


def ct_label_file(folder, reference) -> tuple:
    """A label NIfTI on the CT grid (written with SimpleITK, as another tool would)."""
    series = sitk.ImageSeriesReader()
    series.SetFileNames(series.GetGDCMSeriesFileNames(str(reference)))
    image = series.Execute()
    labels = np.zeros(sitk.GetArrayViewFromImage(image).shape, np.uint8)
    labels[2:7, 100:200, 150:300] = 1
    labels[12:14, 300:330, 300:320] = 3
    out = sitk.GetImageFromArray(labels)
    out.CopyInformation(image)
    path = folder / "labels.nii.gz"
    sitk.WriteImage(out, str(path))
    return path, labels, sitk.GetArrayFromImage(image)


def test_stats_json_matches_numpy(tmp_path):
    image = sitk.GetArrayFromImage(sitk.ReadImage(str(MRI)))
    labels = np.zeros(image.shape, np.uint8)
    labels[image > np.percentile(image, 95)] = 2
    labels[10:20, 10:20, 10:20] = 5
    path = tmp_path / "mri_labels.nrrd"
    out = sitk.GetImageFromArray(labels)
    out.CopyInformation(sitk.ReadImage(str(MRI)))
    sitk.WriteImage(out, str(path))
    stats = json.loads(medviewer("stats", MRI, path, "--json", "--csv", tmp_path / "s.csv").stdout)
    assert [row["label"] for row in stats] == [2, 5]
    for row in stats:
        assert {"label", "name", "voxels", "volume_mm3", "mean", "std", "min", "max", "median"} <= set(row)
        values = image[labels == row["label"]].astype(float)
        assert row["voxels"] == values.size and row["volume_mm3"] == pytest.approx(values.size * 1.0)
        assert [row[k] for k in ("mean", "std", "min", "max", "median")] == pytest.approx(
            [values.mean(), values.std(), values.min(), values.max(), np.median(values)])
    assert (tmp_path / "s.csv").read_text().startswith("label,name,voxels,volume_mm3,mean")


def test_labels_to_seg_and_back_through_the_cli(tmp_path, uid_ct):
    labels_path, labels, image = ct_label_file(tmp_path, uid_ct)
    seg = tmp_path / "labels_seg.dcm"
    proc = medviewer("convert", labels_path, seg, "--seg", "--reference", uid_ct)
    assert "wrote" in proc.stdout and pydicom.dcmread(seg).Modality == "SEG"
    back = tmp_path / "back.nii.gz"
    medviewer("convert", seg, back, "--reference", uid_ct)
    assert np.array_equal(sitk.GetArrayFromImage(sitk.ReadImage(str(back))), labels)
    assert (tmp_path / "back.label.txt").exists() and (tmp_path / "back.ctbl").exists()
    text = medviewer("stats", uid_ct, seg).stdout  # the SEG itself as LABELS
    assert "Label 3" in text and f"{np.count_nonzero(labels == 3):>10}" in text


def test_seg_from_the_blank_uid_demo_ct_round_trips(tmp_path):
    labels_path, _, _ = ct_label_file(tmp_path, DEMO / "ct_chest_20")
    medviewer("convert", labels_path, tmp_path / "x.dcm", "--seg", "--reference", DEMO / "ct_chest_20")
    medviewer("convert", tmp_path / "x.dcm", tmp_path / "back.nii.gz", "--reference", DEMO / "ct_chest_20")
    import SimpleITK as sitk

    a = sitk.GetArrayFromImage(sitk.ReadImage(str(labels_path)))
    b = sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path / "back.nii.gz")))
    assert np.array_equal(a, b)


def test_labels_of_another_grid_fail_unless_resampled(tmp_path):
    labels_path, _, _ = ct_label_file(tmp_path, DEMO / "ct_chest_20")
    proc = medviewer("stats", MRI, labels_path, check=False)
    assert proc.returncode == 1 and proc.stderr.startswith("medviewer: error: ") and "--resample" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    stats = json.loads(medviewer("stats", MRI, labels_path, "--resample", "--json").stdout)
    assert stats == []  # the CT box lies nowhere near the MRI
