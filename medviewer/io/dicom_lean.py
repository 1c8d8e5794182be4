"""A lean DICOM header reader for long series: only the attributes MedViewer's grouping uses.

pydicom parses and converts every element of a header (about 1 ms a file, and 50-100 us for
each first access to an element); on a 4,700-file DWI or fMRI series that is most of a
conversion. This reader walks the elements of an Explicit VR Little Endian file once, skips
everything it does not need (sequences included) without decoding it, and returns a pydicom
Dataset holding just the wanted elements, converted on first use, plus the offset of the pixel data.

It declines (returns None) whenever the file is anything but plain: no "DICM" prefix, gzip,
another transfer syntax, an enhanced multi-frame file (functional groups), a DICOMDIR, a SEG or
RTSTRUCT, a wanted attribute that is a sequence, or any inconsistency in the bytes. The caller
then reads the file with pydicom as before, so results never depend on which reader ran. The
complete header is read with pydicom when something needs it (FrameRecord.full_header()).
"""
from __future__ import annotations

import struct

from pydicom.dataelem import DataElement, RawDataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.datadict import tag_for_keyword
from pydicom.multival import MultiValue
from pydicom.tag import BaseTag

EXPLICIT_LE = "1.2.840.10008.1.2.1"
_HEAD = 128 + 4
_READ = 256 * 1024  # bytes read at once; headers with big private blocks are read further
_LONG_VRS = {b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN", b"UR", b"UT", b"UV"}
_TEXT_VRS = {"AE", "AS", "CS", "DA", "DT", "LO", "LT", "PN", "SH", "ST", "TM", "UC", "UI", "UR", "UT"}
_NUMBERS = {"US": "H", "SS": "h", "UL": "I", "SL": "i", "FL": "f", "FD": "d"}
PIXEL_TAGS = {0x7FE00010, 0x7FE00008, 0x7FE00009}
# Attributes that make a file something the lean reader does not handle
_DECLINE = {0x52009229, 0x52009230, 0x00041220, 0x00620002, 0x30060020, 0x00651051, 0x00189117}
_DECLINE_CLASSES = {"1.2.840.10008.1.3.10", "1.2.840.10008.5.1.4.1.1.66.4", "1.2.840.10008.5.1.4.1.1.481.3"}

WANTED = {
    0x00080005, 0x00080008, 0x00080016, 0x00080018, 0x00080020, 0x00080021, 0x00080030, 0x00080060, 0x00080070,
    0x00081030, 0x0008103E, 0x00081090, 0x00100010, 0x00100020,
    0x00180050, 0x00180080, 0x00180081, 0x00180086, 0x00180088, 0x00181164, 0x00189087, 0x00189089,
    0x00200010, 0x0020000D, 0x0020000E, 0x00200011, 0x00200012, 0x00200013, 0x00200032, 0x00200037,
    0x00200052, 0x00200100, 0x00201041, 0x00280002, 0x00280004, 0x00280008, 0x00280010, 0x00280011,
    0x00280030, 0x00280100, 0x00280101, 0x00280102, 0x00280103, 0x00281050, 0x00281051, 0x00281052,
    0x00281053, 0x00281054,
    # Siemens (public-private and CSA), Philips diffusion and scaling, UIH mosaics
    0x0019100A, 0x0019100C, 0x0019100E, 0x00291010, 0x00291110, 0x00291210,
    0x20011003, 0x20011004, 0x200510B0, 0x200510B1, 0x200510B2, 0x2005100D, 0x2005100E, 0x00651050,
}
_PRIVATE_GROUPS = {0x0019, 0x0029, 0x2001, 0x2005, 0x0065}
_KEYWORD_TAGS: dict[str, BaseTag | None] = {}
_TAGS: dict[int, BaseTag] = {}  # one BaseTag object per tag: dict lookups by identity, not BaseTag.__eq__


def _interned(tag: int) -> BaseTag:
    found = _TAGS.get(tag)
    if found is None:
        found = _TAGS[tag] = BaseTag(tag)
    return found


def _tag_of(keyword: str) -> BaseTag | None:
    try:
        return _KEYWORD_TAGS[keyword]
    except KeyError:
        tag = tag_for_keyword(keyword)
        _KEYWORD_TAGS[keyword] = found = _interned(tag) if tag is not None else None
        return found


class _Decline(Exception):
    pass


class LeanDataset(Dataset):
    """The wanted elements of a header (FrameRecord.full_header() reads the rest). Lookups by
    keyword go straight to the element (pydicom's general path costs ~10 us each)."""

    def _converted(self, tag: int):
        element = self._dict.get(tag)
        if isinstance(element, RawDataElement):  # converted on first use, and kept
            try:
                element = self._dict[tag] = _element(tag, element.VR, element.value)
            except (ValueError, TypeError, OverflowError, UnicodeDecodeError, _Decline):
                element = self[tag]  # what pydicom makes of odd values, as a full read would
        return element

    def get(self, key, default=None):
        """As Dataset.get: a keyword gives the value, a tag (int or (group, element)) the element."""
        if isinstance(key, str):
            tag = _tag_of(key)
            if tag is None:
                return super().get(key, default)
            element = self._converted(tag)
            return default if element is None else element.value
        if isinstance(key, tuple) and len(key) == 2:
            element = self._converted(_interned((key[0] << 16) | key[1]))
            return default if element is None else element
        return super().get(key, default)

    def __getattr__(self, name: str):
        tag = _tag_of(name) if name[:1].isupper() else None
        if tag is not None and tag in self._dict:
            return self._converted(tag).value
        return super().__getattr__(name)

    def __contains__(self, key) -> bool:
        tag = _tag_of(key) if isinstance(key, str) else None
        return tag in self._dict if tag is not None else super().__contains__(key)


# text in these character sets decodes as Latin-1 (ASCII is the default repertoire)
_LATIN1 = {"", "ISO_IR 6", "ISO_IR 100", "ISO 2022 IR 6", "ISO 2022 IR 100"}


def _number_text(vr: str, text: str):
    value = float(text)  # on ValueError the element is left to pydicom, which keeps the text
    if vr == "IS":
        if not value.is_integer():
            raise _Decline
        return int(value)
    return value


def _element(tag: int, vr: str, raw: bytes) -> DataElement:
    """The element, converted here (pydicom's own conversion and validation cost ~10x more)."""
    if vr in _NUMBERS:
        fmt = _NUMBERS[vr]
        size = struct.calcsize(fmt)
        if len(raw) % size:
            raise _Decline
        values = list(struct.unpack(f"<{len(raw) // size}{fmt}", raw))
        value = (None if not values else values[0] if len(values) == 1
                 else MultiValue(type(values[0]), values))
    elif vr in ("DS", "IS"):
        text = raw.decode("ascii").strip(" \x00")
        parts = [p.strip() for p in text.split("\\")]
        if not text:
            value = ""
        elif len(parts) == 1:
            value = _number_text(vr, parts[0])
        else:
            value = MultiValue(float if vr == "DS" else int, [_number_text(vr, p) for p in parts])
    elif vr in _TEXT_VRS:
        text = raw.decode("latin-1").rstrip(" \x00")
        if "\\" in text and vr not in ("LT", "ST", "UT", "UR"):
            value = MultiValue(str, text.split("\\"))
        else:
            value = text
    else:
        value = raw  # OB, OW, UN ...: bytes, as pydicom gives them
    return DataElement(tag, vr, value, already_converted=True, validation_mode=0)


def _skip_undefined(buf: memoryview, pos: int, end: int) -> int:
    """Position after an undefined-length sequence starting at POS (its items follow)."""
    while pos + 8 <= end:
        group, elem, length = struct.unpack_from("<HHI", buf, pos)
        pos += 8
        if (group, elem) == (0xFFFE, 0xE0DD):  # sequence delimiter
            return pos
        if (group, elem) != (0xFFFE, 0xE000):
            raise _Decline
        if length != 0xFFFFFFFF:
            pos += length
            continue
        pos = _walk(buf, pos, end, None, item=True)
    raise _Decline


def _walk(buf: memoryview, pos: int, end: int, found: dict | None, item: bool = False) -> int:
    """Walk explicit-VR LE elements from POS; collect wanted ones into FOUND (top level only).
    Returns the position of the pixel data (top level) or after the item delimiter (item)."""
    while pos + 8 <= end:
        group, elem = struct.unpack_from("<HH", buf, pos)
        tag = (group << 16) | elem
        if item and tag == 0xFFFEE00D:
            return pos + 8
        if found is not None and tag in PIXEL_TAGS:
            return pos
        vr = bytes(buf[pos + 4:pos + 6])
        if vr in _LONG_VRS:
            if pos + 12 > end:
                raise _Decline
            (length,) = struct.unpack_from("<I", buf, pos + 8)
            pos += 12
        else:
            if not vr.isalpha():
                raise _Decline
            (length,) = struct.unpack_from("<H", buf, pos + 6)
            pos += 8
        if found is not None and tag in _DECLINE:
            raise _Decline
        if length == 0xFFFFFFFF:
            if vr not in (b"SQ", b"UN") or (found is not None and tag in WANTED):
                raise _Decline
            pos = _skip_undefined(buf, pos, end)
            continue
        if pos + length > end:
            raise _Decline
        if found is not None and (tag in WANTED or (group in _PRIVATE_GROUPS and 0x10 <= elem <= 0xFF)):
            if vr == b"SQ":
                raise _Decline
            found[tag] = (vr.decode("ascii"), bytes(buf[pos:pos + length]))
        pos += length
    if item:
        raise _Decline
    return -1


def _file_meta(buf: memoryview, pos: int, end: int) -> dict:
    """Every element of the file meta group (always explicit VR little endian)."""
    meta = {}
    while pos + 8 <= end:
        group, elem, vr = struct.unpack_from("<HH2s", buf, pos)
        if group != 0x0002:
            raise _Decline
        if vr in _LONG_VRS:
            (length,) = struct.unpack_from("<I", buf, pos + 8)
            pos += 12
        else:
            (length,) = struct.unpack_from("<H", buf, pos + 6)
            pos += 8
        if pos + length > end:
            raise _Decline
        meta[(group << 16) | elem] = (vr.decode("ascii"), bytes(buf[pos:pos + length]))
        pos += length
    return meta


def read_lean(path: str) -> tuple[Dataset, int] | None:
    """(the wanted elements as a Dataset, pixel data offset), or None to use pydicom instead."""
    try:
        with open(path, "rb") as fp:
            data = fp.read(_READ)
            if len(data) < _HEAD + 12 or data[128:132] != b"DICM":
                return None
            pos, end = _HEAD, len(data)
            buf = memoryview(data)
            group, _elem, vr = struct.unpack_from("<HH2s", buf, pos)
            if group != 0x0002 or vr != b"UL":
                return None
            (meta_length,) = struct.unpack_from("<I", buf, pos + 8)
            meta_end = pos + 12 + meta_length
            meta = _file_meta(buf, pos, min(meta_end, end))
            syntax = meta.get(0x00020010, ("UI", b""))[1].decode("latin-1").rstrip("\x00 ")
            if syntax != EXPLICIT_LE:
                return None
            found: dict = {}
            offset = _walk(buf, meta_end, end, found)
            if offset < 0:  # the header goes on past what was read: read it all, once
                rest = fp.read()
                data += rest
                found = {}
                offset = _walk(memoryview(data), meta_end, len(data), found) if rest else -1
                if offset < 0:
                    return None  # no pixel data: let pydicom say what the file is
    except (OSError, _Decline, struct.error, UnicodeDecodeError, ValueError):
        return None
    charset = found.get(0x00080005, ("CS", b""))[1].decode("latin-1").replace("\x00", "").strip()
    if any(part.strip() not in _LATIN1 for part in charset.split("\\")):
        return None  # other character sets: pydicom decodes them
    ds = LeanDataset()
    ds.file_meta = FileMetaDataset()
    for tag, (vr, raw) in meta.items():
        if tag in (0x00020002, 0x00020003, 0x00020010):
            ds.file_meta[tag] = _element(tag, vr, raw)
    # Elements stay raw until used; LeanDataset converts them with _element (and with pydicom's
    # own conversion where _element cannot, as if pydicom had read the file).
    for tag, (vr, raw) in sorted(found.items()):
        key = _interned(tag)
        ds._dict[key] = RawDataElement(key, vr, len(raw), raw, 0, False, True)
    if str(ds.get("SOPClassUID", "")) in _DECLINE_CLASSES:
        return None
    return ds, offset

