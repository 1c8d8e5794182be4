"""No silent zeros, no hostile sizes, no raw bytes in messages.

A file shorter than its header says is an error (NIfTI, NRRD, MetaImage incl. .mhd/.raw pairs
and gzip, PNG, JPEG, DICOM pixel data), never a clean conversion with zero-filled voxels; a header
that claims gigabytes in a small file is refused before anything is allocated or written; what a
file holds (escape sequences, patient names) never reaches a message.
"""
from __future__ import annotations

import gzip
import io
import os
import struct
from pathlib import Path

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk

from medviewer.cli import main
from medviewer.core.errors import MedViewerError
from medviewer.io import discover
from medviewer.io.messages import clean_text, library_reason
from tests.fuzz_cases import dicom_field

CT_SMALL = Path(pydicom.data.get_testdata_file("CT_small.dcm"))
FINDINGS = Path(__file__).parents[1] / "data" / "fuzz_findings"


def _image(path: Path, compress: bool = False, shape=(8, 30, 40)) -> Path:
    data = (np.arange(np.prod(shape)) % 251 + 1).astype(np.int16).reshape(shape)  # no zero voxel
    image = sitk.GetImageFromArray(data)
    image.SetSpacing((0.5, 0.6, 2.0))
    sitk.WriteImage(image, str(path), useCompression=compress)
    return path


def _convert(capsys, src: Path, tmp_path: Path) -> tuple[int, str]:
    out = tmp_path / "out.nii.gz"
    capsys.readouterr()
    rc = main(["convert", str(src), str(out)])
    err = capsys.readouterr().err
    assert rc == 1 or out.exists()
    return rc, err


def _cut(path: Path, keep: float) -> Path:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    return path


def _assert_one_clean_error(rc: int, err: str, path: Path, *words: str) -> None:
    lines = err.strip().splitlines()
    assert rc == 1 and len(lines) == 1 and lines[0].startswith("medviewer: error: "), err
    assert path.name in lines[0] and all(w in lines[0] for w in words), lines[0]
    assert clean_text(lines[0]) == lines[0]


@pytest.mark.parametrize("name", ["v.nii", "v.nii.gz", "v.nrrd", "v.mha", "v.mhd", "vz.nrrd", "vz.mha"])
@pytest.mark.parametrize("keep", [0.5, 0.9, 0.995])
def test_truncated_volumes_never_convert(name, keep, tmp_path, capsys):
    path = _image(tmp_path / name.replace("vz", "v"), compress=name.startswith("vz") or name.endswith(".gz"))
    victim = path.with_suffix(".raw") if name.endswith(".mhd") else path
    _cut(victim, keep)
    rc, err = _convert(capsys, path, tmp_path)
    _assert_one_clean_error(rc, err, path)
    assert not (tmp_path / "out.nii.gz").exists()


def test_truncated_analyze_pair_is_an_error(tmp_path, capsys):
    path = _image(tmp_path / "v.hdr")
    _cut(tmp_path / "v.img", 0.7)
    rc, err = _convert(capsys, path, tmp_path)
    _assert_one_clean_error(rc, err, path, "truncated")


@pytest.mark.parametrize("gz", [False, True])
def test_a_small_file_claiming_gigabytes_is_refused_before_anything_is_allocated(gz, tmp_path, capsys, monkeypatch):
    """A 62 kB NIfTI whose header claims 1.5 GB (ITK would allocate it and `convert` write it)."""
    monkeypatch.setenv("MEDVIEWER_MEMORY_LIMIT", "200M")  # should this regress: refused, not allocated
    raw = bytearray(gzip.decompress(_image(tmp_path / "s.nii.gz", True, (40, 40, 40)).read_bytes()))
    raw[40:48] = struct.pack("<4h", 3, 1024, 1024, 768)  # 1024 x 1024 x 768 int16 = 1.5 GB
    path = tmp_path / ("big.nii.gz" if gz else "big.nii")
    path.write_bytes(gzip.compress(bytes(raw)) if gz else bytes(raw))
    assert path.stat().st_size < 200_000
    rc, err = _convert(capsys, path, tmp_path)
    _assert_one_clean_error(rc, err, path, "truncated")


@pytest.mark.parametrize("keep", [0.3, 0.8, 0.99])
def test_truncated_png_and_jpeg_are_errors(keep, tmp_path, capsys):
    grey = sitk.GetImageFromArray((np.arange(64 * 80) % 200).astype(np.uint8).reshape(64, 80))
    for name in ("x.png", "x.jpg"):
        path = tmp_path / name
        sitk.WriteImage(grey, str(path))
        _cut(path, keep)
        rc, err = _convert(capsys, path, tmp_path)
        _assert_one_clean_error(rc, err, path, "truncated")


