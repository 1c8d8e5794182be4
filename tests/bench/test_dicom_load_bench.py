"""Benchmark: loading a 300-slice 512x512 uncompressed CT series, against SimpleITK.

Acceptance criterion: reading the series (medviewer ``discover`` + ``load``) is at least as
fast as SimpleITK's ``ImageSeriesReader`` measured in the same run (median ratio <= 1.0,
against "names+read": ``GetGDCMSeriesFileNames`` + ``Execute``, since medviewer also scans
and sorts), and peak memory is at most 1.5x the volume's size above the process baseline.

The series is made once per session from the 20 real JPEG-2000 CT slices of
``ct_series_20``: decoded, written uncompressed (Explicit VR Little Endian), slice k using
real slice k % 20, 2 mm apart, with shuffled file names so that sorting matters.

Run with ``python -m pytest tests/bench --bench -s`` or directly as
``python tests/bench/test_dicom_load_bench.py [--repeats N] [--folder DIR] [--json PATH]``.
Set ``MEDVIEWER_BENCH_JSON`` to a path to get the results as JSON as well;
``MEDVIEWER_BENCH_REPEATS`` sets the number of timed runs per reader (default 9, at least 5).
"""
from __future__ import annotations

import gc
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
SOURCE_DIRS = [Path("/work/shared/data/dicom/ct_series_20"), REPO / "resources" / "demo" / "ct_chest_20"]
N_SLICES = 300
SLICE_STEP_MM = 2.0
MAX_TIME_RATIO = 1.0
MAX_MEMORY_RATIO = 1.5
DEFAULT_REPEATS = 9
MIN_REPEATS = 5

pytestmark = pytest.mark.bench


# --- test data -----------------------------------------------------------------------

def source_folder() -> Path:
    for folder in SOURCE_DIRS:
        if folder.is_dir() and any(folder.iterdir()):
            return folder
    raise FileNotFoundError("no source CT series: looked in " + ", ".join(map(str, SOURCE_DIRS)))


def build_series(dest: Path, n_slices: int = N_SLICES) -> Path:
    """Write an uncompressed n_slices x 512 x 512 CT series into DEST (made if needed)."""
    import pydicom
    from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

    src = source_folder()
    slices = []
    for path in sorted(p for p in src.iterdir() if p.is_file() and not p.name.startswith(".")):
        ds = pydicom.dcmread(path)
        slices.append((ds, np.ascontiguousarray(ds.pixel_array)))
    if not slices:
        raise FileNotFoundError(f"{src}: no DICOM files")
    # real order along z (the source runs head to feet); slice k uses real slice k % 20
    slices.sort(key=lambda item: float(item[0].ImagePositionPatient[2]))
    base = [float(v) for v in slices[0][0].ImagePositionPatient]
    dest.mkdir(parents=True, exist_ok=True)
    study_uid, series_uid = generate_uid(), generate_uid()
    rng = np.random.default_rng(20240601)
    for k in range(n_slices):
        template, pixels = slices[k % len(slices)]
        ds = template.copy()  # shallow: the elements we change are replaced, not mutated
        ds.file_meta = template.file_meta.copy()
        sop_uid = generate_uid()
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.file_meta.MediaStorageSOPClassUID = CTImageStorage
        ds.file_meta.MediaStorageSOPInstanceUID = sop_uid
        ds.SOPClassUID = CTImageStorage
        ds.SOPInstanceUID = sop_uid
        ds.StudyInstanceUID = study_uid
        ds.SeriesInstanceUID = series_uid
        ds.SeriesNumber = 1
        ds.InstanceNumber = k + 1
        z = base[2] + k * SLICE_STEP_MM
        ds.ImagePositionPatient = [base[0], base[1], z]
        ds.SliceLocation = z
        if pixels.dtype != np.uint16:
            raise AssertionError(f"expected uint16 stored values, got {pixels.dtype}")
        ds.PixelData = pixels.astype("<u2").tobytes()
        ds["PixelData"].VR = "OW"
        ds["PixelData"].is_undefined_length = False
        ds.LossyImageCompression = "00"
        name = uuid.UUID(bytes=rng.bytes(16)).hex  # random names: file order != slice order
        ds.save_as(dest / name, enforce_file_format=True)
    return dest


