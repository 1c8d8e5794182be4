"""Label maps to NIfTI/NRRD and back, on the demo CT and MRI: data, geometry, names and colours."""
from __future__ import annotations

import errno
import os
import re
import shutil
import subprocess

import nibabel as nib
import numpy as np
import pytest
import SimpleITK as sitk

from medviewer.core.errors import ImageReadError, ImageWriteError, MedViewerError
from medviewer.core.labels import LabelMap
from medviewer.core.volume import Volume
from medviewer.io import open_volume
from medviewer.io.label_io import (LabelGeometryMismatch, companion_paths, load_labels, resample_labels_to,
                                   save_labels)
from tests.conftest import DEMO, shared

EXTENSIONS = [".nii", ".nii.gz", ".nrrd", ".seg.nrrd"]
LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])


@pytest.fixture(scope="module")
def ct() -> Volume:
    return open_volume(str(DEMO / "ct_chest_20"))


@pytest.fixture(scope="module")
def mri() -> Volume:
    return open_volume(str(DEMO / "mri_hippocampus" / "hippocampus_001.nii.gz"))


def ct_labels(ct: Volume) -> LabelMap:
    lm = LabelMap(ct.shape, name="ct")
    lm.table.add("right lung", 1)
    lm.table.add("spine \"bone\"", 7, (10, 20, 30), opacity=0.8, visible=False)
    lm.data[(ct.data < -400) & (np.arange(ct.shape[2]) < 256)] = 1
    lm.data[4:9, 300:360, 230:290] = 7
    return lm


def assert_same_geometry(path: str, image: Volume) -> None:
    back = sitk.ReadImage(path)
    assert back.GetPixelID() == sitk.sitkUInt8
    assert back.GetSize() == image.size
    assert np.allclose(back.GetSpacing(), image.spacing, atol=1e-6)
    assert np.allclose(back.GetOrigin(), image.origin, atol=1e-4)
    assert np.allclose(np.reshape(back.GetDirection(), (3, 3)), image.direction, atol=1e-6)


def nrrd_header(path: str) -> dict:
    with open(path, "rb") as fp:
        head = fp.read(4096).split(b"\n\n")[0].decode()
    return dict(line.split(": ", 1) for line in head.splitlines()[1:] if ": " in line and not line.startswith("#"))


def check_independent_reader(path: str, image: Volume, expected: np.ndarray) -> None:
    """nibabel for NIfTI, the NRRD header text for NRRD: same voxels and geometry as SimpleITK."""
    if ".nii" in path:
        img = nib.load(path)
        assert np.array_equal(np.asarray(img.dataobj).transpose(2, 1, 0), expected)
        assert np.allclose(img.affine, LPS_TO_RAS @ image.affine, atol=1e-4)
    else:
        head = nrrd_header(path)
        assert head["space"] == "left-posterior-superior" and head["type"] == "unsigned char"
        assert [int(v) for v in head["sizes"].split()] == list(image.size)
        origin = [float(v) for v in re.findall(r"[-\d.e+]+", head["space origin"])]
        assert np.allclose(origin, image.origin, atol=1e-4)
        axes = np.array([[float(v) for v in a.split(",")] for a in re.findall(r"\(([^)]*)\)", head["space directions"])])
        assert np.allclose(axes.T, image.direction @ np.diag(image.spacing), atol=1e-5)


@pytest.mark.parametrize("ext", EXTENSIONS)
def test_ct_labels_round_trip_with_identical_data_geometry_and_table(tmp_path, ct, ext):
    lm = ct_labels(ct)
    lm.modified = True
    path = str(tmp_path / f"ct{ext}")
    written = save_labels(lm, ct, path)
    assert set(written) == {path, *companion_paths(path)} and lm.modified is False
    assert_same_geometry(path, ct)
    assert np.array_equal(sitk.GetArrayFromImage(sitk.ReadImage(path)), lm.data)
    check_independent_reader(path, ct, lm.data)
    back = load_labels(path, ct)
    assert np.array_equal(back.data, lm.data) and back.name == "ct"
    for value in (1, 7):
        a, b = lm.table.get(value), back.table.get(value)
        assert (a.name, a.colour, a.opacity, a.visible) == (b.name.replace("'", '"'), b.colour, b.opacity, b.visible)
    assert sorted(os.listdir(tmp_path)) == sorted(os.path.basename(p) for p in written)  # no temporary files left


