"""run_operation's contract: progress rises to 1, a cancel raises Cancelled and returns nothing
(SimpleITK filters are stopped mid-run), bad parameters and bad images are one clean
MedViewerError naming the parameter and its range."""
from __future__ import annotations

import sys

import numpy as np
import pytest

from medviewer.ai.clustering import all_operations
from medviewer.core.errors import Cancelled, MedViewerError
from medviewer.core.memory import TooLarge
from medviewer.core.volume import Volume
from medviewer.processing.operations import run_operation

ALL = sorted(all_operations())


def _volume(shape=(6, 16, 14), seed=1) -> Volume:
    rng = np.random.default_rng(seed)
    return Volume(rng.normal(100, 30, shape).astype(np.float32), spacing=(1.0, 1.0, 2.0))


@pytest.mark.parametrize("name", ALL)
def test_progress_rises_to_one(name):
    seen = []
    run_operation(name, _volume(), progress=lambda f, m: seen.append((f, m)))
    fractions = [f for f, _ in seen]
    assert fractions == sorted(fractions) and fractions[0] == 0.0 and fractions[-1] == 1.0
    assert all(isinstance(m, str) and m for _, m in seen)


@pytest.mark.parametrize("name", ALL)
def test_a_cancel_raises_cancelled_and_returns_nothing(name):
    results, calls = [], []
    with pytest.raises(Cancelled):
        results.append(run_operation(name, _volume(), progress=lambda f, m: calls.append(f),
                                     cancel=lambda: len(calls) >= 1))
    assert results == []


@pytest.mark.parametrize("name, params, events", [
    ("n4", {"iterations": 200, "levels": 4, "shrink": 1}, "iterations"),  # N4 ignores Abort(): stopped from its callback
    ("bilateral", {"domain_sigma": 3.0}, "progress"),                      # honours Abort()
    ("canny", {}, "progress"),                                             # inner pipeline: stopped from its callback
])
def test_a_simpleitk_filter_is_stopped_mid_run(name, params, events):
    """The cancel stops the filter itself: far fewer progress reports than a full run makes, and
    no traceback of the private stop exception on stderr."""
    volume = _volume((24, 40, 40))
    full = []
    if name != "n4":  # a full N4 run of 800 iterations would take long; it reports once per iteration
        run_operation(name, volume, params, progress=lambda f, m: full.append(f))
    calls = []
    printed = []
    hook, sys.excepthook = sys.excepthook, lambda *a: printed.append(a)
    try:
        with pytest.raises(Cancelled):
            run_operation(name, volume, params, progress=lambda f, m: calls.append(f),
                          cancel=lambda: len(calls) >= 3)
    finally:
        sys.excepthook = hook
    assert printed == []
    total = 200 * 4 if name == "n4" else len(full)
    assert len(calls) <= 4 < total, (len(calls), total)
    assert max(calls) < 0.5


@pytest.mark.parametrize("name, params, words", [
    ("gaussian", {"sigma": -1}, ["sigma", "0.01", "50", "mm"]),
    ("gaussian", {"sigma": "wide"}, ["sigma", "'wide'", "a number"]),
    ("gaussian", {"sigma": float("nan")}, ["sigma"]),
    ("median", {"radius": 1.5}, ["radius", "an integer"]),
    ("erode", {"kernel": "disc"}, ["kernel", "ball, box, cross"]),
    ("n4", {"mask": "maybe"}, ["mask", "true or false"]),
    ("gaussian", {"radius": 2}, ["no parameter 'radius'", "sigma"]),
    ("crop", {"x0": 9, "x1": 3}, ["x0", "x1"]),
    ("threshold", {"low": 5, "high": 1}, ["low", "high"]),
    ("adaptive-threshold", {"block_size": 8}, ["block_size", "odd"]),
])
def test_bad_parameters_are_one_clean_line(name, params, words):
    with pytest.raises(MedViewerError) as info:
        run_operation(name, _volume(), params)
    message = str(info.value)
    assert "\n" not in message and "Traceback" not in message
    for w in words:
        assert w in message


def test_unknown_operation_lists_the_known_ones():
    with pytest.raises(MedViewerError, match="unknown operation 'blur'.*gaussian"):
        run_operation("blur", _volume())


@pytest.mark.parametrize("name", ["gaussian", "kmeans", "crop"])
def test_rgb_is_refused(name):
    rgb = Volume(np.zeros((1, 8, 8, 3), np.uint8))
    with pytest.raises(MedViewerError, match="greyscale.*RGB"):
        run_operation(name, rgb)


def test_too_large_is_refused_before_any_work(monkeypatch):
    monkeypatch.setenv("MEDVIEWER_MEMORY_LIMIT", "1M")
    seen = []
    with pytest.raises(TooLarge, match="Gaussian smoothing of the 64x64x64 image"):
        run_operation("gaussian", _volume((64, 64, 64)), progress=lambda f, m: seen.append(f))
    assert seen == []


def test_clustering_a_flat_image_is_a_clear_message():
    with pytest.raises(MedViewerError, match="3 classes need at least as many distinct intensities"):
        run_operation("gmm", Volume(np.full((2, 5, 5), 7.0, np.float32)), {"ignore_minimum": False})


