"""Seed images and the mutations the fuzz tests and scripts/fuzz.py apply to them (one place for both).

A *seed* is a real file of a format MedViewer reads (DICOM native / RLE / JPEG / JPEG 2000, NIfTI
.nii and .nii.gz, NRRD, MHA, MHD+raw, PNG, JPEG); `make_seeds(folder)` writes them (generated with
SimpleITK and pydicom's bundled test file, plus the real files of ../shared/data when present).

A *mutation* is a list of operations, each a plain tuple, so hypothesis can draw and shrink them and a
finding can be replayed from its description:

    ("flip", fraction, value)          set the byte at fraction*len (header-weighted) to value
    ("truncate", fraction)             keep the first fraction*len bytes (at least one)
    ("field", name, value)             change one header field (format-aware, see FIELDS)

`mutate(seed, ops) -> {relative name: bytes}` returns the files of the mutated case (an .mhd case is
two files). Compressed files (.nii.gz, gzip NRRD/MHA) are mutated in their uncompressed form for
"field" and "flip" operations (so the change reaches the parser) and in compressed form for
"truncate" (a cut-off download).
"""
from __future__ import annotations

import gzip
import io
import os
import random
import re
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("MEDVIEWER_SHARED_DATA", REPO.parent / "shared" / "data"))

HOSTILE_TEXT = ["", "-1", "0", "1", "3", "-3", "7", "65536", "999999999", "4294967297", "1e308", "-1e9",
                "nan", "inf", "abc", "1 2", "2 2 2 2 2", "\x1b[2J\x1b[31mEVIL\x07", "../../../etc/passwd",
                "\xff\xfe\x00"]
HOSTILE_INT = [0, 1, 2, 3, 7, 8, 12, 15, 16, 17, 24, 32, 33, 64, 255, 256, 32767, 65535, -1, -2, 2**31 - 1,
               2**31, 2**32 - 1]
# (format, field names) that "field" operations pick from
FIELDS = {
    "nifti": ["dim0", "dim1", "dim2", "dim3", "dim4", "datatype", "bitpix", "pixdim1", "pixdim3",
              "vox_offset", "scl_slope", "sizeof_hdr", "qform_code", "sform_code", "magic"],
    "nrrd": ["dimension", "sizes", "type", "encoding", "endian", "space directions", "spacings",
             "data file", "byte skip", "line skip", "space origin", "kinds"],
    "mha": ["NDims", "DimSize", "ElementType", "ElementSpacing", "HeaderSize", "CompressedData",
            "CompressedDataSize", "ElementDataFile", "ElementNumberOfChannels", "TransformMatrix",
            "Offset", "BinaryDataByteOrderMSB"],
    "png": ["width", "height", "bit_depth", "colour_type", "compression", "interlace", "drop_iend",
            "drop_idat"],
    "jpeg": ["height", "width", "precision", "components", "drop_eoi"],
    "dicom": ["Rows", "Columns", "BitsAllocated", "BitsStored", "HighBit", "SamplesPerPixel",
              "PixelRepresentation", "PhotometricInterpretation", "NumberOfFrames", "SliceThickness",
              "SpacingBetweenSlices", "PixelSpacing", "ImagePositionPatient", "ImageOrientationPatient",
              "RescaleSlope", "RescaleIntercept", "InstanceNumber", "WindowCenter", "PatientName",
              "PatientBirthDate", "SeriesDescription", "TransferSyntaxUID", "PlanarConfiguration"],
}


@dataclass(frozen=True)
class Seed:
    name: str  # e.g. "nrrd-gzip"
    fmt: str  # key of FIELDS
    path: Path  # the main file (a companion .raw lies beside an .mhd)
    suffix: str  # how a mutated copy is named, e.g. ".nii.gz"

    @property
    def gzipped(self) -> bool:
        return self.suffix.endswith(".gz")


# --- seeds ---------------------------------------------------------------------------------------
def _volume(shape=(6, 20, 24), dtype=np.int16) -> np.ndarray:
    z, y, x = np.mgrid[: shape[0], : shape[1], : shape[2]]
    return ((x * 7 + y * 3 + z * 11) % 200 - 50).astype(dtype)


