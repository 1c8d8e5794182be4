"""Read DICOM headers into per-frame records, without decoding pixels.

One record per frame: a classic single-frame file gives one, an (enhanced) multi-frame
file gives one per frame, with geometry and rescale taken from its per-frame or shared
functional groups. Records carry what grouping, sorting and decoding need.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pydicom
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.multival import MultiValue
from pydicom.uid import UID

from medviewer.core.errors import ImageReadError
from medviewer.io.messages import clean_text, library_reason
from medviewer.io.dicom_diffusion import diffusion_of
from medviewer.io.dicom_files import is_gzip, open_dicom
from medviewer.io.dicom_lean import LeanDataset, read_lean
from medviewer.io.dicom_mosaic import expand_mosaic

NATIVE_LE_SYNTAXES = {"1.2.840.10008.1.2", "1.2.840.10008.1.2.1"}
NATIVE_SYNTAXES = NATIVE_LE_SYNTAXES | {"1.2.840.10008.1.2.2"}  # uncompressed (not deflated)
ENCAPSULATED = "1.2.840.10008.1.2.4", "1.2.840.10008.1.2.5"  # JPEG family, RLE (UID prefixes)
PIXEL_TAGS = ("PixelData", "FloatPixelData", "DoubleFloatPixelData")
DICOMDIR_CLASS = "1.2.840.10008.1.3.10"
# Dimension index pointers that only say where a frame is in space; every other
# dimension (echo, temporal position, image type, b-value ...) separates volumes.
_SPATIAL_DIMENSIONS = {0x00209056, 0x00209057, 0x00200032, 0x00209153}


@dataclass
class FrameRecord:
    path: str
    frame: int | None  # index in a multi-frame file, None for single-frame files
    nframes_in_file: int
    series_uid: str
    series_key: tuple
    rows: int
    columns: int
    samples: int
    position: np.ndarray | None  # Image Position (Patient), LPS mm
    orientation: np.ndarray | None  # Image Orientation (Patient): row cosines, column cosines
    pixel_spacing: tuple[float, float] | None  # (row spacing, column spacing) = (dy, dx)
    slice_thickness: float | None
    slope: float
    intercept: float
    photometric: str
    bits_allocated: int
    bits_stored: int
    pixel_representation: int
    transfer_syntax: str
    modality: str
    description: str
    split_key: tuple  # what separates volumes that share this series (echo, time ...)
    instance_number: int
    pixel_offset: int | None  # file offset of the Pixel Data element (native syntaxes)
    header: Dataset = field(repr=False)  # the wanted attributes only when lean: see full_header()
    # a slice of a mosaic: where its tile starts (row, column) in the stored image of stored_shape
    tile: tuple[int, int] | None = None
    stored_shape: tuple[int, int] | None = None
    mosaic_index: int = 0
    diffusion: Any = None  # medviewer.io.dicom_diffusion.Diffusion, for DWI volumes
    note: str = ""  # something about this file the series should warn about
    # Philips private scale slope and intercept (2005,100E/100D), for floating-point values
    # (medviewer.io.philips_scaling)
    philips_scale: tuple[float, float] | None = None
    # what a 4D group keeps apart (dcm2niix writes echoes and magnitude/phase to separate files)
    volume_kind: tuple = ()
    sop_uid: str = ""
    defect: str = ""  # why this file's pixels cannot be read (loading its series fails with it)

    def full_header(self) -> Dataset:
        """The complete header (read now when the record came from the lean reader)."""
        if isinstance(self.header, LeanDataset):
            self.header, _ = read_header(self.path)
        return self.header


def _spacing(value: Any) -> tuple[float, float] | None:
    arr = _float_list(value, 2)
    return tuple(float(v) for v in arr) if arr is not None and np.all(arr > 0) else None  # type: ignore


MAX_COORDINATE = 1e6  # mm: a position, spacing or thickness beyond a kilometre is garbage, not geometry


def _float_list(value: Any, n: int) -> np.ndarray | None:
    try:
        values = [float(v) for v in value]
    except (TypeError, ValueError):
        return None
    # plain Python checks: this runs for every frame of every file (numpy's overhead is 10x here)
    ok = len(values) == n and all(math.isfinite(v) and abs(v) <= MAX_COORDINATE for v in values)
    return np.array(values, dtype=float) if ok else None


def _length(value: Any) -> float | None:
    """A positive length in mm (slice thickness, spacing between slices); None when absent or absurd."""
    out = _number(value, 0.0)
    return out if 0 < out <= MAX_COORDINATE else None


def _count(ds: Dataset, keyword: str, default: int) -> int:
    """A whole-number attribute (US, IS); DEFAULT when absent, empty or not a number."""
    value = ds.get(keyword, default)
    if isinstance(value, (list, tuple, MultiValue)):
        value = value[0] if len(value) else default
    out = _number(value, default)
    return int(out) if abs(out) < 2**31 else default


def _first(ds: Dataset | None, sequence: str) -> Dataset | None:
    if ds is None:
        return None
    seq = ds.get(sequence)
    if seq is None or len(seq) == 0:
        return None
    return seq[0]


def _functional(shared: Dataset | None, per_frame: Dataset | None, sequence: str) -> Dataset | None:
    return _first(per_frame, sequence) or _first(shared, sequence)


def _text(ds: Dataset, keyword: str) -> str:
    value = ds.get(keyword, "")
    return "" if value is None else clean_text(value, limit=1000)  # shown and printed: no control characters


def _number(value: Any, default: float) -> float:
    try:
        out = float(value)
    except (TypeError, ValueError):
        return default
    return out if np.isfinite(out) else default


def series_key_of(ds: Dataset) -> tuple[str, tuple]:
    """(Series Instance UID, grouping key). Files with a blank UID are grouped by
    study, frame of reference, series number, modality and description."""
    uid = _text(ds, "SeriesInstanceUID")
    if uid:
        return uid, ("uid", uid)
    return "", ("nouid", _text(ds, "StudyInstanceUID"), _text(ds, "FrameOfReferenceUID"),
                _text(ds, "SeriesNumber"), _text(ds, "Modality"), _text(ds, "SeriesDescription"),
                _text(ds, "PatientID"))


def is_dicomdir(ds: Dataset) -> bool:
    meta = getattr(ds, "file_meta", None)
    sop = str(meta.get("MediaStorageSOPClassUID", "")) if meta is not None else ""
    return sop == DICOMDIR_CLASS or "DirectoryRecordSequence" in ds


def read_header(path: str, force: bool = False, lean: bool = False) -> tuple[Dataset, int | None]:
    """Parse everything before the pixel data; also return the pixel data offset. LEAN: only the
    attributes grouping needs, with the fast reader where the file allows (medviewer.io.dicom_lean)."""
    if lean and not force:
        found = read_lean(path)
        if found is not None:
            return found
    try:
        with open_dicom(path) as fp:
            ds = pydicom.dcmread(fp, stop_before_pixels=True, force=force)
            offset = None if is_gzip(path) else fp.tell()  # offsets only into plain files
    except InvalidDicomError as exc:
        raise ImageReadError(path, "not a DICOM file (no DICOM file meta information or 'DICM' prefix)") from exc
    except (EOFError, OSError, ValueError, KeyError, TypeError, AttributeError, NotImplementedError) as exc:
        raise ImageReadError(path, f"cannot parse DICOM header: {library_reason(exc)}") from exc
    return ds, offset


def frames_from_header(path: str, ds: Dataset, pixel_offset: int | None) -> list[FrameRecord]:
    """Per-frame records of an image file; raises ImageReadError for non-images."""
    meta = getattr(ds, "file_meta", None)
    tsyntax = clean_text(meta.get("TransferSyntaxUID", "")) if meta is not None else ""
    if not tsyntax and "Rows" in ds:
        tsyntax = syntax_from_encoding(ds)
    sop_class = _text(ds, "SOPClassUID") or (str(meta.get("MediaStorageSOPClassUID", "")) if meta else "")
    try:
        rows, columns = int(ds.Rows), int(ds.Columns)
    except (AttributeError, TypeError, ValueError):
        name = UID(sop_class).name if sop_class else "unknown SOP class"
        extra = "; its file meta information also lacks the Transfer Syntax UID" if not tsyntax else ""
        raise ImageReadError(path, f"not an image ({name}: no Rows/Columns){extra}") from None
    if not tsyntax:
        raise ImageReadError(path, "the file meta information has no Transfer Syntax UID, "
                                   "so the pixel data cannot be interpreted")
    try:
        nframes = _count(ds, "NumberOfFrames", 1) or 1
        bits = _count(ds, "BitsAllocated", 16) or 16
        series_uid, series_key = series_key_of(ds)
        common = dict(
            path=path, nframes_in_file=nframes, series_uid=series_uid, series_key=series_key,
            sop_uid=_text(ds, "SOPInstanceUID") or (_text(meta, "MediaStorageSOPInstanceUID") if meta else ""),
            rows=rows, columns=columns, samples=_count(ds, "SamplesPerPixel", 1) or 1,
            photometric=_text(ds, "PhotometricInterpretation") or "MONOCHROME2",
            bits_allocated=bits, bits_stored=_count(ds, "BitsStored", bits) or bits,
            pixel_representation=_count(ds, "PixelRepresentation", 0),
            transfer_syntax=tsyntax, modality=_text(ds, "Modality"),
            description=_text(ds, "SeriesDescription"),
            instance_number=int(_number(ds.get("InstanceNumber"), 0)),
            pixel_offset=pixel_offset if tsyntax in NATIVE_LE_SYNTAXES else None, header=ds,
        )
        common["nframes_in_file"], common["defect"] = _check_pixel_layout(path, common, pixel_offset)
        common["note"] = common["defect"]  # `info` warns; loading the series fails with it
        nframes = common["nframes_in_file"]
        if "PerFrameFunctionalGroupsSequence" in ds or "SharedFunctionalGroupsSequence" in ds:
            return _enhanced_frames(ds, nframes, common)
        records = _classic_frames(ds, nframes, common)
        if len(records) == 1:
            tiles, why = expand_mosaic(records[0])
            if tiles is not None:
                return tiles
            records[0].note = "; ".join(n for n in (records[0].note, why) if n)
        return records
    except ImageReadError:
        raise
    except Exception as exc:  # malformed values deep in the header
        raise ImageReadError(path, f"malformed DICOM header: {library_reason(exc)}") from exc


ENCAPSULATED_FRAME_MIN = 10  # bytes: an item header and at least one (even) pair of bytes per frame


def _check_pixel_layout(path: str, common: dict, pixel_offset: int | None) -> tuple[int, str]:
    """Values a decoder or an allocation would trust. Refuses what no image can have; returns the
    number of frames to make records for and a defect ("" when none). Pixel data shorter than
    rows x columns x frames x bytes is a defect: the file stays in its series, whose load then
    fails naming it (a series must not be loaded with one slice silently missing). A huge
    NumberOfFrames makes records only for the frames the data can hold (plus one), not millions."""
    rows, columns, samples = common["rows"], common["columns"], common["samples"]
    bits, stored, frames = common["bits_allocated"], common["bits_stored"], common["nframes_in_file"]
    if not (1 <= rows <= 65535 and 1 <= columns <= 65535):
        raise ImageReadError(path, f"invalid image size {columns}x{rows} in the header")
    if samples not in (1, 3, 4) or bits not in (1, 8, 16, 32, 64) or not 1 <= stored <= bits:
        raise ImageReadError(path, f"unsupported pixel layout in the header ({samples} samples per pixel, "
                                   f"{stored} of {bits} bits)")
    if common["pixel_representation"] not in (0, 1):
        raise ImageReadError(path, "invalid Pixel Representation in the header (must be 0 or 1)")
    if frames < 1:
        raise ImageReadError(path, f"invalid Number of Frames {frames} in the header")
    syntax = common["transfer_syntax"]
    native = syntax in NATIVE_SYNTAXES
    if pixel_offset is None or not (native or syntax.startswith(ENCAPSULATED)):
        return frames, ""  # gzip or deflate: the pixel data's size is not known here
    try:
        element_header = 8 if syntax == "1.2.840.10008.1.2" else 12  # implicit VR: no VR field
        room = max(os.path.getsize(path) - pixel_offset - element_header, 0)
    except OSError:
        return frames, ""
    per_frame = -(-rows * columns * samples * bits // 8) if native else ENCAPSULATED_FRAME_MIN
    if frames * per_frame <= room:
        return frames, ""
    if native:
        defect = (f"the pixel data is truncated ({frames} frame(s) of {columns}x{rows} need "
                  f"{frames * per_frame} bytes; the file holds {room})")
    else:
        defect = f"the pixel data is truncated ({room} bytes of compressed data cannot hold {frames} frames)"
    return min(frames, room // per_frame + 1), defect


def syntax_from_encoding(ds: Dataset) -> str:
    """Files without a transfer syntax (no meta, ACR-NEMA style) are uncompressed: record the
    encoding pydicom detected, so that the pixels can be read."""
    encoding = getattr(ds, "original_encoding", None)
    if not encoding or encoding[0] is None:
        return ""
    implicit, little = encoding
    uid = ("1.2.840.10008.1.2" if implicit else "1.2.840.10008.1.2.1") if little else "1.2.840.10008.1.2.2"
    if not hasattr(ds, "file_meta") or ds.file_meta is None:
        ds.file_meta = pydicom.dataset.FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = uid
    return uid


def _classic_frames(ds: Dataset, nframes: int, common: dict) -> list[FrameRecord]:
    position = _float_list(ds.get("ImagePositionPatient"), 3)
    orientation = _float_list(ds.get("ImageOrientationPatient"), 6)
    spacing = _spacing(ds.get("PixelSpacing") or ds.get("ImagerPixelSpacing"))
    diffusion = diffusion_of(ds)
    # Volumes that share slice positions are told apart by echo, time, image type and, for
    # diffusion, b-value and gradient; the acquisition number only where there is no diffusion
    # information (Philips numbers the acquisitions of one DWI volume differently).
    split = (_text(ds, "EchoNumbers"), _text(ds, "TemporalPositionIdentifier"),
             "\\".join(str(v) for v in ds.get("ImageType", [])),
             diffusion.key() if diffusion is not None else _text(ds, "AcquisitionNumber"))
    base = dict(common, orientation=orientation,
                pixel_spacing=spacing,
                slice_thickness=_length(ds.get("SliceThickness")),
                slope=_number(ds.get("RescaleSlope"), 1.0) or 1.0,
                intercept=_number(ds.get("RescaleIntercept"), 0.0), split_key=split, diffusion=diffusion,
                philips_scale=_philips_scale(ds), volume_kind=(split[0], split[2]))
    if nframes == 1:
        return [FrameRecord(frame=None, position=position, **base)]
    # Classic multi-frame (ultrasound, NM, XA): frames stacked along the normal when a
    # frame spacing is known, otherwise a cine of one plane.
    step = _length(ds.get("SpacingBetweenSlices")) or _length(ds.get("SliceThickness")) or 0.0
    records = []
    normal = np.cross(orientation[:3], orientation[3:]) if orientation is not None else np.array([0, 0, 1.0])
    start = position if position is not None else np.zeros(3)
    for k in range(nframes):
        pos = start + normal * step * k if step else None
        records.append(FrameRecord(frame=k, position=pos, **base))
    return records


_PHILIPS_FRAME = (0x2005, 0x140F)  # Philips' private per-frame item, which holds the scale slope


def _echo_time(shared: Dataset | None, per_frame: Dataset | None) -> str:
    echo = _functional(shared, per_frame, "MREchoSequence")
    return _text(echo, "EffectiveEchoTime") if echo is not None else ""


def _private_item(ds: Dataset | None) -> Dataset | None:
    element = ds.get(_PHILIPS_FRAME) if ds is not None else None
    items = getattr(element, "value", None)
    try:
        return items[0] if items is not None and len(items) and isinstance(items[0], Dataset) else None
    except TypeError:
        return None


def _philips_scale(ds: Dataset) -> tuple[float, float] | None:
    """(scale slope, scale intercept) from Philips' private (2005,100E)/(2005,100D), when valid."""
    def value(tag):
        element = ds.get(tag)
        raw = element.value if element is not None else None
        if isinstance(raw, (bytes, bytearray)) and len(raw) == 4:  # FL read as UN
            raw = np.frombuffer(bytes(raw), "<f4")[0]
        return _number(raw, float("nan"))

    slope, intercept = value((0x2005, 0x100E)), value((0x2005, 0x100D))
    if not np.isfinite(slope) or slope == 0:
        return None
    return float(slope), float(intercept) if np.isfinite(intercept) else 0.0


