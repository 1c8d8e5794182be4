"""Reading, showing and writing a file hold its voxels once (issue 12, deliver 9).

FileImage.load reads into a SimpleITK buffer that numpy can write (medviewer.io.sitk_buffer):
NIfTI straight from the file (or in slabs when ITK converts the values), other formats by ITK
whole; the writer hands that buffer back to SimpleITK without a copy. The values must be
exactly SimpleITK's, the memory check comes before any voxel is read, and a damaged stream is
one clean error. The peak memory itself is measured in tests/bench/test_memory_bench.py.
"""
from __future__ import annotations

import gzip

import nibabel as nib
import numpy as np
import pytest
import SimpleITK as sitk

import medviewer.io.sitk_image as sitk_image
from medviewer.core.errors import ImageReadError
from medviewer.core.memory import TooLarge
from medviewer.core.volume import Volume
from medviewer.io import write_volume
from medviewer.io.sitk_buffer import image_behind, writeable_array
from medviewer.io.sitk_image import inspect_file
from medviewer.io.writer import to_sitk

RNG = np.random.default_rng(12)
_C, _S = np.cos(0.3), np.sin(0.3)
AFFINE = np.array([[-0.8 * _C, -0.9 * _S, 0, 30], [-0.8 * _S, 0.9 * _C, 0, -40], [0, 0, 2.5, 12], [0, 0, 0, 1]])


def _nibabel(path, data, endianness="<", slope=None):
    header = nib.Nifti1Header(endianness=endianness)
    image = nib.Nifti1Image(data, AFFINE, header=header)
    if slope is not None:
        image.header.set_slope_inter(*slope)
    nib.save(image, str(path))


def _sitk(path, data, vector=False):
    sitk.WriteImage(sitk.GetImageFromArray(data, isVector=vector), str(path))


# (file name, writer): each a different way through FileImage.load
CASES = {
    "int16.nii": lambda p: _nibabel(p, RNG.integers(-900, 900, (7, 6, 5)).astype(np.int16)),
    "float64.nii.gz": lambda p: _nibabel(p, RNG.normal(size=(5, 4, 6))),
    "uint8-big-endian.nii": lambda p: _nibabel(p, RNG.integers(0, 255, (4, 5, 3)).astype(np.uint8), ">"),
    "int32-big-endian.nii.gz": lambda p: _nibabel(p, RNG.integers(-9, 9, (4, 5, 3)).astype(np.int32), ">"),
    "scaled-int16.nii.gz": lambda p: _nibabel(p, RNG.integers(0, 500, (6, 5, 9)).astype(np.int16), slope=(0.5, -3)),
    "time.nii.gz": lambda p: _nibabel(p, RNG.integers(0, 99, (5, 4, 3, 4)).astype(np.int16)),
    "volume.nrrd": lambda p: _sitk(p, RNG.integers(0, 99, (6, 5, 4)).astype(np.uint16)),
    "volume.mha": lambda p: _sitk(p, RNG.normal(size=(3, 5, 4)).astype(np.float32)),
    "rgb.png": lambda p: _sitk(p, RNG.integers(0, 255, (5, 7, 3)).astype(np.uint8), vector=True),
}


def _reference(path, timepoint):
    image = sitk.ReadImage(str(path))
    if image.GetDimension() == 4:
        image = sitk.Extract(image, list(image.GetSize()[:3]) + [0], [0, 0, 0, timepoint])
    array = sitk.GetArrayFromImage(image)
    return array[np.newaxis] if image.GetDimension() == 2 else array


