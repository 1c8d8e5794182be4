"""DICOM acquisitions as dcm2niix reads them: mosaics, diffusion series, Philips scaling, 4D output,
bounded "missing slice" resampling, bits above HighBit, and DICOM under any file name.

Synthetic series are written with pydicom from scratch (so they run in CI); nibabel's bundled
Siemens DWI mosaics (a test dependency) are compared with nibabel's own reading of them.
"""
from __future__ import annotations

import gzip
import os
import shutil

import numpy as np
import pydicom
import pytest
from pydicom.uid import MRImageStorage

from medviewer.cli import main
from medviewer.io.discover import discover
from tests.support.synthetic_dicom import new_dataset

nibabel = pytest.importorskip("nibabel")
NIBABEL_DATA = os.path.join(os.path.dirname(nibabel.__file__), "nicom", "tests", "data")
SERIES_UID = "1.2.826.0.1.3680043.8.498.1"


def write_slice(path, *, z=0.0, value=0, rows=8, cols=8, manufacturer="Philips Medical Systems", instance=1,
                acquisition=1, bits_stored=16, pixels=None, extra=None, series_uid=SERIES_UID):
    ds = new_dataset(MRImageStorage, "MR")
    ds.Manufacturer, ds.SeriesDescription = manufacturer, "DTI test"
    ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID = "1.2.3", series_uid, "1.2.4"
    ds.SeriesNumber, ds.InstanceNumber, ds.AcquisitionNumber = 5, instance, acquisition
    ds.Rows, ds.Columns = rows, cols
    ds.PixelSpacing, ds.SliceThickness = [2.0, 2.0], 3.0
    ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    ds.ImagePositionPatient = [-8.0, -8.0, float(z)]
    ds.ImageType = ["ORIGINAL", "PRIMARY", "DIFFUSION", "NONE"]
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, bits_stored, bits_stored - 1, 0
    ds.RescaleSlope, ds.RescaleIntercept = 1, 0
    for tag, vr, val in (extra or []):
        ds.add_new(tag, vr, val)
    data = np.full((rows, cols), value, np.uint16) if pixels is None else pixels.astype(np.uint16)
    ds.PixelData = data.tobytes()
    ds.save_as(path, enforce_file_format=True)
    return path


def philips_diffusion(b, gradient=None, trace=False):
    tags = [((0x2001, 0x0010), "LO", "Philips Imaging DD 001"), ((0x2001, 0x1003), "FL", float(b)),
            ((0x2005, 0x0010), "LO", "Philips MR Imaging DD 001")]
    if trace:
        tags.append(((0x2001, 0x1004), "CS", "I"))
    for k, g in enumerate(gradient if gradient is not None else (0.0, 0.0, 0.0)):
        tags.append(((0x2005, 0x10B0 + k), "FL", float(g)))
    return tags


PHILIPS_VOLUMES = [(0, None), (1000, (1.0, 0.0, 0.0)), (1000, (0.0, 1.0, 0.0)), (1000, (0.0, 0.0, 1.0))]


@pytest.fixture
def philips_dti(tmp_path):
    """A classic Philips DTI: b0 + 3 directions + the scanner's trace image, 5 slices each; the
    acquisition number changes within a volume (as Philips numbers them), and files are named in
    slice-major order so that nothing but the diffusion tags tells the volumes apart."""
    folder = tmp_path / "dti"
    folder.mkdir()
    volumes = PHILIPS_VOLUMES + [(1000, None)]
    n = 0
    for z in range(5):
        for v, (b, g) in enumerate(volumes):
            n += 1
            write_slice(str(folder / f"IM_{n:04d}"), z=3.0 * z, value=100 * v + z, instance=n,
                        acquisition=1 + z % 2, extra=philips_diffusion(b, g, trace=v == 4))
    return folder


