"""What the GUI does with an exception nobody expected: log its stack, tell the user in one line,
keep running (the labels stay in memory; autosave keeps its recovery file).

    errors.install(window)          # medviewer (run_viewer): slots, hand-over calls, threads
    errors.report_exception(exc, "while opening the image")

Until install() is called (tests, scripts) report_exception hands the exception to sys.excepthook,
so pytest-qt still fails a test on an exception in a slot.
"""
from __future__ import annotations

import sys
import threading
from typing import Callable

_show: Callable[[str], None] | None = None
_previous: tuple | None = None  # the hooks install() replaced


def user_message(exc: BaseException, context: str = "") -> tuple[str, str]:
    """(one line for the user, path of the log file with the stack, '' if none was written)."""
    from medviewer.io.error_log import report

    reason, log = report(exc, context)
    return reason, str(log) if log else ""


def report_exception(exc: BaseException, context: str = "") -> None:
    if _show is None:
        sys.excepthook(type(exc), exc, exc.__traceback__)
        return
    reason, log = user_message(exc, context)
    where = f" {context}" if context else ""
    _show(f"Something went wrong{where}: {reason}. The window keeps running and your labels are kept."
          + (f" Details: {log}" if log else ""))


def install(window) -> None:
    """Route unexpected exceptions (Qt slots, hand-over calls, worker threads) to `window`: a line
    in the status bar and a non-modal message box (report_problem)."""
    global _show, _previous
    _show = window.report_problem
    if _previous is None:
        _previous = (sys.excepthook, threading.excepthook)

    def hook(kind, value, tb):
        if issubclass(kind, KeyboardInterrupt):
            sys.__excepthook__(kind, value, tb)
            return
        report_exception(value.with_traceback(tb), "")

    def thread_hook(args):
        if args.exc_value is not None:
            from medviewer.ui.hand_over import in_gui_thread

            in_gui_thread(report_exception, args.exc_value, f"in {args.thread.name if args.thread else 'a thread'}")

    sys.excepthook = hook
    threading.excepthook = thread_hook


def uninstall() -> None:
    """Back to the hooks that were there before install()."""
    global _show, _previous
    _show = None
    if _previous is not None:
        sys.excepthook, threading.excepthook = _previous
        _previous = None
