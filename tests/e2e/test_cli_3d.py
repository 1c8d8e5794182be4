"""`medviewer screenshot --layout 3d`: the 3D view rendered headless (EGL offscreen), with the label
surfaces in their label colours, the volume rendering changing with --preset and --render, and
one-line refusals for options that do not fit."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from tests.conftest import DEMO
from tests.e2e.test_cli import medviewer

HIPPO = DEMO / "mri_hippocampus" / "hippocampus_001.nii.gz"
HIPPO_LABELS = DEMO.parent / "demo_labels" / "hippocampus_001.nii.gz"


@pytest.fixture(scope="module")
def opengl():
    from medviewer.ui.view3d.vtk_bridge import opengl_problem

    problem = opengl_problem()
    if problem:
        pytest.skip(problem)


def near(rgb: np.ndarray, colour, tolerance: int = 60) -> np.ndarray:
    """Pixels whose hue is the label colour's: shading darkens a surface, so compare directions."""
    px = rgb.reshape(-1, 3).astype(float)
    c = np.asarray(colour, float)
    bright = px.sum(axis=1) > 60
    cos = (px @ c) / (np.linalg.norm(px, axis=1) * np.linalg.norm(c) + 1e-9)
    return bright & (cos > 0.97) & (np.abs(px - c * (px.max(axis=1, keepdims=True) / c.max())).max(axis=1) < tolerance)


def test_label_surfaces_in_their_label_colours(opengl, tmp_path):
    from medviewer.core.labels import palette_colour

    out = tmp_path / "hippo.png"
    proc = medviewer("screenshot", HIPPO, "--labels", HIPPO_LABELS, "--layout", "3d", "--render", "surface",
                     "--camera", "L", "--size", "500x420", "--out", out)
    assert "layout 3d" in proc.stdout
    rgb = np.asarray(Image.open(out).convert("RGB"))
    assert rgb.shape[1] == 500  # the rendering fills the window's width
    for value in (1, 2):  # anterior and posterior hippocampus, each in its colour
        assert near(rgb, palette_colour(value)).sum() > 500, value


def test_volume_rendering_follows_the_preset_and_mip(opengl, tmp_path):
    shots = {}
    for name, extra in (("bone", ["--preset", "ct-bone"]), ("lung", ["--preset", "CT lung"]),
                        ("mip", ["--render", "mip"])):
        out = tmp_path / f"{name}.png"
        medviewer("screenshot", DEMO / "ct_chest_20", "--layout", "3d", "--size", "360x300", "--camera", "S",
                  *extra, "--out", out)
        shots[name] = np.asarray(Image.open(out).convert("RGB")).astype(int)
    from tests.gui.test_view3d_scene import foreground

    for name, rgb in shots.items():  # not blank (the lung preset shows little at the liver's level)
        assert foreground(rgb).mean() > 0.01, name
    assert np.abs(shots["bone"] - shots["lung"]).mean() > 3
    assert np.abs(shots["bone"] - shots["mip"]).mean() > 3
    mip = shots["mip"]
    assert np.allclose(mip[..., 0], mip[..., 1], atol=3)  # a MIP is grey


def test_refusals_are_one_line(tmp_path):
    out = tmp_path / "x.png"
    for args, words in ((["--render", "mip"], "--layout 3d"),
                        (["--layout", "3d", "--preset", "brain"], "ct-bone"),
                        (["--layout", "3d", "--labels", tmp_path / "missing.nii.gz"], "no such file")):
        proc = medviewer("screenshot", DEMO / "ct_chest_20", *args, "--out", out, check=False)
        assert proc.returncode == 1 and words in proc.stderr, proc.stderr
        assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
        assert not out.exists()
