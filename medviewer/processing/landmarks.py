"""Landmark registration (closed form), target registration error, and landmark files.

``register_landmarks(fixed_points, moving_points, kind)`` fits the transform that maps each fixed
point onto its moving point (fixed world -> moving world, LPS mm, the convention of
``registration``) with SimpleITK's LandmarkBasedTransformInitializer: "rigid" is the least-squares
rotation + translation (Horn's closed form, a VersorRigid3D given back as an Euler3D transform),
"affine" the least-squares 12-parameter fit. Pairs are matched by order.

``target_registration_error(transform, fixed_points, moving_points)``: the distance, mm, between
T(fixed point) and its moving point, per pair and their mean.

Files: ``read_points(path)`` / ``write_points(path, points, names)``
- ``.csv`` / ``.txt`` (MedViewer's): a header ``label,x,y,z`` then one point per row, LPS mm (the
  world of DICOM, ITK and the viewer). Reading also takes rows of three numbers without a header,
  and a header naming ``r,a,s`` (RAS mm, converted) instead of ``x,y,z``; ``#`` lines are comments.
- ``.fcsv``: 3D Slicer's markups fiducial file; ``# CoordinateSystem = LPS`` (or 1) is read as LPS,
  RAS (or 0, or no such line: Slicer before 4.11) is converted. Written with LPS.
- ``.mrk.json``: 3D Slicer's markups JSON (read only): the control points of the first markup.
"""
from __future__ import annotations

import csv
import io
import json
import os

import numpy as np
import SimpleITK as sitk

from medviewer.core.errors import MedViewerError
from medviewer.core.tempfiles import write_atomically

KINDS = {"rigid": 3, "affine": 4}  # the fewest pairs each needs
_RAS = np.array([-1.0, -1.0, 1.0])  # RAS <-> LPS: x and y change sign


def _pairs(fixed_points, moving_points, need: int) -> tuple[np.ndarray, np.ndarray]:
    fixed = np.asarray(fixed_points, float).reshape(-1, 3)
    moving = np.asarray(moving_points, float).reshape(-1, 3)
    if len(fixed) != len(moving):
        raise MedViewerError(f"the landmarks do not pair up: {len(fixed)} fixed and {len(moving)} moving points")
    if len(fixed) < need:
        raise MedViewerError(f"this needs at least {need} landmark pairs, there are {len(fixed)}")
    if not (np.all(np.isfinite(fixed)) and np.all(np.isfinite(moving))):
        raise MedViewerError("a landmark coordinate is not a number")
    return fixed, moving


def register_landmarks(fixed_points, moving_points, kind: str = "rigid") -> sitk.Transform:
    """The closed-form transform (fixed world -> moving world) of the point pairs; see the module."""
    if kind not in KINDS:
        raise MedViewerError(f"unknown landmark transform '{kind}'; use one of {', '.join(KINDS)}")
    fixed, moving = _pairs(fixed_points, moving_points, KINDS[kind])
    spread = np.linalg.matrix_rank(fixed - fixed.mean(0), tol=1e-3)
    if spread < KINDS[kind] - 1:
        shape = "on one line" if spread <= 1 else "in one plane"
        raise MedViewerError(f"the fixed landmarks lie {shape}; a {kind} fit needs them spread out "
                             f"({'3 not on one line' if kind == 'rigid' else '4 not in one plane'})")
    start = sitk.VersorRigid3DTransform() if kind == "rigid" else sitk.AffineTransform(3)
    fit = sitk.LandmarkBasedTransformInitializer(start, fixed.ravel().tolist(), moving.ravel().tolist())
    if kind == "affine":
        return sitk.AffineTransform(fit)
    rigid = sitk.Euler3DTransform()
    rigid.SetCenter(fit.GetCenter())
    rigid.SetMatrix(fit.GetMatrix())
    rigid.SetTranslation(fit.GetTranslation())
    return rigid


def target_registration_error(transform: sitk.Transform, fixed_points, moving_points) -> tuple[float, np.ndarray]:
    """(mean mm, per-pair mm) distance between TRANSFORM(fixed point) and its moving point."""
    fixed, moving = _pairs(fixed_points, moving_points, 1)
    mapped = np.array([transform.TransformPoint(tuple(float(v) for v in p)) for p in fixed])
    errors = np.linalg.norm(mapped - moving, axis=1)
    return float(errors.mean()), errors


def _number_row(row: list[str]) -> list[float] | None:
    try:
        return [float(v) for v in row]
    except ValueError:
        return None


