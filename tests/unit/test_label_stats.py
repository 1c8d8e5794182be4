"""Per-label statistics against numpy, on the demo CT (HU) and the hippocampus MRI."""
from __future__ import annotations

import csv

import numpy as np
import pytest
import SimpleITK as sitk

from medviewer.core.errors import MedViewerError
from medviewer.core.labels import LabelMap
from medviewer.core.volume import Volume
from medviewer.io import open_volume
from medviewer.processing.label_stats import label_statistics, write_csv
from tests.conftest import DEMO, shared

KEYS = {"label", "name", "voxels", "volume_mm3", "mean", "std", "min", "max", "median"}


@pytest.fixture(scope="module")
def ct() -> Volume:
    return open_volume(str(DEMO / "ct_chest_20"))


def expected(image: np.ndarray, mask: np.ndarray) -> dict:
    values = image[mask].astype(np.float64)
    return dict(voxels=int(mask.sum()), mean=values.mean(), std=values.std(), min=values.min(),
                max=values.max(), median=np.median(values))


def check(row: dict, image: np.ndarray, mask: np.ndarray) -> None:
    for key, value in expected(image, mask).items():
        assert row[key] == pytest.approx(value, rel=1e-9, abs=1e-9), key


def test_ct_statistics_match_numpy_in_hounsfield_units(ct):
    lm = LabelMap(ct.shape)
    lm.table.add("air", 1)
    lm.table.add("box", 4)
    lm.table.add("never painted", 9)
    air = ct.data < -900
    lm.data[air] = 1
    lm.data[3:11, 200:260, 300:380] = 4
    stats = label_statistics(ct, lm)
    assert [row["label"] for row in stats] == [1, 4, 9] and all(KEYS <= set(row) for row in stats)
    assert stats[0]["name"] == "air" and stats[0]["max"] < -900  # HU, not stored values
    voxel = float(np.prod(ct.spacing))
    for row, value in zip(stats[:2], (1, 4)):
        check(row, ct.data, lm.data == value)
        assert row["volume_mm3"] == pytest.approx(row["voxels"] * voxel)
    assert stats[1]["voxels"] == 8 * 60 * 80
    assert stats[2] == dict(label=9, name="never painted", voxels=0, volume_mm3=0.0, mean=None, std=None,
                            min=None, max=None, median=None)


def test_real_hippocampus_labels_match_numpy():
    image = open_volume(str(DEMO / "mri_hippocampus" / "hippocampus_001.nii.gz"))
    labels = sitk.GetArrayFromImage(sitk.ReadImage(str(shared("hippocampus", "labelsTr", "hippocampus_001.nii.gz"))))
    stats = label_statistics(image, LabelMap(image.shape, data=labels))
    assert [row["label"] for row in stats] == [1, 2]
    for row in stats:
        check(row, image.data, labels == row["label"])
        assert row["volume_mm3"] == pytest.approx(row["voxels"] * 1.0)  # 1 mm voxels


def test_values_present_but_not_in_the_table_get_a_default_row():
    image = Volume(np.arange(24, dtype=np.float32).reshape(2, 3, 4), spacing=(0.5, 2.0, 3.0))
    lm = LabelMap(image.shape)
    lm.data[1, 1:, 2:] = 7  # written directly, as a model or a file load could
    (row,) = label_statistics(image, lm)
    assert row["label"] == 7 and row["voxels"] == 4 and row["volume_mm3"] == pytest.approx(12.0)
    check(row, image.data, lm.data == 7)


def test_2d_images_report_area_not_volume():
    image = Volume(np.arange(20, dtype=np.int16).reshape(4, 5), spacing=(0.2, 0.5, 1.0))
    lm = LabelMap(image.shape, data=(image.data >= 15).astype(np.uint8))
    (row,) = label_statistics(image, lm)
    assert row["area_mm2"] == pytest.approx(5 * 0.1) and row["volume_mm3"] is None
    check(row, image.data, image.data >= 15)


def test_rgb_images_give_counts_without_intensities():
    image = Volume(np.zeros((1, 4, 4, 3), np.uint8))
    lm = LabelMap(image.shape, data=np.ones((1, 4, 4), np.uint8))
    (row,) = label_statistics(image, lm)
    assert row["voxels"] == 16 and row["mean"] is None


def test_mismatched_shapes_are_refused():
    with pytest.raises(MedViewerError, match="does not match"):
        label_statistics(Volume(np.zeros((2, 3, 4))), LabelMap((2, 3, 5)))


def test_csv_reads_back(tmp_path, ct):
    lm = LabelMap(ct.shape)
    lm.table.add("a, with comma", 2)
    lm.table.add("empty", 3)
    lm.data[0, :10, :10] = 2
    stats = label_statistics(ct, lm)
    path = write_csv(stats, str(tmp_path / "stats.csv"))
    rows = list(csv.DictReader(open(path, newline="")))
    assert list(rows[0]) == ["label", "name", "voxels", "volume_mm3", "mean", "std", "min", "max", "median"]
    assert rows[0]["name"] == "a, with comma" and int(rows[0]["voxels"]) == 100
    assert float(rows[0]["mean"]) == pytest.approx(stats[0]["mean"]) and rows[1]["mean"] == ""
    with pytest.raises(MedViewerError, match="cannot write statistics"):
        write_csv(stats, str(tmp_path / "missing" / "stats.csv"))
