"""Check an image file's header in Python before SimpleITK (C++) sees it.

ITK trusts headers: an MHA with `NDims = -1` segfaults inside SimpleITK, a NIfTI whose data is
cut short reads as complete with the missing voxels zero, and a 62 kB file whose header claims
1.5 GB makes ITK allocate (and `convert` write) 1.5 GB. `check_header(path)` parses the header of
a NIfTI-1/2 (.nii, .nii.gz, .hdr/.img pair), NRRD (.nrrd, .nhdr), MetaImage (.mha, .mhd), PNG
or JPEG file and raises ImageReadError (one line naming the file) when

- a field SimpleITK would choke on is out of range (dimension count, sizes, pixel type, channels,
  data offset, encoding, a data file that is not a regular file beside the header ...);
- the data is shorter than the header promises (uncompressed data: the file size; gzip: the
  trailer's uncompressed size; PNG: the chunk layout and IEND; JPEG: the end-of-image marker
  after the scan);
- the image would not fit in memory (medviewer.core.memory.check_fits raises TooLarge).

It reads the header (and, for PNG, the chunk headers) only; `layout(path)` returns what it found
(dimensions, bytes per voxel, the data file and where its data starts) and `check_data_size(path,
layout)` the size check alone (sitk_image.check_complete uses it when it reads the voxels).
"""
from __future__ import annotations

import math
import os
import re
import struct
import zlib
from dataclasses import dataclass

from medviewer.core.errors import ImageReadError
from medviewer.core.memory import TooLarge, check_fits
from medviewer.io.messages import clean_text

MAX_DIMENSIONS = 4  # what MedViewer shows: 2D, 3D and 3D+time
MAX_CHANNELS = 4  # grey, grey+alpha, RGB, RGBA
MAX_TEXT_HEADER = 1 << 20  # an NRRD/MHA header longer than 1 MB is not a header
NOT_THIS = "not a readable {fmt} file: it is damaged or in another format"  # as messages.plain_reason says it


@dataclass
class Layout:
    fmt: str
    dims: tuple[int, ...]  # fastest axis first (x, y, z, t)
    voxel_bytes: int  # bytes of one voxel, all channels
    data_file: str  # the file holding the voxels
    data_offset: int | None  # where they start in it (None: at the end, or unknown)
    compressed: str = ""  # "", "gzip" (whole file or data part), "zlib", "other"

    @property
    def nbytes(self) -> int:
        return math.prod(self.dims) * self.voxel_bytes


def _fail(path: str, reason: str):
    raise ImageReadError(path, clean_text(reason))


def check_header(path: str) -> Layout | None:
    """Validate PATH's header and data size (see the module's contract); None for other formats."""
    found = layout(path)
    if found is None:
        return None
    check_data_size(path, found, exact=False)
    shape = "x".join(str(d) for d in found.dims)
    try:
        check_fits(found.nbytes, f"{os.path.basename(path)}: the {shape} image ({found.fmt})")
    except TooLarge:
        check_data_size(path, found)  # a file far too short for what it claims: say that instead
        raise
    return found


def layout(path: str) -> Layout | None:
    from medviewer.io.sitk_image import extension_of

    ext = extension_of(path)
    reader = _READERS.get(ext)
    return reader(path) if reader is not None else None


# --- NIfTI ---------------------------------------------------------------------------------------
# datatype code -> bits per voxel (nifti1.h); RGB24 and RGBA32 are 3/4 channel images
NIFTI_BITS = {2: 8, 4: 16, 8: 32, 16: 32, 32: 64, 64: 64, 128: 24, 256: 8, 512: 16, 768: 32, 1024: 64,
              1280: 64, 1536: 128, 1792: 128, 2048: 256, 2304: 32}


