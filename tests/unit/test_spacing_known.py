"""Whether the pixel spacing is known: a JPEG or a DICOM without any pixel spacing loads with a
placeholder 1 mm that must not pass for a measured 1 mm (no mm scale bar, lengths in pixels)."""
from __future__ import annotations

import json
import subprocess
import sys

import pydicom
import pytest
from pydicom.data import get_testdata_file

from medviewer.cli import main
from medviewer.io import discover
from tests.conftest import DEMO

JPEG = DEMO / "xray" / "chest_xray_pneumonia.jpeg"
NIFTI = DEMO / "mri_hippocampus" / "hippocampus_001.nii.gz"


def pydicom_file(name: str) -> str:
    path = get_testdata_file(name, download=False)
    if path is None:
        pytest.skip(f"pydicom test file {name} is not installed (pydicom-data)")
    return path


def spacing_known(path) -> tuple[bool, bool, tuple]:
    """(the source's flag, the loaded volume's flag, the spacing) of the only image under PATH."""
    found = discover(str(path))
    assert len(found.sources) == 1 and not found.problems, (found.sources, found.problems)
    source = found.sources[0]
    volume = source.load()
    assert volume.spacing == source.spacing
    return source.spacing_known, volume.spacing_known, volume.spacing


@pytest.mark.parametrize("path", [JPEG, "US1_J2KR.dcm", "OBXXXX1A.dcm", "emri_small.dcm"],
                         ids=["jpeg", "US1_J2KR", "OBXXXX1A", "emri_small"])
def test_no_pixel_spacing_in_any_header_is_unknown(path):
    path = path if not isinstance(path, str) else pydicom_file(path)
    source_flag, volume_flag, spacing = spacing_known(path)
    assert spacing[:2] == (1.0, 1.0)  # the placeholder is still there for the arithmetic ...
    assert source_flag is False and volume_flag is False  # ... but it is marked as one


@pytest.mark.parametrize("path, spacing", [(DEMO / "ct_chest_20", (0.976562, 0.976562)),
                                           ("CT_small.dcm", (0.661468, 0.661468)),
                                           ("eCT_Supplemental.dcm", None),  # shared PixelMeasuresSequence
                                           (NIFTI, (1.0, 1.0))],  # a real 1 mm
                         ids=["demo_ct", "CT_small", "enhanced_CT", "nifti"])
def test_spacing_from_a_header_is_known(path, spacing):
    path = path if not isinstance(path, str) else pydicom_file(path)
    source_flag, volume_flag, got = spacing_known(path)
    assert source_flag is True and volume_flag is True
    if spacing is not None:
        assert got[:2] == pytest.approx(spacing, rel=1e-5)


def test_imager_pixel_spacing_alone_is_known(tmp_path):
    ds = pydicom.dcmread(pydicom_file("CT_small.dcm"))
    ds.ImagerPixelSpacing = [0.25, 0.5]  # (row, column) spacing, as a projection X-ray gives it
    del ds.PixelSpacing
    ds.save_as(tmp_path / "imager.dcm")
    source_flag, volume_flag, spacing = spacing_known(tmp_path / "imager.dcm")
    assert source_flag is True and volume_flag is True and spacing[:2] == (0.5, 0.25)


def test_derived_volumes_keep_the_flag():
    volume = discover(str(JPEG)).sources[0].load()
    assert volume.copy_geometry(volume.data[..., 0] if volume.is_rgb else volume.data).spacing_known is False


def test_info_says_spacing_unknown_for_the_jpeg(capsys):
    assert main(["info", str(JPEG)]) == 0
    assert "    size 224 x 224 x 1  spacing unknown (pixels)\n" in capsys.readouterr().out
    assert main(["info", str(DEMO / "ct_chest_20")]) == 0
    assert "    size 512 x 512 x 20  spacing 0.9766 x 0.9766 x 2 mm\n" in capsys.readouterr().out
    proc = subprocess.run([sys.executable, "-m", "medviewer", "info", str(JPEG), "--json"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    (info,) = json.loads(proc.stdout)
    assert info["spacing_known"] is False and info["spacing"] == [1.0, 1.0, 1.0]
