"""Temporaries of atomic saves: a save killed mid-way leaves the old file intact, and its temporary
is removed by the next save into the same place (or at start, for the data folders); nothing
that is not exactly one of our temporaries is ever removed."""
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from medviewer.core import tempfiles
from medviewer.core.tempfiles import (is_temporary, remove_stale, remove_stale_in, temp_beside, temp_name,
                                      write_atomically)
from medviewer.core.volume import Volume
from medviewer.io import write_volume

REPO = Path(__file__).resolve().parents[2]
posix_only = pytest.mark.skipif(os.name != "posix", reason="SIGKILL and PID checks as on POSIX")


def _dead_pid() -> int:
    """The PID of a process that has exited (and been reaped)."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def _temporaries(folder: Path, target: str) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.name.startswith(f".{target}.medviewer-"))


def test_temporary_names_carry_the_marker_pid_and_extension(tmp_path):
    target = tmp_path / "scan.nii.gz"
    tmp = Path(temp_beside(str(target), ".nii.gz"))
    assert tmp.parent == tmp_path and tmp.is_file() and tmp.stat().st_size == 0
    assert tmp.name.startswith(f".scan.nii.gz.medviewer-{os.getpid()}-") and tmp.name.endswith(".tmp.nii.gz")
    assert is_temporary(tmp.name)
    for other in (".scan.nii.gz", "scan.nii.gz", ".scan.nii.gz.ab12cd34.nii.gz", ".bashrc",
                  "scan.nii.gz.medviewer-12-0123abcd.tmp"):
        assert not is_temporary(other), other


def test_write_atomically_publishes_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "notes.json"
    target.write_text("old")
    write_atomically(str(target), lambda fh: fh.write("new"), suffix=".json", text=True)
    assert target.read_text() == "new" and os.listdir(tmp_path) == ["notes.json"]
    with pytest.raises(ZeroDivisionError):
        write_atomically(str(target), lambda fh: (fh.write("half"), 1 / 0), text=True)
    assert target.read_text() == "new" and os.listdir(tmp_path) == ["notes.json"]


@posix_only
def test_only_stale_temporaries_of_the_target_are_removed(tmp_path):
    dead = _dead_pid()
    target = str(tmp_path / "labels.nii.gz")
    stale = tmp_path / temp_name(target, ".nii.gz", pid=dead)
    live_other = tmp_path / temp_name(target, ".nii.gz", pid=os.getppid())  # a running process's save
    mine = tmp_path / temp_name(target, ".nii.gz")  # this process's own save in progress
    other_target = tmp_path / temp_name(str(tmp_path / "other.nrrd"), ".nrrd", pid=dead)
    keep = [tmp_path / n for n in (".hidden", ".labels.nii.gz.ab12cd34.nii.gz", "labels.nii.gz",
                                   ".labels.nii.gz.medviewer-x-0123abcd.tmp", ".labels.nii.gz.medviewer-1-XYZ.tmp")]
    for p in [stale, live_other, mine, other_target, *keep]:
        p.write_bytes(b"x")
    folder_like = tmp_path / temp_name(target, "", pid=dead)
    folder_like.mkdir()  # a folder named like a temporary is not a file of ours

    assert remove_stale(target) == [str(stale)]
    assert not stale.exists()
    for p in [live_other, mine, other_target, folder_like, *keep]:
        assert p.exists(), p.name

    old = tmp_path / temp_name(target, ".nii.gz", pid=os.getppid())  # PID alive, untouched for hours
    old.write_bytes(b"x")
    hours_ago = os.stat(old).st_mtime - 2 * tempfiles.STALE_AFTER_S
    os.utime(old, (hours_ago, hours_ago))
    assert remove_stale(target) == [str(old)]

    assert remove_stale_in(tmp_path) == [str(other_target)]  # at start: every target in the folder
    for p in [live_other, mine, folder_like, *keep]:
        assert p.exists(), p.name


_KILLED_WRITE_VOLUME = textwrap.dedent("""
    import sys, time
    import numpy as np
    import medviewer.core.tempfiles as tempfiles
    from medviewer.core.volume import Volume
    from medviewer.io import write_volume

    def stuck(tmp, final):  # the temporary is written; the process dies before the rename
        print("written", tmp, flush=True)
        time.sleep(600)

    tempfiles.publish = stuck
    data = np.random.default_rng(1).integers(0, 4000, (48, 160, 160)).astype(np.int16)
    write_volume(Volume(data, spacing=(0.8, 0.8, 2.0)), sys.argv[1])
""")

_KILLED_MID_WRITE = textwrap.dedent("""
    import sys
    from medviewer.core.tempfiles import write_atomically

    def endless(fh):  # a slow save, killed half-way
        chunk = b"\\0" * (1 << 20)
        fh.write(chunk)
        fh.flush()
        print("writing", flush=True)
        while True:
            fh.write(chunk)
            fh.flush()
            fh.seek(0)

    write_atomically(sys.argv[1], endless, suffix=".nii.gz")
