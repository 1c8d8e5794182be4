"""Every processing operation against its bare library call (tests/support/processing_reference),
on real MRs (the demo hippocampus MR in resources/, always there; a block of
../shared/data/brain_t1, skipped when absent) and on synthetic 3D and 2D images; geometry kept;
labels named."""
from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from medviewer.ai.clustering import all_operations
from medviewer.core.volume import Volume
from medviewer.processing.operations import run_operation
from tests.conftest import DEMO, shared
from tests.support.processing_reference import reference

ALL = sorted(all_operations())
# per operation: parameters that keep a run on a small image fast; everything else is the default
FAST = {"nlmeans": {"patch_size": 3, "patch_distance": 2}, "n4": {"iterations": 10, "levels": 2, "shrink": 2},
        "clahe": {"kernel_size": 8}, "adaptive-threshold": {"block_size": 7},
        "kmeans": {"samples": 10_000_000}, "gmm": {"samples": 10_000_000},
        "resample": {"spacing_x": 1.3, "spacing_y": 0.7, "spacing_z": 2.5},
        "crop": {"x0": 2, "x1": 9, "y0": 1, "y1": 12, "z0": 1, "z1": 3}}
TOLERANCE = {"nlmeans": 1e-4, "anisotropic-diffusion": 1e-4, "n4": 1e-3}


def _phantom(shape, seed=0) -> np.ndarray:
    """Two nested ellipsoids of different brightness with Gaussian noise, int16."""
    rng = np.random.default_rng(seed)
    zz, yy, xx = np.meshgrid(*[np.linspace(-1, 1, n) for n in shape], indexing="ij")
    r = np.sqrt((xx / 0.8) ** 2 + (yy / 0.7) ** 2 + (zz / 0.9) ** 2 * (shape[0] > 1))
    data = np.where(r < 0.9, 300.0, 20.0) + np.where(r < 0.45, 400.0, 0.0) + 60 * xx
    return (data + rng.normal(0, 25, shape)).astype(np.int16)


SYNTHETIC = {
    "3d": Volume(_phantom((6, 16, 14)), spacing=(0.9, 1.1, 2.0), origin=(-3.0, 5.0, 7.5),
                 direction=np.array([[0, 0, 1], [1, 0, 0], [0, 1, 0]], float), metadata={"SeriesDescription": "ph"}),
    "2d": Volume(_phantom((1, 20, 18)), spacing=(0.5, 0.6, 1.0), origin=(1.0, 2.0, 3.0)),
}


def _read(path, block=(slice(None),) * 3) -> Volume:
    image = sitk.ReadImage(str(path))
    data = sitk.GetArrayFromImage(image)[block]
    return Volume(np.ascontiguousarray(data), image.GetSpacing(), image.GetOrigin(),
                  np.reshape(image.GetDirection(), (3, 3)))


@pytest.fixture(scope="module", params=["demo hippocampus MR", "brain_t1 block"])
def real_mr(request) -> Volume:
    if request.param == "demo hippocampus MR":  # 35 x 51 x 35 voxels, uint8
        return _read(DEMO / "mri_hippocampus" / "hippocampus_001.nii.gz")
    # 8 x 40 x 40 voxels through the head
    return _read(shared("brain_t1", "KmeansTest_T1UCharRaw.nii.gz"), np.s_[24:32, 40:80, 44:84])


def _check(name: str, volume: Volume) -> None:
    op = all_operations()[name]
    params = {**op.defaults(volume), **FAST.get(name, {})}
    result = run_operation(name, volume, FAST.get(name))
    expected = reference(name, volume.data, volume.spacing, params, volume.origin, volume.direction)
    if op.output == "labels":
        assert result.volume is None and result.labels is not None
        assert result.labels.data.shape == volume.shape and result.labels.data.dtype == np.uint8
        np.testing.assert_array_equal(result.labels.data, expected)
        present = {int(v) for v in np.unique(expected) if v}
        assert present <= set(result.labels.table.labels)
        assert all(lab.name for lab in result.labels.table)
        return
    assert result.labels is None and result.volume is not None
    out = result.volume
    if name in ("resample", "crop"):
        expected, spacing, corner = expected
        assert out.spacing[: 2 if volume.shape[0] == 1 else 3] == pytest.approx(spacing)
        np.testing.assert_allclose(out.origin, volume.index_to_world(corner), atol=1e-9)
    else:
        assert out.spacing == volume.spacing and out.origin == volume.origin
    np.testing.assert_array_equal(out.direction, volume.direction)
    assert out.metadata == volume.metadata and out.is_2d == volume.is_2d
    assert out.data.shape == expected.shape
    tol = TOLERANCE.get(name, 0.0) * max(float(np.abs(expected).max()), 1.0)
    np.testing.assert_allclose(out.data.astype(np.float64), expected.astype(np.float64), rtol=0, atol=tol + 1e-6)
    assert result.description


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("kind", sorted(SYNTHETIC))
def test_each_operation_is_its_library_call_on_a_synthetic_image(name, kind):
    _check(name, SYNTHETIC[kind])


