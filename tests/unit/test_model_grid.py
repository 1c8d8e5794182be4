"""Pre/post-processing geometry: a prediction on a flipped, resampled or oblique copy of an image
lands on the same anatomy as on the original; the out-of-memory ladder of the inference pipeline."""
import numpy as np
import pytest
import SimpleITK as sitk

from medviewer.ai.model_grid import on_grid, to_model_grid
from medviewer.core.errors import MedViewerError
from medviewer.core.volume import Volume
from tests.conftest import DEMO, REPO

SHIPPED = REPO / "resources" / "models" / "hippocampus-unet"
DEMO_MRI = DEMO / "mri_hippocampus" / "hippocampus_001.nii.gz"


def _dice(a, b):
    a, b = np.asarray(a, bool), np.asarray(b, bool)
    return 2 * (a & b).sum() / max(a.sum() + b.sum(), 1)


def _sitk(volume: Volume, data=None) -> sitk.Image:
    image = sitk.GetImageFromArray(np.ascontiguousarray(volume.data if data is None else data))
    image.SetSpacing(volume.spacing)
    image.SetOrigin(volume.origin)
    image.SetDirection(tuple(volume.direction.ravel()))
    return image


def _volume(image: sitk.Image, modality="MR") -> Volume:
    return Volume(sitk.GetArrayFromImage(image), spacing=image.GetSpacing(), origin=image.GetOrigin(),
                  direction=np.array(image.GetDirection()).reshape(3, 3), modality=modality)


def _onto(image: sitk.Image, reference: Volume, interp=sitk.sitkNearestNeighbor) -> np.ndarray:
    ref = sitk.Image([int(v) for v in reference.size], image.GetPixelID())
    ref.SetSpacing(reference.spacing)
    ref.SetOrigin(reference.origin)
    ref.SetDirection(tuple(reference.direction.ravel()))
    return sitk.GetArrayFromImage(sitk.Resample(image, ref, sitk.Transform(), interp, 0))


def test_an_input_on_the_model_grid_is_not_touched():
    v = Volume(np.arange(24, dtype=np.int16).reshape(2, 3, 4), spacing=(1, 1, 1), modality="MR")
    grid = to_model_grid(v, (1, 1, 1), np.eye(3))
    assert grid.volume is v and not grid.resampled
    probs = np.random.default_rng(0).random((3,) + v.shape)
    assert grid.back(probs) is probs


def test_a_flip_is_resampled_exactly_and_comes_back_exactly():
    rng = np.random.default_rng(1)
    data = rng.normal(size=(5, 6, 7)).astype(np.float32)
    model = Volume(data, spacing=(1.0, 2.0, 3.0), origin=(10, 20, 30), direction=np.diag([-1, -1, 1]))
    # the same physical image stored with the x axis reversed
    flipped_direction = np.diag([1, -1, 1])
    far_x = model.index_to_world((6, 0, 0))
    flipped = Volume(data[:, :, ::-1].copy(), spacing=model.spacing, origin=tuple(far_x),
                     direction=flipped_direction)
    grid = to_model_grid(flipped, model.spacing, model.direction)
    assert grid.resampled and on_grid(grid.volume, model.spacing, model.direction)
    assert grid.volume.shape == model.shape
    np.testing.assert_allclose(grid.volume.origin, model.origin, atol=1e-6)
    np.testing.assert_allclose(grid.volume.data, data, atol=1e-5)
    back = grid.back(grid.volume.data[None])[0]
    np.testing.assert_allclose(back, flipped.data, atol=1e-5)


def test_an_oblique_input_gets_an_axis_aligned_grid_covering_it():
    v = Volume(np.ones((10, 10, 10), np.float32), spacing=(1, 1, 1))
    angle = np.deg2rad(30)
    rot = np.array([[np.cos(angle), -np.sin(angle), 0], [np.sin(angle), np.cos(angle), 0], [0, 0, 1]])
    oblique = v.copy_geometry(v.data, direction=rot)
    grid = to_model_grid(oblique, (1, 1, 1), np.eye(3))
    x_extent = 9 * (np.cos(angle) + np.sin(angle))
    assert grid.volume.size[0] == int(np.ceil(x_extent)) + 1 and grid.volume.size[2] == 10
    assert np.array_equal(grid.volume.direction, np.eye(3))
    back = grid.back(grid.volume.data[None])[0]
    assert back[2:-2, 2:-2, 2:-2].min() > 0.99  # the interior comes back as it was


@pytest.fixture(scope="module")
def hippocampus():
    pytest.importorskip("monai")
    if not (SHIPPED / "manifest.json").is_file():
        pytest.skip("the shipped hippocampus-unet model is not there")
    from medviewer.ai.registry import read_manifest
    from medviewer.ai.tasks.segmentation import Segmentation
    from medviewer.io import open_volume

    spec = read_manifest(SHIPPED)
    volume = open_volume(DEMO_MRI)
    reference = Segmentation(spec)(volume, "cpu").labels
    return spec, volume, reference, lambda spec, volume, device: {"labels": Segmentation(spec)(volume, device).labels}