def make_seeds(folder: Path, shared: bool = True) -> list[Seed]:
    """Write the generated seeds into FOLDER and list them, with the shared real files when present."""
    import pydicom
    import SimpleITK as sitk

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    image = sitk.GetImageFromArray(_volume())
    image.SetSpacing((0.8, 0.9, 2.5))
    image.SetOrigin((-10.0, 5.0, 30.0))
    seeds = []

    def write(name, fmt, filename, img, compress=False):
        path = folder / filename
        sitk.WriteImage(img, str(path), useCompression=compress)
        seeds.append(Seed(name, fmt, path, "".join(Path(filename).suffixes) if filename.endswith(".gz")
                          else Path(filename).suffix))

    write("nifti", "nifti", "seed.nii", image)
    write("nifti-gz", "nifti", "seed_gz.nii.gz", image, True)
    write("nrrd", "nrrd", "seed_raw.nrrd", image)
    write("nrrd-gzip", "nrrd", "seed_gz.nrrd", image, True)
    write("mha", "mha", "seed_raw.mha", image)
    write("mha-zlib", "mha", "seed_z.mha", image, True)
    write("mhd", "mha", "seed_pair.mhd", image)
    grey = sitk.GetImageFromArray((_volume((1, 40, 48), np.uint8)[0] * 1).astype(np.uint8))
    write("png", "png", "seed.png", grey)
    write("jpeg", "jpeg", "seed.jpg", grey)
    rgb = sitk.GetImageFromArray(np.stack([_volume((1, 40, 48), np.uint8)[0]] * 3, axis=-1), isVector=True)
    write("png-rgb", "png", "seed_rgb.png", rgb)
    ct_small = Path(pydicom.data.get_testdata_file("CT_small.dcm"))
    seeds.append(Seed("dicom-native", "dicom", ct_small, ".dcm"))
    if shared and SHARED_DATA.is_dir():
        for name, rel, suffix, fmt in [
            ("dicom-ct-j2k", "dicom/ct_series_20", ".dcm", "dicom"),
            ("dicom-implicit", "dicom/transfer_syntaxes/In/2.dcm", ".dcm", "dicom"),
            ("dicom-rle", "dicom/transfer_syntaxes/In/4.dcm", ".dcm", "dicom"),
            ("dicom-jpeg", "dicom/transfer_syntaxes/In/5.dcm", ".dcm", "dicom"),
            ("dicom-j2k", "dicom/transfer_syntaxes/In/9.dcm", ".dcm", "dicom"),
            ("nifti-real", "hippocampus/imagesTr/hippocampus_001.nii.gz", ".nii.gz", "nifti"),
            ("nifti-brain", "brain_t1/KmeansTest_T1UCharRaw.nii.gz", ".nii.gz", "nifti"),
        ]:
            path = SHARED_DATA / rel
            if path.is_dir():
                files = sorted(p for p in path.iterdir() if p.is_file())
                path = files[0] if files else path
            if path.is_file():
                seeds.append(Seed(name, fmt, path, suffix))
    return seeds


def seed_files(seed: Seed) -> dict[str, bytes]:
    """The seed's files by their name in a case folder ("case" + suffix, plus a companion)."""
    files = {"case" + seed.suffix: seed.path.read_bytes()}
    if seed.suffix == ".mhd":
        files = {"case.mhd": _retarget_mhd(files["case.mhd"]), "case.raw": seed.path.with_suffix(".raw").read_bytes()}
    return files


def _retarget_mhd(header: bytes) -> bytes:
    return re.sub(rb"ElementDataFile = .*", b"ElementDataFile = case.raw", header)


# --- mutations -----------------------------------------------------------------------------------
def mutate(seed: Seed, ops: list[tuple]) -> dict[str, bytes]:
    files = seed_files(seed)
    main = "case" + seed.suffix
    data = files[main]
    compressed = _compression(seed, data)
    plain = _decompress(compressed, data)
    for op in ops:
        if op[0] == "truncate" and "case.raw" in files:  # an .mhd case: its data file is cut
            files["case.raw"] = files["case.raw"][: max(1, int(len(files["case.raw"]) * op[1]))]
            continue
        if op[0] == "truncate":
            if compressed and plain is not None:  # cut the compressed stream
                data = _compress(compressed, plain, data)
                plain = None
            if plain is not None:
                plain = plain[: max(1, int(len(plain) * op[1]))]
            else:
                data = data[: max(1, int(len(data) * op[1]))]
            continue
        if plain is None:  # after a truncation of a compressed file: raw bytes only
            if op[0] == "flip":
                data = _flip(data, op[1], op[2])
            continue
        if op[0] == "flip":
            plain = _flip(plain, op[1], op[2])
        elif op[0] == "field":
            if seed.suffix == ".mhd" and op[1] in ("ElementDataFile",):
                plain = _text_field(plain, op[1], op[2], " = ")
            else:
                plain = FIELD_SETTERS[seed.fmt](plain, op[1], op[2])
    if plain is not None:
        data = _compress(compressed, plain, data)
    files[main] = data
    return files