@pytest.mark.parametrize("name", ALL)
def test_each_operation_is_its_library_call_on_a_real_mr(name, real_mr):
    _check(name, real_mr)


def test_every_operation_of_the_issue_is_there():
    assert set(ALL) == {
        "gaussian", "median", "bilateral", "anisotropic-diffusion", "nlmeans", "histogram-equalisation", "clahe",
        "unsharp-mask", "laplacian-sharpen", "n4", "canny", "gradient-magnitude", "erode", "dilate", "open",
        "close", "threshold", "otsu", "adaptive-threshold", "kmeans", "gmm", "resample", "crop"}
    groups = {op.group for op in all_operations().values()}
    assert groups == {"Denoise", "Enhance", "Bias field", "Edges", "Morphology", "Threshold", "Cluster", "Geometry"}
    assert all_operations()["canny"].output == "overlay" and all_operations()["kmeans"].output == "labels"


def test_nl_means_in_slabs_equals_the_whole_volume_call():
    from skimage.restoration import denoise_nl_means

    volume = Volume(_phantom((90, 12, 10), seed=3), spacing=(1.0, 1.0, 1.0))
    params = {"patch_size": 3, "patch_distance": 1, "h": 20.0}  # reach 2 voxels: slabs of 40 slices
    seen = []
    out = run_operation("nlmeans", volume, params, progress=lambda f, m: seen.append(m)).volume.data
    whole = denoise_nl_means(volume.data.astype(np.float32), fast_mode=True, **params)
    assert sum("slices" in m for m in seen) == 3
    np.testing.assert_allclose(out, whole, atol=1e-3)


def test_clustering_names_classes_from_dark_to_bright_and_leaves_the_minimum_out():
    data = np.zeros((4, 10, 10), np.int16)
    data[:, :, 3:6], data[:, :, 6:8], data[:, :, 8:] = 100, 200, 300
    labels = run_operation("kmeans", Volume(data), {"classes": 3}).labels
    assert [lab.name for lab in labels.table] == ["class 1 (darkest)", "class 2", "class 3 (brightest)"]
    assert (labels.data[:, :, :3] == 0).all() and (labels.data[:, :, 3:6] == 1).all()
    assert (labels.data[:, :, 6:8] == 2).all() and (labels.data[:, :, 8:] == 3).all()


def test_otsu_labels_are_named_with_their_interval():
    labels = run_operation("otsu", SYNTHETIC["3d"], {"classes": 3}).labels
    names = [lab.name for lab in labels.table]
    assert len(names) == 2 and " to " in names[0] and names[1].startswith("above ")


@pytest.mark.parametrize("image, most", [("demo hippocampus MR", 0.10), ("brain_t1 head", 0.25)])
def test_canny_defaults_mark_the_strong_edges_not_the_noise(image, most):
    """The default thresholds are the 90th / 97th percentiles of the head's smoothed gradient: edges
    on a minority of the head's voxels (fractions of the intensity range marked 17 % of the
    hippocampus crop and 48 % of the brain_t1 head), and still some edges."""
    path = (DEMO / "mri_hippocampus" / "hippocampus_001.nii.gz" if image.startswith("demo")
            else shared("brain_t1", "KmeansTest_T1UCharRaw.nii.gz"))
    volume = _read(path)
    low, high = np.percentile(volume.data, [1, 99])
    head = volume.data > low + 0.1 * (high - low)
    edges = run_operation("canny", volume).volume.data > 0
    assert 0.01 < float(edges[head].mean()) < most
