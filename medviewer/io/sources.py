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
            "origin": [float(v) for v in self.origin],
            "direction": [float(v) for v in np.asarray(self.direction).ravel()],
            "components": int(self.components),
            "files": len(self.files),
            "path": self.files[0] if len(self.files) == 1 else _common_dir(self.files),
            "transfer_syntaxes": list(self.transfer_syntaxes),
            "warnings": list(self.warnings),
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

    def find(self, series_id: str | None) -> ImageSource:
        """The source named by id (or 1-based position); the only one when id is None."""
        from medviewer.core.errors import MedViewerError

        if not self.sources:
            raise MedViewerError("no images found" + (f" ({self.problems[0]})" if self.problems else ""))
        if series_id is None:
            if len(self.sources) > 1:
                ids = ", ".join(s.id for s in self.sources)
                raise MedViewerError(f"{len(self.sources)} series found; choose one with --series ({ids})")
            return self.sources[0]
        for source in self.sources:
            if source.id == series_id:
                return source
        if series_id.isdigit() and 1 <= int(series_id) <= len(self.sources):
            return self.sources[int(series_id) - 1]
        raise MedViewerError(f"no series with id {series_id!r}; found: " + ", ".join(s.id for s in self.sources))


def _common_dir(paths: list[str]) -> str:
    import os

    try:
        return os.path.commonpath([os.path.dirname(p) for p in paths])
    except ValueError:
        return ""
