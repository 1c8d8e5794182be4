"""Library error texts (SimpleITK / ITK, the operating system) turned into a short reason a user can act on.

SimpleITK raises RuntimeError with texts such as

    Exception thrown in SimpleITK ImageFileReader_Execute: /src/sitkImageReaderBase.cxx:99:
    sitk::ERROR: Unable to determine ImageIO reader for "x.nii.gz"

`plain_reason(exc)` gives "it is damaged or in another format" instead: no C++ file names,
object addresses or library prefixes. The readers and writers in medviewer.io use it, so the
command line and the GUI say the same thing; error_log.describe uses it for anything that escapes.
`os_reason(exc)` does the same for an OSError ("the disk is full", "permission denied").

Text that comes from a file (a header value, a library's exception text quoting one) is hostile:
`clean_text(text)` is the one sanitizer every message built from such text goes through: terminal
escape sequences, control characters and invisible direction marks are removed and the result is
one line of at most `limit` characters. `library_reason(exc)` is an exception's text for a message:
cleaned, with the values it quotes ('...' or "...", which may be patient data or raw header bytes)
replaced by an ellipsis.
Pure string handling (SimpleITK is not imported here).
"""
from __future__ import annotations

import errno
import re

_MARKERS = ("SimpleITK", "ITK ERROR", "itk::ERROR", "sitk::ERROR", "itk::ExceptionObject")

# (pattern in the lower-cased text, reason); the first that matches wins
_READING = [
    (r"unable to determine imageio reader", "it is damaged or in {what}"),
    (r"hit end of header|cannot parse|met_read failed|error parsing|file cannot be read|"
     r"could not read header|header.*(invalid|bad|corrupt)|bad magic|not a valid",
     "the header cannot be read (the file is truncated or damaged)"),
    (r"expected \d+ bytes but received|not read completely|wanted \d+ bytes|premature end|short read|fread got only|"
     r"read failed|unexpected end|\beof\b",
     "the file is truncated (it holds less data than its header promises)"),
    (r"error while reading file|corrupt|invalid jpeg|decompress|inflate|zlib|gzip|crc",
     "the image data cannot be decoded (the file is truncated or damaged)"),
]
_COMMON = [
    (r"permission denied|operation not permitted", "permission denied"),
    (r"no space left|disk quota|file too large", "the disk is full"),
    (r"is a directory", "it is a folder, not a file"),
    (r"negative spacing", "negative voxel spacing is not supported"),
    (r"out of memory|bad_alloc|failed to allocate|memory allocation", "not enough memory"),
    (r"read-only file system", "the disk is read-only"),
]
_WRITING = [
    (r"unable to determine imageio writer", "no image writer for this file name extension"),
    (r"no such file or directory", "the folder does not exist"),
    (r"could not open|cannot open|failed to write|couldn't fopen|cannot be written|unable to open|"
     r"error writing|write failed",
     "the file cannot be written (check that the folder is writable and the disk has space)"),
]
_NOISE = [
    re.compile(r"Exception thrown in SimpleITK \w+:\s*"),
    re.compile(r"(/[^\s:]+)?\.(cxx|hxx|cpp|h|txx|c):\d+:\s*"),
    re.compile(r"\b(sitk|itk)::ERROR:\s*", re.I),
    re.compile(r"\bITK ERROR:\s*"),
    re.compile(r"\b\w+\(0x[0-9a-fA-F]+\):\s*"),  # ImageFileReader(0x55d8...):
    re.compile(r"\[\w+\]\s*"),  # [nrrd]
]


# ESC [ ... final (CSI), ESC ] ... BEL/ST (OSC), ESC P/X/^/_ ... ST, and two-character escapes
_ESCAPE = re.compile(r"\x1b(\[[0-?]*[ -/]*[@-~]?|[\]PX^_][^\x07\x1b]*(\x07|\x1b\\)?|.?)|\x9b[0-?]*[ -/]*[@-~]?", re.S)
# C0/C1 controls, the replacement character (undecodable bytes), zero-width and bidi marks
_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\ufffd\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff]")
_QUOTED = re.compile(r"(?<!\w)b?'[^'\n]{0,400}'|(?<!\w)b?\"[^\"\n]{0,400}\"")


def clean_text(text: object, limit: int = 300) -> str:
    """TEXT as one printable line of at most LIMIT characters (see the module's contract)."""
    text = _UNPRINTABLE.sub(" ", _ESCAPE.sub("", str(text)))
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3].rstrip() + "..."


def library_reason(exc: BaseException, limit: int = 200) -> str:
    """An exception's text fit for a message: no quoted values, no control characters, one line."""
    text = clean_text(_QUOTED.sub("'...'", str(exc)), limit)
    return text or type(exc).__name__


def is_sitk_error(exc: BaseException) -> bool:
    """Whether an exception is SimpleITK's / ITK's (their texts need translating)."""
    return isinstance(exc, RuntimeError) and any(m in str(exc) for m in _MARKERS)


def strip_noise(text: str, limit: int = 200) -> str:
    """The text without SimpleITK's source locations, object addresses and prefixes, on one line."""
    text = clean_text(text, limit=10**6)
    for pattern in _NOISE:
        text = pattern.sub("", text)
    return clean_text(text, limit).strip(" :;,")


def plain_reason(exc_or_text: BaseException | str, fmt: str = "", *, writing: bool = False) -> str:
    """A short reason (no file name: the caller names the file) for a SimpleITK error.
    `fmt` names the expected format ("NIfTI", "NRRD" ...) when it is known."""
    text = str(exc_or_text)
    low = text.lower()
    rules = (_WRITING + _COMMON) if writing else (_COMMON + _READING)
    for pattern, reason in rules:
        if re.search(pattern, low):
            return reason.format(what="another format" if fmt else "a format MedViewer does not read")
    return strip_noise(text) or (type(exc_or_text).__name__ if isinstance(exc_or_text, BaseException) else "")


def os_reason(exc: OSError) -> str:
    """An OSError's reason in plain words, without the file name (the caller names the file)."""
    return OS_REASONS.get(exc.errno, exc.strerror or str(exc))


OS_REASONS = {
    errno.ENOSPC: "the disk is full", getattr(errno, "EDQUOT", -1): "the disk quota is used up",
    errno.EACCES: "permission denied", errno.EPERM: "permission denied (the folder or file is protected)",
    errno.EROFS: "the disk is read-only", errno.ENOENT: "no such file or folder",
    errno.EISDIR: "it is a folder, not a file", errno.ENOTDIR: "a part of the path is a file, not a folder",
    errno.ENAMETOOLONG: "the file name is too long", errno.EEXIST: "it exists already",
    errno.EIO: "input/output error (a failing disk or a lost network drive?)",
}
