"""Shared fixtures: the repository's demo data (always there) and ../shared/data (skipped when absent)."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / "resources" / "demo"
SHARED_DATA = Path(os.environ.get("MEDVIEWER_SHARED_DATA", REPO.parent / "shared" / "data"))


def pytest_addoption(parser):
    parser.addoption("--bench", action="store_true", default=False,
                     help="run the benchmarks in tests/bench (not part of the default run)")


def pytest_ignore_collect(collection_path, config):
    if "bench" in Path(collection_path).parts and not config.getoption("--bench"):
        return True
    return None


@pytest.fixture(scope="session")
def demo_ct() -> Path:
    return DEMO / "ct_chest_20"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared data not available at {SHARED_DATA}")
    return SHARED_DATA


def shared(*parts: str) -> Path:
    """A path under ../shared/data, skipping the test when it is not there."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"shared data not available: {path}")
    return path
