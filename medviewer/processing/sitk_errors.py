"""What SimpleITK failures and stops look like to the user (no Qt).

    SitkStop            # raised inside a SimpleITK command to end a filter / an optimiser that
                        #   goes on after Abort() / StopRegistration() (N4, Canny's inner pipeline, L-BFGS-B)
    quiet_stops()       # while a SimpleITK call runs: SitkStop is not printed through sys.excepthook
    itk_reason(exc)     # the one line of an ITK exception a user can read (no file:line, no addresses)

Shared by processing operations, registration and transform files.
"""
from __future__ import annotations

import re
import sys
import threading
from contextlib import contextmanager


class SitkStop(Exception):
    """Raised inside a SimpleITK command to end a filter that goes on after Abort() (N4, which
    never checks it; Canny's inner pipeline): SimpleITK turns it into a RuntimeError out of
    Execute, after printing it through sys.excepthook (filtered while a filter runs)."""


_hook_lock = threading.Lock()
_quiet_runs = 0  # quiet_stops() contexts open, on any thread
_previous_hook = None  # sys.excepthook before the first of them


def _quiet_hook(kind, value, tb):
    if not issubclass(kind, SitkStop):
        _previous_hook(kind, value, tb)


@contextmanager
def quiet_stops():
    """One filtering hook for all the SimpleITK calls running at once (the Process and Register
    docks run on different worker threads): installed by the first, the previous hook given back
    by the last, whatever order they end in."""
    global _quiet_runs, _previous_hook
    with _hook_lock:
        if _quiet_runs == 0:
            _previous_hook, sys.excepthook = sys.excepthook, _quiet_hook
        _quiet_runs += 1
    try:
        yield
    finally:
        with _hook_lock:
            _quiet_runs -= 1
            if _quiet_runs == 0 and sys.excepthook is _quiet_hook:
                sys.excepthook = _previous_hook


def itk_reason(exc: BaseException) -> str:
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    # ITK's message: "... sitk::ERROR: <reason>" or a file:line prefix before "description: <reason>"
    # ITK's RuntimeError puts the file and line first and the reason last; Python's the reason first
    line = (lines[-1] if isinstance(exc, RuntimeError) else lines[0]) if lines else type(exc).__name__
    for ln in lines:
        found = [key for key in ("sitk::ERROR:", "Description:", "description:") if key in ln]
        if found:
            line = ln.split(found[0], 1)[1].strip()
            break
    return re.sub(r"ITK ERROR: \w+\(0x[0-9a-fA-F]+\): ", "", line)[:300]
