"""NIfTI, Analyze, NRRD, MHA, PNG and JPEG: geometry identical to SimpleITK's; writing round-trips."""
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import SimpleITK as sitk

from medviewer.core import Volume
from medviewer.core.errors import ImageWriteError, MedViewerError
from medviewer.io import discover, open_volume, write_volume
from tests.conftest import DEMO

HIPPO = DEMO / "mri_hippocampus" / "hippocampus_001.nii.gz"
XRAY = DEMO / "xray" / "chest_xray_pneumonia.jpeg"


def assert_same_as_sitk(volume: Volume, ref: sitk.Image):
    n = ref.GetDimension()
    arr = sitk.GetArrayFromImage(ref)
    ours = volume.data[0] if volume.is_2d else volume.data
    assert ours.shape == arr.shape and np.array_equal(ours, arr)
    assert np.allclose(volume.spacing[:n], ref.GetSpacing())
    assert np.allclose(volume.origin[:n], ref.GetOrigin())
    assert np.allclose(volume.direction[:n, :n].ravel(), ref.GetDirection())


@pytest.fixture(scope="module")
def oblique_mr(tmp_path_factory) -> sitk.Image:
    """The real hippocampus MRI with an oblique direction and anisotropic spacing."""
    image = sitk.ReadImage(str(HIPPO))
    a = np.deg2rad(15)
    rot = np.array([[np.cos(a), 0, np.sin(a)], [0, 1, 0], [-np.sin(a), 0, np.cos(a)]])
    image.SetDirection(tuple((np.asarray(image.GetDirection()).reshape(3, 3) @ rot).ravel()))
    image.SetSpacing((0.9, 1.1, 2.5))
    image.SetOrigin((12.5, -40.0, 7.25))
    return image


@pytest.mark.parametrize("ext", [".nii", ".nii.gz", ".nrrd", ".mha", ".mhd"])
def test_formats_read_with_simpleitk_geometry(tmp_path, oblique_mr, ext):
    path = tmp_path / f"mr{ext}"
    sitk.WriteImage(oblique_mr, str(path))
    volume = open_volume(str(path))
    assert_same_as_sitk(volume, sitk.ReadImage(str(path)))


def test_analyze_75_pair(tmp_path):
    data = np.asarray(nib.load(str(HIPPO)).dataobj)
    img = nib.AnalyzeImage(data, np.diag([1.2, 1.3, 1.4, 1.0]))
    nib.save(img, str(tmp_path / "brain.hdr"))
    found = discover(str(tmp_path))
    assert len(found.sources) == 1 and found.skipped == 1  # the .img is the pair's data, not a second image
    volume = found.sources[0].load()
    assert_same_as_sitk(volume, sitk.ReadImage(str(tmp_path / "brain.hdr")))


def test_png_grey_and_rgb_and_jpeg(tmp_path):
    grey = (np.arange(60 * 80).reshape(60, 80) % 251).astype(np.uint8)
    sitk.WriteImage(sitk.GetImageFromArray(grey), str(tmp_path / "grey.png"))
    rgb = np.stack([grey, 255 - grey, grey // 2], axis=-1)
    sitk.WriteImage(sitk.GetImageFromArray(rgb, isVector=True), str(tmp_path / "rgb.png"))
    g = open_volume(str(tmp_path / "grey.png"))
    assert g.is_2d and not g.is_rgb and np.array_equal(g.data[0], grey)
    c = open_volume(str(tmp_path / "rgb.png"))
    assert c.is_rgb and np.array_equal(c.data[0], rgb)
    x = open_volume(str(XRAY))
    assert x.is_2d and x.modality == "XR"
    assert_same_as_sitk(x, sitk.ReadImage(str(XRAY)))


def test_4d_nifti_gives_one_volume_per_time_point(tmp_path):
    data = np.random.default_rng(0).integers(0, 100, (3, 4, 5, 6)).astype(np.int16)
    nib.save(nib.Nifti1Image(data, np.eye(4)), str(tmp_path / "fmri.nii.gz"))
    found = discover(str(tmp_path / "fmri.nii.gz"))
    assert len(found.sources) == 6
    vol = found.sources[2].load()
    assert vol.size == (3, 4, 5) and np.array_equal(vol.data, data[..., 2].transpose(2, 1, 0))


def test_broken_nifti_header_is_a_clear_problem(tmp_path):
    good = Path(HIPPO).read_bytes()
    import gzip

    raw = bytearray(gzip.decompress(good))
    raw[0:4] = (12345).to_bytes(4, "little")  # sizeof_hdr must be 348
    raw[344:348] = b"XXXX"  # magic
    (tmp_path / "broken.nii").write_bytes(bytes(raw))
    (tmp_path / "truncated.nii.gz").write_bytes(good[:200])
    found = discover(str(tmp_path))
    reasons = {Path(p.path).name: p.reason for p in found.problems}
    assert set(reasons) == {"broken.nii"}
    assert reasons["broken.nii"].startswith("not a readable NIfTI file")
    # the truncated file's header is intact: it is listed, and loading it says what went wrong
    assert [s.id for s in found.sources] == ["truncated.nii.gz"]
    with pytest.raises(MedViewerError) as err:
        found.sources[0].load()
    assert "truncated.nii.gz: the compressed file is truncated" in str(err.value)


@pytest.mark.parametrize("ext", [".nii", ".nii.gz", ".nrrd", ".mha"])
def test_write_round_trip_keeps_array_and_geometry(tmp_path, oblique_mr, ext):
    src = tmp_path / "src.nrrd"
    sitk.WriteImage(oblique_mr, str(src))
    volume = open_volume(str(src))
    out = write_volume(volume, str(tmp_path / f"out{ext}"))
    assert_same_as_sitk(volume, sitk.ReadImage(out))
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temporary left


def test_write_2d_rgb_and_refuse_unknown_format(tmp_path):
    x = open_volume(str(XRAY))
    out = write_volume(x, str(tmp_path / "xray.nii.gz"))
    assert_same_as_sitk(x, sitk.ReadImage(out))
    with pytest.raises(ImageWriteError, match="cannot write"):
        write_volume(x, str(tmp_path / "xray.bmp"))
    with pytest.raises(ImageWriteError, match="does not exist"):
        write_volume(x, str(tmp_path / "nowhere" / "x.nii"))


def test_open_volume_with_several_series_asks_for_one():
    with pytest.raises(MedViewerError, match="choose one with --series"):
        open_volume(str(DEMO))