def warm_page_cache(folder: Path) -> int:
    total = 0
    for path in folder.iterdir():
        with open(path, "rb") as fp:
            while chunk := fp.read(1 << 20):
                total += len(chunk)
    return total


# --- readers -------------------------------------------------------------------------

def read_medviewer(folder: Path, phases: dict | None = None):
    """discover + load; with PHASES, append the time of each phase to its list."""
    from medviewer.io import discover

    t0 = time.perf_counter()
    found = discover(str(folder))
    if len(found.sources) != 1:
        raise AssertionError(f"expected one series, found {len(found.sources)}: {found.problems[:3]}")
    t1 = time.perf_counter()
    vol = found.sources[0].load()
    if phases is not None:
        phases.setdefault("discover", []).append(t1 - t0)
        phases.setdefault("load", []).append(time.perf_counter() - t1)
    return vol


def sitk_names(folder: Path) -> list[str]:
    import SimpleITK as sitk

    return list(sitk.ImageSeriesReader.GetGDCMSeriesFileNames(str(folder)))


def read_sitk(names: list[str]):
    import SimpleITK as sitk

    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(names)
    image = reader.Execute()
    return image, sitk.GetArrayViewFromImage(image)


def read_sitk_with_names(folder: Path):
    return read_sitk(sitk_names(folder))


# --- correctness precondition ------------------------------------------------------

def check_same_volume(folder: Path) -> dict:
    vol = read_medviewer(folder)
    image, arr = read_sitk_with_names(folder)
    problems = []
    if vol.data.shape != arr.shape:
        problems.append(f"shape {vol.data.shape} != SimpleITK {arr.shape}")
    elif not np.array_equal(vol.data, arr):
        diff = np.argwhere(vol.data != arr)
        problems.append(f"{len(diff)} voxels differ from SimpleITK (first at z,y,x={tuple(diff[0])})")
    if not np.allclose(vol.origin, image.GetOrigin(), atol=1e-4):
        problems.append(f"origin {vol.origin} != SimpleITK {image.GetOrigin()}")
    if not np.allclose(vol.spacing, image.GetSpacing(), atol=1e-4):
        problems.append(f"spacing {vol.spacing} != SimpleITK {image.GetSpacing()}")
    if not np.allclose(np.asarray(vol.direction).ravel(), image.GetDirection(), atol=1e-6):
        problems.append(f"direction {np.asarray(vol.direction).ravel()} != SimpleITK {image.GetDirection()}")
    if vol.data.shape != (N_SLICES, 512, 512):
        problems.append(f"expected {(N_SLICES, 512, 512)}, got {vol.data.shape}")
    info = {"shape": list(vol.data.shape), "dtype": str(vol.data.dtype), "sitk_dtype": str(arr.dtype),
            "nbytes": vol.nbytes, "origin": list(vol.origin), "spacing": list(vol.spacing),
            "hu_range": [int(vol.data.min()), int(vol.data.max())], "problems": problems}
    del vol, image, arr
    gc.collect()
    return info


# --- timing --------------------------------------------------------------------------

def time_readers(folder: Path, repeats: int) -> dict:
    names = sitk_names(folder)
    phases: dict[str, list[float]] = {}
    readers = {
        "medviewer discover+load": lambda: read_medviewer(folder, phases),
        "SimpleITK names+read": lambda: read_sitk_with_names(folder),
        "SimpleITK read only": lambda: read_sitk(names),
    }
    times: dict[str, list[float]] = {k: [] for k in readers}
    load_before = os.getloadavg()
    for run in range(repeats + 1):  # run 0 warms up imports, thread pools, allocator
        for label, fn in readers.items():
            gc.collect()
            t0 = time.perf_counter()
            result = fn()
            elapsed = time.perf_counter() - t0
            del result
            if run:
                times[label].append(elapsed)
    out = {label: {"median_s": statistics.median(t), "min_s": min(t), "times_s": t}
           for label, t in times.items()}
    ours = times["medviewer discover+load"]
    for label, t in times.items():  # per-round ratios: less sensitive to load that drifts
        out[label]["paired_ratio_median"] = statistics.median(a / b for a, b in zip(ours, t))
    out["medviewer discover+load"]["phases_median_s"] = {k: statistics.median(v[1:]) for k, v in phases.items()}
    out["_loadavg"] = {"before": list(load_before), "after": list(os.getloadavg())}
    return out