""")


def _run_until_killed(script: str, target: Path) -> int:
    proc = subprocess.Popen([sys.executable, "-c", script, str(target)], stdout=subprocess.PIPE, text=True,
                            cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)})
    try:
        line = proc.stdout.readline()  # blocks until the child has its temporary file open and written
        assert line.startswith(("written", "writing")), line
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
    assert proc.returncode == -signal.SIGKILL
    return proc.pid


@posix_only
@pytest.mark.parametrize("script", [_KILLED_WRITE_VOLUME, _KILLED_MID_WRITE], ids=["before-rename", "mid-write"])
def test_a_killed_save_keeps_the_old_file_and_the_next_save_removes_its_temporary(tmp_path, script):
    target = tmp_path / "scan.nii.gz"
    old = Volume(np.arange(4 * 5 * 6, dtype=np.int16).reshape(4, 5, 6), spacing=(1.0, 1.0, 2.0))
    write_volume(old, str(target))
    before = target.read_bytes()
    unrelated = [tmp_path / ".scan.nii.gz.ab12cd34.nii.gz", tmp_path / ".DS_Store", tmp_path / ".other.medviewer"]
    for p in unrelated:
        p.write_bytes(b"keep me")

    pid = _run_until_killed(script, target)

    assert target.read_bytes() == before  # the old file is intact
    left = _temporaries(tmp_path, "scan.nii.gz")
    assert len(left) == 1 and f".medviewer-{pid}-" in left[0].name and left[0].stat().st_size > 0

    new = Volume(np.full((4, 5, 6), 7, np.int16), spacing=(1.0, 1.0, 2.0))
    write_volume(new, str(target))  # the next save into the same place

    assert _temporaries(tmp_path, "scan.nii.gz") == []
    assert np.all(sitk.GetArrayFromImage(sitk.ReadImage(str(target))) == 7)
    for p in unrelated:
        assert p.read_bytes() == b"keep me", p.name
    assert sorted(os.listdir(tmp_path)) == sorted(["scan.nii.gz"] + [p.name for p in unrelated])


@posix_only
def test_stale_autosave_temporaries_are_removed_when_medviewer_starts(tmp_path):
    data = tmp_path / "data"
    recovery = data / "recovery"
    recovery.mkdir(parents=True)
    target = recovery / "0123456789abcdef.npz"
    target.write_bytes(b"autosave")
    pid = _run_until_killed(_KILLED_MID_WRITE, target)
    assert len(_temporaries(recovery, target.name)) == 1
    (recovery / ".keep").write_text("not ours")
    env = {**os.environ, "MEDVIEWER_DATA_DIR": str(data), "PYTHONWARNINGS": "ignore"}
    proc = subprocess.run([sys.executable, "-m", "medviewer", "info", str(REPO / "resources/demo/mri_hippocampus")],
                          capture_output=True, text=True, timeout=300, env=env, cwd=REPO)
    assert proc.returncode == 0, proc.stderr
    assert _temporaries(recovery, target.name) == [], pid
    assert sorted(os.listdir(recovery)) == [".keep", target.name] and target.read_bytes() == b"autosave"


def test_every_writer_uses_the_named_temporaries(tmp_path, monkeypatch):
    """The image, label, CSV and recovery writers all go through temp_beside."""
    from medviewer.core.labels import LabelMap
    from medviewer.io.label_io import save_labels
    from medviewer.io.recovery import write_recovery, recovery_snapshot
    from medviewer.processing.label_stats import write_csv

    made = []
    real = tempfiles.temp_beside

    def spy(target, ext=""):
        path = real(target, ext)
        made.append(os.path.basename(path))
        return path

    monkeypatch.setattr(tempfiles, "temp_beside", spy)
    monkeypatch.setenv("MEDVIEWER_DATA_DIR", str(tmp_path / "data"))
    image = Volume(np.zeros((2, 3, 4), np.int16))
    write_volume(image, str(tmp_path / "a.nrrd"))
    lm = LabelMap(image.shape, data=np.ones(image.shape, np.uint8))
    import medviewer.io.label_io as label_io

    monkeypatch.setattr(label_io, "temp_beside", spy)
    save_labels(lm, image, str(tmp_path / "l.nii.gz"))
    write_csv([{"label": 1, "name": "x", "voxels": 24}], str(tmp_path / "s.csv"))
    write_recovery("key", recovery_snapshot([lm]))
    assert all(is_temporary(n) for n in made) and len(made) == 6, made
    assert not [n for n in os.listdir(tmp_path) if n.startswith(".")]
    assert sitk.ReadImage(str(tmp_path / "a.nrrd")).GetSize() == (4, 3, 2)
