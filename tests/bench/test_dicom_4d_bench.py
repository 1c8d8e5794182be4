"""Benchmark: `medviewer convert SERIES OUT.nii --4d` on a 4,700-file 4D series, against SimpleITK.

Acceptance criterion (issue 12): converting the whole series into one 4D NIfTI (scan and parse
every header once, group, decode, stack, write) takes at most 1.5x SimpleITK's read of the same
files measured in the same run ("names+read": GetGDCMSeriesFileNames + ImageSeriesReader.Execute,
which reads every file into one image and writes nothing).

The series is synthetic: 100 volumes (fMRI time points) of 47 axial 64x64 int16 slices, one slice
per file (Explicit VR Little Endian), file names shuffled, as a scanner that stores classic
single-frame EPI writes them; slice values encode (volume, slice) so the output is checked too.

Run with ``python -m pytest tests/bench/test_dicom_4d_bench.py --bench -s`` or directly
``python tests/bench/test_dicom_4d_bench.py [--repeats N] [--volumes N]``.
"""
from __future__ import annotations

import argparse
import gc
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:  # run as a script: tests.support is imported from the repository
    sys.path.insert(0, str(REPO))

N_VOLUMES, N_SLICES, SIZE = 100, 47, 64
MAX_TIME_RATIO = 1.5
REPEATS = 5

pytestmark = pytest.mark.bench


def build_series(dest: Path, volumes: int = N_VOLUMES, slices: int = N_SLICES) -> Path:
    from pydicom.uid import MRImageStorage, generate_uid

    from tests.support.synthetic_dicom import new_dataset

    dest.mkdir(parents=True, exist_ok=True)
    series_uid, study_uid, frame_uid = generate_uid(), generate_uid(), generate_uid()
    names = np.random.default_rng(12).permutation(volumes * slices)
    n = 0
    for v in range(volumes):
        for z in range(slices):
            ds = new_dataset(MRImageStorage, "MR")
            ds.Manufacturer, ds.SeriesDescription = "GE MEDICAL SYSTEMS", "fMRI bench"
            ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID = study_uid, series_uid, frame_uid
            ds.SeriesNumber, ds.AcquisitionNumber, ds.InstanceNumber = 7, v + 1, v * slices + z + 1
            ds.TemporalPositionIdentifier, ds.NumberOfTemporalPositions = v + 1, volumes
            ds.RepetitionTime, ds.EchoTime, ds.ImageType = 2000, 30, ["ORIGINAL", "PRIMARY", "EPI", "NONE"]
            ds.Rows = ds.Columns = SIZE
            ds.PixelSpacing, ds.SliceThickness, ds.SpacingBetweenSlices = [3.75, 3.75], 3.0, 3.0
            ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
            ds.ImagePositionPatient = [-120.0, -120.0, -70.0 + 3.0 * z]
            ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
            ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
            ds.RescaleSlope, ds.RescaleIntercept = 1, 0
            ds.PixelData = np.full((SIZE, SIZE), v * 100 + z, np.int16).tobytes()
            ds.save_as(dest / f"IM{names[n]:05d}.dcm", enforce_file_format=True)
            n += 1
    return dest


def time_simpleitk(folder: Path) -> float:
    import SimpleITK as sitk

    gc.collect()
    start = time.perf_counter()
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(sitk.ImageSeriesReader.GetGDCMSeriesFileNames(str(folder)))
    image = reader.Execute()
    elapsed = time.perf_counter() - start
    assert image.GetNumberOfPixels() >= SIZE * SIZE
    return elapsed


def time_medviewer(folder: Path, out: Path, volumes: int) -> float:
    from medviewer.cli import main

    gc.collect()
    start = time.perf_counter()
    rc = main(["convert", str(folder), str(out), "--4d"])
    elapsed = time.perf_counter() - start
    assert rc == 0
    return elapsed


def check_output(out: Path, volumes: int, slices: int) -> None:
    import SimpleITK as sitk

    image = sitk.ReadImage(str(out))
    assert image.GetSize() == (SIZE, SIZE, slices, volumes)
    data = sitk.GetArrayViewFromImage(image)
    assert all(int(data[v, z, 0, 0]) == v * 100 + z for v in (0, volumes - 1) for z in (0, slices - 1))


def run(repeats: int = REPEATS, volumes: int = N_VOLUMES, slices: int = N_SLICES) -> dict:
    with tempfile.TemporaryDirectory(prefix="mv-4d-bench-") as tmp:
        folder = build_series(Path(tmp) / "series", volumes, slices)
        out = Path(tmp) / "out.nii"
        time_simpleitk(folder), time_medviewer(folder, out, volumes)  # warm the page cache and imports
        check_output(out, volumes, slices)
        sitk_times, mv_times = [], []
        for _ in range(repeats):  # interleaved, so that load on the machine hits both alike
            sitk_times.append(time_simpleitk(folder))
            mv_times.append(time_medviewer(folder, out, volumes))
    result = {"files": volumes * slices, "sitk_median_s": statistics.median(sitk_times),
              "medviewer_median_s": statistics.median(mv_times),
              "sitk_s": sitk_times, "medviewer_s": mv_times}
    result["ratio"] = result["medviewer_median_s"] / result["sitk_median_s"]
    print(f"\n4D convert of {result['files']} files: medviewer median {result['medviewer_median_s']:.2f} s, "
          f"SimpleITK read median {result['sitk_median_s']:.2f} s, ratio {result['ratio']:.2f} "
          f"(limit {MAX_TIME_RATIO})")
    return result


def test_4d_convert_within_1_5x_simpleitk_read():
    result = run()
    assert result["ratio"] <= MAX_TIME_RATIO, result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=REPEATS)
    parser.add_argument("--volumes", type=int, default=N_VOLUMES)
    args = parser.parse_args()
    sys.exit(0 if run(args.repeats, args.volumes)["ratio"] <= MAX_TIME_RATIO else 1)
