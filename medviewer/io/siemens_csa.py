"""Siemens CSA headers: the private (0029,xx10) image and (0029,xx20) series headers.

The layout (CSA1 and CSA2 "SV10") is the one nibabel documents (nibabel.nicom.csareader,
https://nipy.org/nibabel/dicom/siemens_csa.html): a tag count, then per tag a 64-byte name, VM,
VR, SyngoDT, item count, and items of (4 int32 lengths, data padded to 4 bytes). Every count and
length is checked against the bytes there are: the header comes from the file, so it is hostile
until proven otherwise, and a bad one just means "no CSA information".
"""
from __future__ import annotations

import struct
from typing import Any

from pydicom.dataset import Dataset

MAX_TAGS = 1000
MAX_ITEMS = 1000
CREATOR = "SIEMENS CSA HEADER"
_NUMERIC = {"FL": float, "FD": float, "DS": float, "IS": int, "SL": int, "SS": int, "UL": int, "US": int}


def _text(raw: bytes) -> str:
    return raw.split(b"\x00", 1)[0].decode("latin-1", "replace").strip()


def parse(raw: bytes) -> dict[str, list[Any]]:
    """Tag name -> list of values (numbers converted by VR). An empty dict for anything malformed."""
    try:
        return _parse(bytes(raw))
    except (struct.error, ValueError, OverflowError):
        return {}


def _parse(raw: bytes) -> dict[str, list[Any]]:
    pos = 0
    csa2 = raw[:4] == b"SV10"
    if csa2:
        pos = 8
    n_tags, _check = struct.unpack_from("<2I", raw, pos)
    pos += 8
    if not 0 < n_tags <= MAX_TAGS:
        return {}
    tags: dict[str, list[Any]] = {}
    first_items = 0
    for tag_no in range(n_tags):
        name_raw, vm, vr_raw, _syngodt, n_items, _last = struct.unpack_from("<64si4s3i", raw, pos)
        pos += 84
        if not 0 <= n_items <= MAX_ITEMS or vm < 0:
            return tags
        if tag_no == 1:
            first_items = n_items
        vr = _text(vr_raw)
        convert = _NUMERIC.get(vr)
        n_values = vm or n_items
        values: list[Any] = []
        for item_no in range(n_items):
            x0, x1, _x2, _x3 = struct.unpack_from("<4i", raw, pos)
            pos += 16
            length = x1 if csa2 else x0 - first_items
            if length < 0 or pos + length > len(raw):
                if csa2:
                    return tags
                break
            data = raw[pos:pos + length]
            pos += length + (-length % 4)
            if item_no >= n_values or length == 0:
                continue
            text = _text(data)
            if convert is None:
                values.append(text)
                continue
            try:
                values.append(convert(float(text)) if convert is int else float(text))
            except ValueError:
                continue
        tags[_text(name_raw)] = values
    return tags


def _element(ds: Dataset, element: int) -> bytes | None:
    first = ds.get((0x0029, 0x0010))  # Siemens reserves the CSA block first
    if first is None:
        return None  # no private creator in group 0029 at all: no CSA header
    if str(first.value).strip() == CREATOR:
        found = ds.get((0x0029, 0x1000 | element))
        value = found.value if found is not None else None
        return value if isinstance(value, (bytes, bytearray)) else None
    try:  # moved to another block (an Agfa/dcm4che export renames private blocks)
        block = ds.private_block(0x0029, CREATOR)
    except (KeyError, ValueError, TypeError, AttributeError):
        return None
    try:
        value = block[element].value
    except (KeyError, TypeError, AttributeError):
        return None
    return value if isinstance(value, (bytes, bytearray)) else None


def image_header(ds: Dataset) -> dict[str, list[Any]]:
    """The CSA image header (0029,xx10) of a file, parsed; {} when absent or malformed."""
    raw = _element(ds, 0x10)
    return parse(raw) if raw else {}


def first(tags: dict[str, list[Any]], name: str, n: int = 1) -> Any:
    """The first value (n == 1) or the first n values of a tag; None when missing or short."""
    values = tags.get(name) or []
    if len(values) < n:
        return None
    return values[0] if n == 1 else values[:n]