def _flip(data: bytes, fraction: float, value: int) -> bytes:
    if not data:
        return data
    # most parsers' trouble is in the header: three flips in four land in the first 600 bytes
    span = min(len(data), 600) if fraction < 0.75 else len(data)
    pos = min(int((fraction / 0.75 if fraction < 0.75 else (fraction - 0.75) / 0.25) * span), len(data) - 1)
    return data[:pos] + bytes([value & 0xFF]) + data[pos + 1:]


def _compression(seed: Seed, data: bytes) -> str:
    if data[:2] == b"\x1f\x8b":
        return "gzip-file"
    if seed.fmt == "nrrd" and re.search(rb"encoding: ?(gz|gzip)\b", data[:2000]):
        return "nrrd-gzip"
    if seed.fmt == "mha" and b"CompressedData = True" in data[:2000]:
        return "mha-zlib"
    return ""


def _split_text_header(data: bytes, fmt: str) -> int:
    """Offset of the binary part of an NRRD/MHA file."""
    if fmt == "nrrd-gzip":
        return data.index(b"\n\n") + 2
    match = re.search(rb"ElementDataFile = [^\n]*\n", data)
    if match is None:
        raise ValueError("no ElementDataFile line")
    return match.end()


def _decompress(kind: str, data: bytes) -> bytes | None:
    try:
        if kind == "gzip-file":
            return gzip.decompress(data)
        if kind == "nrrd-gzip":
            cut = _split_text_header(data, kind)
            return data[:cut] + gzip.decompress(data[cut:])
        if kind == "mha-zlib":
            cut = _split_text_header(data, kind)
            return data[:cut] + zlib.decompress(data[cut:])
    except (OSError, ValueError, zlib.error, EOFError):
        return None
    return data


def _compress(kind: str, plain: bytes, original: bytes) -> bytes:
    if kind == "gzip-file":
        return gzip.compress(plain, mtime=0)
    if kind in ("nrrd-gzip", "mha-zlib"):
        try:
            cut = _split_text_header(plain, kind)
        except ValueError:
            return plain
        body = gzip.compress(plain[cut:], mtime=0) if kind == "nrrd-gzip" else zlib.compress(plain[cut:])
        head = plain[:cut]
        if kind == "mha-zlib":
            head = re.sub(rb"CompressedDataSize = \d+", b"CompressedDataSize = %d" % len(body), head)
        return head + body
    return plain


def _text_field(data: bytes, name: str, value: str, sep: str) -> bytes:
    raw = value.encode("latin-1")
    pattern = re.compile(rb"^" + re.escape(name.encode()) + rb"[ \t]*" + re.escape(sep.strip().encode())
                         + rb"[^\n]*$", re.M)
    line = name.encode() + sep.encode() + raw
    if pattern.search(data):
        return pattern.sub(lambda _m: line, data, count=1)
    # insert the field after the first line (NRRD magic) or at the top (MHA)
    first = data.index(b"\n") + 1 if sep == ": " else 0
    return data[:first] + line + b"\n" + data[first:]


