"""Denoising on a real MR (../shared/data/brain_t1, 128x128x62 T1) with added Gaussian and Rician
noise (fixed seed): PSNR and SSIM (skimage.metrics) before and after each denoiser, and the median
time through run_operation against the bare library call on the same array in the same run.

Run: python -m pytest tests/bench/test_denoise_bench.py --bench -s
Baseline: tests/support/processing_reference.reference, the bare SimpleITK / scikit-image call on the
numpy array (its conversion to and from a SimpleITK image included, as any caller holding an
array pays it). Runs alternate (operation, bare, operation, ...) so that a busy machine slows both
alike. Both the wall time and the CPU time of this process (all its threads: what other programs
on a shared machine do not inflate) are reported; the ratio asserted is the CPU time's (a first
run here, with other jobs on the 2 cores, had one wall-time ratio of 1.30 from 3 runs of 7-9 s for
the same call). Criteria (the issue's): time ratio <= 1.1 for each denoiser; the output equals the bare
call's; each denoiser raises the PSNR on Gaussian noise (on Rician noise the gain is reported: its
bias, ~1.25 sigma in the background, stays after any smoothing, and the median filter measured a
slight loss).
Parameters: each denoiser's own defaults where they do not depend on the noise; the strengths that
do (bilateral range sigma, non-local means h) are set from the known noise sigma, as a user would
tune them.
"""
import statistics
import time

import numpy as np
import pytest
import SimpleITK as sitk

from medviewer.ai.clustering import all_operations
from medviewer.core.volume import Volume
from medviewer.processing.operations import run_operation
from tests.conftest import shared
from tests.support.processing_reference import reference

pytestmark = pytest.mark.bench

SIGMA = 0.05  # noise standard deviation, as a fraction of the clean image's maximum
RATIO = 1.1
DENOISERS = ("gaussian", "median", "bilateral", "anisotropic-diffusion", "nlmeans")
REPEAT = {"nlmeans": 5}  # others 7
ROWS: list[str] = []


@pytest.fixture(scope="module")
def clean() -> Volume:
    image = sitk.ReadImage(str(shared("brain_t1", "KmeansTest_T1UCharRaw.nii.gz")))
    return Volume(sitk.GetArrayFromImage(image).astype(np.float32), image.GetSpacing(), image.GetOrigin(),
                  np.reshape(image.GetDirection(), (3, 3)))


def noisy(clean: Volume, kind: str) -> tuple[Volume, float]:
    rng = np.random.default_rng(14)
    sigma = SIGMA * float(clean.data.max())
    x = clean.data.astype(np.float64)
    if kind == "gaussian":
        data = x + rng.normal(0, sigma, x.shape)
    else:  # Rician: the magnitude of a complex signal with Gaussian noise on both channels
        data = np.hypot(x + rng.normal(0, sigma, x.shape), rng.normal(0, sigma, x.shape))
    return clean.copy_geometry(data.astype(np.float32)), sigma


def params_for(name: str, volume: Volume, sigma: float) -> dict:
    p = all_operations()[name].defaults(volume)
    if name == "bilateral":
        p["range_sigma"] = 2.0 * sigma
    if name == "nlmeans":
        p["h"] = 0.8 * sigma
    return p


def scores(clean: Volume, data: np.ndarray) -> tuple[float, float]:
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    truth = clean.data.astype(np.float64)
    span = float(truth.max() - truth.min())
    out = data.astype(np.float64)
    return (peak_signal_noise_ratio(truth, out, data_range=span),
            structural_similarity(truth, out, data_range=span))


@pytest.fixture(scope="module", autouse=True)
def table():
    yield
    print(f"\ndenoise bench: brain_t1 128x128x62, noise sigma {SIGMA:.0%} of max, medians (s)")
    print(f"{'noise':9s} {'filter':22s} {'PSNR in':>8s} {'PSNR out':>8s} {'SSIM in':>8s} {'SSIM out':>8s} "
          f"{'op s':>7s} {'bare s':>7s} {'ratio':>6s} {'op cpu':>7s} {'bare cpu':>7s} {'ratio':>6s}")
    for row in ROWS:
        print(row)


@pytest.mark.parametrize("noise", ["gaussian", "rician"])
@pytest.mark.parametrize("name", DENOISERS)
def test_denoiser_gain_and_time_against_the_bare_call(clean, noise, name):
    volume, sigma = noisy(clean, noise)
    p = params_for(name, volume, sigma)
    op_times, bare_times = [], []  # (wall, cpu) seconds
    for _ in range(REPEAT.get(name, 7)):
        t, c = time.perf_counter(), time.process_time()
        result = run_operation(name, volume, p)
        op_times.append((time.perf_counter() - t, time.process_time() - c))
        t, c = time.perf_counter(), time.process_time()
        expected = reference(name, volume.data, volume.spacing, p, volume.origin, volume.direction)
        bare_times.append((time.perf_counter() - t, time.process_time() - c))
    np.testing.assert_allclose(result.volume.data, expected, atol=1e-3 * float(np.abs(expected).max()))
    psnr_in, ssim_in = scores(clean, volume.data)
    psnr_out, ssim_out = scores(clean, result.volume.data)
    op_s, bare_s = (statistics.median(t[0] for t in op_times), statistics.median(t[0] for t in bare_times))
    op_cpu, bare_cpu = (statistics.median(t[1] for t in op_times), statistics.median(t[1] for t in bare_times))
    ratio = op_cpu / bare_cpu
    ROWS.append(f"{noise:9s} {name:22s} {psnr_in:8.2f} {psnr_out:8.2f} {ssim_in:8.3f} {ssim_out:8.3f} "
                f"{op_s:7.3f} {bare_s:7.3f} {op_s / bare_s:6.2f} {op_cpu:7.3f} {bare_cpu:7.3f} {ratio:6.2f}")
    if noise == "gaussian":  # Rician noise is biased (the background's magnitude is ~1.25 sigma):
        # a smoother keeps the bias, so a gain there is measured, not required
        assert psnr_out > psnr_in, f"{name} did not raise the PSNR on {noise} noise"
    assert ratio <= RATIO, f"{name}: {op_cpu:.3f} s CPU through run_operation vs {bare_cpu:.3f} s bare"