def _read_csv(path: str, text: str) -> tuple[np.ndarray, list[str]]:
    rows = [r for r in csv.reader(io.StringIO(text)) if r and any(c.strip() for c in r)
            and not r[0].lstrip().startswith("#")]
    if not rows:
        raise MedViewerError(f"{path}: no landmarks in the file")
    header = [c.strip().lower() for c in rows[0]]
    scale, columns, name_col = np.ones(3), None, None
    if _number_row(rows[0]) is None:
        for names, sign in ((("x", "y", "z"), np.ones(3)), (("r", "a", "s"), _RAS)):
            if all(n in header for n in names):
                columns, scale = [header.index(n) for n in names], sign
        if columns is None:
            raise MedViewerError(f"{path}: the header names no x,y,z (LPS) or r,a,s (RAS) columns")
        name_col = next((header.index(n) for n in ("label", "name", "id") if n in header), None)
        rows = rows[1:]
    points, names = [], []
    for number, row in enumerate(rows, start=2 if columns else 1):
        cells = [c.strip() for c in row]
        if columns is None:  # no header: x,y,z or label,x,y,z
            values = _number_row(cells[-3:]) if len(cells) >= 3 else None
            label = cells[0] if len(cells) >= 4 else ""
        else:
            values = _number_row([cells[c] for c in columns]) if max(columns) < len(cells) else None
            label = cells[name_col] if name_col is not None and name_col < len(cells) else ""
        if values is None or not np.all(np.isfinite(values)):
            raise MedViewerError(f"{path}: row {number} does not hold three coordinates")
        points.append(np.asarray(values) * scale)
        names.append(label or f"P{len(points)}")
    return np.array(points).reshape(-1, 3), names


def _read_fcsv(path: str, text: str) -> tuple[np.ndarray, list[str]]:
    system = "RAS"
    for line in text.splitlines():
        if line.startswith("#") and "coordinatesystem" in line.lower().replace(" ", ""):
            value = line.split("=", 1)[-1].strip().upper()
            system = "LPS" if value in ("LPS", "1") else "RAS"
    body = "\n".join(line for line in text.splitlines() if line.strip() and not line.startswith("#"))
    points, names = [], []
    for number, row in enumerate(csv.reader(io.StringIO(body)), start=1):
        values = _number_row([c.strip() for c in row[1:4]]) if len(row) >= 4 else None
        if values is None:
            raise MedViewerError(f"{path}: markup {number} does not hold three coordinates")
        points.append(np.asarray(values) * (_RAS if system == "RAS" else 1.0))
        names.append(row[11].strip() if len(row) > 11 and row[11].strip() else f"F-{number}")
    if not points:
        raise MedViewerError(f"{path}: no landmarks in the file")
    return np.array(points).reshape(-1, 3), names


def _read_json(path: str, text: str) -> tuple[np.ndarray, list[str]]:
    try:
        markup = json.loads(text)["markups"][0]
        system = str(markup.get("coordinateSystem", "LPS")).upper()
        cps = markup["controlPoints"]
        points = np.array([[float(v) for v in cp["position"]] for cp in cps]).reshape(-1, 3)
        names = [str(cp.get("label") or f"F-{i + 1}") for i, cp in enumerate(cps)]
    except (ValueError, KeyError, IndexError, TypeError):
        raise MedViewerError(f"{path}: not a 3D Slicer markups file (no control points)") from None
    if not len(points):
        raise MedViewerError(f"{path}: no landmarks in the file")
    return points * (_RAS if system == "RAS" else 1.0), names


def read_points(path: str) -> tuple[np.ndarray, list[str]]:
    """((N, 3) LPS mm points, their names) from a landmark file (formats: see the module)."""
    path = os.fspath(path)
    try:
        with open(path, encoding="utf-8-sig") as fh:
            text = fh.read(10_000_000)
    except FileNotFoundError:
        raise MedViewerError(f"{path}: no such file") from None
    except UnicodeDecodeError:
        raise MedViewerError(f"{path}: not a text file of landmarks") from None
    except OSError as exc:
        raise MedViewerError(f"{path}: cannot read: {exc.strerror or 'input/output error'}") from None
    lower = path.lower()
    if lower.endswith(".fcsv"):
        return _read_fcsv(path, text)
    if lower.endswith(".json"):
        return _read_json(path, text)
    return _read_csv(path, text)


def write_points(path: str, points, names: list[str] | None = None) -> str:
    """Write (N, 3) LPS mm POINTS (and their NAMES) as .csv (label,x,y,z) or Slicer's .fcsv."""
    path = os.fspath(path)
    points = np.asarray(points, float).reshape(-1, 3)
    names = list(names) if names is not None else [f"P{i + 1}" for i in range(len(points))]
    if len(names) != len(points):
        raise MedViewerError(f"{path}: {len(points)} points but {len(names)} names")
    safe = [str(n).replace(",", " ").replace("\n", " ") for n in names]
    if path.lower().endswith(".fcsv"):
        lines = ["# Markups fiducial file version = 4.11", "# CoordinateSystem = LPS",
                 "# columns = id,x,y,z,ow,ox,oy,oz,vis,sel,lock,label,desc,associatedNodeID"]
        lines += [f"vtkMRMLMarkupsFiducialNode_{i},{p[0]:.6f},{p[1]:.6f},{p[2]:.6f},0,0,0,1,1,1,0,{n},,"
                  for i, (p, n) in enumerate(zip(points, safe))]
    else:
        lines = ["label,x,y,z"] + [f"{n},{p[0]:.6f},{p[1]:.6f},{p[2]:.6f}" for p, n in zip(points, safe)]
    try:
        return write_atomically(path, lambda fh: fh.write("\n".join(lines) + "\n"), text=True)
    except OSError as exc:
        raise MedViewerError(f"{path}: cannot write: {exc.strerror or 'input/output error'}") from None