def test_philips_dti_splits_by_diffusion_direction_and_keeps_the_trace_apart(philips_dti):
    found = discover(str(philips_dti))
    assert not found.problems
    acquired = [s for s in found.sources if s.volume_group]
    traces = [s for s in found.sources if "trace" in s.description]
    assert len(acquired) == 4 and len(traces) == 1 and len(found.sources) == 5
    assert [s.volume_index for s in acquired] == [0, 1, 2, 3]
    assert [s.diffusion for s in acquired] == [(0.0, None)] + [(1000.0, g) for _, g in PHILIPS_VOLUMES[1:]]
    for v, source in enumerate(acquired):
        assert source.size == (8, 8, 5)
        assert not any("missing" in w or "uneven" in w for w in source.warnings)
        data = source.load().data
        # every slice of volume v comes from volume v (no mixing of directions, no interpolation)
        assert [int(data[z, 0, 0]) for z in range(5)] == [100 * v + z for z in range(5)]
    assert traces[0].volume_group == "" and any("trace" in w for w in traces[0].warnings)


def test_convert_4d_writes_one_nifti_with_bval_bvec(philips_dti, tmp_path, capsys):
    out = tmp_path / "dwi.nii.gz"
    assert main(["convert", str(philips_dti), str(out), "--4d"]) == 0
    image = nibabel.load(str(out))
    assert image.shape == (8, 8, 5, 4)
    data = np.asarray(image.dataobj)
    for v in range(4):
        assert int(data[0, 0, 2, v]) == 100 * v + 2
    bvals = (tmp_path / "dwi.bval").read_text().split()
    assert bvals == ["0", "1000", "1000", "1000"]
    bvecs = np.loadtxt(tmp_path / "dwi.bvec")
    assert bvecs.shape == (3, 4)
    # axial LPS grid written with a positive determinant: FSL flips x; y and z as acquired
    expected = np.array([[0, -1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]], dtype=float)
    assert np.allclose(bvecs, expected, atol=1e-6)
    assert "4 volumes" in capsys.readouterr().out


def test_convert_without_4d_names_the_option(philips_dti, tmp_path, capsys):
    assert main(["convert", str(philips_dti), str(tmp_path / "x.nii")]) == 1
    err = capsys.readouterr().err
    assert "--4d" in err and "--series" in err and "Traceback" not in err


def test_info_says_which_volume_of_which_4d_series(philips_dti, capsys):
    assert main(["info", str(philips_dti)]) == 0
    out = capsys.readouterr().out
    assert "volume 2 of 4 in 4D series" in out and "b=1000 gradient (1, 0, 0)" in out


def _nibabel_mosaic(name):
    from nibabel.nicom import dicomwrappers

    with gzip.open(os.path.join(NIBABEL_DATA, name)) as fp:
        ds = pydicom.dcmread(fp)
    return dicomwrappers.wrapper_from_data(ds)


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_siemens_dwi_mosaic_matches_nibabel(tmp_path):
    """nibabel's Siemens DWI mosaic (.dcm.gz): 48 slices of 128x128 in an 896x896 image."""
    path = os.path.join(NIBABEL_DATA, "siemens_dwi_1000.dcm.gz")
    found = discover(path)
    assert not found.problems and len(found.sources) == 1
    source = found.sources[0]
    wrapper = _nibabel_mosaic("siemens_dwi_1000.dcm.gz")
    assert source.size == (128, 128, 48)
    volume = source.load()
    # nibabel's affine maps (row, column, slice) to LPS; ours maps (column, row, slice)
    for i, j, k in [(0, 0, 0), (127, 0, 0), (0, 127, 0), (5, 17, 47)]:
        ours = volume.index_to_world((j, i, k))
        theirs = wrapper.affine @ np.array([i, j, k, 1.0])
        assert np.allclose(ours, theirs[:3], atol=1e-3)
    assert np.array_equal(volume.data, np.transpose(wrapper.get_data(), (2, 0, 1)).astype(volume.data.dtype))
    b, gradient = source.diffusion
    assert b == 1000 and np.allclose(volume.direction.T @ gradient, [0.99997449 * 0 + _nib_bvec(wrapper)[1],
                                                                      _nib_bvec(wrapper)[0], _nib_bvec(wrapper)[2]],
                                     atol=1e-4)


