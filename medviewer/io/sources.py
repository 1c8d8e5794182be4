"""What a scan of a path finds: loadable image sources and the problems met on the way."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from medviewer.core.volume import Volume


@dataclass
class ImageSource:
    """One loadable volume found under a path (a DICOM series or an image file)."""

    id: str
    kind: str  # "dicom" or "file"
    modality: str
    description: str
    size: tuple[int, int, int]  # (x, y, z)
    spacing: tuple[float, float, float]  # (x, y, z) mm
    origin: tuple[float, float, float]
    direction: np.ndarray  # 3x3, columns are the x, y, z axes
    files: list[str]
    transfer_syntaxes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    components: int = 1
    # False when no header gave the in-plane pixel spacing (PNG/JPEG, DICOM without PixelSpacing):
    # the 1 mm in `spacing` is then a placeholder, and lengths are in pixels
    spacing_known: bool = True
    # DICOM SEG / RTSTRUCT files found beside this series that reference it (paths, sorted);
    # read each onto the loaded volume with medviewer.io.label_io.read_any_labels(path, self, volume)
    linked_labels: list[str] = field(default_factory=list)
    # Volumes of one acquisition (DICOM series split into volumes, the time points of a 4D file)
    # share a volume_group; volume_index orders them (0-based). A lone volume has group "".
    volume_group: str = ""
    volume_index: int = 0
    # Diffusion weighting of this volume when the header gives it: (b-value s/mm^2, unit gradient
    # direction in the image's LPS world frame, or None for b=0 / trace images)
    diffusion: tuple[float, tuple[float, float, float] | None] | None = None

    def load(self) -> Volume:  # pragma: no cover - implemented by subclasses
        raise NotImplementedError

    def preview(self) -> Volume:
        """A volume holding at least the middle slice, for thumbnails (the whole volume by default)."""
        return self.load()

    def info(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "modality": self.modality,
            "description": self.description,
            "size": [int(v) for v in self.size],
            "spacing": [float(v) for v in self.spacing],
            "spacing_known": bool(self.spacing_known),
            "origin": [float(v) for v in self.origin],
            "direction": [float(v) for v in np.asarray(self.direction).ravel()],
            "components": int(self.components),
            "files": len(self.files),
            "path": self.files[0] if len(self.files) == 1 else _common_dir(self.files),
            "transfer_syntaxes": list(self.transfer_syntaxes),
            "warnings": list(self.warnings),
            "linked_labels": list(self.linked_labels),
            "volume_group": self.volume_group,
            "volume_index": int(self.volume_index),
            "diffusion": (None if self.diffusion is None else
                          {"b": float(self.diffusion[0]),
                           "gradient": None if self.diffusion[1] is None else [float(v) for v in self.diffusion[1]]}),
        }


@dataclass
class Problem:
    """A file that could not be used, and why (one line a user can act on)."""

    path: str
    reason: str

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"


@dataclass
class Discovery:
    sources: list[ImageSource] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    skipped: int = 0  # files that are not images at all (README, JSON ...)
    root: str = ""  # the path that was scanned

    def nothing_found(self) -> str:
        """Why no source was found, in one line naming the path (for an error message)."""
        if len(self.problems) == 1 and self.problems[0].path == self.root:
            return str(self.problems[0])  # the one file named could not be read: say why
        where = f" under {self.root}" if self.root else ""
        if self.problems:
            n = len(self.problems)
            return (f"no images found{where} ({n} file{'s' if n > 1 else ''} could not be read"
                    + (f"; the first: {self.problems[0]})" if n > 1 else f": {self.problems[0]})"))
        if self.skipped:
            return f"no images found{where} ({self.skipped} file(s) that are not images)"
        return f"no images found{where}"

    def report_problems_separately(self) -> bool:
        """Whether the problems need lines of their own (nothing_found() says it all otherwise)."""
        return bool(self.sources) or len(self.problems) > 1

    def find(self, series_id: str | None) -> ImageSource:
        """The source named by id (or 1-based position); the only one when id is None."""
        from medviewer.core.errors import MedViewerError

        if not self.sources:
            raise MedViewerError(self.nothing_found())
        if series_id is None:
            if len(self.sources) > 1:
                ids = ", ".join(s.id for s in self.sources)
                where = f" under {self.root}" if self.root else ""
                groups = {s.volume_group for s in self.sources}
                if len(groups) == 1 and "" not in groups:
                    raise MedViewerError(f"{len(self.sources)} volumes of one 4D series found{where}; write them "
                                         f"all with --4d, or choose one with --series ({ids})")
                if groups - {""}:
                    raise MedViewerError(f"{len(self.sources)} series and volumes found{where}; write the volumes "
                                         f"of a 4D series at once with --4d, or choose one with --series ({ids})")
                raise MedViewerError(f"{len(self.sources)} series found{where}; choose one with --series ({ids})")
            return self.sources[0]
        for source in self.sources:
            if source.id == series_id:
                return source
        if series_id.isdigit() and 1 <= int(series_id) <= len(self.sources):
            return self.sources[int(series_id) - 1]
        where = f" under {self.root}" if self.root else ""
        raise MedViewerError(f"no series with id {series_id!r}{where}; found: "
                             + ", ".join(f"[{n}] {s.id}" for n, s in enumerate(self.sources, 1)))


def _common_dir(paths: list[str]) -> str:
    import os

    try:
        return os.path.commonpath([os.path.dirname(p) for p in paths])
    except ValueError:
        return ""
