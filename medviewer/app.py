"""Composition root: what `medviewer [PATH...]` opens.

The viewer window is built in medviewer.ui (next milestone); until it lands, opening
prints what was loaded, with the geometry and any warnings.
"""
from __future__ import annotations

import sys

from medviewer.core.errors import MedViewerError

NOTICE = "MedViewer is research and demonstration software: NOT FOR CLINICAL USE."


def load_all(paths: list[str]) -> tuple[list, list[str]]:
    """Load every volume under the paths; problems are collected, never fatal for the rest."""
    from medviewer.io import discover

    volumes, problems = [], []
    for path in paths:
        try:
            found = discover(str(path))
        except MedViewerError as exc:
            problems.append(str(exc))
            continue
        problems.extend(str(p) for p in found.problems)
        if not found.sources and not found.problems:
            problems.append(f"{path}: no images found")
        for source in found.sources:
            try:
                volumes.append((source, source.load()))
            except MedViewerError as exc:
                problems.append(str(exc))
    return volumes, problems


def run_viewer(paths: list[str]) -> int:
    from medviewer.resources import demo_paths

    print(NOTICE)
    if not paths:
        paths = [str(p) for p in demo_paths()]
        print("Opening the demo study (resources/demo, see ATTRIBUTION.md).")
    volumes, problems = load_all(paths)
    for source, volume in volumes:
        lo, hi = (volume.data.min(), volume.data.max()) if volume.data.size else (0, 0)
        print(f"loaded {source.id}: {volume.describe()}, orientation {volume.orientation_code()}, "
              f"values {lo}..{hi}")
        for warning in volume.warnings:
            print(f"  warning: {warning}")
    for problem in problems:
        print(f"medviewer: warning: {problem}", file=sys.stderr)
    if not volumes:
        print("medviewer: error: nothing could be opened", file=sys.stderr)
        return 1
    return 0