def _nib_bvec(wrapper):
    return np.asarray(wrapper.b_vector, dtype=float) / np.linalg.norm(wrapper.b_vector)


def test_siemens_dwi_mosaics_in_a_folder_form_one_4d_series(tmp_path, capsys):
    for name in ("siemens_dwi_0.dcm.gz", "siemens_dwi_1000.dcm.gz"):
        shutil.copy(os.path.join(NIBABEL_DATA, name), tmp_path / name)
    found = discover(str(tmp_path))
    assert [s.diffusion[0] for s in found.sources] == [0.0, 1000.0]
    assert len({s.volume_group for s in found.sources}) == 1
    out = tmp_path / "out" / "dwi.nii"
    out.parent.mkdir()
    assert main(["convert", str(tmp_path), str(out), "--4d"]) == 0
    assert nibabel.load(str(out)).shape == (128, 128, 48, 2)
    assert (out.parent / "dwi.bval").read_text().split() == ["0", "1000"]


def _csa_less_mosaic(path: str, count: int, attributes: dict | None = None, **slice_options) -> str:
    """A Siemens mosaic that gives its slice count only in the public (0019,100A), no CSA header."""
    extra = [((0x0019, 0x0010), "LO", "SIEMENS MR HEADER"), ((0x0019, 0x100A), "US", count)]
    path = write_slice(path, manufacturer="SIEMENS", extra=extra, **slice_options)
    ds = pydicom.dcmread(path)
    ds.ImageType = ["ORIGINAL", "PRIMARY", "M", "MOSAIC"]
    for keyword, value in (attributes or {}).items():
        setattr(ds, keyword, value)
    ds.save_as(path)
    return path


def test_mosaic_count_that_does_not_tile_the_image_is_shown_as_stored_with_a_warning(tmp_path):
    path = _csa_less_mosaic(str(tmp_path / "m.dcm"), 5, rows=10, cols=10)
    source = discover(path).sources[0]
    assert source.size == (10, 10, 1) and any("does not tile" in w for w in source.warnings)


def test_siemens_mosaic_without_csa_uses_the_public_count(tmp_path):
    tiles = np.arange(4 * 4, dtype=np.uint16).reshape(4, 4).repeat(3, 0).repeat(3, 1)  # 4x4 tiles of 3x3
    path = _csa_less_mosaic(str(tmp_path / "m.dcm"), 16, {"SpacingBetweenSlices": 4.0}, rows=12, cols=12,
                            pixels=tiles)
    volume = discover(path).sources[0].load()
    assert volume.shape == (16, 3, 3)
    assert [int(volume.data[k, 0, 0]) for k in range(16)] == list(range(16))
    source = discover(path).sources[0]
    assert np.array_equal(source.preview().data[0], volume.data[8])  # the thumbnail: the middle tile
    # IPP is the mosaic's corner; the first slice starts (12 - 3) / 2 pixels further in
    assert np.allclose(volume.origin, (-8 + 4.5 * 2, -8 + 4.5 * 2, 0.0))
    assert np.isclose(volume.spacing[2], 4.0)


def test_one_wild_slice_position_does_not_make_a_huge_grid(tmp_path):
    for z in range(10):
        write_slice(str(tmp_path / f"s{z}.dcm"), z=float(z), value=z, instance=z + 1, manufacturer="X")
    write_slice(str(tmp_path / "wild.dcm"), z=-5e5, value=99, instance=11, manufacturer="X")
    source = discover(str(tmp_path)).sources[0]
    assert source.size[2] == 11
    assert any("implausible" in w for w in source.warnings)
    assert source.load().data.shape == (11, 8, 8)