@pytest.mark.parametrize("slab_bytes", [sitk_image.SLAB_BYTES, 40], ids=["one slab", "slabs of a few voxels"])
@pytest.mark.parametrize("name", list(CASES))
def test_loaded_voxels_are_simpleitks_own(tmp_path, monkeypatch, name, slab_bytes):
    monkeypatch.setattr(sitk_image, "SLAB_BYTES", slab_bytes)
    monkeypatch.setattr(sitk_image, "GZ_SLABS", 1 if slab_bytes == sitk_image.SLAB_BYTES else 3)
    path = tmp_path / name
    CASES[name](path)
    for source in inspect_file(str(path)):
        expected = _reference(path, source.timepoint or 0)
        volume = source.load()
        assert volume.data.dtype == expected.dtype and volume.data.shape == expected.shape
        assert np.array_equal(volume.data, expected, equal_nan=True)
        assert volume.data.flags.writeable  # tools may change the voxels in place
        preview = source.preview()  # the thumbnail's slice, read alone
        assert np.array_equal(preview.data[0], expected[expected.shape[0] // 2])


def test_a_loaded_volume_is_written_from_its_own_buffer(tmp_path):
    src, out = tmp_path / "in.nii", tmp_path / "out.nii.gz"
    _nibabel(src, RNG.integers(-900, 900, (8, 7, 6)).astype(np.int16))
    volume = inspect_file(str(src))[0].load()
    volume.data[0, 0, 0] = 1234  # changed in place: what is written is what is shown
    image = to_sitk(volume)
    assert sitk.GetArrayViewFromImage(image).__array_interface__["data"][0] == volume.data.__array_interface__["data"][0]
    write_volume(volume, str(out))
    written = sitk.ReadImage(str(out))
    assert np.array_equal(sitk.GetArrayFromImage(written), volume.data)
    assert np.allclose(written.GetOrigin(), volume.origin) and np.allclose(written.GetSpacing(), volume.spacing)
    derived = volume.copy_geometry(volume.data[:, ::-1])  # another array: copied, the source untouched
    assert image_behind(derived.data) is None
    assert sitk.GetArrayViewFromImage(to_sitk(derived)).__array_interface__["data"][0] != \
        volume.data.__array_interface__["data"][0]


def test_the_array_keeps_its_image_alive():
    image = sitk.Image(4, 3, 2, sitk.sitkInt16)
    array = writeable_array(image)
    del image
    array[...] = 7
    assert int(array.sum()) == 7 * 24 and image_behind(array) is not None
    assert image_behind(array[1:]) is None and image_behind(array.astype(np.int32)) is None


def test_a_volume_too_large_for_memory_is_refused_before_it_is_read(tmp_path, monkeypatch):
    path = tmp_path / "big.nii.gz"
    _nibabel(path, np.zeros((64, 64, 64), np.float64))  # 2 MB of voxels
    source = inspect_file(str(path))[0]
    monkeypatch.setenv("MEDVIEWER_MEMORY_LIMIT", "1M")
    with pytest.raises(TooLarge) as info:
        source.load()
    message = str(info.value)
    assert message.startswith(str(path)) and "64x64x64" in message and "\n" not in message
    with pytest.raises(TooLarge, match="writing the 64x64x64"):  # the writer's copy of an array, too
        to_sitk(Volume(np.zeros((64, 64, 64), np.float64)))


def test_a_damaged_compressed_stream_is_one_clean_error(tmp_path):
    path = tmp_path / "damaged.nii.gz"
    _nibabel(path, RNG.integers(-900, 900, (64, 64, 64)).astype(np.int16))
    raw = bytearray(gzip.compress(gzip.decompress(path.read_bytes()), compresslevel=1))
    late = len(raw) * 3 // 4  # in the voxels, after the header: the trailer (length, CRC) stays
    raw[late:late + 64] = bytes(64)
    path.write_bytes(bytes(raw))
    source = inspect_file(str(path))[0]
    with pytest.raises(ImageReadError) as info:
        source.load()
    assert str(info.value).startswith(str(path)) and "\n" not in str(info.value)


def test_a_dicom_series_is_written_from_its_own_buffer(demo_ct, tmp_path):
    from medviewer.io import discover

    volume = discover(str(demo_ct)).sources[0].load()
    image = to_sitk(volume)
    assert sitk.GetArrayViewFromImage(image).__array_interface__["data"][0] == volume.data.__array_interface__["data"][0]
    out = tmp_path / "ct.nii.gz"
    write_volume(volume, str(out))
    assert np.array_equal(sitk.GetArrayFromImage(sitk.ReadImage(str(out))), volume.data)
