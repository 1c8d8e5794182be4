"""ITK transform files (.tfm / .txt text, .h5 / .hdf5 HDF5, .mat linear only) that 3D Slicer and
SimpleITK read.

The file holds the registration's transform as ITK stores it: fixed world -> moving world in LPS
mm (the resampling direction). So ``sitk.Resample(moving, fixed, sitk.ReadTransform(path))`` gives
the registered image, and 3D Slicer, loading the file as a transform and applying it to the moving
volume, shows the moving volume on the fixed one (Slicer converts ITK's LPS files to its RAS itself).
A B-spline registration is a composite transform (affine after B-spline), written as one file.
Writing goes through a temporary beside the target and a rename (core.tempfiles).
"""
from __future__ import annotations

import os

import SimpleITK as sitk

from medviewer.core.errors import MedViewerError
from medviewer.core.tempfiles import write_path_atomically
from medviewer.processing.sitk_errors import itk_reason

EXTENSIONS = (".tfm", ".txt", ".h5", ".hdf5", ".mat")


def _extension(path: str) -> str:
    return os.path.splitext(path)[1].lower()


def save_transform(transform: sitk.Transform, path: str) -> str:
    """Write TRANSFORM to PATH (format from the extension); returns PATH. MedViewerError naming
    the file when the extension is not an ITK transform format or the file cannot be written."""
    path = os.fspath(path)
    ext = _extension(path)
    if ext not in EXTENSIONS:
        raise MedViewerError(f"{path}: a transform is written as {', '.join(EXTENSIONS)}")
    if ext == ".mat" and not transform.IsLinear():
        raise MedViewerError(f"{path}: a .mat file holds only a linear transform; use .tfm or .h5 for this one")
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise MedViewerError(f"{path}: the folder does not exist")
    try:
        return write_path_atomically(path, lambda tmp: sitk.WriteTransform(transform, tmp), suffix=ext)
    except RuntimeError as exc:
        raise MedViewerError(f"{path}: cannot write the transform: {itk_reason(exc)}") from None
    except OSError as exc:
        raise MedViewerError(f"{path}: cannot write: {exc.strerror or 'input/output error'}") from None


def load_transform(path: str) -> sitk.Transform:
    """The transform in an ITK transform file (MedViewerError naming the file when it is not one)."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise MedViewerError(f"{path}: no such file")
    try:
        transform = sitk.ReadTransform(path)
    except RuntimeError as exc:
        raise MedViewerError(f"{path}: not a readable ITK transform file ({itk_reason(exc)})") from None
    if transform.GetDimension() != 3:
        raise MedViewerError(f"{path}: a {transform.GetDimension()}D transform; registration uses 3D ones")
    return transform

