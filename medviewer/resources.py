"""Where the shipped resources (demo study, models, colour tables) live."""
from __future__ import annotations

import os
from pathlib import Path

from medviewer.core.errors import MedViewerError


def resources_dir() -> Path:
    """The repository's resources/ folder (the project is installed in editable mode),
    or MEDVIEWER_RESOURCES when set."""
    env = os.environ.get("MEDVIEWER_RESOURCES")
    candidates = [Path(env)] if env else []
    candidates.append(Path(__file__).resolve().parent.parent / "resources")
    for path in candidates:
        if (path / "demo").is_dir():
            return path
    raise MedViewerError("resources/ not found: install MedViewer from its source folder "
                         "(pip install -e .) or set MEDVIEWER_RESOURCES")


def demo_paths() -> list[Path]:
    demo = resources_dir() / "demo"
    return [demo / "ct_chest_20", demo / "xray" / "chest_xray_pneumonia.jpeg",
            demo / "mri_hippocampus" / "hippocampus_001.nii.gz"]