def test_prediction_on_a_flipped_input_lands_on_the_same_voxels(hippocampus):
    spec, volume, reference, segment = hippocampus
    d = volume.direction.copy()
    d[:, 1] *= -1
    flipped = volume.copy_geometry(volume.data[:, ::-1, :].copy(), direction=d,
                                   origin=tuple(volume.index_to_world((0, volume.size[1] - 1, 0))))
    labels = segment(spec, flipped, device="cpu")["labels"]
    assert labels.origin == flipped.origin and np.array_equal(labels.direction, d)
    assert np.array_equal(labels.data[:, ::-1, :], reference.data)


def test_prediction_on_a_resampled_input_lands_on_the_same_anatomy(hippocampus):
    spec, volume, reference, segment = hippocampus
    image = _sitk(volume, volume.data.astype(np.float32))
    fine = sitk.Resample(image, [int(n * 1.6) for n in image.GetSize()], sitk.Transform(), sitk.sitkLinear,
                         image.GetOrigin(), [s / 1.6 for s in image.GetSpacing()], image.GetDirection(), 0.0)
    fine_volume = _volume(fine)
    labels = segment(spec, fine_volume, device="cpu")["labels"]
    assert labels.shape == fine_volume.shape
    back = _onto(_sitk(labels, labels.data), volume)
    for lab in (1, 2):
        assert _dice(back == lab, reference.data == lab) > 0.85, lab


def test_prediction_on_an_oblique_input_lands_on_the_same_anatomy(hippocampus):
    spec, volume, reference, segment = hippocampus
    image = _sitk(volume, volume.data.astype(np.float32))
    centre = image.TransformContinuousIndexToPhysicalPoint([(n - 1) / 2 for n in image.GetSize()])
    rotation = sitk.Euler3DTransform(centre, 0.0, 0.0, np.deg2rad(25))
    direction = np.array(rotation.GetMatrix()).reshape(3, 3) @ volume.direction
    origin = rotation.TransformPoint(volume.origin)
    # the same anatomy sampled on a grid rotated by 25 degrees about the centre
    oblique_ref = volume.copy_geometry(np.zeros(volume.shape, np.float32), direction=direction, origin=origin)
    oblique = _volume(sitk.GetImageFromArray(_onto(image, oblique_ref, sitk.sitkLinear)))
    oblique = oblique_ref.copy_geometry(oblique.data, modality="MR")
    labels = segment(spec, oblique, device="cpu")["labels"]
    assert np.allclose(labels.direction, direction)
    truth = _onto(_sitk(reference, reference.data), oblique)  # the reference labels on the oblique grid
    for lab in (1, 2):
        assert _dice(labels.data == lab, truth == lab) > 0.75, lab


def test_out_of_memory_ladder_smaller_windows_then_cpu():
    torch = pytest.importorskip("torch")
    from medviewer.ai.tasks.base import run_with_fallback

    calls, said = [], []

    def run(device, window):
        calls.append((device, window))
        if device.startswith("cuda"):
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return "ok"

    result, device = run_with_fallback(run, "cuda", (64, 128, 64), said.append)
    assert (result, device) == ("ok", "cpu")
    assert calls == [("cuda", (64, 128, 64)), ("cuda", (64, 64, 64)), ("cuda", (32, 64, 64)),
                     ("cuda", (32, 32, 64)), ("cuda", (32, 32, 32)), ("cuda", (16, 32, 32)),
                     ("cuda", (16, 16, 32)), ("cuda", (16, 16, 16)), ("cpu", (64, 128, 64))]
    assert "running on the CPU" in said[-1]

    def cpu_oom(device, window):
        raise RuntimeError("[enforce fail at alloc_cpu.cpp:117] DefaultCPUAllocator: can't allocate memory: "
                           "you tried to allocate 99 bytes. Error code 12 (out of memory)")

    with pytest.raises(MedViewerError, match="out of memory on the CPU"):
        run_with_fallback(cpu_oom, "cpu", (16, 16, 16), said.append)

    def other(device, window):
        raise RuntimeError("shape mismatch")

    with pytest.raises(RuntimeError, match="shape mismatch"):
        run_with_fallback(other, "cuda", (16, 16, 16), said.append)


def test_out_of_memory_without_a_window_goes_straight_to_the_cpu():
    torch = pytest.importorskip("torch")
    from medviewer.ai.tasks.base import run_with_fallback

    calls = []

    def run(device, window):
        calls.append((device, window))
        if device == "cuda:1":
            raise torch.cuda.OutOfMemoryError("CUDA out of memory")
        return 1

    assert run_with_fallback(run, "cuda:1", None, lambda m: None) == (1, "cpu")
    assert calls == [("cuda:1", None), ("cpu", None)]


def test_channel_argmax_is_numpy_argmax():
    from medviewer.ai.tasks.segmentation import channel_argmax

    rng = np.random.default_rng(0)
    probs = rng.random((4, 5, 6, 7)).astype(np.float32)
    probs[2, 0, 0, 0] = probs[1, 0, 0, 0] = probs[:, 0, 0, 0].max()  # a tie: the first maximum wins
    labels, foreground = channel_argmax(probs)
    assert labels.dtype == np.uint8 and np.array_equal(labels, probs.argmax(0))
    assert np.allclose(foreground, probs[1:].max(0))
