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
# "Missing slices" are filled in only while the regular grid holds at most this many times the
# slices there are: a gap beyond that is no missing slice but a bad position
MAX_GRID_GROWTH = 2


class DicomSeries(ImageSource):
    """A volume assembled from DICOM frames; pixels are decoded only by load()."""

    value_note = ""  # how the values were scaled, when not the DICOM rescale (philips_scaling)

    def __init__(self, source_id: str, frames: list[FrameRecord], warnings: list[str]):
        self.frames = frames
        first = frames[0]
        geometry = _geometry(frames)
        warnings = warnings + geometry.pop("warnings")
        self.grid_positions = geometry.pop("grid_positions")  # None when the slices are regular
        self.slice_positions = geometry.pop("slice_positions")
        names = sorted({UID(uid).name for uid in {f.transfer_syntax for f in frames}})
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
        """The complete header of the first image (the tag browser, SEG export)."""
        return self.frames[0].full_header()


def _drop_copies(frames: list[FrameRecord]) -> list[FrameRecord]:
    """One record per image: the same SOP Instance (and frame) in several files (a copy, an export
    beside the original, a .dcm.gz of it) is kept once, from the first file, as dcm2niix does."""
    seen: dict[tuple, FrameRecord] = {}
    copies: dict[str, int] = defaultdict(int)
    kept = []
    for f in sorted(frames, key=lambda r: (r.path, r.frame if r.frame is not None else -1, r.mosaic_index)):
        uid = f.sop_uid
        key = (uid, f.frame, f.mosaic_index)
        if uid and key in seen and seen[key].path != f.path:
            copies[seen[key].path] += f.mosaic_index == 0
            continue
        seen[key] = f
        kept.append(f)
    for f in kept:
        if copies.get(f.path):  # beside what the file already warns about (a defect, a mosaic note)
            copy_note = f"the same image is in {copies[f.path] + 1} files (same SOP Instance UID): read once"
            f.note = "; ".join(n for n in (f.note, copy_note) if n)
    return kept


def group_frames(frames: list[FrameRecord]) -> list[DicomSeries]:
    series: dict[tuple, list[FrameRecord]] = defaultdict(list)
    for frame in _drop_copies(frames):
        series[frame.series_key].append(frame)
    out: list[DicomSeries] = []
    for key, members in series.items():
        base_id = members[0].series_uid or "noUID-" + hashlib.sha1(repr(key).encode()).hexdigest()[:8]
        volumes = []
        for group in _split_geometry(members):
            volumes.extend(_split_duplicates(group))
        volumes.sort(key=lambda v: (v[0], _order_key(v[1][0])))
        # Derived isotropic (trace) images are stored with the DWI volumes but are not one of
        # them: they stay separate sources, outside the 4D group (dcm2niix drops them).
        volumes = [v for v in volumes if not _is_trace(v[1])] + [v for v in volumes if _is_trace(v[1])]
        sources = []
        for n, (note, group) in enumerate(volumes, 1):
            source_id = base_id if len(volumes) == 1 else f"{base_id}.{n}"
            warnings = [note] if note else []
            warnings += sorted({f.note for f in group if f.note})
            source = DicomSeries(source_id, group, warnings)
            if group[0].diffusion is not None:
                source.diffusion = (group[0].diffusion.b, group[0].diffusion.gradient)
            if _is_trace(group):
                source.description = f"{source.description} (derived trace)".strip()
                source.warnings.append("derived isotropic (trace) diffusion image: kept apart from "
                                       "the diffusion volumes of the series")
            sources.append(source)
        _group_volumes(base_id, [s for s in sources if not _is_trace(s.frames)])
        out.extend(sources)
    # the volumes of a group stay together, in acquisition order (".2" before ".10")
    out.sort(key=lambda s: (s.modality, s.description, s.volume_group or s.id, s.volume_index, s.id))
    return out


# the notes _split_duplicates leaves on each volume it separates
_SPLIT_NOTES = ("frames share slice positions: split into", "several images at the same slice position: split into")


def _is_trace(frames: list[FrameRecord]) -> bool:
    return frames[0].diffusion is not None and frames[0].diffusion.trace


def _grid_key(source: "DicomSeries") -> tuple:
    return (source.frames[0].volume_kind, tuple(source.size), tuple(np.round(source.spacing, 4)), tuple(np.round(source.origin, 2)),
            tuple(np.round(np.asarray(source.direction).ravel(), 4)))


def _group_volumes(base_id: str, sources: list["DicomSeries"]) -> None:
    """Volumes of one series on one voxel grid form a 4D group (time points, DWI directions),
    in acquisition order; echoes and image types (magnitude, phase) get groups of their own, as
    dcm2niix writes them to separate files, and so does each grid of a series with several."""
    grids: dict[tuple, list[DicomSeries]] = defaultdict(list)
    for source in sources:
        grids[_grid_key(source)].append(source)
    multi = [members for members in grids.values() if len(members) > 1]
    for k, members in enumerate(multi):
        group = base_id if len(multi) == 1 else f"{base_id}/{k + 1}"
        for index, source in enumerate(members):
            source.volume_group, source.volume_index = group, index
            # being one volume of a 4D series is what the group says, not something to warn about
            # (images that nothing in the header tells apart still are)
            source.warnings = [w for w in source.warnings if not w.startswith(_SPLIT_NOTES[0])]


def _order_key(f: FrameRecord) -> tuple:
    return (f.instance_number, f.path, f.frame if f.frame is not None else -1)


def _split_geometry(frames: list[FrameRecord]) -> list[list[FrameRecord]]:
    """Separate frames of different size, orientation or pixel spacing (e.g. localizers)."""
    groups: dict[tuple, list[FrameRecord]] = defaultdict(list)
    for f in frames:
        ori = tuple(round(float(v), 3) for v in f.orientation) if f.orientation is not None else None
        spacing = tuple(round(float(v), 4) for v in f.pixel_spacing) if f.pixel_spacing is not None else None
        # A frame with no position at all (projection X-ray, secondary capture) is its own image,
        # unless it comes from a multi-frame file, whose frames stay together.
        alone = f.path if (f.position is None and f.frame is None) else None
        groups[(f.rows, f.columns, f.samples, ori, spacing, alone)].append(f)
    return list(groups.values())


def _position_key(f: FrameRecord) -> tuple | None:
    return tuple(round(float(v), POSITION_DECIMALS) for v in f.position) if f.position is not None else None


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
        note = f"{_SPLIT_NOTES[0]} {len(groups)} volumes by echo/time/image type/diffusion"
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
    note = f"{_SPLIT_NOTES[1]} {len(result)} volumes"
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
            extent = (proj[-1] - proj[0]) / dz
            n = int(np.floor(extent + 1e-3)) + 1  # grid stays inside the scanned extent
            if n > MAX_GRID_GROWTH * len(frames) + 2:
                # One wild position (or slices of several volumes) would make a grid far larger
                # than what was acquired: keep the slices as stored instead of inventing them.
                warnings.append(f"slice positions are implausible (steps {steps.min():.3g} to {steps.max():.3g} mm "
                                f"for {len(frames)} slices): shown at a regular {dz:.4g} mm in slice order, "
                                "not resampled; positions along the slice axis are unreliable")
            else:
                grid_positions = proj[0] + dz * np.arange(n)
                missing = int(round(np.sum(np.maximum(np.round(steps / dz) - 1, 0))))
                what = (f"{missing} slice(s) missing"
                        if missing and np.allclose(steps / dz, np.round(steps / dz), atol=0.05)
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
