"""Which files are DICOM, by their content rather than their name, and how to open them.

Agfa/dcm4che and Siemens exports name DICOM files `*.img` (the Analyze data extension), and
nibabel's and others' test corpora gzip single files (`*.dcm.gz`). A file is DICOM when its
(decompressed) bytes 128-131 are "DICM"; gzip files are opened transparently.
"""
from __future__ import annotations

import gzip
import os
from typing import BinaryIO

GZIP_MAGIC = b"\x1f\x8b"


def is_gzip(path: str) -> bool:
    try:
        with open(path, "rb") as fp:
            return fp.read(2) == GZIP_MAGIC
    except OSError:
        return False


def open_dicom(path: str) -> BinaryIO:
    """A binary file object for PATH, decompressed on the fly when it is gzip."""
    if is_gzip(path):
        return gzip.open(path, "rb")  # type: ignore[return-value]
    return open(path, "rb")


def has_dicm_prefix(path: str) -> bool:
    """True when the (decompressed) file has the DICOM preamble and "DICM" prefix."""
    try:
        with open_dicom(path) as fp:
            head = fp.read(132)
    except (OSError, EOFError, ValueError):
        return False
    return len(head) == 132 and head[128:132] == b"DICM"


def analyze_pair_exists(path: str) -> bool:
    """Whether PATH (an .img/.img.gz) has the .hdr beside it that makes it Analyze/NIfTI-pair data."""
    name = path[:-3] if path.lower().endswith(".gz") else path
    stem = os.path.splitext(name)[0]
    return any(os.path.isfile(stem + ext) for ext in (".hdr", ".HDR", ".hdr.gz"))
