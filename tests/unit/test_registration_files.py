"""Landmark registration against the closed-form solutions, TRE, landmark files (CSV, Slicer .fcsv
and .mrk.json), and ITK transform files read back by SimpleITK giving the identical resampling."""
from __future__ import annotations

import json

import numpy as np
import pytest
import SimpleITK as sitk

from medviewer.core.errors import MedViewerError
from medviewer.processing.landmarks import (read_points, register_landmarks, target_registration_error,
                                            write_points)
from medviewer.processing.registration import RegistrationSettings, register
from medviewer.processing.transform_files import load_transform, save_transform
from tests.support import registration_cases as cases


def _kabsch(fixed: np.ndarray, moving: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The least-squares rotation R and translation t with moving ~ R fixed + t (SVD; Arun/Kabsch)."""
    cf, cm = fixed.mean(0), moving.mean(0)
    u, _, vt = np.linalg.svd((fixed - cf).T @ (moving - cm))
    d = np.sign(np.linalg.det(vt.T @ u.T))
    rotation = vt.T @ np.diag([1, 1, d]) @ u.T
    return rotation, cm - rotation @ cf


def _apply(transform, points):
    return np.array([transform.TransformPoint(tuple(p)) for p in points])


def _points(n=7, seed=0):
    return np.random.default_rng(seed).uniform(-60, 60, (n, 3))


def test_rigid_landmarks_recover_a_known_rigid_exactly():
    truth = sitk.Euler3DTransform((5.0, -3.0, 10.0), 0.3, -0.2, 0.5, (12.0, -7.0, 4.0))
    fixed = _points()
    moving = _apply(truth, fixed)
    fit = register_landmarks(fixed, moving, "rigid")
    assert isinstance(fit, sitk.Euler3DTransform)
    probe = _points(20, seed=1)
    assert np.abs(_apply(fit, probe) - _apply(truth, probe)).max() < 1e-9
    mean, per = target_registration_error(fit, fixed, moving)
    assert mean < 1e-9 and per.shape == (7,)


def test_rigid_landmarks_with_noise_match_the_svd_solution():
    truth = sitk.Euler3DTransform((0.0, 0.0, 0.0), -0.4, 0.1, 0.25, (3.0, 8.0, -5.0))
    fixed = _points(9, seed=2)
    moving = _apply(truth, fixed) + np.random.default_rng(3).normal(0, 1.5, (9, 3))
    fit = register_landmarks(fixed, moving, "rigid")
    rotation, shift = _kabsch(fixed, moving)
    probe = _points(20, seed=4)
    assert np.abs(_apply(fit, probe) - (probe @ rotation.T + shift)).max() < 1e-6
    mean, per = target_registration_error(fit, fixed, moving)
    expected = np.linalg.norm(fixed @ rotation.T + shift - moving, axis=1)
    assert np.allclose(per, expected, atol=1e-6) and mean == pytest.approx(expected.mean())


def test_affine_landmarks_match_least_squares():
    fixed = _points(8, seed=5)
    matrix = np.array([[1.1, 0.1, 0.0], [-0.05, 0.9, 0.08], [0.02, 0.0, 1.2]])
    moving = fixed @ matrix.T + (4.0, -2.0, 1.0) + np.random.default_rng(6).normal(0, 0.5, (8, 3))
    fit = register_landmarks(fixed, moving, "affine")
    design = np.hstack([fixed, np.ones((8, 1))])
    solution, *_ = np.linalg.lstsq(design, moving, rcond=None)  # (4, 3): [A^T; t]
    probe = _points(10, seed=7)
    assert np.abs(_apply(fit, probe) - np.hstack([probe, np.ones((10, 1))]) @ solution).max() < 1e-6


@pytest.mark.parametrize("fixed, moving, kind, match", [
    (np.zeros((3, 3)) + [[0, 0, 0], [1, 0, 0], [2, 0, 0]], None, "rigid", "on one line"),
    (_points(2), None, "rigid", "at least 3"),
    (_points(3), None, "affine", "at least 4"),
    (np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [1, 1, 0.0]]), None, "affine", "in one plane"),
    (_points(4), _points(5), "rigid", "do not pair up"),
    (_points(4), None, "spline", "unknown landmark transform"),
])
def test_bad_landmarks_are_refused(fixed, moving, kind, match):
    with pytest.raises(MedViewerError, match=match):
        register_landmarks(fixed, fixed if moving is None else moving, kind)


def test_csv_round_trip_and_formats(tmp_path):
    points = _points(4)
    path = write_points(tmp_path / "fixed.csv", points, ["nose", "left ear", "right, ear", "chin"])
    assert open(path).readline().strip() == "label,x,y,z"
    back, names = read_points(path)
    assert np.allclose(back, points, atol=1e-6) and names == ["nose", "left ear", "right  ear", "chin"]
    (tmp_path / "bare.csv").write_text("# three numbers a row\n1,2,3\n4.5, -6, 7e1\n")
    back, names = read_points(tmp_path / "bare.csv")
    assert np.allclose(back, [[1, 2, 3], [4.5, -6, 70]]) and names == ["P1", "P2"]
    (tmp_path / "ras.csv").write_text("name,r,a,s\nA,1,2,3\n")
    assert np.allclose(read_points(tmp_path / "ras.csv")[0], [[-1, -2, 3]])  # RAS -> LPS


def test_slicer_files(tmp_path):
    points = _points(3)
    path = write_points(tmp_path / "f.fcsv", points, ["a", "b", "c"])
    back, names = read_points(path)
    assert np.allclose(back, points, atol=1e-6) and names == ["a", "b", "c"]
    old = "# Markups fiducial file version = 4.6\n# CoordinateSystem = 0\n" \
          "# columns = id,x,y,z,ow,ox,oy,oz,vis,sel,lock,label,desc,associatedNodeID\n" \
          "vtkMRMLMarkupsFiducialNode_0,10,20,30,0,0,0,1,1,1,0,F-1,,\n"
    (tmp_path / "old.fcsv").write_text(old)
    assert np.allclose(read_points(tmp_path / "old.fcsv")[0], [[-10, -20, 30]])  # 0 = RAS
    markups = {"markups": [{"type": "Fiducial", "coordinateSystem": "RAS",
                            "controlPoints": [{"label": "F-1", "position": [1.0, 2.0, 3.0]}]}]}
    (tmp_path / "m.mrk.json").write_text(json.dumps(markups))
    back, names = read_points(tmp_path / "m.mrk.json")
    assert np.allclose(back, [[-1, -2, 3]]) and names == ["F-1"]


@pytest.mark.parametrize("content, match", [
    ("label,x,y,z\nA,1,2\n", "row 2"), ("x,y,z\n1,2,three\n", "row 2"), ("", "no landmarks"),
    ("u,v,w\n1,2,3\n", "no x,y,z"), (b"\xff\xfe\x00\x01", "not a text file"),
])
def test_bad_landmark_files(tmp_path, content, match):
    path = tmp_path / "bad.csv"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    with pytest.raises(MedViewerError, match=match) as info:
        read_points(path)
    assert str(info.value).startswith(str(path)) and "\n" not in str(info.value)
    with pytest.raises(MedViewerError, match="no such file"):
        read_points(tmp_path / "missing.csv")


@pytest.mark.parametrize("kind, ext", [("rigid", ".tfm"), ("affine", ".h5"), ("bspline", ".tfm"), ("bspline", ".h5")])
def test_saved_transform_gives_the_identical_resampling(tmp_path, kind, ext):
    fixed = cases.synthetic_head(size=(28, 32, 26), spacing=(1.5, 1.4, 1.6))
    moving = cases.moved(fixed, cases.smooth_deformation(fixed, 2.0) if kind == "bspline" else cases.rigid(fixed))
    settings = RegistrationSettings(transform=kind, shrink=(2, 1), smoothing_mm=(1.0, 0.0), sampling=0.1,
                                    iterations=30, bspline_iterations=5, bspline_mesh_mm=25.0)
    result = register(fixed, moving, settings)
    path = save_transform(result.transform, tmp_path / f"moving_to_fixed{ext}")
    read = sitk.ReadTransform(str(path))  # as SimpleITK (and 3D Slicer) read it
    again = sitk.Resample(cases.image_of(moving), cases.image_of(fixed), read, sitk.sitkLinear,
                          float(moving.data.min()), sitk.sitkFloat32)
    assert np.array_equal(sitk.GetArrayFromImage(again), result.resampled.data)
    assert np.allclose(load_transform(path).GetParameters(), read.GetParameters())
    assert [p.name for p in tmp_path.iterdir()] == [f"moving_to_fixed{ext}"]  # no temporary left


def test_transform_file_errors(tmp_path):
    rigid = sitk.Euler3DTransform()
    with pytest.raises(MedViewerError, match="is written as"):
        save_transform(rigid, tmp_path / "t.nii")
    with pytest.raises(MedViewerError, match="folder does not exist"):
        save_transform(rigid, tmp_path / "nowhere" / "t.tfm")
    composite = sitk.CompositeTransform([sitk.AffineTransform(3), sitk.BSplineTransform(3)])
    with pytest.raises(MedViewerError, match="only a linear"):
        save_transform(composite, tmp_path / "t.mat")
    (tmp_path / "junk.tfm").write_bytes(b"not a transform\x00\x01")
    with pytest.raises(MedViewerError, match="junk.tfm: not a readable ITK transform file") as info:
        load_transform(tmp_path / "junk.tfm")
    assert "\n" not in str(info.value)
    with pytest.raises(MedViewerError, match="no such file"):
        load_transform(tmp_path / "missing.tfm")