@pytest.mark.parametrize("ext", [".nii.gz", ".nrrd"])
def test_real_hippocampus_labels_round_trip(tmp_path, mri, ext):
    labels_path = shared("hippocampus", "labelsTr", "hippocampus_001.nii.gz")
    lm = load_labels(str(labels_path), mri)
    assert lm.values_present() == [1, 2]
    reference = sitk.GetArrayFromImage(sitk.ReadImage(str(labels_path)))
    assert np.array_equal(lm.data, reference)
    path = str(tmp_path / f"hippo{ext}")
    save_labels(lm, mri, path)
    assert_same_geometry(path, mri)
    check_independent_reader(path, mri, reference)
    assert np.array_equal(load_labels(path, mri).data, reference)


def test_mri_synthetic_labels_keep_the_flipped_geometry(tmp_path, mri):
    lm = LabelMap(mri.shape, data=np.where(mri.data > np.percentile(mri.data, 90), 3, 0).astype(np.uint8))
    path = str(tmp_path / "mri.nii")
    save_labels(lm, mri, path)
    assert mri.orientation_code() != "LPS"  # the demo MRI's axes are flipped: a real geometry check
    check_independent_reader(path, mri, lm.data)
    assert np.array_equal(load_labels(path, mri).data, lm.data)


def test_description_files_follow_itksnap_and_slicer_formats(tmp_path, ct):
    path = str(tmp_path / "ct.nii.gz")
    save_labels(ct_labels(ct), ct, path)
    itksnap, ctbl = companion_paths(path)
    assert itksnap.endswith("ct.label.txt") and ctbl.endswith("ct.ctbl")
    rows = [ln.split() for ln in open(itksnap) if not ln.startswith("#")]
    assert [r[:7] for r in rows] == [["0", "0", "0", "0", "0", "0", "0"], ["1"] + rows[1][1:4] + ["0.5", "1", "1"],
                                     ["7", "10", "20", "30", "0.8", "0", "1"]]
    assert rows[1][7:] == ['"right', 'lung"']
    table = [ln.split() for ln in open(ctbl) if not ln.startswith("#")]
    assert table[0] == ["0", "Background", "0", "0", "0", "0"]
    assert table[2] == ["7", "spine_\"bone\"", "10", "20", "30", "204"]


def test_colour_table_and_seg_nrrd_keys_are_used_without_the_itksnap_file(tmp_path, ct):
    lm = ct_labels(ct)
    for ext in (".nrrd", ".seg.nrrd"):
        path = str(tmp_path / f"a{ext}")
        save_labels(lm, ct, path)
        itksnap, ctbl = companion_paths(path)
        os.unlink(itksnap)
        assert load_labels(path, ct).table.get(1).name == "right lung"  # from the .ctbl
        os.unlink(ctbl)
        table = load_labels(path, ct).table
        if ext == ".seg.nrrd":  # Slicer's Segment{N}_ keys
            assert (table.get(7).name, table.get(7).colour) == ('spine "bone"', (10, 20, 30))
        else:
            assert table.get(7).name == "Label 7"


def test_geometry_mismatch_names_what_differs_and_resampling_fixes_it(tmp_path, ct, mri):
    lm = ct_labels(ct)
    path = str(tmp_path / "ct.nii.gz")
    save_labels(lm, ct, path)
    with pytest.raises(LabelGeometryMismatch) as info:
        load_labels(path, mri)
    assert "size 512 x 512 x 20 vs 35 x 51 x 35" in str(info.value) and str(info.value).startswith(path)
    shifted = ct.copy_geometry(ct.data, origin=tuple(np.add(ct.origin, (0, 0, 2.0))))  # one slice higher
    with pytest.raises(LabelGeometryMismatch) as info:
        load_labels(path, shifted)
    assert [d.split()[0] for d in info.value.differences] == ["origin"]
    moved = resample_labels_to(path, shifted)
    assert np.array_equal(moved.data[:-1], lm.data[1:]) and not moved.data[-1].any()
    assert moved.table.get(1).name == "right lung"
    from_image = resample_labels_to(sitk.ReadImage(path), ct)
    assert np.array_equal(from_image.data, lm.data)


