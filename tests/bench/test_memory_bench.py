"""Benchmark: peak memory of `medviewer convert in.nii out.nii` and of the viewer opening in.nii,
against SimpleITK's own ReadImage (and ReadImage + WriteImage) of the same file, in the same run.

Issue 12, deliver 9: convert <= 1.3x the volume, the viewer <= 2x. Each program runs as a fresh
process; its peak resident set (ru_maxrss from wait4 for a program that exits; VmHWM read from
/proc once the viewer has printed "opened ..." and drawn for a moment) is measured on the big
synthetic volume and on a tiny one of the same type. The ratio is (peak on the big volume - peak on
the tiny one) / volume bytes: what the volume costs, the interpreter and its libraries left out.

The volume is int16 with a smooth pattern, MEDVIEWER_BENCH_VOLUME_GB gigabytes (default 1; the
issue's case is 3) as an uncompressed .nii; MEDVIEWER_BENCH_ROUNDS runs of each (default 3, medians).
A second test measures `convert` of a 300-slice 512x512 DICOM series the same way.
Run: python -m pytest tests/bench/test_memory_bench.py --bench -s
  or python tests/bench/test_memory_bench.py [--gb 3]
"""
from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
MEDVIEWER = Path(sys.executable).parent / "medviewer"
MAX_CONVERT_RATIO = 1.3
MAX_VIEWER_RATIO = 2.0
ROUNDS = int(os.environ.get("MEDVIEWER_BENCH_ROUNDS", "3"))
SETTLE_S = 2.0  # the viewer keeps drawing for a moment after "opened"

pytestmark = pytest.mark.bench


def volume_gb() -> float:
    return float(os.environ.get("MEDVIEWER_BENCH_VOLUME_GB", "1"))


MAKE_VOLUME = """
import sys
import numpy as np, SimpleITK as sitk
from medviewer.io.sitk_buffer import new_image
path, nz, ny, nx = sys.argv[1], *map(int, sys.argv[2:])
image, data = new_image((nx, ny, nz), sitk.sitkInt16)  # filled in place: the volume held once
ramp = (np.add.outer(np.arange(ny), np.arange(nx)) % 2000).astype(np.int16)
for k in range(nz):
    np.add(ramp, k % 500, out=data[k])
image.SetSpacing((0.5, 0.5, 1.0))
image.SetOrigin((-100.0, -120.0, 30.0))
sitk.WriteImage(image, path, useCompression=False)
"""


