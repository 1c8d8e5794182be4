"""DICOM reading on real files: geometry as SimpleITK gives it, HU, grouping, sorting, warnings."""
import shutil
from pathlib import Path

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk

from medviewer.io import discover
from tests.conftest import shared


def sitk_series(folder: Path) -> sitk.Image:
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(folder)))
    return reader.Execute()


@pytest.fixture(scope="module")
def ct(demo_ct):
    found = discover(str(demo_ct))
    assert len(found.sources) == 1 and not found.problems
    return found.sources[0], found.sources[0].load()


def test_blank_uid_ct_is_one_series_with_simpleitk_geometry(ct, demo_ct):
    source, volume = ct
    ref = sitk_series(demo_ct)
    assert source.series_uid if hasattr(source, "series_uid") else True
    assert source.id.startswith("noUID-")
    assert volume.size == ref.GetSize() == (512, 512, 20)
    assert np.allclose(volume.spacing, ref.GetSpacing(), atol=1e-6)
    assert np.allclose(volume.origin, ref.GetOrigin(), atol=1e-4)
    assert np.allclose(volume.direction.ravel(), ref.GetDirection(), atol=1e-6)
    assert volume.modality == "CT" and volume.data.dtype == np.int16


def test_ct_values_are_hounsfield_units_equal_to_simpleitk(ct, demo_ct):
    _, volume = ct
    ref = sitk.GetArrayFromImage(sitk_series(demo_ct))
    assert np.array_equal(volume.data, ref)
    # air outside the body and soft tissue inside, in HU
    assert volume.data[10, 5, 5] <= -1000
    assert -100 < np.median(volume.data[10, 240:270, 240:270]) < 100


def test_index_to_world_matches_simpleitk(ct, demo_ct):
    _, volume = ct
    ref = sitk_series(demo_ct)
    for ijk in [(0, 0, 0), (100, 200, 7), (511, 511, 19)]:
        assert np.allclose(volume.index_to_world(ijk), ref.TransformIndexToPhysicalPoint(ijk), atol=1e-4)


def test_slices_are_sorted_along_the_normal_whatever_the_file_names(tmp_path, demo_ct, ct):
    _, volume = ct
    files = sorted(demo_ct.iterdir())
    for n, f in enumerate(reversed(files)):  # names in reverse order of position
        shutil.copy(f, tmp_path / f"img{n:03d}")
    reread = discover(str(tmp_path)).sources[0].load()
    assert np.array_equal(reread.data, volume.data)
    assert reread.origin == volume.origin


def test_missing_slice_is_reported_and_geometry_stays_correct(tmp_path, demo_ct, ct):
    _, full = ct
    files = sorted(demo_ct.iterdir(), key=lambda f: float(pydicom.dcmread(f, stop_before_pixels=True)
                                                          .ImagePositionPatient[2]))
    for n, f in enumerate(files):
        if n != 9:
            shutil.copy(f, tmp_path / f.name)
    source = discover(str(tmp_path)).sources[0]
    assert any("1 slice(s) missing" in w for w in source.warnings), source.warnings
    volume = source.load()
    assert volume.size == full.size and np.allclose(volume.spacing, full.spacing)
    assert np.allclose(volume.origin, full.origin)
    # slices that exist are untouched; the missing one is interpolated from its neighbours
    assert np.array_equal(volume.data[:9], full.data[:9]) and np.array_equal(volume.data[10:], full.data[10:])
    expected = np.round((full.data[8].astype(float) + full.data[10]) / 2)
    assert np.abs(volume.data[9] - expected).max() <= 1


def test_uneven_spacing_is_reported(tmp_path, demo_ct):
    files = sorted(demo_ct.iterdir())[:6]
    for n, f in enumerate(files):
        ds = pydicom.dcmread(f)
        ds.ImagePositionPatient = [0.0, 0.0, [0, 2, 4, 7, 9, 11][n]]
        ds.save_as(tmp_path / f"s{n}.dcm")
    source = discover(str(tmp_path)).sources[0]
    assert any("uneven slice spacing" in w for w in source.warnings)
    volume = source.load()
    assert volume.size[2] == 6 and np.isclose(volume.spacing[2], 2.0)
    assert np.isclose(volume.index_to_world((0, 0, 5))[2], 10.0)


def test_transfer_syntaxes_decode_to_identical_pixels():
    folder = shared("dicom", "transfer_syntaxes", "In")
    arrays, syntaxes = [], set()
    for n in range(1, 10):
        found = discover(str(folder / f"{n}.dcm"))
        assert not found.problems
        syntaxes.update(found.sources[0].transfer_syntaxes)
        arrays.append(found.sources[0].load().data)
    assert len(syntaxes) == 7  # two files each share JPEG lossless and JPEG-LS syntaxes
    for n, a in enumerate(arrays[1:], 2):
        assert np.array_equal(a, arrays[0]), f"{n}.dcm differs from 1.dcm"
    # a Siemens mosaic: 35 tiles of 64x64 in the 384x384 stored image, unpacked as dcm2niix does
    assert arrays[0].shape == (35, 64, 64) and arrays[0].max() > 1000