def _nifti_field(data: bytes, name: str, value: str) -> bytes:
    slots = {"dim0": (40, "h"), "dim1": (42, "h"), "dim2": (44, "h"), "dim3": (46, "h"), "dim4": (48, "h"),
             "datatype": (70, "h"), "bitpix": (72, "h"), "pixdim1": (80, "f"), "pixdim3": (88, "f"),
             "vox_offset": (108, "f"), "scl_slope": (112, "f"), "sizeof_hdr": (0, "i"),
             "qform_code": (252, "h"), "sform_code": (254, "h"), "magic": (344, "4s")}
    offset, kind = slots[name]
    if len(data) < offset + struct.calcsize(kind):
        return data
    if kind == "4s":
        packed = value.encode("latin-1")[:4].ljust(4, b"\0")
    else:
        number = _as_number(value)
        if kind in "hi":
            bits = 16 if kind == "h" else 32
            number = int(number) if np.isfinite(number) else -1
            packed = struct.pack("<" + kind, ((number + 2 ** (bits - 1)) % 2 ** bits) - 2 ** (bits - 1))
        else:
            packed = struct.pack("<f", float(np.float32(number)) if abs(number) < 3.4e38 or not np.isfinite(number)
                                 else np.float32(np.inf))
    return data[:offset] + packed + data[offset + len(packed):]


def _as_number(value: str) -> float:
    try:
        return float(value)
    except ValueError:
        return float(len(value) * 1000 - 1)  # a text value: some odd number


def _png_field(data: bytes, name: str, value: str) -> bytes:
    chunks = _png_chunks(data)
    if not chunks:
        return data
    if name == "drop_iend":
        return b"".join(c for c in chunks if c[4:8] != b"IEND") if len(chunks) > 1 else data
    if name == "drop_idat":
        kept = [c for c in chunks if c[4:8] != b"IDAT"]
        return b"".join(kept)
    ihdr = bytearray(chunks[1]) if len(chunks) > 1 and chunks[1][4:8] == b"IHDR" else None
    if ihdr is None or len(ihdr) < 25:
        return data
    number = int(_as_number(value)) if np.isfinite(_as_number(value)) else 0
    where = {"width": (8, 4), "height": (12, 4), "bit_depth": (16, 1), "colour_type": (17, 1),
             "compression": (18, 1), "interlace": (20, 1)}[name]
    ihdr[where[0]:where[0] + where[1]] = (number % 256 ** where[1]).to_bytes(where[1], "big")
    body = bytes(ihdr[4:-4])
    ihdr[-4:] = struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF)  # a valid CRC: the value reaches the decoder
    chunks[1] = bytes(ihdr)
    return b"".join(chunks)


def _png_chunks(data: bytes) -> list[bytes]:
    """[signature, chunk, chunk ...] (each chunk with length, type, data and CRC); [] if not a PNG."""
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        return []
    out, pos = [data[:8]], 8
    while pos + 12 <= len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        end = pos + 12 + length
        if end > len(data):
            break
        out.append(data[pos:end])
        pos = end
    if pos < len(data):
        out.append(data[pos:])
    return out


def _jpeg_field(data: bytes, name: str, value: str) -> bytes:
    if name == "drop_eoi":
        return data[:-2] if data.endswith(b"\xff\xd9") else data
    sof = re.search(rb"\xff[\xc0-\xc3\xc5-\xc7\xc9-\xcb\xcd-\xcf]", data)
    if sof is None or len(data) < sof.start() + 10:
        return data
    number = int(_as_number(value)) if np.isfinite(_as_number(value)) else 0
    where = {"precision": (4, 1), "height": (5, 2), "width": (7, 2), "components": (9, 1)}[name]
    pos = sof.start() + where[0]
    return data[:pos] + (number % 256 ** where[1]).to_bytes(where[1], "big") + data[pos + where[1]:]


def dicom_field(data: bytes, name: str, value: str) -> bytes:
    """Rewrite one element with raw bytes (any length, any content), keeping the rest of the file."""
    import pydicom
    from pydicom.dataelem import RawDataElement
    from pydicom.datadict import dictionary_VR, tag_for_keyword

    try:
        ds = pydicom.dcmread(io.BytesIO(data), force=True)
    except Exception:  # noqa: BLE001 - an earlier operation broke the file: leave it as it is
        return data
    tag = tag_for_keyword(name)
    vr = dictionary_VR(tag)
    if vr == "US":
        number = _as_number(value)
        raw = struct.pack("<H", int(number) % 65536) if np.isfinite(number) else b"\xff"
    else:
        raw = value.encode("latin-1")
        raw += b" " * (len(raw) % 2)
    target = ds.file_meta if tag >> 16 == 2 else ds
    if tag >> 16 == 2 and not hasattr(ds, "file_meta"):
        return data
    implicit = bool(getattr(ds, "is_implicit_VR", False)) and target is ds
    try:
        target._dict[pydicom.tag.Tag(tag)] = RawDataElement(pydicom.tag.Tag(tag), None if implicit else vr, len(raw),
                                                            raw, 0, implicit, True)
        buf = io.BytesIO()
        ds.save_as(buf, enforce_file_format=False)
    except Exception:  # noqa: BLE001 - pydicom refused to write it: keep the file unchanged
        return data
    return buf.getvalue()


