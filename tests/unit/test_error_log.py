"""The one-line reasons users see (no SimpleITK texts, no tracebacks) and the error log with the stack."""
import errno
import gzip
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import SimpleITK as sitk

from medviewer.core.errors import ImageReadError, MedViewerError
from medviewer.io import discover, open_volume
from medviewer.io.error_log import describe, report, write_error_log
from medviewer.io.messages import is_sitk_error, plain_reason

REPO = Path(__file__).resolve().parents[2]
HIPPO = REPO / "resources" / "demo" / "mri_hippocampus" / "hippocampus_001.nii.gz"
RAW_MARKERS = ("ITK ERROR", "sitk::ERROR", "itk::ERROR", "SimpleITK", ".cxx", "0x", "[nrrd]")


def _sitk_error(path: Path) -> RuntimeError:
    with pytest.raises(RuntimeError) as info:
        sitk.ReadImage(str(path))
    assert is_sitk_error(info.value)
    return info.value


def test_simpleitk_read_errors_become_plain_reasons(tmp_path):
    (tmp_path / "noise.nii.gz").write_bytes(np.random.default_rng(0).bytes(5000))
    image = sitk.ReadImage(str(HIPPO))
    sitk.WriteImage(image, str(tmp_path / "full.nrrd"), useCompression=True)
    full = (tmp_path / "full.nrrd").read_bytes()
    (tmp_path / "head.nrrd").write_bytes(full[:100])
    (tmp_path / "half.nrrd").write_bytes(full[: len(full) // 2])
    reasons = {name: plain_reason(_sitk_error(tmp_path / name), fmt) for name, fmt in
               (("noise.nii.gz", "NIfTI"), ("head.nrrd", "NRRD"), ("half.nrrd", "NRRD"))}
    assert reasons == {"noise.nii.gz": "it is damaged or in another format",
                       "head.nrrd": "the header cannot be read (the file is truncated or damaged)",
                       "half.nrrd": "the file is truncated (it holds less data than its header promises)"}


def test_readers_name_the_file_and_hide_simpleitk(tmp_path):
    (tmp_path / "x.nii.gz").write_bytes(np.random.default_rng(1).bytes(20000))
    (tmp_path / "x.png").write_bytes(np.random.default_rng(2).bytes(20000))
    found = discover(str(tmp_path))
    reasons = {Path(p.path).name: p.reason for p in found.problems}
    assert reasons == {"x.nii.gz": "not a readable NIfTI file: it is damaged or in another format",
                       "x.png": "not a readable PNG file: it is damaged or in another format"}
    with pytest.raises(MedViewerError) as info:
        found.find(None)
    assert str(info.value).startswith(f"no images found under {tmp_path} (2 files could not be read")
    with pytest.raises(MedViewerError) as info:
        open_volume(str(tmp_path / "x.png"))  # one file named: the error is that file's reason
    assert str(info.value) == f"{tmp_path / 'x.png'}: not a readable PNG file: it is damaged or in another format"
    assert not any(m in str(info.value) for m in RAW_MARKERS)


def test_a_truncated_uncompressed_nifti_is_refused_not_zero_filled(tmp_path):
    raw = gzip.decompress(HIPPO.read_bytes())
    (tmp_path / "cut.nii").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(ImageReadError, match=r"cut.nii: the file is truncated \(\d+ bytes; the header promises"):
        open_volume(str(tmp_path / "cut.nii"))
    (tmp_path / "whole.nii").write_bytes(raw)
    assert open_volume(str(tmp_path / "whole.nii")).shape == (35, 51, 35)


@pytest.mark.parametrize("ext", [".nii.gz", ".nii"])
def test_scaled_integer_nifti_is_read_not_called_truncated(tmp_path, ext):
    """ITK returns float pixels for scl_slope != 1: the completeness check must use the header's bitpix."""
    data = np.arange(40 * 50 * 60, dtype=np.int16).reshape(40, 50, 60) % 3000
    img = nib.Nifti1Image(data, np.eye(4))
    img.header.set_slope_inter(2.0, 1.0)
    nib.save(img, str(tmp_path / f"scaled{ext}"))
    volume = open_volume(str(tmp_path / f"scaled{ext}"))
    assert volume.data.dtype == np.float32
    assert np.allclose(volume.data, data.transpose(2, 1, 0) * 2.0 + 1.0)


def test_describe_gives_one_plain_line():
    assert describe(MedViewerError("a.nii: no such file")) == "a.nii: no such file"
    assert describe(MemoryError()).startswith("not enough memory")
    full = OSError(errno.ENOSPC, "No space left on device", "/data/out.nii.gz")
    assert describe(full) == "/data/out.nii.gz: the disk is full"
    sitk_error = RuntimeError("Exception thrown in SimpleITK Image_SetSpacing: /x/itkImageBase.hxx:90:\n"
                              "ITK ERROR: Image(0x55d84ac893d0): Negative spacing is not supported")
    assert describe(sitk_error) == "an image operation failed: negative voxel spacing is not supported"
    assert describe(ValueError("bad\nthing")) == "unexpected error (ValueError: bad thing)"
    assert describe(KeyError("k")) == "unexpected error (KeyError: 'k')"


def _raise_nested():
    try:
        {}["missing"]
    except KeyError as exc:
        raise ValueError("could not finish") from exc


def test_error_log_holds_the_stack_and_honours_the_data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("MEDVIEWER_DATA_DIR", str(tmp_path / "data"))
    try:
        _raise_nested()
    except ValueError as exc:
        reason, log = report(exc, "medviewer infer x.png")
    assert reason == "unexpected error (ValueError: could not finish)"
    assert log.parent == tmp_path / "data" / "logs" and log.name.startswith("medviewer-") and log.suffix == ".log"
    text = log.read_text()
    assert "Traceback (most recent call last)" in text and "_raise_nested" in text
    assert "KeyError: 'missing'" in text and "ValueError: could not finish" in text  # the cause too
    assert "context: medviewer infer x.png" in text and "shown to the user: unexpected error" in text


def test_error_log_never_raises_and_falls_back_to_the_temp_folder(tmp_path, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setenv("MEDVIEWER_DATA_DIR", str(blocker))  # logs/ cannot be made under a file
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    log = write_error_log(RuntimeError("boom"))
    assert log is not None and log.parent == tmp_path / "tmp" / "medviewer-logs" and "boom" in log.read_text()
    monkeypatch.setattr("tempfile.tempdir", str(blocker))  # and no temporary folder either
    assert write_error_log(RuntimeError("boom")) is None


def test_old_logs_are_pruned(tmp_path, monkeypatch):
    import medviewer.io.error_log as error_log

    monkeypatch.setenv("MEDVIEWER_DATA_DIR", str(tmp_path))
    monkeypatch.setattr(error_log, "KEEP_LOGS", 3)
    logs = [write_error_log(RuntimeError(str(n))) for n in range(5)]
    assert sorted((tmp_path / "logs").iterdir()) == logs[2:]  # the newest three
