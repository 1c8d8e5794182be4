"""DICOM SEG out and back, and RTSTRUCT import, on DICOM copies of the demo CT and MRI."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, MRImageStorage, generate_uid

from medviewer.core.errors import ImageReadError, ImageWriteError
from medviewer.core.labels import LabelMap
from medviewer.io import discover, open_volume
from medviewer.io.dicom_seg import blank_uid_warning, SegReferenceMismatch, property_codes, read_seg, write_seg
from medviewer.io.rtstruct import RTSTRUCT_STORAGE, RTStructReferenceMismatch, import_rtstruct, polygon_mask
from tests.conftest import DEMO, SHARED_DATA


def make_uid_copy(dst: Path) -> Path:
    """The demo CT with the UIDs its anonymisation blanked: a CT that DICOM SEG can reference."""
    dst.mkdir(parents=True, exist_ok=True)
    study, series = generate_uid(), generate_uid()
    for src in sorted((DEMO / "ct_chest_20").iterdir()):
        ds = pydicom.dcmread(src)
        ds.SOPClassUID = CTImageStorage
        ds.SOPInstanceUID = generate_uid()
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.StudyInstanceUID, ds.SeriesInstanceUID = study, series
        ds.PatientID, ds.StudyID, ds.SeriesNumber = "DEMO", "1", 3
        ds.save_as(dst / (src.name + ".dcm"))
    return dst


def mri_as_dicom(dst: Path) -> Path:
    """The demo MRI (flipped x and y axes) written as an MR series with the same geometry."""
    volume = open_volume(str(DEMO / "mri_hippocampus" / "hippocampus_001.nii.gz"))
    dst.mkdir(parents=True, exist_ok=True)
    study, series, frame = generate_uid(), generate_uid(), generate_uid()
    for k, plane in enumerate(volume.data):
        ds = Dataset()
        ds.file_meta = FileMetaDataset()
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.SOPClassUID, ds.SOPInstanceUID = MRImageStorage, generate_uid()
        ds.file_meta.MediaStorageSOPClassUID, ds.file_meta.MediaStorageSOPInstanceUID = MRImageStorage, ds.SOPInstanceUID
        ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID = study, series, frame
        ds.Modality, ds.PatientName, ds.PatientID, ds.InstanceNumber, ds.SeriesNumber = "MR", "Demo^Hippo", "H1", k + 1, 1
        ds.ImagePositionPatient = [float(v) for v in volume.index_to_world((0, 0, k))]
        ds.ImageOrientationPatient = [float(v) for v in volume.direction[:, 0]] + [float(v) for v in volume.direction[:, 1]]
        ds.PixelSpacing = [volume.spacing[1], volume.spacing[0]]
        ds.SliceThickness = volume.spacing[2]
        ds.Rows, ds.Columns = plane.shape
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
        ds.PixelData = plane.astype("<i2").tobytes()
        ds.save_as(dst / f"mr{k:03d}.dcm", enforce_file_format=True)
    return dst


@pytest.fixture(scope="module")
def uid_ct(tmp_path_factory):
    folder = make_uid_copy(tmp_path_factory.mktemp("uid_ct"))
    series = discover(str(folder)).find(None)
    return series, series.load()


def ct_labels(volume) -> LabelMap:
    lm = LabelMap(volume.shape, name="chest")
    lm.table.add("Liver", 2, (200, 120, 40))
    lm.table.add("tumour", 5, (255, 255, 0))
    lm.table.add("unused", 9)
    lm.data[2:9, 200:320, 100:260] = 2
    lm.data[5:7, 250:270, 150:190] = 5
    lm.data[19, 0, 511] = 5  # a corner voxel of the last slice
    return lm


def test_seg_round_trip_keeps_values_names_and_colours(tmp_path, uid_ct):
    series, volume = uid_ct
    lm = ct_labels(volume)
    path = write_seg(lm, volume, series, str(tmp_path / "seg.dcm"))
    ds = pydicom.dcmread(path)
    assert ds.Modality == "SEG" and ds.SegmentationType == "BINARY" and ds.StudyInstanceUID == series.header.StudyInstanceUID
    assert [s.SegmentLabel for s in ds.SegmentSequence] == ["Liver", "tumour"]  # present labels only
    assert ds.SegmentSequence[0].SegmentedPropertyTypeCodeSequence[0].CodeMeaning == "Liver"
    assert all(s.SegmentAlgorithmType == "MANUAL" for s in ds.SegmentSequence)
    refs = {r.ReferencedSOPInstanceUID for r in ds.ReferencedSeriesSequence[0].ReferencedInstanceSequence}
    assert refs == {f.header.SOPInstanceUID for f in series.frames}
    assert int(ds.NumberOfFrames) == 7 + 3  # liver on 7 slices, tumour on 3: empty frames are left out
    for reference in (series, volume):
        back = read_seg(path, reference)
        assert np.array_equal(back.data, lm.data)
        assert [(lab.value, lab.name) for lab in back.table] == [(2, "Liver"), (5, "tumour")]
        for value in (2, 5):
            assert np.abs(np.subtract(back.table.get(value).colour, lm.table.get(value).colour)).max() <= 1


def test_seg_passes_dciodvfy(tmp_path, uid_ct):
    if shutil.which("dciodvfy") is None:
        pytest.skip("dciodvfy (Debian package dicom3tools) is not on PATH")
    series, volume = uid_ct
    path = write_seg(ct_labels(volume), volume, series, str(tmp_path / "seg.dcm"))
    proc = subprocess.run(["dciodvfy", path], capture_output=True, text=True, timeout=60)
    report = proc.stdout + proc.stderr
    print(report)
    assert "Segmentation" in report
    assert not [ln for ln in report.splitlines() if ln.startswith("Error")], report


def test_real_hippocampus_labels_through_seg_on_a_flipped_mr_series(tmp_path):
    labels_path = SHARED_DATA / "hippocampus" / "labelsTr" / "hippocampus_001.nii.gz"
    if not labels_path.exists():
        pytest.skip(f"shared data not available: {labels_path}")
    from medviewer.io.label_io import load_labels

    series = discover(str(mri_as_dicom(tmp_path / "mr"))).find(None)
    volume = series.load()
    assert volume.orientation_code() == "RAS"
    labels = load_labels(str(labels_path), volume)  # the NIfTI labels fit the DICOM grid exactly
    path = write_seg(labels, volume, series, str(tmp_path / "hippo_seg.dcm"))
    back = read_seg(path, series)
    assert np.array_equal(back.data, sitk.GetArrayFromImage(sitk.ReadImage(str(labels_path))))


def test_blank_uid_demo_ct_gets_a_seg_that_references_its_instances(tmp_path):
    """The demo CT has SOP Instance UIDs (file meta) but blank Study/Series UIDs: the SEG
    references the real instances, carries derived study/series UIDs, validates and reads back."""
    demo = discover(str(DEMO / "ct_chest_20")).find(None)
    volume = demo.load()
    labels = ct_labels(volume)
    path = write_seg(labels, volume, demo, str(tmp_path / "seg.dcm"))
    seg = pydicom.dcmread(path)
    referenced = {item.ReferencedSOPInstanceUID for s in seg.ReferencedSeriesSequence
                  for item in s.ReferencedInstanceSequence}
    assert referenced == {str(f.header.file_meta.MediaStorageSOPInstanceUID) for f in demo.frames}
    again = write_seg(labels, volume, demo, str(tmp_path / "again.dcm"))
    assert pydicom.dcmread(again).StudyInstanceUID == seg.StudyInstanceUID  # derived, and stable
    assert blank_uid_warning(demo) is not None
    assert demo.frames[0].header.SOPInstanceUID == ""  # the loaded headers are not changed
    back = read_seg(path, demo)
    assert np.array_equal(back.data, labels.data)
    if shutil.which("dciodvfy"):
        proc = subprocess.run(["dciodvfy", path], capture_output=True, text=True, timeout=60)
        errors = [ln for ln in (proc.stdout + proc.stderr).splitlines() if ln.startswith("Error")]
        assert not errors, errors


def test_empty_label_map_is_refused(tmp_path, uid_ct):
    series, volume = uid_ct
    with pytest.raises(ImageWriteError, match="empty"):
        write_seg(LabelMap(volume.shape), volume, series, str(tmp_path / "seg.dcm"))


def test_seg_of_another_frame_of_reference_series_or_grid_is_refused(tmp_path, uid_ct):
    series, volume = uid_ct
    path = write_seg(ct_labels(volume), volume, series, str(tmp_path / "seg.dcm"))
    ds = pydicom.dcmread(path)
    ds.FrameOfReferenceUID = generate_uid()
    ds.save_as(tmp_path / "other_for.dcm")
    with pytest.raises(SegReferenceMismatch, match="frame of reference"):
        read_seg(str(tmp_path / "other_for.dcm"), series)
    ds = pydicom.dcmread(path)
    ds.ReferencedSeriesSequence[0].SeriesInstanceUID = generate_uid()
    ds.save_as(tmp_path / "other_series.dcm")
    with pytest.raises(SegReferenceMismatch, match="not the open series"):
        read_seg(str(tmp_path / "other_series.dcm"), series)
    shifted = volume.copy_geometry(volume.data, origin=tuple(np.add(volume.origin, (0.0, 0.0, 1.0))))
    with pytest.raises(SegReferenceMismatch, match="off the image grid"):
        read_seg(path, shifted)
    with pytest.raises(ImageReadError, match="not a DICOM SEG"):
        read_seg(series.frames[0].path, series)


def test_property_codes_mapping():
    assert property_codes("left kidney")[1].meaning == "Kidney"
    assert property_codes("Tumour core")[0].meaning == "Morphologically Abnormal Structure"
    assert property_codes("muscles")[1].meaning == "Muscle"
    assert [c.meaning for c in property_codes("Label 3")] == ["Tissue", "Tissue"]


# --- RTSTRUCT ------------------------------------------------------------------------------
def _contour(volume, k, ij: np.ndarray) -> Dataset:
    item = Dataset()
    item.ContourGeometricType = "CLOSED_PLANAR"
    points = volume.index_to_world(np.column_stack([ij, np.full(len(ij), k)]))
    item.NumberOfContourPoints = len(points)
    item.ContourData = [round(float(v), 4) for v in points.ravel()]
    return item


def make_rtstruct(path: Path, series, volume, frame_uid: str | None = None) -> Path:
    square = np.array([[99.5, 149.5], [120.5, 149.5], [120.5, 170.5], [99.5, 170.5]])
    t = np.linspace(0, 2 * np.pi, 200, endpoint=False)
    circle = lambda r: np.column_stack([300 + r * np.cos(t), 260 + r * np.sin(t)])  # noqa: E731
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID, ds.SOPInstanceUID, ds.Modality = RTSTRUCT_STORAGE, generate_uid(), "RTSTRUCT"
    ds.file_meta.MediaStorageSOPClassUID, ds.file_meta.MediaStorageSOPInstanceUID = RTSTRUCT_STORAGE, ds.SOPInstanceUID
    ds.StructureSetLabel = "test"
    frame = frame_uid or series.header.FrameOfReferenceUID
    ref = Dataset()
    ref.FrameOfReferenceUID = frame
    ds.ReferencedFrameOfReferenceSequence = Sequence([ref])
    rois, contours = [], []
    for number, name, colour, shapes in ((4, "square", [255, 0, 0], [(5, square)]),
                                         (8, "ring", [0, 128, 255], [(10, circle(30)), (10, circle(15))]),
                                         (9, "empty", [1, 2, 3], [])):
        roi = Dataset()
        roi.ROINumber, roi.ROIName, roi.ReferencedFrameOfReferenceUID = number, name, frame
        rois.append(roi)
        item = Dataset()
        item.ReferencedROINumber, item.ROIDisplayColor = number, colour
        item.ContourSequence = Sequence([_contour(volume, k, ij) for k, ij in shapes])
        contours.append(item)
    ds.StructureSetROISequence, ds.ROIContourSequence = Sequence(rois), Sequence(contours)
    ds.save_as(path, enforce_file_format=True)
    return path


def test_rtstruct_contours_are_filled_on_their_slices(tmp_path, uid_ct):
    series, volume = uid_ct
    lm = import_rtstruct(str(make_rtstruct(tmp_path / "rs.dcm", series, volume)), series, volume)
    assert [(lab.value, lab.name, lab.colour) for lab in lm.table] == [
        (1, "square", (255, 0, 0)), (2, "ring", (0, 128, 255)), (3, "empty", (1, 2, 3))]
    expected = np.zeros(volume.shape, np.uint8)
    expected[5, 150:171, 100:121] = 1
    assert np.array_equal(lm.data == 1, expected == 1)  # exactly the 21 x 21 pixels inside the square
    ring = lm.data[10] == 2
    assert np.count_nonzero(lm.data == 2) == np.count_nonzero(ring)
    jj, ii = np.mgrid[0:512, 0:512]
    r = np.hypot(ii - 300, jj - 260)
    assert ring[(r > 15.5) & (r < 29.5)].all() and not ring[(r < 14.5) | (r > 30.5)].any()  # a hole in the middle


def test_rtstruct_of_another_frame_of_reference_is_refused(tmp_path, uid_ct):
    series, volume = uid_ct
    path = make_rtstruct(tmp_path / "rs.dcm", series, volume, frame_uid=generate_uid())
    with pytest.raises(RTStructReferenceMismatch, match="frame of reference"):
        import_rtstruct(str(path), series, volume)


def test_polygon_mask_matches_even_odd_ray_casting_on_a_self_crossing_star():
    t = np.linspace(0, 4 * np.pi, 5, endpoint=False)  # pentagram: its centre is outside by even-odd
    x, y = 20 + 15 * np.sin(t), 18 + 15 * np.cos(t)
    mask = polygon_mask(x, y, (40, 41))
    jj, ii = np.mgrid[0:40, 0:41]
    inside = np.zeros(mask.shape, bool)
    for k in range(len(x)):
        x0, y0, x1, y1 = x[k], y[k], x[(k + 1) % len(x)], y[(k + 1) % len(x)]
        crosses = (y0 <= jj) != (y1 <= jj)
        with np.errstate(divide="ignore", invalid="ignore"):
            xc = x0 + (jj - y0) * (x1 - x0) / (y1 - y0)
        inside ^= crosses & (ii < xc)
    assert np.array_equal(mask, inside) and not mask[18, 20] and mask.sum() > 100


@pytest.mark.parametrize("kind", ["LABELMAP", "FRACTIONAL"])
def test_label_map_and_fractional_segs_from_other_tools_are_read(tmp_path, uid_ct, kind):
    import highdicom as hd
    from pydicom.sr.codedict import codes

    series, volume = uid_ct
    truth = np.zeros(volume.shape, np.uint8)
    truth[3:8, 100:200, 150:300] = 1
    truth[4, 0:5, 0:5] = 2
    segments = [hd.seg.SegmentDescription(n, f"s{n}", codes.SCT.Tissue, codes.SCT.Tissue, "MANUAL") for n in (1, 2)]
    if kind == "LABELMAP":
        pixels = truth
    else:
        pixels, segments = ((truth == 1) * 0.6 + (truth == 2) * 0.3).astype(np.float32), segments[:1]  # 0.3 < 1/2
    seg = hd.seg.Segmentation([f.header for f in series.frames], pixels, kind, segments, generate_uid(), 7,
                              generate_uid(), 1, "Other", "Tool", "1", "1")
    seg.save_as(tmp_path / "other.dcm")
    back = read_seg(str(tmp_path / "other.dcm"), series)
    assert np.array_equal(back.data, truth if kind == "LABELMAP" else (truth == 1).astype(np.uint8))
    assert back.table.get(1).name == "s1"