def _nifti(path: str) -> Layout:
    gz = path.lower().endswith(".gz")
    try:
        head = _gunzip_head(path, 544) if gz else open(path, "rb").read(544)
    except (OSError, zlib.error) as exc:
        _fail(path, NOT_THIS.format(fmt="NIfTI") if gz else f"not a readable NIfTI file: {exc.strerror}")
    for order in "<>":
        if len(head) < 348:
            break
        (sizeof_hdr,) = struct.unpack(order + "i", head[:4])
        if sizeof_hdr == 348:
            dims = struct.unpack(order + "8h", head[40:56])
            datatype, bitpix = struct.unpack(order + "2h", head[70:74])
            pixdim = struct.unpack(order + "8f", head[76:108])
            (offset,) = struct.unpack(order + "f", head[108:112])
            minimum = 348
        elif sizeof_hdr == 540 and len(head) >= 540:
            datatype, bitpix = struct.unpack(order + "2h", head[12:16])
            dims = struct.unpack(order + "8q", head[16:80])
            pixdim = struct.unpack(order + "8d", head[104:168])
            (offset,) = struct.unpack(order + "q", head[168:176])
            minimum = 540
        else:
            continue
        return _nifti_layout(path, dims, datatype, bitpix, pixdim, offset, minimum, gz)
    _fail(path, NOT_THIS.format(fmt="NIfTI"))  # the header size field is neither 348 nor 540