# --- peak memory, each reader in a fresh process ------------------------------------

_MEMORY_SCRIPT = r"""
import json, sys
def status():
    out = {}
    with open("/proc/self/status") as fp:
        for line in fp:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                out[key] = int(value.split()[0]) * 1024
    return out
def reset_peak():
    try:  # Linux >= 4.0: "5" resets VmHWM to the current RSS
        with open("/proc/self/clear_refs", "w") as fp:
            fp.write("5")
        return True
    except OSError:
        return False
folder, which = sys.argv[1], sys.argv[2]
import numpy
if which == "medviewer":
    import medviewer.io
    from medviewer.io import discover
else:
    import SimpleITK as sitk
import gc; gc.collect()
reset = reset_peak()
base = status()["VmRSS"]
if which == "medviewer":
    vol = discover(folder).sources[0].load()
    nbytes = vol.nbytes
else:
    r = sitk.ImageSeriesReader()
    r.SetFileNames(r.GetGDCMSeriesFileNames(folder))
    img = r.Execute()
    arr = sitk.GetArrayViewFromImage(img)
    nbytes = arr.nbytes
after = status()
print(json.dumps({"baseline_rss": base, "peak_rss": after["VmHWM"], "final_rss": after["VmRSS"],
                  "nbytes": nbytes, "peak_reset": reset}))
"""


def measure_memory(folder: Path, which: str) -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    proc = subprocess.run([sys.executable, "-c", _MEMORY_SCRIPT, str(folder), which],
                          capture_output=True, text=True, cwd=str(REPO), env=env, timeout=600)
    if proc.returncode != 0:
        raise RuntimeError(f"memory probe for {which} failed:\n{proc.stderr[-3000:]}")
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    out["above_baseline"] = out["peak_rss"] - out["baseline_rss"]
    out["ratio"] = out["above_baseline"] / out["nbytes"]
    return out


# --- the whole run -------------------------------------------------------------------

def run_benchmark(folder: Path, repeats: int = DEFAULT_REPEATS) -> dict:
    repeats = max(MIN_REPEATS, repeats)
    warm_page_cache(folder)
    correctness = check_same_volume(folder)
    timing = time_readers(folder, repeats)
    loadavg = timing.pop("_loadavg")
    ours = timing["medviewer discover+load"]["median_s"]
    for label, row in timing.items():
        row["ratio"] = ours / row["median_s"]
    memory = {"medviewer": measure_memory(folder, "medviewer"),
              "SimpleITK": measure_memory(folder, "sitk")}
    results = {
        "benchmark": "dicom_series_load",
        "series": {"slices": N_SLICES, "rows": 512, "columns": 512,
                   "transfer_syntax": "Explicit VR Little Endian", "folder": str(folder)},
        "repeats": repeats,
        "cpu_count": os.cpu_count(),
        "loadavg_1min": {"before": loadavg["before"][0], "after": loadavg["after"][0]},
        "correctness": correctness,
        "timing": timing,
        "time_ratio": timing["medviewer discover+load"]["median_s"] / timing["SimpleITK names+read"]["median_s"],
        "time_ratio_read_only": timing["medviewer discover+load"]["median_s"] / timing["SimpleITK read only"]["median_s"],
        "memory": memory,
        "limits": {"time_ratio": MAX_TIME_RATIO, "memory_ratio": MAX_MEMORY_RATIO},
    }
    results["passed"] = {
        "correctness": not correctness["problems"],
        "time": results["time_ratio"] <= MAX_TIME_RATIO,
        "memory": memory["medviewer"]["ratio"] <= MAX_MEMORY_RATIO,
    }
    return results