def test_folder_of_one_mosaic_in_nine_syntaxes_gives_nine_volumes():
    found = discover(str(shared("dicom", "transfer_syntaxes", "In")))
    assert len(found.sources) == 9 and not found.problems
    assert all(s.size == (64, 64, 35) for s in found.sources)
    assert all(any("same slice position" in w for w in s.warnings) for s in found.sources)


def _ref_values(ref: sitk.Image, volume, idx: np.ndarray) -> np.ndarray:
    """Reference values at the world positions of the given volume indices."""
    world = volume.index_to_world(idx)
    out = []
    for p in world:
        i = ref.TransformPhysicalPointToIndex(tuple(p))
        out.append(ref[i])
    return np.array(out, dtype=float)


def _sample_indices(volume, n=400, seed=0):
    rng = np.random.default_rng(seed)
    sx, sy, sz = volume.size
    return np.column_stack([rng.integers(0, sx, n), rng.integers(0, sy, n), rng.integers(0, sz, n)])


def test_philips_enhanced_mr_frames_match_dcm2niix():
    folder = shared("dicom", "enhanced_mr")
    found = discover(str(folder / "In" / "Philips"))
    assert len(found.sources) == 2
    names = ["Philips_WIP_B0_NS_801_e1.nii", "Philips_WIP_B0_NS_801_e2_fieldmaphz.nii"]
    for source, name in zip(found.sources, names):
        volume = source.load()
        ref = sitk.ReadImage(str(folder / "Ref" / name))
        assert volume.size == ref.GetSize()
        assert np.allclose(volume.spacing, ref.GetSpacing(), atol=1e-4)
        assert np.allclose(volume.origin, ref.TransformIndexToPhysicalPoint(_corner(volume, ref)), atol=0.05)
        idx = _sample_indices(volume)
        ours = np.array([volume.data[k, j, i] for i, j, k in idx], dtype=float)
        # dcm2niix scales Philips data with the private floating-point slope: the values are an
        # exact linear function of ours when (and only when) every frame is in the right place
        theirs = _ref_values(ref, volume, idx)
        assert np.std(ours) > 0 and np.corrcoef(ours, theirs)[0, 1] > 0.99999


def _corner(volume, ref):
    return ref.TransformPhysicalPointToIndex(volume.origin)


def test_siemens_enhanced_mr_time_points_match_dcm2niix():
    folder = shared("dicom", "enhanced_mr")
    found = discover(str(folder / "In" / "Siemens" / "XA10"))
    assert len(found.sources) == 4
    ref4d = sitk.ReadImage(str(folder / "Ref" / "Siemens_REST1_w_SMS_PF7-8_6.nii"))
    for t, source in enumerate(found.sources):
        volume = source.load()
        size = list(ref4d.GetSize())
        ref = sitk.Extract(ref4d, size[:3] + [0], [0, 0, 0, t])
        assert volume.size == ref.GetSize()
        idx = _sample_indices(volume, seed=t)
        ours = np.array([volume.data[k, j, i] for i, j, k in idx], dtype=float)
        assert np.array_equal(ours, _ref_values(ref, volume, idx))


def test_dicomdir_lists_its_series():
    import pydicom.data

    dicomdir = Path(pydicom.data.get_testdata_file("DICOMDIR"))
    found = discover(str(dicomdir))
    assert len(found.sources) >= 3
    assert {s.modality for s in found.sources} >= {"CT", "MR"}
    # every referenced file belongs to some series or is reported
    listed = sum(len(s.files) for s in found.sources) + len(found.problems)
    assert listed >= 30


def test_monochrome1_is_flagged_for_inverted_display(tmp_path, demo_ct):
    ds = pydicom.dcmread(sorted(demo_ct.iterdir())[0])
    ds.PhotometricInterpretation = "MONOCHROME1"
    ds.save_as(tmp_path / "m1.dcm")
    plain = discover(str(sorted(demo_ct.iterdir())[0])).sources[0].load()
    volume = discover(str(tmp_path / "m1.dcm")).sources[0].load()
    assert volume.invert_display and not plain.invert_display
    assert np.array_equal(volume.data, plain.data)  # values stay HU; only the display inverts


def test_mixed_folder_loads_every_series_and_reports_the_broken_file(tmp_path, demo_ct):
    for f in sorted(demo_ct.iterdir()):
        shutil.copy(f, tmp_path / f.name)
    mr = Path(pydicom.data.get_testdata_file("MR_small.dcm"))
    shutil.copy(mr, tmp_path / "mr.dcm")
    (tmp_path / "broken.dcm").write_bytes(b"\0" * 128 + b"DICM" + b"\x02\x00\x10\x00garbage")
    (tmp_path / "notes.txt").write_text("not an image")
    found = discover(str(tmp_path))
    assert sorted(s.modality for s in found.sources) == ["CT", "MR"]
    assert [Path(p.path).name for p in found.problems] == ["broken.dcm"]
    for source in found.sources:
        assert source.load().data.size > 0


import pydicom.data  # noqa: E402


def test_preview_decodes_only_the_middle_slice(ct, demo_ct):
    source, volume = ct
    preview = source.preview()
    assert preview.shape == (1, 512, 512)
    assert np.array_equal(preview.data[0], volume.data[10])
