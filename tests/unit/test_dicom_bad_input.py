"""Broken, truncated, non-image and undecodable DICOM: a clear message naming the file, no crash."""
import os
import shutil
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.uid import UID

from medviewer.core.errors import MedViewerError
from medviewer.io import discover
from tests.conftest import shared

MALFORMED_EXPECTED = {
    "MR_truncated.dcm": "pixel data is truncated",
    "JPEG2000-embedded-sequence-delimiter.dcm": "cannot decode pixel data (JPEG 2000",
    "meta_missing_tsyntax.dcm": "Transfer Syntax UID",
    "nested_priv_SQ.dcm": "not an image",
    "rtplan_truncated.dcm": "not an image (RT Plan Storage",
}


def _message_for(path: Path) -> str:
    found = discover(str(path))
    messages = [str(p) for p in found.problems]
    for source in found.sources:
        try:
            source.load()
        except MedViewerError as exc:
            messages.append(str(exc))
    assert len(messages) == 1, messages
    return messages[0]


@pytest.mark.parametrize("name", sorted(MALFORMED_EXPECTED))
def test_malformed_files_give_a_clear_message_naming_the_file(name):
    path = shared("dicom", "malformed", name)
    message = _message_for(path)
    assert str(path) in message and MALFORMED_EXPECTED[name] in message
    assert "\n" not in message and "Traceback" not in message


def test_folder_of_malformed_files_reports_each_and_raises_nothing():
    folder = shared("dicom", "malformed")
    found = discover(str(folder))
    reported = {Path(p.path).name for p in found.problems}
    assert {"meta_missing_tsyntax.dcm", "nested_priv_SQ.dcm", "rtplan_truncated.dcm"} <= reported
    assert len(found.sources) == 2  # truncated MR and the J2K file have headers; their pixels fail on load


def test_truncated_file_in_a_series_fails_that_series_only(tmp_path, demo_ct):
    for f in sorted(demo_ct.iterdir()):
        shutil.copy(f, tmp_path / f.name)
    mr = Path(pydicom.data.get_testdata_file("MR_small.dcm"))
    shutil.copy(mr, tmp_path / "mr.dcm")
    victim = sorted(tmp_path.glob("CT.*"))[5]
    victim.write_bytes(victim.read_bytes()[: os.path.getsize(victim) // 2])
    found = discover(str(tmp_path))
    by_modality = {s.modality: s for s in found.sources}
    with pytest.raises(MedViewerError, match=victim.name):
        by_modality["CT"].load()
    assert by_modality["MR"].load().size == (64, 64, 1)


def test_unsupported_transfer_syntax_names_the_syntax(tmp_path):
    ds = pydicom.dcmread(pydicom.data.get_testdata_file("CT_small.dcm"))
    ds.file_meta.TransferSyntaxUID = UID("1.2.840.10008.1.2.4.100")  # MPEG2 video: no decoder here
    from pydicom.encaps import encapsulate

    ds.PixelData = encapsulate([b"\xff\x0a" + b"\0" * 64])
    ds["PixelData"].VR = "OB"
    ds.save_as(tmp_path / "mpeg.dcm", enforce_file_format=True)
    message = _message_for(tmp_path / "mpeg.dcm")
    assert "mpeg.dcm" in message and "MPEG2" in message


def test_non_dicom_file_and_empty_folder(tmp_path):
    bogus = tmp_path / "scan.dcm"
    bogus.write_text("this is not DICOM")
    assert "not a DICOM file" in _message_for(bogus)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(MedViewerError, match="empty"):
        discover(str(empty))
    with pytest.raises(MedViewerError, match="no such file"):
        discover(str(tmp_path / "missing"))


def test_folder_with_no_images_finds_nothing_and_says_so(tmp_path):
    (tmp_path / "README.md").write_text("notes")
    (tmp_path / "data.json").write_text("{}")
    found = discover(str(tmp_path))
    assert not found.sources and not found.problems and found.skipped == 2
    with pytest.raises(MedViewerError, match="no images found"):
        found.find(None)


def _installed_test_files() -> list[Path]:
    roots = [Path(pydicom.__file__).parent / "data" / "test_files"]
    try:
        import data_store  # pydicom-data

        roots.append(Path(data_store.__file__).parent / "data")
    except ImportError:
        pass
    return sorted(p for root in roots for p in root.rglob("*") if p.is_file())


def test_every_installed_pydicom_test_file_loads_or_fails_cleanly():
    loaded, failed = 0, 0
    for path in _installed_test_files():
        found = discover(str(path))  # must not raise for any single file
        failed += len(found.problems)
        for source in found.sources:
            try:
                volume = source.load()
            except MedViewerError as exc:
                assert str(path) in str(exc) or source.files[0] in str(exc)
                failed += 1
                continue
            assert volume.data.size > 0 and np.all(np.asarray(volume.spacing) > 0)
            loaded += 1
    # pydicom's own files include many non-images and deliberately broken ones
    assert loaded >= 100, (loaded, failed)


def test_compressed_syntaxes_from_pydicom_data_match_their_uncompressed_twins():
    pairs = [("MR_small_RLE.dcm", "MR_small.dcm"), ("MR_small_jp2klossless.dcm", "MR_small.dcm"),
             ("MR_small_jpeg_ls_lossless.dcm", "MR_small.dcm"), ("MR_small_bigendian.dcm", "MR_small.dcm"),
             ("SC_rgb_rle.dcm", "SC_rgb.dcm"), ("emri_small_jpeg_2k_lossless.dcm", "emri_small.dcm"),
             ("emri_small_jpeg_ls_lossless.dcm", "emri_small.dcm"), ("emri_small_RLE.dcm", "emri_small.dcm"),
             ("693_J2KR.dcm", "693_UNCR.dcm"), ("MR2_J2KR.dcm", "MR2_UNCR.dcm"), ("US1_J2KR.dcm", "US1_UNCR.dcm")]
    for compressed, plain in pairs:
        a = discover(pydicom.data.get_testdata_file(compressed)).sources[0].load()
        b = discover(pydicom.data.get_testdata_file(plain)).sources[0].load()
        assert np.array_equal(a.data, b.data), compressed


def test_multiframe_and_rgb_files():
    mf = discover(pydicom.data.get_testdata_file("emri_small.dcm")).sources[0]
    volume = mf.load()
    assert volume.shape[0] == 10 and volume.shape[1:] == (64, 64)
    rgb = discover(pydicom.data.get_testdata_file("SC_rgb_rle_2frame.dcm")).sources[0].load()
    assert rgb.is_rgb and rgb.data.shape[-1] == 3 and rgb.shape[0] == 2
    palette = discover(pydicom.data.get_testdata_file("OBXXXX1A.dcm")).sources[0].load()
    assert palette.is_rgb


import pydicom.data  # noqa: E402
