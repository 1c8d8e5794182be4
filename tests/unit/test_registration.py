"""Registration: known rigid / affine / B-spline recoveries with the TRE asserted (a real T1 MR, the
repository's demo hippocampus crop, and the synthetic head), progress and cancel, the fixed image
untouched, the resampled image and carried labels (the MSD labels from ../shared/data, skipped when
absent; synthetic ones always), bad input."""
from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from medviewer.core.errors import Cancelled, MedViewerError
from medviewer.core.labels import LabelMap, LabelTable
from medviewer.core.volume import Volume
from medviewer.processing.registration import (RegistrationSettings, carry_labels, register,
                                               register_from_landmarks, resample)
from tests.conftest import DEMO, shared
from tests.support import registration_cases as cases

DEMO_MR = DEMO / "mri_hippocampus" / "hippocampus_001.nii.gz"  # a real T1 crop in the repository (CI has it)
HIPPO_LABELS = ("hippocampus", "labelsTr", "hippocampus_001.nii.gz")
# small and quick: two levels, a coarse B-spline mesh, few samples (the bench runs the defaults)
QUICK = dict(shrink=(2, 1), smoothing_mm=(1.0, 0.0), sampling=0.1, bspline_iterations=20, bspline_mesh_mm=25.0)


def _fixed(source: str) -> Volume:
    return cases.read_mr(DEMO_MR) if source == "real" else cases.synthetic_head()


def _moving_points(fixed: Volume, deform) -> np.ndarray:
    mask = cases.moved(fixed.copy_geometry(cases.head_mask(fixed).astype(np.float32)), deform).data > 0.5
    return cases.head_points(fixed, mask, most=3000)


@pytest.fixture(params=["real", "synthetic"])
def fixed(request) -> Volume:
    return _fixed(request.param)


@pytest.mark.parametrize("metric", ["mi", "ms"])
def test_rigid_recovery(fixed, metric):
    deform = cases.rigid(fixed)
    moving = cases.moved(fixed, deform)
    if metric == "mi":
        moving = cases.remapped(moving)  # another contrast: only mutual information can match it
    before = fixed.data.copy()
    result = register(fixed, moving, RegistrationSettings(transform="rigid", metric=metric))
    points = _moving_points(fixed, deform)
    assert cases.tre_mm(sitk.Euler3DTransform(), deform, points) > 2.0  # the motion is real
    assert cases.tre_mm(result.transform, deform, points) < 0.5
    assert np.array_equal(fixed.data, before)  # the fixed image is untouched
    assert result.resampled.shape == fixed.shape and result.resampled.spacing == fixed.spacing
    assert np.allclose(result.resampled.direction, fixed.direction) and result.resampled.origin == fixed.origin
    assert result.description == f"registered (rigid, {metric.upper()})" and result.tre_mm is None


def test_affine_recovery(fixed):
    deform = cases.affine(fixed)
    moving = cases.moved(fixed, deform)
    result = register(fixed, moving, RegistrationSettings(transform="affine", **QUICK))
    points = _moving_points(fixed, deform)
    rigid_only = register(fixed, moving, RegistrationSettings(transform="rigid", **QUICK))
    assert cases.tre_mm(rigid_only.transform, deform, points) > 1.0  # a rigid cannot take the scaling
    assert cases.tre_mm(result.transform, deform, points) < 0.5


def test_bspline_recovery(fixed):
    if fixed.size == cases.synthetic_head().size:
        fixed = cases.synthetic_head(size=(32, 40, 30), spacing=(1.4, 1.2, 1.5))  # fewer voxels: quicker
    deform = cases.smooth_deformation(fixed, amplitude_mm=3.0)
    moving = cases.moved(fixed, deform)
    points = _moving_points(fixed, deform)
    result = register(fixed, moving, RegistrationSettings(transform="bspline", **QUICK))
    assert isinstance(result.transform, sitk.CompositeTransform)  # affine(B-spline(x))
    tre_affine = cases.tre_mm(result.transform.GetNthTransform(0), deform, points)  # its affine stage alone
    tre = cases.tre_mm(result.transform, deform, points)
    assert tre < 0.75 and tre < 0.75 * tre_affine, (tre, tre_affine)  # the bench: the full settings