def write_volume(path: Path, nbytes: float) -> int:
    """An int16 .nii of about NBYTES (512 x 1024 x z), written by a subprocess (this process stays
    small); returns the voxel bytes."""
    ny, nx = 512, 1024
    nz = max(2, int(nbytes // (ny * nx * 2)))
    subprocess.run([sys.executable, "-c", MAKE_VOLUME, str(path), str(nz), str(ny), str(nx)], check=True)
    return nz * ny * nx * 2


def _env(tmp: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    env.update(QT_QPA_PLATFORM="offscreen", MEDVIEWER_SETTINGS=str(tmp / "s.ini"),
               MEDVIEWER_DATA_DIR=str(tmp / "d"), MEDVIEWER_NO_DIALOGS="1", PYTHONUNBUFFERED="1")
    return env


# A child's ru_maxrss counts what it inherited at fork (Linux keeps the high-water mark across
# exec), so programs are started from this small launcher, not from the test process.
LAUNCHER = ("import resource, subprocess, sys\n"
            "rc = subprocess.call(sys.argv[2:])\n"
            "open(sys.argv[1], 'w').write(str(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss))\n"
            "sys.exit(rc)\n")


def peak_of_exiting(cmd: list[str], env: dict[str, str], folder: Path) -> int:
    """Peak RSS (bytes) of a program that runs to its end (ru_maxrss, RUSAGE_CHILDREN of a launcher)."""
    report = folder / "maxrss.txt"
    out = subprocess.run([sys.executable, "-S", "-c", LAUNCHER, str(report), *cmd], capture_output=True,
                         text=True, env=env, cwd=REPO)
    assert out.returncode == 0, (out.stdout + out.stderr)[-2000:]
    return int(report.read_text()) * 1024


def _vm_hwm(pid: int) -> int:
    with open(f"/proc/{pid}/status") as fp:
        for line in fp:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmHWM")


def peak_of_viewer(path: Path, env: dict[str, str]) -> int:
    """Peak RSS (bytes) of the viewer from its start until it has shown PATH."""
    proc = subprocess.Popen([str(MEDVIEWER), str(path)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, env=env, cwd=REPO)
    lines = []
    try:
        for line in proc.stdout:
            lines.append(line.rstrip())
            if line.startswith("opened "):
                break
        else:
            raise AssertionError("the viewer did not open the volume:\n" + "\n".join(lines[-30:]))
        time.sleep(SETTLE_S)
        return _vm_hwm(proc.pid)
    finally:
        proc.terminate()
        proc.wait(timeout=120)


SITK_READ = "import SimpleITK as s, sys; im = s.ReadImage(sys.argv[1])"
SITK_COPY = "import SimpleITK as s, sys; s.WriteImage(s.ReadImage(sys.argv[1]), sys.argv[2])"


def programs(src: Path, out: Path) -> dict[str, tuple]:
    py = sys.executable
    return {
        "SimpleITK ReadImage": ("exit", [py, "-c", SITK_READ, str(src)]),
        "SimpleITK ReadImage+WriteImage": ("exit", [py, "-c", SITK_COPY, str(src), str(out)]),
        "medviewer convert": ("exit", [str(MEDVIEWER), "convert", str(src), str(out)]),
        "medviewer viewer (open)": ("view", src),
    }


def measure(folder: Path, gb: float, rounds: int = ROUNDS) -> dict:
    env = _env(folder)
    big, tiny = folder / "big.nii", folder / "tiny.nii"
    nbytes = write_volume(big, gb * 2**30)
    write_volume(tiny, 2**20)
    peaks: dict[str, dict[str, list[int]]] = {}
    for _ in range(rounds):
        for which in ("tiny", "big"):
            src = tiny if which == "tiny" else big
            for name, (kind, cmd) in programs(src, folder / f"out_{which}.nii").items():
                peak = peak_of_exiting(cmd, env, folder) if kind == "exit" else peak_of_viewer(cmd, env)
                peaks.setdefault(name, {}).setdefault(which, []).append(peak)
    for which in ("big", "tiny"):
        (folder / f"out_{which}.nii").unlink(missing_ok=True)
    rows = {}
    for name, by in peaks.items():
        big_peak, tiny_peak = statistics.median(by["big"]), statistics.median(by["tiny"])
        rows[name] = {"peak_gb": big_peak / 2**30, "baseline_gb": tiny_peak / 2**30,
                      "ratio": (big_peak - tiny_peak) / nbytes}
    return {"volume_gb": nbytes / 2**30, "rounds": rounds, "rows": rows}


def table(result: dict) -> str:
    lines = [f"\npeak RSS for a {result['volume_gb']:.2f} GB int16 .nii (median of {result['rounds']}); "
             "ratio = (peak - peak on a 1 MB volume) / volume bytes"]
    for name, row in result["rows"].items():
        lines.append(f"  {name:<32} peak {row['peak_gb']:6.2f} GB  baseline {row['baseline_gb']:5.2f} GB  "
                     f"ratio {row['ratio']:5.2f}")
    return "\n".join(lines)


def test_memory_of_convert_and_viewer(tmp_path):
    gb = volume_gb()
    from medviewer.core.memory import available_bytes

    if available_bytes() < 2.5 * gb * 2**30:  # SimpleITK's own read holds the volume twice
        pytest.skip(f"needs about {2.5 * gb:.1f} GB free for a {gb} GB volume")
    result = measure(tmp_path, gb)
    print(table(result))
    rows = result["rows"]
    assert rows["medviewer convert"]["ratio"] <= MAX_CONVERT_RATIO
    assert rows["medviewer viewer (open)"]["ratio"] <= MAX_VIEWER_RATIO


def test_memory_of_dicom_convert(tmp_path):
    """`convert` of a 300-slice 512x512 uncompressed CT series (tests/bench/test_dicom_load_bench's)."""
    from tests.bench.test_dicom_load_bench import build_series

    env = _env(tmp_path)
    build_series(tmp_path / "big", 300)
    build_series(tmp_path / "tiny", 2)
    peaks = {which: statistics.median(
        peak_of_exiting([str(MEDVIEWER), "convert", str(tmp_path / which), str(tmp_path / f"{which}.nii")], env, tmp_path)
        for _ in range(ROUNDS)) for which in ("tiny", "big")}
    ratio = (peaks["big"] - peaks["tiny"]) / (300 * 512 * 512 * 2)
    print(f"\nmedviewer convert of a 300x512x512 int16 DICOM series: peak {peaks['big'] / 2**30:.2f} GB, "
          f"baseline {peaks['tiny'] / 2**30:.2f} GB, ratio {ratio:.2f} (median of {ROUNDS})")
    assert ratio <= MAX_CONVERT_RATIO


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser()
    ap.add_argument("--gb", type=float, default=volume_gb())
    ap.add_argument("--rounds", type=int, default=ROUNDS)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        print(table(measure(Path(tmp), args.gb, args.rounds)))