FIELD_SETTERS = {
    "nifti": _nifti_field,
    "nrrd": lambda data, name, value: _text_field(data, name, value, ": "),
    "mha": lambda data, name, value: _text_field(data, name, value, " = "),
    "png": _png_field,
    "jpeg": _jpeg_field,
    "dicom": dicom_field,
}


def random_ops(rng: random.Random, seed: Seed) -> list[tuple]:
    """One to three operations, as hypothesis would draw them (for scripts/fuzz.py)."""
    ops = []
    for _ in range(rng.choice((1, 1, 2, 3))):
        kind = rng.choice(("flip", "flip", "truncate", "field", "field", "field"))
        if kind == "flip":
            ops.append(("flip", rng.random(), rng.randrange(256)))
        elif kind == "truncate":
            ops.append(("truncate", rng.random()))
        else:
            ops.append(("field", rng.choice(FIELDS[seed.fmt]), random_value(rng)))
    return ops


def random_value(rng: random.Random) -> str:
    if rng.random() < 0.5:
        return rng.choice(HOSTILE_TEXT)
    return str(rng.choice(HOSTILE_INT))


def write_case(folder: Path, files: dict[str, bytes]) -> Path:
    """Write a case's files into FOLDER; returns the main file (the one `info`/`convert` is given)."""
    folder.mkdir(parents=True, exist_ok=True)
    main = None
    for name, data in files.items():
        (folder / name).write_bytes(data)
        if not name.endswith(".raw"):
            main = folder / name
    return main


# --- running a case and judging the outcome ------------------------------------------------------
GOOD = ("ok", "error")  # success, or a clean one-line error (exit 1)
BAD = ("traceback", "unexpected", "dirty", "leak", "silent", "crash", "hang", "memory")
PHI_MARK = "PHIx"  # prefix of the patient values a mutation writes; it must never be printed
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ufffd]")
PATIENT_FIELDS = ("PatientName", "PatientBirthDate")
MAX_RSS = 1 << 30  # a case (a seed of at most a few MB) that needs more than this has blown up


def hostile_ops(ops: list[tuple]) -> list[tuple]:
    """OPS with patient values marked, so that a leak can be recognised in any output."""
    return [("field", op[1], PHI_MARK + op[2]) if op[0] == "field" and op[1] in PATIENT_FIELDS else op
            for op in ops]


def judge(command: str, rc: int, out: str, err: str, ops: list[tuple]) -> str:
    """The outcome of one command (`info` or `convert`) on a mutated file: one of GOOD or BAD."""
    text = out + err
    if "Traceback (most recent call last)" in text:
        return "traceback"
    if "the details are in" in err or "no log file could be written" in err:
        return "unexpected"  # an exception nobody planned for (its traceback went to a log)
    if "not enough memory" in err or "MemoryError" in text:
        return "memory"
    if PHI_MARK in text:
        return "leak"
    if _CONTROL.search(text):
        return "dirty"
    if rc == 1:
        errors = [line for line in err.splitlines() if line.startswith("medviewer: error:")]
        stray = [line for line in err.splitlines() if line and not line.startswith("medviewer: ")]
        return "error" if len(errors) == 1 and not stray else "dirty"
    if rc != 0:
        return "crash"
    if command == "convert" and cut_short_only(ops):
        return "silent"  # a file cut short converted as if complete
    return "ok"


def cut_short_only(ops: list[tuple]) -> bool:
    """Whether OPS truncate the file and change nothing that could make the header ask for less
    (a field, a flip in the header region: see _flip); such a file must never convert."""
    return (any(op[0] == "truncate" and op[1] < 0.999 for op in ops)
            and not any(op[0] == "field" or (op[0] == "flip" and op[1] < 0.75) for op in ops))


