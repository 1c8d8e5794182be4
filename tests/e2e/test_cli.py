"""The command line as users and scripts call it: `medviewer info`, `convert`, and opening the demo."""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from tests.conftest import DEMO, shared

REQUIRED_KEYS = {"id", "modality", "description", "size", "spacing", "origin", "direction", "files", "warnings"}


def medviewer(*args, check=True):
    proc = subprocess.run([sys.executable, "-m", "medviewer", *map(str, args)], capture_output=True,
                          text=True, timeout=300, env={**os.environ, "PYTHONWARNINGS": "ignore"})
    if check:
        assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


def sitk_series(folder):
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(folder)))
    return reader.Execute()


def test_info_json_lists_every_volume_of_the_demo_with_the_required_keys():
    infos = json.loads(medviewer("info", DEMO, "--json").stdout)
    assert len(infos) == 3
    for info in infos:
        assert REQUIRED_KEYS <= set(info)
        assert len(info["size"]) == 3 and len(info["spacing"]) == 3 and len(info["direction"]) == 9
    ct = next(i for i in infos if i["modality"] == "CT")
    ref = sitk_series(DEMO / "ct_chest_20")
    assert ct["size"] == list(ref.GetSize()) and ct["files"] == 20
    assert np.allclose(ct["spacing"], ref.GetSpacing()) and np.allclose(ct["origin"], ref.GetOrigin())
    assert np.allclose(ct["direction"], ref.GetDirection())
    assert ct["transfer_syntaxes"] == ["JPEG 2000 Image Compression (Lossless Only)"]


def test_info_text_output_is_readable():
    out = medviewer("info", DEMO / "ct_chest_20").stdout
    assert "size 512 x 512 x 20" in out and "spacing 0.9766 x 0.9766 x 2 mm" in out


@pytest.mark.parametrize("ext", [".nii", ".nii.gz", ".nrrd", ".mha"])
def test_convert_dicom_series_reads_back_like_the_source_in_simpleitk(tmp_path, ext):
    out = tmp_path / f"ct{ext}"
    medviewer("convert", DEMO / "ct_chest_20", out)
    ref = sitk_series(DEMO / "ct_chest_20")
    back = sitk.ReadImage(str(out))
    assert np.array_equal(sitk.GetArrayFromImage(back), sitk.GetArrayFromImage(ref))
    assert back.GetSize() == ref.GetSize()
    assert np.allclose(back.GetSpacing(), ref.GetSpacing(), atol=1e-5)
    assert np.allclose(back.GetOrigin(), ref.GetOrigin(), atol=1e-4)
    assert np.allclose(back.GetDirection(), ref.GetDirection(), atol=1e-6)


def test_convert_a_chosen_series_and_nifti_to_nrrd(tmp_path):
    infos = json.loads(medviewer("info", DEMO, "--json").stdout)
    mri = next(i for i in infos if i["id"].startswith("hippocampus"))
    out = tmp_path / "mri.nrrd"
    medviewer("convert", DEMO, out, "--series", mri["id"])
    src = sitk.ReadImage(str(DEMO / "mri_hippocampus" / "hippocampus_001.nii.gz"))
    back = sitk.ReadImage(str(out))
    assert np.array_equal(sitk.GetArrayFromImage(back), sitk.GetArrayFromImage(src))
    assert np.allclose(back.GetDirection(), src.GetDirection()) and np.allclose(back.GetOrigin(), src.GetOrigin())


def test_convert_enhanced_multiframe_series_by_id(tmp_path):
    folder = shared("dicom", "enhanced_mr", "In", "Siemens", "XA10")
    infos = json.loads(medviewer("info", folder, "--json").stdout)
    assert [i["size"] for i in infos] == [[64, 64, 6]] * 4
    out = tmp_path / "t3.nii.gz"
    medviewer("convert", folder, out, "--series", infos[2]["id"])
    assert sitk.ReadImage(str(out)).GetSize() == (64, 64, 6)


def test_failures_exit_non_zero_with_a_one_line_reason(tmp_path):
    cases = [
        ("info", tmp_path / "missing"),
        ("convert", DEMO, tmp_path / "x.nii"),  # three series: which one?
        ("convert", DEMO / "ct_chest_20", tmp_path / "x.bmp"),
        ("convert", DEMO, tmp_path / "x.nii", "--series", "nope"),
    ]
    (tmp_path / "empty").mkdir()
    cases.append(("info", tmp_path / "empty"))
    for args in cases:
        proc = medviewer(*args, check=False)
        assert proc.returncode != 0, args
        errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("medviewer: error:")]
        assert len(errors) == 1 and "Traceback" not in proc.stderr, proc.stderr


def test_info_on_malformed_folder_warns_per_file_and_lists_the_rest():
    proc = medviewer("info", shared("dicom", "malformed"), "--json")
    assert len(json.loads(proc.stdout)) == 2
    assert proc.stderr.count("medviewer: warning:") == 3


def test_console_script_is_installed():
    exe = Path(sys.executable).parent / "medviewer"
    if not exe.exists():
        pytest.skip("console script not installed in this environment")
    proc = subprocess.run([str(exe), "--version"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and proc.stdout.startswith("medviewer ")
