"""Keep what C libraries print to the terminal away from the user's one-line messages.

ITK's MetaIO and NIfTI readers, libpng and libjpeg write their complaints about a damaged file
straight to file descriptor 2 (some to 1): "NDims required and not defined.", "libpng error: Read
Error", "** ERROR: nifti_convert_nhdr2nim: bad dim[1]", "Premature end of JPEG file". MedViewer
already says what is wrong, in one line naming the file; those extra lines repeat raw header
bytes. `native_output_silenced()` points descriptors 1 and 2 at a scratch file for the duration
of a command while Python's sys.stdout / sys.stderr keep writing to the real terminal (they are
re-opened on duplicates of the original descriptors), so only MedViewer's own lines reach the user.
What the libraries printed is kept in `captured()` (for an error log) and the descriptors are
restored on exit, also after an exception.
"""
from __future__ import annotations

import contextlib
import io
import os
import sys
import tempfile

_CAPTURED: list[str] = []
LIMIT = 64 * 1024  # kept of what the libraries printed


def captured() -> str:
    """What C libraries printed during the last silenced command (at most LIMIT characters)."""
    return "".join(_CAPTURED)


@contextlib.contextmanager
def native_output_silenced():
    """Descriptors 1 and 2 go to a scratch file; sys.stdout/sys.stderr still reach the terminal.
    Does nothing where the streams are not plain descriptors (pytest's capture, an IDE)."""
    try:
        fds = [sys.stdout.fileno(), sys.stderr.fileno()]
    except (AttributeError, ValueError, io.UnsupportedOperation):
        yield
        return
    if fds != [1, 2]:
        yield
        return
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    old_streams = sys.stdout, sys.stderr
    scratch = tempfile.TemporaryFile()
    try:
        sys.stdout = open(saved[0], "w", buffering=1, encoding=old_streams[0].encoding,
                          errors=old_streams[0].errors, closefd=False)
        sys.stderr = open(saved[1], "w", buffering=1, encoding=old_streams[1].encoding,
                          errors="backslashreplace", closefd=False)
        os.dup2(scratch.fileno(), 1)
        os.dup2(scratch.fileno(), 2)
        yield
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):
                pass
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        sys.stdout, sys.stderr = old_streams
        for fd in saved:
            os.close(fd)
        scratch.seek(0)
        _CAPTURED[:] = [scratch.read(LIMIT).decode("utf-8", "replace")]
        scratch.close()