RUNNER = r"""
import os, resource, sys
from medviewer.cli import main
case, out = sys.argv[1], sys.argv[2]
for argv in (["info", case], ["convert", case, out]):
    sys.stdout.flush(); sys.stderr.flush()
    os.write(1, b"\n@@cmd " + argv[0].encode() + b"\n"); os.write(2, b"\n@@cmd " + argv[0].encode() + b"\n")
    try:
        rc = main(argv)
    except SystemExit as exc:
        rc = exc.code if isinstance(exc.code, int) else 1
    sys.stdout.flush(); sys.stderr.flush()
    os.write(2, b"\n@@rc %d\n" % rc)
def peak_rss():
    # VmHWM: the peak of this process's own address space. ru_maxrss is not: Linux carries it over
    # fork and exec, so a child of a big pytest process would report the parent's size.
    try:
        with open("/proc/self/status") as fp:
            for line in fp:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
os.write(2, b"\n@@maxrss %d\n" % peak_rss())
"""


def run_in_subprocess(case: Path, ops: list[tuple], timeout: float = 30.0, memory: int = 3 << 30,
                      code: Path = REPO, details: dict | None = None) -> dict[str, str]:
    """Run `info` and `convert` on CASE in one child process with a timeout, an address-space limit
    and a file-size limit; returns {"info": outcome, "convert": outcome} (a crash or hang of the
    child is charged to the command it was running). CODE is the source tree whose medviewer runs;
    DETAILS, when given, receives each command's exit status and the end of its output."""
    import signal
    import subprocess
    import sys
    import tempfile

    def limits():
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
        resource.setrlimit(resource.RLIMIT_FSIZE, (256 << 20, 256 << 20))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))

    env = dict(os.environ, MEDVIEWER_MEMORY_LIMIT="256M", PYTHONPATH=str(code))
    with tempfile.TemporaryDirectory(prefix="fuzz-out-") as tmp:
        env["MEDVIEWER_DATA_DIR"] = tmp
        try:
            proc = subprocess.run([sys.executable, "-c", RUNNER, str(case), os.path.join(tmp, "out.nii.gz")],
                                  capture_output=True, timeout=timeout, preexec_fn=limits, env=env, cwd=tmp)
            out, err, rc, hung = proc.stdout, proc.stderr, proc.returncode, False
        except subprocess.TimeoutExpired as exc:
            out, err, rc, hung = exc.stdout or b"", exc.stderr or b"", None, True
    out_t, err_t = out.decode("utf-8", "replace"), err.decode("utf-8", "replace")
    outs = dict(_sections(out_t))
    errs = dict(_sections(err_t))
    result = {}
    for command in ("info", "convert"):
        if command not in errs:
            break
        section = errs[command]
        match = re.search(r"\n@@rc (-?\d+)\n", section)
        if details is not None:
            details[command] = {"rc": int(match.group(1)) if match else rc, "hung": hung and match is None,
                                "stdout": outs.get(command, "")[-600:],
                                "stderr": (section[: match.start()] if match else section)[-1500:]}
        if match is None:  # the child died or hung while running this command
            if hung:
                result[command] = "hang"
            elif rc == -signal.SIGXFSZ or (rc is not None and rc < 0 and "MemoryError" in err_t):
                result[command] = "memory"
            else:
                result[command] = "crash"
            break
        body = section[: match.start()]
        result[command] = judge(command, int(match.group(1)), outs.get(command, ""), body, ops)
    rss = re.search(r"@@maxrss (\d+)", err_t)
    if rss and int(rss.group(1)) > MAX_RSS:
        result = {k: ("memory" if v in GOOD else v) for k, v in result.items()}
    return result


def run_in_process(case: Path, ops, capsys) -> dict[str, str]:
    """{command: outcome} of `info` and `convert` on CASE, run by medviewer.cli.main in this process
    (CAPSYS: pytest's fixture), judged as run_in_subprocess judges them."""
    import tempfile

    from medviewer.cli import main

    outcomes = {}
    with tempfile.TemporaryDirectory() as out:
        for argv in (["info", str(case)], ["convert", str(case), str(Path(out) / "out.nii.gz")]):
            capsys.readouterr()
            rc = main(argv)
            captured = capsys.readouterr()
            outcomes[argv[0]] = judge(argv[0], rc, captured.out, captured.err, ops)
    return outcomes


def _sections(text: str):
    parts = re.split(r"\n@@cmd (\w+)\n", text)
    for k in range(1, len(parts) - 1, 2):
        yield parts[k], parts[k + 1]
