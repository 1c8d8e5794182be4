"""The Process and Register docks against the bare calls they make, in the same run (issue 14).

Run: python -m pytest tests/bench/test_panels_bench.py --bench -s
The real main window, 1400x850. Processing: a median filter (radius 2) of the real T1 MRI
(../shared/data/brain_t1, 128x128x62; the built phantom tripled in each axis when it is absent),
timed from Run until the new image is on screen beside its source (controls.finished), against
`run_operation` called bare. Registration: the halved real MRI and a moved copy (rigid, Mattes MI),
from Register until the checkerboard is on, against `register` called bare. Rounds interleave bare
and panel runs so machine load hits both alike; medians are reported.
While each panel run is in flight a 5 ms timer probes the GUI thread: the longest gap between its
ticks while the worker computes is the longest the window froze (the baseline: the same probe with
nothing running); the first and the last gap (starting the job, showing its result) are printed
apart.
Criteria: median(panel) <= 1.1 x median(bare) for the registration (seconds of work: the hand-over
and the display must not add 10 %); the longest stall while either runs <= 50 ms (issue 6), or
<= 2 x the idle stall on a machine so loaded that the idle probe itself stalls longer than 25 ms.
"""
import os
import statistics
import time

import numpy as np
import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("MEDVIEWER_NO_DIALOGS", "1")

from tests.conftest import SHARED_DATA  # noqa: E402

pytestmark = pytest.mark.bench
ROUNDS, MAX_RATIO, MAX_STALL_MS = 5, 1.1, 50.0


def _probe_while(qtbot, start, finished) -> tuple[float, float, float]:
    """(seconds from start() until `finished` fired, the longest gap between 5 ms timer ticks while
    the worker computed, the longest of the first and the last gap), ms. The first gap holds
    start() (the hand-over to the worker), the last one the result put on screen (a new entry, its
    views, the fusion drawn: GUI work that must happen on the GUI thread)."""
    from medviewer.ui.qt import QtCore

    ticks = []
    timer = QtCore.QTimer()
    timer.setInterval(5)
    timer.timeout.connect(lambda: ticks.append(time.perf_counter()))
    timer.start()
    with qtbot.waitSignal(finished, timeout=600_000) as blocker:
        began = time.perf_counter()
        assert start()
    took = time.perf_counter() - began
    timer.stop()
    assert blocker.args == [True]
    gaps = np.diff([began] + ticks) * 1000
    assert len(gaps) > 3, "the probe timer did not tick while the job ran"
    return took, float(np.max(gaps[1:-1])), float(max(gaps[0], gaps[-1]))


def _idle_stall(qtbot, seconds=1.0) -> float:
    from medviewer.ui.qt import QtCore

    ticks = []
    timer = QtCore.QTimer()
    timer.setInterval(5)
    timer.timeout.connect(lambda: ticks.append(time.perf_counter()))
    began = time.perf_counter()
    timer.start()
    qtbot.wait(int(seconds * 1000))
    timer.stop()
    return float(np.max(np.diff([began] + ticks)) * 1000)


def _image(tmp_path):
    import SimpleITK as sitk

    from tests.gui.workspace_images import built_image

    path = SHARED_DATA / "brain_t1" / "KmeansTest_T1UCharRaw.nii.gz"
    if path.exists():
        return str(path), "real T1 MRI 128x128x62"
    image = sitk.ReadImage(built_image(tmp_path / "built.nii.gz"))
    image = sitk.Expand(image, [3, 3, 3])
    sitk.WriteImage(image, str(tmp_path / "built_large.nii.gz"))
    return str(tmp_path / "built_large.nii.gz"), "phantom 120x132x108"


def _registration_image(tmp_path):
    from tests.gui.workspace_images import built_image, real_mri

    if (SHARED_DATA / "brain_t1").is_dir():
        return real_mri(tmp_path / "real.nii.gz"), "real T1 MRI halved 64x64x62"
    return built_image(tmp_path / "built.nii.gz"), "phantom 40x44x36"


def test_panels_against_the_bare_calls(qtbot, tmp_path, monkeypatch):
    monkeypatch.setenv("MEDVIEWER_SETTINGS", str(tmp_path / "s.ini"))
    monkeypatch.setenv("MEDVIEWER_DATA_DIR", str(tmp_path / "d"))
    from medviewer.processing.operations import run_operation
    from medviewer.processing.registration import RegistrationSettings, register
    from medviewer.ui.main_window import MainWindow
    from tests.gui.workspace_images import known_rigid, moved_copy

    rows = []
    path, what = _image(tmp_path)
    win = MainWindow()
    qtbot.addWidget(win)
    win.resize(1400, 850)
    win.show()
    win.open_paths([path], wait=True)
    qtbot.wait(300)  # the first drawing of the image is not part of the first round
    panel, workspace = win.processing_panel, win.workspace
    volume = workspace.primary.volume
    panel.choose("median", radius=2)
    params = panel.form.values()
    bare, gui, stalls, ends = [], [], [], []
    for _ in range(ROUNDS):
        began = time.perf_counter()
        run_operation("median", volume, params)
        bare.append(time.perf_counter() - began)
        took, stall, end = _probe_while(qtbot, panel.run, panel.controls.finished)
        gui.append(took), stalls.append(stall), ends.append(end)
        workspace.remove(workspace.entries[-1])
        qtbot.wait(300)  # the panes re-made after the removal are drawn before the next round
    idle = _idle_stall(qtbot)
    rows.append((f"median r=2, {what}", statistics.median(bare), statistics.median(gui), max(stalls),
                 statistics.median(ends), idle))

    path, what = _registration_image(tmp_path)
    win.open_paths([path], wait=True)
    fixed = workspace.primary
    moving = workspace.add(moved_copy(fixed.volume, known_rigid(fixed.volume)), "moved copy")
    qtbot.wait(300)
    reg = win.registration_panel
    reg.set_images(fixed, moving)
    reg.set_method("rigid", "mi")
    bare, gui, stalls, ends = [], [], [], []
    for _ in range(ROUNDS):
        began = time.perf_counter()
        register(fixed.volume, moving.volume, RegistrationSettings(transform="rigid", metric="mi"))
        bare.append(time.perf_counter() - began)
        took, stall, end = _probe_while(qtbot, reg.run, reg.controls.finished)
        gui.append(took), stalls.append(stall), ends.append(end)
        workspace.remove(workspace.entries[-1])
        fixed.session.fusion.clear()
        qtbot.wait(300)
    idle = _idle_stall(qtbot)
    rows.append((f"rigid MI registration, {what}", statistics.median(bare), statistics.median(gui), max(stalls),
                 statistics.median(ends), idle))

    print("\n| job | bare call (median s) | through the dock (median s) | ratio | longest GUI stall while it "
          "computes (ms) | start / show the result (median ms) | idle stall (ms) |")
    print("|---|---|---|---|---|---|---|")
    for name, b, g, stall, end, idle in rows:
        print(f"| {name} | {b:.3f} | {g:.3f} | {g / b:.2f} | {stall:.0f} | {end:.0f} | {idle:.0f} |")
    _, b, g, _, _, _ = rows[1]
    assert g <= MAX_RATIO * b, f"registration through the dock {g:.2f} s vs bare {b:.2f} s"
    assert all(stall <= max(MAX_STALL_MS, 2 * idle) for _, _, _, stall, _, idle in rows), rows
