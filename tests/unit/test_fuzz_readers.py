"""Property: whatever bytes a file holds, `medviewer info` and `medviewer convert` succeed or refuse
with one clean line (exit 1): no traceback, no unexpected error, no control characters or patient
data in the output, and a truncated file never converts as if complete.

The mutations (byte flips, truncations, hostile header field values) and the verdict are those
of scripts/fuzz.py (tests/fuzz_cases.py). Here they run in-process, bounded and derandomized (the
same examples on every run); a few subprocess runs cover what kills a process (segfaults inside
SimpleITK, hangs, runaway memory), which scripts/fuzz.py hunts for at length.
"""
from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.fuzz_cases import (FIELDS, GOOD, HOSTILE_INT, HOSTILE_TEXT, SHARED_DATA, hostile_ops, make_seeds, mutate,
                              run_in_process, run_in_subprocess, write_case)

GENERATED = ["nifti", "nifti-gz", "nrrd", "nrrd-gzip", "mha", "mha-zlib", "mhd", "png", "png-rgb", "jpeg",
             "dicom-native"]
REAL = ["dicom-ct-j2k", "dicom-rle", "dicom-jpeg", "dicom-j2k", "nifti-real"]
PROPERTY = dict(deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


@pytest.fixture(scope="module")
def seeds(tmp_path_factory):
    return {s.name: s for s in make_seeds(tmp_path_factory.mktemp("seeds"))}


def _ops(fmt: str):
    value = st.sampled_from(HOSTILE_TEXT + [str(v) for v in HOSTILE_INT])
    op = st.one_of(
        st.tuples(st.just("flip"), st.floats(0, 1), st.integers(0, 255)),
        st.tuples(st.just("truncate"), st.floats(0.02, 0.99)),
        st.tuples(st.just("field"), st.sampled_from(FIELDS[fmt]), value),
    )
    return st.lists(op, min_size=1, max_size=3).map(hostile_ops)


def _check_mutations(seed, data, capsys, monkeypatch):
    monkeypatch.setenv("MEDVIEWER_MEMORY_LIMIT", "200M")
    ops = data.draw(_ops(seed.fmt), label="ops")
    with tempfile.TemporaryDirectory() as folder:
        case = write_case(Path(folder), mutate(seed, ops))
        outcomes = run_in_process(case, ops, capsys)
    assert set(outcomes.values()) <= set(GOOD), (seed.name, ops, outcomes)


@pytest.mark.parametrize("name", GENERATED)
@settings(max_examples=25, **PROPERTY)
@given(data=st.data())
def test_mutated_generated_files_succeed_or_fail_cleanly(name, seeds, data, capsys, monkeypatch):
    _check_mutations(seeds[name], data, capsys, monkeypatch)


@pytest.mark.parametrize("name", REAL)
@settings(max_examples=10, **PROPERTY)
@given(data=st.data())
def test_mutated_real_files_succeed_or_fail_cleanly(name, seeds, data, capsys, monkeypatch):
    if name not in seeds:
        pytest.skip(f"shared data not available at {SHARED_DATA}")
    _check_mutations(seeds[name], data, capsys, monkeypatch)


# What takes a process down is run in a child process (with a timeout and memory limits).
# (seed, operations, what `info` does: refuse, or list it with a warning; `convert` refuses)
KILLERS = [
    ("mha", [("field", "NDims", "-1")], "error"),  # segfaulted inside SimpleITK's MetaImage reader
    ("mha", [("field", "NDims", "0")], "error"),
    ("mhd", [("field", "DimSize", "4294967297 2 2")], "error"),
    ("nrrd", [("field", "sizes", "2147483647 2147483647 2")], "error"),  # claims 16 EB
    ("nifti", [("field", "dim1", "32767"), ("field", "dim2", "32767"), ("field", "dim3", "32767")], "error"),
    ("dicom-native", [("field", "NumberOfFrames", "999999999")], "ok"),  # hung making 1e9 frame records
    ("png", [("field", "width", "2147483647"), ("field", "height", "2147483647")], "error"),
]


@pytest.mark.parametrize("name,ops,info", KILLERS, ids=[f"{n}-{o[0][1]}={o[0][2]}" for n, o, _ in KILLERS])
def test_files_that_crashed_hung_or_exhausted_memory_now_fail_cleanly(name, ops, info, seeds, tmp_path):
    case = write_case(tmp_path / "case", mutate(seeds[name], ops))
    details: dict = {}
    outcomes = run_in_subprocess(case, ops, timeout=120, details=details)
    assert outcomes == {"info": info, "convert": "error"}, details
