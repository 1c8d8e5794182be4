"""A single slice is written as a 3D image of one slice with its full direction and origin.

Issue 12, deliver 2: a DICOM slice of any orientation (axial, sagittal, coronal, oblique) converted
by `medviewer convert` must put every voxel where SimpleITK's own reading of the DICOM puts it
(ReadImage and ImageSeriesReader), as read back by SimpleITK, by nibabel and by medviewer. Before,
it was written as a 2D image with direction[:2, :2]: an axial slice lost its z, an oblique one
moved, a sagittal or coronal one failed with "Bad direction, determinant is 0".
A 2D picture without patient geometry (PNG, JPEG) stays a 2D image, as it round-trips best: ITK
and nibabel read a 2D NIfTI, and medviewer reads it back as the same 2D image.

The slices are made from scratch with pydicom (in CI) and from a real CT slice of
../shared/data/dicom/ct_series_20 with its orientation and position rewritten (skipped when absent).
"""
from __future__ import annotations

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk

from medviewer.cli import main
from medviewer.io import discover
from tests.conftest import SHARED_DATA
from tests.support.synthetic_dicom import new_dataset

TOLERANCE_MM = 1e-3
LPS_FROM_RAS = np.diag([-1.0, -1.0, 1.0])


def _rotation(ax: float, ay: float, az: float) -> np.ndarray:
    cx, sx, cy, sy, cz, sz = np.cos(ax), np.sin(ax), np.cos(ay), np.sin(ay), np.cos(az), np.sin(az)
    rx = np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
    ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    rz = np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
    return rz @ ry @ rx


_OBLIQUE = _rotation(np.radians(25), np.radians(-35), np.radians(40))
ORIENTATIONS = {  # ImageOrientationPatient (row direction, column direction), ImagePositionPatient
    "axial": ((1, 0, 0, 0, 1, 0), (-120.5, -80.25, -312.0)),
    "sagittal": ((0, 1, 0, 0, 0, -1), (-20.0, -100.0, 50.0)),
    "coronal": ((1, 0, 0, 0, 0, -1), (-150.0, 33.5, 80.0)),
    "oblique": (tuple(_OBLIQUE[:, 0]) + tuple(_OBLIQUE[:, 1]), (41.3, -72.8, 118.6)),
}
OUTPUTS = (".nii.gz", ".nii", ".nrrd", ".mha")


def _synthetic_slice(path, orientation, position, rows=6, columns=5):
    from pydicom.uid import CTImageStorage

    ds = new_dataset(CTImageStorage, "CT")
    ds.ImageOrientationPatient = [float(v) for v in orientation]
    ds.ImagePositionPatient = [float(v) for v in position]
    ds.PixelSpacing, ds.SliceThickness = [0.7, 0.9], 2.5  # rows 0.7 mm apart, columns 0.9 mm
    ds.Rows, ds.Columns, ds.SamplesPerPixel = rows, columns, 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
    ds.RescaleIntercept, ds.RescaleSlope = 0, 1
    ds.PixelData = (np.arange(rows * columns, dtype=np.int16).reshape(rows, columns) * 7 - 50).tobytes()
    ds.save_as(path, enforce_file_format=True)


def _real_slice(path, orientation, position):
    folder = SHARED_DATA / "dicom" / "ct_series_20"
    files = sorted(p for p in folder.iterdir() if p.is_file()) if folder.is_dir() else []
    if not files:
        pytest.skip(f"shared data not available: {folder}")
    ds = pydicom.dcmread(files[0])
    ds.ImageOrientationPatient = [float(v) for v in orientation]
    ds.ImagePositionPatient = [float(v) for v in position]
    ds.save_as(path)


def _voxel_centres(size) -> np.ndarray:
    """(x, y, z) indices of a one-slice grid (every voxel of a small one, an 8x8 sample with the
    first and last row and column of a large one) and the slice's four outer corners."""
    nx, ny = size[0], size[1]
    xs, ys = (np.unique(np.linspace(0, n - 1, min(n, 8)).round()) for n in (nx, ny))
    grid = np.stack(np.meshgrid(xs, ys, [0], indexing="ij"), -1).reshape(-1, 3)
    corners = np.array([[-0.5, -0.5, 0], [nx - 0.5, -0.5, 0], [-0.5, ny - 0.5, 0], [nx - 0.5, ny - 0.5, 0]])
    return np.vstack([grid, corners]).astype(float)


