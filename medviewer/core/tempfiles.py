"""Temporary files of atomic saves, named so that the ones a killed process left behind can be
found and removed, and nothing else ever is.

Every atomic writer (image, label, SEG, PNG, JSON, CSV, recovery, model files) writes to a
temporary file beside its target, named

    .<target name>.medviewer-<writer's PID>-<8 hex digits>.tmp<ext>

(<ext> keeps the target's extension, for writers that choose the format by extension), then
renames it over the target: the target is either the old file or the new one, never half of
one. A process killed mid-save leaves its temporary behind; `temp_beside` removes the stale
ones of the same target before making a new one, and `remove_stale_in(folder)` those of any
target (run at start on the data folders).

A temporary is stale when its writer is no longer running, or it has not been touched for
STALE_AFTER_S (its PID may have been reused). Files that do not match the pattern exactly are
never touched. No Qt, no numpy: the GUI, the command line and the AI code all use it.
"""
from __future__ import annotations

import errno
import os
import re
import secrets
import time
from typing import IO, Callable

MARKER = "medviewer"
STALE_AFTER_S = 3600.0  # untouched this long, a temporary is stale whoever holds its PID
_MAX_NAME = 180  # target names are cut to this in the temporary's name (file names stop at 255)
_TAIL = r"\.medviewer-(\d{1,10})-[0-9a-f]{8}\.tmp[A-Za-z0-9._-]{0,20}"
_ANY = re.compile(r"^\..+" + _TAIL + r"$", re.DOTALL)
_STARTED = time.time()  # temporaries with our PID but older than this process are a former process's


def _name_part(target: str) -> str:
    return os.path.basename(os.path.abspath(os.fspath(target)))[:_MAX_NAME]


def _pattern(target: str) -> re.Pattern:
    return re.compile(r"^\." + re.escape(_name_part(target)) + _TAIL + r"$", re.DOTALL)


def temp_name(target: str, ext: str = "", pid: int | None = None) -> str:
    """The file name (no folder) of a new temporary for TARGET."""
    ext = ext if re.fullmatch(r"[A-Za-z0-9._-]{0,20}", ext) else ""
    return f".{_name_part(target)}.{MARKER}-{os.getpid() if pid is None else pid}-{secrets.token_hex(4)}.tmp{ext}"


def pid_alive(pid: int) -> bool:
    """Whether a process with this PID is running (True when that cannot be told)."""
    if pid <= 0:
        return False
    if pid == os.getpid():
        return True
    if os.name == "nt":  # os.kill(pid, 0) would terminate the process on Windows
        import ctypes

        kernel32 = ctypes.windll.kernel32  # type: ignore[attr-defined]
        handle = kernel32.OpenProcess(0x1000, False, pid)  # PROCESS_QUERY_LIMITED_INFORMATION
        if not handle:
            return kernel32.GetLastError() == 5  # access denied: it exists
        try:
            code = ctypes.c_ulong()
            if not kernel32.GetExitCodeProcess(handle, ctypes.byref(code)):
                return True
            return code.value == 259  # STILL_ACTIVE
        finally:
            kernel32.CloseHandle(handle)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process
    except OSError:
        return True
    return True


def is_stale(path: str, pid: int, now: float | None = None) -> bool:
    """A temporary whose writer (PID) is gone, or that nobody has written to for STALE_AFTER_S."""
    try:
        mtime = os.stat(path).st_mtime
    except OSError:
        return False
    now = time.time() if now is None else now
    if now - mtime > STALE_AFTER_S:
        return True
    if pid == os.getpid():
        return mtime < _STARTED - 2.0  # same PID, but written before this process started
    return not pid_alive(pid)


def _remove_matching(folder: str, pattern: re.Pattern) -> list[str]:
    removed = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    now = time.time()
    for entry in entries:
        m = pattern.match(entry.name)
        if not m:
            continue
        try:
            if not entry.is_file(follow_symlinks=False):
                continue
            if is_stale(entry.path, int(m.group(1)), now):
                os.unlink(entry.path)
                removed.append(entry.path)
        except (OSError, ValueError):
            continue  # gone already, or not ours to remove: never let clean-up fail a save
    return removed


def remove_stale(target: str) -> list[str]:
    """Remove the stale temporaries of TARGET in its folder; returns the paths removed."""
    target = os.path.abspath(os.fspath(target))
    return _remove_matching(os.path.dirname(target), _pattern(target))


def remove_stale_in(folder: str | os.PathLike) -> list[str]:
    """Remove the stale temporaries of every target in FOLDER (not recursive); never raises."""
    return _remove_matching(os.fspath(folder), _ANY)


def is_temporary(name: str) -> bool:
    """Whether a file name is one of our temporaries (of any target)."""
    return bool(_ANY.match(os.path.basename(name)))


def temp_beside(target: str, ext: str = "") -> str:
    """Create (empty, mode 0600) and return a new temporary for TARGET in its folder, after
    removing the stale temporaries of the same target. OSError when the folder refuses it."""
    target = os.path.abspath(os.fspath(target))
    folder = os.path.dirname(target)
    remove_stale(target)
    for _ in range(100):
        path = os.path.join(folder, temp_name(target, ext))
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o600)
        except FileExistsError:
            continue
        os.close(fd)
        return path
    raise FileExistsError(errno.EEXIST, "no free temporary file name", os.path.join(folder, temp_name(target, ext)))


def publish(tmp: str, final: str) -> None:
    """Move a finished temporary file into place with the usual permissions (temporaries are 0600)."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    os.replace(tmp, final)


def discard(tmp: str | None) -> None:
    """Remove a temporary after a failed save (no error if it is gone)."""
    if tmp:
        try:
            os.unlink(tmp)
        except OSError:
            pass


def write_atomically(path: str, write: Callable[[IO], None], *, suffix: str = "", text: bool = False,
                     newline: str | None = None) -> str:
    """Write PATH through a temporary beside it, then publish it (rename). write(fh) fills the open
    temporary (UTF-8 text when `text`); on any failure the temporary is removed and the exception
    propagates."""
    path = os.fspath(path)
    tmp = temp_beside(path, suffix)
    try:
        with (open(tmp, "w", encoding="utf-8", newline=newline) if text else open(tmp, "wb")) as fh:
            write(fh)
        publish(tmp, path)
    except BaseException:
        discard(tmp)
        raise
    return path


def write_path_atomically(path: str, write: Callable[[str], None], *, suffix: str = "") -> str:
    """Like write_atomically for writers that take a file name (SimpleITK, torch.save, skops)."""
    path = os.fspath(path)
    tmp = temp_beside(path, suffix)
    try:
        write(tmp)
        publish(tmp, path)
    except BaseException:
        discard(tmp)
        raise
    return path