def test_input_is_left_untouched():
    volume = _volume()
    before = volume.data.copy()
    for name in ("gaussian", "erode", "crop", "kmeans", "clahe"):
        run_operation(name, volume)
    np.testing.assert_array_equal(volume.data, before)


def test_defaults_follow_the_image():
    volume = _volume()
    crop = all_operations()["crop"].defaults(volume)
    assert (crop["x1"], crop["y1"], crop["z1"]) == (13, 15, 5)
    resample = all_operations()["resample"].defaults(volume)
    assert (resample["spacing_x"], resample["spacing_z"]) == (1.0, 2.0)
    assert all_operations()["anisotropic-diffusion"].defaults(Volume(np.zeros((9, 9))))["time_step"] == 0.125


@pytest.mark.parametrize("name", ["gaussian", "n4", "resample", "crop", "canny"])
def test_a_sagittal_slice_keeps_its_world_geometry(name):
    """A one-slice image whose in-plane axes are not x and y (a sagittal DICOM slice: the corner
    of its direction is singular) is processed in 2D and lands where the slice was."""
    direction = np.array([[0, 0, 1], [1, 0, 0], [0, -1, 0]], float)  # columns: A, I, L... a sagittal slice
    rng = np.random.default_rng(2)
    volume = Volume(rng.normal(100, 20, (1, 20, 18)).astype(np.float32), spacing=(0.8, 0.9, 5.0),
                    origin=(40.0, -20.0, 60.0), direction=direction, metadata={"oriented": True})
    params = {"crop": {"x0": 3, "x1": 10, "y0": 4, "y1": 15},
              "resample": {"spacing_x": 0.4, "spacing_y": 0.9}}.get(name)
    out = run_operation(name, volume, params).volume
    np.testing.assert_array_equal(out.direction, direction)
    assert out.shape[0] == 1 and out.spacing[2] == 5.0
    if name == "crop":
        assert out.shape == (1, 12, 8)
        np.testing.assert_allclose(out.origin, volume.index_to_world((3, 4, 0)))
        np.testing.assert_array_equal(out.data, volume.data[:, 4:16, 3:11])
    else:
        assert out.origin == volume.origin
    if name == "resample":
        assert out.shape == (1, 20, 36) and out.spacing[:2] == (0.4, 0.9)


def test_listing_the_operations_loads_neither_scikit_learn_nor_scikit_image():
    """The GUI builds its Process panel from all_operations() at start: the libraries load only
    when an operation that needs them runs."""
    import json
    import subprocess

    code = ("import sys, json\n"
            "from medviewer.ai.clustering import all_operations\n"
            "import medviewer.cli_process\n"
            "assert len(all_operations()) == 23\n"
            "print(json.dumps([m for m in ('sklearn', 'skimage', 'torch', 'PySide6') if m in sys.modules]))\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == []


def test_nan_voxels_are_refused_in_one_line():
    data = np.random.default_rng(0).normal(size=(2, 6, 6)).astype(np.float32)
    data[0, 0, 0] = np.nan
    with pytest.raises(MedViewerError, match="kmeans: the image has 1 NaN or infinite voxels"):
        run_operation("kmeans", Volume(data))


def test_a_library_refusal_is_one_clean_line(monkeypatch):
    """An error a library raises (here a SimpleITK filter's on an image too small for it, and a
    ValueError out of an operation) is a MedViewerError naming the operation, in one line, without
    ITK's object address."""
    with pytest.raises(MedViewerError) as info:
        run_operation("gaussian", _volume((3, 6, 6)))
    message = str(info.value)
    assert message.startswith("Gaussian smoothing failed: The number of pixels along dimension 2 is less than 4")
    assert "\n" not in message and "0x" not in message

    from medviewer.processing import operations as registry

    def fails(volume, p, steps):
        raise ValueError("autodetected range of [nan, nan] is not finite\nmore")

    monkeypatch.setitem(registry._REGISTRY, "failing", registry.Operation(
        "failing", "Failing filter", "Denoise", (), "image", "raises", run=fails))
    with pytest.raises(MedViewerError, match=r"^Failing filter failed: autodetected range of \[nan, nan\] is not finite$"):
        run_operation("failing", _volume())


def test_a_constant_image_gets_positive_strengths():
    flat = Volume(np.full((4, 8, 8), 7.0, np.float32))
    for name in ("bilateral", "nlmeans"):
        out = run_operation(name, flat).volume.data
        np.testing.assert_allclose(out, 7.0, atol=1e-4)


def test_overlapping_quiet_stops_give_the_hook_back_whatever_order_they_end_in():
    """Two SimpleITK calls on two worker threads (the Process and the Register dock): the first
    context to end must not leave the filtering hook installed for good, nor drop the user's."""
    from medviewer.processing.sitk_errors import SitkStop, quiet_stops

    printed = []
    original, sys.excepthook = sys.excepthook, lambda *a: printed.append(a[0])
    try:
        user_hook = sys.excepthook
        first, second = quiet_stops(), quiet_stops()
        first.__enter__()
        second.__enter__()
        first.__exit__(None, None, None)  # the first run ends while the second still runs
        sys.excepthook(SitkStop, SitkStop(), None)  # still filtered
        sys.excepthook(ValueError, ValueError(), None)  # anything else still reaches the user's hook
        second.__exit__(None, None, None)
        assert sys.excepthook is user_hook
        assert printed == [ValueError]
    finally:
        sys.excepthook = original