def _world_sitk(image: sitk.Image, ijk: np.ndarray) -> np.ndarray:
    n = image.GetDimension()
    return np.array([image.TransformContinuousIndexToPhysicalPoint(tuple(float(v) for v in p[:n]))
                     for p in ijk])


def _world_nibabel(path, ijk: np.ndarray) -> np.ndarray:
    import nibabel as nib

    affine = nib.load(str(path)).affine  # voxel -> RAS mm
    ras = ijk @ affine[:3, :3].T + affine[:3, 3]
    return ras @ LPS_FROM_RAS.T


def _series_read(folder) -> sitk.Image:
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(folder)))
    return reader.Execute()


@pytest.mark.parametrize("make", [_synthetic_slice, _real_slice], ids=["synthetic", "real CT"])
@pytest.mark.parametrize("name", list(ORIENTATIONS))
def test_a_single_dicom_slice_converts_to_one_slice_in_the_same_place(tmp_path, make, name):
    orientation, position = ORIENTATIONS[name]
    folder = tmp_path / "dicom"
    folder.mkdir()
    dcm = folder / "slice.dcm"
    make(dcm, orientation, position)
    truth = sitk.ReadImage(str(dcm))
    assert truth.GetDimension() == 3 and truth.GetSize()[2] == 1
    ijk = _voxel_centres(truth.GetSize())
    expected = _world_sitk(truth, ijk)
    assert np.abs(_world_sitk(_series_read(folder), ijk) - expected).max() < TOLERANCE_MM
    for ext in OUTPUTS:
        out = tmp_path / f"slice{ext}"
        assert main(["convert", str(dcm), str(out)]) == 0
        written = sitk.ReadImage(str(out))
        assert written.GetDimension() == 3 and written.GetSize() == truth.GetSize(), ext
        assert np.abs(_world_sitk(written, ijk) - expected).max() < TOLERANCE_MM, ext
        assert np.array_equal(sitk.GetArrayFromImage(written), sitk.GetArrayFromImage(truth)), ext
        if ext.startswith(".nii"):
            assert np.abs(_world_nibabel(out, ijk) - expected).max() < TOLERANCE_MM, ext
        volume = discover(str(out)).sources[0].load()  # medviewer reads it back: same grid
        assert volume.is_2d and volume.size == truth.GetSize(), ext
        assert np.abs(volume.index_to_world(ijk) - expected).max() < TOLERANCE_MM, ext
        assert np.array_equal(volume.data, sitk.GetArrayFromImage(truth)), ext


def test_a_slice_read_back_is_written_again_in_the_same_place(tmp_path):
    orientation, position = ORIENTATIONS["oblique"]
    dcm = tmp_path / "slice.dcm"
    _synthetic_slice(dcm, orientation, position)
    first, second = tmp_path / "first.nii.gz", tmp_path / "second.nrrd"
    assert main(["convert", str(dcm), str(first)]) == 0
    assert main(["convert", str(first), str(second)]) == 0
    a, b = sitk.ReadImage(str(first)), sitk.ReadImage(str(second))
    ijk = _voxel_centres(a.GetSize())
    assert b.GetDimension() == 3
    assert np.abs(_world_sitk(a, ijk) - _world_sitk(b, ijk)).max() < TOLERANCE_MM
    assert np.allclose(a.GetSpacing(), b.GetSpacing())


@pytest.mark.parametrize("ext", [".nii.gz", ".nrrd", ".mha"])
def test_a_2d_picture_without_patient_geometry_stays_2d(tmp_path, ext):
    pixels = (np.arange(7 * 9, dtype=np.uint8).reshape(7, 9) * 3)
    png = tmp_path / "xray.png"
    sitk.WriteImage(sitk.GetImageFromArray(pixels), str(png))
    out = tmp_path / f"xray{ext}"
    assert main(["convert", str(png), str(out)]) == 0
    written = sitk.ReadImage(str(out))
    assert written.GetDimension() == 2 and written.GetSize() == (9, 7)
    assert np.array_equal(sitk.GetArrayFromImage(written), pixels)
    if ext == ".nii.gz":
        import nibabel as nib

        assert nib.load(str(out)).shape == (9, 7)
    volume = discover(str(out)).sources[0].load()
    assert volume.is_2d and volume.shape == (1, 7, 9) and np.array_equal(volume.data[0], pixels)
