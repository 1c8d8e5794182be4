#!/usr/bin/env python
"""Export torch models to TorchScript (model.ts beside model.pt, recorded in manifest.json) so that
inference loads them without importing MONAI, and classifiers also to ONNX (model.onnx), so that a
CPU classification needs neither torch nor MONAI. Rerunnable: a current export is left as it is.

    python scripts/export_models.py                      # every torch model in resources/models
    python scripts/export_models.py resources/models/pneumonia-cnn [FOLDER ...]

Each export is checked equal to the eager network to 1e-5 (medviewer.ai.backends.export; the ONNX
one under ONNX Runtime).
Exit code 1 when a folder could not be exported (the others still are).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("folders", nargs="*", help="model folders (default: the torch models in resources/models)")
    args = p.parse_args(argv)
    from medviewer.ai.registry import read_manifest
    from medviewer.core.errors import MedViewerError
    from medviewer.resources import resources_dir

    folders = [Path(f) for f in args.folders] or sorted(
        f for f in (resources_dir() / "models").iterdir()
        if (f / "manifest.json").is_file() and read_manifest(f).manifest.get("framework", "torch") == "torch")
    from medviewer.ai.backends.export import export_onnx, export_torchscript
    from medviewer.ai.backends.export_records import NAMES, export_problem

    failures = 0
    for folder in folders:
        kinds = [("torchscript", export_torchscript)]
        if read_manifest(folder).task == "classification":
            kinds.append(("onnx", export_onnx))
        for kind, export in kinds:
            try:
                before = export_problem(read_manifest(folder), kind)
                path = export(folder)
                record = read_manifest(folder).manifest[kind]
                state = f"exported ({before})" if before else "up to date"
                print(f"{folder}: {state}: {path.name}, max |eager - {NAMES[kind]}| {record['max_abs_difference']:.3g}")
            except MedViewerError as exc:
                print(f"{folder}: not exported to {NAMES[kind]}: {exc}", file=sys.stderr)
                failures += 1
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