def test_resampled_is_the_moving_image_through_the_transform():
    fixed = cases.synthetic_head()
    deform = cases.rigid(fixed, shift=(3.0, 0.0, -2.0))
    moving = cases.moved(fixed, deform)
    result = register(fixed, moving, RegistrationSettings(**QUICK))
    expected = sitk.Resample(cases.image_of(moving), cases.image_of(fixed), result.transform, sitk.sitkLinear,
                             float(moving.data.min()), sitk.sitkFloat32)
    assert np.array_equal(result.resampled.data, sitk.GetArrayFromImage(expected))
    inside = cases.head_mask(fixed)
    assert np.abs(result.resampled.data[inside] - fixed.data[inside]).mean() < 0.1 * fixed.data[inside].mean()


def test_progress_rises_over_stages_and_levels():
    fixed = cases.synthetic_head()
    moving = cases.moved(fixed, cases.rigid(fixed))
    seen = []
    register(fixed, moving, RegistrationSettings(transform="affine", **QUICK), progress=lambda f, m: seen.append((f, m)))
    fractions = [f for f, _ in seen]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0 and 0 <= fractions[0] < 0.1
    messages = " ".join(m for _, m in seen)
    for part in ("rigid, level 1 of 2", "rigid, level 2 of 2", "affine, level 2 of 2", "done"):
        assert part in messages
    assert any(0.45 < f < 0.55 for f in fractions)  # the affine stage fills the second half


@pytest.mark.parametrize("stage, after", [("rigid", 3), ("bspline", None)])
def test_cancel_raises_and_returns_nothing(stage, after):
    fixed = cases.synthetic_head()
    moving = cases.moved(fixed, cases.rigid(fixed))
    before = fixed.data.copy()
    seen = []

    def cancel():  # during the first stage, or once the B-spline stage has started
        return len(seen) >= after if after else any("B-spline" in m for m in seen)

    with pytest.raises(Cancelled):
        register(fixed, moving, RegistrationSettings(transform=stage, **QUICK),
                 progress=lambda f, m: seen.append(m), cancel=cancel)
    assert np.array_equal(fixed.data, before)
    stopped_at = len(seen)
    assert all(("B-spline" in m) == (stage == "bspline") for m in seen[-1:]) and stopped_at > 0


def test_cancel_before_the_start():
    fixed = cases.synthetic_head()
    with pytest.raises(Cancelled):
        register(fixed, fixed, cancel=lambda: True)


def test_landmarks_start_and_report_tre():
    fixed = cases.synthetic_head()
    deform = cases.rigid(fixed, angles=(0.3, -0.2, 0.35), shift=(8.0, -6.0, 4.0))  # beyond the centring's reach
    moving = cases.moved(fixed, deform)
    rng = np.random.default_rng(5)
    fixed_points = cases.head_points(fixed, cases.head_mask(fixed), most=400)[rng.choice(400, 6, replace=False)]
    inverse = deform.GetInverse()
    moving_points = np.array([inverse.TransformPoint(tuple(p)) for p in fixed_points])
    result = register(fixed, moving, RegistrationSettings(**QUICK), landmarks=(fixed_points, moving_points))
    assert result.tre_mm is not None and result.tre_mm < 0.5
    closed = register_from_landmarks(fixed, moving, fixed_points, moving_points)
    assert closed.tre_mm < 1e-6 and closed.description == "registered (rigid, landmarks)"
    assert closed.resampled.shape == fixed.shape


