"""Bad input on the command line: every command answers with one line `medviewer: error: ...` naming
the file, an honest exit code, and never a traceback or a raw SimpleITK text. An exception nobody
planned for still gives one line, plus the log file that holds its stack."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from tests.conftest import DEMO

REPO = Path(__file__).resolve().parents[2]
MRI = DEMO / "mri_hippocampus" / "hippocampus_001.nii.gz"
XRAY = DEMO / "xray" / "chest_xray_pneumonia.jpeg"
RAW = ("Traceback", "ITK ERROR", "sitk::ERROR", "itk::ERROR", "Exception thrown in SimpleITK", "[Errno", ".cxx:")


@pytest.fixture(scope="module")
def bad(tmp_path_factory) -> Path:
    """A folder of bad inputs beside good ones (made from resources/demo)."""
    d = tmp_path_factory.mktemp("bad")
    rng = np.random.default_rng(0)
    shutil.copy(MRI, d / "good.nii.gz")
    shutil.copy(XRAY, d / "cxr.jpeg")
    (d / "trunc.nii.gz").write_bytes(MRI.read_bytes()[:3000])  # the header survives, the voxels do not
    (d / "cut.jpeg").write_bytes(XRAY.read_bytes()[:3000])
    for name in ("x.nii.gz", "x.dcm", "x.png"):
        (d / name).write_bytes(rng.bytes(20000))
    (d / "empty").mkdir()
    (d / "only_bad").mkdir()
    for name in ("x.nii.gz", "x.dcm"):
        shutil.copy(d / name, d / "only_bad" / name)
    (d / "folder.nii.gz").mkdir()
    return d


def run(folder: Path, *args) -> subprocess.CompletedProcess:
    env = {**os.environ, "MEDVIEWER_DATA_DIR": str(folder / "data"), "MEDVIEWER_SETTINGS": str(folder / "settings.ini"),
           "QT_QPA_PLATFORM": "offscreen", "PYTHONWARNINGS": "ignore", "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "medviewer", *map(str, args)], capture_output=True, text=True,
                          timeout=600, env=env, cwd=folder)


def assert_refused(proc: subprocess.CompletedProcess, *fragments: str, rc: int = 1) -> str:
    """Exit code RC, no traceback or raw library text, and the first error line holds FRAGMENTS."""
    assert proc.returncode == rc, proc.stdout + proc.stderr
    for raw in RAW:
        assert raw not in proc.stderr, proc.stderr
    assert "Premature end" not in proc.stdout + proc.stderr  # libjpeg's own message
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("medviewer: error: ")]
    assert errors, proc.stderr
    for fragment in fragments:
        assert fragment in errors[0], proc.stderr
    return errors[0]


CASES = [
    # info
    (("info", "missing"), ["missing: no such file or folder"]),
    (("info", "empty"), ["empty: the folder is empty"]),
    (("info", "x.nii.gz"), ["x.nii.gz: not a readable NIfTI file: it is damaged or in another format"]),
    (("info", "x.dcm"), ["x.dcm: not a DICOM file"]),
    (("info", "x.png"), ["x.png: not a readable PNG file: it is damaged or in another format"]),
    (("info", "only_bad"), ["no images found under", "only_bad (2 files could not be read"]),
    # convert
    (("convert", "trunc.nii.gz", "out.nii"), ["trunc.nii.gz: the compressed file is truncated"]),
    (("convert", "cut.jpeg", "out.nii"), ["cut.jpeg: the JPEG file is truncated"]),
    (("convert", "good.nii.gz", "nowhere/out.nii"), ["nowhere/out.nii: folder", "nowhere does not exist"]),
    (("convert", "good.nii.gz", "folder.nii.gz"), ["folder.nii.gz: is a folder; give a file name"]),
    (("convert", "good.nii.gz", "good.nii.gz/out.nii"), ["good.nii.gz/out.nii: folder", "is a file, not a folder"]),
    (("convert", "good.nii.gz", "out.bmp"), ["out.bmp: unsupported output format"]),
    (("convert", "good.nii.gz", "out.nii", "--series", "7"), ["no series with id '7' under", "good.nii.gz"]),
    # stats
    (("stats", "good.nii.gz", "x.nii.gz"), ["x.nii.gz: not a readable label image"]),
    (("stats", "good.nii.gz", "trunc.nii.gz"), ["trunc.nii.gz: the compressed file is truncated"]),
    (("stats", "good.nii.gz", "empty"), ["empty: this is a folder, not a label file"]),
    (("stats", "good.nii.gz", "missing.nii.gz"), ["missing.nii.gz: no such file"]),
    (("stats", "good.nii.gz", "good.nii.gz", "--csv", "nowhere/s.csv"), ["--csv nowhere/s.csv: no such folder"]),
    (("stats", "good.nii.gz", "good.nii.gz", "--csv", "empty"), ["--csv empty: is a folder"]),
    # models
    (("models", "--models", "MISSING_DIR"), ["--models MISSING_DIR: no such folder"]),
    (("models", "--models", "good.nii.gz"), ["--models good.nii.gz: is a file, not a folder"]),
    # features: 0 is refused like -5, and so are the other nonsense numbers
    (("features", "good.nii.gz", "good.nii.gz", "--bin-number", "0"), ["--bin-number 0: must be at least 1"]),
    (("features", "good.nii.gz", "good.nii.gz", "--bin-number", "-5"), ["--bin-number -5: must be at least 1"]),
    (("features", "good.nii.gz", "good.nii.gz", "--bin-size", "0"), ["--bin-size 0: must be a positive number"]),
    (("features", "good.nii.gz", "good.nii.gz", "--bin-size", "-2"), ["--bin-size -2: must be a positive number"]),
    (("features", "good.nii.gz", "good.nii.gz", "--resample", "0"), ["--resample 0: must be a positive number"]),
    (("features", "good.nii.gz", "good.nii.gz", "--resample", "-1"), ["--resample -1: must be a positive number"]),
    (("features", "good.nii.gz", "good.nii.gz", "--label", "0"), ["--label 0: must be at least 1"]),
    (("features", "good.nii.gz", "good.nii.gz", "--label", "999"), ["good.nii.gz: no voxel with label 999"]),
    (("features", "good.nii.gz", "x.nii.gz"), ["x.nii.gz: not a readable NIfTI file"]),
    # train
    (("train", "classification", "--data", "missing", "--out", "m"), ["missing: no such folder"]),
    (("train", "classification", "--data", "good.nii.gz", "--out", "m"), ["--data good.nii.gz: is a file"]),
    (("train", "classification", "--data", "empty", "--out", "m", "--epochs", "0"), ["--epochs 0: must be at least 1"]),
    (("train", "segmentation", "--data", "empty", "--out", "m", "--size", "0", "0", "0"), ["--size 0 0 0: "]),
    (("train", "anomaly", "--data", "empty", "--out", "good.nii.gz/m"), ["--out good.nii.gz/m:", "is a file"]),
    # evaluate
    (("evaluate", "--model", "pneumonia-rf", "--data", "good.nii.gz"), ["--data good.nii.gz: is a file"]),
    (("evaluate", "--model", "pneumonia-rf", "--data", "empty", "--limit", "0"), ["--limit 0: must be at least 1"]),
    (("evaluate", "--model", "pneumonia-rf", "--data", "empty", "--out", "good.nii.gz/o"),
     ["--out good.nii.gz/o: cannot create the folder"]),
    (("evaluate", "--model", "pneumonia-rf", "--data", "empty", "--roc-png", "nowhere/r.png"),
     ["--roc-png nowhere/r.png: no such folder"]),
    (("evaluate", "--model", "nope", "--data", "empty"), ["no model named 'nope'"]),
    # screenshot
    (("screenshot", "x.png", "--out", "s.png"), ["x.png: not a readable PNG file"]),
    (("screenshot", "good.nii.gz", "--out", "nowhere/s.png"), ["--out nowhere/s.png: no such folder"]),
    (("screenshot", "good.nii.gz", "--out", "empty"), ["--out empty: is a folder"]),
    (("screenshot", "good.nii.gz", "--out", "s.png", "--size", "0x0"), ["--size 0x0: width and height"]),
    (("screenshot", "good.nii.gz", "--out", "s.png", "--window", "0"), ["--window 0: must be a positive number"]),
]


@pytest.mark.parametrize("args, fragments", CASES, ids=[" ".join(a) for a, _ in CASES])
def test_bad_input_is_one_error_line_naming_it(bad, args, fragments):
    assert_refused(run(bad, *args), *fragments)


def test_infer_tries_every_input_and_exits_non_zero_when_one_cannot_be_read(bad):
    proc = run(bad, "infer", "--model", "pneumonia-rf", "--json", "missing.png", "x.png", "empty", "cxr.jpeg")
    assert_refused(proc, "missing.png: no such file or folder")
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("medviewer: error: ")]
    assert len(errors) == 3 and "x.png: not a readable PNG file" in errors[1] and "empty: the folder is empty" in errors[2]
    records = [json.loads(ln) for ln in proc.stdout.splitlines()]
    assert [Path(r["input"]).name for r in records] == ["cxr.jpeg"]  # the good input still gave its result
    assert set(records[0]["probabilities"]) == {"NORMAL", "PNEUMONIA"}


def test_a_refusal_is_an_error_not_a_warning(bad):
    proc = run(bad, "infer", "--model", "pneumonia-rf", "good.nii.gz")
    assert_refused(proc, "good.nii.gz: pneumonia-rf is a 2D model")
    assert "warning" not in proc.stderr and proc.stdout == ""


@pytest.mark.parametrize("args, fragment", [
    (("--out", "good.nii.gz/sub"), "--out good.nii.gz/sub: cannot create the folder"),
    (("--device", "banana"), "--device 'banana': unknown device"),
    (("--device", "cuda:x"), "--device 'cuda:x': unknown device"),
    (("--models", "MISSING_DIR"), "--models MISSING_DIR: no such folder"),
    (("--mask", "missing.nii.gz"), "--mask missing.nii.gz: no such file"),
], ids=lambda v: " ".join(v) if isinstance(v, tuple) else "")
def test_infer_refuses_bad_options_before_any_work(bad, args, fragment):
    proc = run(bad, "infer", "--model", "hippocampus-unet", "good.nii.gz", *args)
    assert_refused(proc, fragment)
    assert proc.stdout == ""


def test_genuine_warnings_stay_warnings_with_exit_zero(bad, tmp_path):
    series = tmp_path / "ct_missing_slice"
    shutil.copytree(DEMO / "ct_chest_20", series)
    os.unlink(sorted(series.iterdir())[10])  # a gap: resampled onto a regular grid, with a warning
    proc = run(bad, "convert", series, tmp_path / "ct.nii.gz")
    assert proc.returncode == 0, proc.stderr
    assert "medviewer: warning: 1 slice(s) missing" in proc.stderr and "resampled" in proc.stderr
    assert "error" not in proc.stderr and "Traceback" not in proc.stderr
    assert sitk.ReadImage(str(tmp_path / "ct.nii.gz")).GetSize() == (512, 512, 20)


def test_infer_on_a_4d_image_warns_and_keeps_each_time_point(bad, tmp_path):
    image = sitk.ReadImage(str(MRI))
    sitk.WriteImage(sitk.JoinSeries([image, image]), str(tmp_path / "four.nii.gz"))
    proc = run(bad, "infer", "--model", "hippocampus-unet", "--json", tmp_path / "four.nii.gz", "--out", tmp_path / "seg")
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.count("medviewer: warning:") == 2 and "4D image: time point 2 of 2" in proc.stderr
    records = [json.loads(ln) for ln in proc.stdout.splitlines()]
    assert [r["time_point"] for r in records] == [1, 2]
    outputs = [Path(r["output"]).name for r in records]
    assert outputs == ["four_t1.nii.gz", "four_t2.nii.gz"]  # one file each, not one overwriting the other
    uncertainty = [Path(r["uncertainty"]).name for r in records]
    assert uncertainty == ["four_t1_uncertainty.nii.gz", "four_t2_uncertainty.nii.gz"]
    assert sorted(p.name for p in (tmp_path / "seg").iterdir()) == sorted(outputs + uncertainty)


# --- the top-level handler, in-process with a command that fails unexpectedly ----------------------
@pytest.fixture
def data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("MEDVIEWER_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("MEDVIEWER_SETTINGS", str(tmp_path / "settings.ini"))
    return tmp_path / "data"


def _buggy_reader(path, as_json):
    values = {}
    return values["spacing"] / len(path)  # a bug: KeyError


def test_an_unexpected_exception_is_one_line_and_a_log_with_the_stack(data_dir, monkeypatch, capsys):
    import medviewer.cli as cli

    monkeypatch.setattr(cli, "cmd_info", _buggy_reader)
    assert cli.main(["info", "scan.nii.gz"]) == 1
    err = capsys.readouterr().err.splitlines()
    assert err[0] == "medviewer: error: unexpected error (KeyError: 'spacing')"
    match = re.fullmatch(r"medviewer: the details are in (.+)", err[1])
    assert match and len(err) == 2
    log = Path(match[1])
    assert log.parent == data_dir / "logs" and log.is_file()
    text = log.read_text()
    assert "Traceback (most recent call last)" in text and "_buggy_reader" in text and 'values["spacing"]' in text
    assert "context: medviewer info scan.nii.gz" in text


def test_memory_errors_and_simpleitk_errors_are_said_plainly(data_dir, monkeypatch, capsys):
    import medviewer.cli as cli
    import medviewer.cli_features as cli_features

    def out_of_memory(args):
        raise MemoryError()

    def negative_spacing(src, dst, series, **options):
        sitk.Image(2, 2, sitk.sitkUInt8).SetSpacing((-1.0, -1.0))

    monkeypatch.setattr(cli_features, "cmd_features", out_of_memory)
    assert cli.main(["features", "a.nii.gz", "b.nii.gz"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("medviewer: error: not enough memory") and "Traceback" not in err

    monkeypatch.setattr(cli, "cmd_convert", negative_spacing)
    assert cli.main(["convert", "a.nii.gz", "b.nii.gz"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("medviewer: error: an image operation failed: negative voxel spacing is not supported\n")
    assert not any(raw in err for raw in RAW)
    assert len(list((data_dir / "logs").iterdir())) == 2


def test_interrupt_and_usage_errors_keep_their_exit_codes(data_dir, monkeypatch, capsys):
    import medviewer.cli as cli

    def interrupted(path, as_json):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "cmd_info", interrupted)
    assert cli.main(["info", "x"]) == 130
    with pytest.raises(SystemExit) as info:
        cli.main(["features", "--bin-number", "many", "a", "b"])
    assert info.value.code == 2 and "invalid int value: 'many'" in capsys.readouterr().err
    assert not (data_dir / "logs").exists()  # planned outcomes leave no log