def test_png_without_its_end_chunk_is_an_error(tmp_path, capsys):
    path = tmp_path / "x.png"
    sitk.WriteImage(sitk.GetImageFromArray(np.full((20, 30), 7, np.uint8)), str(path))
    data = path.read_bytes()
    assert data.endswith(b"IEND\xaeB`\x82")
    path.write_bytes(data[:-12])  # every pixel is there; the file still ends early
    rc, err = _convert(capsys, path, tmp_path)
    _assert_one_clean_error(rc, err, path, "IEND")


def _dicom(tmp_path: Path, name="ct.dcm", implicit=False, **values) -> Path:
    ds = pydicom.dcmread(CT_SMALL)
    for keyword, value in values.items():
        setattr(ds, keyword, value)
    path = tmp_path / name
    if implicit:
        ds.file_meta.TransferSyntaxUID = pydicom.uid.ImplicitVRLittleEndian
    ds.save_as(path, enforce_file_format=True)
    return path


@pytest.mark.parametrize("implicit", [False, True])
def test_dicom_pixel_data_shorter_than_rows_columns_bytes_is_an_error(implicit, tmp_path, capsys):
    path = _cut(_dicom(tmp_path, implicit=implicit), 0.9)
    found = discover(str(path))
    assert len(found.sources) == 1  # listed (so a series is not silently short of a slice) ...
    assert any("truncated" in w for w in found.sources[0].warnings)
    with pytest.raises(MedViewerError, match="pixel data is truncated"):
        found.sources[0].load()  # ... and loading it is an error
    rc, err = _convert(capsys, path, tmp_path)
    _assert_one_clean_error(rc, err, path, "pixel data is truncated")


def test_huge_number_of_frames_on_a_classic_image_is_bounded_by_the_pixel_data(tmp_path, capsys):
    path = _dicom(tmp_path, NumberOfFrames="999999999")
    source = discover(str(path)).sources[0]
    assert len(source.frames) <= 2  # records for what the data can hold, not a billion of them
    rc, err = _convert(capsys, path, tmp_path)
    _assert_one_clean_error(rc, err, path, "pixel data is truncated")


@pytest.mark.parametrize("values", [
    {"SliceThickness": "-2.5"}, {"SliceThickness": ""}, {"SliceThickness": "1e308"},
    {"WindowCenter": "2\\x"}, {"RescaleSlope": ""}, {"InstanceNumber": "abc"},
    {"ImagePositionPatient": ["-1e9", "0", "0"]},
], ids=lambda v: "-".join(f"{k}={v[k]}" for k in v))
def test_odd_numeric_values_convert_with_a_valid_geometry(values, tmp_path, capsys):
    data = CT_SMALL.read_bytes()
    for keyword, value in values.items():  # written as raw bytes: pydicom would refuse some
        data = dicom_field(data, keyword, value if isinstance(value, str) else "\\".join(value))
    path = tmp_path / "odd.dcm"
    path.write_bytes(data)
    out = tmp_path / "out.nii.gz"
    assert main(["convert", str(path), str(out)]) == 0, capsys.readouterr().err
    image = sitk.ReadImage(str(out))
    assert all(0 < s < 1e5 for s in image.GetSpacing()) and all(abs(o) < 1e7 for o in image.GetOrigin())


@pytest.mark.parametrize("values", [{"SamplesPerPixel": 60000}, {"Rows": 0}, {"BitsAllocated": 7}])
def test_impossible_pixel_layouts_are_refused(values, tmp_path, capsys):
    path = _dicom(tmp_path, **values)
    capsys.readouterr()
    assert main(["info", str(path)]) == 1
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and path.name in lines[0], lines


def test_a_decoder_panic_is_one_clean_error(tmp_path, capsys):
    """pylibjpeg-rle's Rust PanicException derives from BaseException, not Exception."""
    # a real RLE file with a byte of its first segment changed: the decoder indexes past its buffer
    path = tmp_path / "panic.dcm"
    path.write_bytes((FINDINGS / "dicom-rle-panic" / "case.dcm").read_bytes())
    rc, err = _convert(capsys, path, tmp_path)
    _assert_one_clean_error(rc, err, path, "cannot decode pixel data (RLE Lossless)")