def test_a_missing_slice_is_still_filled_in(tmp_path):
    for z in (0, 1, 2, 4, 5):
        write_slice(str(tmp_path / f"s{z}.dcm"), z=float(z), value=10 * z, instance=z + 1, manufacturer="X")
    source = discover(str(tmp_path)).sources[0]
    assert source.size[2] == 6 and any("1 slice(s) missing" in w for w in source.warnings)
    assert int(source.load().data[3, 0, 0]) == 30


def test_bits_above_high_bit_are_masked(tmp_path):
    pixels = np.full((8, 8), 5000, np.uint16)  # 12-bit data with garbage in bit 12
    path = write_slice(str(tmp_path / "a.dcm"), bits_stored=12, pixels=pixels, manufacturer="X")
    assert int(discover(path).sources[0].load().data.max()) == 5000 & 0x0FFF


def test_dicom_named_img_and_gzipped_dicom_are_found_by_content(tmp_path):
    write_slice(str(tmp_path / "011-0001.img"), value=7, manufacturer="X")
    with open(tmp_path / "011-0001.img", "rb") as src, gzip.open(tmp_path / "b.dcm.gz", "wb") as dst:
        dst.write(src.read())
    for path in (tmp_path / "011-0001.img", tmp_path / "b.dcm.gz"):
        found = discover(str(path))
        assert len(found.sources) == 1 and int(found.sources[0].load().data[0, 0, 0]) == 7
    folder = discover(str(tmp_path))  # the same image twice (same SOP Instance UID): read once
    assert len(folder.sources) == 1 and len(folder.sources[0].files) == 1
    assert any("same image is in 2 files" in w for w in folder.sources[0].warnings)


def test_analyze_img_beside_its_hdr_is_still_a_companion(tmp_path):
    import SimpleITK as sitk

    sitk.WriteImage(sitk.Image(4, 4, 2, sitk.sitkInt16), str(tmp_path / "a.hdr"))
    found = discover(str(tmp_path))
    assert len(found.sources) == 1 and found.sources[0].files[0].endswith("a.hdr") and not found.problems


def test_philips_floating_point_scaling(tmp_path, capsys):
    extra = [((0x2005, 0x0010), "LO", "Philips MR Imaging DD 001"), ((0x2005, 0x100E), "FL", 0.25),
             ((0x2005, 0x100D), "FL", 0.0)]
    path = write_slice(str(tmp_path / "p.dcm"), value=100, extra=extra)
    ds = pydicom.dcmread(path)
    ds.RescaleSlope, ds.RescaleIntercept = 2, 10
    ds.save_as(path)
    display, fp = tmp_path / "display.nii", tmp_path / "fp.nii"
    assert main(["convert", path, str(display)]) == 0
    assert main(["convert", path, str(fp), "--philips-scaling", "fp"]) == 0
    assert np.allclose(nibabel.load(str(display)).get_fdata(), 210)  # DV = 100 * 2 + 10
    fp_image = nibabel.load(str(fp))
    assert np.allclose(fp_image.get_fdata(), 210 / (2 * 0.25))  # FP = DV / (RS * SS)
    assert b"Philips floating-point" in fp_image.header["descrip"].tobytes()
    other = write_slice(str(tmp_path / "o.dcm"), manufacturer="X", series_uid="1.2.9")
    assert main(["convert", other, str(tmp_path / "o.nii"), "--philips-scaling", "fp"]) == 1
    assert "private scale slope" in capsys.readouterr().err


def test_a_copy_of_a_file_keeps_what_the_file_warns_about(tmp_path):
    # a mosaic whose count does not tile the image, and a copy of it: both notes are kept
    path = _csa_less_mosaic(str(tmp_path / "a.dcm"), 5, rows=10, cols=10)
    shutil.copy(path, tmp_path / "b.dcm")
    warnings = discover(str(tmp_path)).sources[0].warnings
    assert any("does not tile" in w for w in warnings)
    assert any("same image is in 2 files" in w for w in warnings)
