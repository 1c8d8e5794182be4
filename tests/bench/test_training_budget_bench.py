"""`medviewer train --minutes M` is a hard budget: the whole process (start, reading, epochs, the
final evaluation, writing the model) ends within 10% of M, with the model and manifest written.

Run: python -m pytest tests/bench/test_training_budget_bench.py --bench -s
Real data when ../shared/data is there (the chest X-rays), otherwise synthetic X-rays made here.
Baseline in the same run: the same command with a one-epoch limit and no budget (how long one
epoch costs here), so the printed figures show how many epochs the budget bought.
"""
from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

from tests.conftest import SHARED_DATA
from tests.unit.test_training_promises import _xray_folder

pytestmark = pytest.mark.bench
BUDGETS_MIN = (0.5, 1.0)


def _run(args):
    t = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "medviewer", "train", "classification", *args],
                          capture_output=True, text=True, timeout=900)
    return time.monotonic() - t, proc


def test_minutes_is_a_hard_budget(tmp_path):
    real = SHARED_DATA / "chest_xray" / "train"
    data = real if real.is_dir() else _xray_folder(tmp_path / "data", n_patients=60)
    one_s, proc = _run(["--data", str(data), "--out", str(tmp_path / "one"), "--epochs", "1", "--image-size", "96"])
    assert proc.returncode == 0, proc.stderr[-2000:]
    print(f"\nbaseline: one epoch, no budget: {one_s:.1f} s")
    for minutes in BUDGETS_MIN:
        out = tmp_path / f"m{minutes}"
        wall, proc = _run(["--data", str(data), "--out", str(out), "--minutes", str(minutes), "--image-size", "96"])
        assert proc.returncode == 0, proc.stderr[-2000:]
        m = json.loads((out / "manifest.json").read_text())["metrics"]
        print(f"--minutes {minutes}: whole process {wall:.1f} s = {wall / (60 * minutes):.2f} x the budget; "
              f"{m['epochs_run']} epochs, stopped: {m['stopped']}; {m.get('images_read', 'all images read')}")
        assert wall <= 1.10 * 60 * minutes
        assert (out / "model.pt").is_file()