def test_decoder_exceptions_outside_exception_are_caught(tmp_path, monkeypatch):
    class PanicException(BaseException):
        pass

    def panic(*args, **kwargs):
        raise PanicException("index out of bounds: 'PHIx^Doe' \x1b[31m")

    monkeypatch.setattr("pydicom.pixels.pixel_array", panic)
    path = _dicom(tmp_path, implicit=False)
    ds = pydicom.dcmread(path)
    ds.file_meta.TransferSyntaxUID = pydicom.uid.RLELossless
    ds.PixelData = pydicom.encaps.encapsulate([b"\0" * 64])
    ds.save_as(path, enforce_file_format=True)
    with pytest.raises(MedViewerError) as err:
        discover(str(path)).sources[0].load()
    message = str(err.value)
    assert "index out of bounds" in message and "PHIx" not in message and "\x1b" not in message


def test_a_dicom_allocation_is_checked_against_the_memory_limit(tmp_path, monkeypatch):
    monkeypatch.setenv("MEDVIEWER_MEMORY_LIMIT", "10K")  # CT_small is 128 x 128 int16 = 32 kB
    with pytest.raises(MedViewerError, match=r"128x128x1 \w+ volume needs .* of memory; 10.0 kB is available"):
        discover(str(_dicom(tmp_path))).sources[0].load()


def test_file_content_never_reaches_the_terminal(tmp_path, capsys):
    escape = "\x1b[2J\x1b]0;pwned\x07\x1b[31m"
    data = CT_SMALL.read_bytes()
    for keyword, value in [("SeriesDescription", f"CT {escape}chest"), ("PatientName", "PHIx^Doe"),
                           ("PatientBirthDate", "PHIx1970")]:
        data = dicom_field(data, keyword, value)
    shown = tmp_path / "shown.dcm"
    shown.write_bytes(data)
    ds = pydicom.dcmread(io.BytesIO(data))
    del ds.Rows, ds.Columns  # not an image: the message names its SOP class, which comes from the file
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    refused = tmp_path / "refused.dcm"
    refused.write_bytes(dicom_field(buffer.getvalue(), "SOPClassUID", f"1.2.3{escape}.4"))
    capsys.readouterr()
    assert main(["info", str(shown)]) == 0
    assert main(["convert", str(refused), str(tmp_path / "o.nii")]) == 1
    captured = capsys.readouterr()
    text = captured.out + captured.err
    assert "description CT chest" in captured.out and "refused.dcm: not an image (1.2.3.4: no Rows/Columns)" in captured.err
    assert "\x1b" not in text and "\x07" not in text and "PHIx" not in text


def test_clean_text_and_library_reason():
    assert clean_text("a\x1b[31mred\x1b[0m\x1b]0;title\x07 b\x00c\u202ed\x9b2Je\n f") == "ared b c de f"
    assert clean_text("x" * 50, limit=10) == "xxxxxxx..."
    assert library_reason(ValueError("could not convert string to float: 'PHIx^Doe'")) == \
        "could not convert string to float: '...'"
    assert library_reason(ValueError("it's 'PHIx' and \"PHIx\" b'\\xff'")) == "it's '...' and '...' '...'"
    assert library_reason(ValueError("")) == "ValueError"


def test_native_library_output_stays_off_the_terminal(tmp_path):
    """libjpeg prints "Corrupt JPEG data: premature end of data segment" (without a newline) on
    file descriptor 2 before ITK raises; the user sees MedViewer's one line only."""
    import subprocess
    import sys

    path = tmp_path / "bad.jpg"
    noise = (np.random.RandomState(0).rand(64, 80) * 255).astype(np.uint8)
    sitk.WriteImage(sitk.GetImageFromArray(noise), str(path))
    data = bytearray(path.read_bytes())
    scan = data.index(b"\xff\xda")
    for k in range(5):
        data[scan + 40 + 7 * k] = 0xFF  # markers that are none, inside the entropy-coded data
    path.write_bytes(bytes(data))
    proc = subprocess.run([sys.executable, "-m", "medviewer", "convert", str(path), str(tmp_path / "o.nii")],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path,
                          env=dict(os.environ, PYTHONPATH=str(Path(__file__).parents[2])))
    assert proc.returncode == 1 and proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("medviewer: error: ") and "bad.jpg" in lines[0], proc.stderr


def test_native_output_silenced_keeps_python_streams_and_captures_the_rest():
    import subprocess
    import sys

    code = ("import os, sys\n"
            "from medviewer.io.native_output import captured, native_output_silenced\n"
            "with native_output_silenced():\n"
            "    os.write(2, b'C noise '); os.write(1, b'C out'); print('py out'); print('py err', file=sys.stderr)\n"
            "print(repr(captured()))\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                          env=dict(os.environ, PYTHONPATH=str(Path(__file__).parents[2])))
    assert proc.stdout == "py out\n'C noise C out'\n" and proc.stderr == "py err\n", (proc.stdout, proc.stderr)