def test_labels_carried_to_the_fixed_grid():
    fixed = cases.read_mr(DEMO_MR)
    truth = sitk.GetArrayFromImage(sitk.ReadImage(str(shared(*HIPPO_LABELS)))).astype(np.uint8)
    deform = cases.rigid(fixed)
    moving = cases.moved(fixed, deform)
    # the labels of the moving image: the fixed labels through D, nearest neighbour
    moved_labels = sitk.GetArrayFromImage(sitk.Resample(sitk.Cast(cases.image_of(fixed.copy_geometry(truth)),
                                                                  sitk.sitkUInt8),
                                                        cases.image_of(fixed), deform, sitk.sitkNearestNeighbor))
    table = LabelTable()
    table.add("anterior", 1)
    table.add("posterior", 2)
    labels = LabelMap(moving.shape, name="hippocampus", table=table, data=moved_labels)
    result = register(fixed, moving)
    carried = carry_labels(labels, moving, fixed, result.transform)
    assert carried.data.shape == fixed.shape and set(np.unique(carried.data)) <= {0, 1, 2}
    for value in (1, 2):
        a, b = carried.data == value, truth == value
        assert 2 * (a & b).sum() / (a.sum() + b.sum()) > 0.85  # Dice with the fixed image's own labels
    assert carried.table.get(1).name == "anterior" and carried.name == "hippocampus (registered)"
    assert labels.data is not carried.data and np.array_equal(labels.data, moved_labels)


def test_labels_carried_synthetic_nearest_neighbour():
    fixed = cases.synthetic_head()
    moving = fixed.copy_geometry(fixed.data)
    data = (moving.data > 100).astype(np.uint8) * 3  # scalp and white matter: label 3
    labels = LabelMap(moving.shape, data=data)
    shift = sitk.TranslationTransform(3, (2.4, 0.0, 0.0))  # fixed world -> moving world
    carried = carry_labels(labels, moving, fixed, shift)
    assert set(np.unique(carried.data)) == {0, 3}  # nearest neighbour: no blended values
    expected = resample(moving.copy_geometry(data), fixed, shift, labels=True).data
    assert np.array_equal(carried.data, expected)
    # fixed voxel i (x axis flipped, 1.2 mm) lands 2.4 mm further along +x: on moving voxel i - 2
    assert np.array_equal(carried.data[:, :, 2:], data[:, :, :-2]) and not carried.data[:, :, :2].any()


# --- bad input ---------------------------------------------------------------------------------
def test_2d_with_3d_is_refused():
    fixed = cases.synthetic_head()
    flat = Volume(fixed.data[:1], spacing=fixed.spacing, origin=fixed.origin, direction=fixed.direction)
    for a, b in ((fixed, flat), (flat, fixed)):
        with pytest.raises(MedViewerError, match="2D and the .* image is 3D"):
            register(a, b)
    with pytest.raises(MedViewerError, match="two 3D images"):
        register(flat, flat)


def test_no_overlap_is_refused():
    fixed = cases.synthetic_head()
    far = fixed.copy_geometry(fixed.data, origin=tuple(np.add(fixed.origin, (400.0, 0.0, 0.0))))
    with pytest.raises(MedViewerError, match="do not overlap"):
        register(fixed, far, RegistrationSettings(initialisation="none"))
    # centring puts them on top of each other: then it registers
    result = register(fixed, far, RegistrationSettings(initialisation="geometry", **QUICK))
    assert abs(result.transform.GetTranslation()[0] - 400.0) < 1.0


def test_flat_image_and_bad_settings_are_refused():
    fixed = cases.synthetic_head()
    blank = fixed.copy_geometry(np.zeros_like(fixed.data))
    with pytest.raises(MedViewerError, match="one value everywhere"):
        register(fixed, blank)
    rgb = Volume(np.zeros(fixed.shape + (3,), np.uint8))
    with pytest.raises(MedViewerError, match="colour"):
        register(fixed, rgb)
    for bad in (dict(transform="demons"), dict(metric="cc"), dict(sampling=0.0), dict(shrink=(2, 1), smoothing_mm=(1,)),
                dict(initialisation="random")):
        with pytest.raises(MedViewerError):
            register(fixed, fixed, RegistrationSettings(**bad))


def test_divergence_is_a_clean_error():
    fixed = cases.synthetic_head()
    moving = cases.moved(fixed, cases.rigid(fixed))
    before = fixed.data.copy()
    # a first step of 200 mm throws the moving image off the fixed one: ITK stops, the user reads why
    with pytest.raises(MedViewerError) as info:
        register(fixed, moving, RegistrationSettings(step_mm=200.0, **QUICK))
    message = str(info.value)
    assert "stopped overlapping" in message and "\n" not in message and "ITK" not in message
    assert np.array_equal(fixed.data, before)
