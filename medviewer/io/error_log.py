"""What a user is told about an error nobody planned for, and where its details are kept.

Contract (the command line's top-level handler and the GUI's exception hook both use it):

- ``describe(exc) -> str``: one line, in plain words, naming the file when the error knows it;
  never a traceback, never a raw SimpleITK text. MedViewerError's own message is kept as it is;
  MemoryError says that memory ran out; OSError says what the system refused ("the disk is
  full"); anything else is called an unexpected error, with its type and first line.
- ``write_error_log(exc, context="") -> Path | None``: writes the full stack (chained causes
  included), the version, Python, platform and CONTEXT (e.g. the command line) to
  ``<data dir>/logs/medviewer-<YYYYmmdd-HHMMSS-microseconds>-<pid>-<n>.log`` (data dir: MEDVIEWER_DATA_DIR
  or the platform's user data folder; the system temporary folder when that cannot be written)
  and returns its path, or None when no log could be written. It never raises, and keeps the
  newest KEEP_LOGS logs.
- ``report(exc, context="") -> (reason, log path)``: both at once.

No Qt, no heavy imports: it must work when everything else is broken.
"""
from __future__ import annotations

import datetime
import os
import platform
import sys
import tempfile
import traceback
from pathlib import Path

KEEP_LOGS = 50


def log_dir() -> Path:
    """The folder the error logs go to (not created here)."""
    from medviewer.core.paths import data_dir

    return data_dir() / "logs"


def describe(exc: BaseException) -> str:
    """The one-line reason to show a user (see the module's contract)."""
    from medviewer.core.errors import MedViewerError
    from medviewer.io.messages import is_sitk_error, os_reason, plain_reason, strip_noise

    if isinstance(exc, MedViewerError):
        return _one_line(str(exc)) or type(exc).__name__
    if isinstance(exc, MemoryError):
        return ("not enough memory to finish (the image or model needs more memory than is free; "
                "close other programs or use a smaller image)")
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted"
    if isinstance(exc, OSError):
        reason = os_reason(exc)
        where = exc.filename if exc.filename is not None else None
        if where is not None and exc.filename2 is not None:
            return f"{where} -> {exc.filename2}: {reason}"
        return f"{where}: {reason}" if where is not None else reason
    if is_sitk_error(exc):
        return f"an image operation failed: {plain_reason(exc)}"
    text = strip_noise(_one_line(str(exc)))
    name = type(exc).__name__
    return f"unexpected error ({name}: {text})" if text else f"unexpected error ({name})"


def _one_line(text: str, limit: int = 300) -> str:
    from medviewer.io.messages import clean_text  # no control characters or escapes from a file

    return clean_text(text, limit)


def _log_text(exc: BaseException, context: str) -> str:
    from medviewer import __version__

    lines = [
        f"MedViewer {__version__} error report",
        f"time: {datetime.datetime.now().astimezone().isoformat(timespec='seconds')}",
        f"python: {sys.version.split()[0]} ({sys.executable})",
        f"platform: {platform.platform()}",
        f"pid: {os.getpid()}",
        f"context: {context}" if context else "context: -",
        f"shown to the user: {describe(exc)}",
        "",
    ]
    stack = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    return "\n".join(lines) + stack


def write_error_log(exc: BaseException, context: str = "") -> Path | None:
    """Write the full report of EXC to a new log file; its path, or None (never raises)."""
    try:
        text = _log_text(exc, context)
    except Exception:  # describing the error failed too: keep at least the stack
        text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S-%f")
    for folder in _candidate_dirs():
        try:
            folder.mkdir(parents=True, exist_ok=True)
            for n in range(1000):
                path = folder / f"medviewer-{stamp}-{os.getpid()}-{n}.log"
                try:
                    with open(path, "x", encoding="utf-8", errors="replace") as fh:
                        fh.write(text)
                    break
                except FileExistsError:
                    continue
            else:
                continue
        except Exception:  # unwritable folder, disk full ...: try the next one
            continue
        _prune(folder, keep=path)
        return path
    return None


def report(exc: BaseException, context: str = "") -> tuple[str, Path | None]:
    """(describe(exc), write_error_log(exc, context))."""
    try:
        reason = describe(exc)
    except Exception:
        reason = f"unexpected error ({type(exc).__name__})"
    return reason, write_error_log(exc, context)


def _candidate_dirs() -> list[Path]:
    dirs = []
    try:
        dirs.append(log_dir())
    except Exception:
        pass
    dirs.append(Path(tempfile.gettempdir()) / "medviewer-logs")
    return dirs


def _prune(folder: Path, keep: Path) -> None:
    """Keep the newest KEEP_LOGS logs (their names sort by time), the one just written included."""
    try:
        logs = sorted(p for p in folder.glob("medviewer-*.log") if p.is_file() and p != keep)
    except OSError:
        return
    for old in logs[: max(len(logs) - (KEEP_LOGS - 1), 0)]:
        try:
            old.unlink()
        except OSError:
            pass