def _nifti_layout(path, dims, datatype, bitpix, pixdim, offset, minimum, gz) -> Layout:
    ndim = dims[0]
    if not 1 <= ndim <= 7:
        _fail(path, f"invalid NIfTI header: {ndim} dimensions (1 to 7 are possible)")
    sizes = tuple(int(d) for d in dims[1:ndim + 1])
    if any(d < 1 for d in sizes):
        _fail(path, f"invalid NIfTI header: image size {'x'.join(map(str, sizes))} (every size must be at least 1)")
    if len([d for d in sizes if d > 1]) > MAX_DIMENSIONS:
        _fail(path, f"{ndim}D NIfTI images are not supported")
    if datatype not in NIFTI_BITS:
        _fail(path, f"invalid NIfTI header: unknown data type code {datatype}")
    if bitpix != NIFTI_BITS[datatype]:
        _fail(path, f"invalid NIfTI header: {bitpix} bits per voxel for data type {datatype} "
                    f"(which has {NIFTI_BITS[datatype]})")
    if any(not math.isfinite(p) for p in pixdim[1:ndim + 1]):
        _fail(path, "invalid NIfTI header: a voxel size is not a finite number")
    hdr = path.lower().endswith((".hdr", ".hdr.gz"))
    if not math.isfinite(offset) or offset < 0 or (not hdr and int(offset) < minimum):
        _fail(path, f"invalid NIfTI header: voxel data offset {offset:g}")
    data_file = _analyze_image(path) if hdr else path
    compressed = "gzip" if data_file.lower().endswith(".gz") else ""
    return Layout("NIfTI", sizes, bitpix // 8, data_file, int(offset), compressed)


def _gunzip_head(path: str, n: int) -> bytes:
    """The first N uncompressed bytes of a gzip file, also of one cut short (no EOFError)."""
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    out = b""
    with open(path, "rb") as fp:
        while len(out) < n:
            block = fp.read(65536)
            if not block:
                break
            out += inflater.decompress(block, n - len(out))
            if inflater.eof or inflater.unconsumed_tail:
                break
    return out[:n]


def _analyze_image(path: str) -> str:
    base = path[: -len(".hdr")] if path.lower().endswith(".hdr") else path
    for ext in (".img", ".IMG", ".img.gz"):
        if os.path.isfile(base + ext):
            return base + ext
    _fail(path, f"the image data file {os.path.basename(base)}.img beside the header is missing")


# --- NRRD ----------------------------------------------------------------------------------------
NRRD_TYPES = {
    **dict.fromkeys(("signed char", "int8", "int8_t", "uchar", "unsigned char", "uint8", "uint8_t"), 1),
    **dict.fromkeys(("short", "short int", "signed short", "signed short int", "int16", "int16_t", "ushort",
                     "unsigned short", "unsigned short int", "uint16", "uint16_t"), 2),
    **dict.fromkeys(("int", "signed int", "int32", "int32_t", "uint", "unsigned int", "uint32", "uint32_t",
                     "float"), 4),
    **dict.fromkeys(("longlong", "long long", "long long int", "signed long long", "signed long long int",
                     "int64", "int64_t", "ulonglong", "unsigned long long", "unsigned long long int", "uint64",
                     "uint64_t", "double"), 8),
}
NRRD_ENCODINGS = {"raw": "", "gzip": "gzip", "gz": "gzip", "bzip2": "other", "bz2": "other",
                  "ascii": "text", "text": "text", "txt": "text", "hex": "text"}


def _text_header(path: str, fmt: str) -> tuple[list[bytes], int]:
    """(header lines, offset of the first byte after the header) of an NRRD or MetaImage file."""
    with open(path, "rb") as fp:
        head = fp.read(MAX_TEXT_HEADER)
    if fmt == "NRRD":
        if not re.match(rb"NRRD000[1-5]\r?\n", head):
            _fail(path, NOT_THIS.format(fmt="NRRD"))  # no NRRD000x magic line
        end = re.search(rb"\r?\n\r?\n", head)
        if end is None:
            if len(head) >= MAX_TEXT_HEADER:
                _fail(path, "invalid NRRD header: no blank line ends it within 1 MB")
            return head.splitlines(), len(head)  # a detached header (.nhdr) may end without one
        return head[: end.start()].splitlines(), end.end()
    match = re.search(rb"^[ \t]*ElementDataFile[ \t]*[=:][^\n]*(\n|$)", head, re.M)
    if match is None:
        _fail(path, NOT_THIS.format(fmt="MetaImage"))  # no ElementDataFile line ends a header
    return head[: match.end()].splitlines(), match.end()


def _ints(path: str, fmt: str, name: str, value: str, count: int | None, minimum: int) -> tuple[int, ...]:
    try:
        numbers = tuple(int(v) for v in value.split())
    except ValueError:
        _fail(path, f"invalid {fmt} header: {name} is not a list of whole numbers")
    if (count is not None and len(numbers) != count) or not numbers or any(n < minimum for n in numbers):
        want = f"{count} " if count is not None else ""
        _fail(path, f"invalid {fmt} header: {name} must be {want}whole numbers of at least {minimum}")
    return numbers


def _floats(path: str, fmt: str, name: str, value: str, count: int) -> None:
    parts = re.sub(r"[(),]", " ", value).split()
    if parts == ["none"] * len(parts) and fmt == "NRRD":
        return
    try:
        numbers = [float(v) for v in parts if v != "none"]
    except ValueError:
        _fail(path, f"invalid {fmt} header: {name} is not a list of numbers")
    if len(numbers) < count or not all(math.isfinite(n) for n in numbers):
        _fail(path, f"invalid {fmt} header: {name} needs {count} finite numbers")


def _nrrd(path: str) -> Layout:
    lines, end = _text_header(path, "NRRD")
    fields: dict[str, str] = {}
    for raw in lines[1:]:
        line = raw.decode("latin-1")
        if line.startswith("#") or line[len(line.split(":", 1)[0]):].startswith(":="):
            continue  # comments and key/value pairs
        if ":" not in line:
            _fail(path, "invalid NRRD header: a line is neither a field nor a comment")
        key, value = line.split(":", 1)
        fields[key.strip().lower()] = value.strip()
    dim = _ints(path, "NRRD", "dimension", fields.get("dimension", ""), 1, 1)[0]
    if dim > MAX_DIMENSIONS + 1:  # one axis may be the channels
        _fail(path, f"{dim}-dimensional NRRD images are not supported")
    sizes = _ints(path, "NRRD", "sizes", fields.get("sizes", ""), dim, 1)
    kind = fields.get("type", "").lower()
    if kind not in NRRD_TYPES:
        _fail(path, "invalid NRRD header: unknown pixel type" if kind else "invalid NRRD header: no pixel type")
    encoding = fields.get("encoding", "").lower()
    if encoding not in NRRD_ENCODINGS:
        _fail(path, "invalid NRRD header: unknown encoding")
    for name in ("spacings", "space origin"):
        if name in fields:
            _floats(path, "NRRD", name, fields[name], dim if name == "spacings" else 1)
    skip = fields.get("byte skip", "0")
    if not re.fullmatch(r"-1|\d{1,15}", skip) or not re.fullmatch(r"\d{0,15}", fields.get("line skip", "0")):
        _fail(path, "invalid NRRD header: byte skip or line skip is not a valid number")
    detached = fields.get("data file", fields.get("datafile"))
    data_file, offset = path, end
    if detached is not None:
        data_file = _beside(path, detached, "NRRD")
        offset = None if skip == "-1" else int(skip)
    elif skip != "0":
        offset = None if skip == "-1" else end + int(skip)
    if fields.get("line skip", "0") not in ("", "0"):
        offset = None  # lines of text before the data: their length is not known here
    nbytes = NRRD_TYPES[kind]
    channels, space = (sizes[0], sizes[1:]) if dim > 1 and _is_channel_axis(fields, sizes) else (1, sizes)
    if channels > MAX_CHANNELS:
        _fail(path, f"{channels}-component NRRD pixels are not supported")
    return Layout("NRRD", space, nbytes * channels, data_file, offset, NRRD_ENCODINGS[encoding])


def _is_channel_axis(fields: dict[str, str], sizes: tuple[int, ...]) -> bool:
    kinds = fields.get("kinds", "").lower().split()
    return bool(kinds) and kinds[0] not in ("domain", "space", "time", "none", "???") and sizes[0] <= 16


def _beside(path: str, name: str, fmt: str) -> str:
    """The data file a detached header names: one regular file, found relative to the header."""
    name = name.strip()
    if not name or name.upper().startswith("LIST") or "%" in name or "\0" in name:
        _fail(path, f"{fmt} data split over several files is not supported")
    target = name if os.path.isabs(name) else os.path.join(os.path.dirname(os.path.abspath(path)), name)
    if not os.path.isfile(target):  # missing, a folder, or a device such as /dev/zero
        _fail(path, f"the data file {os.path.basename(name)} named in the header is missing or not a regular file")
    return target


# --- MetaImage -----------------------------------------------------------------------------------
MET_TYPES = {"MET_CHAR": 1, "MET_UCHAR": 1, "MET_SHORT": 2, "MET_USHORT": 2, "MET_INT": 4, "MET_UINT": 4,
             "MET_LONG": 4, "MET_ULONG": 4, "MET_LONG_LONG": 8, "MET_ULONG_LONG": 8, "MET_FLOAT": 4,
             "MET_DOUBLE": 8}
_MET_ARRAYS = {"TransformMatrix": 2, "Rotation": 2, "Orientation": 2, "Offset": 1, "Position": 1, "Origin": 1,
               "ElementSpacing": 1, "ElementSize": 1, "CenterOfRotation": 1}
_MET_FLAGS = ("CompressedData", "BinaryData", "BinaryDataByteOrderMSB", "ElementByteOrderMSB")


def _mha(path: str) -> Layout:
    lines, end = _text_header(path, "MetaImage")
    fields: dict[str, str] = {}
    for raw in lines:
        line = raw.decode("latin-1")
        if not line.strip():
            continue
        key, sep, value = line.partition("=")
        if not sep:
            key, sep, value = line.partition(":")
        fields[key.strip()] = value.strip()
    ndims = _ints(path, "MetaImage", "NDims", fields.get("NDims", ""), 1, 1)[0]
    if not 2 <= ndims <= MAX_DIMENSIONS:
        _fail(path, f"{ndims}-dimensional MetaImage files are not supported (NDims must be 2 to {MAX_DIMENSIONS})")
    sizes = _ints(path, "MetaImage", "DimSize", fields.get("DimSize", ""), ndims, 1)
    kind = fields.get("ElementType", "")
    if kind not in MET_TYPES:
        _fail(path, "invalid MetaImage header: unknown ElementType" if kind else
              "invalid MetaImage header: no ElementType")
    channels = _ints(path, "MetaImage", "ElementNumberOfChannels", fields.get("ElementNumberOfChannels", "1"), 1, 1)[0]
    if channels > MAX_CHANNELS:
        _fail(path, f"{channels}-component MetaImage pixels are not supported")
    for name, power in _MET_ARRAYS.items():
        if name in fields:
            _floats(path, "MetaImage", name, fields[name], ndims ** power)
    for name in _MET_FLAGS:
        if name in fields and fields[name].lower() not in ("true", "false", "1", "0"):
            _fail(path, f"invalid MetaImage header: {name} must be True or False")
    header_size = fields.get("HeaderSize", "0")
    if not re.fullmatch(r"-1|\d{1,15}", header_size):
        _fail(path, "invalid MetaImage header: HeaderSize is not a valid number")
    if "CompressedDataSize" in fields and not re.fullmatch(r"\d{1,15}", fields["CompressedDataSize"]):
        _fail(path, "invalid MetaImage header: CompressedDataSize is not a valid number")
    if fields.get("BinaryData", "True").lower() in ("false", "0"):
        _fail(path, "MetaImage files with text (non-binary) data are not supported")
    compressed = "zlib" if fields.get("CompressedData", "False").lower() in ("true", "1") else ""
    name = fields.get("ElementDataFile", "")
    if name.upper() == "LOCAL":
        data_file, offset = path, end
    else:
        data_file = _beside(path, name, "MetaImage")
        offset = None if header_size == "-1" else int(header_size)
    return Layout("MetaImage", sizes, MET_TYPES[kind] * channels, data_file, offset, compressed)


# --- PNG and JPEG --------------------------------------------------------------------------------
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PNG_DEPTHS = {0: (1, 2, 4, 8, 16), 2: (8, 16), 3: (1, 2, 4, 8), 4: (8, 16), 6: (8, 16)}
PNG_CHANNELS = {0: 1, 2: 3, 3: 3, 4: 2, 6: 4}


def _png(path: str) -> Layout:
    """Walk the chunks (their headers only, the IHDR CRC checked): IHDR first, IDAT present, IEND last."""
    size = os.path.getsize(path)
    with open(path, "rb") as fp:
        if fp.read(8) != PNG_SIGNATURE:
            _fail(path, NOT_THIS.format(fmt="PNG"))
        first = fp.read(25)
        if len(first) < 25 or first[4:8] != b"IHDR" or struct.unpack(">I", first[:4])[0] != 13:
            _fail(path, "invalid PNG file: it does not start with an image header (IHDR)")
        if zlib.crc32(first[4:21]) & 0xFFFFFFFF != struct.unpack(">I", first[21:25])[0]:
            _fail(path, "invalid PNG file: the image header is damaged (CRC mismatch)")
        width, height, depth, colour, method, filtering, interlace = struct.unpack(">IIBBBBB", first[8:21])
        if not (1 <= width < 2**31 and 1 <= height < 2**31):
            _fail(path, f"invalid PNG header: image size {width}x{height}")
        if depth not in PNG_DEPTHS.get(colour, ()) or method or filtering or interlace > 1:
            _fail(path, "invalid PNG header: unknown colour type, bit depth, compression, filter or interlace")
        pos, seen_data, ended = 33, False, False
        while pos + 12 <= size:
            fp.seek(pos)
            head = fp.read(8)
            length, kind = struct.unpack(">I", head[:4])[0], head[4:8]
            if length >= 2**31 or pos + 12 + length > size:
                break
            seen_data |= kind == b"IDAT"
            pos += 12 + length
            if kind == b"IEND":
                ended = True
                break
    if not seen_data:
        _fail(path, "the PNG file is truncated or damaged (no image data)")
    if not ended:
        _fail(path, "the PNG file is truncated (its chunks end before the IEND marker)")
    per = PNG_CHANNELS[colour] * (2 if depth == 16 else 1)
    return Layout("PNG", (width, height), per, path, None, "other")


_SOF = set(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}


def _jpeg(path: str) -> Layout:
    """Walk the marker segments to the first scan; the frame header's size, and an end-of-image
    marker after the scan (a cut-off JPEG lacks it; libjpeg would fill the rest with grey)."""
    size = os.path.getsize(path)
    with open(path, "rb") as fp:
        if fp.read(2) != b"\xff\xd8":
            _fail(path, NOT_THIS.format(fmt="JPEG"))  # no start-of-image marker
        pos, frame = 2, None
        while True:
            fp.seek(pos)
            head = fp.read(4)
            if len(head) < 4 or head[0] != 0xFF:
                _fail(path, "the JPEG file is truncated or damaged (its header ends before the image data)")
            marker = head[1]
            if marker == 0xFF:  # fill byte
                pos += 1
                continue
            if 0xD0 <= marker <= 0xD9 or marker == 0x01:
                pos += 2
                continue
            length = struct.unpack(">H", head[2:4])[0]
            if length < 2:
                _fail(path, "the JPEG file is damaged (a header segment has an invalid length)")
            if marker in _SOF:
                body = fp.read(6)
                if len(body) < 6:
                    _fail(path, "the JPEG file is truncated (its frame header is cut off)")
                precision, height, width, components = struct.unpack(">BHHB", body)
                frame = (precision, height, width, components)
            pos += 2 + length
            if marker == 0xDA:  # start of scan: the entropy-coded data follows
                break
    if frame is None:
        _fail(path, "the JPEG file is damaged (no frame header before the image data)")
    precision, height, width, components = frame
    if not (height >= 1 and width >= 1 and components in (1, 3, 4) and precision in (8, 12, 16)):
        _fail(path, f"invalid JPEG header: {width}x{height} pixels, {components} components, {precision} bits")
    _check_jpeg_end(path, pos, size)
    return Layout("JPEG", (width, height), components * (2 if precision > 8 else 1), path, None, "other")


def _check_jpeg_end(path: str, scan: int, size: int) -> None:
    """An end-of-image marker (FF D9) after the first scan; inside entropy-coded data FF is always
    followed by 00 or a restart marker, so the first FF D9 after the scan is the real end."""
    with open(path, "rb") as fp:
        fp.seek(scan)
        tail = b""
        while True:
            block = fp.read(1 << 20)
            if not block:
                break
            if b"\xff\xd9" in tail[-1:] + block:
                return
            tail = block
    _fail(path, "the JPEG file is truncated (it has no end-of-image marker)")


# --- data size -----------------------------------------------------------------------------------
DEFLATE_RATIO = 1032  # deflate cannot compress better than about 1032:1


def check_data_size(path: str, found: Layout, exact: bool = True) -> None:
    """Is there data for every voxel the header promises? Any deflate stream: at least 1/1032 of
    the promised size must be there (a 62 kB file cannot hold 1.5 GB). When EXACT: uncompressed,
    the file size; gzip, the trailer's uncompressed size (ISIZE, modulo 4 GiB) must match.
    check_header leaves the exact check to the read (sitk_image.check_complete): a cut-off file
    is listed, and loading it says why, as a DICOM file with short pixel data is."""
    need = found.nbytes
    whole_file = found.fmt == "NIfTI" or found.data_file != path  # the stream starts the data file
    start = 0 if whole_file else (found.data_offset or 0)
    if found.compressed in ("gzip", "zlib"):
        promised = need + (found.data_offset or 0) if found.fmt == "NIfTI" else need
        stream = os.path.getsize(found.data_file) - start
        if promised > DEFLATE_RATIO * max(stream, 1) + 4096:
            _fail(path, f"the compressed data is truncated ({stream} bytes cannot unpack to the "
                        f"{promised} bytes the header promises)")
        if found.compressed == "zlib" or not exact:
            return  # ITK reports a short zlib stream itself
        isize = _gzip_isize(found.data_file, start)
        if isize is None:
            _fail(path, "the compressed data is damaged (it is not a gzip stream)")
        slack = 2**20 if found.fmt == "NIfTI" else 2**20 + max(found.data_offset or 0, 0)
        if promised < 2**32 and not promised <= isize <= promised + slack:
            _fail(path, f"the compressed file is truncated or corrupt (its gzip trailer records {isize} "
                        f"bytes; the header promises {promised})")
        return
    if found.compressed or not exact:
        return  # bzip2, text, PNG, JPEG: their decoders report a short stream
    have = os.path.getsize(found.data_file)
    offset = found.data_offset if found.data_offset is not None else 0
    if have - offset < need:
        what = "file" if found.data_file == path else f"data file {os.path.basename(found.data_file)}"
        _fail(path, f"the {what} is truncated ({have} bytes; the header promises {offset + need} bytes "
                    f"with the voxels)")


def _gzip_isize(path: str, start: int = 0) -> int | None:
    """The uncompressed size (modulo 4 GiB) in the trailer of the gzip stream that starts at START
    and ends the file; None when there is no gzip stream there."""
    try:
        with open(path, "rb") as fp:
            fp.seek(start)
            if fp.read(2) != b"\x1f\x8b" or os.path.getsize(path) - start < 20:
                return None
            fp.seek(-4, os.SEEK_END)
            return int.from_bytes(fp.read(4), "little")
    except OSError:
        return None


_READERS = {".nii": _nifti, ".nii.gz": _nifti, ".hdr": _nifti, ".nrrd": _nrrd, ".nhdr": _nrrd,
            ".mha": _mha, ".mhd": _mha, ".png": _png, ".jpg": _jpeg, ".jpeg": _jpeg}
