"""Print, per corpus, how medviewer's reading of real DICOM compares with dcm2niix's references
(and SimpleITK's / nibabel's where a corpus has no dcm2niix output).

    .venv/bin/python scripts/compare_dcm2niix.py [--data ../shared/data] [--corpus NAME] [--keep DIR]

Each series is read the two ways a user does (the viewer's load and `medviewer convert`) and compared
in world space: grid size, the largest distance of a corner voxel from the reference's (mm), the share
of voxels whose values agree (relative 1e-3) and a verdict with the reasons. The comparison is
tests/support/dcm2niix_reference.py, the same code tests/unit/test_dcm2niix_corpus.py asserts with.
Exit status 0 when every row passes, 1 otherwise.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support.dcm2niix_reference import (  # noqa: E402
    convert_options, corpus_cases, default_data_root, run_case, table)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=default_data_root(), help="the shared data folder")
    parser.add_argument("--corpus", action="append", help="only this corpus (repeatable)")
    parser.add_argument("--keep", type=Path, help="write medviewer's converted files under DIR and keep them")
    args = parser.parse_args(argv)
    cases = [c for c in corpus_cases(args.data) if not args.corpus or c.corpus in args.corpus]
    if not cases:
        print(f"no corpus cases found under {args.data}", file=sys.stderr)
        return 1
    start = time.perf_counter()
    options = convert_options()
    rows = []
    for case in cases:
        rows.extend(run_case(case, args.keep, options))
    print(table(rows))
    passed = sum(r.passed for r in rows)
    used = " ".join(sorted(options)) or "none"
    print(f"{passed}/{len(rows)} rows pass ({len(cases)} series; convert options: {used}; "
          f"{time.perf_counter() - start:.1f} s)")
    return 0 if passed == len(rows) else 1


if __name__ == "__main__":
    sys.exit(main())