def _enhanced_frames(ds: Dataset, nframes: int, common: dict) -> list[FrameRecord]:
    shared = _first(ds, "SharedFunctionalGroupsSequence")
    per_frame_seq = ds.get("PerFrameFunctionalGroupsSequence") or []
    pointers = [int(item.DimensionIndexPointer) for item in ds.get("DimensionIndexSequence", [])
                if "DimensionIndexPointer" in item]
    keep = [i for i, p in enumerate(pointers) if p not in _SPATIAL_DIMENSIONS]
    records = []
    for k in range(nframes):
        pf = per_frame_seq[k] if k < len(per_frame_seq) else None
        plane_pos = _functional(shared, pf, "PlanePositionSequence")
        plane_ori = _functional(shared, pf, "PlaneOrientationSequence")
        measures = _functional(shared, pf, "PixelMeasuresSequence")
        pvt = _functional(shared, pf, "PixelValueTransformationSequence")
        content = _first(pf, "FrameContentSequence")
        frame_type = (_functional(shared, pf, "MRImageFrameTypeSequence")
                      or _functional(shared, pf, "CTImageFrameTypeSequence"))
        raw = content.get("DimensionIndexValues") if content is not None else None
        # pydicom gives a multi-valued UL as a list (3.x) or a MultiValue: a value per dimension
        dims = [] if raw is None else (list(raw) if isinstance(raw, (MultiValue, list, tuple)) else [raw])
        split = (tuple(dims[i] for i in keep if i < len(dims)),
                 "\\".join(str(v) for v in frame_type.get("FrameType", [])) if frame_type is not None else "",
                 _text(content, "TemporalPositionIndex") if content is not None else "")
        spacing = _spacing(measures.get("PixelSpacing")) if measures is not None else None
        records.append(FrameRecord(
            frame=k,
            position=_float_list(plane_pos.get("ImagePositionPatient"), 3) if plane_pos is not None else None,
            orientation=_float_list(plane_ori.get("ImageOrientationPatient"), 6) if plane_ori is not None else None,
            pixel_spacing=spacing,
            slice_thickness=_length((measures or ds).get("SliceThickness")),
            slope=_number((pvt or ds).get("RescaleSlope"), 1.0) or 1.0,
            intercept=_number((pvt or ds).get("RescaleIntercept"), 0.0),
            split_key=split, volume_kind=(split[1], _echo_time(shared, pf)),
            philips_scale=_philips_scale(_private_item(pf) or _private_item(shared) or ds), **common))
    return records


def dicomdir_files(path: str, ds: Dataset) -> list[str]:
    """Files referenced by a DICOMDIR's IMAGE (and other) records, as absolute paths."""
    import os

    root = os.path.dirname(os.path.abspath(path))
    files = []
    for record in ds.get("DirectoryRecordSequence", []):
        ref = record.get("ReferencedFileID")
        if not ref:
            continue
        parts = [ref] if isinstance(ref, str) else list(ref)
        files.append(os.path.join(root, *[str(p) for p in parts]))
    return files
