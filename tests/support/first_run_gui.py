"""One fresh GUI process (tests/bench/test_first_inference_bench.py, tests/gui/test_ai_warm_up.py): show the main window on an
image, wait as a user looking at it would, click Run once, and print one JSON line with the time
from the click to the result on screen and the longest gaps of a 5 ms timer (the window's stalls).

    python tests/support/first_run_gui.py VARIANT MODEL IMAGE CLICK_AFTER_S

VARIANT: "process" -- what medviewer does: the service in its own process, warmed after the window
is shown (MainWindow.warm_ai_backend, as app.run_viewer calls it); "thread" -- the service in this
process, warmed by a thread that imports torch and runs the model once after the window is shown;
"cold" -- the service in this process, nothing warmed (the first Run imports torch and loads);
"idle" -- no run at all, the window probed as long (the baseline of its stalls).
"""
from __future__ import annotations

import json
import os
import sys
import threading
import time

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("MEDVIEWER_NO_DIALOGS", "1")


def main(variant: str, model: str, image: str, click_after: float) -> None:
    from medviewer.ui.main_window import MainWindow
    from medviewer.ui.qt import QtCore, application

    app = application(sys.argv[:1])
    service = None
    if variant == "process":
        from medviewer.ai.process_service import ProcessInferenceService

        service = ProcessInferenceService()
    win = MainWindow(ai_service=service)
    win.resize(1200, 900)
    win.open_paths([image], wait=True)
    win.show()
    app.processEvents()
    shown = time.perf_counter()
    gaps: list[tuple[float, float]] = []  # (when, gap ms)
    last = [time.perf_counter()]

    def tick():
        now = time.perf_counter()
        gaps.append((now, (now - last[0]) * 1000))
        last[0] = now

    probe = QtCore.QTimer()
    probe.setTimerType(QtCore.Qt.PreciseTimer)
    probe.timeout.connect(tick)
    probe.start(5)
    if variant == "process":
        QtCore.QTimer.singleShot(0, win.warm_ai_backend)
    elif variant == "thread":
        spec = next(e.spec for e in win.ai_panel.entries if e.name == model)

        def warm():
            from medviewer.ai.process_service import WARM_TASKS, synthetic_volume
            from medviewer.ai.service import run_task

            run_task(WARM_TASKS[spec.task], spec, synthetic_volume(spec), None, lambda f, m: None, lambda: False)

        warmer = threading.Thread(target=warm, daemon=True)
        QtCore.QTimer.singleShot(0, warmer.start)
    while time.perf_counter() - shown < click_after:
        app.processEvents(QtCore.QEventLoop.AllEvents, 5)
    if variant == "idle":  # the window alone, for as long as a run takes: the baseline of the stalls
        while time.perf_counter() - shown < click_after + 2.0:
            app.processEvents(QtCore.QEventLoop.AllEvents, 5)
        print(json.dumps({"variant": variant, "max_stall_ms": max(g for _, g in gaps[1:]),
                          "torch_in_gui": "torch" in sys.modules}), flush=True)
        return
    assert win.ai_panel.select_model(model), f"{model} is not selectable here"
    shown_runs: list = []
    win.ai_panel.result_shown.connect(lambda run: shown_runs.append(time.perf_counter()))
    clicked = time.perf_counter()
    job = win.ai_panel.run()
    assert job is not None, win.ai_panel.stage_label.text()
    while not shown_runs and time.perf_counter() - clicked < 300:
        app.processEvents(QtCore.QEventLoop.AllEvents, 5)
        if job.done() and job.state != "done":
            raise SystemExit(f"the run ended {job.state}: {job.error}")
    probe.stop()
    during = [g for t, g in gaps if t >= clicked]
    print(json.dumps({"variant": variant, "click_to_result_s": shown_runs[0] - clicked,
                      "max_stall_ms": max(g for _, g in gaps[1:]), "max_stall_after_click_ms": max(during),
                      "timings": job.timings, "torch_in_gui": "torch" in sys.modules}), flush=True)
    win.ai_panel.shutdown()
    win.close()
    if variant == "thread" and warmer.is_alive():  # torch aborts the interpreter's exit under a live thread
        warmer.join(120)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4]))
