"""The checked corpus: medviewer's reading of real DICOM against dcm2niix's reference NIfTI
(dcm_qa_nih GE + Siemens mosaics, the transfer-syntax set, enhanced MR), SimpleITK (the Agfa
`*.img` exports, also against each other) and nibabel (its bundled Siemens DWI mosaics, .dcm.gz,
an empty SliceThickness, mosaics whose tiles do not fill the frame).

Each series is read as the viewer does (discover + load) and as `medviewer convert` writes it, once
per module, and must give the reference's voxel grid in world space (a signed axis permutation
with integer offsets, within 1e-3 voxel), the same values up to the stated scaling, the same number
of volumes and, where the reference has them, the same b-values and gradient directions. The
comparison is tests/support (shared with scripts/compare_dcm2niix.py, which prints the table).
Skipped when ../shared/data is absent (nibabel's files are checked whenever nibabel is installed).
"""
from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import SHARED_DATA
from tests.support.dcm2niix_reference import VIAS, convert_options, corpus_cases, nibabel_cases, run_case
from tests.support.world_images import Image, compare, grid_mapping, in_reference_order

CASES = corpus_cases(SHARED_DATA) if SHARED_DATA.is_dir() else nibabel_cases()


@pytest.fixture(scope="module")
def corpus_rows(tmp_path_factory):
    """run_case per case, computed on first use and kept for the module."""
    cache: dict[str, list] = {}
    folder = tmp_path_factory.mktemp("dcm2niix_corpus")
    mp = pytest.MonkeyPatch()
    mp.setenv("MEDVIEWER_DATA_DIR", str(folder / "user"))  # logs of unexpected errors stay here
    options = convert_options()

    def rows(case):
        if case.id not in cache:
            cache[case.id] = run_case(case, folder, options)
        return cache[case.id]

    yield rows
    mp.undo()


@pytest.mark.parametrize("via", VIAS)
@pytest.mark.parametrize("case", CASES or [pytest.param(None, marks=pytest.mark.skip(
    reason=f"no corpus: shared data not available at {SHARED_DATA} and nibabel not installed"))],
    ids=lambda c: c.id if c is not None else "none")
def test_series_matches_reference(case, via, corpus_rows):
    if not case.input.exists():
        pytest.skip(f"shared data not available: {case.input}")
    row = next(r for r in corpus_rows(case) if r.via == via)
    assert row.passed, (f"{case.corpus} {case.series} vs {case.reference} ({via}): medviewer {row.size} "
                        f"vs {row.ref_size}: {row.verdict}")


# --- the comparison itself, on synthetic grids: it must tell equal from unequal -----------------
def _image(shape=(4, 3, 2), affine=None, seed=0) -> Image:
    data = np.random.default_rng(seed).integers(0, 1000, size=shape).astype(float)
    return Image.of(data, np.eye(4) if affine is None else affine)


def _flipped_rows(image: Image) -> Image:
    """The same voxels stored with y reversed (as dcm2niix stores rows): another affine, same world."""
    flip = np.eye(4)
    flip[1, 1], flip[1, 3] = -1, image.shape[1] - 1
    return Image.of(image.data[:, ::-1], image.affine @ flip)


def test_same_voxels_in_another_axis_order_are_equal():
    ref = _image(affine=np.diag([2.0, 3.0, 4.0, 1.0]))
    mine = _flipped_rows(ref)
    swap = np.eye(4)[[1, 0, 2, 3]]  # x and y exchanged in storage
    mine = Image.of(mine.data.transpose(1, 0, 2, 3), mine.affine @ swap)
    perm, sign = grid_mapping(mine, ref)
    assert (perm, sign) == ([1, 0, 2], [-1, 1, 1])
    assert np.array_equal(in_reference_order(mine.data, perm, sign), ref.data)
    outcome = compare(mine, ref)
    assert outcome.passed and outcome.corner_mm < 1e-9


def test_half_voxel_shift_and_wrong_pixels_are_caught():
    ref = _image(affine=np.diag([2.0, 3.0, 4.0, 1.0]))
    shifted = Image.of(ref.data, ref.affine @ np.array([[1, 0, 0, 0.5], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]]))
    outcome = compare(shifted, ref)
    assert not outcome.passed and "off the reference grid" in outcome.grid and outcome.corner_mm == pytest.approx(1.0)
    wrong = Image.of(ref.data * 1.01, ref.affine)  # a rescale slope 1 % off
    outcome = compare(wrong, ref)
    assert outcome.grid == "ok" and not outcome.pixels_ok and not outcome.passed


def test_a_lone_slice_must_keep_its_position():
    ref = _image(shape=(4, 3, 1), affine=np.diag([2.0, 3.0, 5.0, 1.0]))
    placeholder = Image.of(ref.data, np.diag([2.0, 3.0, 1.0, 1.0]))  # 1 mm thickness: still the same slice
    assert compare(placeholder, ref).passed
    moved = placeholder.affine.copy()
    moved[2, 3] = 10.0  # two reference slices away
    outcome = compare(Image.of(ref.data, moved), ref)
    assert not outcome.passed and "shifted" in outcome.grid


def test_philips_floating_point_reference_compares_through_its_stated_scaling():
    ref = _image()
    ref.display_factor = 2.5  # display values = FP * RescaleSlope * ScaleSlope, from the JSON sidecar
    display = Image.of(ref.data * 2.5, ref.affine)
    assert compare(display, ref, values="display").passed
    assert not compare(display, ref, values="fp").passed
    assert compare(Image.of(ref.data, ref.affine), ref, values="fp").passed


def test_b_values_and_gradients_are_compared():
    ref = _image(shape=(4, 3, 2, 2))
    ref.bvals, ref.bvecs = np.array([0.0, 1000.0]), np.array([[0, 0, 0], [1.0, 0, 0]])
    mine = Image.of(ref.data, ref.affine)
    assert compare(mine, ref).diffusion == "no b-values"
    mine.bvals, mine.bvecs = np.array([0.0, 1000.0]), np.array([[0, 0, 0], [-1.0, 0, 0]])  # -g is g
    assert compare(mine, ref).passed
    mine.bvecs = np.array([[0, 0, 0], [0, 1.0, 0]])
    assert "gradient of volume 1" in compare(mine, ref).diffusion


def test_fsl_bvecs_are_read_in_the_image_axes_with_x_negated_for_a_positive_determinant():
    from tests.support.world_images import fsl_bvecs_to_world

    las = np.diag([-2.0, 2.0, 2.0, 1.0])  # dcm2niix's usual storage: determinant < 0, no flip
    ras = np.diag([2.0, 2.0, 2.0, 1.0])  # determinant > 0: FSL's x is the opposite of the voxel x
    g = np.array([[0.6], [0.8], [0.0]])
    assert np.allclose(fsl_bvecs_to_world(g, las), [[-0.6, 0.8, 0.0]])
    assert np.allclose(fsl_bvecs_to_world(g, ras), [[-0.6, 0.8, 0.0]])  # the same world direction