def format_table(results: dict) -> str:
    s = results["series"]
    lines = [f"DICOM series load, {s['slices']} x {s['rows']} x {s['columns']} uncompressed CT "
             f"(median of {results['repeats']}, {results['cpu_count']} CPUs, load average "
             f"{results['loadavg_1min']['before']:.1f} -> {results['loadavg_1min']['after']:.1f})",
             f"{'reader':<30} {'median s':>9} {'min s':>8} {'ratio':>7} {'paired':>7}"]
    for label, row in results["timing"].items():
        lines.append(f"{label:<30} {row['median_s']:>9.3f} {row['min_s']:>8.3f} {row['ratio']:>7.2f}"
                     f" {row['paired_ratio_median']:>7.2f}")
    ph = results["timing"]["medviewer discover+load"]["phases_median_s"]
    lines.append(f"  medviewer phases (medians): discover {ph['discover']:.3f} s, load {ph['load']:.3f} s")
    mv, sk = results["memory"]["medviewer"], results["memory"]["SimpleITK"]
    lines.append(f"peak memory above baseline: medviewer {mv['ratio']:.2f} x volume "
                 f"({mv['above_baseline'] / 2**20:.0f} MB of {mv['nbytes'] / 2**20:.0f} MB), "
                 f"SimpleITK {sk['ratio']:.2f} x ({sk['above_baseline'] / 2**20:.0f} MB)")
    lines.append("ratio = medviewer median / reader median (paired: median of per-round ratios)")
    lines.append(f"criterion: vs SimpleITK names+read "
                 f"{results['time_ratio']:.2f} <= {MAX_TIME_RATIO}, memory {mv['ratio']:.2f} <= {MAX_MEMORY_RATIO}")
    c = results["correctness"]
    lines.append(f"correctness: {'identical to SimpleITK' if not c['problems'] else '; '.join(c['problems'])} "
                 f"(dtype {c['dtype']}, HU {c['hu_range'][0]}..{c['hu_range'][1]})")
    return "\n".join(lines)


def write_json(results: dict, path: str | None) -> None:
    if path:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(json.dumps(results, indent=2))


# --- pytest --------------------------------------------------------------------------

@pytest.fixture(scope="session")
def ct_series_300(tmp_path_factory):
    folder = build_series(tmp_path_factory.mktemp("ct300") / "series")
    yield folder
    shutil.rmtree(folder, ignore_errors=True)  # 150 MB: do not leave it to pytest's tmp retention


@pytest.fixture(scope="module")
def bench_results(ct_series_300, request) -> dict:
    repeats = int(os.environ.get("MEDVIEWER_BENCH_REPEATS", DEFAULT_REPEATS))
    results = run_benchmark(ct_series_300, repeats)
    table = format_table(results)
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:  # shown even without -s
        reporter.write_line("")
        for line in table.splitlines():
            reporter.write_line(line)
    else:
        print("\n" + table)
    write_json(results, os.environ.get("MEDVIEWER_BENCH_JSON"))
    return results


def test_series_reads_like_simpleitk(bench_results):
    problems = bench_results["correctness"]["problems"]
    assert not problems, "medviewer and SimpleITK disagree: " + "; ".join(problems)


def test_load_at_least_as_fast_as_simpleitk(bench_results):
    if bench_results["correctness"]["problems"]:
        pytest.fail("correctness precondition failed; timing is meaningless")
    ratio = bench_results["time_ratio"]
    assert ratio <= MAX_TIME_RATIO, (
        f"medviewer discover+load is {ratio:.2f}x SimpleITK names+read (limit {MAX_TIME_RATIO})\n"
        + format_table(bench_results))


def test_peak_memory_within_limit(bench_results):
    mem = bench_results["memory"]["medviewer"]
    assert mem["ratio"] <= MAX_MEMORY_RATIO, (
        f"peak memory {mem['ratio']:.2f}x the volume above baseline (limit {MAX_MEMORY_RATIO})\n"
        + format_table(bench_results))


# --- script --------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int,
                        default=int(os.environ.get("MEDVIEWER_BENCH_REPEATS", DEFAULT_REPEATS)))
    parser.add_argument("--folder", help="use (or build, when empty or missing) the series here")
    parser.add_argument("--json", default=os.environ.get("MEDVIEWER_BENCH_JSON"), help="write results here")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="medviewer-bench-") as tmp:
        folder = Path(args.folder) if args.folder else Path(tmp) / "series"
        if not folder.is_dir() or not any(folder.iterdir()):
            t0 = time.perf_counter()
            build_series(folder)
            print(f"built {N_SLICES} slices in {folder} ({time.perf_counter() - t0:.1f} s)")
        results = run_benchmark(folder, args.repeats)
    print(format_table(results))
    write_json(results, args.json)
    failed = [k for k, ok in results["passed"].items() if not ok]
    print("PASS" if not failed else "FAIL: " + ", ".join(failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