@pytest.mark.parametrize("array, message", [(np.full((4, 5, 6), 1.5, np.float32), "non-integer"),
                                            (np.full((4, 5, 6), 300, np.uint16), "0 to 255"),
                                            (np.full((4, 5, 6), -1, np.int16), "0 to 255")])
def test_values_that_are_not_labels_are_refused(tmp_path, array, message):
    path = str(tmp_path / "bad.nii.gz")
    sitk.WriteImage(sitk.GetImageFromArray(array), path)
    image = Volume(np.zeros((4, 5, 6), np.int16))
    with pytest.raises(ImageReadError, match=message):
        load_labels(path, image)
    with pytest.raises(MedViewerError, match=message):
        resample_labels_to(sitk.GetImageFromArray(array), image)


def test_whole_valued_float_labels_are_accepted(tmp_path):
    path = str(tmp_path / "f.nii.gz")
    sitk.WriteImage(sitk.GetImageFromArray(np.full((2, 3, 4), 2.0, np.float32)), path)
    assert load_labels(path, Volume(np.zeros((2, 3, 4)))).values_present() == [2]


def test_2d_image_labels_round_trip_as_2d(tmp_path):
    image = Volume(np.arange(30, dtype=np.int16).reshape(5, 6), spacing=(0.5, 0.25, 1.0), origin=(3, 4, 0))
    lm = LabelMap(image.shape, data=(image.data % 3 == 0).astype(np.uint8))
    path = str(tmp_path / "xr.nii.gz")
    save_labels(lm, image, path)
    assert sitk.ReadImage(path).GetDimension() == 2
    assert np.array_equal(load_labels(path, image).data, lm.data)


def test_unsupported_extension_and_missing_folder(tmp_path, ct):
    with pytest.raises(ImageWriteError, match="labels are saved as"):
        save_labels(ct_labels(ct), ct, str(tmp_path / "x.png"))
    with pytest.raises(ImageWriteError, match="does not exist"):
        save_labels(ct_labels(ct), ct, str(tmp_path / "missing" / "x.nii"))
    with pytest.raises(ImageReadError, match="no such file"):
        load_labels(str(tmp_path / "none.nii"), ct)


def _assert_failed_cleanly(folder, lm, before, exc_info, reason):
    assert reason in str(exc_info.value) and str(exc_info.value).startswith(str(folder))
    assert "\n" not in str(exc_info.value)
    assert os.listdir(folder) == []  # nothing half-written, no temporary files
    assert lm.modified is True and np.array_equal(lm.data, before)  # the label map is untouched


def test_saving_into_a_read_only_folder_fails_cleanly(tmp_path, ct):
    folder = tmp_path / "ro"
    folder.mkdir()
    lm = ct_labels(ct)
    lm.modified = True
    before = lm.data.copy()
    if os.geteuid() == 0:  # root ignores permissions; an immutable folder still refuses new files
        if shutil.which("chattr") is None or subprocess.run(["chattr", "+i", str(folder)]).returncode != 0:
            pytest.skip("running as root and the folder cannot be made immutable")
        undo = ["chattr", "-i", str(folder)]
    else:
        folder.chmod(0o555)
        undo = None
    try:
        with pytest.raises(ImageWriteError) as info:
            save_labels(lm, ct, str(folder / "labels.nii.gz"))
    finally:
        subprocess.run(undo) if undo else folder.chmod(0o755)
    _assert_failed_cleanly(folder, lm, before, info, "cannot save labels")


def test_disk_full_during_the_renames_leaves_nothing_behind(tmp_path, ct, monkeypatch):
    lm = ct_labels(ct)
    lm.modified = True
    before = lm.data.copy()

    def full(src, dst):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "replace", full)
    with pytest.raises(ImageWriteError) as info:
        save_labels(lm, ct, str(tmp_path / "labels.nrrd"))
    _assert_failed_cleanly(tmp_path, lm, before, info, "the disk is full")
