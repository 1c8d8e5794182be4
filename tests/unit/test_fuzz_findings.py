"""Every file the fuzzer found (tests/data/fuzz_findings: once a traceback, a segfault, a hang, a
memory blow-up, terminal noise or a silent success) now gives what its finding.json expects from
`medviewer info` and `medviewer convert`: one clean line and exit 1, or success where that is
right ("expect"; a case scripts/fuzz.py saved and nobody has reviewed yet must be clean, at
least). Cases that once took the process down are replayed in a child process."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.fuzz_cases import GOOD, run_in_process, run_in_subprocess

FINDINGS = Path(__file__).parents[1] / "data" / "fuzz_findings"
CASES = sorted(p for p in FINDINGS.iterdir() if (p / "finding.json").is_file())
KILLED = {"crash", "hang", "memory"}


def _main_file(folder: Path) -> Path:
    return next(p for p in sorted(folder.iterdir()) if p.name.startswith("case") and p.suffix != ".raw")


def test_the_corpus_is_there():
    assert len(CASES) >= 15


@pytest.mark.parametrize("folder", CASES, ids=[p.name for p in CASES])
def test_fuzz_finding_now_succeeds_or_fails_cleanly(folder, capsys, monkeypatch):
    finding = json.loads((folder / "finding.json").read_text())
    ops = [tuple(op) for op in finding["ops"]]
    case = _main_file(folder)
    if KILLED & set(finding["found"].values()):
        details: dict = {}
        outcomes = run_in_subprocess(case, ops, timeout=120, details=details)
    else:
        monkeypatch.setenv("MEDVIEWER_MEMORY_LIMIT", "256M")
        outcomes, details = run_in_process(case, ops, capsys), None
    # a case scripts/fuzz.py has just saved has no "expect" yet: fixed, it must at least be clean
    expected = finding.get("expect")
    if expected is None:
        assert set(outcomes.values()) <= set(GOOD), (finding.get("note"), outcomes, details)
    else:
        assert outcomes == expected, (finding.get("note"), details)
