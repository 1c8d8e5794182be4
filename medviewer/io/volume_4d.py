"""The volumes of one acquisition as one 4D image: `medviewer convert SERIES OUT.nii.gz --4d`.

A DICOM series that holds several volumes on one grid (fMRI time points, DWI directions) gives
one source per volume, sharing `volume_group` (medviewer.io.dicom_series); a 4D NIfTI/NRRD gives
one source per time point the same way. `group_for` picks the group a user means, `load_4d`
stacks it in acquisition order ((t, z, y, x), headers already parsed by the one discovery), and
`write_4d` writes it, with FSL-style `.bval`/`.bvec` beside a NIfTI for diffusion series.

bval/bvec follow dcm2niix and FSL: b-values in s/mm^2 on one line; gradient directions as three
lines (x, y, z), in the voxel axes of the written image, with the x component negated when the
image's voxel-to-world matrix has a positive determinant (FSL's radiological convention).
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np

from medviewer.core.errors import ImageWriteError, MedViewerError
from medviewer.core.memory import check_fits
from medviewer.io.sources import Discovery, ImageSource

GEOMETRY_TOLERANCE = 1e-3  # mm / direction cosine: volumes of one 4D image share their grid


@dataclass
class Stack:
    data: np.ndarray  # (t, z, y, x)
    spacing: tuple[float, float, float]
    origin: tuple[float, float, float]
    direction: np.ndarray
    time_step: float  # seconds between volumes (the repetition time), 1.0 when unknown
    diffusion: list[tuple[float, tuple[float, float, float] | None] | None]
    warnings: list[str] = field(default_factory=list)
    file_notes: str = ""

    def describe(self) -> str:
        t, z, y, x = self.data.shape
        return f"{x}x{y}x{z}x{t} {self.data.dtype}"


def group_key(source: ImageSource) -> tuple:
    """What makes volumes one acquisition: the same volume_group (a lone volume is its own)."""
    return (source.kind, source.volume_group) if source.volume_group else ("", source.kind, source.id)


def volume_groups(sources: list[ImageSource]) -> list[list[ImageSource]]:
    """The sources grouped by acquisition, each group in volume order, in the order the groups are
    first met (the series browser's rows, the volume bar's steps, `convert --4d`'s choice)."""
    rows: dict[tuple, list[ImageSource]] = {}
    for source in sources:
        rows.setdefault(group_key(source), []).append(source)
    return [sorted(members, key=lambda s: s.volume_index) for members in rows.values()]


def group_for(found: Discovery, series: str | None) -> tuple[list[ImageSource], list[ImageSource]]:
    """(the volumes of the 4D group SERIES belongs to, in order; the sources left out). Without
    SERIES: the only 4D group there is (a derived trace or a localizer beside it is left out),
    or the only source."""
    groups = volume_groups(found.sources)
    if series is not None:
        chosen = found.find(series)
        members = next(g for g in groups if any(s is chosen for s in g))
        return members, [s for s in found.sources if not any(s is m for m in members)]
    grouped = [g for g in groups if g[0].volume_group]
    if len(grouped) == 1:
        return grouped[0], [s for s in found.sources if not s.volume_group]
    if not grouped and len(groups) == 1:
        return groups[0], []
    if not found.sources:
        raise MedViewerError(found.nothing_found())
    where = f" under {found.root}" if found.root else ""
    choices = [f"[{n}] {s.id}" + (f" (volume {s.volume_index + 1} of group {s.volume_group})" if s.volume_group else "")
               for n, s in enumerate(found.sources, 1) if not s.volume_group or s.volume_index == 0]
    raise MedViewerError(f"{len(groups)} series found{where}; choose one with --series "
                         f"(any volume of a 4D series names the whole series): " + ", ".join(choices))


def _same_grid(a, b) -> bool:
    return (a.shape == b.shape and np.allclose(a.spacing, b.spacing, atol=GEOMETRY_TOLERANCE)
            and np.allclose(a.origin, b.origin, atol=GEOMETRY_TOLERANCE)
            and np.allclose(a.direction, b.direction, atol=GEOMETRY_TOLERANCE))


def _repetition_time(volume) -> float:
    """Seconds between volumes: the DICOM repetition time, 1.0 when unknown."""
    tr = float(volume.metadata.get("RepetitionTime", 0.0)) / 1000.0
    return tr if np.isfinite(tr) and tr > 0 else 1.0


def load_4d(sources: list[ImageSource]) -> Stack:
    """Load and stack SOURCES (one volume each, same grid). The 4D array is allocated once, after
    checking that it fits in memory."""
    if not sources:
        raise MedViewerError("no volumes to stack")
    first = sources[0].load()
    if first.is_rgb:
        raise MedViewerError(f"{sources[0].id}: colour images cannot be written as a 4D volume")
    check_fits(first.data.nbytes * len(sources) * 2,  # the stack and the writer's copy of it
               f"the {len(sources)}-volume 4D image ({first.describe()} each)")
    data = np.empty((len(sources),) + first.data.shape, dtype=first.data.dtype)
    data[0] = first.data
    warnings = list(first.warnings)
    notes = first.metadata.get("file_notes", "")
    for t, source in enumerate(sources[1:], 1):
        volume = source.load()
        if not _same_grid(volume, first):
            raise MedViewerError(f"{source.id}: volume {t + 1} lies on a different voxel grid than volume 1 "
                                 f"({volume.describe()} vs {first.describe()}); convert the volumes one by one")
        if not np.can_cast(volume.data.dtype, data.dtype, "safe"):
            data = data.astype(np.result_type(data.dtype, volume.data.dtype))
        data[t] = volume.data
        warnings.extend(w for w in volume.warnings if w not in warnings)
    return Stack(data=data, spacing=first.spacing, origin=first.origin, direction=first.direction,
                 time_step=_repetition_time(first), diffusion=[s.diffusion for s in sources],
                 warnings=warnings, file_notes=notes)


def fsl_gradients(stack: Stack) -> tuple[list[float], np.ndarray] | None:
    """(b-values, 3 x N directions) in the FSL convention for the written image; None when the
    volumes carry no diffusion information."""
    if all(d is None for d in stack.diffusion):
        return None
    direction = np.asarray(stack.direction, dtype=float)
    flip_x = np.linalg.det(direction) > 0  # NIfTI's qform keeps ITK's determinant (LPS->RAS is a rotation)
    bvals, vecs = [], []
    for d in stack.diffusion:
        b, g = (d if d is not None else (0.0, None))
        bvals.append(float(b))
        if g is None:
            vecs.append(np.zeros(3))
            continue
        v = direction.T @ np.asarray(g, dtype=float)  # LPS gradient -> components along the voxel axes
        if flip_x:
            v[0] = -v[0]
        vecs.append(v + 0.0)
    return bvals, np.array(vecs).T


def _fmt(value: float) -> str:
    text = f"{value:.6g}"
    return "0" if text in ("-0", "0") else text


def diffusion_paths(path: str) -> tuple[str, str]:
    name = os.fspath(path)
    for ext in (".nii.gz", ".nii"):
        if name.lower().endswith(ext):
            name = name[: -len(ext)]
            break
    return name + ".bval", name + ".bvec"


def write_4d(stack: Stack, path: str) -> list[str]:
    """Write the 4D image (NIfTI, NRRD or MHA) and, for diffusion into NIfTI, its .bval/.bvec.
    Returns the paths written; each goes through a temporary and a rename."""
    import SimpleITK as sitk

    from medviewer.core.tempfiles import write_atomically
    from medviewer.io.writer import set_file_notes, write_image

    image = sitk.GetImageFromArray(stack.data, isVector=False)  # (t, z, y, x) -> a 4D image of size (x, y, z, t)
    image.SetSpacing(tuple(float(v) for v in stack.spacing) + (float(stack.time_step),))
    image.SetOrigin(tuple(float(v) for v in stack.origin) + (0.0,))
    direction = np.eye(4)
    direction[:3, :3] = stack.direction
    image.SetDirection(tuple(float(v) for v in direction.ravel()))
    set_file_notes(image, stack.file_notes)
    written = [write_image(image, path)]
    del image
    gradients = fsl_gradients(stack)
    if gradients is not None and path.lower().endswith((".nii", ".nii.gz")):
        bvals, vecs = gradients
        bval_path, bvec_path = diffusion_paths(path)
        try:
            write_atomically(bval_path, lambda fh: fh.write(" ".join(_fmt(b) for b in bvals) + "\n"), text=True)
            write_atomically(bvec_path, lambda fh: fh.write("".join(
                " ".join(_fmt(v) for v in row) + "\n" for row in vecs)), text=True)
        except OSError as exc:
            raise ImageWriteError(f"{bval_path}: cannot write: {exc.strerror or exc}") from exc
        written += [bval_path, bvec_path]
    return written
