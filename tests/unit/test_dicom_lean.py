"""The lean header reader (medviewer.io.dicom_lean) gives the same records as pydicom.

It reads only what grouping needs, so it must be indistinguishable from a full pydicom read for
everything built from the header, and decline whatever it does not handle.
"""
from __future__ import annotations

import gzip
import os
import shutil
import warnings

import numpy as np
import pydicom
import pytest
from pydicom.uid import MRImageStorage

from medviewer.io.dicom_header import frames_from_header, read_header
from medviewer.io.dicom_lean import LeanDataset, read_lean
from medviewer.io.discover import discover
from tests.support.synthetic_dicom import new_dataset

PYDICOM_FILES = os.path.join(os.path.dirname(pydicom.__file__), "data", "test_files")
CHARSET_FILES = os.path.join(os.path.dirname(pydicom.__file__), "data", "charset_files")


def _records_equal(a, b) -> list[str]:
    diffs = []
    for name in a.__dataclass_fields__:
        if name == "header":
            continue
        x, y = getattr(a, name), getattr(b, name)
        same = np.array_equal(x, y) if isinstance(x, np.ndarray) or isinstance(y, np.ndarray) else x == y
        if not same:
            diffs.append(f"{name}: {x!r} != {y!r}")
    return diffs


def _bundled_files() -> list[str]:
    out = []
    for folder in (PYDICOM_FILES, CHARSET_FILES):
        for root, _dirs, names in os.walk(folder):
            out += [os.path.join(root, n) for n in sorted(names) if os.path.getsize(os.path.join(root, n)) < 5e6]
    return out


def test_lean_records_equal_pydicom_records_on_pydicom_test_files():
    used = 0
    for path in _bundled_files():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                full, offset = read_header(path)
            except Exception:  # noqa: BLE001 - not a DICOM file: nothing to compare
                continue
            lean = read_lean(path)
            if lean is None:
                continue
            used += 1
            ds, lean_offset = lean
            assert lean_offset == offset, path
            try:
                expected = frames_from_header(path, full, offset)
            except Exception as exc:  # noqa: BLE001 - then the lean records must fail alike
                with pytest.raises(type(exc)):
                    frames_from_header(path, ds, lean_offset)
                continue
            got = frames_from_header(path, ds, lean_offset)
            assert len(got) == len(expected), path
            for a, b in zip(expected, got):
                assert not _records_equal(a, b), (path, _records_equal(a, b))
    assert used > 30  # the lean reader is used for the plain files among them


def _write(path, **changes):
    ds = new_dataset(MRImageStorage, "MR")
    ds.PatientBirthDate = "19700101"
    ds.Rows = ds.Columns = 4
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
    ds.ImagePositionPatient, ds.ImageOrientationPatient = [0, 0, 0], [1, 0, 0, 0, 1, 0]
    ds.PixelSpacing = [1, 1]
    for keyword, value in changes.items():
        setattr(ds, keyword, value)
    ds.PixelData = np.arange(16, dtype=np.uint16).tobytes()
    ds.save_as(path, enforce_file_format=True)
    return str(path)


def test_the_full_header_is_read_when_needed(tmp_path):
    path = _write(tmp_path / "a.dcm")
    ds, _ = read_header(path, lean=True)
    assert isinstance(ds, LeanDataset) and "PatientBirthDate" not in ds  # not wanted for grouping
    record = frames_from_header(path, ds, _)[0]
    assert record.full_header().PatientBirthDate == "19700101"
    source = discover(path).sources[0]
    assert source.header.PatientBirthDate == "19700101"  # the tag browser and SEG export see everything


@pytest.mark.parametrize("case", ["gzip", "implicit", "charset", "no preamble"])
def test_unusual_files_are_left_to_pydicom(tmp_path, case):
    path = _write(tmp_path / "a.dcm", **({"SpecificCharacterSet": "ISO_IR 192"} if case == "charset" else {}))
    if case == "gzip":
        with open(path, "rb") as src, gzip.open(tmp_path / "a.dcm.gz", "wb") as dst:
            shutil.copyfileobj(src, dst)
        path = str(tmp_path / "a.dcm.gz")
    elif case == "implicit":
        ds = pydicom.dcmread(path)
        ds.file_meta.TransferSyntaxUID = pydicom.uid.ImplicitVRLittleEndian
        ds.save_as(path, enforce_file_format=True)
    elif case == "no preamble":
        with open(path, "rb") as fp:
            data = fp.read()
        with open(path, "wb") as fp:
            fp.write(data[132:])
    assert read_lean(path) is None
    assert discover(path).sources[0].load().data.max() == 15  # and pydicom reads it as before


def test_truncated_header_is_declined_not_misread(tmp_path):
    path = _write(tmp_path / "a.dcm")
    with open(path, "rb") as fp:
        data = fp.read()
    for cut in (140, 200, 300, len(data) - 40):
        with open(tmp_path / "cut.dcm", "wb") as fp:
            fp.write(data[:cut])
        found = read_lean(str(tmp_path / "cut.dcm"))
        assert found is None or found[1] + 12 <= cut


def test_uih_grid_mosaic_is_unpacked_with_the_per_slice_positions(tmp_path):
    from pydicom.dataset import Dataset
    from pydicom.sequence import Sequence

    tiles = np.arange(4, dtype=np.uint16).reshape(2, 2).repeat(3, 0).repeat(3, 1)  # 2x2 tiles of 3x3
    items = []
    for k in range(4):
        item = Dataset()
        item.ImagePositionPatient = [10.0, 20.0, 5.0 * k]
        items.append(item)
    ds = new_dataset(MRImageStorage, "MR")
    ds.Manufacturer, ds.ImageType = "UIH", ["ORIGINAL", "PRIMARY", "M", "VFRAME"]
    ds.Rows = ds.Columns = 6
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
    ds.ImagePositionPatient, ds.ImageOrientationPatient = [0, 0, 0], [1, 0, 0, 0, 1, 0]
    ds.PixelSpacing = [2, 2]
    ds.add_new((0x0065, 0x0010), "LO", "Image Private Header")
    ds.add_new((0x0065, 0x1050), "DS", 4)
    ds.add_new((0x0065, 0x1051), "SQ", Sequence(items))
    ds.PixelData = tiles.tobytes()
    path = str(tmp_path / "uih.dcm")
    ds.save_as(path, enforce_file_format=True)
    volume = discover(path).sources[0].load()
    assert volume.shape == (4, 3, 3)
    assert [int(volume.data[k, 0, 0]) for k in range(4)] == [0, 1, 2, 3]
    assert np.allclose(volume.origin, (10, 20, 0)) and np.isclose(volume.spacing[2], 5.0)
