"""Composition root: `medviewer [PATH...]` opens the main window (the demo study by default)."""
from __future__ import annotations

import sys

NOTICE = "MedViewer is research and demonstration software: NOT FOR CLINICAL USE."


def seconds_since_process_start() -> float | None:
    """Wall time since this process was launched (Linux /proc), to report start-up honestly."""
    try:
        with open("/proc/self/stat") as f:
            start_ticks = float(f.read().rsplit(")", 1)[1].split()[19])
        with open("/proc/uptime") as f:
            uptime = float(f.read().split()[0])
        import os

        return uptime - start_ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def run_viewer(paths: list[str]) -> int:
    from medviewer.display_check import display_problem

    problem = display_problem()
    if problem:
        from medviewer.core.errors import MedViewerError

        raise MedViewerError(problem)
    from medviewer.resources import demo_paths
    from medviewer.ui.main_window import MainWindow
    from medviewer.ui.qt import QtCore, application

    import time

    started = time.perf_counter()
    print(NOTICE, flush=True)
    app = application(sys.argv[:1])
    from medviewer.ai.process_service import ProcessInferenceService

    win = MainWindow(ai_service=ProcessInferenceService())  # torch lives in a process of its own
    from medviewer.ui import errors

    errors.install(win)  # an exception in a slot: a message and a log file, the window keeps running
    _close_on_sigterm(win)
    win.show()
    app.processEvents()
    since_launch = seconds_since_process_start()
    elapsed = since_launch if since_launch is not None else time.perf_counter() - started
    print(f"window shown after {elapsed:.2f} s", flush=True)
    QtCore.QTimer.singleShot(0, win.warm_ai_backend)  # the first Run finds the AI ready
    win.volume_shown.connect(lambda sid: print(f"opened {sid}: {win.session.volume.describe()}", flush=True))
    win.problem.connect(lambda msg: print(f"medviewer: warning: {msg}", file=sys.stderr, flush=True))
    targets = [str(p) for p in paths] or [str(p) for p in demo_paths()]
    # open after the window is on screen: reading happens off the GUI thread
    QtCore.QTimer.singleShot(0, lambda: win.open_paths(targets))
    return app.exec()


def _close_on_sigterm(win) -> None:
    """SIGTERM (a session logout, `kill`) closes the window as the user would: the autosave is
    written and the process exits 0, instead of dying with rc 143. Python runs signal handlers
    only between bytecodes, so a timer gives it a chance while Qt's event loop runs."""
    import signal

    from medviewer.ui.qt import QtCore

    def handler(signum, frame):
        win.close_for_signal()

    try:
        signal.signal(signal.SIGTERM, handler)
    except (ValueError, OSError):  # not the main thread, or no SIGTERM on this platform
        return
    timer = QtCore.QTimer(win)
    timer.timeout.connect(lambda: None)
    timer.start(250)


def run_screenshot(args) -> int:
    import os

    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    os.environ.setdefault("MEDVIEWER_NO_DIALOGS", "1")
    from medviewer.ui.screenshot import render_screenshot

    size = (1400, 850)
    if args.size:
        try:
            w, h = (int(v) for v in args.size.lower().split("x"))
            size = (w, h)
        except ValueError:
            from medviewer.core.errors import MedViewerError

            raise MedViewerError(f"--size {args.size!r}: use WIDTHxHEIGHT, e.g. 1200x800") from None
    info = render_screenshot([args.input], args.out, layout=args.layout, preset=args.preset,
                             window=args.window, level=args.level, slice_number=args.slice,
                             size=size, series=args.series, model=args.model, explain=args.explain,
                             model_dirs=args.models, device=args.device, labels=args.labels,
                             render=args.render, camera=args.camera, compare=args.compare,
                             fusion=getattr(args, "fusion", None))
    print(f"wrote {info['out']} ({info['source']}, layout {info['layout']}, "
          f"W {info['window'][0]:.0f} L {info['window'][1]:.0f})"
          + (f"; {'; '.join(info['runs'])}" if info["runs"] else ""))
    return 0
