"""Group DICOM frames into volumes and work out their geometry, as ITK/Slicer would.

Frames are grouped by Series Instance UID (or, when it is blank, by study, frame of
reference, series number, modality and description), then by image geometry; frames
that share a slice position are separated into volumes by echo, temporal position,
image type or dimension index, and sorted along the slice normal.
"""
from __future__ import annotations

import hashlib
from collections import defaultdict

import numpy as np
from pydicom.uid import UID

from medviewer.core.volume import Volume
from medviewer.io.dicom_header import FrameRecord
from medviewer.io.dicom_pixels import channels
from medviewer.io.sources import ImageSource

POSITION_DECIMALS = 2  # positions closer than 0.01 mm are the same slice
SPACING_TOLERANCE = 0.01  # relative deviation of a slice step before it counts as uneven


class DicomSeries(ImageSource):
    """A volume assembled from DICOM frames; pixels are decoded only by load()."""

    def __init__(self, source_id: str, frames: list[FrameRecord], warnings: list[str]):
        self.frames = frames
        first = frames[0]
        geometry = _geometry(frames)
        warnings = warnings + geometry.pop("warnings")
        self.grid_positions = geometry.pop("grid_positions")  # None when the slices are regular
        self.slice_positions = geometry.pop("slice_positions")
        names = sorted({UID(f.transfer_syntax).name for f in frames})
        super().__init__(
            id=source_id, kind="dicom", modality=first.modality,
            description=first.description, files=sorted({f.path for f in frames}),
            transfer_syntaxes=names, warnings=warnings, spacing_known=first.pixel_spacing is not None,
            components=channels(first), **geometry)

    def load(self) -> Volume:
        from medviewer.io.dicom_pixels import load_series

        return load_series(self)

    def preview(self) -> Volume:
        """Only the middle slice is decoded: thumbnails of long series stay cheap."""
        if len(self.frames) == 1 or self.grid_positions is not None:
            return self.load()
        middle = self.frames[len(self.frames) // 2]
        return DicomSeries(self.id, [middle], []).load()

    @property
    def header(self):
        return self.frames[0].header


def group_frames(frames: list[FrameRecord]) -> list[DicomSeries]:
    series: dict[tuple, list[FrameRecord]] = defaultdict(list)
    for frame in frames:
        series[frame.series_key].append(frame)
    out: list[DicomSeries] = []
    for key, members in series.items():
        base_id = members[0].series_uid or "noUID-" + hashlib.sha1(repr(key).encode()).hexdigest()[:8]
        volumes = []
        for group in _split_geometry(members):
            volumes.extend(_split_duplicates(group))
        volumes.sort(key=lambda v: (v[0], _order_key(v[1][0])))
        for n, (note, group) in enumerate(volumes, 1):
            source_id = base_id if len(volumes) == 1 else f"{base_id}.{n}"
            warnings = [note] if note else []
            out.append(DicomSeries(source_id, group, warnings))
    out.sort(key=lambda s: (s.modality, s.description, s.id))
    return out


def _order_key(f: FrameRecord) -> tuple:
    return (f.instance_number, f.path, f.frame if f.frame is not None else -1)


def _split_geometry(frames: list[FrameRecord]) -> list[list[FrameRecord]]:
    """Separate frames of different size, orientation or pixel spacing (e.g. localizers)."""
    groups: dict[tuple, list[FrameRecord]] = defaultdict(list)
    for f in frames:
        ori = tuple(np.round(f.orientation, 3)) if f.orientation is not None else None
        spacing = tuple(np.round(f.pixel_spacing, 4)) if f.pixel_spacing is not None else None
        # A frame with no position at all (projection X-ray, secondary capture) is its own image,
        # unless it comes from a multi-frame file, whose frames stay together.
        alone = f.path if (f.position is None and f.frame is None) else None
        groups[(f.rows, f.columns, f.samples, ori, spacing, alone)].append(f)
    return list(groups.values())


def _position_key(f: FrameRecord) -> tuple | None:
    return tuple(np.round(f.position, POSITION_DECIMALS)) if f.position is not None else None


def _has_duplicates(frames: list[FrameRecord]) -> bool:
    keys = [_position_key(f) for f in frames]
    if any(k is None for k in keys):
        return False
    return len(set(keys)) < len(keys)


def _split_duplicates(frames: list[FrameRecord]) -> list[tuple[str, list[FrameRecord]]]:
    """Frames sharing positions belong to different volumes (echoes, time points ...)."""
    if not _has_duplicates(frames):
        return [("", frames)]
    by_split: dict[tuple, list[FrameRecord]] = defaultdict(list)
    for f in frames:
        by_split[f.split_key].append(f)
    groups = list(by_split.values())
    if len(groups) > 1 and not any(_has_duplicates(g) for g in groups):
        note = f"frames share slice positions: split into {len(groups)} volumes by echo/time/image type"
        return [(note, g) for g in groups]
    # Nothing in the header tells them apart: the k-th image at each position forms volume k.
    result: list[list[FrameRecord]] = []
    for group in groups:
        seen: dict[tuple, int] = defaultdict(int)
        stacks: dict[int, list[FrameRecord]] = defaultdict(list)
        for f in sorted(group, key=_order_key):
            key = _position_key(f)
            stacks[seen[key]].append(f)
            seen[key] += 1
        result.extend(stacks[k] for k in sorted(stacks))
    note = f"several images at the same slice position: split into {len(result)} volumes"
    return [(note, g) for g in result]


def _geometry(frames: list[FrameRecord]) -> dict:
    """Sort frames along the slice normal (in place) and derive ITK-style geometry."""
    warnings: list[str] = []
    first = frames[0]
    ori = first.orientation
    if ori is None:
        row, col = np.array([1.0, 0, 0]), np.array([0, 1.0, 0])
    else:
        row, col = ori[:3] / np.linalg.norm(ori[:3]), ori[3:] / np.linalg.norm(ori[3:])
    normal = np.cross(row, col)
    dy, dx = first.pixel_spacing if first.pixel_spacing is not None else (1.0, 1.0)
    positioned = all(f.position is not None for f in frames)
    if positioned:
        frames.sort(key=lambda f: (float(np.dot(f.position, normal)), _order_key(f)))
        proj = np.array([float(np.dot(f.position, normal)) for f in frames])
        origin = frames[0].position
    else:
        frames.sort(key=_order_key)
        proj = np.arange(len(frames), dtype=float)
        origin = first.position if first.position is not None else np.zeros(3)
    grid_positions = None
    if len(frames) > 1:
        steps = np.diff(proj)
        dz = float(np.median(steps)) if positioned else 1.0
        if positioned and dz <= 0:
            dz = 1.0
        if positioned and np.max(np.abs(steps - dz)) > max(SPACING_TOLERANCE * dz, 1e-3):
            n = int(np.floor((proj[-1] - proj[0]) / dz + 1e-3)) + 1  # grid stays inside the scanned extent
            grid_positions = proj[0] + dz * np.arange(n)
            missing = int(round(np.sum(np.maximum(np.round(steps / dz) - 1, 0))))
            what = (f"{missing} slice(s) missing" if missing and np.allclose(steps / dz, np.round(steps / dz), atol=0.05)
                    else "uneven slice spacing")
            warnings.append(f"{what} (steps {steps.min():.3g} to {steps.max():.3g} mm): resampled to a "
                            f"regular {dz:.4g} mm grid of {n} slices by linear interpolation")
        if positioned:
            offsets = np.array([f.position - frames[0].position for f in frames])
            lateral = offsets - np.outer(proj - proj[0], normal)
            shear = float(np.max(np.linalg.norm(lateral, axis=1)))
            if shear > max(0.5 * min(dx, dy), 0.01 * abs(proj[-1] - proj[0])):
                warnings.append(f"slices are not stacked along their normal (gantry tilt or shear, "
                                f"up to {shear:.3g} mm off): shown unsheared")
        if not positioned:
            warnings.append("no slice positions in the header: frames stacked with 1 mm spacing")
    else:
        dz = first.slice_thickness or 1.0
    if first.pixel_spacing is None and first.modality not in ("", "OT", "SC"):
        warnings.append("no pixel spacing in the header: 1 mm assumed")
    nz = len(grid_positions) if grid_positions is not None else len(frames)
    return dict(size=(first.columns, first.rows, nz), spacing=(float(dx), float(dy), float(dz)),
                origin=tuple(float(v) for v in origin), direction=np.column_stack([row, col, normal]),
                warnings=warnings, grid_positions=grid_positions, slice_positions=proj)
