"""A DICOM SEG or RTSTRUCT beside its image series: discovery links it to the series, no image source,
no problem; one whose series is absent is one problem line; one reader for every label file."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.uid import generate_uid

from medviewer.cli import main
from medviewer.io import discover
from medviewer.io.dicom_header import frames_from_header, read_header
from medviewer.io.dicom_seg import read_seg, write_seg
from medviewer.io.dicom_series import group_frames
from medviewer.io.label_io import LabelGeometryMismatch, load_labels, read_any_labels, resample_labels_to
from medviewer.io.rtstruct import import_rtstruct
from tests.conftest import DEMO
from tests.unit.test_dicom_seg import ct_labels, make_rtstruct, make_uid_copy

CT = DEMO / "ct_chest_20"


@pytest.fixture(scope="module")
def demo_ct():
    """The demo CT as shipped (blank Study/Series UIDs; SOP Instance UIDs only in the file meta)."""
    series = discover(str(CT)).find(None)
    return series, series.load()


@pytest.fixture(scope="module")
def uid_ct(tmp_path_factory):
    """A copy of the demo CT with Study/Series/SOP Instance UIDs, and its folder."""
    folder = make_uid_copy(tmp_path_factory.mktemp("uid_ct"))
    series = discover(str(folder)).find(None)
    return folder, series, series.load()


def ct_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "study"
    shutil.copytree(CT, folder)
    return folder


def only_source(found):
    assert len(found.sources) == 1, [s.id for s in found.sources]
    return found.sources[0]


def test_seg_beside_the_blank_uid_demo_ct_is_linked_not_an_image(tmp_path, demo_ct):
    series, volume = demo_ct
    folder = ct_folder(tmp_path)
    seg = write_seg(ct_labels(volume), volume, series, str(folder / "labels_seg.dcm"))
    found = discover(str(folder))
    source = only_source(found)  # the SEG is no second "series"
    assert found.problems == []
    assert source.modality == "CT" and source.size == (512, 512, 20)
    assert source.linked_labels == [seg]
    back = read_seg(source.linked_labels[0], source)  # what the GUI does with it when the series opens
    assert np.array_equal(back.data, ct_labels(volume).data)


def test_seg_is_linked_by_series_uid_when_its_instance_list_is_gone(tmp_path, uid_ct):
    folder, series, volume = uid_ct
    study = tmp_path / "study"
    shutil.copytree(folder, study)
    ds = pydicom.dcmread(write_seg(ct_labels(volume), volume, series, str(tmp_path / "seg.dcm")))
    del ds.ReferencedSeriesSequence[0].ReferencedInstanceSequence
    for frame in ds.PerFrameFunctionalGroupsSequence:
        del frame.DerivationImageSequence
    ds.save_as(study / "seg.dcm")
    source = only_source(found := discover(str(study)))
    assert found.problems == [] and source.linked_labels == [str(study / "seg.dcm")]


def test_seg_goes_to_its_own_series_when_the_folder_holds_two(tmp_path, demo_ct, uid_ct):
    folder, uid_series, uid_volume = uid_ct
    study = tmp_path / "study"
    shutil.copytree(CT, study / "blank")
    shutil.copytree(folder, study / "uid")
    seg = write_seg(ct_labels(uid_volume), uid_volume, uid_series, str(study / "seg.dcm"))
    found = discover(str(study))
    assert len(found.sources) == 2 and found.problems == []
    linked = {s.id: s.linked_labels for s in found.sources}
    assert linked == {uid_series.id: [seg], demo_ct[0].id: []}


def test_rtstruct_beside_its_series_is_linked(tmp_path, demo_ct):
    series, volume = demo_ct
    folder = ct_folder(tmp_path)
    rs = make_rtstruct(folder / "rs.dcm", series, volume)  # names only the frame of reference
    found = discover(str(folder))
    source = only_source(found)
    assert found.problems == [] and source.linked_labels == [str(rs)]
    labels = import_rtstruct(source.linked_labels[0], source, source.load())
    assert np.count_nonzero(labels.data == 1) == 21 * 21  # the square ROI, filled on its slice


def _reference_series(path: Path, series_uid: str, instance_uids: list[str]) -> None:
    """Give an RTSTRUCT the full RTReferencedStudy > RTReferencedSeries > ContourImage references."""
    ds = pydicom.dcmread(path)
    images = []
    for uid in instance_uids:
        item = Dataset()
        item.ReferencedSOPClassUID, item.ReferencedSOPInstanceUID = "1.2.840.10008.5.1.4.1.1.2", uid
        images.append(item)
    rt_series = Dataset()
    rt_series.SeriesInstanceUID = series_uid
    rt_series.ContourImageSequence = Sequence(images)
    study = Dataset()
    study.ReferencedSOPClassUID, study.ReferencedSOPInstanceUID = "1.2.840.10008.3.1.2.3.1", generate_uid()
    study.RTReferencedSeriesSequence = Sequence([rt_series])
    ds.ReferencedFrameOfReferenceSequence[0].RTReferencedStudySequence = Sequence([study])
    ds.save_as(path)


def test_rtstruct_naming_its_series_is_linked_to_it_and_not_to_a_sibling(tmp_path, demo_ct, uid_ct):
    folder, uid_series, uid_volume = uid_ct
    study = tmp_path / "study"
    shutil.copytree(CT, study / "blank")  # the same frame of reference, another series
    shutil.copytree(folder, study / "uid")
    rs = make_rtstruct(study / "rs.dcm", uid_series, uid_volume)
    _reference_series(rs, uid_series.header.SeriesInstanceUID, [])
    found = discover(str(study))
    assert found.problems == []
    assert {s.id: s.linked_labels for s in found.sources} == {uid_series.id: [str(rs)], demo_ct[0].id: []}


def test_seg_of_a_series_not_in_the_folder_is_one_problem_line_and_the_ct_still_loads(tmp_path, uid_ct):
    folder, series, volume = uid_ct
    ds = pydicom.dcmread(write_seg(ct_labels(volume), volume, series, str(tmp_path / "seg.dcm")))
    other = generate_uid()
    ds.ReferencedSeriesSequence[0].SeriesInstanceUID = other
    for item in ds.ReferencedSeriesSequence[0].ReferencedInstanceSequence:
        item.ReferencedSOPInstanceUID = generate_uid()
    for frame in ds.PerFrameFunctionalGroupsSequence:
        frame.DerivationImageSequence[0].SourceImageSequence[0].ReferencedSOPInstanceUID = generate_uid()
    study = ct_folder(tmp_path)
    ds.save_as(study / "other_seg.dcm")
    found = discover(str(study))
    source = only_source(found)
    assert source.modality == "CT" and source.linked_labels == [] and source.load().shape == (20, 512, 512)
    assert [str(p) for p in found.problems] == [
        f"{study / 'other_seg.dcm'}: a DICOM SEG for series {other}, which is not in this folder: "
        "open it with Labels > Open labels… after its image"]


def test_rtstruct_of_another_frame_of_reference_is_one_problem_line(tmp_path, demo_ct):
    series, volume = demo_ct
    study = ct_folder(tmp_path)
    frame = generate_uid()
    make_rtstruct(study / "rs.dcm", series, volume, frame_uid=frame)
    found = discover(str(study))
    assert only_source(found).linked_labels == []
    assert [p.reason for p in found.problems] == [
        f"an RT Structure Set for frame of reference {frame}, which is not in this folder: "
        "open it with Labels > Open labels… after its image"]


def test_a_seg_named_alone_says_it_is_labels_not_an_image(tmp_path, demo_ct):
    series, volume = demo_ct
    seg = write_seg(ct_labels(volume), volume, series, str(tmp_path / "seg.dcm"))
    found = discover(seg)
    assert found.sources == []
    message = found.nothing_found()
    assert message.startswith(f"{seg}: a DICOM SEG (labels for series ") and "not an image" in message


def test_enhanced_frames_with_a_non_spatial_dimension_split_instead_of_crashing(tmp_path, demo_ct):
    """pydicom gives multi-valued Dimension Index Values as a plain list: a SEG's (segment, position)
    frames that share positions are split by segment (this raised TypeError: unhashable list)."""
    series, volume = demo_ct
    seg = write_seg(ct_labels(volume), volume, series, str(tmp_path / "seg.dcm"))
    ds, offset = read_header(seg)
    volumes = group_frames(frames_from_header(seg, ds, offset))
    assert sorted(v.size[2] for v in volumes) == [3, 7]  # tumour on 3 slices, liver on 7


# --- one reader ------------------------------------------------------------------------------
def test_read_any_labels_gives_what_the_specific_readers_give(tmp_path, demo_ct):
    series, volume = demo_ct
    seg = write_seg(ct_labels(volume), volume, series, str(tmp_path / "seg.dcm"))
    rs = str(make_rtstruct(tmp_path / "rs.dcm", series, volume))
    nifti = str(tmp_path / "labels.nii.gz")
    image = sitk.GetImageFromArray(ct_labels(volume).data)
    image.SetSpacing(volume.spacing)
    image.SetOrigin(volume.origin)
    image.SetDirection(tuple(volume.direction.ravel()))
    sitk.WriteImage(image, nifti)
    for path, expected in ((seg, read_seg(seg, series)), (rs, import_rtstruct(rs, series, volume)),
                           (nifti, load_labels(nifti, volume))):
        got = read_any_labels(path, series, volume)
        assert np.array_equal(got.data, expected.data) and got.name == expected.name
        assert [(lab.value, lab.name, lab.colour) for lab in got.table] == \
            [(lab.value, lab.name, lab.colour) for lab in expected.table]
    assert np.array_equal(read_any_labels(seg, None, volume).data, ct_labels(volume).data)  # no series: the volume

    shifted = str(tmp_path / "shifted.nii.gz")
    image.SetOrigin(tuple(np.add(volume.origin, (0.0, 0.0, 2.0))))  # one slice up
    sitk.WriteImage(image, shifted)
    with pytest.raises(LabelGeometryMismatch, match="origin"):
        read_any_labels(shifted, series, volume)
    resampled = read_any_labels(shifted, series, volume, resample=True)
    assert np.array_equal(resampled.data, resample_labels_to(shifted, volume).data)
    assert np.array_equal(resampled.data[1:], ct_labels(volume).data[:-1])


# --- medviewer info ----------------------------------------------------------------------------
def test_info_lists_the_linked_label_files_under_their_series(tmp_path, demo_ct, capsys):
    series, volume = demo_ct
    folder = ct_folder(tmp_path)
    seg = write_seg(ct_labels(volume), volume, series, str(folder / "seg.dcm"))
    rs = str(make_rtstruct(folder / "rs.dcm", series, volume))
    proc = subprocess.run([sys.executable, "-m", "medviewer", "info", str(folder), "--json"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    infos = json.loads(proc.stdout)
    assert len(infos) == 1 and infos[0]["modality"] == "CT" and infos[0]["linked_labels"] == [rs, seg]
    assert main(["info", str(folder)]) == 0
    out = capsys.readouterr()
    assert f"    labels: {rs}\n    labels: {seg}\n" in out.out and out.err == ""
